"""Every registered plugin, built-in or installed, passes the conformance kit on a tiny task."""

import pytest

from harness.registry import CONDENSERS, SEARCH_ALGOS
from harness.testing import check_condenser, check_search_algo

# Plugins registered by the test suite itself to exercise failure handling.
_TEST_ONLY = {"always_fails", "random_twice", "nan_images", "fold_recorder"}


@pytest.mark.parametrize("name", [n for n in CONDENSERS.names() if n not in _TEST_ONLY])
def test_condenser_conforms(name):
    cls = CONDENSERS.get(name)
    check_condenser(cls(**cls.test_params))


@pytest.mark.parametrize("name", SEARCH_ALGOS.names())
def test_search_algo_conforms(name):
    cls = SEARCH_ALGOS.get(name)
    check_search_algo(cls(**cls.test_params))
