"""API tokens (scoped, expiring), stored Idempotency-Key responses, capabilities and the audit log."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """An integrator's API token; only its SHA-256 digest is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(default=list, blank=True, help_text="What the token may reach (see README: API)")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_usable(self, *, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for later identical requests."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "idempotency key"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_uniq")]

    def __str__(self) -> str:
        return self.key


class Capability(models.Model):
    """
    No table: the holder of the permissions for sensitive operations that are not a model's add/change/
    delete/view. They are granted through roles (groups) like any model permission, as `platform.<codename>`.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("award_points", "Award points to a customer"),
            ("deduct_points", "Deduct points from a customer"),
            ("redeem_for_customer", "Redeem a reward on a customer's behalf"),
            ("confirm_redemption", "Confirm (use) a redemption code in store"),
            ("activate_workflow", "Activate, pause or run a workflow now"),
            ("campaign_kill_switch", "Stop or resume campaigns with the kill switch"),
            ("manage_api_tokens", "Create, list and revoke API tokens"),
        ]

    def __str__(self) -> str:
        return "capability"


class AuditEntry(models.Model):
    """One configuration change: who (user, API token), when, which object, what action, old → new values."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True, help_text="Who, as it read at the time")
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=100, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": {"old": ..., "new": ...}}')

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        default_permissions = ("view",)
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} #{self.object_id}"


class GlobalKillSwitch(models.Model):
    """
    The one row of the global kill switch over every incentive: promotion campaigns, loyalty earning, reward
    redemption and the incentive actions of workflows. It lives in the bottom app so every layer can obey it.
    """

    is_on = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=150, blank=True, help_text="Who, as it read at the time (admin, api, fraud…)")

    class Meta:
        verbose_name = "global kill switch"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return "Global kill switch: " + ("ON" if self.is_on else "off")


class KillSwitchChange(models.Model):
    """History of the global kill switch: every turn on or off with who, when and why."""

    turned_on = models.BooleanField()
    reason = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"kill switch {'on' if self.turned_on else 'off'} at {self.created_at:%Y-%m-%d %H:%M}"
