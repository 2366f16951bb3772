"""``gdas``: Gradient-based search using Differentiable Architecture Sampler.

Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours", CVPR 2019,
run on the NAS-Bench-201 supernet as in NAS-Bench-201 (Dong & Yang, ICLR 2020).
"""

from __future__ import annotations

from typing import Any

import torch

from harness.errors import ConfigError
from harness.plugin import SearchAlgorithm
from harness.registry import register_search_algo
from harness.spaces.nasbench201_supernet import candidate_scores, discretize
from harness.types import ProxyData, RunContext, SearchResult
from search_algos._supernet_training import BilevelSettings, BilevelTrainer


@register_search_algo("gdas")
class GDAS(SearchAlgorithm):
    """GDAS on the proxy: one op per edge sampled by hard Gumbel-softmax in every forward pass.

    Each step samples ``h = one_hot(argmax softmax((log_softmax(λ) + g) / τ))`` per edge
    (``g`` Gumbel noise), computes only the sampled operations and back-propagates through
    the soft sample (straight-through). Weights are trained on the proxy train split, λ on
    the proxy val split, alternately (:mod:`search_algos._supernet_training`). The
    temperature falls linearly from ``tau_max`` at the first epoch to ``tau_min`` at the last.

    Scores are λ restricted to each candidate, ``Σ_e log_softmax(λ_e)[a_e]``; the selection
    is the best-scoring candidate, and GDAS' own argmax architecture goes to
    ``meta["own_choice"]`` when it is not a candidate. The search stops early when
    ``ctx.budget_seconds`` runs out and scores the λ reached.

    Parameters (defaults from AutoDL-Projects' NAS-Bench-201 GDAS: ``scripts-search/algos/GDAS.sh``,
    ``configs/nas-benchmark/algos/GDAS.config``, ``exps/NAS-Bench-201-algos/GDAS.py``):
        epochs: search epochs (240 there; CPU presets use far fewer).
        tau_max, tau_min: Gumbel-softmax temperature schedule (10 → 0.1).
        batch_size, lr, lr_min, momentum, weight_decay, nesterov, grad_clip: weight SGD
            (64, 0.025 → 0.001 cosine, 0.9, 5e-4, Nesterov, clip 5).
        arch_lr, arch_weight_decay: λ Adam (3e-4, betas (0.5, 0.999), 1e-3).
    """

    modalities = ("image",)
    defaults = {
        "epochs": 240, "tau_max": 10.0, "tau_min": 0.1,
        "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "weight_decay": 5e-4,
        "nesterov": True, "grad_clip": 5.0, "arch_lr": 3e-4, "arch_weight_decay": 1e-3,
    }

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Train the supernet with Gumbel sampling, then score the candidates by λ."""
        p = self.params
        if p["epochs"] < 1 or not 0 < p["tau_min"] <= p["tau_max"]:
            raise ConfigError(f"gdas needs epochs >= 1 and 0 < tau_min <= tau_max; got {p}")
        trainer = BilevelTrainer(space, proxy, BilevelSettings.from_params(p), ctx, salt="gdas")
        gumbel = ctx.generator("gdas-gumbel")

        def tau(epoch: int) -> float:
            return p["tau_max"] - (p["tau_max"] - p["tau_min"]) * epoch / max(1, p["epochs"] - 1)

        def forward(x: torch.Tensor, alphas: torch.Tensor, epoch: int) -> torch.Tensor:
            return trainer.net(x, alphas, relaxation="gumbel", tau=tau(epoch), generator=gumbel)

        completed = trainer.train(p["epochs"], forward, p["lr"], p["lr_min"],
                                  on_epoch=lambda _: trainer.record_best(candidates))
        alphas = trainer.net.alphas.detach().cpu()
        scores = candidate_scores(alphas, candidates).tolist()
        meta: dict[str, Any] = {"alphas": alphas.tolist(), "completed": completed}
        own_choice = discretize(alphas)
        if own_choice not in candidates:
            meta["own_choice"] = own_choice
        selected = candidates[max(range(len(scores)), key=scores.__getitem__)]
        return SearchResult(scores=scores, selected=selected, trace=trainer.trace, meta=meta)
