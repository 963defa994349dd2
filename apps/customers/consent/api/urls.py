from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("suppressions", views.SuppressionViewSet, basename="suppression")

urlpatterns = router.urls
