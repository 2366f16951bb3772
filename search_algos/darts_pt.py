"""``darts_pt``: DARTS supernet training followed by perturbation-based architecture selection.

Wang, Cheng, Chen, Tang & Hsieh, "Rethinking Architecture Selection in Differentiable NAS",
ICLR 2021 (Algorithm 1), on the NAS-Bench-201 supernet as in their ``nasbench201`` code.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from harness.errors import ConfigError
from harness.plugin import SearchAlgorithm
from harness.registry import register_search_algo
from harness.spaces.nasbench201 import EDGES, OPS, format_arch, parse_arch
from harness.spaces.nasbench201_supernet import candidate_scores
from harness.types import ProxyData, RunContext, SearchResult
from search_algos._supernet_training import BilevelSettings, BilevelTrainer

CRITERIA = ("acc", "loss")


@register_search_algo("darts_pt")
class DartsPT(SearchAlgorithm):
    """DARTS-PT on the proxy.

    1. Train a DARTS supernet (softmax mixing ``w = softmax(λ)``) with alternating
       first-order steps: weights on the proxy train split, λ on the proxy val split.
    2. Visit the 6 edges in a random order drawn from the seed. On each edge ``e``, for each
       op ``k``, measure the proxy val accuracy of the supernet with ``w[e, k]`` set to zero
       (decided edges use their one-hot op, undecided ones ``softmax(λ)``); keep the op whose
       removal hurts most, i.e. maximizes ``I[e, k] = acc(supernet) - acc(supernet without k)``
       (with ``criterion="loss"``: ``loss(without k) - loss(supernet)``); ties go to the first
       op in ``OPS`` order. Between decisions, fine-tune weights (SGD at ``lr / 10``) and λ
       for ``tune_epochs`` epochs with the decided edges fixed.

    Scores: the perturbation importances restricted to each candidate, ``Σ_e I[e, a_e]`` over
    decided edges, so the best-scoring candidate is the candidate closest to DARTS-PT's own
    architecture (``meta["own_choice"]`` when that is not a candidate). If the budget
    (``ctx.budget_seconds``) ends before the first decision, scores fall back to the
    λ-based ``Σ_e log_softmax(λ_e)[a_e]`` (plain DARTS); ``meta["scoring"]`` says which.
    The λ-based scores are always in ``meta["alpha_scores"]``.

    Parameters (defaults from ruocwang/darts-pt ``nasbench201/train_search.py`` and
    ``exp_scripts/darts-proj-201.sh``):
        epochs: supernet training epochs (100 there).
        tune_epochs: fine-tuning epochs between two decisions (``proj_intv``, 5).
        criterion: ``"acc"`` (their default) or ``"loss"``.
        batch_size, lr, lr_min, momentum, weight_decay, nesterov, grad_clip: weight SGD
            (64, 0.025 → 0.001 cosine, 0.9, 3e-4, no Nesterov, clip 5).
        arch_lr, arch_weight_decay: λ Adam (3e-4, betas (0.5, 0.999), 1e-3).
    """

    modalities = ("image",)
    defaults = {
        "epochs": 100, "tune_epochs": 5, "criterion": "acc",
        "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "weight_decay": 3e-4,
        "nesterov": False, "grad_clip": 5.0, "arch_lr": 3e-4, "arch_weight_decay": 1e-3,
    }

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Train the supernet, select an op per edge by perturbation, score the candidates."""
        p = self.params
        if p["criterion"] not in CRITERIA:
            raise ConfigError(f"darts_pt criterion must be one of {list(CRITERIA)}, got {p['criterion']!r}")
        if p["epochs"] < 0 or p["tune_epochs"] < 0:
            raise ConfigError(f"darts_pt needs epochs >= 0 and tune_epochs >= 0; got {p}")
        trainer = BilevelTrainer(space, proxy, BilevelSettings.from_params(p), ctx, salt="darts_pt")
        net = trainer.net
        decided: dict[int, int] = {}

        def projected(alphas: torch.Tensor) -> torch.Tensor:
            weights = F.softmax(alphas, dim=-1)
            if not decided:
                return weights
            rows = torch.tensor(list(decided), device=weights.device)
            fixed = F.one_hot(torch.tensor(list(decided.values()), device=weights.device), len(OPS)).to(weights)
            return weights.index_put((rows,), fixed)

        def forward(x: torch.Tensor, alphas: torch.Tensor, epoch: int) -> torch.Tensor:
            return net(x, projected(alphas), relaxation="weights")

        trainer.train(p["epochs"], forward, p["lr"], p["lr_min"], on_epoch=lambda _: trainer.record_best(candidates))

        importance = torch.zeros(len(EDGES), len(OPS))
        order = torch.randperm(len(EDGES), generator=ctx.generator("darts_pt-edges")).tolist()
        for position, edge in enumerate(order):
            if trainer.out_of_time():
                break
            importance[edge] = self._perturbation_importance(trainer, projected, edge, p["criterion"])
            decided[edge] = int(importance[edge].argmax())
            trainer.record(_best_by_importance(importance, decided, candidates))
            if position < len(order) - 1:
                trainer.train(p["tune_epochs"], forward, p["lr"] / 10, p["lr"] / 10,
                              on_epoch=lambda _: trainer.record(trainer.trace[-1][1]))

        alphas = net.alphas.detach().cpu()
        alpha_scores = candidate_scores(alphas, candidates).tolist()
        meta: dict[str, Any] = {"alphas": alphas.tolist(), "alpha_scores": alpha_scores,
                                "edge_order": order, "decided": {str(e): OPS[k] for e, k in decided.items()},
                                "importance": importance.tolist()}
        if decided:
            scores = _importance_scores(importance, decided, candidates)
            meta["scoring"] = "perturbation"
        else:
            scores = alpha_scores
            meta["scoring"] = "alpha"
        if len(decided) == len(EDGES):
            own_choice = format_arch([OPS[decided[e]] for e in range(len(EDGES))])
            if own_choice not in candidates:
                meta["own_choice"] = own_choice
        else:
            meta["undecided_edges"] = [e for e in range(len(EDGES)) if e not in decided]
        selected = candidates[max(range(len(scores)), key=scores.__getitem__)]
        if not trainer.trace or trainer.trace[-1][1] != selected:
            trainer.record(selected)
        return SearchResult(scores=scores, selected=selected, trace=trainer.trace, meta=meta)

    @staticmethod
    def _perturbation_importance(trainer: BilevelTrainer, projected: Callable[[torch.Tensor], torch.Tensor],
                                 edge: int, criterion: str) -> torch.Tensor:
        """``I[edge, k]`` for every op ``k``: how much proxy val accuracy (or loss) worsens when
        ``w[edge, k]`` is zeroed in the current projected supernet (``5`` values)."""
        with torch.no_grad():
            weights = projected(trainer.net.alphas)
        base_acc, base_loss = trainer.evaluate(lambda x: trainer.net(x, weights, relaxation="weights"))
        importance = torch.zeros(len(OPS))
        for k in range(len(OPS)):
            if OPS[k] == "none":  # its output is zero: removing it changes nothing
                continue
            masked = weights.clone()
            masked[edge, k] = 0.0
            acc, loss = trainer.evaluate(lambda x: trainer.net(x, masked, relaxation="weights"))
            importance[k] = base_acc - acc if criterion == "acc" else loss - base_loss
        return importance


def _importance_scores(importance: torch.Tensor, decided: dict[int, int], candidates: list[str]) -> list[float]:
    """``Σ_e I[e, a_e]`` over the decided edges ``e``, for each candidate ``a``."""
    scores = []
    for arch in candidates:
        ops = parse_arch(arch)
        scores.append(float(sum(importance[e, OPS.index(ops[e])] for e in decided)))
    return scores


def _best_by_importance(importance: torch.Tensor, decided: dict[int, int], candidates: list[str]) -> str:
    scores = _importance_scores(importance, decided, candidates)
    return candidates[max(range(len(scores)), key=scores.__getitem__)]
