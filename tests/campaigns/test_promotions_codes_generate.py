"""Set-based code generation: exact counts, no duplicate, the pattern, progress, collisions, a nearly full pattern."""

import re
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from apps.campaigns.models import Code, CodeBatch
from apps.campaigns.promotions import services
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with


def codes_campaign():
    return campaign_with("Codes", incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}])


def distinct_upper_count(campaign) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT UPPER(code)) FROM campaigns_code WHERE campaign_id = %s", [campaign.pk]
        )
        return cursor.fetchone()


@pytest.mark.django_db
def test_codes_are_exact_in_number_distinct_and_spelled_by_the_pattern_in_chunks(monkeypatch):
    # given chunks of 1,000 on either database and a pattern with every kind of slot
    monkeypatch.setattr(services, "GENERATE_CHUNK", 1000)
    monkeypatch.setattr(services, "GENERATE_CHUNK_COPY", 1000)
    campaign = codes_campaign()
    calls = []
    # when
    batch = services.codes_generate(
        campaign=campaign,
        pattern="sum-##??-*****",
        count=3500,
        expires_days_after_publication=30,
        progress=lambda done, total: calls.append((done, total)),
    )
    # then
    assert (batch.pattern, batch.requested, batch.generated, batch.finished_at is not None) == (
        "SUM-##??-*****",
        3500,
        3500,
        True,
    )
    assert calls == [(1000, 3500), (2000, 3500), (3000, 3500), (3500, 3500)]
    assert distinct_upper_count(campaign) == (3500, 3500)
    safe = re.escape(services.SAFE_ALPHABET)
    spelled = re.compile(rf"^SUM-[0-9]{{2}}[A-Z]{{2}}-[{safe}]{{5}}$")
    codes = list(Code.objects.filter(campaign=campaign).values_list("code", flat=True))
    assert all(spelled.match(code) for code in codes)
    assert set(
        Code.objects.filter(campaign=campaign).values_list(
            "batch_id", "max_uses", "uses", "is_active", "expires_days_after_publication", "customer_id"
        )
    ) == {(batch.pk, 1, 0, True, 30, None)}


@pytest.mark.django_db
def test_codes_colliding_with_existing_ones_are_drawn_again_until_the_count_is_reached():
    # given a pattern of 100 codes, 40 of which exist already
    campaign = codes_campaign()
    for number in range(40):
        services.code_create(campaign=campaign, code=f"r-{number:02d}")
    calls = []
    # when 50 more are asked for: the first draw collides, the shortfall is drawn again
    batch = services.codes_generate(
        campaign=campaign, pattern="R-##", count=50, progress=lambda done, total: calls.append(done)
    )
    # then
    assert batch.generated == 50
    assert len(calls) > 1 and calls == sorted(calls) and calls[-1] == 50
    assert Code.objects.filter(batch=batch).count() == 50
    assert Code.objects.filter(batch=None).count() == 40
    assert distinct_upper_count(campaign) == (90, 90)
    assert all(re.match(r"^R-[0-9]{2}$", code) for code in Code.objects.values_list("code", flat=True))


@pytest.mark.django_db
def test_draws_after_collisions_are_oversampled_so_a_crowded_pattern_still_fills_in_a_few_draws():
    # given 20 patterns of 100 codes, each with 40 taken (without oversampling, drawing only the shortfall needed
    # more than 50 draws for about 1 pattern in 40 when few free codes were left)
    campaign = codes_campaign()
    for letter in "ABCDEFGHJKMNPQRSTUVW":
        for number in range(40):
            services.code_create(campaign=campaign, code=f"O{letter}-{number:02d}")
    for letter in "ABCDEFGHJKMNPQRSTUVW":
        calls: list[int] = []
        # when 50 more are asked for from each
        batch = services.codes_generate(
            campaign=campaign,
            pattern=f"O{letter}-##",
            count=50,
            progress=lambda done, total, calls=calls: calls.append(done),
        )
        # then each fills exactly, in far fewer draws than the limit of 50
        assert batch.generated == Code.objects.filter(batch=batch).count() == 50
        assert len(calls) <= 20, (letter, calls)
    assert distinct_upper_count(campaign) == (20 * 90, 20 * 90)


@pytest.mark.django_db
def test_a_nearly_full_pattern_stops_with_an_error_instead_of_drawing_forever():
    # given a pattern of 100 codes with 90 taken
    campaign = codes_campaign()
    for number in range(90):
        services.code_create(campaign=campaign, code=f"F-{number:02d}")
    calls = []
    # when 50 are asked for (the pattern allows twice as many, but only 10 are free)
    with pytest.raises(DomainError) as error:
        services.codes_generate(
            campaign=campaign, pattern="F-##", count=50, progress=lambda done, total: calls.append(done)
        )
    # then
    assert (error.value.message, error.value.path) == ("Too many collisions: the pattern is nearly full.", "pattern")
    batch = CodeBatch.objects.get()
    assert batch.finished_at is None
    assert batch.generated == Code.objects.filter(batch=batch).count() <= 10
    assert len(calls) == 50 and calls == sorted(calls) and calls[-1] == batch.generated
    assert distinct_upper_count(campaign) == (90 + batch.generated, 90 + batch.generated)


def test_each_slot_character_is_uniform_over_its_pool():
    # 31 characters; a modulo bias of 256 % 31 would make 8 of them 12 % more frequent
    drawn = services._pool_characters(services.SAFE_ALPHABET, 31 * 20_000)
    counts = Counter(drawn)
    assert len(drawn) == 31 * 20_000
    assert set(counts) == set(services.SAFE_ALPHABET)
    assert all(19_000 <= counts[char] <= 21_000 for char in services.SAFE_ALPHABET)


def test_generated_codes_follow_the_literal_parts_and_slots_of_the_pattern():
    codes = services._pattern_codes("A#B?C*_**", 2000)
    safe = re.escape(services.SAFE_ALPHABET)
    assert 1990 < len(codes) <= 2000  # a set: draws that repeat within the chunk count once
    assert all(re.match(rf"^A[0-9]B[A-Z]C[{safe}]_[{safe}]{{2}}$", code) for code in codes)
