from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers.models import Customer, Product

from .choices import ImportKind, ImportStatus, TagAuditAction, TagSource


class Tag(models.Model):
    """A label for customers and products; names are unique regardless of case."""

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_name_ci_uniq")]

    def __str__(self) -> str:
        return self.name


class CustomerTag(models.Model):
    """A tag on a customer, with where it came from (a workflow run, the API, an import, a person)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="customer_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="customer_tags")
    source = models.CharField(max_length=16, choices=TagSource.choices, default=TagSource.MANUAL)
    source_ref = models.CharField(max_length=64, blank=True, help_text="e.g. workflow_run:42, bulk_run:7")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-added_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_uniq")]
        indexes = [models.Index(fields=["tag", "customer"], name="customer_tag_by_tag_idx")]

    def __str__(self) -> str:
        return f"{self.tag} on {self.customer_id}"


class ProductTag(models.Model):
    """A tag on a product (e.g. Kids & Baby), usable in conditions and copied to buyers by workflows."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="product_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="product_tags")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "tag"], name="product_tag_uniq")]

    def __str__(self) -> str:
        return f"{self.tag} on {self.product_id}"


class TagAudit(models.Model):
    """Every tag change with who/what made it, so a marketer can ask why a customer carries a tag."""

    # No index of its own: `(customer, -created_at)` below serves every look-up by customer (one index less to
    # write for each audited tag: bulk tagging writes an audit row per tag).
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tag_audits", db_index=False)
    tag_name = models.CharField(max_length=100)
    action = models.CharField(max_length=8, choices=TagAuditAction.choices)
    source = models.CharField(max_length=16, choices=TagSource.choices)
    source_ref = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.tag_name}"


class ImportJob(models.Model):
    """
    A CSV file uploaded in the console and its background import: the column mapping the marketer checked,
    the progress (units of its kind: customers, orders or rates) and the rejected rows with line and column.
    The file's text is kept on the row (its size is capped at upload) so the worker needs no shared disk.
    """

    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    file_name = models.CharField(max_length=255)
    content = models.TextField()
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="file column -> imported column ('' = skipped)")
    status = models.CharField(max_length=8, choices=ImportStatus.choices, default=ImportStatus.DRAFT)
    rows_total = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    written = models.PositiveIntegerField(default=0)
    existing = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, column, message}], the first ones")
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["-created_at"], name="import_job_recent_idx")]
        permissions = [
            ("import_customers", "Import customers from CSV"),
            ("import_orders", "Import orders from CSV"),
            ("import_exchange_rates", "Import exchange rates from CSV"),
        ]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.get_kind_display()}, {self.file_name})"

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0
