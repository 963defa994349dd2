"""
Domain signals of the loyalty app, sent once after commit through `domain_event_emit` with `event`
(the outbox row) and `customer`, plus the objects named below. Receivers only record and enqueue.
"""

from django.dispatch import Signal

member_joined = Signal()  # membership
referral_registered = Signal()  # referral, membership (the referee's)
points_expiring = Signal()  # membership, points, expires_at
tier_changed = Signal()  # membership, old_tier, new_tier
points_changed = Signal()  # membership (the ledger moved: earn, spend, expire, adjust, activation, hold)

TRIGGER_NAMES: dict[Signal, str] = {
    member_joined: "member.joined",
    referral_registered: "referral.registered",
    points_expiring: "loyalty.points_expiring",
    tier_changed: "loyalty.tier_changed",
    points_changed: "loyalty.points_changed",
}
