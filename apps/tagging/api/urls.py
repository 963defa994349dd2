from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("tags", views.TagViewSet, basename="tag")
router.register("products", views.ProductViewSet, basename="product")
# Only detail actions: adds customers/{id}/add_tags/ and customers/{id}/remove_tags/.
router.register("customers", views.CustomerTagActionsViewSet, basename="customer-tags")

urlpatterns = router.urls
