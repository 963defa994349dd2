# ruff: noqa: S608 - the set-based writes interpolate only table names from model meta; values are parameters.
"""
Tag write services: every tag change is audited and announced (`customer.tag_added` /
`customer.tag_removed` through the outbox). `tags_add` / `tags_remove` change one customer;
`tags_add_bulk` / `tags_remove_bulk` are their set-based variants for bulk runs (one statement per call on
PostgreSQL, whatever the number of customers), keeping the same rule: audited, and announced whenever someone
listens.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers.choices import DomainEventStatus
from apps.customers.models import Customer, DomainEvent, Product
from apps.customers.outbox import domain_event_emit, domain_event_listened

from . import signals
from .choices import TagAuditAction, TagSource
from .models import CustomerTag, ProductTag, Tag, TagAudit

TAG_ADDED = "customer.tag_added"
TAG_REMOVED = "customer.tag_removed"

MAX_TAG_LENGTH = 100


def tag_names_clean(names: Iterable[str]) -> list[str]:
    """Strip, drop empties and case-insensitive duplicates, keeping the first spelling and the order."""
    seen: set[str] = set()
    clean: list[str] = []
    for index, raw in enumerate(names):
        name = " ".join(str(raw).split())
        if not name:
            continue
        if len(name) > MAX_TAG_LENGTH:
            raise ValidationError({f"tags[{index}]": f"A tag name has at most {MAX_TAG_LENGTH} characters."})
        if name.lower() not in seen:
            seen.add(name.lower())
            clean.append(name)
    return clean


def tags_get_or_create(*, names: Iterable[str]) -> list[Tag]:
    """Return the Tag rows for `names` (case-insensitive), creating the missing ones."""
    names = tag_names_clean(names)
    if not names:
        return []
    lowered = [name.lower() for name in names]

    def stored() -> dict[str, Tag]:
        # The database's LOWER() may only fold ASCII (SQLite, PostgreSQL's C locale) while Python folds
        # every letter: match on the exact names too, so a name like "Ïle" always finds its row.
        rows = Tag.objects.annotate(lname=Lower("name")).filter(Q(lname__in=lowered) | Q(name__in=names))
        return {tag.name.lower(): tag for tag in rows}

    existing = stored()
    missing = [Tag(name=name) for name in names if name.lower() not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = stored()
    return [existing[name.lower()] for name in names if name.lower() in existing]


@transaction.atomic
def tags_add(
    *,
    customer: Customer,
    names: Iterable[str],
    source: str = TagSource.MANUAL,
    source_ref: str = "",
    actor: AbstractBaseUser | AnonymousUser | None = None,
) -> list[CustomerTag]:
    """
    Add tags to a customer; tags already present are left as they are. Returns the newly added
    CustomerTag rows; each sends `customer_tag_added` after commit.
    """
    tags = tags_get_or_create(names=names)
    if not tags:
        return []
    present = set(CustomerTag.objects.filter(customer=customer, tag__in=tags).values_list("tag_id", flat=True))
    wanted = [tag for tag in tags if tag.pk not in present]
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    CustomerTag.objects.bulk_create(
        [
            CustomerTag(customer=customer, tag=tag, source=source, source_ref=source_ref[:64], added_by_id=actor_id)
            for tag in wanted
        ],
        ignore_conflicts=True,  # a concurrent writer may have added the same tag: that is fine
    )
    added = list(
        CustomerTag.objects.filter(customer=customer, tag__in=wanted, source=source, source_ref=source_ref[:64])
        .exclude(tag_id__in=present)
        .select_related("tag")
    )
    TagAudit.objects.bulk_create(
        TagAudit(
            customer=customer,
            tag_name=row.tag.name,
            action=TagAuditAction.ADDED,
            source=source,
            source_ref=source_ref[:64],
            actor_id=actor_id,
        )
        for row in added
    )
    for row in added:
        domain_event_emit(
            signal=signals.customer_tag_added,
            name=TAG_ADDED,
            customer=customer,
            payload={"customer_id": customer.pk, "tag": row.tag.name, "source": source, "source_ref": row.source_ref},
            cause=source_ref,
            sender=CustomerTag,
            tag=row.tag,
            customer_tag=row,
        )
    return added


def tags_add_many(
    *, additions: Sequence[tuple[Customer, Iterable[str], str]], source: str = TagSource.WORKFLOW
) -> list[list[CustomerTag]]:
    """
    `tags_add` for many customers at once, each with its own names and `source_ref` (a batch of workflow runs
    adding tags): one insert for the customer-tags, one for their audit rows, and the `customer.tag_added`
    events as `tags_add` writes them (one insert when nobody listens; through `domain_event_emit`, row by row,
    when someone does). Tags already there are left alone. Returns, per addition, the CustomerTag rows it
    added (a pair named twice in one call is added once, for the first addition naming it).
    Names are checked before anything is written (a bad one refuses the whole call); after that, no savepoint
    of its own: inside a caller's transaction an error rolls back with the caller's.
    """
    names_of = [tag_names_clean(names) for _, names, _ in additions]
    with transaction.atomic(savepoint=False):
        return _tags_add_many(additions, names_of, str(source))


def _tags_add_many(
    additions: Sequence[tuple[Customer, Iterable[str], str]], names_of: list[list[str]], source: str
) -> list[list[CustomerTag]]:
    tags = {tag.name.lower(): tag for tag in tags_get_or_create(names=[name for names in names_of for name in names])}
    wanted: dict[tuple[int, int], int] = {}  # (customer, tag) -> the index of the first addition naming it
    for index, ((customer, _, _), names) in enumerate(zip(additions, names_of, strict=True)):
        for name in names:
            tag = tags.get(name.lower())
            if tag is not None:
                wanted.setdefault((customer.pk, tag.pk), index)
    added: list[list[CustomerTag]] = [[] for _ in additions]
    if not wanted:
        return added
    stamp = timezone.now()
    refs = [additions[index][2][:64] for index in wanted.values()]
    if connection.vendor == "postgresql":
        ct = CustomerTag._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {ct} (customer_id, tag_id, source, source_ref, added_by_id, added_at) "
                "SELECT customer_id, tag_id, %s, source_ref, NULL, %s "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS pair(customer_id, tag_id, source_ref) "
                "ON CONFLICT (customer_id, tag_id) DO NOTHING RETURNING id, customer_id, tag_id",
                [source, stamp, [pair[0] for pair in wanted], [pair[1] for pair in wanted], refs],
            )
            inserted = {(customer_id, tag_id): pk for pk, customer_id, tag_id in cursor.fetchall()}
    else:
        # SQLite serialises writers: the pairs not present now are the ones this insert adds.
        present = set(
            CustomerTag.objects.filter(
                customer_id__in={pair[0] for pair in wanted}, tag_id__in={pair[1] for pair in wanted}
            ).values_list("customer_id", "tag_id")
        )
        rows = [
            CustomerTag(customer_id=pair[0], tag_id=pair[1], source=source, source_ref=ref, added_at=stamp)
            for pair, ref in zip(wanted, refs, strict=True)
            if pair not in present
        ]
        CustomerTag.objects.bulk_create(rows)
        inserted = {(row.customer_id, row.tag_id): row.pk for row in rows}
    by_id = {tag.pk: tag for tag in tags.values()}
    for pair, index in wanted.items():
        if pair in inserted:
            customer, _, ref = additions[index]
            row = CustomerTag(
                pk=inserted[pair],
                customer=customer,
                tag=by_id[pair[1]],
                source=source,
                source_ref=ref[:64],
                added_at=stamp,
            )
            added[index].append(row)
    rows_added = [row for rows in added for row in rows]
    if not rows_added:
        return added
    TagAudit.objects.bulk_create(
        TagAudit(
            customer_id=row.customer_id,
            tag_name=row.tag.name,
            action=TagAuditAction.ADDED,
            source=source,
            source_ref=row.source_ref,
            created_at=stamp,
        )
        for row in rows_added
    )
    _tag_added_announce(rows_added, source=source, stamp=stamp)
    return added


def _tag_added_announce(rows: list[CustomerTag], *, source: str, stamp: datetime) -> None:
    """The `customer.tag_added` events of rows added set-based, as `tags_add` writes them."""

    def payload(row: CustomerTag) -> dict[str, Any]:
        return {"customer_id": row.customer_id, "tag": row.tag.name, "source": source, "source_ref": row.source_ref}

    if domain_event_listened(TAG_ADDED):
        for row in rows:
            domain_event_emit(
                signal=signals.customer_tag_added,
                name=TAG_ADDED,
                customer=row.customer,
                payload=payload(row),
                cause=row.source_ref,
                sender=CustomerTag,
                tag=row.tag,
                customer_tag=row,
            )
        return
    # Nobody consumes them now: written processed at once (`domain_event_emit` with no consumer wanting it).
    events = DomainEvent.objects.bulk_create(
        DomainEvent(
            name=TAG_ADDED,
            customer=row.customer,
            payload=payload(row),
            cause=row.source_ref[:64],
            status=DomainEventStatus.PROCESSED,
            created_at=stamp,
            processed_at=stamp,
        )
        for row in rows
    )

    def announce() -> None:
        for event, row in zip(events, rows, strict=True):
            signals.customer_tag_added.send(
                sender=CustomerTag, event=event, customer=row.customer, tag=row.tag, customer_tag=row
            )

    transaction.on_commit(announce, robust=True)


@transaction.atomic
def tags_remove(
    *,
    customer: Customer,
    names: Iterable[str],
    source: str = TagSource.MANUAL,
    source_ref: str = "",
    actor: AbstractBaseUser | AnonymousUser | None = None,
) -> list[str]:
    """Remove tags from a customer; returns the names actually removed. Each sends `customer_tag_removed`."""
    lowered = [name.lower() for name in tag_names_clean(names)]
    rows = list(
        CustomerTag.objects.select_for_update()
        .filter(customer=customer)
        .annotate(lname=Lower("tag__name"))
        .filter(lname__in=lowered)
        .select_related("tag")
    )
    if not rows:
        return []
    CustomerTag.objects.filter(pk__in=[row.pk for row in rows]).delete()
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    TagAudit.objects.bulk_create(
        TagAudit(
            customer=customer,
            tag_name=row.tag.name,
            action=TagAuditAction.REMOVED,
            source=source,
            source_ref=source_ref[:64],
            actor_id=actor_id,
        )
        for row in rows
    )
    for row in rows:
        domain_event_emit(
            signal=signals.customer_tag_removed,
            name=TAG_REMOVED,
            customer=customer,
            payload={"customer_id": customer.pk, "tag": row.tag.name, "source": source, "source_ref": source_ref[:64]},
            cause=source_ref,
            sender=CustomerTag,
            tag_name=row.tag.name,
        )
    return [row.tag.name for row in rows]


# --- Set-based variants (bulk runs) ---------------------------------------------------------------------


def _tables() -> tuple[str, str, str, str, str]:
    return (
        CustomerTag._meta.db_table,
        Tag._meta.db_table,
        TagAudit._meta.db_table,
        Customer._meta.db_table,
        DomainEvent._meta.db_table,
    )


def _ids_subquery(customer_ids: Sequence[int]) -> tuple[str, list[Any]]:
    sql, params = Customer.objects.filter(pk__in=customer_ids).order_by().values("pk").query.sql_with_params()
    return sql, list(params)


@transaction.atomic
def tags_add_bulk(
    *,
    customer_ids: Sequence[int],
    names: Iterable[str],
    source_ref: str,
    source: str = TagSource.WORKFLOW,
    actor_id: int | None = None,
) -> int:
    """
    Add tags to many customers at once, ignoring the ones already present; every added tag is audited and,
    when some consumer listens to `customer.tag_added`, gets its outbox row (left pending for the outbox
    sweep: no per-customer signal). Returns the number of customer-tags actually added.
    PostgreSQL: ONE statement (data-modifying CTEs). Elsewhere: one insert plus one audit (+ outbox) insert.
    Tag names are taken literally: dynamic parameters are rendered by the caller.
    """
    tags = tags_get_or_create(names=names)
    if not tags or not customer_ids:
        return 0
    tag_ids = [tag.pk for tag in tags]
    announce = domain_event_listened(TAG_ADDED)
    if connection.vendor == "postgresql":
        return _tags_add_postgres(customer_ids, tag_ids, str(source), source_ref[:64], actor_id, announce)
    return _tags_add_portable(customer_ids, tag_ids, str(source), source_ref[:64], actor_id, announce)


def _tags_add_postgres(
    customer_ids: Sequence[int], tag_ids: list[int], source: str, source_ref: str, actor_id: int | None, announce: bool
) -> int:
    ct, tag_table, audit, customers, outbox = _tables()
    stamp = timezone.now()
    event_cte = ""
    event_params: list[Any] = []
    if announce:
        event_cte = (
            f", events AS (INSERT INTO {outbox} (name, customer_id, payload, cause, status, created_at) "
            "SELECT %s, a.customer_id, json_build_object('customer_id', a.customer_id, "
            "'tag', t.name, 'source', %s::text, 'source_ref', %s::text), %s, %s, %s "
            f"FROM added AS a JOIN {tag_table} AS t ON t.id = a.tag_id RETURNING 1)"
        )
        event_params = [TAG_ADDED, source, source_ref, source_ref, DomainEventStatus.PENDING.value, stamp]
    sql = (
        f"WITH added AS (INSERT INTO {ct} (customer_id, tag_id, source, source_ref, added_by_id, added_at) "
        f"SELECT c.id, t.id, %s, %s, %s, %s FROM {customers} AS c, {tag_table} AS t "
        "WHERE c.id = ANY(%s) AND t.id = ANY(%s) ON CONFLICT (customer_id, tag_id) DO NOTHING "
        "RETURNING customer_id, tag_id), "
        f"audit AS (INSERT INTO {audit} (customer_id, tag_name, action, source, source_ref, actor_id, created_at) "
        "SELECT a.customer_id, t.name, %s, %s, %s, %s, %s "
        f"FROM added AS a JOIN {tag_table} AS t ON t.id = a.tag_id RETURNING 1)"
        f"{event_cte} SELECT COUNT(*) FROM added"
    )
    params = [
        *(source, source_ref, actor_id, stamp, list(customer_ids), tag_ids),
        *(TagAuditAction.ADDED.value, source, source_ref, actor_id, stamp),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params + event_params)
        return cursor.fetchone()[0]


def _tags_add_portable(
    customer_ids: Sequence[int], tag_ids: list[int], source: str, source_ref: str, actor_id: int | None, announce: bool
) -> int:
    ct, tag_table, audit, customers, outbox = _tables()
    stamp = timezone.now()
    ids_sql, ids_params = _ids_subquery(customer_ids)
    tag_marks = ", ".join(["%s"] * len(tag_ids))
    # The rows this call added: its own source_ref and timestamp, among these customers and tags.
    added_rows = (
        f"FROM {ct} AS ct JOIN {tag_table} AS t ON t.id = ct.tag_id "
        f"WHERE ct.source_ref = %s AND ct.added_at = %s AND ct.tag_id IN ({tag_marks}) "
        f"AND ct.customer_id IN ({ids_sql})"
    )
    added_params = [source_ref, stamp, *tag_ids, *ids_params]
    with connection.cursor() as cursor:
        # The WHERE clause also keeps SQLite's parser from reading ON CONFLICT as a join constraint.
        cursor.execute(
            f"INSERT INTO {ct} (customer_id, tag_id, source, source_ref, added_by_id, added_at) "
            f"SELECT c.id, t.id, %s, %s, %s, %s FROM {customers} AS c, {tag_table} AS t "
            f"WHERE c.id IN ({ids_sql}) AND t.id IN ({tag_marks}) ON CONFLICT (customer_id, tag_id) DO NOTHING",
            [source, source_ref, actor_id, stamp, *ids_params, *tag_ids],
        )
        added = cursor.rowcount
        if not added:
            return 0
        cursor.execute(
            f"INSERT INTO {audit} (customer_id, tag_name, action, source, source_ref, actor_id, created_at) "
            f"SELECT ct.customer_id, t.name, %s, %s, %s, %s, %s {added_rows}",
            [TagAuditAction.ADDED.value, source, source_ref, actor_id, stamp, *added_params],
        )
        if announce:
            payload = (
                "json_object('customer_id', ct.customer_id, 'tag', t.name, 'source', ct.source, "
                "'source_ref', ct.source_ref)"
            )
            cursor.execute(
                f"INSERT INTO {outbox} (name, customer_id, payload, cause, status, created_at) "
                f"SELECT %s, ct.customer_id, {payload}, %s, %s, %s {added_rows}",
                [TAG_ADDED, source_ref, DomainEventStatus.PENDING.value, stamp, *added_params],
            )
    return added


@transaction.atomic
def tags_remove_bulk(
    *,
    customer_ids: Sequence[int],
    names: Iterable[str],
    source_ref: str,
    source: str = TagSource.WORKFLOW,
    actor_id: int | None = None,
) -> int:
    """
    Remove tags from many customers at once, auditing each removal. Returns the rows removed.
    PostgreSQL: ONE statement (DELETE ... RETURNING feeding the audit insert). Elsewhere: audit, then delete.
    """
    lowered = [name.lower() for name in tag_names_clean(names)]
    if not lowered or not customer_ids:
        return 0
    tag_ids = list(Tag.objects.annotate(lname=Lower("name")).filter(lname__in=lowered).values_list("pk", flat=True))
    if not tag_ids:
        return 0
    ct, tag_table, audit, _customers, outbox = _tables()
    stamp = timezone.now()
    removed = TagAuditAction.REMOVED.value
    audit_columns = "(customer_id, tag_name, action, source, source_ref, actor_id, created_at)"
    announce = domain_event_listened(TAG_REMOVED)
    outbox_columns = "(name, customer_id, payload, cause, status, created_at)"
    event_values: list[Any] = [
        TAG_REMOVED,
        str(source),
        source_ref[:64],
        source_ref[:64],
        DomainEventStatus.PENDING.value,
        stamp,
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            event_cte = ""
            if announce:
                event_cte = (
                    f", events AS (INSERT INTO {outbox} {outbox_columns} "
                    "SELECT %s, customer_id, json_build_object('customer_id', customer_id, 'tag', name, "
                    "'source', %s::text, 'source_ref', %s::text), %s, %s, %s FROM removed RETURNING 1)"
                )
            cursor.execute(
                f"WITH removed AS (DELETE FROM {ct} AS ct USING {tag_table} AS t WHERE t.id = ct.tag_id "
                "AND ct.customer_id = ANY(%s) AND ct.tag_id = ANY(%s) RETURNING ct.customer_id, t.name), "
                f"audit AS (INSERT INTO {audit} {audit_columns} "
                f"SELECT customer_id, name, %s, %s, %s, %s, %s FROM removed RETURNING 1){event_cte} "
                "SELECT COUNT(*) FROM removed",
                [list(customer_ids), tag_ids, removed, str(source), source_ref[:64], actor_id, stamp]
                + (event_values if announce else []),
            )
            return cursor.fetchone()[0]
        ids_sql, ids_params = _ids_subquery(customer_ids)
        tag_marks = ", ".join(["%s"] * len(tag_ids))
        cursor.execute(
            f"INSERT INTO {audit} {audit_columns} "
            f"SELECT ct.customer_id, t.name, %s, %s, %s, %s, %s FROM {ct} AS ct "
            f"JOIN {tag_table} AS t ON t.id = ct.tag_id WHERE ct.tag_id IN ({tag_marks}) "
            f"AND ct.customer_id IN ({ids_sql})",
            [removed, str(source), source_ref[:64], actor_id, stamp, *tag_ids, *ids_params],
        )
        if announce:
            cursor.execute(
                f"INSERT INTO {outbox} {outbox_columns} "
                "SELECT %s, ct.customer_id, json_object('customer_id', ct.customer_id, 'tag', t.name, "
                f"'source', %s, 'source_ref', %s), %s, %s, %s FROM {ct} AS ct "
                f"JOIN {tag_table} AS t ON t.id = ct.tag_id WHERE ct.tag_id IN ({tag_marks}) "
                f"AND ct.customer_id IN ({ids_sql})",
                [*event_values, *tag_ids, *ids_params],
            )
        cursor.execute(
            f"DELETE FROM {ct} WHERE tag_id IN ({tag_marks}) AND customer_id IN ({ids_sql})",
            [*tag_ids, *ids_params],
        )
        return cursor.rowcount


@transaction.atomic
def tag_create(*, name: str, description: str = "") -> tuple[Tag, bool]:
    """Create a tag, or return the existing one with this name (case-insensitive). Returns (tag, created)."""
    names = tag_names_clean([name])
    if not names:
        raise ValidationError({"name": "A tag needs a name."})
    existing = Tag.objects.annotate(lname=Lower("name")).filter(lname=names[0].lower()).first()
    if existing is not None:
        return existing, False
    return Tag.objects.create(name=names[0], description=description), True


@transaction.atomic
def product_tags_set(*, product: Product, names: Iterable[str]) -> list[Tag]:
    """Make the product's tags exactly `names`."""
    tags = tags_get_or_create(names=names)
    ProductTag.objects.filter(product=product).exclude(tag__in=tags).delete()
    ProductTag.objects.bulk_create([ProductTag(product=product, tag=tag) for tag in tags], ignore_conflicts=True)
    return tags
