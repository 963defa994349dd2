"""The template gallery page: cards describing each template; install with edited params opens the builder."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.automations import gallery
from apps.automations.builder import boot as boot_data
from apps.automations.builder.describe import condition_sentence, steps_sentences
from apps.automations.builder.views import CHANGE, VIEW, can, page_context
from apps.automations.selectors import installed_by_template
from loyalty_site.lib.money import shop_currency


@can(VIEW)
def gallery_page(request: HttpRequest) -> HttpResponse:
    catalog = boot_data.catalog_payload()
    triggers = {spec["name"]: spec["label"] for spec in catalog["triggers"]}
    actions = {spec["name"]: spec["label"] for spec in catalog["actions"]}
    cards = []
    installed = installed_by_template()
    for spec in gallery.template_list():
        built = spec.build()
        state = built["definition"].get("state")
        cards.append(
            {
                "spec": spec,
                "kind": {"state": "State tag", "bulk": "Scheduled", "event": "On an event"}[spec.kind],
                "state_tags": [state["tag"]]
                + [sibling["definition"]["state"]["tag"] for sibling in built.get("siblings") or []]
                if state
                else [],
                "installed": installed.get(spec.key, []),
                "trigger_label": triggers.get(spec.trigger, spec.trigger),
                "where": condition_sentence(built["definition"]["trigger"]["where"])
                if built["definition"]["trigger"].get("where")
                else "",
                "audience": condition_sentence(built["settings"]["audience"])
                if built.get("settings", {}).get("audience")
                else "",
                "does": steps_sentences(built["definition"].get("steps") or [], actions),
                "params": [
                    {
                        **param.as_dict(),
                        "input_value": ", ".join(param.default) if isinstance(param.default, list) else param.default,
                    }
                    for param in spec.params
                ],
            }
        )
    categories = sorted({card["spec"].category for card in cards})
    return render(
        request,
        "automations/builder/gallery.html",
        page_context(
            request,
            title="Template gallery",
            section="gallery",
            cards=cards,
            categories=categories,
            can_change=request.user.has_perm(CHANGE),
            shop_currency=shop_currency(),
        ),
    )


@can(CHANGE)
@require_POST
def gallery_install(request: HttpRequest, key: str) -> HttpResponse:
    spec = gallery.TEMPLATES.get(key)
    if spec is None:
        raise Http404("Unknown template")
    params: dict[str, Any] = {}
    for param in spec.params:
        raw = request.POST.get(f"param-{param.name}")
        if raw is None:
            continue
        params[param.name] = (
            [item.strip() for item in raw.split(",") if item.strip()] if param.type in {"tags", "strings"} else raw
        )
    try:
        workflow = gallery.template_install(
            key=key, params=params, user=request.user, name=request.POST.get("name", "").strip() or None
        )
    except ValidationError as error:
        for item in boot_data.error_list(error):
            messages.error(request, f"{spec.name}: {item['path'] + ': ' if item['path'] else ''}{item['message']}")
        return redirect("automations:gallery")
    messages.success(request, f"“{workflow.name}” installed as a draft. Review it, then activate.")
    return redirect("automations:builder", pk=workflow.pk)
