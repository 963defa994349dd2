"""
Exchange rates API (model permissions on ExchangeRate): list, upsert one rate, upsert many (item by item, with paths).

`POST /api/v1/exchange-rates/` with `{"currency": "EUR", "day": "2026-11-30", "rate": "1.08"}` stores
the rate of that day (201, or 200 when it replaced that day's rate); `POST /api/v1/exchange-rates/batch/`
takes `{"items": [...]}`.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.api.errors import flatten_errors

from .. import selectors
from ..currency import exchange_rate_set
from ..filters import ExchangeRateFilterSet
from ..models import ExchangeRate
from .serializers import ExchangeRateBatchSerializer, ExchangeRateSerializer

BATCH_MAX_ITEMS = 1000


def _django_errors(error: DjangoValidationError) -> Any:
    if hasattr(error, "error_dict"):
        return {key: [m for e in errors for m in e.messages] for key, errors in error.error_dict.items()}
    return error.messages


def _with_source(data: dict[str, Any], request: Request) -> dict[str, Any]:
    return {**data, "source": data.get("source") or f"api:user:{request.user.pk}"}


class ExchangeRateViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Rates per currency per day; an amount dated D uses the latest rate on or before D."""

    serializer_class = ExchangeRateSerializer
    filterset_class = ExchangeRateFilterSet
    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    # Loading a rate replaces that day's rate: an upsert needs add and change.
    action_permissions = {
        "create": ["customers.add_exchangerate", "customers.change_exchangerate"],
        "batch": ["customers.add_exchangerate", "customers.change_exchangerate"],
    }
    queryset = ExchangeRate.objects.none()  # names the model for the permissions; rows come from get_queryset

    def get_queryset(self) -> QuerySet[ExchangeRate]:
        return selectors.exchange_rate_list()

    @extend_schema(responses={201: ExchangeRateSerializer, 200: ExchangeRateSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ExchangeRateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, created = exchange_rate_set(**_with_source(serializer.validated_data, request))
        return Response(
            ExchangeRateSerializer(row).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        request=ExchangeRateBatchSerializer,
        responses=inline_serializer(
            name="ExchangeRateBatchResult",
            fields={
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "failed": serializers.IntegerField(),
                "errors": serializers.ListField(child=serializers.DictField()),
            },
        ),
        description="Each item is stored on its own; bad items are reported with paths like `items[2].rate`.",
    )
    @action(detail=False, methods=["post"])
    def batch(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise serializers.ValidationError({"items": "Give a non-empty list of rates."})
        if len(items) > BATCH_MAX_ITEMS:
            raise serializers.ValidationError({"items": f"At most {BATCH_MAX_ITEMS} items per request."})
        counts = {"created": 0, "updated": 0, "failed": 0}
        errors: list[dict[str, str]] = []
        for index, item in enumerate(items):
            serializer = ExchangeRateSerializer(data=item)
            problem: Any = None
            if serializer.is_valid():
                try:
                    _row, created = exchange_rate_set(**_with_source(serializer.validated_data, request))
                except DjangoValidationError as error:
                    problem = _django_errors(error)
            else:
                problem = serializer.errors
            if problem is not None:
                counts["failed"] += 1
                errors.extend(flatten_errors(problem, f"items[{index}]"))
                continue
            counts["created" if created else "updated"] += 1
        return Response({**counts, "errors": errors})
