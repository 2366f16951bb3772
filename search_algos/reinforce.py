"""``reinforce``: policy-gradient search without weight sharing, the NAS-Bench-201 baseline.

Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
learning", Machine Learning 1992; set up as in NAS-Bench-201 (Dong & Yang, ICLR 2020).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from harness.errors import ConfigError
from harness.plugin import SearchAlgorithm
from harness.registry import register_search_algo
from harness.spaces.nasbench201 import EDGES, OPS
from harness.spaces.nasbench201_supernet import candidate_scores
from harness.types import ProxyData, RunContext, SearchResult
from search_algos._policy_gradient import MovingAverageBaseline, policy_gradient_step

SELECTIONS = ("policy", "reward")


@register_search_algo("reinforce")
class Reinforce(SearchAlgorithm):
    """REINFORCE with a factorized per-edge categorical policy, restricted to the candidates.

    The policy has ``6×5`` logits θ (initialized ``1e-3 · N(0, 1)``); a candidate ``a`` has the
    factorized log-probability ``s(a) = Σ_e log_softmax(θ_e)[a_e]``. Sampling is restricted
    to the candidate set by masking: ``a ~ P(a) = exp(s(a)) / Σ_{c ∈ candidates} exp(s(c))``,
    which is exactly the factorized policy conditioned on landing in the set (the law of
    sampling-and-rejecting, without the rejections), so every reward is a candidate's and
    the results are comparable with ``grid``. Each step trains the sampled candidate on the
    proxy train split with the space's ``train_candidate`` (the task protocol, ``epochs``
    overridable) and takes as reward its proxy val accuracy (negated val loss when the sweep
    ranks by loss, as ``grid`` does); rewards are cached per candidate because that training is
    deterministic. The baseline ``b`` is a bias-corrected exponential moving average of the
    rewards, updated with the current reward first (as NAS-Bench-201 does); Adam minimizes
    ``-(R - b) · log P(a)`` (:mod:`search_algos._policy_gradient`).

    Stops after ``evaluations`` policy steps or when ``ctx.budget_seconds`` runs out. Scores
    are ``s(a)`` (the policy's log-probabilities restricted to the candidates); with
    ``select="policy"`` the selection is the best-scoring candidate, with ``select="reward"``
    the best-rewarded candidate sampled (NAS-Bench-201's final choice), falling back to the
    policy's when nothing was sampled. ``meta`` holds ``proxy_val_acc`` (per candidate, ``None``
    where never sampled), ``sampled`` (candidate indices in sampling order), ``evaluated``
    (distinct candidates trained) and ``policy_logits``.

    Parameters (defaults from AutoDL-Projects' ``scripts-search/algos/REINFORCE.sh`` and
    ``exps/NAS-Bench-201-algos/reinforce.py``, which ran under a 12000 s time budget instead):
        evaluations: policy steps (each one sample and one reward).
        epochs: training epochs per candidate (``None``: the task protocol's).
        lr: Adam learning rate of θ (0.001).
        ema_momentum: momentum of the reward baseline (0.9).
        select: ``"policy"`` or ``"reward"``, see above.
    """

    modalities = ("image",)
    depends_on = ("search_algos._policy_gradient",)
    defaults = {"evaluations": 100, "epochs": None, "lr": 0.001, "ema_momentum": 0.9, "select": "policy"}

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Sample, train, reward and update the policy until the evaluations or the budget run out."""
        p = self.params
        if p["select"] not in SELECTIONS:
            raise ConfigError(f"reinforce select must be one of {list(SELECTIONS)}, got {p['select']!r}")
        if p["evaluations"] < 0 or not p["lr"] > 0 or not 0 <= p["ema_momentum"] < 1:
            raise ConfigError(f"reinforce needs evaluations >= 0, lr > 0 and 0 <= ema_momentum < 1; got {p}")
        protocol = ctx.protocol if p["epochs"] is None else dataclasses.replace(ctx.protocol, epochs=p["epochs"])
        deadline = ctx.deadline()
        logits = (1e-3 * torch.randn(len(EDGES), len(OPS), generator=ctx.generator("reinforce-policy"))
                  ).requires_grad_()
        optimizer = torch.optim.Adam([logits], lr=p["lr"])
        sampler = ctx.generator("reinforce-sample")
        rewards: dict[int, float] = {}
        sampled: list[int] = []
        accuracies: list[float | None] = [None] * len(candidates)
        baseline = MovingAverageBaseline(p["ema_momentum"])
        trace: list[tuple[float, str]] = []
        for _ in range(p["evaluations"]):
            if deadline.expired():
                break
            log_probs = torch.log_softmax(candidate_scores(logits, candidates), dim=0)
            i = int(torch.multinomial(log_probs.detach().exp(), 1, generator=sampler))
            sampled.append(i)
            if i not in rewards:
                run = space.train_candidate(candidates[i], proxy.train, {"val": proxy.val}, protocol,
                                            ctx.seed, ctx.device)
                accuracies[i] = run["val_acc"]
                rewards[i] = run["val_acc"] if ctx.rank_by == "val_acc" else -run["val_loss"]
            policy_gradient_step(optimizer, log_probs[i], rewards[i] - baseline.update(rewards[i]))
            trace.append((deadline.elapsed(), self._selection(logits, candidates, rewards)))
        scores = candidate_scores(logits.detach(), candidates).tolist()
        return SearchResult(scores=scores, selected=self._selection(logits, candidates, rewards), trace=trace,
                            meta={"proxy_val_acc": accuracies, "sampled": sampled, "evaluated": len(rewards),
                                  "policy_logits": logits.detach().tolist()})

    def _selection(self, logits: torch.Tensor, candidates: list[str], rewards: dict[int, float]) -> str:
        """The best-scoring candidate under the policy, or the best-rewarded one (``select``)."""
        if self.params["select"] == "reward" and rewards:
            return candidates[max(rewards, key=lambda i: (rewards[i], -i))]
        with torch.no_grad():
            return candidates[int(candidate_scores(logits, candidates).argmax())]
