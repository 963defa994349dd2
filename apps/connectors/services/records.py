"""What we know of each shop record: ids on both sides, the newest version applied, the shop's last tags."""

from datetime import datetime

from django.db import transaction

from ..models import RemoteRecord, StoreConnection


def record_locked(*, connection: StoreConnection, kind: str, remote_id: str) -> RemoteRecord:
    """
    The record's row, created if new, locked until the caller's transaction ends: deliveries about the same
    shop record (orders/create and orders/paid arriving together) are applied one after the other.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_locked must run inside a transaction")
    RemoteRecord.objects.bulk_create(
        [RemoteRecord(connection=connection, kind=kind, remote_id=remote_id)], ignore_conflicts=True
    )
    return RemoteRecord.objects.select_for_update().get(connection=connection, kind=kind, remote_id=remote_id)


def record_is_stale(record: RemoteRecord, updated_at: datetime | None) -> bool:
    """True when a newer version of the record was already applied (deliveries arrive in any order)."""
    return bool(updated_at and record.remote_updated_at and updated_at < record.remote_updated_at)


def record_applied(record: RemoteRecord, *, local_id: int | None, updated_at: datetime | None) -> None:
    """Remember which local row the record maps to and the version just applied."""
    fields = ["updated_at"]
    if local_id is not None and record.local_id != local_id:
        record.local_id = local_id
        fields.append("local_id")
    if updated_at and (record.remote_updated_at is None or updated_at > record.remote_updated_at):
        record.remote_updated_at = updated_at
        fields.append("remote_updated_at")
    record.save(update_fields=fields)
