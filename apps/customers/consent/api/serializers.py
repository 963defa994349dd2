"""Consents as the customers API shows and takes them; the suppression list's resource."""

import re
from typing import Any

from rest_framework import serializers

from loyalty_site.lib.api.ranges import BoundedInputMixin

from ..choices import Channel, ConsentStatus, Purpose, SuppressionReason
from ..models import Consent, Suppression

MAX_CONSENTS = len(Channel.values) * len(Purpose.values)
SOURCE_PATTERN = re.compile(r"^[a-z_]+(:[\w.@/-]{1,56})?$")


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = [
            "channel",
            "purpose",
            "status",
            "source",
            "requested_at",
            "granted_at",
            "confirmed_at",
            "withdrawn_at",
            "updated_at",
        ]
        read_only_fields = fields


class ConsentInputSerializer(BoundedInputMixin, serializers.Serializer):
    """
    One consent to record. `granted` grants (with CONSENT_DOUBLE_OPT_IN on, an e-mail marketing sign-up is
    recorded `pending` and mailed a confirmation link); `pending` asks for double opt-in explicitly (the
    confirmation link is sent); `withdrawn` unsubscribes (`customer.unsubscribed` once for marketing).
    """

    channel = serializers.ChoiceField(choices=Channel.choices)
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.MARKETING)
    status = serializers.ChoiceField(choices=ConsentStatus.choices)
    # (the metaclass takes declared fields off the class: this does not shadow `Field.source` at run time)
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=64,
        required=False,
        help_text="Where the consent was given: api (default), form:<slug>, pos:<store> … (lower-case word, "
        "optionally `:` and a reference)",
    )

    def validate_source(self, value: str) -> str:
        if not SOURCE_PATTERN.match(value):
            raise serializers.ValidationError("A lower-case word, optionally followed by ':' and a reference.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["status"] == ConsentStatus.PENDING and (
            # a PATCH (partial) leaves out the nested default: no purpose means marketing
            attrs["channel"] == Channel.IN_APP or attrs.get("purpose", Purpose.MARKETING) != Purpose.MARKETING
        ):
            raise serializers.ValidationError({"status": "Double opt-in (pending) is for e-mail or SMS marketing."})
        return attrs


class ConsentListField(serializers.ListField):
    child = ConsentInputSerializer()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_CONSENTS)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, list) and len(data) > MAX_CONSENTS:  # before validating any item
            raise serializers.ValidationError(f"At most {MAX_CONSENTS} consents.")
        items = super().to_internal_value(data)
        seen: set[tuple[str, str]] = set()
        for index, item in enumerate(items):
            key = (item["channel"], item.get("purpose", Purpose.MARKETING))
            if key in seen:
                # a list of per-item errors: the handler names the path `consents[<index>].channel`
                errors: list[dict[str, str]] = [{} for _ in items]
                errors[index] = {"channel": "The same channel and purpose twice."}
                raise serializers.ValidationError(errors)
            seen.add(key)
        return items


class SuppressionSerializer(BoundedInputMixin, serializers.ModelSerializer):
    address = serializers.CharField(max_length=254)
    channel = serializers.ChoiceField(choices=Channel.choices, help_text="email or sms (in-app has no address)")
    reason = serializers.ChoiceField(choices=SuppressionReason.choices, default=SuppressionReason.MANUAL)

    class Meta:
        model = Suppression
        fields = ["id", "address", "channel", "reason", "source", "created_at"]
        read_only_fields = ["id", "source", "created_at"]
        validators: list[Any] = []  # an address already listed is answered with its row (200), not a 400

    def validate_channel(self, value: str) -> str:
        if value == Channel.IN_APP:
            raise serializers.ValidationError("In-app messages have no address to suppress.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["channel"] == Channel.EMAIL and "@" not in attrs["address"]:
            raise serializers.ValidationError({"address": "Enter a valid e-mail address."})
        return attrs
