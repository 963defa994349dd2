"""Fraud rules and cases in the admin: rules saved through `fraud_rule_save` (errors with paths)."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from loyalty_site.lib.forms import ConditionField

from . import services
from .choices import FraudTrigger
from .models import FraudCase, FraudRule


class FraudRuleForm(forms.ModelForm):
    # The visual condition editor; its field list follows the trigger (velocity and identity fields, plus the
    # order's or the referral's on those triggers). Problems are shown on the very input they concern.
    condition = ConditionField(
        scopes=services.TRIGGER_SCOPES[FraudTrigger.CUSTOMER_REGISTERED],
        scopes_from={
            "field": "trigger",
            "map": {str(trigger): list(scopes) for trigger, scopes in services.TRIGGER_SCOPES.items()},
            "default": list(services.TRIGGER_SCOPES[FraudTrigger.CUSTOMER_REGISTERED]),
        },
        empty_label="No condition yet: a fraud rule needs one (e.g. Orders (window) in the last 1 hour is at least 5).",
        help_text="When the rule matches. Velocity fields count over the last minutes, hours or days.",
    )

    class Meta:
        model = FraudRule
        fields = services.RULE_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "condition" in cleaned:
            condition = cleaned["condition"] or {}
            errors = services.fraud_rule_errors(
                trigger=cleaned.get("trigger", ""), condition=condition, action=cleaned.get("action", "")
            )
            located = [(path, message) for path, message in errors.items() if path not in ("trigger", "action")]
            for path, message in errors.items():
                if path in ("trigger", "action"):
                    self.add_error(path, message)
            if located:
                field = self.fields["condition"]
                assert isinstance(field, ConditionField)
                self.add_error("condition", field.rejection(located, condition))
        return cleaned


@admin.register(FraudRule)
class FraudRuleAdmin(admin.ModelAdmin):
    form = FraudRuleForm
    list_display = ["name", "is_enabled", "trigger", "action", "fire_kill_switch", "matched_count", "last_matched_at"]
    list_filter = ["is_enabled", "trigger", "action"]
    search_fields = ["name", "description"]
    readonly_fields = ["builtin_key", "matched_count", "last_matched_at", "created_at", "updated_at"]
    autocomplete_fields = ["pause_campaign"]
    actions = ["enable_rules", "disable_rules", "install_builtin"]

    def save_model(self, request: HttpRequest, obj: FraudRule, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.RULE_FIELDS if name in form.cleaned_data}
        saved = services.fraud_rule_save(rule=obj if change else None, user=request.user, **fields)
        obj.pk = saved.pk
        obj._state.adding = False

    def _enable(self, request: HttpRequest, queryset: QuerySet[FraudRule], on: bool) -> None:
        done = 0
        for rule in queryset.order_by("pk"):
            try:
                services.fraud_rule_save(rule=rule, user=request.user, is_enabled=on)
                done += 1
            except ValidationError as error:
                self.message_user(request, f"{rule}: {' '.join(error.messages)}", messages.ERROR)
        self.message_user(request, f"{done} rule(s) {'enabled' if on else 'disabled'}.", messages.SUCCESS)

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[FraudRule]) -> None:
        self._enable(request, queryset, True)

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[FraudRule]) -> None:
        self._enable(request, queryset, False)

    @admin.action(description="Install the missing built-in checks (disabled)", permissions=["add"])
    def install_builtin(self, request: HttpRequest, queryset: QuerySet[FraudRule]) -> None:
        created = services.fraud_builtin_install()
        self.message_user(request, f"{created} built-in check(s) installed.", messages.SUCCESS)


@admin.register(FraudCase)
class FraudCaseAdmin(admin.ModelAdmin):
    """Read-only history of cases; approve and reject on the review queue page."""

    list_display = ["created_at", "rule_name", "customer", "action", "status", "resolved_by", "review_link"]
    list_filter = ["status", "action", "trigger"]
    search_fields = ["rule_name", "customer__email", "customer__external_id"]
    list_select_related = ["customer", "resolved_by"]
    readonly_fields = [field.name for field in FraudCase._meta.fields] + ["evidence_pretty"]
    exclude = ["evidence"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Evidence")
    def evidence_pretty(self, case: FraudCase) -> str:
        return format_html("<pre>{}</pre>", json.dumps(case.evidence, indent=2, ensure_ascii=False))

    @admin.display(description="Review")
    def review_link(self, case: FraudCase) -> str:
        return format_html("<a href='{}'>review queue</a>", reverse("campaigns-fraud-review"))
