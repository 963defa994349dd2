"""Code generation: set-based, unique case-insensitively, with progress; the 1,000,000-codes run on PostgreSQL."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from apps.campaigns.models import Code, CodeBatch
from apps.campaigns.promotions import services
from tests.campaigns.promo_helpers import campaign_with


@pytest.mark.django_db
def test_codes_are_unique_case_insensitively_and_stored_upper_case():
    campaign = campaign_with("C", incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}])
    services.code_create(campaign=campaign, code="Summer24")
    with pytest.raises(ValidationError) as error:
        services.code_create(campaign=campaign, code="SUMMER24 ")
    assert error.value.message_dict == {"code": ["The code SUMMER24 exists already."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        Code.objects.create(campaign=campaign, code="summer25")  # the database refuses lower case too
    assert list(Code.objects.values_list("code", flat=True)) == ["SUMMER24"]


@pytest.mark.django_db
def test_a_pattern_too_small_for_the_count_is_refused_before_anything_is_written():
    campaign = campaign_with("C", incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}])
    with pytest.raises(ValidationError) as error:
        services.codes_generate(campaign=campaign, pattern="X-##", count=60)
    assert error.value.message_dict == {"pattern": ["The pattern allows 100 codes; use a longer one."]}
    with pytest.raises(ValidationError):
        services.codes_generate(campaign=campaign, pattern="no pattern!", count=1)
    assert (CodeBatch.objects.count(), Code.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_generate_codes_command_reports_progress():
    campaign_with("Spring", incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}])
    out = StringIO()
    call_command("generate_codes", "Spring", "5000", "--pattern", "SP-####-??", stdout=out)
    text = out.getvalue()
    assert "5,000 / 5,000 (100 %)" in text
    assert "Generated 5,000 codes for “Spring”" in text
    batch = CodeBatch.objects.get()
    assert (batch.generated, batch.finished_at is not None) == (5000, True)
    assert Code.objects.filter(code__regex=r"^SP-[0-9]{4}-[A-Z]{2}$").count() == 5000


@pytest.mark.postgres
@pytest.mark.django_db
def test_one_million_codes_without_a_duplicate():
    campaign = campaign_with("Million", incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}])
    calls = []
    batch = services.codes_generate(
        campaign=campaign, pattern="M-********", count=1_000_000, progress=lambda done, total: calls.append(done)
    )
    assert batch.generated == 1_000_000
    assert calls[-1] == 1_000_000 and calls == sorted(calls)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT UPPER(code)) FROM campaigns_code WHERE campaign_id = %s", [campaign.pk]
        )
        assert cursor.fetchone() == (1_000_000, 1_000_000)


@pytest.mark.django_db
def test_the_campaign_field_list_is_one_tuple_for_the_admin_the_services_and_the_api():
    from apps.campaigns.promotions.admin import CampaignForm
    from apps.campaigns.promotions.api.serializers import CampaignSerializer
    from apps.campaigns.promotions.models import CAMPAIGN_FIELDS

    assert CampaignForm.Meta.fields == list(CAMPAIGN_FIELDS)
    api_fields = list(CampaignSerializer().fields)
    assert [name for name in api_fields if name in CAMPAIGN_FIELDS] == list(CAMPAIGN_FIELDS)
    with pytest.raises(ValidationError) as refused:
        services.campaign_create(name="X", colour="red")
    assert list(refused.value.message_dict) == ["colour"]
