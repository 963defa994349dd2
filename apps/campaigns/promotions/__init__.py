"""
Promotions: campaigns with incentives (effects), codes, validation rules, stacking, budgets as limits,
reservations and redemptions, and the kill switch. A sub-package of `campaigns` (DESIGN.md).

Modules: `choices`, `models`, `pricing` (the pure discount computation in minor units), `eligibility`
(why a campaign or code does or does not apply), `selectors`, `services` (writes: codes, reserve,
redeem, rollback, kill switch), `api/`, `admin`.
"""
