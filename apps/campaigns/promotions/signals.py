"""
Domain signals of promotions, sent once after commit through the outbox (`domain_event_emit`) with `event`
and `customer`; the automations engine reads the outbox rows by name (the triggers of `automation.py`).
"""

from django.dispatch import Signal

voucher_published = Signal()  # code
voucher_redeemed = Signal()  # redemption
voucher_expiring = Signal()  # code
budget_threshold = Signal()  # limit, percent
kill_switch_changed = Signal()  # settings
codes_low = Signal()  # campaign

TRIGGER_NAMES: dict[Signal, str] = {
    voucher_published: "voucher.published",
    voucher_redeemed: "voucher.redeemed",
    voucher_expiring: "voucher.expiring",
    budget_threshold: "campaign.budget_threshold",
    kill_switch_changed: "promotions.kill_switch",
    codes_low: "campaign.codes_low",
}
