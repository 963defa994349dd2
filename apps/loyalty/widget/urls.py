"""The storefront widget's endpoints, mounted at /w/."""

from django.urls import path

from . import views

urlpatterns = [
    path("api/state/", views.widget_state, name="loyalty-widget-state"),
    path("api/redeem/", views.widget_redeem, name="loyalty-widget-redeem"),
]
