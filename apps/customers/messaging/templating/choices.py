from django.db import models


class TemplateChannel(models.TextChoices):
    """The channel a message template is written for (the delivery channels of `apps.customers.messaging`)."""

    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app message"


class TemplatePurpose(models.TextChoices):
    """Marketing messages need consent and obey caps; transactional ones (receipts, codes) do not."""

    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
