"""Marketer pages of campaigns under /admin/campaigns/: the promotions cart simulator, the segment preview."""

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.customers.models import Customer
from loyalty_site.lib.conditions.editor import condition_errors_plain
from loyalty_site.lib.json_limits import json_text_error
from loyalty_site.lib.money import shop_currency

from . import services
from .models import Segment
from .promotions.api.serializers import outcome_json
from .promotions.eligibility import Cart, CartLine, promotions_evaluate
from .selectors import segment_preview as segment_preview_select

MAX_LINES = 100


class SimulatorForm(forms.Form):
    customer = forms.CharField(required=False, help_text="Customer id, e-mail or external id (empty: anonymous)")
    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        help_text="One line per cart line: title | quantity | unit price",
        initial="Trail shoe | 2 | 60.00",
    )
    shipping = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=14, decimal_places=2, initial=Decimal("0")
    )
    codes = forms.CharField(required=False, help_text="Codes, separated by commas or spaces")

    def clean_customer(self) -> Customer | None:
        text = self.cleaned_data["customer"].strip()
        if not text:
            return None
        customer = (
            (Customer.objects.filter(pk=int(text)).first() if text.isdigit() else None)
            or Customer.objects.filter(email__iexact=text).first()
            or Customer.objects.filter(external_id=text).first()
        )
        if customer is None:
            raise forms.ValidationError("No customer with this id, e-mail or external id.")
        return customer

    def clean_lines(self) -> list[CartLine]:
        rows = [row for row in self.cleaned_data["lines"].splitlines() if row.strip()]
        if not rows or len(rows) > MAX_LINES:
            raise forms.ValidationError(f"Give 1 to {MAX_LINES} lines.")
        lines = []
        for index, row in enumerate(rows):
            parts = [part.strip() for part in row.split("|")]
            try:
                title, quantity, price = parts
                line = CartLine(index=index, title=title[:255], quantity=int(quantity), unit_price=Decimal(price))
            except (ValueError, InvalidOperation):
                raise forms.ValidationError(f"Line {index + 1}: write title | quantity | unit price.") from None
            if line.quantity < 1 or line.unit_price < 0 or not line.unit_price.is_finite():
                raise forms.ValidationError(f"Line {index + 1}: a positive quantity and a price of 0 or more.")
            lines.append(line)
        return lines


@staff_member_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def simulator(request: HttpRequest) -> HttpResponse:
    """Type a customer and a cart, see what applies and why (read-only, like the builder's test run)."""
    form = SimulatorForm(request.POST or None)
    result: dict[str, Any] | None = None
    if request.method == "POST" and form.is_valid():
        cart = Cart(
            currency=shop_currency(),
            lines=form.cleaned_data["lines"],
            shipping=form.cleaned_data["shipping"] or Decimal("0"),
        )
        codes = form.cleaned_data["codes"].replace(",", " ").split()[:20]
        result = outcome_json(promotions_evaluate(cart=cart, customer=form.cleaned_data["customer"], codes=codes))
    context = {
        "title": "Cart simulator",
        "form": form,
        "result": result,
        "currency": shop_currency(),
        "has_permission": True,
    }
    return render(request, "campaigns/simulator.html", context)


class KillSwitchForm(forms.Form):
    reason = forms.CharField(required=False, max_length=255, help_text="Why (required to turn it on)")


@staff_member_required
@permission_required("campaigns.view_promotionsettings", raise_exception=True)
def kill_switch(request: HttpRequest) -> HttpResponse:
    """The global kill switch: one click turns every incentive off (audited), one click resumes."""
    from django.contrib import messages
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.shortcuts import redirect

    from apps.platform.capabilities import CAMPAIGN_KILL_SWITCH
    from apps.platform.kill_switch import kill_switch_state
    from apps.platform.models import KillSwitchChange

    from .promotions import services
    from .promotions.models import KillSwitchEvent

    form = KillSwitchForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm(CAMPAIGN_KILL_SWITCH):
            raise PermissionDenied
        if form.is_valid():
            turn_on = request.POST.get("on") == "1"
            try:
                services.kill_switch_set(
                    on=turn_on, user=request.user, reason=form.cleaned_data["reason"], actor="admin"
                )
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.warning(
                    request, "Kill switch ON: every incentive is refused." if turn_on else "Kill switch off."
                )
                return redirect("campaigns-kill-switch")
    context = {
        "title": "Kill switch",
        "form": form,
        "current": kill_switch_state(),
        "global_events": KillSwitchChange.objects.select_related("user").order_by("-created_at", "-pk")[:20],
        "events": KillSwitchEvent.objects.select_related("user", "campaign").order_by("-created_at", "-pk")[:20],
        "may_switch": request.user.has_perm(CAMPAIGN_KILL_SWITCH),
        "has_permission": True,
    }
    return render(request, "campaigns/kill_switch.html", context)


@staff_member_required
@permission_required("campaigns.view_redemption", raise_exception=True)
def redemptions_log(request: HttpRequest) -> HttpResponse:
    """The redemptions log: newest first, filtered by status, campaign or session/order reference."""
    from django.core.paginator import Paginator

    from .promotions import selectors
    from .promotions.choices import RedemptionStatus
    from .promotions.models import Campaign

    campaign = (
        Campaign.objects.filter(pk=request.GET["campaign"]).first()
        if request.GET.get("campaign", "").isdigit()
        else None
    )
    rows = selectors.redemptions_list(campaign=campaign).prefetch_related("items__campaign", "items__code")
    status = request.GET.get("status", "")
    if status in RedemptionStatus.values:
        rows = rows.filter(status=status)
    search = request.GET.get("q", "").strip()[:120]
    if search:
        rows = rows.filter(session=search) | rows.filter(order_ref=search)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {
        "title": "Redemptions",
        "page": page,
        "campaign": campaign,
        "statuses": RedemptionStatus.choices,
        "status": status,
        "q": search,
        "has_permission": True,
    }
    return render(request, "campaigns/redemptions.html", context)


