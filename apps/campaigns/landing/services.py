"""
Landing pages (save with validated blocks, publish a version, unpublish) and form submissions (sign-up,
double opt-in, and what confirmation gives: membership, voucher, referral). Every write goes through here.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.customers.models import Customer
from apps.customers.outbox import domain_event_emit
from apps.customers.services import customer_create, customer_update
from apps.loyalty import services as loyalty_services
from apps.platform.audit import audit_record, audit_snapshot
from apps.platform.kill_switch import kill_switch_is_on
from loyalty_site.lib.errors import DomainError

from ..promotions.models import Campaign
from ..promotions.services import code_publish
from .blocks import ATTRIBUTE_PREFIX, blocks_errors, form_block, template_blocks
from .choices import PageStatus, PageTemplate, SubmissionStatus
from .images import image_clean
from .models import FormSubmission, LandingImage, LandingPage, LandingPageVersion
from .optin import optin_confirmed, optin_request
from .selectors import referral_page
from .signals import form_submitted

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"admin", "api", "static", "media", "me", "w"})


def _campaign_refs_errors(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """Blocks that name a promotion campaign must name one that exists (one query for every reference)."""
    wanted: dict[str, int] = {}
    for index, block in enumerate(blocks):
        if block.get("type") == "form" and isinstance(block.get("voucher_campaign"), int):
            wanted[f"blocks[{index}].voucher_campaign"] = block["voucher_campaign"]
        if block.get("type") == "countdown" and isinstance(block.get("campaign"), int):
            wanted[f"blocks[{index}].campaign"] = block["campaign"]
    if not wanted:
        return {}
    found = {
        row["pk"]: row["ends_at"]
        for row in Campaign.objects.filter(pk__in=set(wanted.values())).values("pk", "ends_at")
    }
    errors: dict[str, str] = {}
    for path, pk in wanted.items():
        if pk not in found:
            errors[path] = f"No promotion campaign with id {pk}."
        elif path.endswith(".campaign") and found[pk] is None:
            errors[path] = "This campaign has no end date to count down to."
    return errors


def landing_page_errors(*, slug: str, title: str, template: str, blocks: Any) -> dict[str, str]:
    """Every problem of a page as {path: message} (slug, title, template, blocks[i]…)."""
    errors: dict[str, str] = {}
    if not isinstance(slug, str) or not SLUG_PATTERN.match(slug):
        errors["slug"] = "Use 1 to 60 lower-case letters, digits and dashes (not at either end)."
    elif slug in RESERVED_SLUGS:
        errors["slug"] = "This address is reserved."
    if not isinstance(title, str) or not title.strip():
        errors["title"] = "This field is required."
    elif len(title) > 120:
        errors["title"] = "At most 120 characters."
    if template not in PageTemplate.values:
        errors["template"] = f"Unknown template; one of {', '.join(PageTemplate.values)}."
    block_errors = blocks_errors(blocks)
    errors.update(block_errors)
    if not block_errors:
        errors.update(_campaign_refs_errors(blocks))
    return errors


@transaction.atomic
def landing_page_save(
    *,
    page: LandingPage | None = None,
    slug: str,
    title: str,
    blocks: list[dict[str, Any]],
    template: str = PageTemplate.SIGNUP,
    user: Any = None,
) -> LandingPage:
    """Create or change a page's draft; refuses invalid blocks with their paths (nothing is written)."""
    errors = landing_page_errors(slug=slug, title=title, template=template, blocks=blocks)
    others = LandingPage.objects.filter(slug=slug)
    if page is not None:
        others = others.exclude(pk=page.pk)
    if not errors and others.exists():
        errors["slug"] = "Another page has this address."
    if errors:
        raise ValidationError(errors)
    creating = page is None
    if page is None:
        page = LandingPage()
        before = None
    else:
        page = LandingPage.objects.select_for_update().get(pk=page.pk)
        before = audit_snapshot(page)
    page.slug, page.title, page.template, page.blocks = slug, title.strip(), template, blocks
    page.updated_by = user if getattr(user, "is_authenticated", False) else None
    page.save()
    audit_record(action="created" if creating else "changed", obj=page, before=before, user=user)
    return page


