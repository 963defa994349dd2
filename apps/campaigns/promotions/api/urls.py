from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from .views import CampaignViewSet, GiftCardViewSet, IncentiveViewSet, LimitViewSet, PromotionsViewSet

router = DefaultRouter(trailing_slash=True)
router.register("promotion-campaigns", CampaignViewSet, basename="promotion-campaign")
router.register("promotion-incentives", IncentiveViewSet, basename="promotion-incentive")
router.register("promotion-limits", LimitViewSet, basename="promotion-limit")
router.register("gift-cards", GiftCardViewSet, basename="gift-card")


def _op(name: str, methods: tuple[str, ...] = ("post",)):
    return PromotionsViewSet.as_view(dict.fromkeys(methods, name))


urlpatterns = [
    re_path(r"^promotions/validate/?$", _op("validate"), name="promotions-validate"),
    re_path(r"^promotions/qualify/?$", _op("qualify"), name="promotions-qualify"),
    re_path(r"^promotions/reserve/?$", _op("reserve"), name="promotions-reserve"),
    re_path(r"^promotions/redeem/?$", _op("redeem"), name="promotions-redeem"),
    path("promotions/redemptions/<str:pk>/", _op("redemption", ("get",)), name="promotions-redemption"),
    re_path(r"^promotions/redemptions/(?P<pk>[^/]+)/rollback/?$", _op("rollback"), name="promotions-rollback"),
    re_path(r"^promotions/kill-switch/?$", _op("kill_switch", ("get", "post")), name="promotions-kill-switch"),
    *router.urls,
]