@staff_member_required
def kill_switch_state(request: HttpRequest) -> HttpResponse:
    """The global kill switch as JSON, read by the banner of every admin page."""
    from django.http import JsonResponse
    from django.utils import timezone

    from apps.platform.kill_switch import kill_switch_state

    current = kill_switch_state()
    at = timezone.localtime(current.changed_at).strftime("%Y-%m-%d %H:%M") if current.changed_at else ""
    return JsonResponse({"on": current.is_on, "reason": current.reason, "at": at})


# --- Segments: the live preview of the condition editor ------------------------------------------------


@staff_member_required
@permission_required(["campaigns.view_segment", "customers.view_customer"], raise_exception=True)
@require_POST
def segment_preview(request: HttpRequest) -> JsonResponse:
    """`{"condition": ...}` -> how many customers match now and a few of them; 400 with each problem's path."""
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        text = ""
    too_deep = json_text_error(text) if text else None
    body: Any = None
    if too_deep is None:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        message = f"The JSON is {too_deep.message}." if too_deep else "Send a JSON object with a condition."
        return JsonResponse(
            {"error": "invalid", "message": message, "errors": [{"path": "", "message": message}]}, status=400
        )
    condition = body.get("condition") or None
    errors = services.segment_condition_errors(condition)
    if errors:
        return JsonResponse(
            {
                "error": "invalid",
                "message": "The condition is not complete.",
                "errors": condition_errors_plain(condition, errors),
            },
            status=400,
        )
    count, sample = segment_preview_select(condition=condition)
    return JsonResponse(
        {
            "count": count,
            "sample": [
                {
                    "id": customer.pk,
                    "label": " · ".join(part for part in (str(customer), customer.email) if part)
                    if customer.full_name
                    else str(customer),
                    "url": reverse("console:customer", args=[customer.pk]),
                }
                for customer in sample
            ],
        }
    )


class CodeImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, header code[,max_uses][,expires_at][,expires_days_after_publication]")


class SegmentPublishForm(forms.Form):
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"), help_text="One free code to each member without one"
    )


MAX_IMPORT_BYTES = 2_000_000


@staff_member_required
@permission_required("campaigns.view_code", raise_exception=True)
def campaign_codes(request: HttpRequest, campaign_id: int) -> HttpResponseBase:
    """A campaign's code pool: counts, CSV import (all rows checked first), CSV export, publication to a segment."""
    from django.contrib import messages
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.shortcuts import get_object_or_404, redirect

    from loyalty_site.lib.csv_stream import csv_response
    from loyalty_site.lib.errors import DomainError

    from .promotions import codes
    from .promotions.models import Campaign, Code

    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if request.GET.get("export") == "csv":
        return csv_response(codes.codes_csv_rows(campaign=campaign), filename=f"codes-campaign-{campaign.pk}.csv")
    import_form = CodeImportForm()
    publish_form = SegmentPublishForm()
    if request.method == "POST":
        operation = request.POST.get("operation")
        needed = "campaigns.add_code" if operation == "import" else "campaigns.change_code"
        if not request.user.has_perm(needed):
            raise PermissionDenied
        try:
            if operation == "import":
                import_form = CodeImportForm(request.POST, request.FILES)
                if import_form.is_valid():
                    upload = import_form.cleaned_data["file"]
                    if upload.size > MAX_IMPORT_BYTES:
                        raise ValidationError({"file": f"At most {MAX_IMPORT_BYTES:,} bytes per file."})
                    text = upload.read().decode("utf-8-sig", errors="strict")
                    result = codes.codes_import(campaign=campaign, csv_text=text)
                    messages.success(request, f"Imported {result.created} codes.")
                    return redirect("campaigns-campaign-codes", campaign.pk)
            elif operation == "publish":
                publish_form = SegmentPublishForm(request.POST)
                if publish_form.is_valid():
                    segment = publish_form.cleaned_data["segment"]
                    published = codes.codes_publish_segment(
                        campaign=campaign, segment=segment, ref=f"admin:{request.user.pk}:segment:{segment.pk}"
                    )
                    messages.success(
                        request,
                        f"Published {published.published} codes to “{segment}”"
                        + (
                            f"; {published.without_code} members got none (no free code left)"
                            if published.without_code
                            else ""
                        )
                        + (
                            f"; {published.held_out} members are in the campaign's holdout and got none (recorded as"
                            " held out)."
                            if published.held_out
                            else "."
                        ),
                    )
                    return redirect("campaigns-campaign-codes", campaign.pk)
        except UnicodeDecodeError:
            messages.error(request, "The file is not UTF-8 text.")
        except ValidationError as error:
            for path, problems in error.message_dict.items():
                for problem in problems:
                    messages.error(request, f"Nothing imported: {path}: {problem}")
        except DomainError as error:
            messages.error(request, error.message)
    context = {
        "title": f"Codes of {campaign.name}",
        "campaign": campaign,
        "total": Code.objects.filter(campaign=campaign).count(),
        "free": codes.free_codes(campaign).count(),
        "published": Code.objects.filter(campaign=campaign, customer__isnull=False).count(),
        "import_form": import_form,
        "publish_form": publish_form,
        "may_import": request.user.has_perm("campaigns.add_code"),
        "may_publish": request.user.has_perm("campaigns.change_code"),
        "has_permission": True,
    }
    return render(request, "campaigns/campaign_codes.html", context)
