"""Console forms: the brand, a new template, one locale variant, the preview's customer."""

from __future__ import annotations

from django import forms

from .choices import TemplateChannel, TemplatePurpose
from .models import Brand
from .services import BRAND_FIELDS, LOGO_MAX_BYTES


class BrandForm(forms.ModelForm):
    logo = forms.FileField(
        required=False, help_text=f"PNG, JPEG or GIF, at most {LOGO_MAX_BYTES // 1024} KB (wins over the address)"
    )
    logo_remove = forms.BooleanField(required=False, label="Remove the uploaded logo")

    class Meta:
        model = Brand
        fields = list(BRAND_FIELDS)
        widgets = {
            "primary_colour": forms.TextInput(attrs={"type": "color"}),
            "text_colour": forms.TextInput(attrs={"type": "color"}),
            "background_colour": forms.TextInput(attrs={"type": "color"}),
            "footer_text": forms.Textarea(attrs={"rows": 3}),
        }

    def clean_logo(self) -> bytes | None:
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        # Read at most one byte past the cap: a huge upload is refused without being read whole.
        data = upload.read(LOGO_MAX_BYTES + 1)
        if len(data) > LOGO_MAX_BYTES:
            raise forms.ValidationError(f"at most {LOGO_MAX_BYTES // 1024} KB")
        return bytes(data)


class TemplateCreateForm(forms.Form):
    key = forms.SlugField(max_length=64, help_text="How workflows name it, e.g. welcome-email")
    name = forms.CharField(max_length=120)
    channel = forms.ChoiceField(choices=TemplateChannel.choices)
    purpose = forms.ChoiceField(choices=TemplatePurpose.choices)
    default_locale = forms.CharField(max_length=16, initial="en")
    subject = forms.CharField(max_length=255, required=False, help_text="E-mail subject / in-app title")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), max_length=20_000)


class VariantForm(forms.Form):
    locale = forms.CharField(max_length=16)
    subject = forms.CharField(max_length=255, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), max_length=20_000, required=False)
