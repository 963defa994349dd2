from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from apps.customers.models import Customer
from loyalty_site.lib.api.ranges import BoundedInputMixin

from ..models import (
    Balance,
    EarningRule,
    EarningRuleLimit,
    LedgerEntry,
    Membership,
    Program,
    Redemption,
    Referral,
    Reward,
    RewardTierPrice,
    Tier,
    currency_earning_rates_errors,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class ProgramSerializer(BoundedInputMixin, serializers.ModelSerializer):
    class Meta:
        model = Program
        fields = "__all__"
        read_only_fields = ["created_at"]

    def validate_currency_earning_rates(self, value: Any) -> Any:
        errors = currency_earning_rates_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class TierSerializer(BoundedInputMixin, serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = "__all__"


class EarningRuleSerializer(BoundedInputMixin, serializers.ModelSerializer):
    class Meta:
        model = EarningRule
        fields = "__all__"
        read_only_fields = ["created_at"]


class EarningRuleLimitSerializer(serializers.ModelSerializer):
    """A points limit of an earning rule."""

    points = serializers.IntegerField(min_value=1, max_value=2_000_000_000)

    class Meta:
        model = EarningRuleLimit
        fields = ["id", "rule", "points", "period", "scope"]


class RewardTierPriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = RewardTierPrice
        fields = ["tier", "points_cost"]


class RewardSerializer(BoundedInputMixin, serializers.ModelSerializer):
    tier_prices = RewardTierPriceSerializer(many=True, read_only=True)

    class Meta:
        model = Reward
        fields = "__all__"
        read_only_fields = ["created_at"]


class MemberRewardSerializer(RewardSerializer):
    member_price = serializers.IntegerField(read_only=True, help_text="What this member pays (tier price)")


class TierBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = ["id", "name", "rank", "threshold", "multiplier"]


class BalanceSerializer(serializers.ModelSerializer):
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Balance
        fields = [
            "active",
            "pending",
            "debt",
            "available",
            "expiring_soon",
            "lifetime_earned",
            "lifetime_spent",
            "lifetime_expired",
            "updated_at",
        ]


class MembershipSerializer(serializers.ModelSerializer):
    customer_id = serializers.IntegerField(read_only=True)
    program: "serializers.SlugRelatedField[Program]" = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tier = TierBriefSerializer(read_only=True)
    tier_floor = TierBriefSerializer(read_only=True)
    balance = BalanceSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = [
            "id",
            "customer_id",
            "program",
            "joined_at",
            "referral_code",
            "tier",
            "tier_floor",
            "tier_since",
            "tier_hold_until",
            "balance",
        ]


class LedgerEntrySerializer(serializers.ModelSerializer):
    actor: "serializers.StringRelatedField[User]" = serializers.StringRelatedField()
    source_key = serializers.CharField(source="lot.source_key", default=None, allow_null=True, read_only=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "active_delta",
            "pending_delta",
            "debt_delta",
            "active_after",
            "lot",
            "source_key",
            "redemption",
            "reason",
            "actor",
            "cause",
            "created_at",
        ]


class RedemptionSerializer(serializers.ModelSerializer):
    reward_name = serializers.CharField(source="reward.name", read_only=True)
    customer_id = serializers.IntegerField(source="membership.customer_id", read_only=True)
    qr_payload = serializers.CharField(read_only=True)

    class Meta:
        model = Redemption
        fields = [
            "id",
            "code",
            "qr_payload",
            "reward",
            "reward_name",
            "customer_id",
            "status",
            "points_spent",
            "fulfilment_status",
            "issued_at",
            "expires_at",
            "used_at",
            "used_channel",
            "rolled_back_at",
        ]


class ReferralSerializer(serializers.ModelSerializer):
    referrer_customer_id = serializers.IntegerField(source="referrer.customer_id", read_only=True)

    class Meta:
        model = Referral
        fields = [
            "id",
            "referrer_customer_id",
            "referee",
            "status",
            "referrer_bonus",
            "referee_bonus",
            "refused_reason",
            "created_at",
            "rewarded_at",
        ]


class PointsChangeSerializer(BoundedInputMixin, serializers.Serializer):
    points = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(max_length=255)


class RewardChoiceSerializer(serializers.Serializer):
    reward = serializers.PrimaryKeyRelatedField(queryset=Reward.objects.all())


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    channel = serializers.ChoiceField(choices=["online", "store"], default="online")


class RollbackSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, default="Rolled back")


class ReferralRegisterSerializer(BoundedInputMixin, serializers.Serializer):
    referee = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all(), help_text="Customer id of the referred customer"
    )
    code = serializers.CharField(max_length=16)
    ip = serializers.IPAddressField(
        required=False, allow_null=True, help_text="The referee's IP address at sign-up (fraud checks)"
    )
    device = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="The referee's device fingerprint (fraud checks)"
    )
