"""
Console pages of message templates and the brand (under /admin/messaging/), and the public logo file.

Every page states its permission: seeing needs `view_*`, saving `change_*`/`add_*`, publishing
`customers.publish_messagetemplate`; a preview shows a customer's data, so it also needs `view_customer`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.cache import cache_control
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from apps.customers.models import Customer
from loyalty_site.lib.errors import DomainError

from . import selectors, services
from .choices import TemplateChannel
from .forms import BrandForm, TemplateCreateForm, VariantForm
from .models import MessageTemplate, TemplateVersion
from .preview import preview_render, send_test

VIEW = "customers.view_messagetemplate"
CHANGE = "customers.change_messagetemplate"
ADD = "customers.add_messagetemplate"
PUBLISH = "customers.publish_messagetemplate"
# A framed preview: the message's own inline styles and remote images, no script, framed by this site only.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; font-src https:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)


def _errors_list(error: ValidationError) -> list[dict[str, str]]:
    if hasattr(error, "error_dict"):
        return [{"path": path, "message": message} for path, items in error.message_dict.items() for message in items]
    return [{"path": "", "message": message} for message in error.messages]


def _console(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    from django.contrib import admin

    return render(request, template, {**admin.site.each_context(request), "has_permission": True, **context})


# --- Brand ------------------------------------------------------------------------------------------------------


@staff_member_required
@permission_required("customers.view_brand", raise_exception=True)
def brand_edit(request: HttpRequest) -> HttpResponse:
    """The brand: name, logo, colours, font, footer, sender (shared by e-mails, landing pages and the cockpit)."""
    brand = selectors.get_brand()
    may_change = request.user.has_perm("customers.change_brand")
    form = BrandForm(request.POST or None, request.FILES or None, instance=brand)
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in services.BRAND_FIELDS}
            try:
                services.brand_update(
                    fields=fields,
                    logo=form.cleaned_data.get("logo"),
                    logo_remove=form.cleaned_data.get("logo_remove", False),
                    user=request.user,
                )
            except ValidationError as error:
                for path, items in error.message_dict.items():
                    form.add_error(path if path in form.fields else None, items)
            else:
                messages.success(request, "Brand saved.")
                return redirect("messaging-brand")
    from .brand import brand_logo_url

    return _console(
        request,
        "messaging/brand.html",
        {"title": "Brand", "form": form, "brand": brand, "logo": brand_logo_url(brand), "may_change": may_change},
    )


# Public: the uploaded logo is shown in e-mails, landing pages and the cockpit, to anyone.
@require_GET
@cache_control(public=True, max_age=31_536_000, immutable=True)
def brand_logo(request: HttpRequest, digest: str) -> HttpResponse:
    brand = selectors.get_brand()
    if not brand.logo_data:
        raise Http404
    response = HttpResponse(bytes(brand.logo_data), content_type=brand.logo_content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Templates ----------------------------------------------------------------------------------------------


@staff_member_required
@permission_required(VIEW, raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    templates = list(selectors.templates_list())
    for template in templates:
        versions = template.versions_ordered  # type: ignore[attr-defined]  # (the selector's prefetch)
        published = [version for version in versions if version.number is not None]
        template.latest_published = max(published, key=lambda version: version.number, default=None)  # type: ignore[attr-defined]
        template.has_draft = any(version.number is None for version in versions)  # type: ignore[attr-defined]
    return _console(
        request,
        "messaging/template_list.html",
        {"title": "Message templates", "templates": templates, "may_add": request.user.has_perm(ADD)},
    )


@staff_member_required
@permission_required(ADD, raise_exception=True)
def template_add(request: HttpRequest) -> HttpResponse:
    form = TemplateCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_create(**form.cleaned_data, user=request.user)
        except ValidationError as error:
            for path, items in error.message_dict.items():
                form.add_error(path if path in form.fields else None, items)
        else:
            messages.success(request, f"Template “{template.name}” created as a draft.")
            return redirect("messaging-template", pk=template.pk)
    return _console(request, "messaging/template_add.html", {"title": "New message template", "form": form})


def _tab_locales(
    template: MessageTemplate, draft: TemplateVersion | None, published: TemplateVersion | None
) -> list[str]:
    locales = {template.default_locale}
    for version in (draft, published):
        if version is not None:
            locales.update(variant.locale for variant in version.variants.all())
    return [template.default_locale, *sorted(locales - {template.default_locale})]


@staff_member_required
@permission_required(VIEW, raise_exception=True)
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """One template: locale tabs over its draft, live preview for a chosen customer, history, publish, test."""
    template = get_object_or_404(MessageTemplate, pk=pk)
    draft = selectors.version_draft(template)
    published = selectors.version_published_latest(template)
    locales = _tab_locales(template, draft, published)
    locale = request.GET.get("locale") or template.default_locale
    if request.method == "POST":
        if not request.user.has_perm(CHANGE):
            raise PermissionDenied
        form = VariantForm(request.POST)
        if form.is_valid():
            try:
                services.variant_save(template=template, user=request.user, **form.cleaned_data)
            except ValidationError as error:
                for path, items in error.message_dict.items():
                    form.add_error(path if path in form.fields else None, items)
            else:
                messages.success(request, f"Draft saved ({form.cleaned_data['locale']}).")
                tag = services.locale_normalise(form.cleaned_data["locale"])
                return redirect(f"{reverse('messaging-template', kwargs={'pk': template.pk})}?locale={tag}")
        locale = request.POST.get("locale", locale)
    else:
        source = draft or published
        variant = next((v for v in source.variants.all() if v.locale == locale), None) if source else None
        form = VariantForm(
            initial={
                "locale": locale,
                "subject": variant.subject if variant else "",
                "body": variant.body if variant else "",
            }
        )
    history = list(
        TemplateVersion.objects.filter(template=template)
        .select_related("published_by", "created_by")
        .annotate(variant_count=Count("variants"))
        .order_by("status", "-number")
    )
    return _console(
        request,
        "messaging/template_edit.html",
        {
            "title": template.name,
            "template": template,
            "form": form,
            "locale": locale,
            "locales": locales,
            "draft": draft,
            "published": published,
            "history": history,
            "may_change": request.user.has_perm(CHANGE),
            "may_publish": request.user.has_perm(PUBLISH),
            "may_preview": request.user.has_perm("customers.view_customer"),
            "variables": variables_help(),
            "is_email": template.channel == TemplateChannel.EMAIL,
            "user_email": getattr(request.user, "email", ""),
        },
    )


def variables_help() -> list[dict[str, str]]:
    """The catalog fields a message may name, for the editor's reference list."""
    from loyalty_site.lib.conditions import fields_all

    return [
        {"name": spec.name, "label": spec.label}
        for spec in fields_all()
        if spec.scope in services.MESSAGE_SCOPES and spec.type not in ("list",) and not spec.is_wildcard
    ]


