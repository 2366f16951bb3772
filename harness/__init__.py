"""condnas' engine: data, search spaces, training, oracle, metrics, sweeps and reports.

The public surface for plugin authors is small::

    from harness import Condenser, SearchAlgorithm, register_condenser, register_search_algo
    from harness import Task, Split, ProxyData, SearchResult, RunContext
    from harness.proxy import split_per_class      # the shared train/val split of a proxy
    from harness.testing import check_condenser    # the conformance kit
"""

from harness.plugin import Condenser, SearchAlgorithm
from harness.registry import CONDENSERS, SEARCH_ALGOS, register_condenser, register_search_algo
from harness.types import ProxyData, RunContext, SearchResult, Split, Task, TrainProtocol

__version__ = "0.1.0"

__all__ = [
    "CONDENSERS", "Condenser", "ProxyData", "RunContext", "SEARCH_ALGOS", "SearchAlgorithm",
    "SearchResult", "Split", "Task", "TrainProtocol", "register_condenser", "register_search_algo",
]
