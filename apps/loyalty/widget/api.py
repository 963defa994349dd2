"""`POST /api/v1/loyalty/widget-tokens/`: the shop's backend gets a short-lived widget token for its customer."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.customers.models import Customer
from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.errors import DomainError

from .. import selectors, services
from .tokens import widget_token

ISSUE = "loyalty.issue_widget_token"


class WidgetTokenRequestSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    customer_external_id = serializers.CharField(required=False, max_length=128)
    join = serializers.BooleanField(default=False, help_text="Enrol the customer in the program if not a member")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("customer_id" in attrs) == ("customer_external_id" in attrs):
            raise serializers.ValidationError({"customer": "Give exactly one of customer_id, customer_external_id."})
        return attrs


class WidgetTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField(help_text="Seconds")


class WidgetTokenView(IdempotentMixin, APIView):
    """A signed token for the storefront widget of one customer (a member, or enrolled with `join`)."""

    permission_classes = API_PERMISSIONS
    scope_family = "widget"
    action_permissions = {"post": [ISSUE]}

    @extend_schema(request=WidgetTokenRequestSerializer, responses={201: WidgetTokenSerializer})
    def post(self, request: Request) -> Response:
        body = WidgetTokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        lookup = {"pk": data["customer_id"]} if "customer_id" in data else {"external_id": data["customer_external_id"]}
        customer = Customer.objects.filter(**lookup).first()
        path = "customer_id" if "customer_id" in data else "customer_external_id"
        if customer is None:
            raise DomainError("No such customer.", path=path, code="not_found")
        membership = selectors.membership_get(customer_id=customer.pk)
        if membership is None:
            if not data["join"]:
                raise DomainError("This customer is not a member (send join: true).", path=path, code="not_a_member")
            membership, _ = services.member_join(
                customer=customer, cause=f"api:token:{getattr(request.auth, 'pk', '')}"
            )
        token, expires_at = widget_token(membership)
        seconds = settings.LOYALTY_WIDGET_TOKEN_MAX_AGE_SECONDS
        return Response(
            WidgetTokenSerializer({"token": token, "expires_at": expires_at, "expires_in": seconds}).data,
            status=status.HTTP_201_CREATED,
        )
