"""
Promotions API: campaigns (+ incentives, limits, codes), validate / qualify (read-only), reserve / redeem /
rollback, and the kill switch. Every POST takes an Idempotency-Key; every action declares its permission.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.customers.models import Customer
from apps.platform import capabilities as cap
from apps.platform.idempotency import IdempotentMixin
from apps.platform.kill_switch import kill_switch_state
from apps.platform.models import KillSwitchChange
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.api.renderers import FastJSONRenderer, PlainAcceptNegotiation
from loyalty_site.lib.csv_stream import csv_response

from ...models import Segment
from .. import codes, gift_cards, selectors, services
from ..eligibility import promotions_evaluate
from ..models import Campaign, GiftCard, Incentive, Limit, Redemption
from . import serializers as s

# The kill switch is a capability of the platform's roles (marketer, admin).
KILL_SWITCH_PERMISSION = cap.CAMPAIGN_KILL_SWITCH


class PromotionsViewSet(IdempotentMixin, viewsets.ViewSet):
    """Validate, qualify, reserve, redeem and roll back incentives for a cart; the global kill switch."""

    permission_classes = API_PERMISSIONS
    # Validate is asked on every cart view: its ~12 KB answer is written by orjson and a plain JSON client's
    # Accept header is not parsed (same bytes, same renderer as DRF would pick; see loyalty_site/lib/api/renderers).
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]  # (DRF's default pair, JSON written faster)
    content_negotiation_class = PlainAcceptNegotiation
    scope_family = "campaigns"
    read_actions = ("validate", "qualify")
    action_permissions = {
        "validate": ["campaigns.view_campaign"],
        "qualify": ["campaigns.view_campaign"],
        "reserve": ["campaigns.add_redemption"],
        "redeem": ["campaigns.add_redemption"],
        "rollback": ["campaigns.change_redemption"],
        "redemption": ["campaigns.view_redemption"],
        "kill_switch": {"GET": ["campaigns.view_promotionsettings"], "POST": [KILL_SWITCH_PERMISSION]},
    }

    def _checkout(self, request: Request) -> dict[str, Any]:
        return s.checkout_parse(request.data)  # (CheckoutSerializer's answer, without DRF for a plain body)

    @extend_schema(request=s.CheckoutSerializer, responses={200: dict})
    def validate(self, request: Request) -> Response:
        """For each code and automatic promotion: applies or why not; discounts per line and order after stacking."""
        data = self._checkout(request)
        outcome = promotions_evaluate(cart=data["cart"], customer=data["customer"], codes=data["codes"])
        return Response(s.outcome_json(outcome))

    @extend_schema(request=s.CheckoutSerializer, responses={200: dict})
    def qualify(self, request: Request) -> Response:
        """Everything this customer and cart could use (their published codes, automatic promotions), best first."""
        data = self._checkout(request)
        customer: Customer | None = data["customer"]
        codes = list(data["codes"])
        if customer is not None:
            codes += [code.code for code in selectors.codes_published_to(customer=customer)]
        options = []
        for text in [*codes, None]:
            outcome = promotions_evaluate(
                cart=data["cart"], customer=customer, codes=[text] if text else [], include_automatic=text is None
            )
            answer = s.outcome_json(outcome)
            for applied in answer["applied"]:
                options.append({**applied, "order": None})
        options.sort(key=lambda option: (-float(option["discount"]), option["campaign"], option["code"] or ""))
        best = promotions_evaluate(cart=data["cart"], customer=customer, codes=codes)
        return Response({"options": options, "best": s.outcome_json(best)})

    @extend_schema(request=s.CheckoutSerializer, responses={201: s.PromotionRedemptionSerializer})
    def reserve(self, request: Request) -> Response:
        """Hold the incentives for a checkout session (TTL: settings.reservation_minutes, default 15)."""
        data = self._checkout(request)
        redemption = services.redemption_reserve(
            cart=data["cart"],
            customer=data["customer"],
            codes=data["codes"],
            session=data.get("session", ""),
            request=request.data,
            ip=data.get("ip"),
            device=data.get("device", ""),
        )
        body = {**s.PromotionRedemptionSerializer(redemption).data, "validation": s.outcome_json(redemption._outcome)}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CheckoutSerializer, responses={201: s.PromotionRedemptionSerializer})
    def redeem(self, request: Request) -> Response:
        """Re-validate and take the budgets atomically; returns the redemption id."""
        data = self._checkout(request)
        redemption = services.redemption_redeem(
            cart=data["cart"],
            customer=data["customer"],
            codes=data["codes"],
            session=data.get("session", ""),
            order_ref=data.get("order_ref", ""),
            request=request.data,
            ip=data.get("ip"),
            device=data.get("device", ""),
        )
        body = {**s.PromotionRedemptionSerializer(redemption).data, "validation": s.outcome_json(redemption._outcome)}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PromotionRollbackSerializer, responses=s.PromotionRedemptionSerializer)
    def rollback(self, request: Request, pk: str) -> Response:
        """Roll a redemption back, whole or partly (`amount` of order value refunded)."""
        redemption = Redemption.objects.filter(pk=pk).first() if str(pk).isdigit() else None
        if redemption is None:
            return Response({"error": "not_found", "message": "No such redemption.", "errors": []}, status=404)
        serializer = s.PromotionRollbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redemption = services.redemption_rollback(redemption=redemption, amount=serializer.validated_data.get("amount"))
        return Response(s.PromotionRedemptionSerializer(redemption).data)

    @extend_schema(responses=s.PromotionRedemptionSerializer)
    def redemption(self, request: Request, pk: str) -> Response:
        redemption = Redemption.objects.filter(pk=pk).first() if str(pk).isdigit() else None
        if redemption is None:
            return Response({"error": "not_found", "message": "No such redemption.", "errors": []}, status=404)
        return Response(s.PromotionRedemptionSerializer(redemption).data)

    @extend_schema(request=s.KillSwitchSerializer, responses=s.KillSwitchStateSerializer)
    def kill_switch(self, request: Request) -> Response:
        """GET: the global kill switch and its last changes. POST {on, reason}: turn it on or off (audited)."""
        if request.method == "POST":
            serializer = s.KillSwitchSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            services.kill_switch_set(
                on=serializer.validated_data["on"],
                reason=serializer.validated_data["reason"],
                user=request.user,
                actor="api",
            )
        events = KillSwitchChange.objects.order_by("-created_at", "-pk")[:20]
        return Response(
            {
                **s.KillSwitchStateSerializer(kill_switch_state()).data,
                "events": s.KillSwitchChangeSerializer(events, many=True).data,
            }
        )


class CampaignViewSet(IdempotentMixin, viewsets.ModelViewSet):
    """Promotion campaigns with their incentives and limits (budgets), codes and switches."""

    serializer_class = s.CampaignSerializer
    queryset = Campaign.objects.prefetch_related("incentives", "limits").order_by("pk")
    permission_classes = API_PERMISSIONS
    scope_family = "campaigns"
    filterset_fields = ["status", "type", "category"]
    action_permissions = {
        "codes": {"GET": ["campaigns.view_code"], "POST": ["campaigns.add_code"]},
        "generate_codes": ["campaigns.add_code"],
        "publish": ["campaigns.change_code"],
        "import_codes": ["campaigns.add_code"],
        "export_codes": ["campaigns.view_code"],
        "publish_segment": ["campaigns.change_code"],
        "switch": [KILL_SWITCH_PERMISSION],
    }

    @transaction.atomic
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        incentives = data.pop("incentives", [])
        limits = data.pop("limits", [])
        campaign = services.campaign_create(owner=request.user, **data)
        self._children(campaign, incentives, limits)
        return Response(self.get_serializer(campaign).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _children(campaign: Campaign, incentives: list[dict], limits: list[dict]) -> None:
        from django.core.exceptions import ValidationError

        for index, incentive in enumerate(incentives):
            try:
                services.incentive_create(campaign=campaign, position=index, **incentive)
            except ValidationError as error:
                raise ValidationError(
                    {f"incentives[{index}].{key}": value for key, value in error.message_dict.items()}
                ) from None
        for index, limit in enumerate(limits):
            try:
                services.limit_create(campaign=campaign, **limit)
            except ValidationError as error:
                raise ValidationError(
                    {f"limits[{index}].{key}": value for key, value in error.message_dict.items()}
                ) from None

    @transaction.atomic
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        campaign = self.get_object()
        serializer = self.get_serializer(campaign, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        moved = {
            name: f"Change them through /api/v1/promotion-{name}/ (nested {name} are only taken at creation)."
            for name in ("incentives", "limits")
            if data.pop(name, None)
        }
        if moved:
            raise ValidationError(moved)
        campaign = services.campaign_update(campaign=campaign, **data)
        return Response(self.get_serializer(campaign).data)

    @extend_schema(request=s.CodeCreateSerializer, responses=s.VoucherCodeSerializer)
    @action(detail=True, methods=["get", "post"])
    def codes(self, request: Request, pk: str | None = None) -> Response:
        """GET: the campaign's codes (`?search=PREFIX`). POST: add one generic code."""
        campaign = self.get_object()
        if request.method == "POST":
            serializer = s.CodeCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            code = services.code_create(campaign=campaign, **serializer.validated_data)
            return Response(s.VoucherCodeSerializer(code).data, status=status.HTTP_201_CREATED)
        rows = selectors.codes_list(campaign=campaign, search=request.query_params.get("search", ""))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.VoucherCodeSerializer(page, many=True).data)

    @extend_schema(request=s.CodeGenerateSerializer, responses={201: dict})
    @action(detail=True, methods=["post"], url_path="generate-codes")
    def generate_codes(self, request: Request, pk: str | None = None) -> Response:
        """Generate unique single-use codes from a pattern (`#` digit, `?` letter, `*` either); 100,000 max."""
        campaign = self.get_object()
        serializer = s.CodeGenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        batch = services.codes_generate(campaign=campaign, **serializer.validated_data)
        return Response(
            {"batch": batch.pk, "pattern": batch.pattern, "generated": batch.generated}, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=s.CodePublishSerializer, responses=s.VoucherCodeSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Publish (assign) a free code of the campaign to a customer."""
        campaign = self.get_object()
        serializer = s.CodePublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = Customer.objects.filter(pk=serializer.validated_data["customer_id"]).first()
        if customer is None:
            from django.core.exceptions import ValidationError

            raise ValidationError({"customer_id": "No customer with this id."})
        code = services.code_publish(
            campaign=campaign,
            customer=customer,
            ref=f"api:{request.user.pk}:{request.headers.get('Idempotency-Key', '')}"
            if request.headers.get("Idempotency-Key")
            else "",
        )
        return Response(s.VoucherCodeSerializer(code).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.CodeImportSerializer,
        responses={201: dict},
        examples=[
            OpenApiExample(
                "Three codes",
                value={"csv": "code,max_uses,expires_at\nVIP-001,1,2026-12-31\nVIP-002,1,\nSTAFF,unlimited,\n"},
                request_only=True,
            ),
            OpenApiExample("Imported", value={"created": 3, "campaign": 7}, response_only=True, status_codes=["201"]),
        ],
    )
    @action(detail=True, methods=["post"], url_path="import-codes")
    def import_codes(self, request: Request, pk: str | None = None) -> Response:
        """Import codes from CSV text; one bad row refuses the file (400, `rows[i].field` paths), nothing written."""
        campaign = self.get_object()
        serializer = s.CodeImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = codes.codes_import(campaign=campaign, csv_text=serializer.validated_data["csv"])
        return Response({"created": result.created, "campaign": campaign.pk}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="export-codes")
    def export_codes(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """Every code of the campaign as CSV (the import's columns plus uses, customer and publication)."""
        campaign = self.get_object()
        return csv_response(codes.codes_csv_rows(campaign=campaign), filename=f"codes-campaign-{campaign.pk}.csv")

    @extend_schema(
        request=s.SegmentPublishSerializer,
        responses={200: dict},
        examples=[
            OpenApiExample("A segment", value={"segment": 3}, request_only=True),
            OpenApiExample(
                "Published", value={"published": 1080, "without_code": 0, "held_out": 120}, response_only=True
            ),
        ],
    )
    @action(detail=True, methods=["post"], url_path="publish-segment")
    def publish_segment(self, request: Request, pk: str | None = None) -> Response:
        """
        Publish one free code to each member of a segment who has none of this campaign yet (set-based); members in
        the campaign's holdout get none and are recorded as held out (`held_out`: how many this call kept out).
        """
        campaign = self.get_object()
        serializer = s.SegmentPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = Segment.objects.filter(pk=serializer.validated_data["segment"]).first()
        if segment is None:
            raise ValidationError({"segment": "No segment with this id."})
        key = request.headers.get("Idempotency-Key", "")
        result = codes.codes_publish_segment(
            campaign=campaign, segment=segment, ref=f"segment:{segment.pk}:{request.user.pk}:{key}"[:120]
        )
        return Response(
            {"published": result.published, "without_code": result.without_code, "held_out": result.held_out}
        )

    @extend_schema(request=s.KillSwitchSerializer, responses=s.CampaignSerializer)
    @action(detail=True, methods=["post"])
    def switch(self, request: Request, pk: str | None = None) -> Response:
        """The campaign's own kill switch: {"on": true} switches the campaign OFF (paused), false resumes it."""
        campaign = self.get_object()
        serializer = s.KillSwitchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_switch(
            campaign=campaign,
            on=not serializer.validated_data["on"],
            user=request.user,
            reason=serializer.validated_data["reason"],
            actor="api",
        )
        return Response(self.get_serializer(campaign).data)


INCENTIVE_EXAMPLES = [
    OpenApiExample(
        "10 % off shoes, at most 30.00",
        value={
            "campaign": 7,
            "kind": "percent_lines",
            "percent": "10",
            "max_discount": "30.00",
            "lines_rule": {"field": "line.product.tags", "op": "contains", "value": "Shoes"},
        },
        request_only=True,
    ),
    OpenApiExample(
        "A refusal names the path",
        value={
            "error": "validation_error",
            "message": "Invalid input.",
            "errors": [{"path": "lines_rule.field", "message": 'unknown field "line.colour"'}],
        },
        response_only=True,
        status_codes=["400"],
    ),
]
LIMIT_EXAMPLES = [
    OpenApiExample(
        "$30,000 of discount, reduced to what is left",
        value={"campaign": 7, "measure": "discount_amount", "limit": "30000.00", "action": "reduce"},
        request_only=True,
    ),
    OpenApiExample(
        "One redemption per customer per week",
        value={"campaign": 7, "measure": "redemptions", "limit": "1", "period": "week", "scope": "customer"},
        request_only=True,
    ),
    OpenApiExample(
        "First 500 customers",
        value={"campaign": 7, "measure": "distinct_customers", "limit": "500"},
        request_only=True,
    ),
]


class _ServiceWrites:
    """Create/update/delete through the audited services (the service's errors carry the field paths)."""

    def _fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in data.items() if key != "campaign"}


@extend_schema_view(
    create=extend_schema(examples=INCENTIVE_EXAMPLES),
    update=extend_schema(examples=INCENTIVE_EXAMPLES[:1]),
    partial_update=extend_schema(examples=INCENTIVE_EXAMPLES[:1]),
)
class IncentiveViewSet(IdempotentMixin, _ServiceWrites, viewsets.ModelViewSet):
    """A campaign's incentives (effects) as their own resource; every change audited (who, old/new)."""

    serializer_class = s.IncentiveResourceSerializer
    queryset = Incentive.objects.order_by("campaign_id", "position", "pk")
    permission_classes = API_PERMISSIONS
    scope_family = "campaigns"
    filterset_fields = ["campaign", "kind", "is_active"]

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        campaign = data.pop("campaign")
        data.setdefault("position", campaign.incentives.count())
        serializer.instance = services.incentive_create(campaign=campaign, user=self.request.user, **data)

    def perform_update(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        if "campaign" in data and data["campaign"].pk != serializer.instance.campaign_id:
            raise ValidationError({"campaign": "An incentive cannot move to another campaign."})
        serializer.instance = services.incentive_update(
            incentive=serializer.instance, user=self.request.user, **self._fields(data)
        )

    def perform_destroy(self, instance: Incentive) -> None:
        services.incentive_delete(incentive=instance, user=self.request.user)


@extend_schema_view(
    create=extend_schema(examples=LIMIT_EXAMPLES),
    update=extend_schema(examples=LIMIT_EXAMPLES[:1]),
    partial_update=extend_schema(examples=LIMIT_EXAMPLES[:1]),
)
class LimitViewSet(IdempotentMixin, _ServiceWrites, viewsets.ModelViewSet):
    """A campaign's limits (budgets) as their own resource, with live usage; every change audited."""

    serializer_class = s.LimitResourceSerializer
    queryset = Limit.objects.select_related("campaign").order_by("campaign_id", "pk")
    permission_classes = API_PERMISSIONS
    scope_family = "campaigns"
    filterset_fields = ["campaign", "measure", "scope", "period"]

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        campaign = data.pop("campaign")
        serializer.instance = services.limit_create(
            campaign=campaign,
            measure=data.pop("measure"),
            limit=data.pop("limit"),
            incentive=data.pop("incentive", None),
            user=self.request.user,
            **data,
        )

    def perform_update(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        if "campaign" in data and data["campaign"].pk != serializer.instance.campaign_id:
            raise ValidationError({"campaign": "A limit cannot move to another campaign."})
        serializer.instance = services.limit_update(
            limit=serializer.instance, user=self.request.user, **self._fields(data)
        )

    def perform_destroy(self, instance: Limit) -> None:
        services.limit_delete(limit=instance, user=self.request.user)


class GiftCardViewSet(IdempotentMixin, viewsets.ReadOnlyModelViewSet):
    """
    Gift cards: list (`?campaign=`, `?customer=`, `?code=`), issue (POST), top up, and the ledger of a card.
    Spending, refunds and rollbacks go through validate / reserve / redeem / rollback like any code.
    """

    serializer_class = s.GiftCardSerializer
    queryset = GiftCard.objects.select_related("code").order_by("pk")
    permission_classes = API_PERMISSIONS
    scope_family = "campaigns"
    action_permissions = {
        "create": ["campaigns.add_giftcard"],
        "top_up": ["campaigns.change_giftcard"],
        "ledger": ["campaigns.view_giftcard"],
    }

    def get_queryset(self) -> Any:
        rows = super().get_queryset()
        params = self.request.query_params
        for name, lookup in (("campaign", "code__campaign_id"), ("customer", "code__customer_id")):
            value = params.get(name, "")
            if value:
                if not value.isdigit():
                    raise ValidationError({name: "An id is a whole number."})
                rows = rows.filter(**{lookup: int(value)})
        if params.get("code"):
            rows = rows.filter(code__code=params["code"].strip().upper()[:64])
        return rows

    @extend_schema(
        request=s.GiftCardIssueSerializer,
        responses={201: s.GiftCardSerializer},
        examples=[
            OpenApiExample(
                "A 50.00 card", value={"campaign": 9, "amount": "50.00", "customer_id": 12}, request_only=True
            )
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Issue a card (its first ledger entry); the code is generated unless given."""
        serializer = s.GiftCardIssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = gift_cards.gift_card_issue(user=request.user, actor="api", **serializer.validated_data)
        return Response(s.GiftCardSerializer(card).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.GiftCardTopUpSerializer, responses={201: s.GiftCardEntrySerializer})
    @action(detail=True, methods=["post"], url_path="top-up")
    def top_up(self, request: Request, pk: str | None = None) -> Response:
        """Add to the card's balance (in the card's currency)."""
        card = self.get_object()
        serializer = s.GiftCardTopUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = gift_cards.gift_card_top_up(card=card, user=request.user, actor="api", **serializer.validated_data)
        return Response(s.GiftCardEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.GiftCardEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def ledger(self, request: Request, pk: str | None = None) -> Response:
        """The card's entries, newest first (issue, top-ups, spends, refunds, expiry)."""
        card = self.get_object()
        page = self.paginate_queryset(card.entries.order_by("-created_at", "-pk"))
        return self.get_paginated_response(s.GiftCardEntrySerializer(page, many=True).data)
