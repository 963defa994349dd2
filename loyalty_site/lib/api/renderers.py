"""
JSON answers of hot endpoints, written by orjson, and the content negotiation that picks JSON without parsing an
`Accept` header that can only give JSON.

`FastJSONRenderer` gives the bytes DRF's `JSONRenderer` gives (compact, non-ASCII as UTF-8, U+2028/U+2029
escaped, dates and Decimals through DRF's encoder) for answers made of dicts, lists, strings, integers, booleans
and None: the promotions checkout writes ~12 KB of JSON per validation, which `json` + DRF's encoder took a tenth
of the request's CPU to write. A float would be written as orjson writes it (`1e16`, not `1e+16`): a view whose
answers hold floats keeps DRF's renderer. Anything orjson cannot write exactly (an indent, an integer past 64 bits,
a key that is not a string, a type only DRF's encoder knows and returns a type orjson refuses) goes to DRF's
renderer, which writes it or raises as it always did.

`PlainAcceptNegotiation` answers what DRF's negotiation answers for the usual JSON client — no `Accept` header,
`*/*` or `application/json`, no `?format=` — without parsing the header: the view's first renderer and its media
type. Any other request is negotiated by DRF.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

try:
    import orjson
except ModuleNotFoundError:  # pragma: no cover - an install that skipped it (requirements.txt pins it)
    orjson = None  # type: ignore[assignment]  # DRF's renderer then writes every answer, as it did before

_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson is not None else 0
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, written by orjson when it can write the answer exactly (see the module)."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if data is None:
            return b""
        if (
            orjson is None
            or not self.compact
            or self.ensure_ascii
            or self.get_indent(accepted_media_type or "", renderer_context or {})
        ):
            return super().render(data, accepted_media_type, renderer_context)
        encoder = self.encoder_class()

        def default(value: Any) -> Any:
            # (dates, times and dataclasses come here: DRF's encoder writes dates its own way; a Decimal it turns
            # into a float, which orjson would write differently, so that answer goes to DRF's renderer)
            converted = encoder.default(value)
            if isinstance(converted, float):
                raise TypeError("a float from DRF's encoder")
            return converted

        try:
            written = orjson.dumps(data, default=default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in written:
                written = written.replace(raw, escaped)
        return written


class PlainAcceptNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with the answer for a plain JSON client given without parsing its `Accept` header."""

    plain_accepts = frozenset({"", "*/*", "application/json"})

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        first = renderers[0] if renderers else None
        if (
            first is not None
            and first.media_type == "application/json"
            and not format_suffix
            and request.META.get("HTTP_ACCEPT", "").strip() in self.plain_accepts
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
