"""
SMS providers behind one small interface (`SmsBackend.send(to=, text=, key=) -> provider message id`),
chosen by `SMS_BACKEND`:

- `ConsoleSmsBackend` (development, the default): writes each message to `SMS_FILE_PATH`, or stdout;
- `TwilioSmsBackend`: Twilio's REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`, basic auth, form
  fields To/From/Body), or any provider speaking it, at `SMS_API_URL`. 5xx, 429 and connection errors are
  transient; other 4xx are permanent (Twilio's invalid-number codes → `invalid_address`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from .choices import DeliveryReason
from .errors import ProviderError, http_status_is_transient

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
RESPONSE_MAX_BYTES = 64 * 1024
# Twilio error codes that mean the number itself is wrong (not the request).
INVALID_NUMBER_CODES = {21211, 21214, 21217, 21401, 21407, 21421, 21614}


class SmsBackend(Protocol):
    def send(self, *, to: str, text: str, key: str) -> str: ...


def sms_backend() -> SmsBackend:
    backend: SmsBackend = import_string(settings.SMS_BACKEND)()
    return backend


def phone_is_valid(phone: str) -> bool:
    return bool(E164.match(phone or ""))


class ConsoleSmsBackend:
    """Development: the message is written to a file (`SMS_FILE_PATH`) or stdout, never sent."""

    def send(self, *, to: str, text: str, key: str) -> str:
        message_id = "console-" + hashlib.sha256(key.encode()).hexdigest()[:24]
        line = json.dumps({"id": message_id, "to": to, "text": text}) + "\n"
        if settings.SMS_FILE_PATH:
            with open(settings.SMS_FILE_PATH, "a", encoding="utf-8") as file:
                file.write(line)
        else:
            sys.stdout.write(line)
        return message_id


class TwilioSmsBackend:
    """Twilio's Messages API (or a compatible one at SMS_API_URL)."""

    def __init__(self) -> None:
        self.base_url = settings.SMS_API_URL.rstrip("/")
        self.account = settings.SMS_ACCOUNT_SID
        self.token = settings.SMS_AUTH_TOKEN
        self.sender = settings.SMS_FROM
        self.timeout = settings.SMS_TIMEOUT_SECONDS

    def send(self, *, to: str, text: str, key: str) -> str:
        url = f"{self.base_url}/2010-04-01/Accounts/{urllib.parse.quote(self.account)}/Messages.json"
        body = urllib.parse.urlencode({"To": to, "From": self.sender, "Body": text}).encode()
        credentials = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's configured provider
            url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                # Providers that de-duplicate by key make a retried request harmless.
                "Idempotency-Key": hashlib.sha256(key.encode()).hexdigest(),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = response.read(RESPONSE_MAX_BYTES)
        except urllib.error.HTTPError as error:
            detail = _json(error.read(RESPONSE_MAX_BYTES))
            code = detail.get("code")
            reason = DeliveryReason.INVALID_ADDRESS if code in INVALID_NUMBER_CODES else DeliveryReason.PROVIDER_ERROR
            message = f"HTTP {error.code}: {detail.get('message') or error.reason}"[:500]
            raise ProviderError(message, transient=http_status_is_transient(error.code), reason=reason) from error
        except (urllib.error.URLError, OSError) as error:  # refused, reset, timeout
            raise ProviderError(f"{type(error).__name__}: {error}"[:500], transient=True) from error
        sid = _json(answer).get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderError("The provider's answer has no message sid.", transient=True)
        return sid[:255]


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
