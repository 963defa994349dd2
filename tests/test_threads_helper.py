"""The concurrency tests' `run_together` (tests/threads.py): what each thread returned or raised, in order."""

import threading

from tests.threads import raised, run_together


def test_each_outcome_or_exception_comes_back_in_the_order_given_and_all_threads_ran_at_once():
    inside = threading.Barrier(3, timeout=5)  # only passes when the three works run at the same time

    def meet(value):
        return lambda: (inside.wait(), value)[1]

    def fail():
        inside.wait()
        raise ValueError("boom")

    outcomes = run_together(meet("a"), fail, meet("c"))

    assert outcomes[0] == "a" and outcomes[2] == "c"
    assert isinstance(outcomes[1], ValueError)
    assert raised(outcomes) == [outcomes[1]]
