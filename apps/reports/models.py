"""
Reports: daily rollup tables that every dashboard and report reads instead of the raw tables.

`DailyFigures` holds one row per local day (TIME_ZONE) of additive figures (orders, revenue, points,
rewards, discounts, tags); `DailyCampaign`, `DailyWorkflow` and `DailyTierMove` break some of them down.
Figures that are a state rather than a flow — segment sizes, tier distribution, active members — are
snapshots taken for the day of each refresh (`DailySegment`, `DailyTier`, `DailyFigures.active_members_30d`);
cohorts and the expiry forecast are small tables recomputed whole. The refresh (services.rollups_refresh)
recomputes only the days whose source rows changed since the previous refresh; `reports_rebuild`
recomputes everything. Money is in the shop currency (the sources' `*_shop` columns), never mixed.
"""

from django.db import models

from apps.customers.models import MoneyField


class DailyFigures(models.Model):
    """The additive figures of one local day (orders by the day they were placed, points by entry day, …)."""

    day = models.DateField(unique=True)
    orders_members = models.PositiveIntegerField(default=0, help_text="Orders placed while the customer was a member")
    orders_non_members = models.PositiveIntegerField(default=0)
    revenue_members = MoneyField(help_text="Net of refunds, cancelled orders excluded, shop currency")
    revenue_non_members = MoneyField()
    refunded = MoneyField(help_text="Refunded so far on the orders placed that day (shop currency)")
    new_customers = models.PositiveIntegerField(default=0)
    new_members = models.PositiveIntegerField(default=0)
    points_issued = models.BigIntegerField(default=0, help_text="Earned (pending or active)")
    points_redeemed = models.BigIntegerField(default=0, help_text="Spent on rewards, less rolled back")
    points_expired = models.BigIntegerField(default=0)
    points_reversed = models.BigIntegerField(default=0, help_text="Taken back by refunds and cancellations")
    active_delta = models.BigIntegerField(default=0, help_text="Net change of spendable points")
    pending_delta = models.BigIntegerField(default=0)
    debt_delta = models.BigIntegerField(default=0)
    rewards_redeemed = models.PositiveIntegerField(default=0, help_text="Loyalty rewards issued, not rolled back")
    reward_cost = MoneyField(help_text="Money value of those rewards (fixed discounts, gift cards, cash back)")
    campaign_redemptions = models.PositiveIntegerField(default=0)
    discount_cost = MoneyField(help_text="Discounts given by promotion redemptions, less rolled back")
    campaign_order_value = MoneyField(help_text="Order value of promotion redemptions, less rolled back")
    tags_added = models.PositiveIntegerField(default=0)
    active_members_30d = models.PositiveIntegerField(
        null=True, blank=True, help_text="Snapshot: members with an order in the 30 days up to this day"
    )
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["day"]
        verbose_name = "daily figures"
        verbose_name_plural = "dashboard and reports"
        permissions = [("view_reports", "Can view the dashboard and reports")]

    def __str__(self) -> str:
        return str(self.day)


class DailyCampaign(models.Model):
    """One campaign's promotion redemptions on one day (by redemption day)."""

    day = models.DateField()
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    redemptions = models.PositiveIntegerField(default=0)
    discount = MoneyField()
    order_value = MoneyField()

    class Meta:
        ordering = ["day", "campaign"]
        constraints = [models.UniqueConstraint(fields=["day", "campaign"], name="reports_daily_campaign_uniq")]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id}"


class DailyWorkflow(models.Model):
    """One workflow's runs started on one day, by outcome."""

    day = models.DateField()
    workflow = models.ForeignKey("automations.Workflow", on_delete=models.CASCADE, related_name="+")
    succeeded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Skipped for another reason than the holdout")
    held_out = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Failed or dead")
    in_progress = models.PositiveIntegerField(default=0, help_text="Pending, running or waiting")

    class Meta:
        ordering = ["day", "workflow"]
        constraints = [models.UniqueConstraint(fields=["day", "workflow"], name="reports_daily_workflow_uniq")]

    def __str__(self) -> str:
        return f"{self.day} workflow {self.workflow_id}"


class DailyBranch(models.Model):
    """Runs of one workflow started on one day that went through one branch of a condition or an A/B split."""

    day = models.DateField()
    workflow = models.ForeignKey("automations.Workflow", on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=255)
    step_id = models.CharField(max_length=64, blank=True)
    branch = models.CharField(max_length=40, blank=True)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workflow", "day"], name="reports_branch_wf_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} workflow {self.workflow_id} {self.path} → {self.branch}: {self.runs}"


