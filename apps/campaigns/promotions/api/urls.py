from rest_framework.routers import DefaultRouter

from .views import CampaignViewSet, GiftCardViewSet, IncentiveViewSet, LimitViewSet

# The checkout operations (validate, qualify, reserve, redeem, rollback, the kill switch) are in checkout_urls,
# mounted first under /api/v1/.
router = DefaultRouter(trailing_slash=True)
router.register("promotion-campaigns", CampaignViewSet, basename="promotion-campaign")
router.register("promotion-incentives", IncentiveViewSet, basename="promotion-incentive")
router.register("promotion-limits", LimitViewSet, basename="promotion-limit")
router.register("gift-cards", GiftCardViewSet, basename="gift-card")

urlpatterns = [*router.urls]
