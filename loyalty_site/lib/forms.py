"""Form fields shared by the apps' admin forms."""

from collections.abc import Callable
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


# --- The visual condition editor as a form field ----------------------------------------------------


class ConditionEditor(forms.Textarea):
    """
    The builder's visual condition editor (`static/conditions/widget.js`) over a JSON textarea: the textarea
    stays the submitted value (and is what "Advanced: edit as JSON" shows); without JavaScript it is a
    plain JSON box. See /work/notes/console.md and README ("The condition editor in any form").
    """

    class Media:
        css = {"all": ["conditions/conditions.css"]}

    def __init__(
        self,
        *,
        scopes: tuple[str, ...] = ("customer",),
        audience: bool = False,
        suggestions: Callable[[], dict[str, list[str]]] | None = None,
        preview_url: str | None = None,
        scopes_from: dict[str, Any] | None = None,
        empty_label: str = "No condition: always true.",
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs={"class": "cw-json vLargeTextField", "rows": 8, "spellcheck": "false", **(attrs or {})})
        self.scopes = tuple(scopes)
        self.audience = audience
        self.suggestions = suggestions
        self.preview_url = preview_url
        self.scopes_from = scopes_from
        self.empty_label = empty_label
        self.errors: list[dict[str, str]] = []

    def boot(self, widget_id: str) -> dict[str, Any]:
        from django.urls import reverse

        from loyalty_site.lib.conditions.editor import editor_catalog

        preview = self.preview_url
        if preview and not preview.startswith("/"):
            preview = reverse(preview)
        return {
            "id": widget_id,
            "catalog": editor_catalog(),
            "suggestions": self.suggestions() if self.suggestions else {},
            "scopes": list(self.scopes),
            "scopes_from": self.scopes_from,
            "audience": self.audience,
            "preview_url": preview,
            "empty_label": self.empty_label,
            "errors": self.errors,
        }

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> Any:
        from django.templatetags.static import static
        from django.utils.html import format_html, json_script

        attrs = dict(attrs or {})
        widget_id = attrs.get("id") or f"id_{name}"
        attrs["id"] = widget_id
        textarea = super().render(name, value, attrs, renderer)
        return format_html(
            '<div class="cw" data-condition-widget="{}">{}<div class="cw-editor" id="{}-editor"></div>{}'
            '<div class="cw-preview" id="{}-preview" aria-live="polite" hidden></div></div>'
            '<script type="module" src="{}"></script>',
            widget_id,
            json_script(self.boot(widget_id), f"{widget_id}-condition-boot"),
            widget_id,
            textarea,
            widget_id,
            static("conditions/widget.js"),
        )


class ConditionField(BoundedJSONField):
    """
    A condition of the condition language, edited visually (`ConditionEditor`). `check(condition)` returns
    the problems as [(path, message)] (the owning app's validation service); they are shown in the
    marketer's words at the very input they concern. A form whose check needs other fields (an earning
    rule's kind) calls `form.add_error(name, field.rejection(errors, condition))` from its `clean()`.
    """

    def __init__(
        self,
        *,
        scopes: tuple[str, ...] = ("customer",),
        audience: bool = False,
        check: Callable[[Any], list[tuple[str, str]]] | None = None,
        suggestions: Callable[[], dict[str, list[str]]] | None = None,
        preview_url: str | None = None,
        scopes_from: dict[str, Any] | None = None,
        empty_label: str = "No condition: always true.",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget",
            ConditionEditor(
                scopes=scopes,
                audience=audience,
                suggestions=suggestions,
                preview_url=preview_url,
                scopes_from=scopes_from,
                empty_label=empty_label,
            ),
        )
        self.check = check
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        condition = super().clean(value)
        if condition in ({}, []):
            condition = None
        if self.check is not None and condition is not None:
            errors = self.check(condition)
            if errors:
                raise self.rejection(errors, condition)
        return condition

    def rejection(self, errors: list[tuple[str, str]], condition: Any) -> forms.ValidationError:
        """The form error for these problems; the editor shows each one on its input."""
        from loyalty_site.lib.conditions.editor import condition_errors_plain

        located = condition_errors_plain(condition, errors)
        if isinstance(self.widget, ConditionEditor):
            self.widget.errors = located
        return forms.ValidationError([error["message"] for error in located], code="condition")
