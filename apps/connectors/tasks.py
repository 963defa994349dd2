"""Thin tasks of the store connectors: take ids, call one service; safe to run twice."""

from loyalty_site.lib.tasks import retry_transient

from .services import deliveries


def delivery_process_task(delivery_id: int) -> str | None:
    """Apply one stored webhook delivery (a processed one is left alone)."""
    return retry_transient(
        lambda: deliveries.delivery_process(delivery_id=delivery_id), what=f"connectors: delivery {delivery_id}"
    )


def deliveries_retry_task() -> int:
    """Periodic: re-drive failed deliveries whose next attempt is due and received ones left behind."""
    return deliveries.deliveries_retry_due()


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "connectors: retry deliveries",
        "func": "apps.connectors.tasks.deliveries_retry_task",
        "cron": "* * * * *",
    },
]
