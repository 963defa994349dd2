"""The campaigns fields of the condition language: `customer.segments` (imported by CampaignsConfig.ready)."""

from django.db.models import F, OuterRef

from loyalty_site.lib.conditions import catalog

from .models import SegmentMember


def _read_segments(context, **kwargs):
    customer = context.customer
    if customer is None or customer.pk is None:
        return []
    return context.cached(
        ("customer.segments", customer.pk),
        lambda: sorted(SegmentMember.objects.filter(customer_id=customer.pk).values_list("segment__name", flat=True)),
    )


def _segment_items(**kwargs):
    return SegmentMember.objects.filter(customer_id=OuterRef("pk")), F("segment__name")


catalog.register_field(
    catalog.FieldSpec(
        name="customer.segments",
        type="tags",
        label="Segments",
        scope="customer",
        description="Dynamic segments the customer belongs to (as of the segment's last refresh).",
        read=_read_segments,
        items=_segment_items,
        example="VIP",
    )
)


# --- Promotions: the cart being validated and the customer's redemption history -------------------


def _cart_value(attr: str):
    def read(context, **kwargs):
        return getattr(context.cart, attr, None) if context.cart is not None else None

    return read


def _read_redemptions_count(context, window=None, **kwargs):
    from datetime import timedelta

    from .promotions.choices import RedemptionStatus
    from .promotions.models import Redemption

    customer = context.customer
    if customer is None or customer.pk is None:
        return 0
    days = int(window["days"]) if isinstance(window, dict) and window.get("days") else None

    def compute():
        rows = Redemption.objects.filter(customer_id=customer.pk, status=RedemptionStatus.REDEEMED)
        if days is not None:
            rows = rows.filter(redeemed_at__gte=context.now - timedelta(days=days))
        return rows.count()

    return context.cached(("customer.redemptions_count", days), compute)


def _compile_redemptions_count(*, now, window=None, **kwargs):
    from datetime import timedelta

    from django.db.models import Count, IntegerField, Subquery, Value
    from django.db.models.functions import Coalesce

    from .promotions.choices import RedemptionStatus
    from .promotions.models import Redemption

    rows = Redemption.objects.filter(customer_id=OuterRef("pk"), status=RedemptionStatus.REDEEMED)
    if isinstance(window, dict) and window.get("days"):
        rows = rows.filter(redeemed_at__gte=now - timedelta(days=int(window["days"])))
    counted = rows.values("customer_id").annotate(count=Count("pk")).values("count")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


for _spec in (
    catalog.FieldSpec(
        name="cart.quantity",
        type="integer",
        label="Cart quantity",
        scope="cart",
        description="Units in the cart (the sum of the lines' quantities).",
        read=_cart_value("quantity"),
        example=3,
    ),
    catalog.FieldSpec(
        name="cart.shipping",
        type="money",
        label="Cart shipping",
        scope="cart",
        read=_cart_value("shipping"),
        example=5,
    ),
    catalog.FieldSpec(
        name="cart.channel",
        type="text",
        label="Cart channel",
        scope="cart",
        read=_cart_value("channel"),
        example="web",
    ),
    catalog.FieldSpec(
        name="customer.redemptions_count",
        type="integer",
        label="Promotions redeemed",
        scope="customer",
        description="Redemptions of promotions by the customer (optionally in the last N days).",
        read=_read_redemptions_count,
        compile=_compile_redemptions_count,
        supports_window=True,
        example=1,
    ),
):
    catalog.register_field(_spec)


# --- Vouchers: the code a workflow just issued, or the code an event is about -------------------------------


def _read_voucher_code(context, **kwargs):
    """
    In a workflow run: the code `campaigns.issue_voucher` published to the customer in an earlier step of the
    same run (the latest one), so a later e-mail can say `{{ voucher.code }}`. Otherwise the code the trigger
    event is about (`voucher.published`, `voucher.expiring`). Not cached: each step reads what is true now.
    """
    from .promotions.selectors import voucher_issued_in_run

    customer = context.customer
    extra = context.extra or {}
    run_id = extra.get("run_id")
    if run_id and customer is not None and customer.pk:
        code = voucher_issued_in_run(run_id=run_id, customer_id=customer.pk)
        if code:
            return code
    payload = extra.get("payload") or {}
    return payload.get("code") if isinstance(payload, dict) else None


def _payload_number(context, name: str):
    payload = (context.extra or {}).get("payload") or {}
    value = payload.get(name) if isinstance(payload, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_notice_days(context, **kwargs):
    """The N of a `voucher.expiring` notice ("1".."90", as the choice is stored); None for other events."""
    days = _payload_number(context, "days")
    return str(days) if days is not None else None


# The N of "Voucher expiring in N days" (1..90): a choice, so the builder offers exactly the valid values and
# saving refuses any other with its path.
NOTICE_DAYS_CHOICES = tuple((str(days), f"{days} day{'s' if days > 1 else ''} before expiry") for days in range(1, 91))

catalog.register_field(
    catalog.FieldSpec(
        name="voucher.notice_days",
        type="choice",
        label="Voucher expiring: days before expiry",
        scope="customer",
        description="Under the “Voucher expiring” trigger: which notice this is — N days before the code expires "
        "(the daily notice sends one per N that an active workflow asks for with this condition).",
        read=_read_notice_days,
        operators=("eq", "in"),
        choices=NOTICE_DAYS_CHOICES,
        example="3",
    )
)
catalog.register_field(
    catalog.FieldSpec(
        name="voucher.expires_in_days",
        type="integer",
        label="Voucher expiring: days left",
        scope="customer",
        description="Under the “Voucher expiring” trigger: whole days until the code expires (at least 1) — for "
        "messages: “expires in {{ voucher.expires_in_days }} days”.",
        read=lambda context, **kwargs: _payload_number(context, "days_left"),
        example=3,
    )
)

catalog.register_field(
    catalog.FieldSpec(
        name="voucher.code",
        type="text",
        label="Voucher code",
        scope="customer",
        description="The code issued by an earlier “Issue a voucher code” step of this run, or the code the "
        "voucher event is about — for e-mails: “Your code: {{ voucher.code }}”.",
        read=_read_voucher_code,
        example="WELCOME-7KQ2",
    )
)
