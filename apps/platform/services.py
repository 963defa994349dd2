"""Writes of the platform app: API tokens and the pruning of stored Idempotency-Key responses."""

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .audit import audit_record, audit_snapshot
from .authentication import token_digest, token_generate
from .models import ApiToken, IdempotencyRecord
from .permissions import SCOPES


@transaction.atomic
def api_token_create(
    *, user: Any, scopes: list[str], name: str = "", expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """
    Create an API token; returns (row, raw token). Only the digest is stored: the raw token is shown once.
    The token acts with the intersection of its scopes and its user's permissions.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationError(
            {
                "scopes": f"Choose one or more of {', '.join(SCOPES)}"
                + (f" (unknown: {', '.join(unknown)})." if unknown else ".")
            }
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    raw = token_generate()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=raw[:12],
        digest=token_digest(raw),
        scopes=[scope for scope in SCOPES if scope in scopes],
        expires_at=expires_at,
    )
    audit_record(action="created", obj=token)
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token; requests carrying it are refused from now on."""
    if token.revoked_at is None:
        before = audit_snapshot(token, fields=["revoked_at"])
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="revoked", obj=token, before=before)
    return token


def idempotency_records_prune(*, older_than_days: int = 30) -> int:
    """Delete stored Idempotency-Key responses older than the retention; returns how many were deleted."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
