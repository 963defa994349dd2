"""
The promotion set a validation reads, kept in memory per process under the version stamp it was read with.

Validation is the hot path of the promotions API (every cart view of a shop may ask), and most of what it read
did not change between two requests: the promotion settings, the active automatic campaigns, their incentives,
limits and rules. The set holds those, with every validation rule and lines rule turned into a predicate once
(`condition_predicate`), so a validation reads only the version stamp and the kill switch (one statement), the
codes sent, the customer's own figures when a rule asks for them, and the budget counters.

Fresh on the very next request, in every process: `PromotionsVersion` holds one stamp, renewed by database
triggers in the transaction of any write to a campaign, incentive, limit or the settings (see migration 0018).
Each validation reads it together with the global kill switch and reloads the set when it differs; a stamp read
before the rows makes the set at least as new as its stamp (a change committed in between only costs one more
reload). Without the stamp row (a flushed test database) nothing is kept.

What is kept is shared by the threads of a process: the campaigns, incentives and limits it holds are read, never
written (reserve and redeem load their own inside their transaction, see `candidates_load(cached=False)`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from apps.platform.models import GlobalKillSwitch
from loyalty_site.lib.conditions import ConditionInvalid, Predicate, condition_predicate

from .choices import CampaignStatus, CampaignType, EffectKind, LimitMeasure, LimitScope
from .models import Campaign, Code, Incentive, Limit, PromotionSettings, PromotionsVersion


@dataclass
class PromotionSet:
    """The promotion settings and campaigns (with incentives, limits and predicates) as of `stamp`."""

    stamp: str | None
    settings: PromotionSettings
    automatic: tuple[Campaign, ...]
    campaigns: dict[int, Campaign] = field(default_factory=dict)  # by pk: the automatic ones + code campaigns seen
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def campaigns_get(self, ids: Iterable[int]) -> dict[int, Campaign]:
        """These campaigns (any status: the evaluation says why one does not apply), loaded once per set."""
        wanted = set(ids)
        missing = wanted - self.campaigns.keys()
        if missing:
            loaded = campaigns_prepare(Campaign.objects.filter(pk__in=missing).order_by("pk"))
            with self.lock:
                for campaign in loaded:
                    self.campaigns.setdefault(campaign.pk, campaign)
        return {pk: self.campaigns[pk] for pk in wanted if pk in self.campaigns}


_current: PromotionSet | None = None


def stamp_read() -> tuple[str | None, bool]:
    """The promotion set's version stamp (None without its row) and whether the global kill switch is on."""
    version, switch = PromotionsVersion._meta.db_table, GlobalKillSwitch._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT stamp FROM {quote(version)} WHERE id = 1), "  # noqa: S608 - table names, no input
            f"EXISTS (SELECT 1 FROM {quote(switch)} WHERE is_on = %s)",
            [True],
        )
        stamp, switched_on = cursor.fetchone()
    return stamp, bool(switched_on)


def promotion_set() -> tuple[PromotionSet, bool]:
    """The current promotion set (reloaded when its stamp moved) and whether the global kill switch is on."""
    stamp, switched_on = stamp_read()
    return _set_for(stamp), switched_on


def promotion_set_and_codes(texts: list[str]) -> tuple[PromotionSet, bool, list[Code]]:
    """
    `promotion_set()` and the codes among `texts` (normalised; their campaign not attached) read in the same
    statement: a validation with codes makes one round trip for both. On PostgreSQL the codes go as one array
    parameter and the rows are read with a plain cursor (psycopg already gives every column of a code its Python
    type, Django applies no converter there): the statement's text stays the same whatever the number of codes,
    so psycopg keeps it parsed, and no `RawQuerySet` machinery runs per validation. Elsewhere `objects.raw`, whose
    converters apply.
    """
    if not texts:
        current, switched_on = promotion_set()
        return current, switched_on, []
    quote = connection.ops.quote_name
    version, switch, code = (quote(model._meta.db_table) for model in (PromotionsVersion, GlobalKillSwitch, Code))
    head = (
        f"SELECT (SELECT stamp FROM {version} WHERE id = 1) AS promo_stamp, "  # noqa: S608 - table names, no input
        f"EXISTS (SELECT 1 FROM {switch} WHERE is_on = %s) AS promo_switched_on"
    )
    if connection.vendor == "postgresql":
        columns = ", ".join(f"c.{quote(column)}" for column in CODE_COLUMNS)
        with hot_cursor() as cursor:
            cursor.execute(
                f"SELECT s.promo_stamp, s.promo_switched_on, {columns} FROM ({head}) s "  # noqa: S608 - names only
                f"LEFT JOIN {code} c ON c.code = ANY(%s::text[])",
                [True, array_literal(texts)],
            )
            fetched = cursor.fetchall()
        stamp, switched_on = fetched[0][0], bool(fetched[0][1])
        alias = connection.alias
        codes = [Code.from_db(alias, CODE_ATTNAMES, row[2:]) for row in fetched if row[2] is not None]
        return _set_for(stamp), switched_on, codes
    marks = ", ".join(["%s"] * len(texts))
    rows = list(
        Code.objects.raw(
            f"SELECT c.*, s.promo_stamp, s.promo_switched_on FROM ({head}) s "  # noqa: S608 - table names, no input
            f"LEFT JOIN {code} c ON c.code IN ({marks})",
            [True, *texts],
        )
    )
    first: Any = rows[0]  # (the two extra columns, on every row)
    stamp, switched_on = first.promo_stamp, bool(first.promo_switched_on)
    return _set_for(stamp), switched_on, [row for row in rows if row.pk is not None]


