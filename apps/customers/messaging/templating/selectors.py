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
