"""``grid``: train every candidate on the proxy train split and score it on the proxy val split."""

from __future__ import annotations

import math
from typing import Any

from harness.batched_training import candidate_groups, group_size, train_runs
from harness.plugin import SearchAlgorithm
from harness.registry import register_search_algo
from harness.types import ProxyData, RunContext, SearchResult


@register_search_algo("grid")
class GridSearch(SearchAlgorithm):
    """Exhaustive evaluation of the candidate set (Table 1's protocol).

    Each candidate is trained with the task's protocol (``epochs`` may be overridden) and
    scored by proxy validation accuracy, or by negated proxy validation loss when the sweep
    ranks by loss. Candidates train in the oracle's groups
    (:func:`harness.batched_training.candidate_groups`), together where the space allows, so
    a group's candidates are scored when the group finishes and the budget is checked
    between groups; candidates not reached within the budget score NaN.

    Parameters:
        epochs: training epochs on the proxy (``None``: the proxy's ``meta["epochs"]`` when it
            sets one, e.g. ``early_stopping``, else the task protocol's).
    """

    modalities = ("image", "graph")
    defaults = {"epochs": None}

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Train and score the candidates, group by group in order, until done or out of budget."""
        protocol = ctx.protocol
        epochs = self.params["epochs"] if self.params["epochs"] is not None else proxy.meta.get("epochs")
        if epochs is not None:
            protocol = type(protocol)(**{**protocol.as_dict(), "epochs": epochs})
        deadline = ctx.deadline()
        scores = [math.nan] * len(candidates)
        accuracies = [math.nan] * len(candidates)
        times = [math.nan] * len(candidates)
        done = 0
        size = group_size(space, proxy.train, protocol.batch_size, ctx.device)
        for group in candidate_groups(candidates, size):
            if deadline.expired():
                break
            runs = train_runs(space, [(arch, ctx.seed) for arch in group], proxy.train, {"val": proxy.val},
                              protocol, ctx.device)
            elapsed = deadline.elapsed()
            for i, arch in enumerate(group, start=done):
                run = runs[arch, ctx.seed]
                accuracies[i] = run["val_acc"]
                scores[i] = run["val_acc"] if ctx.rank_by == "val_acc" else -run["val_loss"]
                times[i] = elapsed
            done += len(group)
        return SearchResult.exhaustive(candidates, scores, times, meta={"proxy_val_acc": accuracies})
