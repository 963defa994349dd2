from rest_framework.routers import DefaultRouter

from apps.customers.messaging.templating.api.views import MessageTemplateViewSet

from ..consent.api import urls as consent_urls
from . import exchange_rates, views

router = DefaultRouter(trailing_slash=True)
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("orders", views.OrderViewSet, basename="order")
router.register("draft-orders", views.DraftOrderViewSet, basename="draft-order")
router.register("carts", views.CartViewSet, basename="cart")
router.register("events", views.CustomerEventViewSet, basename="event")
router.register("locations", views.LocationViewSet, basename="location")
router.register("stores", views.StoreViewSet, basename="store")
router.register("batch", views.BatchViewSet, basename="batch")
router.register("exchange-rates", exchange_rates.ExchangeRateViewSet, basename="exchange-rate")
router.register("message-templates", MessageTemplateViewSet, basename="message-template")

urlpatterns = [*router.urls, *consent_urls.urlpatterns]
