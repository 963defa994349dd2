"""Loyalty API: staff CRUD for the program set-up, per-customer operations for integrators."""

from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.customers.models import Customer
from apps.platform import capabilities as cap
from apps.platform.audit import AuditedViewSetMixin
from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.api.pagination import StandardPagination, paginated
from loyalty_site.lib.errors import DomainError

from .. import selectors, services
from ..models import EarningRule, EarningRuleLimit, Membership, Program, Redemption, Referral, Reward, Tier
from . import serializers as s


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    return f"{request.user.pk}:{key}"[:120] if key else None


def _cause(request: Request) -> str:
    return f"api:{request.user.pk}"


class StaffCrudViewSet(IdempotentMixin, AuditedViewSetMixin, viewsets.ModelViewSet):
    """The program set-up: model permissions (GET needs `view_*`), scope `loyalty:read`/`loyalty:write`; audited."""

    permission_classes = API_PERMISSIONS
    scope_family = "loyalty"


class ProgramViewSet(StaffCrudViewSet):
    queryset = Program.objects.order_by("pk")
    serializer_class = s.ProgramSerializer


class TierViewSet(StaffCrudViewSet):
    """Tiers; a write that would break the program's ladder (ranks and thresholds rise together) is a 400."""

    queryset = Tier.objects.select_related("program").order_by("program_id", "rank")
    serializer_class = s.TierSerializer
    filterset_fields = ["program"]

    def perform_create(self, serializer: serializers.BaseSerializer[Tier]) -> None:
        serializer.instance = services.tier_save(tier=Tier(**serializer.validated_data))

    def perform_update(self, serializer: serializers.BaseSerializer[Tier]) -> None:
        tier = serializer.instance
        assert tier is not None  # (UpdateModelMixin.update hands over the serializer of get_object())
        for name, value in serializer.validated_data.items():
            setattr(tier, name, value)
        serializer.instance = services.tier_save(tier=tier)


class EarningRuleViewSet(StaffCrudViewSet):
    queryset = EarningRule.objects.order_by("program_id", "pk")
    serializer_class = s.EarningRuleSerializer
    filterset_fields = ["program", "kind", "is_active"]

    # Through the services, which validate the conditions against the catalog (errors keyed by path).
    def perform_create(self, serializer: serializers.BaseSerializer[EarningRule]) -> None:
        serializer.instance = services.earning_rule_create(**serializer.validated_data)

    def perform_update(self, serializer: serializers.BaseSerializer[EarningRule]) -> None:
        rule = serializer.instance
        assert rule is not None  # (UpdateModelMixin.update hands over the serializer of get_object())
        serializer.instance = services.earning_rule_update(rule=rule, **serializer.validated_data)


