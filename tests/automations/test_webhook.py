import base64
import hashlib
import hmac
import json
import socket

import pytest

from apps.automations import webhooks
from apps.automations.models import WorkflowRun
from apps.automations.registry import TransientActionError
from apps.customers import services as customer_services
from tests.automations.test_engine_support import active_workflow
from tests.factories import CustomerFactory

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://10.255.1.1:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://192.168.1.10/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://localhost/hook",
    ],
)
def test_non_public_addresses_are_refused(url, settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(webhooks.WebhookRefused) as error:
        webhooks.target_resolve(url)

    assert "resolves to a non-public address" in str(error.value)


def test_a_host_name_resolving_to_a_private_address_is_refused(monkeypatch, settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))]
    )

    with pytest.raises(webhooks.WebhookRefused) as error:
        webhooks.target_resolve("https://hooks.example.com/x")

    assert str(error.value) == "hooks.example.com resolves to a non-public address (10.1.2.3)."


def test_plain_http_is_refused_when_https_is_required(settings):
    settings.AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS = True

    with pytest.raises(webhooks.WebhookRefused) as error:
        webhooks.target_resolve("http://example.com/x")

    assert str(error.value) == "Only https URLs are allowed."


def test_credentials_in_the_url_are_refused():
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.target_resolve("https://user:pw@example.com/x")


def test_public_addresses_are_allowed_and_pinned(monkeypatch, settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
    )

    target = webhooks.target_resolve("https://example.com/hooks?x=1")

    assert target == webhooks.Target(
        scheme="https", host="example.com", port=443, path="/hooks?x=1", address="93.184.216.34"
    )


def _expected_signature(message_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@pytest.mark.django_db
def test_a_delivery_is_signed_per_standard_webhooks_and_verifiable(receiver, fire):
    workflow = active_workflow(
        "hook",
        "customer.activated",
        [{"id": "h", "action": "notify.webhook", "params": {"url": receiver.url, "secret": SECRET, "data": {"a": 1}}}],
    )
    customer = CustomerFactory(email="ann@example.com")

    fire(customer_services.customer_activate, customer=customer)

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["webhook-signature"] == _expected_signature(
        headers["webhook-id"], headers["webhook-timestamp"], body
    )
    assert webhooks.signature_verify(secret=SECRET, headers=headers, body=body)
    assert not webhooks.signature_verify(secret=SECRET, headers=headers, body=body + b" ")
    assert headers["webhook-id"].startswith("msg_")
    assert headers["content-type"] == "application/json"
    message = json.loads(body)
    run = WorkflowRun.objects.get(workflow=workflow)
    assert message["type"] == "workflow.webhook"
    assert message["data"]["run_id"] == run.pk
    assert message["data"]["workflow_id"] == workflow.pk
    assert message["data"]["customer_id"] == customer.pk
    assert message["data"]["customer_email"] == "ann@example.com"
    assert message["data"]["fields"] == {"a": 1}
    step = run.steps.get(step_id="h")
    assert (step.status, step.outcome["status"], step.outcome["webhook_id"]) == (
        "succeeded",
        200,
        headers["webhook-id"],
    )


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver, fire):
    receiver.statuses = [302]
    receiver.location = "http://10.0.0.1/internal"
    active_workflow(
        "hook", "customer.activated", [{"action": "notify.webhook", "params": {"url": receiver.url, "secret": SECRET}}]
    )
    customer = CustomerFactory()

    fire(customer_services.customer_activate, customer=customer)

    run = WorkflowRun.objects.get()
    assert len(receiver.requests) == 1
    assert run.status == "failed"
    assert run.error == "WebhookRefused: the receiver answered 302; redirects are not followed"


def test_a_5xx_is_transient_and_a_4xx_is_refused(receiver):
    receiver.statuses = [503, 404]

    with pytest.raises(TransientActionError):
        webhooks.webhook_send(url=receiver.url, secret=SECRET, message_id="msg_1", payload={})
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.webhook_send(url=receiver.url, secret=SECRET, message_id="msg_1", payload={})


def test_the_connection_goes_to_the_vetted_address_without_resolving_again(receiver, monkeypatch):
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolve(host, *args, **kwargs):
        lookups.append(host)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    url = receiver.url.replace("127.0.0.1", "hooks.example.test")

    outcome = webhooks.webhook_send(url=url, secret=SECRET, message_id="msg_2", payload={"x": 1})

    assert outcome["status"] == 200
    # the name is resolved once; the connection is opened to the vetted numeric address (no DNS)
    assert lookups == ["hooks.example.test", "127.0.0.1"]
    assert receiver.requests[0]["headers"]["host"] == f"hooks.example.test:{receiver.server.server_port}"


def test_a_refused_connection_is_transient(settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = True
    settings.AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS = False
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(TransientActionError):
        webhooks.webhook_send(url=f"http://127.0.0.1:{port}/", secret=SECRET, message_id="m", payload={})


def test_a_malformed_secret_is_refused():
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.signature(secret="plain", message_id="m", timestamp=1, body=b"")
