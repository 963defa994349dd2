"""The cockpit inbox's one write: a member marks an in-app message read (the inbox is messaging's)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.customers.messaging.services import inbox_mark_read

from .cockpit import cockpit_membership


@never_cache
@require_POST
def cockpit_message_read(request: HttpRequest, token: str, delivery_id: int) -> HttpResponse:
    """Allowed to the holder of the signed cockpit link only, and only for their own messages (else 404)."""
    membership = cockpit_membership(token)
    if membership is None:
        raise Http404("Unknown or expired link.")
    inbox_mark_read(customer=membership.customer, delivery_id=delivery_id)
    return redirect("loyalty-cockpit", token=token)
