"""Pages: the customer cockpit (signed link) and the staff in-store redemption page (admin)."""

import segno
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.platform.capabilities import CONFIRM_REDEMPTION
from loyalty_site.lib.errors import DomainError

from . import selectors, services
from .choices import RedemptionStatus
from .cockpit import cockpit_membership
from .forms import CodeForm
from .models import Membership, Reward


def _qr_svg(payload: str) -> str:
    return segno.make(payload, error="m").svg_inline(scale=4, dark="#111", light="#fff")


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
    for redemption in redemptions:
        redemption.qr_svg = _qr_svg(redemption.qr_payload)
    context = {
        "membership": membership,
        "customer": membership.customer,
        "program": membership.program,
        "balance": balance,
        "pending_lots": selectors.lots_pending(membership=membership)[:10],
        "expiring_lots": selectors.lots_expiring(membership=membership, at=now)[:10],
        "progress": selectors.tier_progress(membership=membership, at=now),
        "rewards": selectors.rewards_priced(membership=membership, at=now),
        "redemptions": redemptions,
        "referral_link": request.build_absolute_uri(f"/me/r/{membership.referral_code}/"),
        "token": token,
    }
    return render(request, "loyalty/cockpit.html", context)


@require_POST
def cockpit_redeem(request: HttpRequest, token: str, reward_id: int) -> HttpResponse:
    membership = cockpit_membership(token)
    if membership is None:
        raise Http404("Unknown or expired link.")
    reward = get_object_or_404(Reward, pk=reward_id, program=membership.program)
    try:
        redemption = services.reward_redeem(membership=membership, reward=reward, cause="cockpit")
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Redeemed {reward.name}. Your code: {redemption.code}")
    return redirect("loyalty-cockpit", token=token)


def referral_landing(request: HttpRequest, code: str) -> HttpResponse:
    referrer = Membership.objects.select_related("customer", "program").filter(referral_code=code.upper()).first()
    if referrer is None:
        raise Http404("Unknown referral code.")
    return render(request, "loyalty/referral_landing.html", {"referrer": referrer, "code": referrer.referral_code})


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
    context = {
        "title": "In-store redemption",
        "form": form,
        "redemption": redemption,
        "usable": redemption is not None
        and redemption.status == RedemptionStatus.ISSUED
        and (redemption.expires_at is None or redemption.expires_at > timezone.now()),
        "site_header": "Loyalty Site",
        "has_permission": True,
    }
    return render(request, "loyalty/staff_scan.html", context)
