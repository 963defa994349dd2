from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .views import SegmentViewSet

router = DefaultRouter(trailing_slash=True)
router.register("segments", SegmentViewSet, basename="segment")

urlpatterns = [*router.urls, path("", include("apps.campaigns.promotions.api.urls"))]
