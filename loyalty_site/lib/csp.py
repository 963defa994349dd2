"""
django-csp's middleware with the Content-Security-Policy header built once per policy instead of on every response
(`MIDDLEWARE` in loyalty_site/settings/base.py).

django-csp 4 rebuilds the header from the settings on every response (a dataclass turned into a dict, the directives
merged, sorted into a string, twice: the policy and the report-only one): ~0.2 ms of a JSON API request's ~5 ms,
for the same string each time. A response that changes nothing about the policy — no `@csp_update`/`@csp_replace`/
`@csp_override` on its view and no nonce used by its page — gets the string built for the current settings
(rebuilt when the settings object changes, e.g. `override_settings`). Everything else goes through django-csp's
own code unchanged: pages with a nonce get their per-request nonce, decorated views their own policy. The header
is the same byte for byte, on every response that had it before (the API's JSON included: a JSON body that a
browser is tricked into rendering still runs no script).
"""

from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

_SETTING = {False: "CONTENT_SECURITY_POLICY", True: "CONTENT_SECURITY_POLICY_REPORT_ONLY"}


def _as_is(parts: PolicyParts) -> bool:
    return parts.config is None and parts.update is None and parts.replace is None and parts.nonce is None


class CSPMiddleware(_CSPMiddleware):
    """`csp.middleware.CSPMiddleware`, the unchanged policy's header cached (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # report_only -> (the settings value it was built from, the header)
        self._built: dict[bool, tuple[Any, str]] = {}

    def _header(self, request: HttpRequest, response: HttpResponseBase, *, report_only: bool) -> str:
        parts = self.get_policy_parts(request=request, response=response, report_only=report_only)
        if not _as_is(parts):
            return build_policy(
                config=parts.config,
                update=parts.update,
                replace=parts.replace,
                nonce=parts.nonce,
                report_only=report_only,
            )
        source = getattr(settings, _SETTING[report_only], None)
        built = self._built.get(report_only)
        if built is None or built[0] is not source:
            built = (source, build_policy(report_only=report_only))
            self._built[report_only] = built
        return built[1]

    # django-csp 4.0's process_response, with `_header` in place of build_policy(**asdict(parts)).
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code in (500, 404) and settings.DEBUG:
            return response  # the debug pages
        for report_only, header, exempt in (
            (False, HEADER, "_csp_exempt"),
            (True, HEADER_REPORT_ONLY, "_csp_exempt_ro"),
        ):
            policy = self._header(request, response, report_only=report_only)
            if not policy or header in response or getattr(response, exempt, False) is not False:
                continue
            prefixes = (getattr(settings, _SETTING[report_only], None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy
        # As django-csp: a nonce asked for after the header was written raises (it would not be in the header).
        if getattr(request, "_csp_nonce", None) is None:
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
