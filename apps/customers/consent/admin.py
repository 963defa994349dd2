"""
The suppression list in the console (add and delete go through the consent services: audited), and the
consents as a read-only list (they change through the API, the customer's own links, imports, connectors).
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .choices import Channel
from .models import Consent, ConsentEvent, Suppression


class SuppressionForm(forms.ModelForm):
    channel = forms.ChoiceField(choices=[(Channel.EMAIL, "E-mail"), (Channel.SMS, "SMS")])

    class Meta:
        model = Suppression
        fields = ["address", "channel", "reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("address") and data.get("channel"):
            normalised = services.address_normalise(data["address"], channel=data["channel"])
            if data["channel"] == Channel.EMAIL and "@" not in normalised:
                self.add_error("address", "Enter a valid e-mail address.")
            data["address"] = normalised
        return data

    def validate_unique(self) -> None:
        """An address already listed is kept as it is (the service returns it), not refused."""


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ["address", "channel", "reason", "source", "created_at"]
    list_filter = ["channel", "reason"]
    search_fields = ["address"]
    date_hierarchy = "created_at"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a suppression is added or lifted, never edited

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        try:
            row = services.suppression_add(address=obj.address, channel=obj.channel, reason=obj.reason, source="admin")
        except ValidationError as error:  # (the form checked the same rules)
            raise ValidationError(error.messages) from error
        obj.pk = row.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Suppression) -> None:
        services.suppression_remove(suppression=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        for row in queryset.order_by("pk"):
            services.suppression_remove(suppression=row)


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Consent)
class ConsentAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["customer", "channel", "purpose", "status", "source", "updated_at"]
    list_filter = ["channel", "purpose", "status"]
    search_fields = ["customer__email", "customer__external_id", "source"]
    list_select_related = ["customer"]
    show_full_result_count = False


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "customer", "channel", "purpose", "old_status", "new_status", "source", "actor_label"]
    list_filter = ["channel", "purpose", "new_status"]
    search_fields = ["customer__email", "customer__external_id", "source"]
    list_select_related = ["customer"]
    show_full_result_count = False
