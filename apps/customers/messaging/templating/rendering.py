"""
Rendering a template for one customer, exactly as it is sent (previews call the same function).

Variables are catalog fields rendered by the shared sandboxed renderer (`loyalty_site.lib.conditions`);
values are escaped for where they land (Markdown for e-mail and in-app bodies, nothing for SMS and subjects).
E-mail HTML is the body inside the brand's responsive layout (`templates/messaging/email.html`), with its
CSS inlined by css-inline; the plain-text alternative is generated from that HTML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import css_inline
from django.template.loader import render_to_string
from django.utils import timezone

from apps.customers.consent import services as consent
from loyalty_site.lib.conditions import EvaluationContext, template_render_text
from loyalty_site.lib.errors import DomainError

from .brand import brand_logo_url
from .choices import TemplateChannel, TemplatePurpose
from .locales import locale_choose
from .models import Brand, MessageTemplate, TemplateVariant, TemplateVersion
from .selectors import get_brand, template_get, version_published_latest
from .text import html_text, markdown_escape, markdown_html

# The footer's unsubscribe link of a marketing e-mail to an unsaved customer (no signed link can name one).
UNSUBSCRIBE_URL_PLACEHOLDER = "[[unsubscribe_url]]"
# Context keys that are the objects of an EvaluationContext; every other key goes to its `extra`.
_OBJECT_KEYS = ("order", "line", "product", "cart", "draft_order", "custom_event", "store", "location", "tag")
_inliner = css_inline.CSSInliner(keep_style_tags=True)


@dataclass(frozen=True)
class Rendered:
    """A message ready to send, and which template version and locale variant it came from."""

    subject: str
    text: str
    html: str
    template_id: int
    version: int
    locale: str


def evaluation_context(customer: Any, context: dict[str, Any] | None) -> EvaluationContext:
    """
    The renderer's context: `context["evaluation"]` when the caller has one (a workflow step passes the
    run's), else one built from `context` — objects (order, cart, …) by name, the rest (`run_id`,
    `payload`) as extras, which is where `{{ voucher.code }}` finds the run and the event's code.
    """
    context = dict(context or {})
    evaluation = context.get("evaluation")
    if isinstance(evaluation, EvaluationContext):
        return evaluation if evaluation.customer is customer else _with_customer(evaluation, customer)
    objects = {key: context.pop(key) for key in _OBJECT_KEYS if key in context}
    now = context.pop("now", None) or timezone.now()
    context.pop("unsubscribe_url", None)
    return EvaluationContext(customer=customer, now=now, extra=context, **objects)


def _with_customer(evaluation: EvaluationContext, customer: Any) -> EvaluationContext:
    return dataclasses.replace(evaluation, customer=customer, cache={})


def variant_pick(template: MessageTemplate, version: TemplateVersion, customer: Any) -> TemplateVariant:
    variants = {variant.locale: variant for variant in version.variants.all()}
    locale = locale_choose(getattr(customer, "language", ""), variants, default=template.default_locale)
    variant = variants.get(locale)
    if variant is None:
        raise DomainError(
            f'template "{template.key}" version {version.number} has no "{template.default_locale}" variant',
            path="template",
            code="template_incomplete",
        )
    return variant


def email_html(*, subject: str, body_html: str, locale: str, brand: Brand, unsubscribe_url: str | None) -> str:
    """The e-mail layout around a rendered body, CSS inlined (style tag kept for the media queries)."""
    html = render_to_string(
        "messaging/email.html",
        {
            "subject": subject,
            "body_html": body_html,
            "locale": locale,
            "brand": brand,
            "logo_url": brand_logo_url(brand),
            "unsubscribe_url": unsubscribe_url,
        },
    )
    return _inliner.inline(html)


def variant_render(
    *,
    template: MessageTemplate,
    version_number: int,
    variant: TemplateVariant,
    customer: Any,
    context: dict[str, Any] | None,
    brand: Brand | None = None,
) -> Rendered:
    """One variant rendered for one customer (published or draft: the preview of a draft renders the same way)."""
    evaluation = evaluation_context(customer, context)
    subject = template_render_text(variant.subject, evaluation)
    if template.channel == TemplateChannel.SMS:
        text = template_render_text(variant.body, evaluation)
        return Rendered(
            subject="", text=text, html="", template_id=template.pk, version=version_number, locale=variant.locale
        )
    body_html = markdown_html(template_render_text(variant.body, evaluation, escape=markdown_escape))
    if template.channel == TemplateChannel.IN_APP:
        return Rendered(
            subject=subject,
            text=html_text(body_html),
            html=body_html,
            template_id=template.pk,
            version=version_number,
            locale=variant.locale,
        )
    unsubscribe_url = None
    if template.purpose == TemplatePurpose.MARKETING:
        unsubscribe_url = (context or {}).get("unsubscribe_url")
        if not unsubscribe_url:
            unsubscribe_url = (
                consent.unsubscribe_url(customer, channel="email", purpose="marketing")
                if getattr(customer, "pk", None)
                else UNSUBSCRIBE_URL_PLACEHOLDER
            )
    html = email_html(
        subject=subject,
        body_html=body_html,
        locale=variant.locale,
        brand=brand or get_brand(),
        unsubscribe_url=unsubscribe_url,
    )
    return Rendered(
        subject=subject,
        text=html_text(html),
        html=html,
        template_id=template.pk,
        version=version_number,
        locale=variant.locale,
    )


@dataclass(frozen=True)
class PreparedTemplate:
    """
    A published version read once (template, version, variants, brand: 4 queries) and rendered for many
    customers without reading it again — for bulk sends. `render_for` is one of these used once.
    """

    template: MessageTemplate
    version: TemplateVersion
    brand: Brand

    def render(self, customer: Any, *, context: dict[str, Any] | None) -> Rendered:
        variant = variant_pick(self.template, self.version, customer)
        assert self.version.number is not None  # (only published versions are prepared)
        return variant_render(
            template=self.template,
            version_number=self.version.number,
            variant=variant,
            customer=customer,
            context=context,
            brand=self.brand,
        )


def template_prepare(template_key: str, *, channel: str) -> PreparedTemplate:
    """
    The latest published version of template `template_key` for `channel`, ready to render. Refuses
    (DomainError, path "template") an unknown key, a template of another channel and a template never published.
    """
    template = template_get(key=template_key)
    if template is None:
        raise DomainError(f'no message template "{template_key}"', path="template", code="template_not_found")
    if template.channel != channel:
        raise DomainError(
            f'template "{template_key}" is for {template.channel}, not {channel}',
            path="template",
            code="template_channel_mismatch",
        )
    version = version_published_latest(template)
    if version is None or version.number is None:
        raise DomainError(
            f'template "{template_key}" has no published version', path="template", code="template_not_published"
        )
    return PreparedTemplate(template=template, version=version, brand=get_brand())


def render_for(template_key: str, customer: Any, *, channel: str, context: dict[str, Any] | None) -> Rendered:
    """
    The latest published version of template `template_key`, in the customer's language (`customer.language`,
    falling back to the template's default locale), rendered for `customer` on `channel`.

    Refuses (DomainError, path "template") an unknown key, a template of another channel and a template never
    published. `context`: see `evaluation_context`. The footer of a marketing e-mail links to
    `consent.unsubscribe_url(customer, channel="email", purpose="marketing")` (`context["unsubscribe_url"]`
    overrides it). Sending one template to many customers: `template_prepare(...).render(customer, ...)`.
    """
    return template_prepare(template_key, channel=channel).render(customer, context=context)
