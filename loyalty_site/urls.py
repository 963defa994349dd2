from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

api_v1 = [
    path("", include("apps.customers.api.urls")),
    path("", include("apps.tagging.api.urls")),
    path("", include("apps.loyalty.api.urls")),
    path("", include("apps.campaigns.api.urls")),
    path("", include("apps.automations.api.urls")),
    path("", include("apps.automations.api.gallery_urls")),
]

urlpatterns = [
    # App pages mounted under /admin/ first so they win over the admin's catch-all.
    path("admin/automations/", include("apps.automations.urls")),
    path("admin/loyalty/", include("apps.loyalty.urls")),
    path("admin/campaigns/", include("apps.campaigns.urls")),
    path("admin/customers/", include("apps.customers.urls")),
    path("admin/tagging/", include("apps.tagging.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("loyalty_site.public_urls")),
]
