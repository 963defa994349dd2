"""Data-plane API for integrators: customers, orders, draft orders, carts, events, locations, stores, batches."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, transaction
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from apps.platform.idempotency import IdempotentMixin
from apps.platform.models import ApiToken
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.api.errors import RETRY_AFTER_SECONDS, error_body, flatten_errors, is_unavailable
from loyalty_site.lib.api.renderers import PlainAcceptNegotiation

from .. import selectors, services
from ..consent import services as consent
from ..filters import (
    CartFilterSet,
    CustomerEventFilterSet,
    CustomerFilterSet,
    DraftOrderFilterSet,
    OrderFilterSet,
    StoreFilterSet,
)
from ..models import Customer, Refund
from . import ingest
from .serializers import (
    CartSerializer,
    CartUpsertSerializer,
    CustomerCreateInputSerializer,
    CustomerEventSerializer,
    CustomerInputSerializer,
    CustomerReferenceSerializer,
    CustomerSerializer,
    CustomerStatusInputSerializer,
    CustomEventCreateSerializer,
    DraftOrderCreateSerializer,
    DraftOrderSerializer,
    LocationPingSerializer,
    LocationResultSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    RefundCreateSerializer,
    RefundSerializer,
    StoreSerializer,
    custom_event_input,
    custom_event_json,
)


def api_cause(request: Request) -> str:
    """Who made an API write, for the outbox `cause` ("why did this happen?"): the token, else the user."""
    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken):
        return f"api:token:{token.pk}"
    return f"api:user:{request.user.pk}"


BATCH_MAX_ITEMS = 1000

ORDER_EXAMPLE = {
    "external_id": "shop-10042",
    "customer": {"external_id": "c-981", "email": "ana@example.com", "first_name": "Ana", "country": "PT"},
    "currency": "EUR",
    "channel": "online",
    "shipping_country": "PT",
    "placed_at": "2026-03-01T10:15:00Z",
    "lines": [
        {"product_external_id": "sku-teddy", "quantity": 2, "unit_price": "19.90"},
        {"title": "Gift wrap", "quantity": 1, "unit_price": "2.50"},
    ],
}
EVENT_EXAMPLE = {
    "external_id": "evt-7781",
    "customer_external_id": "c-981",
    "name": "review_posted",
    "properties": {"rating": 5, "product": "sku-teddy"},
    "occurred_at": "2026-03-03T08:00:00Z",
}


def _created_or_existing(created: bool) -> int:
    return status.HTTP_201_CREATED if created else status.HTTP_200_OK


def _reference(serializer: CustomerReferenceSerializer) -> dict[str, Any]:
    return serializer.customer_kwargs()


@extend_schema_view(
    create=extend_schema(
        request=CustomerCreateInputSerializer,
        responses={201: CustomerSerializer, 200: CustomerSerializer},
        description="Register a customer. With an `external_id` that already exists, the customer is updated (200).",
        examples=[
            OpenApiExample(
                "Customer",
                value={"external_id": "c-981", "email": "ana@example.com", "first_name": "Ana", "country": "PT"},
                request_only=True,
            )
        ],
    ),
    update=extend_schema(request=CustomerInputSerializer),
    partial_update=extend_schema(request=CustomerInputSerializer),
)
class CustomerViewSet(IdempotentMixin, viewsets.ModelViewSet):
    """Customers. Filter with `?external_id=`, `?email=`, `?tag=`, `?country=`, `?state=`."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    action_permissions = {
        "activate": ["customers.change_customer"],
        "unsubscribe": ["customers.change_customer"],
        "set_status": ["customers.set_customer_status"],
    }

    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet

    def get_queryset(self):
        return selectors.customer_list()

    def _read(self, customer: Customer, code: int = status.HTTP_200_OK) -> Response:
        return Response(CustomerSerializer(self.get_queryset().get(pk=customer.pk)).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = CustomerCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        external_id = fields.pop("external_id", None)
        consents = fields.pop("consents", None)
        signup = {"signup_ip": fields.pop("signup_ip", None), "signup_device": fields.pop("signup_device", "")}
        cause = api_cause(request)
        with transaction.atomic():
            if external_id:
                customer, created = services.customer_upsert(
                    external_id=external_id, cause=cause, signup=signup, **fields
                )
            else:
                customer, created = services.customer_create(cause=cause, **signup, **fields), True
            if consents:
                consent.consents_apply(customer=customer, items=consents, cause=cause)
        return self._read(customer, _created_or_existing(created))

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        serializer = CustomerInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        if "external_id" in fields and fields["external_id"] != customer.external_id:
            raise serializers.ValidationError({"external_id": "The external id of a customer cannot change."})
        fields.pop("external_id", None)
        consents = fields.pop("consents", None)
        with transaction.atomic():
            services.customer_update(customer=customer, cause=api_cause(request), **fields)
            if consents:
                consent.consents_apply(customer=customer, items=consents, cause=api_cause(request))
        return self._read(customer)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.customer_delete(customer=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """A guest or invited customer activates an account and becomes registered (sends `customer.activated`)."""
        return self._read(services.customer_activate(customer=self.get_object(), cause=api_cause(request)))

    @extend_schema(request=None, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request: Request, pk: str | None = None) -> Response:
        """Withdraw marketing consent (sends `customer.unsubscribed` once)."""
        return self._read(services.customer_unsubscribe(customer=self.get_object(), cause=api_cause(request)))

    @extend_schema(request=CustomerStatusInputSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        """Set the fraud status (`active` / `flagged` / `blocked`) with a reason; recorded in the status history."""
        serializer = CustomerStatusInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_status_set(
            customer=self.get_object(),
            status=serializer.validated_data["status"],
            reason=serializer.validated_data["reason"],
            user=request.user,
            cause=api_cause(request),
        )
        return self._read(customer)


@extend_schema_view(
    create=extend_schema(
        request=OrderCreateSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer},
        description=(
            "Record an order with its lines. The customer is EITHER embedded (upserted by its `external_id`) OR "
            "referenced by `customer_external_id` / `customer_id`. Lines may reference products by "
            "`product_external_id`. Re-sending an existing `external_id` returns the stored order (200)."
        ),
        examples=[OpenApiExample("Online order, embedded customer", value=ORDER_EXAMPLE, request_only=True)],
    )
)
class OrderViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Orders with their lines and refunds."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    action_permissions = {
        "cancel": ["customers.change_order"],
        "refunds": {"GET": ["customers.view_refund"], "POST": ["customers.add_refund"]},
    }

    serializer_class = OrderSerializer
    filterset_class = OrderFilterSet

    def get_queryset(self):
        return selectors.order_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order, created = ingest.order_ingest(
            data=serializer.validated_data, customer_ref=_reference(serializer), cause=api_cause(request)
        )
        return Response(OrderSerializer(selectors.order_get(pk=order.pk)).data, status=_created_or_existing(created))

    @extend_schema(request=None, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel the order; it stops counting in the customer's figures."""
        order = services.order_cancel(order=self.get_object(), cause=api_cause(request))
        return Response(OrderSerializer(selectors.order_get(pk=order.pk)).data)

    @extend_schema(
        methods=["POST"],
        request=RefundCreateSerializer,
        responses={201: RefundSerializer, 200: RefundSerializer},
        description="Refund part of the order. Re-sending an existing refund `external_id` returns it (200).",
        examples=[
            OpenApiExample(
                "Partial refund",
                value={"external_id": "rf-1", "amount": "19.90", "reason": "damaged"},
                request_only=True,
            )
        ],
    )
    @extend_schema(methods=["GET"], responses=RefundSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def refunds(self, request: Request, pk: str | None = None) -> Response:
        """List the order's refunds, or record a new one."""
        order = self.get_object()
        if request.method == "GET":
            return Response(RefundSerializer(order.refunds.all(), many=True).data)
        serializer = RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund, created = ingest.first_writer_wins(
            Refund,
            data.get("external_id"),
            lambda: services.refund_create(
                order=order,
                amount=data["amount"],
                reason=data["reason"],
                external_id=data.get("external_id"),
                at=data.get("created_at"),
                cause=api_cause(request),
            ),
        )
        return Response(RefundSerializer(refund).data, status=_created_or_existing(created))


@extend_schema_view(create=extend_schema(request=DraftOrderCreateSerializer, responses={201: DraftOrderSerializer}))
class DraftOrderViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Draft orders (quotes not yet paid)."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"

    serializer_class = DraftOrderSerializer
    filterset_class = DraftOrderFilterSet

    def get_queryset(self):
        return selectors.draft_order_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = DraftOrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft, created = ingest.draft_order_ingest(
            data=serializer.validated_data, customer_ref=_reference(serializer), cause=api_cause(request)
        )
        return Response(DraftOrderSerializer(draft).data, status=_created_or_existing(created))


@extend_schema_view(
    create=extend_schema(
        request=CartUpsertSerializer,
        responses={201: CartSerializer, 200: CartSerializer},
        description="Create or update a checkout by `external_id`. Set `abandoned_at` when the checkout is abandoned.",
        examples=[
            OpenApiExample(
                "Abandoned cart",
                value={
                    "external_id": "chk-55",
                    "customer_external_id": "c-981",
                    "currency": "EUR",
                    "lines": [{"product_external_id": "sku-teddy", "quantity": 1, "unit_price": "19.90"}],
                    "checkout_url": "https://shop.example.com/checkout/chk-55",
                    "abandoned_at": "2026-03-02T18:00:00Z",
                },
                request_only=True,
            )
        ],
    )
)
class CartViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Checkouts / abandoned carts, upserted by external_id."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"

    serializer_class = CartSerializer
    filterset_class = CartFilterSet

    def get_queryset(self):
        return selectors.cart_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = CartUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart, created = ingest.cart_ingest(
            data=serializer.validated_data, customer_ref=_reference(serializer), cause=api_cause(request)
        )
        return Response(CartSerializer(cart).data, status=_created_or_existing(created))


@extend_schema_view(
    create=extend_schema(
        request=CustomEventCreateSerializer,
        responses={201: CustomerEventSerializer, 200: CustomerEventSerializer},
        description="Record a custom event. Re-sending an existing `external_id` returns the stored event (200).",
        examples=[OpenApiExample("Review posted", value=EVENT_EXAMPLE, request_only=True)],
    )
)
class CustomerEventViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Custom events (newsletter signup, review posted, ...)."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    # A plain JSON client's `Accept` header is not parsed (the renderer DRF would pick; loyalty_site/lib/api/renderers).
    content_negotiation_class = PlainAcceptNegotiation

    serializer_class = CustomerEventSerializer
    filterset_class = CustomerEventFilterSet

    def get_queryset(self):
        return selectors.custom_event_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The hot path of single-event ingestion (issue 12): the body read and the answer written without DRF's
        # field machinery for a plain body, with the serializers' values, paths and bytes (see the functions).
        data, customer_ref = custom_event_input(request.data)
        event, created = ingest.custom_event_ingest(data=data, customer_ref=customer_ref, cause=api_cause(request))
        return Response(custom_event_json(event), status=_created_or_existing(created))


class LocationViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Geolocation pings: the response lists the active stores whose radius contains the point."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    action_permissions = {"create": ["customers.add_customerevent"]}

    serializer_class = LocationPingSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        request=LocationPingSerializer,
        responses={200: LocationResultSerializer},
        examples=[
            OpenApiExample(
                "Ping near a store",
                value={"customer_external_id": "c-981", "latitude": 38.7223, "longitude": -9.1393},
                request_only=True,
            ),
            OpenApiExample(
                "Matches",
                value={"matches": [{"store": {"id": 1, "code": "lisbon", "name": "Lisbon"}, "distance_m": 42.1}]},
                response_only=True,
            ),
        ],
    )
    def create(self, request: Request) -> Response:
        serializer = LocationPingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            customer = services.customer_resolve(**_reference(serializer), cause=api_cause(request))
            matches = services.location_report(
                customer=customer, latitude=data["latitude"], longitude=data["longitude"], cause=api_cause(request)
            )
        body = {
            "matches": [{"store": StoreSerializer(m.store).data, "distance_m": round(m.distance_m, 1)} for m in matches]
        }
        return Response(body, status=status.HTTP_200_OK)


class StoreViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Physical stores used by the near-store check; POST upserts by `code`."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"

    serializer_class = StoreSerializer
    filterset_class = StoreFilterSet

    def get_queryset(self):
        return selectors.store_list()

    @extend_schema(responses={201: StoreSerializer, 200: StoreSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = StoreSerializer(data=request.data)
        # `code` is unique on the model; here an existing code means "update that store".
        serializer.fields["code"].validators = []
        serializer.is_valid(raise_exception=True)
        store, created = services.store_upsert(**serializer.validated_data)
        return Response(StoreSerializer(store).data, status=_created_or_existing(created))


# --- Batch ---------------------------------------------------------------------------------------

BATCH_ITEM_FIELDS: dict[str, serializers.Field] = {
    "index": serializers.IntegerField(),
    "status": serializers.ChoiceField(choices=["created", "existing", "error"]),
    "id": serializers.IntegerField(allow_null=True),
    "external_id": serializers.CharField(allow_null=True),
    "errors": serializers.ListField(child=serializers.DictField()),
}
BATCH_COUNT_FIELDS: dict[str, serializers.Field] = {
    "created": serializers.IntegerField(),
    "existing": serializers.IntegerField(),
    "failed": serializers.IntegerField(),
}
BatchResultSerializer = inline_serializer(
    name="BatchResult",
    fields={
        **BATCH_COUNT_FIELDS,
        "results": inline_serializer(name="BatchItemResult", fields=BATCH_ITEM_FIELDS, many=True),
    },
)
BatchInterruptedSerializer = inline_serializer(
    name="BatchInterrupted",
    fields={
        "error": serializers.CharField(),
        "message": serializers.CharField(),
        "errors": serializers.ListField(child=serializers.DictField()),
        **BATCH_COUNT_FIELDS,
        "results": inline_serializer(name="BatchItemResultSoFar", fields=BATCH_ITEM_FIELDS, many=True),
    },
)
BATCH_RESPONSES = {
    200: BatchResultSerializer,
    503: OpenApiResponse(
        BatchInterruptedSerializer,
        description=(
            "The database became unavailable mid-batch (header `Retry-After`). Items reported `created` or "
            "`existing` are stored; the others are `error` with code `service_unavailable` and were not. "
            "Send the same items again: stored ones come back `existing`."
        ),
    ),
}


def _django_errors(error: DjangoValidationError) -> Any:
    if hasattr(error, "error_dict"):
        return {key: [m for e in errors for m in e.messages] for key, errors in error.error_dict.items()}
    return error.messages


def _item_error(index: int, item: Any, errors: list[dict[str, str]]) -> dict[str, Any]:
    external_id = item.get("external_id") if isinstance(item, dict) else None
    return {
        "index": index,
        "status": "error",
        "id": None,
        "external_id": external_id if isinstance(external_id, str) else None,
        "errors": errors,
    }


@dataclass
class BatchOutcome:
    """Per-item results; `interrupted_at` is the index where the database became unavailable, if it did."""

    results: list[dict[str, Any]]
    counts: dict[str, int]
    interrupted_at: int | None = None

    def response(self) -> Response:
        body: dict[str, Any] = {**self.counts, "results": self.results}
        if self.interrupted_at is None:
            return Response(body)
        path = f"items[{self.interrupted_at}]"
        message = (
            f"The database became unavailable at {path}: the items before it are stored as reported, "
            "that item and the ones after it are not. Retry the same request later."
        )
        response = Response(
            {**error_body("service_unavailable", message, [{"path": path, "message": message}]), **body},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def _batch_items_check(items: Any) -> None:
    if not isinstance(items, list):
        raise serializers.ValidationError({"items": "Expected a list of items."})
    if not items:
        raise serializers.ValidationError({"items": "Give at least one item."})
    if len(items) > BATCH_MAX_ITEMS:
        raise serializers.ValidationError({"items": f"At most {BATCH_MAX_ITEMS} items per request."})


def batch_run(
    items: Any,
    *,
    serializer_class: type[CustomerReferenceSerializer],
    ingest_one: Callable[..., tuple[Any, bool]],
    cause: str,
) -> BatchOutcome:
    """
    Validate and write each item on its own, each committed by itself (the view runs outside any request
    transaction), and report per-item results with paths. If the database becomes unavailable, stop there:
    what was stored is reported as such and the rest as not stored, so a retry completes the batch exactly.
    """
    _batch_items_check(items)
    outcome = BatchOutcome(results=[], counts={"created": 0, "existing": 0, "failed": 0})
    for index, item in enumerate(items):
        prefix = f"items[{index}]"
        errors: Any = None
        try:
            serializer = serializer_class(data=item)
            if serializer.is_valid():
                try:
                    row, created = ingest_one(
                        data=serializer.validated_data, customer_ref=_reference(serializer), cause=cause
                    )
                except DjangoValidationError as error:
                    errors = _django_errors(error)
            else:
                errors = serializer.errors
        except DatabaseError as error:
            if not is_unavailable(error):
                raise
            outcome.interrupted_at = index
            for rest, unsent in enumerate(items[index:], start=index):
                outcome.counts["failed"] += 1
                message = "Not stored: the database became unavailable; send this item again."
                outcome.results.append(
                    _item_error(
                        rest, unsent, [{"path": f"items[{rest}]", "message": message, "code": "service_unavailable"}]
                    )
                )
            return outcome
        if errors is not None:
            outcome.counts["failed"] += 1
            outcome.results.append(_item_error(index, item, flatten_errors(errors, prefix)))
            continue
        status_name = "created" if created else "existing"
        outcome.counts[status_name] += 1
        outcome.results.append(
            {"index": index, "status": status_name, "id": row.pk, "external_id": row.external_id, "errors": []}
        )
    return outcome


def _customers_by_reference(valid: dict[int, dict[str, Any]]) -> tuple[dict[int, Customer], dict[str, Customer]]:
    """The customers the items name by id or by external id: at most one query for each kind."""
    ids = {data["customer_id"] for data in valid.values() if data.get("customer_id") is not None}
    external_ids = {data["customer_external_id"] for data in valid.values() if data.get("customer_external_id")}
    by_id = {customer.pk: customer for customer in Customer.objects.filter(pk__in=ids)} if ids else {}
    by_external_id = (
        {str(customer.external_id): customer for customer in Customer.objects.filter(external_id__in=external_ids)}
        if external_ids
        else {}
    )
    return by_id, by_external_id


def events_batch_run(items: Any, *, cause: str) -> BatchOutcome:
    """
    The event batch, set-based: every item validated (no query), the customers named by id or external id
    read in one query per kind (an embedded customer is upserted on its own), then the good items written in
    ONE transaction — one insert for the events, one for their outbox rows, one for their queue rows
    (`services.custom_events_record_bulk`). Bad items are reported with their paths and written nowhere.
    If the database becomes unavailable, nothing of the batch is stored and every item says so.
    """
    _batch_items_check(items)
    outcome = BatchOutcome(results=[], counts={"created": 0, "existing": 0, "failed": 0})
    errors: dict[int, Any] = {}
    valid: dict[int, dict[str, Any]] = {}
    # One serializer validates every item (as a ListSerializer's child does): its fields are built once,
    # not once per item.
    validator = CustomEventCreateSerializer(context={"customer_lookup": False})
    for index, item in enumerate(items):
        try:
            valid[index] = validator.run_validation(item)
        except serializers.ValidationError as error:
            errors[index] = as_serializer_error(error)
    stored: dict[int, tuple[Any, bool]] = {}
    try:
        by_id, by_external_id = _customers_by_reference(valid)
        inputs: dict[int, services.CustomEventInput] = {}
        for index, data in valid.items():
            try:
                customer = _batch_customer(data, by_id, by_external_id, cause)
            except DjangoValidationError as error:
                errors[index] = _django_errors(error)
                continue
            inputs[index] = services.CustomEventInput(
                customer=customer,
                name=data["name"],
                properties=data.get("properties") or {},
                occurred_at=data.get("occurred_at"),
                external_id=data.get("external_id"),
            )
        written = services.custom_events_record_bulk(events=list(inputs.values()), cause=cause)
        stored = dict(zip(inputs, written, strict=True))
    except DatabaseError as error:
        if not is_unavailable(error):
            raise
        outcome.interrupted_at = 0
        message = "Not stored: the database became unavailable; send this item again."
        for index, item in enumerate(items):
            outcome.counts["failed"] += 1
            error_entry = {"path": f"items[{index}]", "message": message, "code": "service_unavailable"}
            outcome.results.append(_item_error(index, item, [error_entry]))
        return outcome
    for index, item in enumerate(items):
        if index in errors:
            outcome.counts["failed"] += 1
            outcome.results.append(_item_error(index, item, flatten_errors(errors[index], f"items[{index}]")))
            continue
        row, created = stored[index]
        status_name = "created" if created else "existing"
        outcome.counts[status_name] += 1
        outcome.results.append(
            {"index": index, "status": status_name, "id": row.pk, "external_id": row.external_id, "errors": []}
        )
    return outcome


def _batch_customer(
    data: dict[str, Any], by_id: dict[int, Customer], by_external_id: dict[str, Customer], cause: str
) -> Customer:
    if data.get("customer_id") is not None:
        if (customer := by_id.get(data["customer_id"])) is None:
            raise DjangoValidationError({"customer_id": f"No customer with id {data['customer_id']}."})
        return customer
    if data.get("customer_external_id"):
        external_id = data["customer_external_id"]
        if (customer := by_external_id.get(external_id)) is None:
            raise DjangoValidationError({"customer_external_id": f"No customer with external id {external_id!r}."})
        return customer
    # an embedded customer: upserted (its own savepoint), as the single-item path does
    return services.customer_resolve(customer_fields=dict(data["customer"]), cause=cause)


class BatchViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Bulk ingestion for backfills: up to 1,000 orders or events per request, each item written atomically."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    action_permissions = {"orders": ["customers.add_order"], "events": ["customers.add_customerevent"]}

    pagination_class = None
    filter_backends: list = []
    serializer_class = OrderCreateSerializer
    # Each item commits on its own, also under an Idempotency-Key: a cut connection loses no stored item
    # from the report (items are idempotent by external_id, so a replay stores nothing twice).
    idempotent_in_one_transaction = False

    @extend_schema(
        request=inline_serializer(name="OrderBatch", fields={"items": OrderCreateSerializer(many=True)}),
        responses=BATCH_RESPONSES,
        examples=[OpenApiExample("Two orders", value={"items": [ORDER_EXAMPLE]}, request_only=True)],
        description=(
            "Good items are written, bad ones reported with paths like `items[3].lines[0].unit_price`. "
            "Items with an existing `external_id` are reported as `existing` and not written again."
        ),
    )
    @action(detail=False, methods=["post"])
    def orders(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        return batch_run(
            body.get("items"),
            serializer_class=OrderCreateSerializer,
            ingest_one=ingest.order_ingest,
            cause=api_cause(request),
        ).response()

    @extend_schema(
        request=inline_serializer(name="EventBatch", fields={"items": CustomEventCreateSerializer(many=True)}),
        responses=BATCH_RESPONSES,
        examples=[OpenApiExample("Events", value={"items": [EVENT_EXAMPLE]}, request_only=True)],
    )
    @action(detail=False, methods=["post"])
    def events(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        return events_batch_run(body.get("items"), cause=api_cause(request)).response()
