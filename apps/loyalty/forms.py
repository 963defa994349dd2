from typing import Any

from django import forms
from django.forms.models import BaseInlineFormSet

from . import services
from .models import Tier


class CodeForm(forms.Form):
    code = forms.CharField(max_length=64, label="Code or QR content", widget=forms.TextInput(attrs={"autofocus": True}))


class AdjustForm(forms.Form):
    points = forms.IntegerField(help_text="Positive to award, negative to deduct")
    reason = forms.CharField(max_length=255)

    def clean_points(self) -> int:
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError("Enter a non-zero number of points.")
        return points


CONFIRM_HELP = "Tick to save a change that moves members to another tier at the next recalculation."


def _moves_message(moves: Any) -> str:
    return (
        f"This ladder would move {moves.total} member(s) to another tier at the next recalculation "
        f"({moves.up} up, {moves.down} down). Tick “Save even though members move” to save it."
    )


class TierForm(forms.ModelForm):
    """One tier: the program's ladder must stay consistent, and moving members needs a confirmation."""

    confirm_moves = forms.BooleanField(required=False, label="Save even though members move", help_text=CONFIRM_HELP)

    class Meta:
        model = Tier
        fields = ["program", "name", "rank", "threshold", "multiplier", "expiry_days_override", "description"]

    def clean(self) -> dict[str, Any]:
        super().clean()  # (ModelForm.clean returns cleaned_data; the stubs allow None)
        cleaned = self.cleaned_data
        program = cleaned.get("program")
        if program is None or cleaned.get("rank") is None or cleaned.get("threshold") is None:
            return cleaned
        proposed = Tier(pk=self.instance.pk, program=program, name=cleaned.get("name", ""))
        proposed.rank, proposed.threshold = cleaned["rank"], cleaned["threshold"]
        ladder = [*Tier.objects.filter(program=program).exclude(pk=self.instance.pk), proposed]
        for error in services.tier_ladder_errors(ladder):
            self.add_error(error.path, error.message)
        if not self.errors and not cleaned.get("confirm_moves"):
            moves = services.tier_ladder_moves(program=program, tiers=ladder)
            if moves.total:
                self.add_error("confirm_moves", _moves_message(moves))
        return cleaned


class TierInlineForm(forms.ModelForm):
    confirm_moves = forms.BooleanField(required=False, label="Save even though members move", help_text=CONFIRM_HELP)

    class Meta:
        model = Tier
        fields = ["name", "rank", "threshold", "multiplier", "expiry_days_override", "description"]


class TierInlineFormSet(BaseInlineFormSet):
    """The whole ladder edited on the program page is checked at once (ranks and thresholds rise together)."""

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        ladder, confirmed = [], False
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE") or data.get("rank") is None or data.get("threshold") is None:
                continue
            tier = Tier(pk=form.instance.pk, name=data.get("name", ""))
            tier.rank, tier.threshold = data["rank"], data["threshold"]
            ladder.append(tier)
            confirmed = confirmed or bool(data.get("confirm_moves"))
        errors = services.tier_ladder_errors(ladder)
        if errors:
            raise forms.ValidationError([error.message for error in errors])
        if self.instance.pk and not confirmed:
            moves = services.tier_ladder_moves(program=self.instance, tiers=ladder)
            if moves.total:
                raise forms.ValidationError(_moves_message(moves))
