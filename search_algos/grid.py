"""``grid``: train every candidate on the proxy train split and score it on the proxy val split."""

from __future__ import annotations

import math
from typing import Any

from harness.plugin import SearchAlgorithm
from harness.registry import register_search_algo
from harness.types import ProxyData, RunContext, SearchResult


@register_search_algo("grid")
class GridSearch(SearchAlgorithm):
    """Exhaustive evaluation of the candidate set (Table 1's protocol).

    Each candidate is trained with the task's protocol (``epochs`` may be overridden) and
    scored by proxy validation accuracy, or by negated proxy validation loss when the sweep
    ranks by loss. Candidates not reached within the budget score NaN.

    Parameters:
        epochs: training epochs on the proxy (``None``: the task protocol's).
    """

    modalities = ("image", "graph")
    defaults = {"epochs": None}

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Train and score each candidate in order until done or out of budget."""
        protocol = ctx.protocol
        if self.params["epochs"] is not None:
            protocol = type(protocol)(**{**protocol.as_dict(), "epochs": self.params["epochs"]})
        deadline = ctx.deadline()
        scores = [math.nan] * len(candidates)
        accuracies = [math.nan] * len(candidates)
        trace: list[tuple[float, str]] = []
        best = -math.inf
        for i, arch in enumerate(candidates):
            if deadline.expired():
                break
            run = space.train_candidate(arch, proxy.train, {"val": proxy.val}, protocol, ctx.seed, ctx.device)
            accuracies[i] = run["val_acc"]
            scores[i] = run["val_acc"] if ctx.rank_by == "val_acc" else -run["val_loss"]
            if scores[i] > best:
                best = scores[i]
                trace.append((deadline.elapsed(), arch))
        selected = trace[-1][1] if trace else candidates[0]
        return SearchResult(scores=scores, selected=selected, trace=trace,
                            meta={"proxy_val_acc": accuracies})