def array_literal(values: Iterable[object]) -> str:
    """
    `values` as one PostgreSQL array literal for a parameter cast to its array type (`%s::text[]`), each element
    quoted (a backslash before `\\` and `"`, which is all a quoted element needs). psycopg adapts a list parameter
    element by element in Python (the ~50 limit ids of a validation, its codes): one string costs a fraction of it.
    """
    return "{" + ",".join('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


# A code's columns in the order `Code.from_db` takes them (its primary key first: NULL when no code matched).
CODE_COLUMNS = tuple(str(field.column) for field in Code._meta.concrete_fields)
CODE_ATTNAMES = tuple(field.attname for field in Code._meta.concrete_fields)


@contextmanager
def hot_cursor() -> Iterator[Any]:
    """
    A cursor for the statements every validation runs, on PostgreSQL. Django binds parameters on the client, so
    PostgreSQL parses and plans each statement anew — for these small statements most of the database's work
    (planning the budget counters' statement took 0.24 ms, running it 0.05 ms). This cursor binds on the server
    and prepares each statement once per connection (psycopg names and keeps it; a statement whose parameter
    types differ is prepared apart). It is still Django's cursor wrapper (errors translated, statements logged
    for `CaptureQueriesContext`). Django keeps psycopg's automatic preparation off (`prepare_threshold` None, for
    connection poolers): only these statements are prepared, and `PROMOTIONS_PREPARED_STATEMENTS = False` (behind
    a pooler in transaction mode that cannot keep prepared statements, PgBouncer before 1.21) turns them off.
    """
    if not settings.PROMOTIONS_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    # (the thread's connection looked up once: each attribute read through the `connection` proxy looks it up again)
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = db.connection
    if raw.prepare_threshold is None:
        # (psycopg prepares nothing while it is None; this large value keeps its automatic preparation off:
        # only the statements executed with prepare=True below are prepared)
        raw.prepare_threshold = _EXPLICIT_ONLY
    with db.wrap_database_errors:
        server = _PreparingCursor(raw)
    cursor = _LoggedCursor(server, db) if db.queries_logged else CursorWrapper(server, db)
    with cursor:
        yield cursor


_EXPLICIT_ONLY = 2**31 - 1


class _LoggedCursor(CursorDebugWrapper):
    """
    Django's debug cursor (`CaptureQueriesContext`, DEBUG) for the preparing cursor: it logs each statement with its
    parameters written in, as client-side binding shows them (a prepared statement keeps no text to read back).
    """

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return CursorWrapper.execute(self, sql, params)


class _PreparingCursor(psycopg.Cursor):
    """A server-binding psycopg cursor whose statements are prepared (once per connection) on first execution."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


def _set_for(stamp: str | None) -> PromotionSet:
    global _current
    current = _current
    if current is None or stamp is None or current.stamp != stamp:
        current = _load(stamp)
        _current = current if stamp is not None else None
    return current


def promotion_set_forget() -> None:
    """Drop this process's set (the next validation loads it again); for tests and after a restore."""
    global _current
    _current = None


def _load(stamp: str | None) -> PromotionSet:
    settings = PromotionSettings.objects.order_by("pk").first() or PromotionSettings()
    automatic = campaigns_prepare(
        Campaign.objects.filter(type=CampaignType.AUTOMATIC, status=CampaignStatus.ACTIVE).order_by("pk")
    )
    return PromotionSet(
        stamp=stamp,
        settings=settings,
        automatic=tuple(automatic),
        campaigns={campaign.pk: campaign for campaign in automatic},
    )


def campaigns_prepare(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """
    The campaigns with what the evaluation reads attached: `_promo_incentives` and `_promo_limits` (in their
    order, two queries for all of them), `_promo_rule` (the validation rule as a predicate) and each incentive's
    `_promo_lines` (its lines rule as a predicate). A rule the catalog no longer accepts gets no predicate: the
    evaluation then calls `condition_evaluate`, which raises as it always did.
    """
    campaigns = list(campaigns)
    ids = [campaign.pk for campaign in campaigns]
    incentives: dict[int, list[Incentive]] = {}
    limits: dict[int, list[Limit]] = {}
    # Reserve and redeem read the campaigns again in their transaction: a rule equal to the one the process's set
    # holds for the same campaign or incentive reuses its predicate instead of checking and compiling it again.
    kept = _current
    if ids:
        for incentive in Incentive.objects.filter(campaign_id__in=ids).order_by("position", "pk"):
            incentive._promo_lines = _predicate_kept(incentive.lines_rule, _kept_lines(kept, incentive))
            incentives.setdefault(incentive.campaign_id, []).append(incentive)
        for limit in Limit.objects.filter(campaign_id__in=ids).order_by("pk"):
            limits.setdefault(limit.campaign_id, []).append(limit)
    for campaign in campaigns:
        campaign._promo_incentives = incentives.get(campaign.pk, [])
        campaign._promo_limits = limits.get(campaign.pk, [])
        same = kept.campaigns.get(campaign.pk) if kept is not None else None
        campaign._promo_rule = _predicate_kept(
            campaign.validation_rule, (same.validation_rule, same._promo_rule) if same is not None else None
        )
        campaign._promo_checks = campaign_checks(campaign)
    return campaigns


@dataclass(frozen=True)
class CampaignChecks:
    """
    What the checks of a candidate read of its campaign that no cart changes, worked out when the campaign is
    prepared rather than for every candidate of every validation (50 campaigns a cart: their checks were a third
    of a validation's CPU).
    """

    rule_key: str | None  # the validation rule as canonical JSON: campaigns with equal rules share one verdict
    active: bool  # at least one incentive is on
    gives_points: bool  # an active incentive gives loyalty points
    per_customer: bool  # a limit counts per customer (it needs the customer)


# Incentives that give loyalty points: they go to a member (or a customer the program enrols).
POINTS_KINDS = (EffectKind.BONUS_POINTS, EffectKind.POINTS_MULTIPLIER)


def campaign_checks(campaign: Campaign) -> CampaignChecks:
    """The campaign's `CampaignChecks`, from its rule, `_promo_incentives` and `_promo_limits`."""
    rule = campaign.validation_rule
    return CampaignChecks(
        rule_key=json.dumps(rule, sort_keys=True, separators=(",", ":"), default=str) if rule else None,
        active=any(incentive.is_active for incentive in campaign._promo_incentives),
        gives_points=any(
            incentive.is_active and incentive.kind in POINTS_KINDS for incentive in campaign._promo_incentives
        ),
        per_customer=any(
            limit.scope == LimitScope.CUSTOMER or limit.measure == LimitMeasure.DISTINCT_CUSTOMERS
            for limit in campaign._promo_limits
        ),
    )


def _kept_lines(kept: PromotionSet | None, incentive: Incentive) -> tuple[Any, Predicate | None] | None:
    """The lines rule and predicate the kept set holds for this incentive (None when it holds none)."""
    same = kept.campaigns.get(incentive.campaign_id) if kept is not None else None
    for other in getattr(same, "_promo_incentives", ()):
        if other.pk == incentive.pk:
            return other.lines_rule, other._promo_lines
    return None


def _predicate_kept(condition: dict | None, kept: tuple[Any, Predicate | None] | None) -> Predicate | None:
    if kept is not None and kept[0] == condition:
        return kept[1]
    return _predicate_or_none(condition)


def _predicate_or_none(condition: dict | None) -> Predicate | None:
    if not condition:
        return None
    try:
        return condition_predicate(condition)
    except ConditionInvalid:
        return None
