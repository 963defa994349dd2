"""Thin tasks of the store connectors: take ids, call one service; safe to run twice."""

from loyalty_site.lib.tasks import retry_transient

from .services import deliveries, push


def delivery_process_task(delivery_id: int) -> str | None:
    """Apply one stored webhook delivery (a processed one is left alone)."""
    return retry_transient(
        lambda: deliveries.delivery_process(delivery_id=delivery_id), what=f"connectors: delivery {delivery_id}"
    )


def deliveries_retry_task() -> int:
    """Periodic: re-drive failed deliveries whose next attempt is due and received ones left behind."""
    return deliveries.deliveries_retry_due()


def push_send_task(push_id: int) -> str | None:
    """Send one queued push now (an unsubscribe); nothing when it was sent, given up or is not due."""
    return retry_transient(lambda: push.push_send_one(push_id=push_id), what=f"connectors: push {push_id}")


def pushes_run_task() -> dict[str, int]:
    """Periodic: queue the workflow tags and loyalty state to push, then send every due push (retries too)."""
    return push.pushes_run()


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "connectors: retry deliveries",
        "func": "apps.connectors.tasks.deliveries_retry_task",
        "cron": "* * * * *",
    },
    {
        "name": "connectors: push to shops",
        "func": "apps.connectors.tasks.pushes_run_task",
        "cron": "* * * * *",
    },
]
