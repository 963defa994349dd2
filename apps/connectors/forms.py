"""Console forms of the store connectors: connect a shop (secrets write-only), change its settings."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .choices import Platform
from .models import (
    DEFAULT_CONSENT_META_KEY,
    DEFAULT_CONSENT_META_SUBSCRIBED,
    DEFAULT_CONSENT_META_UNSUBSCRIBED,
    SHOPIFY_TOPICS,
    TOPICS,
    WOOCOMMERCE_TOPICS,
    StoreConnection,
)
from .services.connections import META_KEY, connection_fields_check

SECRET_HELP = "Write-only: stored encrypted and never shown again. Leave empty to keep the stored one."


UNSUBSCRIBES_NEED_TOKEN = "Give the shop's API token too: consent changes are sent through its Admin API."


class ConsentFields(forms.ModelForm):
    """The consent settings: empty meta fields take their defaults; pushing consent changes needs a token."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("consent_meta_key", "consent_meta_unsubscribed", "consent_meta_subscribed"):
            self.fields[name].required = False

    def clean_consent_meta_key(self) -> str:
        value = (self.cleaned_data.get("consent_meta_key") or "").strip() or DEFAULT_CONSENT_META_KEY
        if not META_KEY.fullmatch(value):
            raise ValidationError("A meta key: 1 to 100 letters, digits, _ . : or -, e.g. newsletter.")
        return value

    def clean_consent_meta_unsubscribed(self) -> str:
        return (self.cleaned_data.get("consent_meta_unsubscribed") or "").strip() or DEFAULT_CONSENT_META_UNSUBSCRIBED

    def clean_consent_meta_subscribed(self) -> str:
        value = (self.cleaned_data.get("consent_meta_subscribed") or "").strip() or DEFAULT_CONSENT_META_SUBSCRIBED
        unsubscribed = (self.data.get(self.add_prefix("consent_meta_unsubscribed")) or "").strip()
        if value.lower() == (unsubscribed or DEFAULT_CONSENT_META_UNSUBSCRIBED).lower():
            raise ValidationError("Must differ from the unsubscribed value.")
        return value

    def unsubscribes_check(self, cleaned: dict[str, Any]) -> None:
        has_token = bool((cleaned.get("api_token") or "").strip() or self.instance.api_token)
        if cleaned.get("push_unsubscribes") and not has_token:
            self.add_error("push_unsubscribes", UNSUBSCRIBES_NEED_TOKEN)


class ConnectionAddForm(ConsentFields):
    """Connect a shop. The signing secret is typed once and never echoed back (not even after an error)."""

    signing_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        max_length=500,
        help_text=(
            "Shopify: the key shown under Settings → Notifications → Webhooks (“Your webhooks will be signed "
            "with …”), or your custom app's API secret key. WooCommerce: the Secret you type into the webhook."
        ),
    )
    api_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        max_length=500,
        help_text="Optional, to push tags, loyalty state and marketing consent back: Shopify Admin API access token "
        "(shpat_…), or WooCommerce consumer key and secret as key:secret. Stored encrypted, never shown again.",
    )

    class Meta:
        model = StoreConnection
        fields = [
            "name",
            "platform",
            "shop_domain",
            "shop_currency",
            "push_enabled",
            "push_unsubscribes",
            "consent_meta_key",
            "consent_meta_unsubscribed",
            "consent_meta_subscribed",
            "api_base_url",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            cleaned.update(
                connection_fields_check(
                    platform=cleaned.get("platform", ""),
                    **{key: cleaned[key] for key in ("shop_domain", "shop_currency") if key in cleaned},
                )
            )
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        self.unsubscribes_check(cleaned)
        return cleaned


class ConnectionChangeForm(ConsentFields):
    signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        max_length=500,
        help_text=SECRET_HELP,
    )
    api_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        max_length=500,
        help_text=SECRET_HELP,
    )
    topics = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(topic, topic) for topic in (*SHOPIFY_TOPICS, *WOOCOMMERCE_TOPICS)],
        help_text="Deliveries of other topics are stored and ignored.",
    )

    class Meta:
        model = StoreConnection
        fields = [
            "name",
            "shop_domain",
            "shop_currency",
            "status",
            "topics",
            "push_enabled",
            "push_unsubscribes",
            "consent_meta_key",
            "consent_meta_unsubscribed",
            "consent_meta_subscribed",
            "api_base_url",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        platform = self.instance.platform or Platform.SHOPIFY
        topics = self.fields["topics"]
        assert isinstance(topics, forms.MultipleChoiceField)
        topics.choices = [(topic, topic) for topic in TOPICS[platform]]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.unsubscribes_check(cleaned)
        return cleaned
