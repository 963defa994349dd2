"""The public webhook endpoints, mounted at /hooks/."""

from django.urls import path

from . import views

urlpatterns = [
    path("shopify/<str:key>/", views.shopify_webhook, name="connectors-shopify-webhook"),
    path("woocommerce/<str:key>/", views.woocommerce_webhook, name="connectors-woocommerce-webhook"),
]
