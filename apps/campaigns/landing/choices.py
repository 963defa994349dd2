from django.db import models


class PageStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class PageTemplate(models.TextChoices):
    """What a new page starts from (its initial blocks, `blocks.template_blocks`)."""

    SIGNUP = "signup", "Newsletter sign-up"
    LOYALTY = "loyalty", "Loyalty program"
    REFERRAL = "referral", "Referral"
    BLANK = "blank", "Blank"


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", "Waiting for e-mail confirmation"
    CONFIRMED = "confirmed", "Confirmed"
