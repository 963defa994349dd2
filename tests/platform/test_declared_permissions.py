"""Every API view under /api/v1/ states its permissions and token scope family; nothing relies on is_staff."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.platform.permissions import API_PERMISSIONS, SCOPES_BY_FAMILY, STANDARD_ACTIONS


def _api_views() -> dict[str, type]:
    found: dict[str, type] = {}

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                view = getattr(pattern.callback, "cls", None)
                # The routers' API root only lists URLs; it falls to the default classes (refused). The API
                # index (GET /api/v1/) lists only what its caller may reach (tests/api/test_api_index.py).
                if (
                    route.startswith("api/v1/")
                    and view is not None
                    and view.__name__ not in ("APIRootView", "ApiIndexView")
                ):
                    found[route] = view

    walk(get_resolver().url_patterns)
    return found


VIEWS = _api_views()


def test_the_api_has_views():
    assert len({view.__name__ for view in VIEWS.values()}) >= 20


@pytest.mark.parametrize("route", sorted(VIEWS))
def test_each_api_view_declares_permissions_and_a_scope_family(route):
    view = VIEWS[route]
    assert list(view.permission_classes) == API_PERMISSIONS, view
    assert view.scope_family in SCOPES_BY_FAMILY, view
    declared = getattr(view, "action_permissions", {})
    has_model = (
        getattr(view, "queryset", None) is not None
        or "get_queryset" in vars(view)
        or any("get_queryset" in vars(base) for base in view.__mro__ if base.__module__.startswith("apps."))
    )
    extra = [action.__name__ for action in getattr(view, "get_extra_actions", list)()]
    for action in extra:
        assert action in declared, f"{view.__name__}.{action} declares no permission"
    if not has_model:
        standard = [name for name in STANDARD_ACTIONS if hasattr(view, name)] if extra or declared else []
        handlers = [method for method in ("get", "post", "put", "patch", "delete") if hasattr(view, method)]
        for name in standard + ([] if hasattr(view, "get_extra_actions") else handlers):
            if name == "metadata":
                continue
            assert name in declared, f"{view.__name__}.{name} declares no permission and has no model"
