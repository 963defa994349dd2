"""
Admin of promotions: campaigns with incentives, limits and a budget meter, codes (search, CSV export),
and the settings row with the global kill switch. The redemptions log, the kill switch history and the
cart simulator are pages of `apps/campaigns/views.py`.
Imported by apps/campaigns/admin.py.
"""

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.customers.models import Customer
from apps.platform import capabilities as cap
from apps.platform.kill_switch import kill_switch_state
from apps.tagging.selectors import condition_suggestions
from loyalty_site.lib.errors import DomainError
from loyalty_site.lib.forms import BoundedJSONField, ConditionField

from . import gift_cards, selectors, services
from .choices import CampaignType
from .models import CAMPAIGN_FIELDS, Campaign, Code, GiftCard, Incentive, Limit, PromotionSettings


class IncentiveForm(forms.ModelForm):
    lines_rule = BoundedJSONField(required=False, help_text="Condition over one line (empty: every line)")

    class Meta:
        model = Incentive
        fields = [name for name in services.INCENTIVE_FIELDS if name != "position"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("DELETE"):
            return cleaned
        probe = Incentive(**{name: cleaned.get(name) for name in self.Meta.fields if name in cleaned})
        probe.lines_rule = cleaned.get("lines_rule") or None
        try:
            services.incentive_check(probe)  # the service's own rules, shown on the form
        except ValidationError as error:
            for name, messages_ in error.message_dict.items():
                field = name.split(".")[0] if name.split(".")[0] in self.fields else None
                for message in messages_:
                    self.add_error(field, f"{name}: {message}" if field == "lines_rule" else message)
        return cleaned


class LimitForm(forms.ModelForm):
    class Meta:
        model = Limit
        fields = ["measure", "limit", "period", "scope", "action", "incentive"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("DELETE") or cleaned.get("limit") is None:
            return cleaned
        probe = Limit(**{name: cleaned.get(name) for name in self.Meta.fields if cleaned.get(name) is not None})
        probe.campaign_id = self.instance.campaign_id
        if probe.incentive is not None and probe.campaign_id is None:
            probe.campaign_id = probe.incentive.campaign_id
        try:
            services.limit_check(probe)
        except ValidationError as error:
            for name, messages_ in error.message_dict.items():
                for message in messages_:
                    self.add_error(name if name in self.fields else None, message)
        return cleaned


class IncentiveInline(admin.TabularInline):
    model = Incentive
    form = IncentiveForm
    extra = 1
    fields = [
        "kind",
        "percent",
        "amount",
        "max_discount",
        "buy_quantity",
        "get_quantity",
        "multiplier",
        "points",
        "lines_rule",
        "is_active",
    ]


class LimitInline(admin.TabularInline):
    model = Limit
    form = LimitForm
    extra = 1
    fields = ["measure", "limit", "period", "scope", "action", "incentive"]


def _validation_rule_errors(rule: Any) -> list[tuple[str, str]]:
    return list(services.rule_errors(rule, path="validation_rule", scopes=services.RULE_SCOPES).items())


class CampaignForm(forms.ModelForm):
    # The console's visual condition editor (the builder's), over the customer and the cart being validated.
    validation_rule = ConditionField(
        scopes=services.RULE_SCOPES,
        audience=False,
        check=_validation_rule_errors,
        suggestions=condition_suggestions,
        empty_label="No rule: every cart and customer may use it.",
        help_text="Who and which carts may use the campaign (e.g. 2 items tagged Shoes and a cart total ≥ 100).",
    )

    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_FIELDS)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ["name", "type", "status", "category", "priority", "stacking", "budget_meter"]
    list_filter = ["status", "type", "stacking", "category"]
    search_fields = ["name", "description", "category"]
    inlines = [IncentiveInline, LimitInline]
    actions = ["pause_selected", "resume_selected", "generate_codes"]
    readonly_fields = ["budget_meter", "pages", "created_at", "updated_at"]

    @admin.display(description="Pages")
    def pages(self, campaign: Campaign) -> str:
        codes = (
            format_html(' · <a href="{}">Codes: import, export, publish to a segment</a>', self._codes_url(campaign))
            if campaign.pk
            else ""
        )
        return format_html(
            (
                '<a href="{}?campaign={}">Redemptions</a> · <a href="{}">Cart simulator</a> · '
                '<a href="{}">Kill switch</a>{}'
            ),
            reverse("campaigns-redemptions"),
            campaign.pk or "",
            reverse("campaigns-simulator"),
            reverse("campaigns-kill-switch"),
            codes,
        )

    @staticmethod
    def _codes_url(campaign: Campaign) -> str:
        return reverse("campaigns-campaign-codes", args=[campaign.pk])

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Inline incentives and limits are written by their services (checked, audited with who and old/new)."""
        if formset.model not in (Incentive, Limit):
            super().save_formset(request, form, formset, change)
            return
        campaign = form.instance
        formset.save(commit=False)
        is_incentive = formset.model is Incentive
        for obj in formset.deleted_objects:
            try:
                if is_incentive:
                    services.incentive_delete(incentive=obj, user=request.user)
                else:
                    services.limit_delete(limit=obj, user=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        for obj, changed in formset.changed_objects:
            fields = {name: getattr(obj, name) for name in changed if name != "DELETE"}
            if is_incentive:
                services.incentive_update(incentive=obj, user=request.user, **fields)
            else:
                services.limit_update(limit=obj, user=request.user, **fields)
        for obj in formset.new_objects:
            if is_incentive:
                values = {name: getattr(obj, name) for name in IncentiveForm.Meta.fields if name != "kind"}
                services.incentive_create(
                    campaign=campaign, kind=obj.kind, user=request.user, position=campaign.incentives.count(), **values
                )
            else:
                services.limit_create(
                    campaign=campaign,
                    measure=obj.measure,
                    limit=obj.limit,
                    incentive=obj.incentive,
                    user=request.user,
                    period=obj.period,
                    scope=obj.scope,
                    action=obj.action,
                )

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        fields = {key: form.cleaned_data[key] for key in form.cleaned_data if key != "name"}
        if change:
            services.campaign_update(campaign=obj, name=form.cleaned_data["name"], **fields)
        else:
            fields.setdefault("owner", request.user)
            obj.pk = services.campaign_create(name=form.cleaned_data["name"], **fields).pk

    @admin.display(description="Budget (used / limit, runs out)")
    def budget_meter(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "-"
        rows = [row for row in selectors.budget_usage(campaign=campaign) if row.get("percent") is not None]
        if not rows:
            return "-"
        return format_html_join(
            "",
            '<div title="{}"><meter min="0" max="100" value="{}"></meter> {} / {} ({}%) · {}</div>',
            (
                (
                    row["label"],
                    row["percent"],
                    row["used"],
                    row["limit_value"],
                    row["percent"],
                    row["exhausted_on"] or "no recent use",
                )
                for row in rows
            ),
        )

    def _switch(self, request: HttpRequest, queryset: Any, *, on: bool) -> None:
        if not request.user.has_perm(cap.CAMPAIGN_KILL_SWITCH):
            self.message_user(request, "You may not use the kill switch.", messages.ERROR)
            return
        count = 0
        for campaign in queryset.order_by("pk"):
            services.campaign_switch(campaign=campaign, on=on, user=request.user, actor="admin")
            count += 1
        self.message_user(request, f"{'Resumed' if on else 'Paused'} {count} campaign(s).", messages.SUCCESS)

    @admin.action(description="Pause the selected campaigns (kill switch)")
    def pause_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._switch(request, queryset, on=False)

    @admin.action(description="Generate 100 codes for each selected campaign")
    def generate_codes(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.has_perm("campaigns.add_code"):
            self.message_user(request, "You may not add codes.", messages.ERROR)
            return
        for campaign in queryset.order_by("pk"):
            batch = services.codes_generate(campaign=campaign, pattern=f"C{campaign.pk}-******", count=100)
            self.message_user(
                request, f"Generated {batch.generated} codes for “{campaign}” ({batch.pattern}).", messages.SUCCESS
            )

    @admin.action(description="Resume the selected campaigns")
    def resume_selected(self, request: HttpRequest, queryset: Any) -> None:
        self._switch(request, queryset, on=True)


@admin.register(Code)
class CodeAdmin(admin.ModelAdmin):
    list_display = ["code", "campaign", "uses", "max_uses", "customer", "published_at", "expires_at", "is_active"]
    list_filter = ["campaign", "is_active"]
    list_select_related = ["campaign", "customer"]
    search_fields = ["code"]
    raw_id_fields = ["customer", "batch"]
    actions = ["export_csv"]

    @admin.action(description="Export the selected codes as CSV")
    def export_csv(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="codes.csv"'
        writer = csv.writer(response)
        writer.writerow(["code", "campaign", "uses", "max_uses", "customer_id", "published_at", "expires_at"])
        for code in queryset.select_related("campaign").order_by("pk").iterator(chunk_size=2000):
            writer.writerow(
                [
                    code.code,
                    code.campaign.name,
                    code.uses,
                    code.max_uses or "",
                    code.customer_id or "",
                    code.published_at or "",
                    code.expires_at or "",
                ]
            )
        return response


@admin.register(PromotionSettings)
class PromotionSettingsAdmin(admin.ModelAdmin):
    """The stacking settings row; the global kill switch has its own page (one click, reason, history)."""

    list_display = ["__str__", "max_per_order", "max_per_category", "percent_base", "failure_mode", "kill_switch"]
    readonly_fields = ["kill_switch"]
    actions = ["kill_switch_on", "kill_switch_off"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not PromotionSettings.objects.exists()  # one row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Global kill switch")
    def kill_switch(self, obj: PromotionSettings) -> str:
        state = kill_switch_state()
        return format_html(
            '{} · <a href="{}">kill switch page</a>',
            f"ON ({state.reason})" if state.is_on else "off",
            reverse("campaigns-kill-switch"),
        )

    def _kill(self, request: HttpRequest, *, on: bool) -> None:
        if not request.user.has_perm(cap.CAMPAIGN_KILL_SWITCH):
            self.message_user(request, "You may not use the kill switch.", messages.ERROR)
            return
        services.kill_switch_set(on=on, user=request.user, reason="turned on in the admin" if on else "", actor="admin")
        self.message_user(
            request, f"Global kill switch {'ON: every incentive is refused' if on else 'off'}.", messages.WARNING
        )

    @admin.action(description="Turn the GLOBAL kill switch on")
    def kill_switch_on(self, request: HttpRequest, queryset: Any) -> None:
        self._kill(request, on=True)

    @admin.action(description="Turn the global kill switch off")
    def kill_switch_off(self, request: HttpRequest, queryset: Any) -> None:
        self._kill(request, on=False)


# --- Gift cards ---------------------------------------------------------------------------------------------


def _form_errors(form: forms.BaseForm, error: ValidationError) -> None:
    for name, messages_ in error.message_dict.items():
        for message in messages_:
            form.add_error(name if name in form.fields else None, message)


class GiftCardIssueForm(forms.ModelForm):
    """Issue a card (through `gift_card_issue`: audited, first ledger entry)."""

    campaign = forms.ModelChoiceField(queryset=Campaign.objects.filter(type=CampaignType.GIFT_CARDS))
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    card_code = forms.CharField(required=False, max_length=64, label="Code", help_text="Empty: generated")
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(), required=False, widget=forms.NumberInput, help_text="Holder (customer id)"
    )
    expires_at = forms.DateTimeField(required=False, help_text="YYYY-MM-DD HH:MM (empty: never)")

    class Meta:
        model = GiftCard
        fields = ["currency"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["currency"].required = False
        self.fields["currency"].help_text = "Empty: the shop currency"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            gift_cards.gift_card_issue_check(
                campaign=cleaned["campaign"],
                amount=cleaned["amount"],
                currency=cleaned.get("currency") or None,
                code=cleaned.get("card_code") or "",
                expires_at=cleaned.get("expires_at"),
            )
        except ValidationError as error:
            _form_errors(
                self, ValidationError({("card_code" if k == "code" else k): v for k, v in error.message_dict.items()})
            )
        return cleaned


class GiftCardTopUpForm(forms.ModelForm):
    """A card's page: top up (through `gift_card_top_up`: audited, a ledger entry)."""

    top_up = forms.DecimalField(
        required=False, max_digits=14, decimal_places=2, min_value=0, help_text="Amount to add (card currency)"
    )
    top_up_reason = forms.CharField(required=False, max_length=255)

    class Meta:
        model = GiftCard
        fields: list[str] = []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("top_up"):
            try:
                gift_cards.gift_card_top_up_check(card=self.instance, amount=cleaned["top_up"])
            except ValidationError as error:
                self.add_error("top_up", error.message_dict.get("amount", error.messages))
            except DomainError as error:
                self.add_error("top_up", error.message)
        return cleaned


@admin.register(GiftCard)
class GiftCardAdmin(admin.ModelAdmin):
    """Gift cards: issue, top up, the ledger; writes through the audited gift-card services."""

    list_display = ["card_code", "campaign_name", "currency", "initial", "balance", "holder", "expires", "created_at"]
    list_filter = ["currency", "code__campaign"]
    list_select_related = ["code__campaign", "code__customer"]
    search_fields = ["code__code"]
    LEDGER_ROWS = 100
    LEDGER_WORDS = {
        "issue": "Issued",
        "top_up": "Top-up",
        "spend": "Spent",
        "refund": "Given back",
        "expire": "Expired",
    }

    class Media:
        css = {"all": ["campaigns/gift_cards.css"]}

    @admin.display(description="Code", ordering="code__code")
    def card_code(self, card: GiftCard) -> str:
        return card.code.code

    @admin.display(description="Campaign")
    def campaign_name(self, card: GiftCard) -> str:
        return card.code.campaign.name

    @admin.display(description="Holder")
    def holder(self, card: GiftCard) -> Any:
        return card.code.customer or "—"

    @admin.display(description="Expires", ordering="code__expires_at")
    def expires(self, card: GiftCard) -> Any:
        return card.code.expires_at or "never"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = GiftCardTopUpForm if obj is not None else GiftCardIssueForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["campaign", "amount", "currency", "card_code", "customer", "expires_at"]
        return [
            "card_code",
            "campaign_name",
            "currency",
            "initial",
            "balance",
            "holder",
            "expires",
            "top_up",
            "top_up_reason",
            "ledger",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return ["card_code", "campaign_name", "currency", "initial", "balance", "holder", "expires", "ledger"]

    @admin.display(description="Ledger (newest first)")
    def ledger(self, card: GiftCard) -> str:
        entries = card.entries.order_by("-created_at", "-pk")[: self.LEDGER_ROWS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{entry.created_at:%Y-%m-%d %H:%M}",
                    self.LEDGER_WORDS.get(entry.kind, entry.kind),
                    f"{entry.amount:+}",
                    entry.balance_after,
                    entry.reason or (f"redemption #{entry.redemption_id}" if entry.redemption_id else ""),
                    entry.actor,
                )
                for entry in entries
            ),
        )
        return format_html(
            '<div class="gift-ledger-wrap"><table class="gift-ledger"><thead><tr><th>When</th><th>What</th>'
            "<th>Amount</th><th>Balance</th><th>Why</th><th>Who</th></tr></thead><tbody>{}</tbody></table></div>",
            rows,
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a card with a ledger is never deleted: let it expire

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        data = form.cleaned_data
        if not change:
            return gift_cards.gift_card_issue(
                campaign=data["campaign"],
                amount=data["amount"],
                currency=data.get("currency") or None,
                code=data.get("card_code") or "",
                customer=data.get("customer"),
                expires_at=data.get("expires_at"),
                user=request.user,
                actor="admin",
            )
        if data.get("top_up"):
            gift_cards.gift_card_top_up(
                card=form.instance,
                amount=data["top_up"],
                reason=data.get("top_up_reason", ""),
                user=request.user,
                actor="admin",
            )
            messages.success(request, f"Topped up by {data['top_up']} {form.instance.currency}.")
            form.instance.refresh_from_db()
        return form.instance

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # the services in save_form wrote (and audited) everything

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the ledger is read-only
