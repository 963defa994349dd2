"""The daily rollups against hand-computed figures, and the incremental refresh after a late refund."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from apps.customers import services as customer_services
from apps.loyalty.choices import EntryKind
from apps.loyalty.models import Program
from apps.reports import selectors, services
from apps.reports.models import DailyFigures

from .helpers import at, customer, entry, member, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    """A member (joined 1 March) and a non-member; orders on 2 and 3 March; one point's life in the ledger."""
    with time_machine.travel(at("2026-03-10"), tick=False):
        program = Program.objects.create(name="Club", slug="club")
        alice, bob = customer(), customer()
        membership = member(program, alice, "2026-03-01")
        orders = {
            "alice_0302": order(alice, "100.00", "2026-03-02"),
            "bob_0302": order(bob, "50.00", "2026-03-02"),
            "alice_0303": order(alice, "20.00", "2026-03-03", currency="EUR", total_shop="21.60"),
            "bob_0303": order(bob, "30.00", "2026-03-03"),
        }
        customer_services.refund_create(order=orders["alice_0302"], amount="10.00")
        customer_services.order_cancel(order=orders["bob_0303"])
        entry(membership, EntryKind.EARN, "2026-03-02", pending=100)
        entry(membership, EntryKind.ACTIVATE, "2026-03-04", active=100, pending=-100)
        entry(membership, EntryKind.SPEND, "2026-03-05", active=-40)
        entry(membership, EntryKind.ROLLBACK, "2026-03-06", active=10)
        entry(membership, EntryKind.EXPIRE, "2026-03-07", active=-20)
    with time_machine.travel(at("2026-03-10", 13), tick=False):
        services.rollups_refresh()
    return orders


def figures(day: str) -> DailyFigures:
    return DailyFigures.objects.get(day=date.fromisoformat(day))


def test_daily_figures_match_the_hand_computed_ones(shop):
    march_2, march_3 = figures("2026-03-02"), figures("2026-03-03")
    assert (march_2.orders_members, march_2.orders_non_members) == (1, 1)
    assert (march_2.revenue_members, march_2.revenue_non_members) == (Decimal("90.00"), Decimal("50.00"))
    assert march_2.refunded == Decimal("10.00")
    assert march_2.points_issued == 100
    # the EUR order counts with its shop amount; the cancelled order not at all
    assert (march_3.orders_members, march_3.orders_non_members) == (1, 0)
    assert (march_3.revenue_members, march_3.revenue_non_members) == (Decimal("21.60"), Decimal("0.00"))
    assert figures("2026-03-05").points_redeemed == 40
    assert figures("2026-03-06").points_redeemed == -10
    assert figures("2026-03-07").points_expired == 20
    assert figures("2026-03-01").new_members == 1
    assert figures("2026-03-01").new_customers == 2


def test_dashboard_figures_and_previous_period(shop):
    report = selectors.dashboard(selectors.Period(date(2026, 3, 1), date(2026, 3, 7)))
    values = {figure.key: (figure.value, figure.previous) for figure in report.figures}
    assert values["members"] == (1, 0)
    assert values["revenue_members"] == (Decimal("111.60"), Decimal("0.00"))
    assert values["revenue_non_members"] == (Decimal("50.00"), Decimal("0.00"))
    assert values["points_issued"] == (100, 0)
    assert values["points_redeemed"] == (30, 0)
    assert values["points_expired"] == (20, 0)
    assert values["redemption_rate"] == (Decimal("30.0"), None)
    # 50 points outstanding at 0.01 (no money reward: the default value of a point)
    assert values["liability"] == (Decimal("0.50"), Decimal("0.00"))
    daily = report.table("daily")
    assert [row["day"] for row in daily.rows][:2] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert daily.rows[1]["revenue_members"] == Decimal("90.00")


def test_a_late_refund_recomputes_exactly_the_day_of_its_order(shop):
    untouched = {row.day: row.refreshed_at for row in DailyFigures.objects.all()}
    with time_machine.travel(at("2026-03-11"), tick=False):
        customer_services.refund_create(order=shop["bob_0302"], amount="5.00")
    with time_machine.travel(at("2026-03-11", 13), tick=False):
        result = services.rollups_refresh()
    assert result.days == [date(2026, 3, 2)]
    assert figures("2026-03-02").revenue_non_members == Decimal("45.00")
    assert figures("2026-03-02").refunded == Decimal("15.00")
    for row in DailyFigures.objects.exclude(day__in=[date(2026, 3, 2), date(2026, 3, 11)]):
        assert row.refreshed_at == untouched[row.day]


def test_a_refresh_with_nothing_changed_recomputes_no_day(shop):
    with time_machine.travel(at("2026-03-10", 14), tick=False):
        assert services.rollups_refresh().days == []


def test_rebuild_gives_the_same_rows_as_the_refreshes(shop):
    with time_machine.travel(at("2026-03-11"), tick=False):
        customer_services.refund_create(order=shop["bob_0302"], amount="5.00")
    with time_machine.travel(at("2026-03-11", 13), tick=False):
        services.rollups_refresh()
        incremental = list(DailyFigures.objects.values(*services.FIGURE_FIELDS, "day"))
        services.rollups_rebuild()
        rebuilt = list(DailyFigures.objects.values(*services.FIGURE_FIELDS, "day"))
    assert incremental == rebuilt
