from django import forms


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
