"""
Stored references (`bulk_run:12`, `workflow_run:2`, `campaign:3`, `api:token:5`, `import:file.csv`) as
readable text and as a link to the console's resolver (`/admin/console/ref/?ref=…`, which checks the
reader's permission and redirects to the object). Model-free: any app's admin can show them; the
console's customer page names the objects themselves (apps/automations/console/references.py).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

LINKABLE = {"bulk_run", "workflow_run", "run", "campaign", "order", "api"}
NOUNS = {"bulk_run": "Bulk run", "workflow_run": "Workflow run", "run": "Workflow run", "campaign": "Campaign"}


def reference_label(ref: str) -> str:
    """`bulk_run:12` -> "Bulk run #12", `api:token:5` -> "API token #5", `import:a.csv` -> "CSV import a.csv"."""
    ref = (ref or "").strip()
    kind, _, rest = ref.partition(":")
    if kind in NOUNS and rest.isdigit():
        return f"{NOUNS[kind]} #{rest}"
    if kind == "order" and rest.isdigit():
        return f"Order #{rest}"
    if kind == "api":
        sub, _, number = rest.partition(":")
        if sub == "token" and number.isdigit():
            return f"API token #{number}"
        if sub == "user" and number.isdigit():
            return f"API call by user #{number}"
        return "API call"
    if kind == "import":
        return f"CSV import {rest}".strip()
    return ref.replace("_", " ") or "—"


def reference_link(ref: str) -> SafeString | str:
    """The reference as a link to the console's resolver when it names an object, else readable text."""
    label = reference_label(ref)
    kind = (ref or "").partition(":")[0]
    if kind not in LINKABLE or label == "API call":
        return label
    try:
        url = reverse("console:reference")
    except NoReverseMatch:
        return label
    return format_html('<a href="{}?{}" data-ref="{}">{}</a>', url, urlencode({"ref": ref}), ref, label)
