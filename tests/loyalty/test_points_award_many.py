"""
`members_join_many` and `points_award_many`: the set-based variants of `member_join` and `points_award` used by
the engine's batch lane (issue 12) — the same memberships, balances, lots, ledger entries and events as one
call per member, in a number of statements that does not grow with the members. SQLite and PostgreSQL.
"""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.customers.models import DomainEvent
from apps.loyalty import services
from apps.loyalty.models import Balance, LedgerEntry, Membership, PointHold, PointLot
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory
from tests.loyalty.conftest import assert_ledger_consistent, program_make

pytestmark = pytest.mark.django_db

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _award(member, points: int, key: str, cause: str = "workflow_run:1") -> services.AwardRequest:
    return services.AwardRequest(membership=member, points=points, reason="Bench", key=key, cause=cause)


def test_members_join_many_enrols_the_others_once_with_their_own_causes():
    program = program_make()
    member, new_one, new_two = CustomerFactory.create_batch(3)
    existing, _ = services.member_join(customer=member, program=program)

    with time_machine.travel(AT, tick=False):
        found = services.members_join_many(
            joins=[(member, "workflow_run:1"), (new_one, "workflow_run:2"), (new_two, "workflow_run:3"),
                   (new_one, "workflow_run:4")]
        )  # fmt: skip

    assert found[member.pk] == existing
    assert set(found) == {member.pk, new_one.pk, new_two.pk}
    assert Membership.objects.count() == Balance.objects.count() == 3
    assert found[new_one.pk].joined_at == found[new_one.pk].last_activity_at == AT
    joined = sorted(
        DomainEvent.objects.filter(name="member.joined", customer__in=[new_one, new_two]).values_list(
            "customer_id", "cause", "payload"
        )
    )
    assert joined == sorted(
        [
            (new_one.pk, "workflow_run:2", {"membership_id": found[new_one.pk].pk, "program_id": program.pk}),
            (new_two.pk, "workflow_run:3", {"membership_id": found[new_two.pk].pk, "program_id": program.pk}),
        ]
    )


def test_points_award_many_writes_what_one_award_per_member_writes():
    # given three members, one of whom was already awarded under key "k0"
    program = program_make()
    customers = CustomerFactory.create_batch(3)
    members = [services.member_join(customer=customer, program=program)[0] for customer in customers]
    first, _ = services.points_award(membership=members[0], points=7, reason="Before", source_type="workflow", key="k0")

    # when the batch awards 10 to each, the first one again under "k0"
    with time_machine.travel(AT, tick=False):
        awarded = services.points_award_many(
            awards=[_award(members[0], 10, "k0"), _award(members[1], 10, "k1"), _award(members[2], 12, "k2")]
        )

    # then the repeated key awarded nothing, the others one active lot and one entry each
    assert [(lot.source_key, lot.amount, created, balance.available) for lot, created, balance in awarded] == [
        ("workflow:k0", 7, False, 7),
        ("workflow:k1", 10, True, 10),
        ("workflow:k2", 12, True, 12),
    ]
    assert awarded[0][0] == first
    lots = sorted(PointLot.objects.values_list("membership_id", "source_key", "amount", "remaining", "status", "cause"))
    assert lots == sorted(
        [
            (members[0].pk, "workflow:k0", 7, 7, "active", "workflow"),
            (members[1].pk, "workflow:k1", 10, 10, "active", "workflow_run:1"),
            (members[2].pk, "workflow:k2", 12, 12, "active", "workflow_run:1"),
        ]
    )
    entries = sorted(LedgerEntry.objects.values_list("membership_id", "kind", "active_delta", "active_after", "cause"))
    assert entries == sorted(
        [
            (members[0].pk, "earn", 7, 7, "workflow"),
            (members[1].pk, "earn", 10, 10, "workflow_run:1"),
            (members[2].pk, "earn", 12, 12, "workflow_run:1"),
        ]
    )
    for member in members:
        assert_ledger_consistent(member)
    assert list(Balance.objects.order_by("pk").values_list("active", "lifetime_earned")) == [(7, 7), (10, 10), (12, 12)]
    assert Membership.objects.get(pk=members[1].pk).last_activity_at == AT


def test_a_flagged_customer_is_awarded_one_by_one_and_held():
    program = program_make()
    plain, flagged = CustomerFactory.create_batch(2)
    flagged.status, flagged.status_reason = "flagged", "many refunds"
    flagged.save()
    members = [services.member_join(customer=customer, program=program)[0] for customer in (plain, flagged)]

    awarded = services.points_award_many(awards=[_award(members[0], 10, "a"), _award(members[1], 10, "b")])

    assert [(lot.status, lot.held, created) for lot, created, _ in awarded] == [
        ("active", False, True),
        ("pending", True, True),
    ]
    assert PointHold.objects.get().membership_id == members[1].pk
    assert [balance.pending for _, _, balance in awarded] == [0, 10]


@pytest.mark.django_db(transaction=True)
def test_a_blocked_customer_refuses_the_whole_call_and_changes_nothing():
    program = program_make()
    plain, blocked = CustomerFactory.create_batch(2)
    members = [services.member_join(customer=customer, program=program)[0] for customer in (plain, blocked)]
    blocked.status = "blocked"
    blocked.save()

    with pytest.raises(DomainError) as refused:
        services.points_award_many(awards=[_award(members[0], 10, "a"), _award(members[1], 10, "b")])

    assert refused.value.code == "customer_blocked"
    assert not PointLot.objects.exists() and not LedgerEntry.objects.exists()
    assert list(Balance.objects.values_list("active", flat=True)) == [0, 0]


def test_the_statements_do_not_grow_with_the_members():
    program = program_make()
    few = [services.member_join(customer=c, program=program)[0] for c in CustomerFactory.create_batch(2)]
    many = [services.member_join(customer=c, program=program)[0] for c in CustomerFactory.create_batch(20)]

    # the same statements for 2 members as for 20 (SQLite and PostgreSQL): balances locked, keys awarded,
    # members with their customers, open holds, the lots, the entries, the expiring points, the balances, the
    # members' activity, "does anyone listen to loyalty.points_changed" and, when someone does, one insert of
    # the events (handed over after commit)
    counts = []
    for members in (few, many):
        with CaptureQueriesContext(connection) as captured:
            services.points_award_many(awards=[_award(member, 5, f"n{member.pk}") for member in members])
        counts.append(len(captured))
    assert counts[0] == counts[1] <= 16, counts
    assert PointLot.objects.count() == 22
