from django.db import models


class TagSource(models.TextChoices):
    MANUAL = "manual", "Manual (admin)"
    API = "api", "API"
    IMPORT = "import", "Import"
    WORKFLOW = "workflow", "Workflow"


class TagAuditAction(models.TextChoices):
    ADDED = "added", "Added"
    REMOVED = "removed", "Removed"


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", "Customers"
    ORDERS = "orders", "Orders"
    EXCHANGE_RATES = "exchange_rates", "Exchange rates"


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Uploaded (check the mapping)"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
