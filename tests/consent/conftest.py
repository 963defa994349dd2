"""The engine's deterministic worker (a recording queue drained by the test) for end-to-end trigger tests."""

from tests.automations.test_engine_support import fire, queue

__all__ = ["fire", "queue"]
