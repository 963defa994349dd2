from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.platform.audit import AuditedModelAdmin
from apps.platform.capabilities import AWARD_POINTS, DEDUCT_POINTS
from apps.tagging.selectors import condition_suggestions
from loyalty_site.lib.errors import DomainError
from loyalty_site.lib.forms import ConditionField
from loyalty_site.lib.money import money_format, shop_currency

from . import services
from .choices import FulfilmentStatus, RuleKind, TierBasis
from .cockpit import cockpit_path
from .forms import AdjustForm, TierForm, TierInlineForm, TierInlineFormSet
from .models import (
    Balance,
    EarningRule,
    EarningRuleLimit,
    LedgerEntry,
    Membership,
    PointAllocation,
    PointLot,
    Program,
    Redemption,
    Referral,
    Reward,
    RewardTierPrice,
    Tier,
)
from .services.rules import EVENT_SCOPES, ORDER_SCOPES

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class TierInline(admin.TabularInline):
    model = Tier
    form = TierInlineForm
    formset = TierInlineFormSet
    extra = 0


@admin.register(Program)
class ProgramAdmin(AuditedModelAdmin, admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "currency", "points_per_unit", "pending_days", "expiry_policy"]
    list_filter = ["is_active", "expiry_policy", "return_policy"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TierInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "auto_enroll", "currency"]}),
        (
            "Earning",
            {
                "fields": [
                    "points_per_unit",
                    "currency_earning_rates",
                    "rounding",
                    "earn_after_discounts",
                    "earn_on_shipping",
                    "min_order_total",
                ],
                "description": "Amounts (points per unit, minimum order total, tier thresholds by spend) are in "
                "the shop currency (SHOP_CURRENCY); orders in other currencies are converted at their own rate "
                "unless a per-currency earning rate is set.",
            },
        ),
        ("Pending and expiry", {"fields": ["pending_days", "expiry_policy", "expiry_days", "expiry_notice_days"]}),
        ("Refunds", {"fields": ["return_policy"]}),
        ("Tiers", {"fields": ["tier_basis", "tier_window", "tier_window_days", "tier_downgrade", "tier_grace_days"]}),
        ("Referrals", {"fields": ["referrer_bonus", "referee_bonus", "referral_cap", "referral_requires_purchase"]}),
    ]


@admin.register(Tier)
class TierAdmin(AuditedModelAdmin, admin.ModelAdmin):
    """Tiers are saved through `tier_save` (the ladder is checked); moving members needs a confirmation."""

    audit_saves = False  # `tier_save` audits; deletions are audited by the mixin
    form = TierForm
    list_display = ["name", "program", "rank", "threshold_display", "multiplier", "expiry_days_override"]
    list_filter = ["program"]
    search_fields = ["name"]
    list_select_related = ["program"]

    @admin.display(description="Threshold", ordering="threshold")
    def threshold_display(self, tier: Tier) -> str:
        if tier.program.tier_basis == TierBasis.AMOUNT_SPENT:
            return f"{money_format(tier.threshold, shop_currency())} spent"
        return f"{tier.threshold.normalize():f} points"

    def save_model(self, request: HttpRequest, obj: Tier, form: Any, change: bool) -> None:
        services.tier_save(tier=obj)


