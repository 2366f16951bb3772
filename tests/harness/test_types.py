"""The plain data objects of a sweep."""

import time

from harness.types import Deadline, RunContext, SearchResult


def test_a_deadline_without_seconds_never_expires_and_a_zero_one_already_has():
    assert not RunContext().deadline().expired()
    assert RunContext(budget_seconds=0.0).deadline().expired()
    deadline = Deadline(seconds=3600.0, start=time.perf_counter() - 3601.0)
    assert deadline.expired() and deadline.elapsed() >= 3601.0


def test_exhaustive_result_traces_strict_improvements_and_selects_the_first_best():
    result = SearchResult.exhaustive(["a", "b", "c", "d", "e"], [1.0, 3.0, float("nan"), 3.0, 2.0],
                                     [1.0, 2.0, 3.0, 4.0, 5.0], meta={"k": 1})
    assert result.trace == [(1.0, "a"), (2.0, "b")]
    assert result.selected == "b" and result.meta == {"k": 1}
    unscored = SearchResult.exhaustive(["a", "b"], [float("nan")] * 2, [float("nan")] * 2)
    assert unscored.trace == [] and unscored.selected == "a"
