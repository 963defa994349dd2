"""Helpers of the concurrency tests (no tests here): work started at the same instant in several threads."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def run_together(*works: Callable[[], Any]) -> list[Any]:
    """
    Each callable in its own thread (so on its own database connection), all released at once by a barrier; returns,
    in the order given, what each returned or the exception it raised. Each thread closes its connections at the end.
    """
    start = threading.Barrier(len(works))
    outcomes: list[Any] = [None] * len(works)

    def worker(index: int, work: Callable[[], Any]) -> None:
        try:
            start.wait()
            outcomes[index] = work()
        except BaseException as error:  # returned to the test
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(index, work)) for index, work in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def raised(outcomes: list[Any]) -> list[BaseException]:
    """The exceptions among `run_together`'s outcomes (none, when all went well)."""
    return [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
