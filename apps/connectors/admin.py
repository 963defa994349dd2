"""
The console of the store connectors: connect a shop (on-screen instructions and the exact webhook URL),
its deliveries and errors, re-process a failed delivery, and the pushes back to the shop. Every save goes
through the services (audited there); deliveries, records and pushes are read-only history.
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from loyalty_site.lib.errors import DomainError

from .choices import DeliveryStatus
from .forms import ConnectionAddForm, ConnectionChangeForm
from .models import (
    DEFAULT_CONSENT_META_KEY,
    DEFAULT_CONSENT_META_SUBSCRIBED,
    DEFAULT_CONSENT_META_UNSUBSCRIBED,
    TOPICS,
    Push,
    RemoteRecord,
    StoreConnection,
    WebhookDelivery,
)
from .services import connections, deliveries

REPROCESS = "connectors.reprocess_delivery"


def webhook_path(connection: StoreConnection) -> str:
    return reverse(f"connectors-{connection.platform}-webhook", kwargs={"key": connection.hook_key})


@admin.register(StoreConnection)
class StoreConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "platform", "shop_domain", "status", "last_delivery_at", "deliveries_link", "errors_link"]
    list_filter = ["platform", "status"]
    search_fields = ["name", "shop_domain"]
    readonly_fields = ["platform", "last_delivery_at", "deliveries_count", "error_count", "last_error"]
    change_form_template = "admin/connectors/storeconnection/change_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = ConnectionChangeForm if obj is not None else ConnectionAddForm
        kwargs["fields"] = None  # the form's own fields: the secrets are form fields, not editable model fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [
                "name",
                "platform",
                "shop_domain",
                "shop_currency",
                "signing_secret",
                "push_enabled",
                "push_unsubscribes",
                "api_token",
                "api_base_url",
                "consent_meta_key",
                "consent_meta_unsubscribed",
                "consent_meta_subscribed",
            ]
        return [
            "name",
            "platform",
            "shop_domain",
            "shop_currency",
            "status",
            "topics",
            "signing_secret",
            "push_enabled",
            "push_unsubscribes",
            "api_token",
            "api_base_url",
            "consent_meta_key",
            "consent_meta_unsubscribed",
            "consent_meta_subscribed",
            "last_delivery_at",
            "deliveries_count",
            "error_count",
            "last_error",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def save_model(self, request: HttpRequest, obj: StoreConnection, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = {key: data[key] for key in connections.AUDITED if key in data and key != "platform"}
            connections.connection_update(
                connection=obj,
                user=request.user,
                signing_secret=data.get("signing_secret", ""),
                api_token=data.get("api_token", ""),
                **fields,
            )
        else:
            created = connections.connection_create(
                name=data["name"],
                platform=data["platform"],
                shop_domain=data["shop_domain"],
                signing_secret=data["signing_secret"],
                shop_currency=data["shop_currency"],
                api_token=data.get("api_token", ""),
                api_base_url=data.get("api_base_url", ""),
                push_enabled=data.get("push_enabled", False),
                push_unsubscribes=data.get("push_unsubscribes", False),
                consent_meta_key=data.get("consent_meta_key") or DEFAULT_CONSENT_META_KEY,
                consent_meta_unsubscribed=data.get("consent_meta_unsubscribed") or DEFAULT_CONSENT_META_UNSUBSCRIBED,
                consent_meta_subscribed=data.get("consent_meta_subscribed") or DEFAULT_CONSENT_META_SUBSCRIBED,
                user=request.user,
            )
            obj.pk = created.pk
            obj.hook_key = created.hook_key

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        connection = self.get_object(request, object_id) if object_id else None
        if connection is not None:
            context["webhook_url"] = request.build_absolute_uri(webhook_path(connection))
            context["connection_topics"] = TOPICS[connection.platform]
            context["connection"] = connection
        return super().changeform_view(request, object_id, form_url, context)

    def response_add(
        self, request: HttpRequest, obj: StoreConnection, post_url_continue: str | None = None
    ) -> HttpResponse:
        # Straight to the connection's page: it shows the webhook URL and what to do in the shop.
        messages.success(request, "Connected. Now create the webhooks in your shop as shown below.")
        from django.shortcuts import redirect

        return redirect(reverse("admin:connectors_storeconnection_change", args=[obj.pk]))

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj: StoreConnection) -> str:
        url = reverse("admin:connectors_webhookdelivery_changelist") + f"?connection__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.deliveries_count)

    @admin.display(description="Errors")
    def errors_link(self, obj: StoreConnection) -> str:
        url = (
            reverse("admin:connectors_webhookdelivery_changelist")
            + f"?connection__id__exact={obj.pk}&status__in=failed,dead"
        )
        return format_html('<a href="{}">{}</a>', url, obj.error_count)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "connection", "topic", "status", "attempts", "error_excerpt"]
    list_filter = ["status", "topic", "connection"]
    search_fields = ["webhook_id", "topic", "error"]
    list_select_related = ["connection"]
    date_hierarchy = "received_at"
    readonly_fields = fields = (
        "connection",
        "topic",
        "webhook_id",
        "status",
        "attempts",
        "next_attempt_at",
        "received_at",
        "processed_at",
        "error",
        "outcome",
        "body",
    )
    actions = ["reprocess"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REPROCESS)

    @admin.display(description="Error")
    def error_excerpt(self, obj: WebhookDelivery) -> str:
        return obj.error[:120]

    @admin.action(description="Re-process the selected deliveries", permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        if not request.user.has_perm(REPROCESS):
            raise PermissionDenied
        done = skipped = 0
        for delivery in queryset.exclude(status=DeliveryStatus.PROCESSED).order_by("pk")[:500]:
            try:
                deliveries.delivery_reprocess(delivery=delivery)
            except DomainError:
                skipped += 1
            else:
                done += 1
        skipped += queryset.filter(status=DeliveryStatus.PROCESSED).count()
        messages.info(request, f"Queued {done} deliveries again; {skipped} already processed were left alone.")


@admin.register(RemoteRecord)
class RemoteRecordAdmin(admin.ModelAdmin):
    list_display = ["connection", "kind", "remote_id", "local_id", "remote_updated_at"]
    list_filter = ["kind", "connection"]
    search_fields = ["remote_id"]
    list_select_related = ["connection"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Push)
class PushAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "connection",
        "customer",
        "kind",
        "tags",
        "channel",
        "status",
        "attempts",
        "last_error",
    ]
    list_filter = ["status", "kind", "connection"]
    list_select_related = ["connection", "customer"]
    raw_id_fields = ["customer"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
