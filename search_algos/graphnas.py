"""``graphnas``: GraphNAS' reinforcement-learning search over its macro space of graph networks.

Gao, Yang, Zhang, Zhou & Hu, "GraphNAS: Graph Neural Architecture Search with Reinforcement
Learning", IJCAI 2020 (arXiv:1904.09981); the HCDC paper runs it on condensed graphs in its
Figure 4. Defaults follow the official code (github.com/GraphNAS/GraphNAS).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from harness._values import is_int
from harness.errors import ConfigError
from harness.plugin import SearchAlgorithm
from harness.registry import register_search_algo
from harness.types import ProxyData, RunContext, SearchResult
from search_algos._graphnas_controller import GraphNASController
from search_algos._policy_gradient import MovingAverageBaseline, policy_gradient_step

REQUIRED_SPACE_METHODS = ("decisions", "decode", "encode")


@register_search_algo("graphnas")
class GraphNAS(SearchAlgorithm):
    """GraphNAS: an LSTM controller samples child architectures, trained with REINFORCE.

    Each step the controller (:class:`~search_algos._graphnas_controller.GraphNASController`)
    samples one child of the space decision by decision; the child is trained on the proxy
    train split with the space's ``train_candidate`` (the task protocol, ``epochs``
    overridable; GraphNAS' code trains with Adam, lr 0.005, weight decay 5e-4, dropout 0.6)
    and its proxy validation accuracy, as a fraction, is the reward ``R``. The controller's Adam
    (``lr``) minimizes ``−(R − b) log π(a) − β H(π)`` with ``b`` a moving average of the rewards
    (momentum ``baseline_decay``) and ``β = entropy_weight``
    (:mod:`search_algos._policy_gradient`). Rewards are cached per child: training is
    deterministic given the seed. Unlike the reference code, the advantage is not rescaled by
    recent advantages, and the baseline is bias-corrected rather than started at the first
    reward (both give a zero first advantage). The reward is always the accuracy, whatever the
    sweep ranks by.

    The space must offer sequential decisions (``decisions``, ``decode``, ``encode``: the
    ``graphnas`` space, :class:`harness.spaces.graphnas.GraphNASSpace`). Its macro space is far
    larger than any candidate list, so the sweep's candidates (a uniform sample of the space,
    trained on the whole data by the oracle) serve the ranking metrics only: GraphNAS scores
    them, without training, by the trained controller's log-probability ``log π(a)``, and
    ``selected`` is the likeliest candidate. GraphNAS' own answer is the best-rewarded child,
    which the trace follows: ``(wall seconds, best child so far)`` after every step; the sweep
    adds each trace child's test accuracy when trained on the whole data (Figure 4).

    Stops after ``evaluations`` steps or when ``ctx.budget_seconds`` runs out. The controller
    lives on the CPU (it is tiny); children train on ``ctx.device``. ``meta`` holds
    ``own_choice`` (the best-rewarded child when it is not a candidate), ``child_val_acc``
    (proxy val accuracy of each child trained), ``sampled`` (the child of each step) and
    ``evaluated`` (children trained).

    Parameters (GraphNAS' code: 10 epochs of 100 controller steps):
        evaluations: controller steps, one child each (1000).
        epochs: child training epochs (``None``: the task protocol's; the code's 300).
        lr: controller Adam learning rate (3.5e-4).
        baseline_decay: momentum of the moving-average baseline (0.95).
        entropy_weight: ``β`` of the entropy bonus (1e-4).
        controller_hidden: LSTM width (100).
        temperature, tanh_c: the controller's logits are ``tanh_c · tanh(logits / temperature)`` (5, 2.5).
    """

    modalities = ("graph",)
    depends_on = ("search_algos._graphnas_controller", "search_algos._policy_gradient")
    defaults = {"evaluations": 1000, "epochs": None, "lr": 3.5e-4, "baseline_decay": 0.95, "entropy_weight": 1e-4,
                "controller_hidden": 100, "temperature": 5.0, "tanh_c": 2.5}
    test_params = {"evaluations": 3, "controller_hidden": 16}
    test_space = {"name": "graphnas", "params": {"heads": [1, 2], "hidden": [4, 8], "pool_dim": 8}}

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Sample, train and reward children, updating the controller, until the steps or the budget run out."""
        self._check(space)
        p = self.params
        protocol = ctx.protocol if p["epochs"] is None else dataclasses.replace(ctx.protocol, epochs=p["epochs"])
        deadline = ctx.deadline()
        controller = GraphNASController([(name, len(options)) for name, options in space.decisions()],
                                        p["controller_hidden"], p["temperature"], p["tanh_c"])
        controller.reset_parameters(ctx.generator("graphnas-controller"))
        optimizer = torch.optim.Adam(controller.parameters(), lr=p["lr"])
        baseline = MovingAverageBaseline(p["baseline_decay"])
        sampler = ctx.generator("graphnas-sample")
        accuracies: dict[str, float] = {}
        sampled: list[str] = []
        trace: list[tuple[float, str]] = []
        best: str | None = None
        for _ in range(p["evaluations"]):
            if deadline.expired():
                break
            actions, log_prob, entropy = controller(generator=sampler)
            child = space.decode(actions[0].tolist())
            sampled.append(child)
            if child not in accuracies:
                run = space.train_candidate(child, proxy.train, {"val": proxy.val}, protocol, ctx.seed, ctx.device)
                accuracies[child] = run["val_acc"]
            reward = accuracies[child] / 100
            policy_gradient_step(optimizer, log_prob[0], reward - baseline.update(reward), entropy[0],
                                 p["entropy_weight"])
            if best is None or accuracies[child] > accuracies[best]:
                best = child
            trace.append((deadline.elapsed(), best))
        with torch.no_grad():
            encoded = torch.tensor([space.encode(arch) for arch in candidates], dtype=torch.long)
            scores = controller(encoded)[1].tolist()
        meta: dict[str, Any] = {"child_val_acc": accuracies, "sampled": sampled, "evaluated": len(accuracies)}
        if best is not None and best not in candidates:
            meta["own_choice"] = best
        return SearchResult(scores=scores, selected=candidates[max(range(len(scores)), key=scores.__getitem__)],
                            trace=trace, meta=meta)

    def _check(self, space: Any) -> None:
        """Raise ``ConfigError`` for parameters out of range or a space without sequential decisions."""
        p = self.params
        counts = {k: p[k] for k in ("evaluations", "controller_hidden")}
        if (not all(is_int(v) for v in counts.values())
                or counts["evaluations"] < 0 or counts["controller_hidden"] < 1):
            raise ConfigError(f"graphnas needs integers evaluations >= 0 and controller_hidden >= 1, got {counts}")
        epochs = p["epochs"]
        if epochs is not None and (not is_int(epochs) or epochs < 1):
            raise ConfigError(f"graphnas epochs must be a positive integer or null (the protocol's), got {epochs!r}")
        if not (p["lr"] > 0 and 0 <= p["baseline_decay"] < 1 and p["entropy_weight"] >= 0
                and p["temperature"] > 0 and p["tanh_c"] > 0):
            raise ConfigError("graphnas needs lr > 0, 0 <= baseline_decay < 1, entropy_weight >= 0, "
                              f"temperature > 0 and tanh_c > 0; got {p}")
        missing = [name for name in REQUIRED_SPACE_METHODS if not callable(getattr(space, name, None))]
        if missing:
            raise ConfigError(f"graphnas searches a space of sequential decisions (methods "
                              f"{list(REQUIRED_SPACE_METHODS)}), such as the 'graphnas' space; "
                              f"{type(space).__name__} lacks {missing}. Set space.name: graphnas in the sweep config")
