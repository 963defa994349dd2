from django.db.models import QuerySet
from rest_framework import viewsets

from apps.platform.permissions import API_PERMISSIONS

from .. import selectors
from ..filters import DeliveryFilterSet
from ..models import Delivery
from .serializers import DeliverySerializer


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Every message on every channel (read-only): sent, failed, suppressed with the reason, or queued."""

    permission_classes = API_PERMISSIONS
    scope_family = "messaging"
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet

    def get_queryset(self) -> QuerySet[Delivery]:
        return selectors.deliveries_list()
