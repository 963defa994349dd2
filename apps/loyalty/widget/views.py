"""
The widget's endpoints under /w/api/, called cross-origin by the script on a shop page. Authentication is the
signed widget token in the `X-Loyalty-Widget-Token` header (no cookie, hence no CSRF); CORS answers only the
origins in LOYALTY_WIDGET_ALLOWED_ORIGINS, and a request from any other origin is refused (403) before anything
is read or written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from loyalty_site.lib.errors import DomainError

from .. import selectors, services
from ..choices import TierBasis
from ..models import Membership, Reward
from .brand import widget_brand
from .i18n import widget_catalog, widget_language
from .tokens import widget_membership

TOKEN_HEADER = "HTTP_X_LOYALTY_WIDGET_TOKEN"
MAX_BODY_BYTES = 1024


def origin_allowed(origin: str) -> bool:
    return bool(origin) and origin.rstrip("/") in {item.rstrip("/") for item in settings.LOYALTY_WIDGET_ALLOWED_ORIGINS}


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    if "Vary" not in response:
        response["Vary"] = "Origin"
    if origin_allowed(origin):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type, X-Loyalty-Widget-Token"
        response["Access-Control-Max-Age"] = "600"
    return response


def _error(status: int, code: str, message: str, path: str = "") -> JsonResponse:
    errors = [{"path": path, "message": message}] if path else []
    return JsonResponse({"error": code, "message": message, "errors": errors}, status=status)


def _language(request: HttpRequest, membership: Membership | None = None) -> str:
    """The snippet's data-lang, the customer's language, the shop page's lang, Accept-Language, else English."""
    return widget_language(
        chosen=request.GET.get("lang", ""),
        customer=membership.customer.language if membership is not None else "",
        page=request.GET.get("page_lang", ""),
        accept_language=request.headers.get("Accept-Language", ""),
    )


def _translated(response: HttpResponse, language: str) -> HttpResponse:
    response["Content-Language"] = language
    response["Vary"] = "Origin, Accept-Language"
    return response


View = Callable[[HttpRequest, Membership], HttpResponse]


def widget_endpoint(methods: tuple[str, ...]) -> Callable[[View], Callable[[HttpRequest], HttpResponse]]:
    """CORS for configured origins (preflight included), refusal of other origins, then the token."""

    def decorate(view: View) -> Callable[[HttpRequest], HttpResponse]:
        @csrf_exempt
        @never_cache
        @wraps(view)
        def wrapped(request: HttpRequest) -> HttpResponse:
            origin = request.headers.get("Origin", "")
            if request.method == "OPTIONS":
                return _cors(HttpResponse(status=204 if origin_allowed(origin) else 403), origin)
            if request.method not in methods:
                return _cors(_error(405, "method_not_allowed", f"Use {' or '.join(methods)}."), origin)
            # A browser always sends Origin on these cross-origin calls; a foreign one is refused outright.
            if origin and not origin_allowed(origin):
                return _cors(_error(403, "origin_not_allowed", "This shop origin may not use the widget."), origin)
            membership = widget_membership(request.META.get(TOKEN_HEADER, ""))
            if membership is None:
                # With the texts, so the launcher can say so in the visitor's language.
                language = _language(request)
                refused = _error(401, "invalid_token", "The widget token is invalid or has expired.")
                body = {**json.loads(refused.content), "lang": language, "strings": widget_catalog(language)}
                return _cors(_translated(JsonResponse(body, status=401), language), origin)
            return _cors(view(request, membership), origin)

        return wrapped

    return decorate


def _state(request: HttpRequest, membership: Membership, language: str) -> dict[str, Any]:
    balance = selectors.balance_of(membership)
    progress = selectors.tier_progress(membership=membership)
    rewards = selectors.rewards_priced(membership=membership)
    return {
        "lang": language,
        "strings": widget_catalog(language),
        "brand": widget_brand(),
        "customer": {"first_name": membership.customer.first_name},
        "program": membership.program.name,
        "balance": {"active": balance.active, "pending": balance.pending},
        "tier": membership.tier.name if membership.tier else None,
        "next_tier": progress.next_tier.name if progress.next_tier else None,
        "tier_progress": {
            "percent": progress.percent,
            "remaining": str(progress.remaining),
            "basis": membership.program.tier_basis,
            "remaining_label": (
                progress.remaining_money
                if membership.program.tier_basis == TierBasis.AMOUNT_SPENT
                else f"{int(progress.remaining)} points"
            ),
        },
        "rewards": [
            {
                "id": reward.pk,
                "name": reward.name,
                "description": reward.description,
                "points": reward.member_price,
                "affordable": reward.member_price <= balance.active,
            }
            for reward in rewards
        ],
        "referral_link": request.build_absolute_uri(f"/me/r/{membership.referral_code}/"),
        "blocked": membership.customer.is_blocked,
    }


@widget_endpoint(("GET",))
def widget_state(request: HttpRequest, membership: Membership) -> HttpResponse:
    """
    The launcher's content: balance, tier progress, rewards (with the member's price), referral link, with the
    Brand to paint it and the texts of the visitor's language.
    """
    language = _language(request, membership)
    return _translated(JsonResponse(_state(request, membership, language)), language)


@widget_endpoint(("POST",))
def widget_redeem(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Redeem one reward `{"reward": id, "confirm": true}` (the script's confirmation step sets `confirm`)."""
    if len(request.body) > MAX_BODY_BYTES:
        return _error(413, "payload_too_large", f"At most {MAX_BODY_BYTES} bytes.")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "validation_error", "The body is not JSON.", "body")
    if not isinstance(body, dict):
        return _error(400, "validation_error", "The body must be a JSON object.", "body")
    reward_id = body.get("reward")
    if not isinstance(reward_id, int) or isinstance(reward_id, bool) or not 0 < reward_id < 2**31:
        return _error(400, "validation_error", "Give the reward's id.", "reward")
    if body.get("confirm") is not True:
        return _error(400, "confirmation_required", "Confirm the redemption.", "confirm")
    if membership.customer.is_blocked:
        return _error(403, "customer_blocked", "This account cannot redeem rewards.")
    reward = get_object_or_404(Reward, pk=reward_id, program=membership.program)
    try:
        redemption = services.reward_redeem(membership=membership, reward=reward, cause="widget")
    except DomainError as error:
        status = 403 if error.code == "customer_blocked" else 400
        return _error(status, error.code, error.message, error.path)
    balance = selectors.balance_of(membership)
    return JsonResponse(
        {
            "code": redemption.code,
            "reward": reward.name,
            "expires_at": redemption.expires_at.isoformat() if redemption.expires_at else None,
            "balance": {"active": balance.active, "pending": balance.pending},
        },
        status=201,
    )
