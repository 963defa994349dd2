"""
Public pages: a published landing page at /p/<slug>/ (server-rendered, its sign-up form posts back to it) and
the referral page /me/r/<code>/ (the published page of the referral template, with who invited you).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from csp.decorators import csp_update
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.customers.messaging.templating.brand import brand_look
from apps.loyalty.models import Membership

from . import selectors, services
from .blocks import form_block, template_blocks
from .choices import PageTemplate
from .forms import MAX_FORM_AGE_SECONDS, SignupForm, started_age, started_token
from .models import LandingPage

# Hero images may come from any https address (a CDN, the shop); nothing else is loosened. (django-csp types its
# decorators for views without URL arguments.)
IMAGES_FROM_HTTPS: Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]] = cast(
    Any, csp_update({"img-src": ["https:"]})
)


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or ""


def submissions_rate_limited(ip: str) -> bool:
    """Count one form submission from `ip`; True past LANDING_FORM_SUBMISSIONS_PER_HOUR (default cache)."""
    key = f"landing-form:ip:{ip}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > settings.LANDING_FORM_SUBMISSIONS_PER_HOUR


def _fill(text: str, *, inviter: str, program: str) -> str:
    return text.replace("{inviter}", inviter).replace("{program}", program)


def page_render(
    request: HttpRequest,
    *,
    title: str,
    blocks: list[dict[str, Any]],
    referrer: Membership | None = None,
    form: SignupForm | None = None,
    sent: bool = False,
    preview: bool = False,
    status: int = 200,
) -> HttpResponse:
    """Render blocks (a published version, or a draft in the console's preview) as one page."""
    data = selectors.page_data(blocks=blocks, program=referrer.program if referrer else None)
    program_name = data.program.name if data.program else ""
    inviter = (referrer.customer.first_name if referrer and referrer.referral_shows_name else "") or "A friend"
    rendered: list[dict[str, Any]] = []
    live_countdown = False
    for index, block in enumerate(blocks):
        kind = block["type"]
        shown = dict(block)
        if kind == "hero":
            shown["title"] = _fill(block.get("title", ""), inviter=inviter, program=program_name)
            shown["text"] = _fill(block.get("text", ""), inviter=inviter, program=program_name)
        if kind == "form":
            form = form or SignupForm(block, initial={"started": started_token()})
        if kind == "rewards":
            shown["rewards"] = data.rewards[: block.get("limit") or 6]
        if kind == "countdown":
            campaign = data.campaigns.get(int(block.get("campaign") or 0))
            ends_at = campaign.ends_at if campaign is not None else None
            shown["ends_at"] = ends_at
            shown["ended"] = ends_at is None or ends_at <= data.now
            if ends_at is not None and not shown["ended"]:
                # The server's figures are the text without JavaScript; countdown.js ticks from `remaining`
                # (seconds, measured here, so a wrong clock on the visitor's device does not matter).
                remaining = max(1, int((ends_at - data.now).total_seconds()))
                shown["remaining"] = remaining
                shown["days"], rest = divmod(remaining, 86400)
                shown["hours"], rest = divmod(rest, 3600)
                shown["minutes"], shown["seconds"] = divmod(rest, 60)
                live_countdown = True
        rendered.append({"index": index, "type": kind, "block": shown, "template": f"landing/blocks/{kind}.html"})
    context = {
        "title": _fill(title, inviter=inviter, program=program_name),
        "blocks": rendered,
        "brand": brand_look(),
        "data": data,
        "form": form,
        "sent": sent,
        "preview": preview,
        "referrer": referrer,
        "inviter": inviter,
        "referral_path": f"/me/r/{referrer.referral_code}/" if referrer else "",
        "live_countdown": live_countdown,
    }
    return render(request, "landing/page.html", context, status=status)


def _form_post(request: HttpRequest, page: LandingPage, *, referrer: Membership | None) -> HttpResponse:
    version = page.published_version
    assert version is not None
    block = form_block(version.blocks)
    if block is None:
        raise Http404("This page has no form.")
    if submissions_rate_limited(_client_ip(request)):
        form = SignupForm(block, request.POST)
        form.is_valid()
        form.errors.clear()
        form.add_error(None, "Too many sign-ups from your network in the last hour; please try again later.")
        return page_render(
            request, title=version.title, blocks=version.blocks, referrer=referrer, form=form, status=429
        )
    form = SignupForm(block, request.POST)
    if form.is_bot():  # a honeypot was filled: answer like a success, do nothing
        return redirect(request.path + "?sent=1#signup")
    if form.is_valid():
        code = referrer.referral_code if referrer is not None else ""
        try:
            services.form_submit(
                page=page,
                values=form.customer_fields(),
                consents=form.consents(),
                ip=_client_ip(request) or None,
                device=form.device(),
                referral_code=code,
            )
        except ValidationError as error:
            for path, messages in error.message_dict.items():
                form.add_error(path if path in form.fields else None, messages)
        else:
            return redirect(request.path + "?sent=1#signup")
    # A visitor correcting a mistake keeps their start time (a tampered or stale one is renewed).
    age = started_age(str(form.data.get("started") or ""))
    if age is None or age > MAX_FORM_AGE_SECONDS:
        renewed = request.POST.copy()
        renewed["started"] = started_token()
        form.data = renewed
    return page_render(request, title=version.title, blocks=version.blocks, referrer=referrer, form=form, status=400)


@never_cache
@IMAGES_FROM_HTTPS
def landing_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A published page; POST sends its form (rate-limited per IP, honeypot, minimum fill time)."""
    page = selectors.page_published(slug=slug)
    if page is None or page.published_version is None:
        raise Http404("No such page.")
    if request.method == "POST":
        return _form_post(request, page, referrer=None)
    version = page.published_version
    return page_render(request, title=version.title, blocks=version.blocks, sent=request.GET.get("sent") == "1")


@never_cache
@IMAGES_FROM_HTTPS
def referral_landing(request: HttpRequest, code: str) -> HttpResponse:
    """
    /me/r/<code>/: who invited you (their first name only if they chose so), what you get, a sign-up form. A GET
    never writes: without a published referral page it draws the referral template's blocks in memory; only a
    sign-up (POST) falls back on publishing the default page, since a submission belongs to a page version.
    """
    referrer = selectors.referrer_by_code(code)
    if referrer is None:
        raise Http404("Unknown referral code.")
    page = selectors.referral_page()
    if request.method == "POST":
        return _form_post(request, page or services.landing_referral_page_ensure(), referrer=referrer)
    if page is None or page.published_version is None:
        title, blocks = services.REFERRAL_PAGE_TITLE, template_blocks(PageTemplate.REFERRAL)
    else:
        title, blocks = page.published_version.title, page.published_version.blocks
    return page_render(request, title=title, blocks=blocks, referrer=referrer, sent=request.GET.get("sent") == "1")


IMAGE_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")
IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@require_safe
def landing_image(request: HttpRequest, name: str) -> HttpResponseBase:
    """
    An uploaded hero image, public like the pages that show it (no permission: anyone may see a published page's
    image; names are content hashes, so they cannot be guessed and never change — cached for a year).
    """
    match = IMAGE_NAME.match(name)
    path = f"landing/{name}"
    if match is None or not default_storage.exists(path):
        raise Http404("No such image.")
    response = FileResponse(default_storage.open(path, "rb"), content_type=IMAGE_TYPES[match.group(1)])
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response
