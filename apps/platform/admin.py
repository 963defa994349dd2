"""
Console pages of the platform app: API tokens (created with scopes and an optional expiry, the raw token shown
once; revoked by an action), stored Idempotency-Keys, and the read-only audit log. Managing tokens needs the
`platform.manage_api_tokens` capability, not just the model permissions.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import capabilities as cap
from . import services
from .models import ApiToken, AuditEntry, IdempotencyRecord
from .permissions import SCOPE_DESCRIPTIONS, SCOPES


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope} — {SCOPE_DESCRIPTIONS[scope]}") for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="The token acts with these scopes AND its user's permissions.",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scopes", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["prefix", "name", "user", "scope_list", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    actions = ["revoke_tokens"]

    def _can_manage(self, request: HttpRequest) -> bool:
        return request.user.has_perm(cap.MANAGE_API_TOKENS)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self._can_manage(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can_manage(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._can_manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row stays as the record of what the token did

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self._can_manage(request)

    @admin.display(description="Scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes or [])

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", "name", "scopes", "expires_at")
        return ("user", "name", "prefix", "scope_list", "created_at", "expires_at", "last_used_at", "last_used_ip")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        if obj is None:
            return []
        return ["user", "prefix", "scope_list", "created_at", "expires_at", "last_used_at", "last_used_ip"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            kwargs["form"] = forms.ModelForm  # only the name can change; scopes are fixed at creation
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        token, raw = services.api_token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
        )
        obj.pk = token.pk
        obj._state.adding = False
        self.message_user(request, f"New API token (copy it now, it is not shown again): {raw}", messages.WARNING)

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(token=token)
            done += 1
        self.message_user(request, f"{done} token(s) revoked.", messages.SUCCESS)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "method", "path", "response_status", "created_at"]
    list_filter = ["response_status"]
    search_fields = ["key", "path", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Who changed which configuration, when, from what to what. Read-only."""

    list_display = ["created_at", "actor_label", "action", "object_type", "object_repr", "changed_fields"]
    list_filter = ["object_type", "action", "actor", ("token", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_repr", "object_id", "actor_label"]
    list_select_related = ["actor", "token"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "actor",
        "token",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
    ]
    show_full_result_count = False

    @admin.display(description="Changed")
    def changed_fields(self, entry: AuditEntry) -> str:
        return ", ".join(sorted(entry.changes or {}))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
