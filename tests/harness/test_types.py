"""The plain data objects of a sweep."""

import time

from harness.types import Deadline, RunContext


def test_a_deadline_without_seconds_never_expires_and_a_zero_one_already_has():
    assert not RunContext().deadline().expired()
    assert RunContext(budget_seconds=0.0).deadline().expired()
    deadline = Deadline(seconds=3600.0, start=time.perf_counter() - 3601.0)
    assert deadline.expired() and deadline.elapsed() >= 3601.0
