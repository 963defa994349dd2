"""
SSRF: a webhook may only reach globally routable addresses — `ipaddress` `is_global`, with the IPv4
address carried inside IPv6 forms (mapped, 6to4, Teredo, NAT64) decoded and checked too — and a literal
non-public address is refused already when the workflow is saved.
"""

import base64
import socket

import pytest

from apps.automations import webhooks
from apps.automations.definitions import definition_validate
from apps.automations.models import Workflow
from tests.automations.test_engine_support import definition
from tests.factories import UserFactory

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()

REFUSED = {
    "100.64.0.1": "shared address space 100.64.0.0/10 (carrier-grade NAT)",
    "100.100.100.200": "a cloud metadata address inside 100.64.0.0/10",
    "100.127.255.254": "the top of 100.64.0.0/10",
    "169.254.169.254": "link-local metadata",
    "127.0.0.1": "loopback",
    "10.1.2.3": "private",
    "192.0.2.10": "documentation (TEST-NET-1)",
    "198.18.0.1": "benchmarking",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "255.255.255.255": "broadcast",
    "::1": "IPv6 loopback",
    "fe80::1": "IPv6 link-local",
    "fd00::1": "IPv6 unique local",
    "ff02::1": "IPv6 multicast",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:169.254.169.254": "IPv4-mapped metadata",
    "2002:7f00:1::": "6to4 of 127.0.0.1",
    "2002:7f00::1": "6to4 of 127.0.0.0/8",
    "2002:a9fe:a9fe::1": "6to4 of 169.254.169.254",
    "2002:6440:1::1": "6to4 of 100.64.0.1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo (client 192.0.2.45)",
    "2001:0:5ef5:79fd:0:0:80ff:fffe": "Teredo of 127.0.0.1",
    "64:ff9b::7f00:1": "NAT64 of 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 of 169.254.169.254",
}

ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_non_global_addresses_and_their_ipv6_disguises_are_refused(address):
    assert webhooks.address_allowed(address) is False, REFUSED[address]


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_are_allowed(address):
    assert webhooks.address_allowed(address) is True


@pytest.mark.parametrize("address", ["100.64.0.1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe"])
def test_a_name_resolving_to_a_disguised_address_is_refused_at_send_time(address, monkeypatch, settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, 443))])

    with pytest.raises(webhooks.WebhookRefused) as error:
        webhooks.target_resolve("https://hooks.example.com/x")

    assert str(error.value) == f"hooks.example.com resolves to a non-public address ({address})."


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://100.100.100.200/latest/meta-data",
            "The URL must point to a public address (100.100.100.200 is not).",
        ),
        ("https://169.254.169.254/", "The URL must point to a public address (169.254.169.254 is not)."),
        ("https://[2002:7f00:1::]/hook", "The URL must point to a public address (2002:7f00:1:: is not)."),
        ("https://[::ffff:10.0.0.1]/hook", "The URL must point to a public address (::ffff:a00:1 is not)."),
        (
            "https://[2001:0:5ef5:79fd::80ff:fffe]/",
            "The URL must point to a public address (2001:0:5ef5:79fd::80ff:fffe is not).",
        ),
        ("https://127.1/hook", "The URL must point to a public address (127.0.0.1 is not)."),
        ("https://0x7f.0.0.1/hook", "The URL must point to a public address (127.0.0.1 is not)."),
        ("https://2130706433/hook", "The URL must point to a public address (127.0.0.1 is not)."),
        ("https://localhost:8443/hook", "The URL must point to a public address, not this machine."),
        ("https://metadata.localhost/", "The URL must point to a public address, not this machine."),
    ],
)
def test_a_literal_non_public_address_is_refused_when_the_definition_is_validated(url, message, settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False
    steps = [{"action": "notify.webhook", "params": {"url": url, "secret": SECRET}}]

    errors = definition_validate(definition("customer.activated", steps))

    assert [(error.path, error.message) for error in errors] == [("steps[0].params.url", message)]


def test_a_public_url_or_a_host_name_passes_validation(settings):
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("https://8.8.8.8/hook", "https://hooks.example.com/x", "https://[2606:4700:4700::1111]/"):
        steps = [{"action": "notify.webhook", "params": {"url": url, "secret": SECRET}}]
        assert definition_validate(definition("customer.activated", steps)) == []


@pytest.mark.django_db
def test_the_api_refuses_to_save_a_metadata_url_and_stores_nothing(settings):
    from rest_framework.test import APIClient

    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = False
    client = APIClient()
    client.force_authenticate(UserFactory(username="marketer", is_staff=True, is_superuser=True))
    steps = [{"action": "notify.webhook", "params": {"url": "https://100.100.100.200/latest", "secret": SECRET}}]

    response = client.post(
        "/api/v1/workflows/", {"name": "x", "definition": definition("customer.activated", steps)}, format="json"
    )

    assert response.status_code == 400
    assert [(e["path"], e["message"]) for e in response.json()["errors"]] == [
        ("steps[0].params.url", "The URL must point to a public address (100.100.100.200 is not).")
    ]
    assert Workflow.objects.count() == 0
