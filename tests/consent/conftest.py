"""The engine's deterministic worker (a recording queue drained by the test) for end-to-end trigger tests; the
API client and the local SMS API for the SMS double opt-in tests."""

from tests.api.conftest import api, integrator
from tests.automations.test_engine_support import fire, queue
from tests.messaging.support import sms_api

__all__ = ["api", "fire", "integrator", "queue", "sms_api"]
