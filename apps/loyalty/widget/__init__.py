"""
The storefront widget (issue 17): one `<script>` on any shop page shows a launcher with the visitor's balance,
tier progress, rewards and referral link, and redeems a reward after a confirmation step. The shop's backend
gets a short-lived signed customer token from the API (`POST /api/v1/loyalty/widget-tokens/`, scope `widget`);
the script calls `/w/api/…` with it, from the shop origins listed in LOYALTY_WIDGET_ALLOWED_ORIGINS only.
"""
