"""
The API's JSON parser: DRF's, with the nesting depth checked on the raw text before `json` recurses
into it, so a body nested thousands of levels deep is a 400 naming where, never a RecursionError (500).
"""

import codecs
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from loyalty_site.lib.json_limits import MAX_JSON_DEPTH, json_text_error


class BoundedJSONParser(JSONParser):
    """JSON bodies nest at most `MAX_JSON_DEPTH` objects/arrays deep."""

    max_depth = MAX_JSON_DEPTH

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as error:
            raise ParseError(f"JSON parse error - {error}") from None
        too_deep = json_text_error(text, max_depth=self.max_depth)
        if too_deep is not None:
            raise ValidationError({too_deep.path or "body": [f"The JSON is {too_deep.message}."]})
        try:
            parse_constant = json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
