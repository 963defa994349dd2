"""
The Content-Security-Policy header is built once per policy (loyalty_site/lib/csp.py) and is the same byte for
byte as django-csp builds it; nonces, per-view policies and exemptions still go through django-csp.
"""

import pytest
from csp.decorators import csp_update
from csp.exceptions import CSPNonceError
from csp.utils import build_policy
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory, override_settings

from loyalty_site.lib.csp import CSPMiddleware
from loyalty_site.settings.security import PRODUCTION_CONTENT_SECURITY_POLICY

production_policy = override_settings(CONTENT_SECURITY_POLICY=PRODUCTION_CONTENT_SECURITY_POLICY)


def served(view, path="/api/v1/customers/"):
    request = RequestFactory().get(path)
    return request, CSPMiddleware(view)(request)


def json_view(request):
    return JsonResponse({"ok": True})


def page_with_nonce(request):
    return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")


@production_policy
def test_a_json_response_gets_the_policy_django_csp_builds_and_the_same_one_each_time():
    headers = [served(json_view)[1]["Content-Security-Policy"] for _ in range(3)]

    assert headers == [build_policy()] * 3
    assert "default-src 'self'" in headers[0] and "frame-ancestors 'none'" in headers[0]
    assert "nonce-" not in headers[0]


def test_a_changed_setting_changes_the_header():
    middleware = CSPMiddleware(json_view)
    with production_policy:
        before = middleware(RequestFactory().get("/api/v1/x/"))["Content-Security-Policy"]
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        after = middleware(RequestFactory().get("/api/v1/x/"))["Content-Security-Policy"]
    with override_settings(CONTENT_SECURITY_POLICY=None):
        none = middleware(RequestFactory().get("/api/v1/x/"))

    assert "default-src 'self'" in before
    assert after == "default-src 'none'"
    assert "Content-Security-Policy" not in none


@production_policy
def test_a_page_using_the_nonce_gets_its_own_nonce_in_the_header():
    (first_request, first), (second_request, second) = served(page_with_nonce, "/me/x/"), served(page_with_nonce)

    assert f"'nonce-{first_request._csp_nonce}'" in first["Content-Security-Policy"]
    assert f"'nonce-{second_request._csp_nonce}'" in second["Content-Security-Policy"]
    assert first_request._csp_nonce != second_request._csp_nonce
    assert first_request._csp_nonce in first.content.decode()


@production_policy
def test_a_view_with_its_own_policy_keeps_it_and_the_next_response_does_not_inherit_it():
    middleware = CSPMiddleware(csp_update({"img-src": ["https:"]})(json_view))
    plain = CSPMiddleware(json_view)

    updated = middleware(RequestFactory().get("/l/x/"))["Content-Security-Policy"]
    after = plain(RequestFactory().get("/l/x/"))["Content-Security-Policy"]

    assert "img-src 'self' data: https:" in updated
    assert after == build_policy()


@production_policy
def test_an_exempt_response_or_one_with_its_own_header_is_left_alone():
    def exempt(request):
        response = HttpResponse("x")
        response._csp_exempt = True
        return response

    def own(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "sandbox"
        return response

    assert "Content-Security-Policy" not in served(exempt)[1]
    assert served(own)[1]["Content-Security-Policy"] == "sandbox"


@production_policy
def test_a_nonce_asked_for_after_the_header_was_written_raises():
    request, _ = served(json_view)

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


@production_policy
@pytest.mark.django_db
def test_an_api_answer_through_the_whole_stack_carries_the_security_headers(client):
    response = client.get("/api/v1/no-such-endpoint/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response["Content-Security-Policy"] == build_policy()
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
