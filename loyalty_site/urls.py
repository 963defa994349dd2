from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from loyalty_site.api_index import ApiIndexView
from loyalty_site.health import healthz

api_v1: list[URLPattern | URLResolver] = [
    # Before the routers' own (403) root views: the index of what this caller may reach.
    path("", ApiIndexView.as_view(), name="api-index"),
    # The promotions checkout (validate on every cart view) before every router: see its module.
    path("", include("apps.campaigns.promotions.api.checkout_urls")),
    path("", include("apps.customers.api.urls")),
    path("", include("apps.customers.messaging.api.urls")),
    path("", include("apps.tagging.api.urls")),
    path("", include("apps.loyalty.api.urls")),
    path("", include("apps.campaigns.api.urls")),
    path("", include("apps.automations.api.urls")),
    path("", include("apps.automations.api.gallery_urls")),
    path("", include("apps.reports.api.urls")),
]

urlpatterns = [
    # App pages mounted under /admin/ first so they win over the admin's catch-all.
    path("admin/automations/", include("apps.automations.urls")),
    path("admin/loyalty/", include("apps.loyalty.urls")),
    path("admin/campaigns/", include("apps.campaigns.urls")),
    path("admin/customers/", include("apps.customers.urls")),
    path("admin/tagging/", include("apps.tagging.urls")),
    path("admin/console/", include("apps.automations.console.urls")),
    path("admin/reports/", include("apps.reports.urls")),
    path("admin/messaging/", include("apps.customers.messaging.templating.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script under the CSP.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("healthz", healthz, name="healthz"),
    # Store webhooks (Shopify, WooCommerce): authenticated by their HMAC, not by a session or token.
    path("hooks/", include("apps.connectors.hook_urls")),
    path("", include("loyalty_site.public_urls")),
]

# JSON for every error under /api/ (unknown URLs, exceptions outside DRF views); Django's pages elsewhere.
handler404 = "loyalty_site.lib.api.errors.page_not_found"
handler500 = "loyalty_site.lib.api.errors.server_error"
