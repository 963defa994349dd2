import pytest
from django.core.management import call_command


def test_openapi_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    text = target.read_text()
    assert "/api/v1/orders/" in text
    assert "/api/v1/batch/orders/" in text
    assert "Idempotency-Key" in text
    assert "bearerAuth" in text


@pytest.mark.django_db
def test_api_docs_page_loads(admin_client):
    response = admin_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert admin_client.get("/api/schema/").status_code == 200
