"""Write services of the loyalty app (see each module); import from here."""

from .cockpit_links import cockpit_links_revoke, cockpit_links_send, referral_name_set
from .earning import event_points_earn, order_points_earn, order_points_plan, order_points_reverse
from .jobs import points_activate_due, points_expire_due, points_expiring_notify
from .ledger import (
    customer_blocked_refuse,
    member_join,
    membership_for,
    points_award,
    points_deduct,
    points_earn,
    points_hold,
    points_hold_reject,
    points_hold_release,
    program_default,
)
from .referrals import referral_qualify, referral_refuse, referral_register, referral_reward, referral_self_reason
from .rewards import (
    redemption_find,
    redemption_fulfilment_set,
    redemption_rollback,
    redemption_use,
    reward_price,
    reward_redeem,
    reward_validate,
    rewards_available,
)
from .rules import RULE_FIELDS, earning_rule_conditions_errors, earning_rule_create, earning_rule_update
from .tiers import (
    tier_ladder_errors,
    tier_ladder_moves,
    tier_recalculate,
    tier_save,
    tier_set,
    tiers_recalculate_all,
)

__all__ = [
    "RULE_FIELDS",
    "cockpit_links_revoke",
    "cockpit_links_send",
    "customer_blocked_refuse",
    "earning_rule_conditions_errors",
    "earning_rule_create",
    "earning_rule_update",
    "event_points_earn",
    "member_join",
    "membership_for",
    "order_points_earn",
    "order_points_plan",
    "order_points_reverse",
    "points_activate_due",
    "points_award",
    "points_deduct",
    "points_earn",
    "points_expire_due",
    "points_expiring_notify",
    "points_hold",
    "points_hold_reject",
    "points_hold_release",
    "program_default",
    "redemption_find",
    "redemption_fulfilment_set",
    "redemption_rollback",
    "redemption_use",
    "referral_name_set",
    "referral_qualify",
    "referral_refuse",
    "referral_register",
    "referral_reward",
    "referral_self_reason",
    "reward_price",
    "reward_redeem",
    "reward_validate",
    "rewards_available",
    "tier_ladder_errors",
    "tier_ladder_moves",
    "tier_recalculate",
    "tier_save",
    "tier_set",
    "tiers_recalculate_all",
]
