"""The fraud review queue under /admin/campaigns/fraud/review/: open cases with their evidence, approve / reject."""

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from loyalty_site.lib.errors import DomainError

from . import services
from .choices import FraudCaseStatus
from .models import FraudCase

REVIEW_PERMISSION = "campaigns.review_fraudcase"


class ReviewForm(forms.Form):
    note = forms.CharField(required=False, max_length=255)


@staff_member_required
@permission_required("campaigns.view_fraudcase", raise_exception=True)
def review_queue(request: HttpRequest) -> HttpResponse:
    """Open cases first (newest first), each with the rule, the customer, the action taken and the evidence."""
    status = request.GET.get("status", FraudCaseStatus.OPEN)
    if status not in FraudCaseStatus.values:
        status = FraudCaseStatus.OPEN
    cases = (
        FraudCase.objects.filter(status=status)
        .select_related("customer", "rule", "hold", "resolved_by")
        .order_by("-created_at", "-pk")
    )
    page = Paginator(cases, 25).get_page(request.GET.get("page"))
    context = {
        "title": "Fraud review",
        "page": page,
        "status": status,
        "statuses": FraudCaseStatus.choices,
        "may_review": request.user.has_perm(REVIEW_PERMISSION),
        "has_permission": True,
    }
    return render(request, "campaigns/fraud_review.html", context)


@staff_member_required
@permission_required(REVIEW_PERMISSION, raise_exception=True)
@require_POST
def review_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Approve (points activate, status cleared) or reject (held points reversed) one case; audited."""
    if decision not in ("approve", "reject"):
        raise Http404("Unknown decision.")
    case = get_object_or_404(FraudCase, pk=pk)
    form = ReviewForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    decide = services.fraud_case_approve if decision == "approve" else services.fraud_case_reject
    try:
        decide(case=case, user=request.user, note=note)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        verb = "approved" if decision == "approve" else "rejected"
        messages.success(request, f"Case #{case.pk} {verb}.")
    return redirect("campaigns-fraud-review")
