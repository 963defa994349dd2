"""
The global kill switch over every incentive: promotion campaigns, loyalty earning, reward redemption and the
incentive actions of workflows (award points, issue voucher). Its state is one `GlobalKillSwitch` row in this
bottom app, so every layer reads it without importing a higher one.

Readers ask at the moment they act (one primary-key read, no cache): the very next request after a change
obeys it, in every process. Turning it off needs nothing else: nothing is queued or parked while it is on —
what was refused stays refused, and the next request is served normally.

The campaigns app wraps `global_kill_switch_set` (`apps.campaigns.promotions.services.kill_switch_set`) to also
announce the change as the `promotions.kill_switch` trigger, so a workflow can alert the team.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from loyalty_site.lib.errors import DomainError

from .audit import audit_record, audit_snapshot
from .models import GlobalKillSwitch, KillSwitchChange

REFUSAL_CODE = "kill_switch"
REFUSAL_MESSAGE = "every incentive is switched off (global kill switch)"


def kill_switch_state() -> GlobalKillSwitch:
    """The current switch (an unsaved "off" row before anyone ever touched it)."""
    return GlobalKillSwitch.objects.order_by("pk").first() or GlobalKillSwitch()


def kill_switch_is_on() -> bool:
    return GlobalKillSwitch.objects.filter(is_on=True).exists()


def kill_switch_check(*, path: str = "") -> None:
    """Raise `DomainError(code="kill_switch")` while the switch is on (services call it before giving anything)."""
    if kill_switch_is_on():
        raise DomainError(f"Refused: {REFUSAL_MESSAGE}.", path=path, code=REFUSAL_CODE)


@transaction.atomic
def global_kill_switch_set(*, on: bool, reason: str = "", user: Any = None, actor: str = "") -> GlobalKillSwitch:
    """Turn the switch on (a reason is required) or off; audited (who, when, why) in the same transaction."""
    reason = " ".join(reason.split())[:255]
    if on and not reason:
        raise ValidationError({"reason": "Say why the kill switch goes on."})
    current = GlobalKillSwitch.objects.select_for_update().order_by("pk").first()
    if current is None:
        current = GlobalKillSwitch.objects.create()
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    now = timezone.now()
    before = audit_snapshot(current, fields=["is_on", "reason"])
    current.is_on = on
    current.reason = reason if on else ""
    current.changed_at = now
    current.changed_by_id = user_id
    current.actor = actor[:150]
    current.save()
    KillSwitchChange.objects.create(turned_on=on, reason=reason, user_id=user_id, actor=actor[:150], created_at=now)
    audit_record(action="kill_switch_on" if on else "kill_switch_off", obj=current, before=before, user=user)
    return current