class EarningRuleLimitViewSet(StaffCrudViewSet):
    """Points limits of earning rules ("at most 100 points a day per customer from this rule"); audited services."""

    queryset = EarningRuleLimit.objects.order_by("rule_id", "pk")
    serializer_class = s.EarningRuleLimitSerializer
    filterset_fields = ["rule", "period", "scope"]

    def perform_create(self, serializer: serializers.BaseSerializer[EarningRuleLimit]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.earning_rule_limit_create(
            rule=data.pop("rule"), points=data.pop("points"), user=self.request.user, **data
        )

    def perform_update(self, serializer: serializers.BaseSerializer[EarningRuleLimit]) -> None:
        limit = serializer.instance
        assert limit is not None
        data = dict(serializer.validated_data)
        if "rule" in data and data.pop("rule").pk != limit.rule_id:
            raise ValidationError({"rule": "A limit cannot move to another rule."})
        serializer.instance = services.earning_rule_limit_update(limit=limit, user=self.request.user, **data)

    def perform_destroy(self, instance: EarningRuleLimit) -> None:
        services.earning_rule_limit_delete(limit=instance, user=self.request.user)


class RewardViewSet(StaffCrudViewSet):
    queryset = Reward.objects.prefetch_related("tiers", "tier_prices").order_by("program_id", "points_cost", "pk")
    serializer_class = s.RewardSerializer
    filterset_fields = ["program", "kind", "is_active"]


class LoyaltyCustomerViewSet(IdempotentMixin, viewsets.ViewSet):
    """`/loyalty/customers/<customer id>/`: a customer's membership, balance, ledger, rewards, operations."""

    permission_classes = API_PERMISSIONS
    scope_family = "loyalty"
    read_actions = ("validate",)
    action_permissions = {
        "retrieve": ["loyalty.view_membership"],
        "ledger": ["loyalty.view_membership", "loyalty.view_ledgerentry"],
        "rewards": ["loyalty.view_membership", "loyalty.view_reward"],
        "referrals": ["loyalty.view_membership", "loyalty.view_referral"],
        "validate": ["loyalty.view_membership", "loyalty.view_reward"],
        "join": ["loyalty.add_membership"],
        "award": [cap.AWARD_POINTS],
        "deduct": [cap.DEDUCT_POINTS],
        "redeem": [cap.REDEEM_FOR_CUSTOMER],
    }

    lookup_value_regex = r"\d+"

    def _membership(self, pk: str, *, join: bool = False) -> Membership:
        membership = selectors.membership_get(customer_id=int(pk))
        if membership is None:
            customer = get_object_or_404(Customer, pk=pk)
            if not join:
                raise DomainError("This customer is not a member.", path="customer", code="not_a_member")
            joined, _ = services.member_join(customer=customer, cause=_cause(self.request))
            # re-read through the selector (its joins serve the response)
            return selectors.membership_get(customer_id=int(pk)) or joined
        return membership

    @extend_schema(responses=s.MembershipSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        data = s.MembershipSerializer(membership).data
        progress = selectors.tier_progress(membership=membership)
        data["next_tier"] = s.TierBriefSerializer(progress.next_tier).data if progress.next_tier else None
        data["tier_progress"] = {
            "metric": str(progress.metric),
            "remaining": str(progress.remaining),
            "percent": progress.percent,
        }
        return Response(data)

    @extend_schema(request=None, responses=s.MembershipSerializer)
    @action(detail=True, methods=["post"])
    def join(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk, join=True)
        return Response(s.MembershipSerializer(membership).data, status=201)

    @extend_schema(
        responses=paginated(s.LedgerEntrySerializer, name="PaginatedLedgerEntryList"),
        parameters=[
            OpenApiParameter("page", int, description="A page number within the paginated result set."),
            OpenApiParameter("page_size", int, description="Number of results to return per page."),
        ],
    )
    @action(detail=True, methods=["get"])
    def ledger(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        paginator = self.paginator
        page = paginator.paginate_queryset(selectors.ledger_entries(membership=membership), request, view=self)
        return paginator.get_paginated_response(s.LedgerEntrySerializer(page, many=True).data)

    @extend_schema(responses=s.MemberRewardSerializer(many=True))
    @action(detail=True, methods=["get"])
    def rewards(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        rewards = selectors.rewards_priced(membership=membership)
        return Response(s.MemberRewardSerializer(rewards, many=True).data)

    @extend_schema(request=s.PointsChangeSerializer, responses=s.MembershipSerializer)
    @action(detail=True, methods=["post"])
    def award(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk, join=True)
        body = self._valid(s.PointsChangeSerializer)
        services.points_award(
            membership=membership,
            points=body["points"],
            reason=body["reason"],
            source_type="api",
            key=_idempotency_key(request),
            actor=request.user,
            cause=_cause(request),
        )
        return Response(s.MembershipSerializer(selectors.membership_get(customer_id=int(pk))).data, status=201)

    @extend_schema(request=s.PointsChangeSerializer, responses=s.MembershipSerializer)
    @action(detail=True, methods=["post"])
    def deduct(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        body = self._valid(s.PointsChangeSerializer)
        services.points_deduct(
            membership=membership,
            points=body["points"],
            reason=body["reason"],
            key=_idempotency_key(request),
            actor=request.user,
            cause=_cause(request),
        )
        return Response(s.MembershipSerializer(selectors.membership_get(customer_id=int(pk))).data, status=201)

    @extend_schema(request=s.RewardChoiceSerializer, responses={200: None})
    @action(detail=True, methods=["post"])
    def validate(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        body = self._valid(s.RewardChoiceSerializer)
        services.reward_validate(membership=membership, reward=body["reward"])
        price = services.reward_price(membership=membership, reward=body["reward"])
        return Response({"valid": True, "points_cost": price})

    @extend_schema(request=s.RewardChoiceSerializer, responses=s.RedemptionSerializer)
    @action(detail=True, methods=["post"])
    def redeem(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        body = self._valid(s.RewardChoiceSerializer)
        redemption = services.reward_redeem(
            membership=membership,
            reward=body["reward"],
            key=_idempotency_key(request),
            actor=request.user,
            cause=_cause(request),
        )
        return Response(s.RedemptionSerializer(redemption).data, status=201)

    @extend_schema(responses=s.ReferralSerializer(many=True))
    @action(detail=True, methods=["get"])
    def referrals(self, request: Request, pk: str) -> Response:
        membership = self._membership(pk)
        return Response(s.ReferralSerializer(selectors.referrals_of(membership=membership), many=True).data)

    def _valid(self, serializer_class: Any) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            self._paginator = StandardPagination()
        return self._paginator


class RedemptionViewSet(IdempotentMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = API_PERMISSIONS
    scope_family = "loyalty"
    read_actions = ("check",)
    action_permissions = {
        "use": [cap.CONFIRM_REDEMPTION],
        "check": ["loyalty.view_redemption"],
        "rollback": ["loyalty.change_redemption"],
    }
    queryset = Redemption.objects.select_related("reward", "membership").order_by("-issued_at", "-pk")
    serializer_class = s.RedemptionSerializer
    filterset_fields = ["status", "reward"]

    @extend_schema(request=s.CodeSerializer, responses=s.RedemptionSerializer)
    @action(detail=False, methods=["post"])
    def use(self, request: Request) -> Response:
        body = s.CodeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        redemption = services.redemption_use(
            code=body.validated_data["code"], actor=request.user, channel=body.validated_data["channel"]
        )
        return Response(s.RedemptionSerializer(redemption).data)

    @extend_schema(request=s.CodeSerializer, responses=s.RedemptionSerializer)
    @action(detail=False, methods=["post"])
    def check(self, request: Request) -> Response:
        body = s.CodeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(s.RedemptionSerializer(services.redemption_find(body.validated_data["code"])).data)

    @extend_schema(request=s.RollbackSerializer, responses=s.RedemptionSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        body = s.RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        redemption = services.redemption_rollback(
            redemption=self.get_object(),
            reason=body.validated_data["reason"],
            actor=request.user,
            cause=_cause(request),
        )
        return Response(s.RedemptionSerializer(redemption).data)


class ReferralViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = API_PERMISSIONS
    scope_family = "loyalty"
    queryset = Referral.objects.select_related("referrer").order_by("-created_at", "-pk")
    serializer_class = s.ReferralSerializer
    filterset_fields = ["status"]

    @extend_schema(request=s.ReferralRegisterSerializer, responses=s.ReferralSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.ReferralRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        referral = services.referral_register(
            referee=body.validated_data["referee"],
            code=body.validated_data["code"],
            cause=_cause(request),
            ip=body.validated_data.get("ip"),
            device=body.validated_data.get("device", ""),
        )
        return Response(s.ReferralSerializer(referral).data, status=201)