class DailyTierMove(models.Model):
    """Members who moved from one tier to another on one day (from loyalty.tier_changed events)."""

    day = models.DateField()
    old_tier = models.CharField(max_length=64, blank=True)
    new_tier = models.CharField(max_length=64, blank=True)
    members = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "old_tier", "new_tier"]
        constraints = [
            models.UniqueConstraint(fields=["day", "old_tier", "new_tier"], name="reports_daily_tier_move_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.old_tier} → {self.new_tier}"


class DailySegment(models.Model):
    """Snapshot: a segment's size on a day (taken by the refresh of that day)."""

    day = models.DateField()
    segment = models.ForeignKey("campaigns.Segment", on_delete=models.CASCADE, related_name="+")
    size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "segment"]
        constraints = [models.UniqueConstraint(fields=["day", "segment"], name="reports_daily_segment_uniq")]

    def __str__(self) -> str:
        return f"{self.day} segment {self.segment_id}: {self.size}"


class DailyTier(models.Model):
    """Snapshot: members per tier on a day (no tier = empty name)."""

    day = models.DateField()
    program = models.ForeignKey("loyalty.Program", on_delete=models.CASCADE, related_name="+")
    tier_name = models.CharField(max_length=64, blank=True)
    tier_rank = models.IntegerField(default=-1)
    members = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "program", "tier_rank"]
        constraints = [models.UniqueConstraint(fields=["day", "program", "tier_name"], name="reports_daily_tier_uniq")]

    def __str__(self) -> str:
        return f"{self.day} {self.tier_name or 'no tier'}: {self.members}"


class CohortMonth(models.Model):
    """Customers by the month of their first order, and how many of them ordered again (recomputed whole)."""

    month = models.DateField(unique=True, help_text="First day of the month of the first order")
    customers = models.PositiveIntegerField(default=0)
    repeaters = models.PositiveIntegerField(default=0, help_text="Customers with two orders or more")

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.repeaters}/{self.customers}"


class ExpiryMonth(models.Model):
    """Active points that will expire in a month (the expiry forecast; recomputed whole)."""

    month = models.DateField(unique=True)
    points = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.points}"


class RollupState(models.Model):
    """The one row that remembers when the last refresh started (its watermark) and how it went."""

    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_days = models.PositiveIntegerField(default=0, help_text="Days recomputed by the last refresh")
    last_seconds = models.FloatField(default=0)

    class Meta:
        verbose_name = "rollup state"

    def __str__(self) -> str:
        return f"refreshed {self.last_finished_at}"