@staff_member_required
@permission_required(PUBLISH, raise_exception=True)
@require_POST
def template_publish(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(MessageTemplate, pk=pk)
    try:
        version = services.template_publish(template=template, user=request.user)
    except ValidationError as error:
        messages.error(request, "; ".join(f"{e['path']}: {e['message']}" for e in _errors_list(error)))
    else:
        messages.success(request, f"Version {version.number} published.")
    return redirect("messaging-template", pk=template.pk)


def _preview_customer(request: HttpRequest) -> Customer | None:
    """The customer named by id, e-mail or external id (capped before the lookup)."""
    raw = (request.POST.get("customer") or request.GET.get("customer") or "").strip()[:254]
    if not raw:
        return None
    if raw.isdigit():
        found = Customer.objects.filter(pk=int(raw)).first()
        if found:
            return found
    return Customer.objects.filter(email=raw.lower()).first() or Customer.objects.filter(external_id=raw).first()


@staff_member_required
@permission_required(VIEW, raise_exception=True)
@permission_required("customers.view_customer", raise_exception=True)
@require_POST
@xframe_options_sameorigin
def template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """
    The message for one customer exactly as it would be sent (the same rendering as `render_for`), from the
    texts in the form (unsaved edits: live preview) or the draft / a published version. `format=json`
    answers {subject, text, html, locale, version, errors}; otherwise the HTML document itself, for the frame.
    """
    template = get_object_or_404(MessageTemplate, pk=pk)
    customer = _preview_customer(request)
    wants_json = request.POST.get("format") == "json"
    try:
        if customer is None:
            raise ValidationError({"customer": ["choose a customer (id, e-mail or external id)"]})
        rendered = preview_render(
            template=template,
            customer=customer,
            locale=request.POST.get("locale", ""),
            subject=request.POST.get("subject"),
            body=request.POST.get("body"),
            version=request.POST.get("version", "draft"),
        )
    except (ValidationError, DomainError) as error:
        errors = (
            _errors_list(error)
            if isinstance(error, ValidationError)
            else [{"path": error.path, "message": error.message}]
        )
        if wants_json:
            return JsonResponse({"errors": errors}, status=400)
        response = HttpResponse(render_to_string("messaging/preview_errors.html", {"errors": errors}), status=400)
    else:
        if wants_json:
            return JsonResponse(
                {
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "html": rendered.html,
                    "locale": rendered.locale,
                    "version": rendered.version,
                    "errors": [],
                }
            )
        html = (
            rendered.html
            if template.channel == TemplateChannel.EMAIL
            else render_to_string("messaging/preview_text.html", {"rendered": rendered})
        )
        response = HttpResponse(html)
    response["Content-Security-Policy"] = PREVIEW_CSP
    response._csp_exempt = True  # type: ignore[attr-defined]  # (django-csp: this header, not the site's)
    return response


@staff_member_required
@permission_required(CHANGE, raise_exception=True)
@permission_required("customers.view_customer", raise_exception=True)
@require_POST
def template_send_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the draft (or latest version), rendered for the chosen customer, to the staff user's own address."""
    template = get_object_or_404(MessageTemplate, pk=pk)
    customer = _preview_customer(request)
    try:
        if customer is None:
            raise ValidationError({"customer": ["choose a customer (id, e-mail or external id)"]})
        delivery = send_test(
            template=template, customer=customer, user=request.user, locale=request.POST.get("locale", "")
        )
    except (ValidationError, DomainError) as error:
        text = (
            "; ".join(f"{e['path']}: {e['message']}" for e in _errors_list(error))
            if isinstance(error, ValidationError)
            else error.message
        )
        messages.error(request, f"Test not sent: {text}")
    else:
        link = reverse("admin:customers_delivery_change", args=[delivery.pk])
        if delivery.status == "sent":
            messages.success(
                request, format_html('Test sent to {} (<a href="{}">delivery #{}</a>).', delivery.to, link, delivery.pk)
            )
        elif delivery.status == "queued":
            messages.warning(
                request,
                format_html(
                    'Test to {} not sent yet: {} — retried automatically (<a href="{}">delivery #{}</a>).',
                    delivery.to,
                    delivery.error or "the provider is busy",
                    link,
                    delivery.pk,
                ),
            )
        else:
            messages.error(
                request,
                format_html(
                    'Test to {} not sent: {} (<a href="{}">delivery #{}</a>).',
                    delivery.to,
                    delivery.error or delivery.get_reason_display(),
                    link,
                    delivery.pk,
                ),
            )
    url = reverse("messaging-template", kwargs={"pk": template.pk})
    return redirect(f"{url}?locale={request.POST.get('locale', '')}&customer={customer.pk if customer else ''}")


@staff_member_required
@permission_required(VIEW, raise_exception=True)
@require_GET
def template_choices(request: HttpRequest) -> JsonResponse:
    """Published templates by channel, for the builder's notify.* `template` picker."""
    channel = request.GET.get("channel") or None
    rows = [
        {"key": template.key, "name": template.name, "channel": template.channel}
        for template in selectors.templates_list(channel=channel, published_only=True)
    ]
    return JsonResponse({"templates": rows}, json_dumps_params={"ensure_ascii": False})
