"""
The audit log of configuration changes: who (user, API token), when, which object, what, old → new values.

Services call `audit_record(...)` after a change (inside their transaction, so a rolled-back change leaves
no entry). Who acted is the `user` they are given, else the user and token of the request being served
(remembered by `AuditRequestMiddleware`), else "system".
"""

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest, HttpResponse

from .models import ApiToken, AuditEntry

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from rest_framework.serializers import BaseSerializer
    from rest_framework.viewsets import ModelViewSet

    _AdminBase = ModelAdmin[Any]
    _ViewSetBase = ModelViewSet[Any]
else:
    _AdminBase = _ViewSetBase = object

# Timestamps and "last touched by" columns change on every save; they say nothing a marketer asks about.
IGNORED_FIELDS = {"created_at", "updated_at", "updated_by", "last_used_at", "last_used_ip", "digest"}

_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_muted: ContextVar[bool] = ContextVar("audit_muted", default=False)


@contextmanager
def audit_muted() -> Iterator[None]:
    """For set-up the system does itself (roles re-applied after `migrate`): nobody asks "who did this?"."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


class AuditRequestMiddleware:
    """Remembers the request being served so that services can name who made a change."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        reset = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(reset)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_snapshot(obj: models.Model, *, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The object's concrete field values as JSON (foreign keys as ids), for a later diff."""
    wanted = set(fields) if fields is not None else None
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in IGNORED_FIELDS or (wanted is not None and field.name not in wanted):
            continue
        values[field.attname] = _json(field.value_from_object(obj))
    for field in obj._meta.many_to_many:
        if obj.pk and (wanted is None or field.name in wanted):
            values[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return values


def audit_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"old": before.get(key), "new": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _actor(user: Any) -> tuple[Any, ApiToken | None, str]:
    request = _current_request.get()
    token = getattr(request, "auth", None) if request is not None else None
    token = token if isinstance(token, ApiToken) else None
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    label = getattr(user, "username", "") or "system"
    if token is not None:
        label = f"{label} (API token {token.prefix}…)"
    return user, token, label[:150]


def audit_record(
    *,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    changes: dict[str, dict[str, Any]] | None = None,
    user: Any = None,
) -> AuditEntry | None:
    """
    Write one audit entry. `before` (an `audit_snapshot` taken before the change, of all fields or some) is
    diffed against the same fields now; `action="created"` without `before` records every value as new;
    `action="deleted"` records `before` as old values. `changes` may be given directly instead.
    """
    if _muted.get():
        return None
    if changes is None:
        if action == "deleted":
            changes = audit_diff(before or {}, {})
        elif before is None:
            changes = audit_diff({}, audit_snapshot(obj))
        else:  # only the fields the snapshot before took
            after = audit_snapshot(obj)
            changes = audit_diff(before, {key: after.get(key) for key in before})
    actor, token, label = _actor(user)
    object_id = obj.pk if obj.pk is not None else (before or {}).get("id", "")
    return AuditEntry.objects.create(
        actor=actor,
        token=token,
        actor_label=label,
        action=action,
        object_type=f"{obj._meta.app_label}.{obj._meta.model_name}",
        object_id=str(object_id),
        object_repr=str(obj)[:200],
        changes=changes,
    )


class AuditedModelAdmin(_AdminBase):
    """
    ModelAdmin mixin for configuration models saved without a service: each add/change/delete is audited.
    A ModelAdmin whose saves go through an auditing service sets `audit_saves = False`.
    """

    audit_saves = True

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = audit_snapshot(type(obj)._default_manager.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        # per-request scratch from save_model to save_related (the ModelAdmin instance is shared)
        request._audit_before = before  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not self.audit_saves:
            return
        before = getattr(request, "_audit_before", None)
        audit_record(action="updated" if change else "created", obj=form.instance, before=before, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(action="deleted", obj=obj, before=audit_snapshot(obj), user=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            audit_record(action="deleted", obj=obj, before=audit_snapshot(obj), user=request.user)
        super().delete_queryset(request, queryset)


class AuditedViewSetMixin(_ViewSetBase):
    """DRF ModelViewSet mixin for configuration models saved without a service: create/update/delete audited."""

    def perform_create(self, serializer: "BaseSerializer[Any]") -> None:
        super().perform_create(serializer)
        assert serializer.instance is not None  # (the save set it)
        audit_record(action="created", obj=serializer.instance, user=self.request.user)

    def perform_update(self, serializer: "BaseSerializer[Any]") -> None:
        assert serializer.instance is not None  # (an update has its object)
        before = audit_snapshot(serializer.instance)
        super().perform_update(serializer)
        audit_record(action="updated", obj=serializer.instance, before=before, user=self.request.user)

    def perform_destroy(self, instance: Any) -> None:
        audit_record(action="deleted", obj=instance, before=audit_snapshot(instance), user=self.request.user)
        super().perform_destroy(instance)


def _names(model: Any, pks: Iterable[Any]) -> list[str]:
    if model._meta.label_lower == "auth.permission":
        rows = model.objects.filter(pk__in=list(pks)).select_related("content_type")
        return sorted(f"{row.content_type.app_label}.{row.codename}" for row in rows)
    return sorted(str(row) for row in model.objects.filter(pk__in=list(pks)))


def membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: Any, **kwargs: Any
) -> None:
    """
    Role changes are audited: a user's groups and permissions, a group's permissions (the auth admin writes
    them, not a service of ours, so this receiver records them; it does nothing else).
    """
    if action not in ("post_add", "post_remove") or not pk_set:
        return
    owners = model.objects.filter(pk__in=pk_set) if reverse else [instance]
    for owner in owners:
        relation = next(f for f in owner._meta.many_to_many if f.remote_field.through is sender)
        current = set(getattr(owner, relation.name).values_list("pk", flat=True))
        changed = {instance.pk} if reverse else set(pk_set)
        before = current - changed if action == "post_add" else current | changed
        target = relation.remote_field.model
        audit_record(
            action="roles_changed" if relation.name == "groups" else "permissions_changed",
            obj=owner,
            changes={relation.name: {"old": _names(target, before), "new": _names(target, current)}},
        )
