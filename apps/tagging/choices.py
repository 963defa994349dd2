from django.db import models


class TagSource(models.TextChoices):
    MANUAL = "manual", "Manual (admin)"
    API = "api", "API"
    IMPORT = "import", "Import"
    WORKFLOW = "workflow", "Workflow"


class TagAuditAction(models.TextChoices):
    ADDED = "added", "Added"
    REMOVED = "removed", "Removed"
