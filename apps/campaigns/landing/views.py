"""
The console's landing-page pages under /admin/campaigns/landing/: the list, a new page from a template, the
block editor (save the draft, publish, unpublish) and the draft's preview. Each view states its permission.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ..promotions.models import Campaign
from . import selectors, services
from .blocks import LABELS, template_blocks
from .choices import PageTemplate
from .editor import blocks_apply, blocks_from_post, editor_blocks, upload_fields
from .models import LandingPage
from .public_views import IMAGES_FROM_HTTPS, page_render

VIEW = "campaigns.view_landingpage"
ADD = "campaigns.add_landingpage"
CHANGE = "campaigns.change_landingpage"
PUBLISH = "campaigns.publish_landingpage"


class NewPageForm(forms.Form):
    title = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, help_text="The page's address: /p/<address>/")
    template = forms.ChoiceField(choices=PageTemplate.choices, initial=PageTemplate.SIGNUP)


def _console(request: HttpRequest, title: str) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, "has_permission": True}


@staff_member_required
@permission_required(VIEW, raise_exception=True)
def page_list(request: HttpRequest) -> HttpResponse:
    context = {
        **_console(request, "Landing pages"),
        "pages": selectors.pages_list(),
        "may_add": request.user.has_perm(ADD),
        "referral_page": selectors.referral_page(),
        "may_publish": request.user.has_perm(PUBLISH),
    }
    return render(request, "landing/console_list.html", context)


@staff_member_required
@permission_required(ADD, raise_exception=True)
def page_new(request: HttpRequest) -> HttpResponse:
    form = NewPageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        template = form.cleaned_data["template"]
        try:
            page = services.landing_page_save(
                slug=form.cleaned_data["slug"],
                title=form.cleaned_data["title"],
                template=template,
                blocks=template_blocks(template),
                user=request.user,
            )
        except ValidationError as error:
            for path, problems in error.message_dict.items():
                form.add_error(path if path in form.fields else None, problems)
        else:
            messages.success(request, "Page created from the template: edit its blocks, then publish it.")
            return redirect("landing-edit", pk=page.pk)
    return render(request, "landing/console_new.html", {**_console(request, "New landing page"), "form": form})


def _campaign_choices() -> list[tuple[int, str]]:
    return list(Campaign.objects.order_by("name").values_list("pk", "name")[:200])


@staff_member_required
@permission_required(VIEW, raise_exception=True)
@IMAGES_FROM_HTTPS
def page_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The block editor. Buttons that add, remove or move blocks redraw the posted draft without saving it."""
    page = get_object_or_404(LandingPage.objects.select_related("published_version"), pk=pk)
    blocks: list[dict[str, Any]] = page.blocks
    title = page.title
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(CHANGE):
            raise PermissionDenied
        blocks = blocks_from_post(request.POST)
        title = request.POST.get("title", "").strip()
        operation = request.POST.get("op", "save")
        if operation == "publish" and not request.user.has_perm(PUBLISH):
            raise PermissionDenied  # before anything is stored
        # An uploaded image replaces the block's address whatever the button (the draft on screen keeps it).
        for index, name in upload_fields(blocks).items():
            upload = request.FILES.get(name)
            if upload is None:
                continue
            try:
                blocks[index]["image_url"] = services.landing_image_upload(upload=upload, user=request.user).url
            except ValidationError as error:
                errors[f"blocks[{index}].image_url"] = " ".join(error.message_dict.get("image", error.messages))
        if errors:
            status = 400
        elif operation in ("save", "publish"):
            try:
                services.landing_page_save(
                    page=page, slug=page.slug, title=title, template=page.template, blocks=blocks, user=request.user
                )
                if operation == "publish":
                    version = services.landing_page_publish(page=page, user=request.user)
                    messages.success(request, f"Published version {version.number} at /p/{page.slug}/.")
                else:
                    messages.success(request, "Draft saved.")
                return redirect("landing-edit", pk=page.pk)
            except ValidationError as error:
                errors = {path: " ".join(problems) for path, problems in error.message_dict.items()}
                status = 400
        else:
            blocks = blocks_apply(blocks, operation, request.POST.get("new_type", ""))
    drawn, other_errors = editor_blocks(blocks, errors, _campaign_choices())
    context = {
        **_console(request, f"Landing page: {page.title}"),
        "page": page,
        "page_title": title,
        "title_error": errors.get("title", ""),
        "blocks": drawn,
        "blocks_count": len(drawn),
        "other_errors": other_errors,
        "block_types": list(LABELS.items()),
        "may_change": request.user.has_perm(CHANGE),
        "may_publish": request.user.has_perm(PUBLISH),
        "versions": page.versions.order_by("-number")[:10],
        "submissions": page.submissions.count(),
        "image_limits": {
            "mb": settings.LANDING_IMAGE_MAX_BYTES // (1024 * 1024),
            "side": settings.LANDING_IMAGE_MAX_SIDE,
        },
    }
    return render(request, "landing/console_edit.html", context, status=status)


@staff_member_required
@permission_required(ADD, raise_exception=True)
@permission_required(PUBLISH, raise_exception=True)
@require_POST
def referral_page_install(request: HttpRequest) -> HttpResponse:
    """The explicit staff action that (re)installs the default referral page when none is published."""
    page = services.landing_referral_page_ensure(user=request.user)
    messages.success(request, f"The referral page /me/r/<code>/ shows “{page.title}” (/p/{page.slug}/).")
    return redirect("landing-edit", pk=page.pk)


@staff_member_required
@permission_required(PUBLISH, raise_exception=True)
@require_POST
def page_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    page = get_object_or_404(LandingPage, pk=pk)
    services.landing_page_unpublish(page=page, user=request.user)
    messages.success(request, f"/p/{page.slug}/ is offline; its versions are kept.")
    return redirect("landing-edit", pk=page.pk)


@staff_member_required
@permission_required(VIEW, raise_exception=True)
@IMAGES_FROM_HTTPS
def page_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The draft as visitors would see it once published (its form does not send)."""
    page = get_object_or_404(LandingPage, pk=pk)
    return page_render(request, title=page.title, blocks=page.blocks, preview=True)
