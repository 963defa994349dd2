"""Every error under /api/ is JSON in the documented shape: 404, 405, 413, 415, 409, 500 and 503."""

import json

import pytest
from django.db import IntegrityError, OperationalError, connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from apps.customers.models import Customer, Order
from apps.loyalty.models import Membership, Program
from apps.loyalty.services import member_join
from loyalty_site.lib.api.errors import exception_handler, server_error
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error", "message", "errors"}
    return body


def test_an_unknown_api_url_is_a_json_404_and_other_urls_keep_the_html_page(api):
    response = api.get("/api/v1/no-such-thing/")
    page = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert _error(response) == {"error": "not_found", "message": "No API endpoint or object at this URL.", "errors": []}
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_an_unknown_api_url_is_a_json_404_under_debug_too(api, settings):
    # Given the development server's DEBUG mode, whose HTML 404 page does not call handler404
    settings.DEBUG = True

    response = api.get("/api/v1/loyalty/balances/")
    page = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert _error(response) == {"error": "not_found", "message": "No API endpoint or object at this URL.", "errors": []}
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_an_unknown_object_is_a_json_404(api):
    response = api.get("/api/v1/customers/999999/")

    assert response.status_code == 404
    assert _error(response)["error"] == "not_found"


def test_a_method_the_endpoint_does_not_offer_is_a_json_405(api):
    response = api.put("/api/v1/orders/", {}, format="json")

    assert response.status_code == 405
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert _error(response) == {"error": "method_not_allowed", "message": 'Method "PUT" not allowed.', "errors": []}


def test_a_body_in_an_unsupported_media_type_is_a_json_415(api):
    response = api.post("/api/v1/customers/", data="email=a@b.c", content_type="text/plain")

    assert response.status_code == 415
    assert _error(response)["error"] == "unsupported_media_type"
    assert Customer.objects.count() == 0


def test_malformed_json_is_a_json_400(api):
    response = api.post("/api/v1/customers/", data='{"email": ', content_type="application/json")

    assert response.status_code == 400
    assert _error(response)["error"] == "parse_error"


def test_an_oversized_body_is_a_json_413_before_it_is_parsed(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"external_id": "c-big", "attributes": {"note": "' + "x" * 2000 + '"}}'

    response = api.post("/api/v1/customers/", data=body, content_type="application/json")
    small = api.post("/api/v1/customers/", {"external_id": "c-small"}, format="json")

    assert response.status_code == 413
    assert _error(response) == {
        "error": "request_too_large",
        "message": f"The request body has {len(body)} bytes; the limit is 1000.",
        "errors": [],
    }
    assert small.status_code == 201
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["c-small"]


def test_an_unhandled_exception_is_a_json_500(integrator, monkeypatch):
    from apps.customers.api import views

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.selectors, "customer_list", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(integrator)

    response = client.get("/api/v1/customers/")

    assert response.status_code == 500
    assert _error(response) == {
        "error": "server_error",
        "message": "An unexpected error occurred; it has been logged.",
        "errors": [],
    }


def test_with_the_database_down_the_api_answers_503_with_retry_after(bearer, monkeypatch):
    client, _token = bearer

    def refuse(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refuse)
    response = client.get("/api/v1/customers/")
    monkeypatch.undo()

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert _error(response) == {
        "error": "service_unavailable",
        "message": "The database is unavailable right now; retry in a few seconds.",
        "errors": [],
    }


def test_the_500_handler_answers_503_for_a_database_failure_outside_drf():
    request = RequestFactory().get("/api/v1/customers/")
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        unavailable = server_error(request)
    page = server_error(RequestFactory().get("/admin/"))

    assert unavailable.status_code == 503
    assert unavailable["Retry-After"] == "5"
    assert _error(unavailable)["error"] == "service_unavailable"
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


def test_deleting_a_program_that_still_has_members_is_a_409_and_deletes_nothing():
    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    program = Program.objects.create(name="Club", slug="club", currency="USD")
    member_join(customer=CustomerFactory(), cause="test")
    member_join(customer=CustomerFactory(), cause="test")
    client = APIClient()
    client.force_authenticate(staff)

    response = client.delete(f"/api/v1/loyalty/programs/{program.pk}/")

    assert response.status_code == 409
    assert _error(response) == {
        "error": "still_referenced",
        "message": "It cannot be deleted while it is still referenced by 2 memberships.",
        "errors": [
            {
                "path": "",
                "message": "It cannot be deleted while it is still referenced by 2 memberships.",
                "code": "still_referenced",
            }
        ],
    }
    assert Program.objects.filter(pk=program.pk).exists()
    assert Membership.objects.count() == 2


def test_deleting_a_customer_with_orders_is_a_409(api):
    order = make_order(CustomerFactory())

    response = api.delete(f"/api/v1/customers/{order.customer_id}/")

    assert response.status_code == 409
    assert _error(response)["error"] == "customer_has_orders"
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('duplicate key value violates unique constraint "customer_external_id_uniq"', (409, "already_exists")),
        ("UNIQUE constraint failed: customers_customer.external_id", (409, "already_exists")),
        ("FOREIGN KEY constraint failed", (409, "still_referenced")),
        ("CHECK constraint failed: balance_active_gte_0", (400, "constraint_violation")),
    ],
)
def test_a_database_constraint_reached_anyway_is_never_a_500(message, expected):
    response = exception_handler(IntegrityError(message), {})

    assert (response.status_code, response.data["error"]) == expected
