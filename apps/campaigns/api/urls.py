from django.urls import include, path
from rest_framework.routers import DefaultRouter

from ..landing.api.views import LandingPageViewSet
from .views import SegmentViewSet

router = DefaultRouter(trailing_slash=True)
router.register("segments", SegmentViewSet, basename="segment")
router.register("landing-pages", LandingPageViewSet, basename="landing-page")

urlpatterns = [*router.urls, path("", include("apps.campaigns.promotions.api.urls"))]