class EarningRuleForm(forms.ModelForm):
    # Which fields the editor offers follows the rule's kind (an event rule sees the event, others the order).
    conditions = ConditionField(
        scopes=ORDER_SCOPES,
        scopes_from={
            "field": "kind",
            "map": {RuleKind.FIXED_EVENT.value: list(EVENT_SCOPES)},
            "default": list(ORDER_SCOPES),
        },
        suggestions=condition_suggestions,
        empty_label="No condition: the rule applies to every order (or event) it is for.",
        help_text="When the rule applies, on top of its kind.",
    )

    class Meta:
        model = EarningRule
        fields = [
            "program",
            "name",
            "kind",
            "is_active",
            "points",
            "multiplier",
            "event_name",
            "product_tag",
            "conditions",
            "tiers",
            "starts_at",
            "ends_at",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()  # (ModelForm.clean returns cleaned_data; the stubs allow None)
        cleaned = self.cleaned_data
        if "conditions" in cleaned and "kind" in cleaned:
            cleaned["conditions"] = cleaned["conditions"] or {}
            errors = services.earning_rule_conditions_errors(kind=cleaned["kind"], conditions=cleaned["conditions"])
            if errors:
                field = self.fields["conditions"]
                assert isinstance(field, ConditionField)
                self.add_error("conditions", field.rejection(errors, cleaned["conditions"]))
        return cleaned


class EarningRuleLimitForm(forms.ModelForm):
    class Meta:
        model = EarningRuleLimit
        fields = ["points", "period", "scope"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("DELETE") or cleaned.get("points") is None:
            return cleaned
        try:
            services.earning_rule_limit_check(
                EarningRuleLimit(**{name: cleaned.get(name) for name in self.Meta.fields})
            )
        except ValidationError as error:
            for name, messages_ in error.message_dict.items():
                for message in messages_:
                    self.add_error(name if name in self.fields else None, message)
        return cleaned


class EarningRuleLimitInline(admin.TabularInline):
    """Points limits of the rule ("at most 100 points a day per customer"), written by the audited services."""

    model = EarningRuleLimit
    form = EarningRuleLimitForm
    extra = 1
    fields = ["points", "period", "scope"]


@admin.register(EarningRule)
class EarningRuleAdmin(AuditedModelAdmin, admin.ModelAdmin):
    audit_saves = False  # the earning-rule services audit; deletions are audited by the mixin
    form = EarningRuleForm
    list_display = [
        "name",
        "program",
        "kind",
        "is_active",
        "points",
        "multiplier",
        "starts_at",
        "ends_at",
    ]
    list_filter = ["program", "kind", "is_active"]
    search_fields = ["name", "event_name", "product_tag"]
    filter_horizontal = ["tiers"]
    inlines = [EarningRuleLimitInline]

    def save_model(self, request: HttpRequest, obj: EarningRule, form: forms.ModelForm, change: bool) -> None:
        # Through the services (conditions validated there too); the tiers follow in save_related.
        fields = {key: form.cleaned_data[key] for key in services.RULE_FIELDS if key in form.cleaned_data}
        if change:
            services.earning_rule_update(rule=obj, program=form.cleaned_data["program"], **fields)
        else:
            rule = services.earning_rule_create(program=form.cleaned_data["program"], **fields)
            obj.pk = rule.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """The inline points limits are written by their services (checked, audited with who and old/new)."""
        if formset.model is not EarningRuleLimit:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.earning_rule_limit_delete(limit=obj, user=request.user)
        for obj, changed in formset.changed_objects:
            fields = {name: getattr(obj, name) for name in changed if name != "DELETE"}
            try:
                services.earning_rule_limit_update(limit=obj, user=request.user, **fields)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        for obj in formset.new_objects:
            services.earning_rule_limit_create(
                rule=form.instance, points=obj.points, period=obj.period, scope=obj.scope, user=request.user
            )


class BalanceInline(admin.StackedInline):
    model = Balance
    can_delete = False
    readonly_fields = fields = (
        "active",
        "pending",
        "debt",
        "expiring_soon",
        "lifetime_earned",
        "lifetime_spent",
        "lifetime_expired",
        "updated_at",
    )

    def has_add_permission(self, request, obj=None):
        return False


class LedgerEntryInline(admin.TabularInline):
    """The member's ledger, newest first: every movement with its reason, source, actor and cause."""

    model = LedgerEntry
    fk_name = "membership"
    extra = 0
    can_delete = False
    ordering = ["-created_at", "-pk"]
    readonly_fields = fields = (
        "created_at",
        "kind",
        "active_delta",
        "pending_delta",
        "debt_delta",
        "active_after",
        "source",
        "reason",
        "actor",
        "cause",
    )
    max_num = 0

    @admin.display(description="Source")
    def source(self, entry: LedgerEntry) -> str:
        # (an unset foreign key reads as None without a query)
        if entry.lot is not None:
            return entry.lot.source_key
        return entry.redemption.code if entry.redemption is not None else ""

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("lot", "actor", "redemption")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["customer", "program", "tier", "active_points", "pending_points", "joined_at"]
    list_filter = ["program", "tier"]
    search_fields = ["customer__email", "customer__external_id", "referral_code"]
    raw_id_fields = ["customer", "referred_by"]
    list_select_related = ["customer", "program", "tier", "balance"]
    readonly_fields = ["why_this_balance", "cockpit_link", "tier_since", "tier_hold_until", "last_activity_at"]
    inlines = [BalanceInline, LedgerEntryInline]
    actions = ["recalculate_tiers", "revoke_cockpit_links"]

    @admin.display(description="Active", ordering="balance__active")
    def active_points(self, membership: Membership) -> int:
        return membership.balance.active

    @admin.display(description="Pending", ordering="balance__pending")
    def pending_points(self, membership: Membership) -> int:
        return membership.balance.pending

    @admin.display(description="Why do I have this balance?")
    def why_this_balance(self, membership: Membership) -> str:
        if not membership.pk:
            return "-"
        lots = PointLot.objects.filter(membership=membership, remaining__gt=0).order_by("expires_at", "pk")
        rows = format_html_join(
            "",
            "<li>{} pts {} from <code>{}</code> ({}){}</li>",
            (
                (
                    lot.remaining,
                    lot.get_status_display().lower(),
                    lot.source_key,
                    lot.reason or lot.get_source_type_display(),
                    f", expires {lot.expires_at:%Y-%m-%d}" if lot.expires_at else "",
                )
                for lot in lots
            ),
        )
        adjust = reverse("admin:loyalty_membership_adjust", args=[membership.pk])
        return format_html('<ul class="plainlist">{}</ul><p><a href="{}">Award or deduct points…</a></p>', rows, adjust)

    @admin.display(description="Customer cockpit")
    def cockpit_link(self, membership: Membership) -> str:
        if not membership.pk:
            return "-"
        return format_html('<a href="{}" target="_blank">Open the signed cockpit link</a>', cockpit_path(membership))

    @admin.action(
        description="Revoke cockpit links (the member asks for a new one by e-mail)",
        permissions=["rotate_cockpit_link"],
    )
    def revoke_cockpit_links(self, request: HttpRequest, queryset: Any) -> None:
        revoked = 0
        for membership in queryset:
            services.cockpit_links_revoke(membership=membership, actor=request.user)
            revoked += 1
        self.message_user(request, f"Cockpit links revoked for {revoked} member(s).")

    def has_rotate_cockpit_link_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.rotate_cockpit_link")

    @admin.action(description="Recalculate tiers", permissions=["change"])
    def recalculate_tiers(self, request, queryset):
        changed = 0
        # Plain ids: the changelist queryset carries list_select_related joins that only() cannot defer
        # (FieldError); tier_recalculate locks and re-reads each member anyway.
        for pk, before in queryset.select_related(None).order_by("pk").values_list("pk", "tier_id"):
            changed += services.tier_recalculate(membership=Membership(pk=pk), cause="admin").tier_id != before
        self.message_user(request, f"{changed} tier(s) changed.")

    def get_urls(self):
        return [
            path("<int:pk>/adjust/", self.admin_site.admin_view(self.adjust_view), name="loyalty_membership_adjust"),
            *super().get_urls(),
        ]

    def adjust_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Award or deduct points by hand; the reason and the staff user are recorded on the ledger entry."""
        if not request.user.has_perm(AWARD_POINTS) and not request.user.has_perm(DEDUCT_POINTS):
            raise PermissionDenied
        membership = get_object_or_404(Membership.objects.select_related("customer", "balance"), pk=pk)
        form = AdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            points, reason = form.cleaned_data["points"], form.cleaned_data["reason"]
            try:
                if not request.user.has_perm(AWARD_POINTS if points > 0 else DEDUCT_POINTS):
                    raise PermissionDenied
                if points > 0:
                    services.points_award(membership=membership, points=points, reason=reason, actor=request.user)
                else:
                    services.points_deduct(membership=membership, points=-points, reason=reason, actor=request.user)
            except DomainError as error:
                form.add_error("points", error.message)
            else:
                messages.success(request, f"{points:+d} points for {membership.customer}.")
                return redirect("admin:loyalty_membership_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust points: {membership.customer}",
            "form": form,
            "membership": membership,
            "opts": self.model._meta,
        }
        return render(request, "loyalty/admin_adjust.html", context)


class AllocationInline(admin.TabularInline):
    model = PointAllocation
    fk_name = "lot"
    extra = 0
    can_delete = False
    readonly_fields = ["entry", "amount", "returned"]
    max_num = 0


@admin.register(PointLot)
class PointLotAdmin(admin.ModelAdmin):
    list_display = ["source_key", "membership", "amount", "remaining", "status", "activates_at", "expires_at"]
    list_filter = ["status", "source_type"]
    search_fields = ["source_key", "membership__customer__email"]
    list_select_related = ["membership__customer", "membership__program"]
    inlines = [AllocationInline]

    def has_change_permission(self, request, obj=None):
        return False  # lots change only through the ledger services

    def has_add_permission(self, request):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "membership",
        "kind",
        "active_delta",
        "pending_delta",
        "active_after",
        "reason",
        "actor",
        "cause",
    ]
    list_filter = ["kind"]
    search_fields = ["reason", "cause", "membership__customer__email"]
    list_select_related = ["membership__customer", "membership__program", "actor"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RewardTierPriceInline(admin.TabularInline):
    model = RewardTierPrice
    extra = 0


class RewardCounts(TypedDict):
    redeemed_count: int


@admin.register(Reward)
class RewardAdmin(AuditedModelAdmin, admin.ModelAdmin):
    inlines = [RewardTierPriceInline]
    list_display = [
        "name",
        "program",
        "kind",
        "value_shown",
        "points_cost",
        "stock",
        "per_customer_limit",
        "is_active",
        "redeemed",
    ]
    list_filter = ["program", "kind", "is_active"]
    search_fields = ["name"]
    filter_horizontal = ["tiers"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(redeemed_count=Count("redemptions"))

    @admin.display(description="Value", ordering="value")
    def value_shown(self, reward: Reward) -> str:
        return reward.value_display or "—"

    @admin.display(description="Redemptions", ordering="redeemed_count")
    def redeemed(self, reward: "WithAnnotations[Reward, RewardCounts]") -> int:
        return reward.redeemed_count


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "reward",
        "membership",
        "status",
        "points_spent",
        "fulfilment_status",
        "issued_at",
        "used_at",
    ]
    list_filter = ["status", "fulfilment_status", "reward"]
    search_fields = ["code", "membership__customer__email"]
    list_select_related = ["reward", "membership__customer", "membership__program"]
    readonly_fields = [f.name for f in Redemption._meta.fields if f.name != "fulfilment_status"]
    actions = ["rollback", "mark_shipped", "mark_delivered"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Roll back (return points and stock)", permissions=["change"])
    def rollback(self, request, queryset):
        done = 0
        for redemption in queryset:
            try:
                services.redemption_rollback(
                    redemption=redemption, reason="Rolled back in admin", actor=request.user, cause="admin"
                )
                done += 1
            except DomainError as error:
                self.message_user(request, f"{redemption.code}: {error.message}", level=messages.WARNING)
        self.message_user(request, f"{done} redemption(s) rolled back.")

    @admin.action(description="Mark shipped", permissions=["change"])
    def mark_shipped(self, request, queryset):
        count = queryset.exclude(fulfilment_status=FulfilmentStatus.NOT_APPLICABLE).update(
            fulfilment_status=FulfilmentStatus.SHIPPED
        )
        self.message_user(request, f"{count} marked shipped.")

    @admin.action(description="Mark delivered", permissions=["change"])
    def mark_delivered(self, request, queryset):
        count = queryset.exclude(fulfilment_status=FulfilmentStatus.NOT_APPLICABLE).update(
            fulfilment_status=FulfilmentStatus.DELIVERED
        )
        self.message_user(request, f"{count} marked delivered.")


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ["referrer", "referee", "status", "referrer_bonus", "referee_bonus", "created_at", "rewarded_at"]
    list_filter = ["status"]
    search_fields = ["referee__email", "referrer__customer__email", "referrer__referral_code"]
    list_select_related = ["referrer__customer", "referrer__program", "referee"]
    readonly_fields = ["referrer", "referee", "status", "referrer_bonus", "referee_bonus", "created_at", "rewarded_at"]
