"""
Fraud prevention: fraud rules written in the shared condition language plus velocity fields, evaluated as an
outbox consumer on sign-ups, orders, referrals and redemptions, with actions (flag, hold points, block, refuse
the referral, fire the kill switch, pause a campaign), and the review queue of the cases they open.
A sub-package of `campaigns` (DESIGN.md); the customer status lives in `customers`, the point holds in `loyalty`.

Modules: `choices`, `models`, `fields` (velocity and identity fields of the catalog), `services` (rules saved
with validation, evaluation, review), `consumer` (the outbox consumer), `builtin` (checks ready to enable),
`admin`, `views` (the review queue page).
"""
