"""Pages: the customer cockpit (signed link), its link request, and the staff in-store redemption page (admin)."""

import hashlib

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.customers.messaging.templating.brand import brand_look
from apps.platform.capabilities import CONFIRM_REDEMPTION
from loyalty_site.lib.errors import DomainError

from . import selectors, services
from .choices import RedemptionStatus
from .cockpit import cockpit_membership, cockpit_path
from .forms import CodeForm
from .models import Reward


def _qr_svg(payload: str) -> str:
    return segno.make(payload, error="m").svg_inline(scale=4, dark="#111", light="#fff")


@never_cache
def cockpit(request: HttpRequest, token: str) -> HttpResponse:
    membership = cockpit_membership(token)
    if membership is None:
        raise Http404("Unknown or expired link.")
    now = timezone.now()
    balance = selectors.balance_of(membership)
    redemptions = list(
        selectors.redemptions_of(membership=membership)
        .filter(status=RedemptionStatus.ISSUED)
        .order_by("-issued_at")[:10]
    )
    rewards = selectors.rewards_priced(membership=membership, at=now)
    for reward in rewards:
        reward.balance_after = balance.available - reward.member_price
    for redemption in redemptions:
        redemption.qr_svg = _qr_svg(redemption.qr_payload)
    context = {
        "membership": membership,
        "customer": membership.customer,
        "program": membership.program,
        "balance": balance,
        "pending_days": selectors.pending_by_day(membership=membership),
        "used_redemptions": selectors.redemptions_history(membership=membership),
        "expiring_lots": selectors.lots_expiring(membership=membership, at=now)[:10],
        "progress": selectors.tier_progress(membership=membership, at=now),
        "rewards": rewards,
        "redemptions": redemptions,
        "referral_link": request.build_absolute_uri(f"/me/r/{membership.referral_code}/"),
        "token": token,
        "link_days": settings.LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS,
        "brand": brand_look(),  # the Brand shared with e-mails and landing pages
    }
    return render(request, "loyalty/cockpit.html", context)


@never_cache
@require_POST
def cockpit_redeem(request: HttpRequest, token: str, reward_id: int) -> HttpResponse:
    membership = cockpit_membership(token)
    if membership is None:
        raise Http404("Unknown or expired link.")
    reward = get_object_or_404(Reward, pk=reward_id, program=membership.program)
    # Points are spent only on an explicit confirmation of the price the member saw: a changed price (tier
    # moved, reward edited) since the page was shown asks again instead of spending a different amount.
    if request.POST.get("confirm") != "spend":
        messages.error(request, f"Nothing was spent: confirm to redeem {reward.name}.")
        return redirect("loyalty-cockpit", token=token)
    price = services.reward_price(membership=membership, reward=reward)
    if request.POST.get("points") != str(price):
        messages.error(request, f"Nothing was spent: {reward.name} now costs {price} points. Check it again.")
        return redirect("loyalty-cockpit", token=token)
    try:
        redemption = services.reward_redeem(membership=membership, reward=reward, cause="cockpit")
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Redeemed {reward.name}. Your code: {redemption.code}")
    return redirect("loyalty-cockpit", token=token)


class CockpitLinkRequestForm(forms.Form):
    email = forms.EmailField(max_length=254)


def _rate_limited(*keys: str) -> bool:
    """Count this request against each key for an hour; True when any is past its limit."""
    limit = settings.LOYALTY_COCKPIT_LINK_REQUESTS_PER_HOUR
    limited = False
    for key in keys:
        cache.add(key, 0, timeout=3600)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=3600)
            count = 1
        limited = limited or count > limit
    return limited


@never_cache
def cockpit_link_request(request: HttpRequest) -> HttpResponse:
    """/me/: a member asks for a fresh cockpit link by e-mail; the answer never says whether the address
    is known, and requests are limited per client address and per e-mail address."""
    form = CockpitLinkRequestForm(request.POST or None)
    context = {"form": form, "max_age_days": settings.LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS}
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        digest = hashlib.sha256(email.encode()).hexdigest()
        if _rate_limited(f"cockpit-link:ip:{request.META.get('REMOTE_ADDR', '')}", f"cockpit-link:email:{digest}"):
            return render(request, "loyalty/cockpit_link_request.html", {**context, "limited": True}, status=429)
        services.cockpit_links_send(
            email=email, link_for=lambda membership: request.build_absolute_uri(cockpit_path(membership))
        )
        return render(request, "loyalty/cockpit_link_request.html", {**context, "sent": True})
    return render(request, "loyalty/cockpit_link_request.html", context)


@never_cache
@require_POST
def cockpit_referral_name(request: HttpRequest, token: str) -> HttpResponse:
    membership = cockpit_membership(token)
    if membership is None:
        raise Http404("Unknown or expired link.")
    services.referral_name_set(membership=membership, show=request.POST.get("show") == "1")
    messages.success(request, "Your referral page is updated.")
    return redirect("loyalty-cockpit", token=token)


@staff_member_required
@permission_required(CONFIRM_REDEMPTION, raise_exception=True)
def staff_scan(request: HttpRequest) -> HttpResponse:
    """Staff scan (or type) a customer's QR code, check it, then confirm the in-store redemption."""
    redemption = None
    form = CodeForm(request.POST or request.GET or None)
    if form.is_valid():
        try:
            if request.method == "POST" and request.POST.get("confirm") == "1":
                redemption = services.redemption_use(
                    code=form.cleaned_data["code"], actor=request.user, channel="store"
                )
                messages.success(request, f"Confirmed: {redemption.reward.name} for {redemption.membership.customer}.")
                return redirect("loyalty-staff-scan")
            redemption = services.redemption_find(form.cleaned_data["code"])
        except DomainError as error:
            messages.error(request, error.message)
    from django.contrib import admin

    context = {
        # The console's header and navigation (the Scan tab), like every admin page.
        **admin.site.each_context(request),
        "title": "In-store redemption",
        "form": form,
        "redemption": redemption,
        "usable": redemption is not None
        and redemption.status == RedemptionStatus.ISSUED
        and (redemption.expires_at is None or redemption.expires_at > timezone.now()),
    }
    return render(request, "loyalty/staff_scan.html", context)