class RunConversion(models.Model):
    """
    One workflow event run in the lift's audience (admitted, or skipped as held out): its group and when it
    started. The lift reads this and `RunConversionDay` instead of the raw runs and orders.
    """

    run = models.OneToOneField("automations.WorkflowRun", primary_key=True, on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey("automations.Workflow", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    day = models.DateField(null=True, blank=True, help_text="Local day of created_at")
    held_out = models.BooleanField(default=False)
    branch = models.CharField(max_length=40, blank=True, help_text="The A/B branch taken (the workflow's first split)")
    exposure = models.BooleanField(
        default=False,
        help_text="Counts in the lift: no exposure of this customer to the workflow in the 90 days before",
    )

    class Meta:
        indexes = [
            models.Index(fields=["workflow", "created_at"], name="reports_conv_workflow_idx"),
            models.Index(fields=["workflow", "customer", "created_at"], name="reports_conv_wf_cust_idx"),
            models.Index(fields=["workflow", "day"], name="reports_conv_wf_day_idx"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id}: {'held out' if self.held_out else self.branch or 'treated'}"


class RunConversionDay(models.Model):
    """The orders a run's customer placed on the Nth day after the run (N = whole days rounded up, 1 to 90)."""

    conversion = models.ForeignKey(RunConversion, on_delete=models.CASCADE, related_name="days")
    offset = models.PositiveSmallIntegerField(help_text="Day after the run: 1 = within 24 hours")
    orders = models.PositiveIntegerField(default=0)
    revenue = MoneyField(help_text="Net of refunds, cancelled orders excluded, shop currency")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversion", "offset"], name="reports_conv_day_unique")]

    def __str__(self) -> str:
        return f"run {self.conversion_id} day {self.offset}: {self.orders}"


class LiftDay(models.Model):
    """
    The lift pre-aggregated per day of exposure and per group (held out, or the A/B branch / treated): on offset 0
    the number of exposures; on offset N (1 to 90) what happened on the Nth day after them — exposures whose first
    order fell on that day (`converters`), orders, net revenue, and Σ (R(N)² - R(N-1)²) over the exposures, R(N)
    being an exposure's revenue up to day N. Summing offsets 1…W gives, for a window of W days, the converters,
    the revenue and the sum of squared revenue per exposure (for the interval) — so a report over any period and
    window reads at most 91 rows per day and group, whatever the number of customers.
    """

    day = models.DateField(help_text="Local day of the exposures")
    held_out = models.BooleanField(default=False)
    branch = models.CharField(max_length=40, blank=True)
    offset = models.PositiveSmallIntegerField(help_text="0: the exposures; N: the Nth day after them")
    exposures = models.PositiveIntegerField(default=0)
    converters = models.PositiveIntegerField(default=0, help_text="Exposures whose first order is on this day")
    orders = models.PositiveIntegerField(default=0)
    revenue = MoneyField(help_text="Net of refunds, cancelled orders excluded, shop currency")
    revenue_squares = models.FloatField(default=0, help_text="Σ R(N)² - R(N-1)² (for the revenue interval)")

    class Meta:
        abstract = True


class DailyWorkflowLift(LiftDay):
    """One workflow's lift per day of exposure, group and day after (see `LiftDay`)."""

    workflow = models.ForeignKey("automations.Workflow", on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["workflow", "day"], name="reports_wf_lift_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} workflow {self.workflow_id} {self.branch or self.held_out} +{self.offset}"


class DailyCampaignLift(LiftDay):
    """One campaign's lift per day of exposure (code published or held out), group and day after."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["campaign", "day"], name="reports_cp_lift_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id} {'held out' if self.held_out else 'treated'} +{self.offset}"


class CampaignConversion(models.Model):
    """
    A customer's exposure to a campaign: the first code published to them, or the first time the campaign held
    them out (whichever came first). The campaign's lift reads this and its day rows, like `RunConversion`.
    """

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(help_text="When the customer was exposed (code published or held out)")
    day = models.DateField()
    held_out = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "customer"], name="reports_camp_conv_uniq")]
        indexes = [
            models.Index(fields=["campaign", "day"], name="reports_camp_conv_day_idx"),
            models.Index(fields=["customer", "created_at"], name="reports_camp_conv_cust_idx"),
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} customer {self.customer_id}: {'held out' if self.held_out else 'treated'}"


class CampaignConversionDay(models.Model):
    """The orders a campaign's exposed customer placed on the Nth day after the exposure (1 to 90)."""

    conversion = models.ForeignKey(CampaignConversion, on_delete=models.CASCADE, related_name="days")
    offset = models.PositiveSmallIntegerField()
    orders = models.PositiveIntegerField(default=0)
    revenue = MoneyField(help_text="Net of refunds, cancelled orders excluded, shop currency")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversion", "offset"], name="reports_camp_conv_day_uniq")]

    def __str__(self) -> str:
        return f"exposure {self.conversion_id} day {self.offset}: {self.orders}"


class DailyMessages(models.Model):
    """Messages sent per day (by `sent_at`) by a workflow or a campaign, per channel (from messaging's deliveries)."""

    day = models.DateField()
    workflow = models.ForeignKey("automations.Workflow", null=True, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey("campaigns.Campaign", null=True, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16)
    sent = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="reports_msgs_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}: {self.sent}"


class Touch(models.TextChoices):
    """What an order is attributed to: a message sent, or a tag added by a workflow."""

    MESSAGE = "message", "Message"
    TAG = "tag", "Tag"


class DailyMessageOrders(models.Model):
    """
    Orders attributed to a message or a workflow's tag, per day the order was placed: each order (not cancelled)
    goes to the last touch of its customer before it (a message sent or a tag added by a workflow run, at most 90
    days before) — to that touch's workflow or campaign, once — with the whole days between them rounded up
    (`offset`), so any window of 1 to 90 days reads the rows with offset ≤ W.
    """

    day = models.DateField(help_text="Local day the order was placed")
    workflow = models.ForeignKey("automations.Workflow", null=True, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey("campaigns.Campaign", null=True, on_delete=models.CASCADE, related_name="+")
    touch = models.CharField(max_length=8, choices=Touch.choices, default=Touch.MESSAGE)
    offset = models.PositiveSmallIntegerField(help_text="Day after the touch: 1 = within 24 hours")
    orders = models.PositiveIntegerField(default=0)
    revenue = MoneyField(help_text="Net of refunds, shop currency")

    class Meta:
        indexes = [models.Index(fields=["day"], name="reports_msg_orders_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} +{self.offset}: {self.orders}"
