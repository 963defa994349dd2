"""Customer-facing pages (cockpit) and the landing redirect."""

from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("me/", include("apps.loyalty.public_urls")),
    path("", include("apps.customers.consent.urls")),
]
