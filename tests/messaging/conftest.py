"""Fixtures of the messaging tests."""

from tests.automations.test_engine_support import fire, queue, receiver
from tests.messaging.support import sms_api, smtp_sink

__all__ = ["fire", "queue", "receiver", "sms_api", "smtp_sink"]
