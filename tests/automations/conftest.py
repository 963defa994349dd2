"""Fixtures of the engine's tests, shared by the automations test modules."""

from tests.automations.test_engine_support import fire, queue, receiver

__all__ = ["fire", "queue", "receiver"]
