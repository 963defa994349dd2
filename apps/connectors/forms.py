"""Console forms of the store connectors: connect a shop (secrets write-only), change its settings."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .choices import Platform
from .models import SHOPIFY_TOPICS, TOPICS, WOOCOMMERCE_TOPICS, StoreConnection
from .services.connections import connection_fields_check

SECRET_HELP = "Write-only: stored encrypted and never shown again. Leave empty to keep the stored one."


class ConnectionAddForm(forms.ModelForm):
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
        help_text="Optional, to push tags and loyalty state back: Shopify Admin API access token (shpat_…), "
        "or WooCommerce consumer key and secret as key:secret. Stored encrypted, never shown again.",
    )

    class Meta:
        model = StoreConnection
        fields = ["name", "platform", "shop_domain", "shop_currency", "push_enabled", "api_base_url"]

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
        return cleaned


class ConnectionChangeForm(forms.ModelForm):
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
        fields = ["name", "shop_domain", "shop_currency", "status", "topics", "push_enabled", "api_base_url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        platform = self.instance.platform or Platform.SHOPIFY
        topics = self.fields["topics"]
        assert isinstance(topics, forms.MultipleChoiceField)
        topics.choices = [(topic, topic) for topic in TOPICS[platform]]
