"""The conformance kit itself: it must reject plugins that break the contract."""

import pytest

from harness.plugin import SearchAlgorithm
from harness.testing import check_search_algo
from harness.types import SearchResult


class _CountingSearch(SearchAlgorithm):
    """Scores candidates by their position; checks the budget before each one when ``honour``."""

    name = "counting"
    modalities = ("image",)
    defaults = {"honour": True}

    def search(self, space, candidates, proxy, ctx):
        trace = []
        for i, arch in enumerate(candidates):
            if self.params["honour"] and ctx.budget_seconds is not None and ctx.budget_seconds <= 0:
                break
            trace.append((float(i), arch))
        return SearchResult(scores=[float(i) for i in range(len(candidates))],
                            selected=candidates[-1], trace=trace)


def test_an_algorithm_that_checks_its_budget_passes():
    result = check_search_algo(_CountingSearch(honour=True))
    assert len(result.trace) == 4


def test_an_algorithm_that_ignores_its_budget_fails():
    with pytest.raises(AssertionError, match="zero budget"):
        check_search_algo(_CountingSearch(honour=False))