@transaction.atomic
def landing_page_publish(*, page: LandingPage, user: Any = None) -> LandingPageVersion:
    """Freeze the draft as the next version and serve it at /p/<slug>/ (re-validated first)."""
    page = LandingPage.objects.select_for_update().get(pk=page.pk)
    errors = landing_page_errors(slug=page.slug, title=page.title, template=page.template, blocks=page.blocks)
    if errors:
        raise ValidationError(errors)
    before = audit_snapshot(page, fields=["status", "published_version"])
    number = (page.versions.aggregate(last=Max("number"))["last"] or 0) + 1
    version = LandingPageVersion.objects.create(
        page=page,
        number=number,
        title=page.title,
        blocks=page.blocks,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    page.status, page.published_version = PageStatus.PUBLISHED, version
    page.save(update_fields=["status", "published_version", "updated_at"])
    audit_record(action="published", obj=page, before=before, user=user)
    return version


@transaction.atomic
def landing_page_unpublish(*, page: LandingPage, user: Any = None) -> LandingPage:
    """Take the page offline (/p/<slug>/ answers 404); its versions are kept."""
    page = LandingPage.objects.select_for_update().get(pk=page.pk)
    before = audit_snapshot(page, fields=["status"])
    page.status = PageStatus.DRAFT
    page.save(update_fields=["status", "updated_at"])
    audit_record(action="unpublished", obj=page, before=before, user=user)
    return page


# --- Hero images ---------------------------------------------------------------------------------------------


def landing_image_upload(*, upload: UploadedFile, user: Any = None) -> LandingImage:
    """
    Store an image uploaded in the editor: refused past LANDING_IMAGE_MAX_BYTES before it is read, then checked
    and re-encoded by `image_clean` (type by content, dimensions, metadata dropped), saved with Django's default
    storage as `landing/<sha256>.<ext>` and recorded (audited). The same image twice is the same row.
    """
    limit = settings.LANDING_IMAGE_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ValidationError({"image": f"The image is too large: at most {limit // (1024 * 1024)} MB."})
    try:
        clean = image_clean(upload.read(limit + 1))
    except ValidationError as error:
        raise ValidationError({"image": error.messages}) from error
    name = f"landing/{hashlib.sha256(clean.content).hexdigest()}.{clean.extension}"
    known = LandingImage.objects.filter(file=name).first()
    if known is not None:
        return known
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(clean.content))
    try:
        with transaction.atomic():
            image = LandingImage.objects.create(
                file=name,
                content_type=clean.content_type,
                width=clean.width,
                height=clean.height,
                size=len(clean.content),
                uploaded_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:  # the same image uploaded at the same moment by someone else
        return LandingImage.objects.get(file=name)
    changes = {key: {"old": None, "new": value} for key, value in (("file", name), ("size", image.size))}
    audit_record(action="created", obj=image, changes=changes, user=user)
    return image


# --- Form submissions --------------------------------------------------------------------------------------

FORM_SUBMITTED = "form.submitted"


def _customer_for_email(
    *, email: str, values: dict[str, Any], ip: str | None, cause: str, device: str = ""
) -> Customer:
    """
    The customer with this e-mail (the oldest), given the form's values only where theirs are empty (a form
    never overwrites what a known customer told us), or a new registered customer signed up from `ip`.
    """
    profile = {name: value for name, value in values.items() if not name.startswith(ATTRIBUTE_PREFIX)}
    profile.pop("email", None)
    attributes = {
        name.removeprefix(ATTRIBUTE_PREFIX): value
        for name, value in values.items()
        if name.startswith(ATTRIBUTE_PREFIX)
    }
    customer = Customer.objects.filter(email=email).order_by("pk").first()
    if customer is None:
        # Marketing consent comes from the double opt-in alone, never from the column's default.
        fields: dict[str, Any] = {**profile, "email": email, "accepts_marketing": False}
        if attributes:
            fields["attributes"] = attributes
        return customer_create(signup_ip=ip, signup_device=device, cause=cause, **fields)
    missing = {name: value for name, value in profile.items() if not getattr(customer, name, None)}
    new_attributes = {key: value for key, value in attributes.items() if key not in (customer.attributes or {})}
    if new_attributes:
        missing["attributes"] = {**(customer.attributes or {}), **new_attributes}
    if missing:
        customer = customer_update(customer=customer, cause=cause, **missing)
    return customer


@transaction.atomic
def form_submit(
    *,
    page: LandingPage,
    values: dict[str, Any],
    consents: list[str],
    ip: str | None = None,
    device: str = "",
    referral_code: str = "",
) -> tuple[FormSubmission, bool]:
    """
    A visitor sent the published form of `page`: identify or create the customer by e-mail, ask for double
    opt-in on each ticked channel, record the submission and fire `form.submitted` with the form's fields.
    Exactly once per page and customer: a second submission returns the first (created False) and does nothing.
    A submission whose e-mail is confirmed already is completed at once (`form_submission_confirm`).
    """
    page = LandingPage.objects.select_for_update(of=("self",)).select_related("published_version").get(pk=page.pk)
    version = page.published_version
    block = form_block(version.blocks) if version is not None and page.status == PageStatus.PUBLISHED else None
    if version is None or block is None:
        raise DomainError("This page has no published form.", path="page", code="no_form")
    email = str(values.get("email") or "").strip().lower()
    if not email:
        raise ValidationError({"email": "This field is required."})
    source = f"form:{page.slug}"
    customer = _customer_for_email(email=email, values=values, ip=ip, cause=source, device=device)
    earlier = FormSubmission.objects.filter(page=page, customer=customer).first()
    if earlier is not None:
        return earlier, False
    rewarding = bool(block.get("join_program") or block.get("voucher_campaign"))
    submission = FormSubmission.objects.create(
        page=page,
        version=version.number,
        customer=customer,
        fields={**values, "email": email},
        consents=[channel for channel in consents if channel in (block.get("consent_channels") or [])],
        referral_code=referral_code.strip().upper()[:16] if rewarding else "",
        ip=ip or None,
    )
    for channel in submission.consents:
        optin_request(customer, channel=channel, source=source)
    domain_event_emit(
        signal=form_submitted,
        name=FORM_SUBMITTED,
        customer=customer,
        payload={
            "form": page.slug,
            "page_id": page.pk,
            "version": version.number,
            "submission_id": submission.pk,
            "fields": submission.fields,
            "consents": submission.consents,
        },
        cause=source,
        sender=FormSubmission,
        submission=submission,
    )
    # Nothing to confirm (no e-mail consent asked), or an address confirmed before: complete it now.
    if "email" not in submission.consents or optin_confirmed(customer):
        submission = form_submission_confirm(submission=submission)
    return submission, True


@transaction.atomic
def form_submission_confirm(*, submission: FormSubmission, at: datetime | None = None) -> FormSubmission:
    """
    The customer confirmed their address: join the program, publish the voucher and record the referral, as
    the page's form says, each once (the submission row is locked and moves to confirmed once). A blocked
    customer gets nothing; while the kill switch is on no voucher is published.
    """
    at = at or timezone.now()
    submission = (
        FormSubmission.objects.select_for_update(of=("self",)).select_related("customer", "page").get(pk=submission.pk)
    )
    if submission.status == SubmissionStatus.CONFIRMED:
        return submission
    version = LandingPageVersion.objects.filter(page=submission.page, number=submission.version).first()
    block = form_block(version.blocks if version is not None else []) or {}
    customer = submission.customer
    outcome: dict[str, Any] = {}
    cause = f"form:{submission.page.slug}"
    if customer.is_blocked:
        outcome["refused"] = "customer_blocked"
    else:
        if submission.referral_code:
            try:
                referral = loyalty_services.referral_register(
                    referee=customer, code=submission.referral_code, at=at, cause=cause, ip=submission.ip
                )
                outcome["referral"] = referral.pk
            except DomainError as error:
                outcome["referral_refused"] = error.code
        if block.get("join_program"):
            try:
                membership, _ = loyalty_services.member_join(customer=customer, at=at, cause=cause)
                outcome["membership"] = membership.pk
            except DomainError as error:
                outcome["membership_refused"] = error.code
        campaign_id = block.get("voucher_campaign")
        if campaign_id:
            campaign = Campaign.objects.filter(pk=campaign_id).first()
            if campaign is None:
                outcome["voucher_refused"] = "unknown_campaign"
            elif kill_switch_is_on():
                outcome["voucher_refused"] = "kill_switch"
            else:
                try:
                    code = code_publish(campaign=campaign, customer=customer, ref=f"form_submission:{submission.pk}")
                    outcome["voucher"] = code.code
                except DomainError as error:
                    outcome["voucher_refused"] = error.code
    FormSubmission.objects.filter(pk=submission.pk).update(
        status=SubmissionStatus.CONFIRMED, confirmed_at=at, outcome=outcome
    )
    submission.refresh_from_db()
    return submission


def form_submissions_confirm_for(*, customer_id: int, at: datetime | None = None) -> list[FormSubmission]:
    """Complete every pending submission of a customer who just confirmed their e-mail (idempotent)."""
    return [
        form_submission_confirm(submission=submission, at=at)
        for submission in FormSubmission.objects.filter(
            customer_id=customer_id, status=SubmissionStatus.PENDING
        ).order_by("pk")
        if "email" in submission.consents
    ]


REFERRAL_PAGE_SLUG = "invite"
REFERRAL_PAGE_TITLE = "{inviter} invited you to {program}"


@transaction.atomic
def landing_referral_page_ensure(*, user: Any = None) -> LandingPage:
    """
    Make sure /me/r/<code>/ has a published referral page: the latest published page of the referral template,
    else the `invite` page (created from the referral template if missing) published now. Migration 0011 installs
    that page; this is the console's explicit staff action, and what a referral sign-up (a POST) falls back on
    when a marketer took every referral page offline. A GET never calls it: it draws the default in memory.
    """
    published = referral_page()
    if published is not None:
        return published
    page = LandingPage.objects.filter(slug=REFERRAL_PAGE_SLUG).select_related("published_version").first()
    if page is None:
        try:
            with transaction.atomic():
                page = landing_page_save(
                    slug=REFERRAL_PAGE_SLUG,
                    title=REFERRAL_PAGE_TITLE,
                    template=PageTemplate.REFERRAL,
                    blocks=template_blocks(PageTemplate.REFERRAL),
                    user=user,
                )
        except (IntegrityError, ValidationError):  # a concurrent first sign-up created it
            page = LandingPage.objects.get(slug=REFERRAL_PAGE_SLUG)
    if page.published_version is None or page.status != PageStatus.PUBLISHED:
        landing_page_publish(page=page, user=user)
        page.refresh_from_db()
    return page
