"""Reads of templates and the brand."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .choices import VersionStatus
from .models import Brand, MessageTemplate, TemplateVersion


def get_brand() -> Brand:
    """The brand (an unsaved row with the defaults until someone saves it); landing pages and the cockpit read it."""
    return Brand.objects.order_by("pk").first() or Brand()


def template_get(*, key: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(key=key).first()


def version_published_latest(template: MessageTemplate) -> TemplateVersion | None:
    """The newest published version of `template`, with its variants (two queries)."""
    return (
        TemplateVersion.objects.filter(template=template, status=VersionStatus.PUBLISHED)
        .order_by("-number")
        .prefetch_related("variants")
        .first()
    )


def version_draft(template: MessageTemplate) -> TemplateVersion | None:
    return (
        TemplateVersion.objects.filter(template=template, status=VersionStatus.DRAFT)
        .prefetch_related("variants")
        .first()
    )


def templates_list(*, channel: str | None = None, published_only: bool = False) -> QuerySet[MessageTemplate]:
    """Templates with their published versions (newest first) prefetched: no query per row."""
    queryset = MessageTemplate.objects.order_by("name", "pk").prefetch_related(
        Prefetch(
            "versions",
            queryset=TemplateVersion.objects.order_by("-number", "-pk"),
            to_attr="versions_ordered",
        )
    )
    if channel:
        queryset = queryset.filter(channel=channel)
    if published_only:
        queryset = queryset.filter(versions__status=VersionStatus.PUBLISHED).distinct()
    return queryset


def templates_published() -> QuerySet[MessageTemplate]:
    """Templates that have a published version (what a workflow may send), by name."""
    return MessageTemplate.objects.filter(versions__status=VersionStatus.PUBLISHED).distinct().order_by("name", "pk")


def template_check(key: str, *, channel: str) -> list[str]:
    """What is wrong with naming template `key` in a `channel` action (for the notify.* params' `check`)."""
    template = template_get(key=key) if isinstance(key, str) and len(key) <= 64 else None
    if template is None:
        return [f'no message template "{key}"']
    if template.channel != channel:
        return [f'template "{key}" is for {template.channel}, not {channel}']
    if not template.versions.filter(status=VersionStatus.PUBLISHED).exists():
        return [f'template "{key}" has no published version']
    return []
