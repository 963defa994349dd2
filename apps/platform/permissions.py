"""
Who may call an API view: the user's permissions AND, for a request made with an API token, the token's
scopes (a token acts with the intersection of both). `is_staff` plays no part anywhere.

Every API view declares:
- `scope_family`: which token scope covers it ("ingest", "loyalty", "workflows", "campaigns"); safe methods
  and the actions in `read_actions` are reads, everything else a write (see `SCOPES_BY_FAMILY`);
- `action_permissions` for anything that is not plain model CRUD ({"award": [AWARD_POINTS], ...}, or per
  method: {"refunds": {"GET": [...], "POST": [...]}}). Standard
  CRUD actions need the queryset model's permission by method — GET/HEAD/OPTIONS need `view_<model>` —
  and an action that is neither standard nor listed is refused (fail closed).
"""

from collections.abc import Iterable
from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import ApiToken

SCOPES = (
    "ingest",
    "loyalty:read",
    "loyalty:write",
    "widget",
    "workflows",
    "campaigns",
    "messaging",
    "reports",
    "admin",
)
SCOPE_DESCRIPTIONS = {
    "ingest": "a shop backend: customers, products, orders, refunds, carts, events, locations, stores, tags, batch",
    "loyalty:read": "balances, ledgers, rewards, redemptions, referrals and the program set-up (read only)",
    "loyalty:write": "join, award/deduct points, redeem, use and roll back codes, referrals, program set-up",
    "widget": "a shop backend issuing storefront widget tokens for its signed-in customers (nothing else)",
    "workflows": "workflows, templates, runs (create, edit, activate, pause, test, replay)",
    "campaigns": "segments and campaigns",
    "messaging": "deliveries (every message sent, failed, suppressed or queued; read only)",
    "reports": "read-only access to every list and detail",
    "admin": "everything the token's user may do",
}
# (scopes that allow a read, scopes that allow a write); `admin` allows everything.
SCOPES_BY_FAMILY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ingest": (("ingest", "reports"), ("ingest",)),
    "loyalty": (("loyalty:read", "loyalty:write", "reports"), ("loyalty:write",)),
    "widget": (("widget",), ("widget",)),
    "workflows": (("workflows", "reports"), ("workflows",)),
    "campaigns": (("campaigns", "reports"), ("campaigns",)),
    "messaging": (("messaging", "reports"), ("messaging",)),
    # The dashboard and reports (apps/reports) are read-only: nothing there is a write but for `admin`.
    "reports": (("reports",), ("admin",)),
}
STANDARD_ACTIONS = {"list", "retrieve", "create", "update", "partial_update", "destroy", "metadata"}
PERMS_BY_METHOD = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def _action(request: Request, view: Any) -> str:
    return getattr(view, "action", None) or (request.method or "").lower()


def _is_read(request: Request, view: Any) -> bool:
    return request.method in SAFE_METHODS or _action(request, view) in getattr(view, "read_actions", ())


def required_scopes(request: Request, view: Any) -> tuple[str, ...] | None:
    """The scopes of which a token needs one for this request (None: the view declared no family)."""
    family = SCOPES_BY_FAMILY.get(getattr(view, "scope_family", ""))
    if family is None:
        return None
    return family[0] if _is_read(request, view) else family[1]


def required_permissions(request: Request, view: Any) -> list[str] | None:
    """The permissions the user needs for this request (None: nothing declared, refuse)."""
    action = _action(request, view)
    declared = getattr(view, "action_permissions", {})
    if action in declared:
        needed = declared[action]
        if isinstance(needed, dict):  # one action answering several methods: {"GET": [...], "POST": [...]}
            needed = needed.get(request.method, needed.get("GET") if request.method in SAFE_METHODS else None)
        return None if needed is None else list(needed)
    if getattr(view, "action", None) not in STANDARD_ACTIONS | {None}:
        return None
    model = getattr(view, "permission_model", None)
    if model is None:
        queryset = getattr(view, "queryset", None)
        if queryset is None and hasattr(view, "get_queryset"):
            try:
                queryset = view.get_queryset()
            except (AssertionError, NotImplementedError):
                queryset = None
        model = getattr(queryset, "model", None)
    if model is None or request.method not in PERMS_BY_METHOD:
        return None
    return [f"{model._meta.app_label}.{PERMS_BY_METHOD[request.method]}_{model._meta.model_name}"]


class ModelPermissions(BasePermission):
    """The user's model (or declared per-action) permissions; GET needs `view_*`."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        required = required_permissions(request, view)
        if required is None:
            self.message = "This operation declares no permission; it is refused."
            return False
        missing = [name for name in required if not user.has_perm(name)]
        if missing:
            self.message = f"Missing permission: {', '.join(missing)}."
            return False
        return True


class MissingScope(exceptions.PermissionDenied):
    default_code = "missing_scope"


class TokenScopes(BasePermission):
    """A request made with an API token needs one of the scopes its view family requires."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True  # a session: the user's permissions alone decide
        granted = set(token.scopes or ())
        if "admin" in granted:
            return True
        needed = required_scopes(request, view)
        if needed is None:
            raise MissingScope("This operation is available to tokens with the scope `admin` only.")
        if granted.isdisjoint(needed):
            raise MissingScope(
                f"This token lacks the scope `{needed[0]}` needed here"
                f" (it has: {', '.join(sorted(granted)) or 'no scope'})."
            )
        return True


API_PERMISSIONS = [TokenScopes, ModelPermissions]


def user_has_all(user: Any, permissions: Iterable[str]) -> bool:
    return bool(user and user.is_authenticated and user.has_perms(list(permissions)))
