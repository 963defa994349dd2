"""
The sign-up form of a page, built from its form block, with the bot traps that need no third party: a
honeypot field people never see, a signed start time (a form sent faster than LANDING_FORM_MIN_SECONDS is a
bot's; one older than a day is stale) and, in the view, a per-IP rate limit.
"""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing

HONEYPOT = "website"
STARTED = "started"
DEVICE = "device"
DEVICE_MAX_LENGTH = 64  # Customer.signup_device
SALT = "landing.form.started"
MAX_FORM_AGE_SECONDS = 24 * 3600
CONSENT_LABELS = {"email": "E-mail", "sms": "SMS"}


def started_token(at: float | None = None) -> str:
    return signing.dumps(int(at if at is not None else time.time()), salt=SALT)


def started_age(token: str, now: float | None = None) -> float | None:
    """Seconds since the form was rendered, or None when the token was tampered with."""
    try:
        started = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(started, int):
        return None
    return (now if now is not None else time.time()) - started


def _field_for(name: str, label: str, required: bool) -> forms.Field:
    if name == "email":
        return forms.EmailField(label=label, max_length=254, required=True)
    if name == "birthday":
        return forms.DateField(label=label, required=required, widget=forms.DateInput(attrs={"type": "date"}))
    if name == "country":
        return forms.RegexField(
            label=label,
            regex=r"^[A-Za-z]{2}$",
            required=required,
            max_length=2,
            error_messages={"invalid": "Use the two-letter country code (PT, DE, US …)."},
        )
    if name == "phone":
        return forms.RegexField(
            label=label,
            regex=r"^\+?[0-9 ()./-]{6,24}$",
            required=required,
            max_length=24,
            error_messages={"invalid": "Enter a phone number (digits, spaces, + and dashes)."},
        )
    return forms.CharField(label=label, required=required, max_length=120)


def field_key(name: str) -> str:
    """The HTML name of a block field (`attribute:shoe_size` → `attribute__shoe_size`)."""
    return name.replace(":", "__")


class SignupForm(forms.Form):
    """The fields the marketer chose, one consent box per channel, the honeypot and the signed start time."""

    def __init__(self, block: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.block = block
        for spec in block.get("fields") or []:
            field = _field_for(spec["name"], spec["label"], bool(spec.get("required")))
            field.widget.attrs.setdefault("autocomplete", _AUTOCOMPLETE.get(spec["name"], "off"))
            self.fields[field_key(spec["name"])] = field
        rewarding = bool(block.get("join_program") or block.get("voucher_campaign"))
        for channel in block.get("consent_channels") or []:
            text = block.get("consent_text") or "Send me news and offers."
            self.fields[f"consent_{channel}"] = forms.BooleanField(
                label=f"{CONSENT_LABELS[channel]}: {text}" if len(block["consent_channels"]) > 1 else text,
                required=rewarding and channel == "email",
                error_messages={"required": "Tick this box to receive your welcome gift: we send it by e-mail."},
            )
        self.fields[HONEYPOT] = forms.CharField(
            required=False,
            label="Leave this field empty",
            widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
        )
        self.fields[STARTED] = forms.CharField(widget=forms.HiddenInput, required=False)
        # A device identifier the page may post (a first-party id it keeps, e.g. in localStorage), for the fraud
        # velocity checks; optional, never shown, cut to the model's length rather than refused.
        self.fields[DEVICE] = forms.CharField(widget=forms.HiddenInput, required=False, strip=True)

    @property
    def visible_fields_without_traps(self) -> list[forms.BoundField]:
        return [bound for bound in self.visible_fields() if bound.name != HONEYPOT]

    def is_bot(self) -> bool:
        return bool((self.data.get(HONEYPOT) or "").strip())

    def clean_started(self) -> str:
        token = self.cleaned_data.get(STARTED) or ""
        age = started_age(token)
        if age is None:
            raise forms.ValidationError("This form could not be checked; please send it again.")
        if age < settings.LANDING_FORM_MIN_SECONDS:
            raise forms.ValidationError("That was quick! Please check your details and send the form again.")
        if age > MAX_FORM_AGE_SECONDS:
            raise forms.ValidationError("This form has expired; please send it again.")
        return token

    def clean_device(self) -> str:
        return str(self.cleaned_data.get(DEVICE) or "")[:DEVICE_MAX_LENGTH]

    def device(self) -> str:
        """The posted device identifier ("" when the page sent none)."""
        return str(self.cleaned_data.get(DEVICE) or "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("consent_sms") and "phone" in self.fields and not cleaned.get("phone"):
            self.add_error("phone", "Give your phone number to receive text messages.")
        return cleaned

    def customer_fields(self) -> dict[str, Any]:
        """The cleaned values by block field name (`email`, `first_name`, `attribute:shoe_size`, …)."""
        values: dict[str, Any] = {}
        for spec in self.block.get("fields") or []:
            value = self.cleaned_data.get(field_key(spec["name"]))
            if value in (None, ""):
                continue
            if spec["name"] == "country":
                value = str(value).upper()
            values[spec["name"]] = value.isoformat() if hasattr(value, "isoformat") else str(value).strip()
        return values

    def consents(self) -> list[str]:
        return [
            channel
            for channel in self.block.get("consent_channels") or []
            if self.cleaned_data.get(f"consent_{channel}")
        ]


_AUTOCOMPLETE = {
    "email": "email",
    "first_name": "given-name",
    "last_name": "family-name",
    "phone": "tel",
    "birthday": "bday",
    "country": "country",
}
