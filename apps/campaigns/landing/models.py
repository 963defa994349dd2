"""Landing pages, their published versions and form submissions (models of the `campaigns` app)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.customers.models import Customer

from .choices import PageStatus, PageTemplate, SubmissionStatus


class LandingPage(models.Model):
    """
    A marketer's page at `/p/<slug>/`: a list of typed blocks (the draft being edited) and, once published,
    the immutable version visitors see. Saved only through `landing_page_save` (blocks validated with paths).
    """

    slug = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=120)
    template = models.CharField(max_length=16, choices=PageTemplate.choices, default=PageTemplate.SIGNUP)
    blocks = models.JSONField(default=list, help_text="The draft's blocks (see apps/campaigns/landing/blocks.py)")
    status = models.CharField(max_length=10, choices=PageStatus.choices, default=PageStatus.DRAFT)
    published_version = models.ForeignKey(
        "campaigns.LandingPageVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["slug"]
        permissions = [("publish_landingpage", "Can publish and unpublish landing pages")]

    def __str__(self) -> str:
        return self.title

    @property
    def has_unpublished_changes(self) -> bool:
        version = self.published_version
        return version is None or version.blocks != self.blocks or version.title != self.title


class LandingPageVersion(models.Model):
    """A published snapshot of a page (title and blocks); never changed after it is written."""

    page = models.ForeignKey(LandingPage, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=120)
    blocks = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["page", "-number"]
        constraints = [models.UniqueConstraint(fields=["page", "number"], name="landing_version_number_uniq")]

    def __str__(self) -> str:
        return f"{self.page_id} v{self.number}"


class FormSubmission(models.Model):
    """
    A visitor's sign-up through a page's form: one per page and customer (a second submission changes
    nothing). Pending until the customer confirms the e-mail (double opt-in); confirming joins the program,
    publishes the voucher and records the referral, each once.
    """

    page = models.ForeignKey(LandingPage, on_delete=models.CASCADE, related_name="submissions")
    version = models.PositiveIntegerField(help_text="The published version the form was part of")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="form_submissions")
    fields = models.JSONField(default=dict, help_text="The form's fields as submitted (after cleaning)")
    consents = models.JSONField(default=list, help_text="Channels the visitor ticked")
    referral_code = models.CharField(max_length=16, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=SubmissionStatus.choices, default=SubmissionStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=dict, blank=True, help_text="What confirmation did: member, voucher, referral")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["page", "customer"], name="form_submission_once_uniq")]
        indexes = [
            models.Index(
                fields=["customer"], name="form_submission_pending_idx", condition=Q(status=SubmissionStatus.PENDING)
            )
        ]

    def __str__(self) -> str:
        return f"{self.page_id}: {self.customer_id} ({self.status})"


class LandingImage(models.Model):
    """
    An image uploaded in the landing editor, stored re-encoded (no metadata) under MEDIA_ROOT/landing/ by Django's
    default storage, named after its content's SHA-256 (the same image uploaded twice is one file and one row).
    """

    file = models.FileField(upload_to="landing/", max_length=120, unique=True)
    content_type = models.CharField(max_length=16)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Bytes, after re-encoding")
    created_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return str(self.file.name)

    @property
    def url(self) -> str:
        return self.file.url
