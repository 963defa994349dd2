"""
Readable references: the `cause` / `source_ref` strings the services store (`bulk_run:12`, `workflow_run:2`,
`campaign:3`, `api:token:5`, `api:user:4`, `import:customers.csv`, `order:7`) as a label and, when the reader
may open it, a link. One place, used by every console page (the `{% reference %}` tag).
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from apps.automations.models import WorkflowRun
from apps.campaigns.promotions.models import Campaign
from apps.platform.models import ApiToken


def _as_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def reference_describe(ref: str, user: Any) -> dict[str, str | None]:
    """{"label", "url"} for a stored reference; the url is None when the user may not open it."""
    ref = (ref or "").strip()
    if not ref:
        return {"label": "—", "url": None}
    kind, _, rest = ref.partition(":")
    pk = _as_id(rest.split(":", 1)[0])
    if kind in ("bulk_run", "workflow_run", "run") and pk is not None:
        run = WorkflowRun.objects.select_related("workflow").filter(pk=pk).first()
        noun = "Bulk run" if kind == "bulk_run" else "Run"
        label = f"{noun} #{pk} of “{run.workflow.name}”" if run else f"{noun} #{pk} (deleted)"
        url = (
            reverse("automations:run_detail", args=[pk])
            if run and user.has_perm("automations.view_workflowrun")
            else None
        )
        return {"label": label, "url": url}
    if kind == "campaign" and pk is not None:
        campaign = Campaign.objects.filter(pk=pk).first()
        label = f"Campaign “{campaign.name}”" if campaign else f"Campaign #{pk} (deleted)"
        allowed = campaign and user.has_perm("campaigns.view_campaign")
        return {"label": label, "url": reverse("admin:campaigns_campaign_change", args=[pk]) if allowed else None}
    if kind == "order" and pk is not None:
        allowed = user.has_perm("customers.view_order")
        return {"label": f"Order #{pk}", "url": reverse("admin:customers_order_change", args=[pk]) if allowed else None}
    if kind == "api":
        sub, _, number = rest.partition(":")
        pk = _as_id(number.split(":", 1)[0])
        if sub == "token" and pk is not None:
            token = ApiToken.objects.filter(pk=pk).first()
            label = f"API token “{token.name or token.pk}”" if token else f"API token #{pk} (deleted)"
            allowed = token and user.has_perm("platform.view_apitoken")
            url = reverse("admin:platform_apitoken_change", args=[pk]) if allowed else None
            return {"label": label, "url": url}
        if sub == "user" and pk is not None:
            account = get_user_model().objects.filter(pk=pk).first()
            return {"label": f"API call by {account.get_username() if account else f'user #{pk}'}", "url": None}
        user_pk = _as_id(sub)
        if user_pk is not None:  # api:<user id>:<idempotency key>
            account = get_user_model().objects.filter(pk=user_pk).first()
            return {"label": f"API call by {account.get_username() if account else f'user #{user_pk}'}", "url": None}
        return {"label": "API", "url": None}
    if kind == "import":
        return {"label": f"CSV import {rest}".strip(), "url": None}
    if kind == "workflow":
        return {"label": "A workflow run", "url": None}
    return {"label": ref.replace("_", " "), "url": None}


@staff_member_required
def reference_open(request: HttpRequest) -> HttpResponse:
    """`?ref=bulk_run:12` -> the object's page, if the reader may open it (403) and it exists (404)."""
    ref = request.GET.get("ref", "").replace("\x00", "")[:200]
    described = reference_describe(ref, request.user)
    if described["url"]:
        return redirect(described["url"])
    if "(deleted)" in (described["label"] or "") or not ref:
        raise Http404("Nothing to open for this reference.")
    raise PermissionDenied
