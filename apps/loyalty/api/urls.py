from django.urls import path
from rest_framework.routers import DefaultRouter

from ..widget.api import WidgetTokenView
from . import views

router = DefaultRouter(trailing_slash=True)
router.register("loyalty/programs", views.ProgramViewSet, basename="loyalty-program")
router.register("loyalty/tiers", views.TierViewSet, basename="loyalty-tier")
router.register("loyalty/rules", views.EarningRuleViewSet, basename="loyalty-rule")
router.register("loyalty/rule-limits", views.EarningRuleLimitViewSet, basename="loyalty-rule-limit")
router.register("loyalty/rewards", views.RewardViewSet, basename="loyalty-reward")
router.register("loyalty/customers", views.LoyaltyCustomerViewSet, basename="loyalty-customer")
router.register("loyalty/redemptions", views.RedemptionViewSet, basename="loyalty-redemption")
router.register("loyalty/referrals", views.ReferralViewSet, basename="loyalty-referral")

urlpatterns = [
    path("loyalty/widget-tokens/", WidgetTokenView.as_view(), name="loyalty-widget-token"),
    *router.urls,
]
