"""The permission names of sensitive operations (see `models.Capability`), spelled once."""

AWARD_POINTS = "platform.award_points"
DEDUCT_POINTS = "platform.deduct_points"
REDEEM_FOR_CUSTOMER = "platform.redeem_for_customer"
CONFIRM_REDEMPTION = "platform.confirm_redemption"
ACTIVATE_WORKFLOW = "platform.activate_workflow"
CAMPAIGN_KILL_SWITCH = "platform.campaign_kill_switch"
MANAGE_API_TOKENS = "platform.manage_api_tokens"
