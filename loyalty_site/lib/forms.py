"""Form fields shared by the apps' admin forms."""

from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput

from loyalty_site.lib.json_limits import MAX_JSON_DEPTH, json_text_error


class BoundedJSONField(forms.JSONField):
    """
    Django's JSON form field with the nesting depth checked on the text before `json` parses it: a
    document nested thousands of levels deep is a form error naming where, not a RecursionError (500).
    """

    def __init__(self, *, max_depth: int = MAX_JSON_DEPTH, **kwargs: Any) -> None:
        self.max_depth = max_depth
        super().__init__(**kwargs)

    def _too_deep(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        error = json_text_error(value, max_depth=self.max_depth)
        return (
            None if error is None else f"The JSON is {error.message}" + (f" (at {error.path})." if error.path else ".")
        )

    def to_python(self, value: Any) -> Any:
        message = None if self.disabled else self._too_deep(value)
        if message:
            raise forms.ValidationError(message, code="invalid")
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Re-displaying a refused document must not parse it either.
        if self._too_deep(data):
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)
