"""Customer-facing pages (cockpit) and the landing redirect."""

from django.urls import include, path
from django.views.generic import RedirectView

from apps.campaigns.landing import public_views as landing
from apps.customers.messaging.templating.urls import public_urlpatterns

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Landing pages, and the referral page (a landing page with who invited you) before the cockpit's routes.
    path("p/<slug:slug>/", landing.landing_page, name="landing-page"),
    # Uploaded hero images (MEDIA_ROOT/landing/ through the default storage), served by the app in dev and production.
    path("media/landing/<str:name>", landing.landing_image, name="landing-image"),
    path("me/r/<str:code>/", landing.referral_landing, name="loyalty-referral-landing"),
    path("me/", include("apps.loyalty.public_urls")),
    # The storefront widget's endpoints (CORS for the configured shop origins).
    path("w/", include("apps.loyalty.widget.urls")),
    path("", include("apps.customers.consent.urls")),
    *public_urlpatterns,
]
