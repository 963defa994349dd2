"""
Built-in fraud checks, ready to enable: installed disabled by the migration that creates the fraud tables
(and again by `fraud_builtin_install`); a marketer switches them on, tunes their thresholds or copies them.
Self-referral by the same customer, e-mail (Gmail dots and +tags) or phone is refused by loyalty itself.
"""

from typing import Any

BUILTIN_RULES: list[dict[str, Any]] = [
    {
        "builtin_key": "self_referral_ip_device",
        "name": "Self-referral from the same IP address or device",
        "description": "The referee signed up from the referrer's IP address or device: the referral is refused.",
        "trigger": "referral.registered",
        "condition": {
            "any": [
                {"field": "referral.same_ip", "op": "eq", "value": True},
                {"field": "referral.same_device", "op": "eq", "value": True},
            ]
        },
        "action": "refuse_referral",
    },
    {
        "builtin_key": "disposable_email",
        "name": "Disposable e-mail domain at sign-up",
        "description": "The address is on the maintained list of disposable e-mail domains: the customer is flagged.",
        "trigger": "customer.registered",
        "condition": {"field": "fraud.email_disposable", "op": "eq", "value": True},
        "action": "flag",
    },
    {
        "builtin_key": "referral_burst",
        "name": "Referral burst (5 referrals in an hour)",
        "description": "A member refers 5 friends or more within an hour: the referral bonus is held for review.",
        "trigger": "referral.registered",
        "condition": {"field": "fraud.referrals", "window": {"hours": 1}, "op": "gte", "value": 5},
        "action": "hold_points",
    },
    {
        "builtin_key": "referral_ip_burst",
        "name": "Referrals from one IP address (3 in an hour)",
        "description": "3 referrals or more from one IP address within an hour: the referral is refused.",
        "trigger": "referral.registered",
        "condition": {"field": "fraud.referrals_same_ip", "window": {"hours": 1}, "op": "gte", "value": 3},
        "action": "refuse_referral",
    },
    {
        "builtin_key": "signup_ip_burst",
        "name": "Sign-ups from one IP address (5 in an hour)",
        "description": "5 sign-ups or more from one IP address within an hour: the customer is flagged.",
        "trigger": "customer.registered",
        "condition": {"field": "fraud.signups_same_ip", "window": {"hours": 1}, "op": "gte", "value": 5},
        "action": "flag",
    },
    {
        "builtin_key": "abnormal_redemptions",
        "name": "Abnormal redemptions (5 codes in an hour from one customer or IP)",
        "description": (
            "A customer, or one IP address, redeems 5 promotion codes or more within an hour: the customer is flagged."
        ),
        "trigger": "voucher.redeemed",
        "condition": {
            "any": [
                {"field": "fraud.codes_redeemed", "window": {"hours": 1}, "op": "gte", "value": 5},
                {"field": "fraud.codes_redeemed_same_ip", "window": {"hours": 1}, "op": "gte", "value": 5},
            ]
        },
        "action": "flag",
    },
    {
        "builtin_key": "order_velocity",
        "name": "Order velocity (5 orders in an hour)",
        "description": "5 orders or more within an hour: the order's points are held for review.",
        "trigger": "order.created",
        "condition": {"field": "fraud.orders", "window": {"hours": 1}, "op": "gte", "value": 5},
        "action": "hold_points",
    },
]
