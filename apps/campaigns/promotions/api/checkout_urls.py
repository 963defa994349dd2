"""
The checkout operations of the promotions API. loyalty_site/urls.py mounts them first under /api/v1/: a shop asks
validate on every cart view, and Django tries the URL patterns in order — behind every router of every app, one
validation paid more for finding its view than for its own statements. The patterns are anchored on their whole
path, so nothing else can match before them.
"""

from django.urls import path, re_path

from .views import PromotionsViewSet


def _op(name: str, methods: tuple[str, ...] = ("post",)):
    return PromotionsViewSet.as_view(dict.fromkeys(methods, name))


urlpatterns = [
    re_path(r"^promotions/validate/?$", _op("validate"), name="promotions-validate"),
    re_path(r"^promotions/qualify/?$", _op("qualify"), name="promotions-qualify"),
    re_path(r"^promotions/reserve/?$", _op("reserve"), name="promotions-reserve"),
    re_path(r"^promotions/redeem/?$", _op("redeem"), name="promotions-redeem"),
    path("promotions/redemptions/<str:pk>/", _op("redemption", ("get",)), name="promotions-redemption"),
    re_path(r"^promotions/redemptions/(?P<pk>[^/]+)/rollback/?$", _op("rollback"), name="promotions-rollback"),
    re_path(r"^promotions/kill-switch/?$", _op("kill_switch", ("get", "post")), name="promotions-kill-switch"),
]
