"""``hcdc``: hyperparameter-calibrated dataset condensation (Ding et al., "Calibrated Dataset
Condensation for Faster Hyperparameter Search", sections 4-5, Algorithm 1, appendices G-I).

HCDC keeps a synthetic train set from standard condensation (``dc`` by default, taken through
the sweep's shared cache) and learns a synthetic *validation* set ``S_val`` so that the
hypergradient of the validation loss with respect to the architecture weights λ is the same,
up to scale, on the proxy and on the original data (eq. HCDC):

    min_{S_val}  Σ_λ D_c(∇λ L*_T(λ), ∇λ L*_S(λ)),     D_c = 1 − cos,

both hypergradients computed by the implicit function theorem with a truncated Neumann series
(:func:`harness.hypergradient.hypergradient`). The λ at which they are compared lie on the
"extended search space" of section 5.2 / appendix H: one HPO trajectory per candidate
architecture, starting at its one-hot encoding and following the proxy's own hypergradient
descent ``λ ← λ − η_λ ∇λ L*_S(λ)``.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.func import functional_call

from condensers._hcdc_common import (REAL_WEIGHTS, VAL_MOMENTUM, SettingsRules, calibration_meta, check_settings,
                                     fetch_train_source, run_trajectories)
from condensers._hcdc_cv import condense_cv
from condensers._hcdc_graph import GRAPH_TEST_PARAMS, condense_graph, graph_settings
from harness._values import is_int
from harness.errors import ConfigError
from harness.hypergradient import Loss, calibration_step, hypergradient
from harness.plugin import Condenser
from harness.proxy import class_indices, split_counts
from harness.registry import register_condenser
from harness.seeding import derive_seed
from harness.spaces.nasbench201 import NasBench201Space
from harness.spaces.nasbench201_supernet import NasBench201Supernet, encode_arch
from harness.types import Deadline, ProxyData, RunContext, Split, Task

RELAXATIONS: tuple[str, ...] = ("gumbel", "softmax")
"""Appendix G: GDAS hard Gumbel-softmax with straight-through gradients, or DARTS softmax."""

VAL_INITS: tuple[str, ...] = ("real", "noise")

_RULES = SettingsRules(
    prefix="",
    ints={"trajectories": 1, "repeats": 1, "epochs": 1, "lambda_period": 1, "batch_train": 1, "batch_real": 1,
          "C": 1, "N": 1},
    positive=("lr_net", "lr_lambda", "lr_val", "tau", "init_scale"),
    non_negative=("momentum", "weight_decay"),
    choices={"relaxation": RELAXATIONS, "val_init": VAL_INITS, "real_weights": REAL_WEIGHTS},
)


@register_condenser("hcdc")
class HCDC(Condenser):
    """Hyperparameter-calibrated condensation over the NAS-Bench-201 supernet (Algorithm 1).

    λ is the ``6×5`` tensor of architecture weights of a :class:`NasBench201Supernet` with
    ``C`` channels and ``N`` cells per stage (the paper searches with ``N = 1``), turned into
    mixing weights by ``relaxation`` (``"gumbel"``: GDAS, temperature ``tau``, one noise draw
    per weight step and one shared by the two losses of each hypergradient; ``"softmax"``).

    * ``S_train`` is ``train_source``'s proxy train split (``ctx.proxy_from(train_source,
      train_source_params, task, ipc)``), kept fixed.
    * ``S_val`` (``K·n_val × C×H×W``, ``n_val`` per class = the size of ``train_source``'s val
      split, so ``S_train ∪ S_val`` keeps ``ipc`` images per class in the original val ratio)
      starts from random images of the task's val split (``val_init: "real"``) or ``N(0, 1)``.
    * Candidates: ``trajectories`` architectures sampled from the NAS-Bench-201 space with
      ``candidate_seed`` (default: derived from ``ctx.seed``), isomorphs and disconnected cells
      dropped. A condenser never sees the sweep's candidates; to start the trajectories at
      exactly the searched ones, set ``candidate_seed`` / ``trajectories`` / ``C`` / ``N`` to
      the sweep's ``sample_seed`` / ``candidates`` / space parameters.

    For each of ``repeats`` repeats and each candidate ``a``: ``λ ← init_scale · onehot(a)``,
    a freshly initialized supernet θ, and ``epochs`` (``T_θ``) epochs of SGD (``lr_net``,
    ``momentum``, ``weight_decay``, batches of ``batch_train``) on ``S_train`` under λ. After
    epochs ``t`` with ``t mod lambda_period = 0`` (``T_λ``; a θ_T step goes with each θ step):

    1. ``h_S = ∇λ L*_S(λ)`` on ``(S_train, S_val)`` at θ (IFT, ``neumann_terms`` Hessian-vector
       products with step ``neumann_alpha``, the direct term included), differentiable in S_val;
    2. ``h_T = ∇λ L*_T(λ)`` on ``batch_real`` random original train images (the Hessian and
       mixed partials) and ``batch_real`` random original val images, at θ_T: with
       ``real_weights: "trained"`` a second supernet with the same initialization trained under
       the same λ for the same number of steps on batches of ``batch_real`` original train
       images (θ^T(λ) of the paper at CPU scale); with ``"shared"`` θ itself;
    3. ``S_val ← S_val − lr_val ∇_{S_val} D_c(h_T, h_S)`` (SGD, momentum 0.5);
    4. ``λ ← λ − lr_lambda · h_S``.

    A step whose Gumbel draw disconnects the cell (λ then has no effect: a zero hypergradient)
    is skipped. ``init_scale`` scales the one-hot start: λ are logits, so a plain one-hot
    (scale 1) puts only ``e / (e + 4) ≈ 0.40`` of each edge's weight on the candidate's
    operation, and a GDAS draw is then the candidate's cell only ``0.40⁶ ≈ 0.4 %`` of the time;
    at the default 3 each edge keeps ``≈ 0.83``, so the trajectory starts at the candidate.

    On a graph task it runs :func:`condensers._hcdc_graph.condense_graph` with the settings of its
    ``graph`` parameter; on a cross-validation task (``task.meta["val_is_train"]``, appendix K) it
    runs :func:`condensers._hcdc_cv.condense_cv` with those of its ``cv`` parameter.

    Defaults: GDAS's NAS-Bench-201 weight optimizer (``lr_net`` 0.025, momentum 0.9,
    ``weight_decay`` 5e-4, batches of 256), the paper's 100 candidates, ``N = 1``, 50 epochs;
    the paper gives no values for K, T_λ, the Neumann settings or the step sizes of λ and
    S_val, so those are ours (``neumann_alpha`` 0.01 stays below ``2 / ‖H‖`` for the supernets
    we measured, ``‖H‖ ≈ 50``; more than ~10 terms amplify the negative-curvature directions of
    a network that is not at a minimum). ``meta`` records ``upstream_seconds`` (the sweep charges HCDC for
    its train source's time), the mean cosine distance of each trajectory
    (``alignment_curve``), how far λ moved from its start (``lambda_shift``, Frobenius norm,
    per trajectory) and whether ``ctx.budget_seconds`` (counted after the train source is
    fetched) stopped the loop, besides the starting architectures (``trajectory_starts``).
    """

    modalities = ("image", "graph")
    cv_pools = "accept"
    depends_on = ("condensers._hcdc_graph", "condensers._hcdc_cv", "condensers._hcdc_common",
                  "harness.hypergradient", "harness.spaces.nasbench201_supernet", "harness.spaces.cv_folds")
    defaults: ClassVar[dict[str, Any]] = {
        "graph": {}, "cv": {},
        "train_source": "dc", "train_source_params": {},
        "trajectories": 100, "candidate_seed": None, "repeats": 3,
        "epochs": 50, "lambda_period": 5,
        "lr_net": 0.025, "momentum": 0.9, "weight_decay": 5e-4, "batch_train": 256,
        "lr_lambda": 0.1, "lr_val": 0.1, "batch_real": 256,
        "neumann_terms": 5, "neumann_alpha": 0.01,
        "relaxation": "gumbel", "tau": 1.0, "init_scale": 3.0,
        "C": 16, "N": 1, "val_init": "real", "real_weights": "trained",
    }
    test_params: ClassVar[dict[str, Any]] = {
        "graph": GRAPH_TEST_PARAMS,
        "train_source": "random", "trajectories": 2, "repeats": 1, "epochs": 2, "lambda_period": 1,
        "batch_train": 16, "batch_real": 16, "neumann_terms": 2, "C": 4, "N": 1,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        check_settings(p, _RULES)
        if p["candidate_seed"] is not None and (not is_int(p["candidate_seed"]) or p["candidate_seed"] < 0):
            raise ConfigError(f"hcdc: candidate_seed must be null or an integer >= 0, got {p['candidate_seed']!r}")

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Take ``S_train`` from the train source and learn ``S_val`` by Algorithm 1.

        Raises:
            ConfigError: ``ipc`` missing or below 2, a train source whose val split misses a
                class, or too few original val images of a class for ``val_init: "real"``.
            DivergedError: a hypergradient or ``S_val`` became NaN or infinite.
        """
        if ipc is None:
            raise ConfigError("hcdc needs ipc (images per class); set ipc in the sweep config")
        if task.modality == "graph":
            return condense_graph(task, ipc, ctx, graph_settings(self.params["graph"]))
        if task.meta.get("val_is_train"):
            return condense_cv(task, ipc, ctx, self.params["cv"])
        split_counts(ipc, task.val_fraction)
        upstream, fetch_seconds = fetch_train_source(task, ipc, ctx, self.params)
        deadline = ctx.deadline()
        generator = ctx.generator(self.name)
        s_train = upstream.train.to(ctx.device)
        s_val = self._initial_val(task, upstream.val, generator, ctx.device)
        real_train, real_val = task.train.to(ctx.device), task.val.to(ctx.device)
        optimizer = torch.optim.SGD([s_val.x], lr=self.params["lr_val"], momentum=VAL_MOMENTUM)
        candidates = self._candidates(task, ctx.seed)

        def trajectory(k: int, i: int, arch: str) -> tuple[list[float], torch.Tensor, torch.Tensor]:
            lam_start = self.params["init_scale"] * encode_arch(arch).to(ctx.device)
            distances, lam = self._trajectory(task, lam_start, s_train, s_val, real_train, real_val, optimizer,
                                              generator, derive_seed(ctx.seed, self.name, k, i), deadline, ctx)
            return distances, lam_start, lam

        calibration = run_trajectories(candidates, self.params["repeats"], deadline, trajectory, ctx.progress)
        proxy = ProxyData(train=Split(s_train.x.detach().clone(), s_train.y.clone()),
                          val=Split(s_val.x.detach().clone(), s_val.y.clone()))
        proxy.meta = {**calibration_meta(ipc, self.params, upstream, fetch_seconds, deadline, calibration),
                      "trajectory_starts": candidates}
        return proxy

    def _initial_val(self, task: Task, upstream_val: Split, generator: torch.Generator,
                     device: torch.device) -> Split:
        """``S_val``: as many images per class as the train source's val split, class by class."""
        counts = torch.bincount(upstream_val.y.cpu(), minlength=task.num_classes).tolist()
        if min(counts) < 1:
            raise ConfigError(f"hcdc: the train source {self.params['train_source']!r} returned a val split "
                              f"with per-class counts {counts}; every class needs at least one image")
        parts = []
        for c, (index, n) in enumerate(zip(class_indices(task.val.y, task.num_classes), counts)):
            if self.params["val_init"] == "noise":
                parts.append(torch.randn((n, *task.val.x.shape[1:]), generator=generator))
            elif len(index) < n:
                raise ConfigError(f"hcdc: class {c} has {len(index)} original val images, fewer than the {n} "
                                  "synthetic val images to initialize; use val_init 'noise' or a larger val split")
            else:
                parts.append(task.val.x[index[torch.randperm(len(index), generator=generator)[:n]]])
        labels = torch.arange(task.num_classes).repeat_interleave(torch.tensor(counts))
        return Split(torch.cat(parts).to(device).requires_grad_(True), labels.to(device))

    def _candidates(self, task: Task, seed: int) -> list[str]:
        """The trajectories' starting architectures (section 5.2), sampled from the space."""
        space = NasBench201Space(C=self.params["C"], N=self.params["N"], in_channels=task.in_channels,
                                 num_classes=task.num_classes)
        candidate_seed = self.params["candidate_seed"]
        if candidate_seed is None:
            candidate_seed = derive_seed(seed, self.name, "candidates")
        return space.sample(self.params["trajectories"], candidate_seed)

    def _supernet(self, task: Task, seed: int, device: torch.device) -> NasBench201Supernet:
        """A supernet whose weights depend only on ``seed`` (the global RNG is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = NasBench201Supernet(C=self.params["C"], N=self.params["N"], in_channels=task.in_channels,
                                      num_classes=task.num_classes)
        return net.to(device)

    def _trajectory(self, task: Task, lam: torch.Tensor, s_train: Split, s_val: Split, real_train: Split,
                    real_val: Split, optimizer: torch.optim.Optimizer, generator: torch.Generator, seed: int,
                    deadline: Deadline, ctx: RunContext) -> tuple[list[float], torch.Tensor]:
        """One HPO trajectory of Algorithm 1 (lines 2-8); returns its cosine distances and final λ."""
        p = self.params
        net_s = self._supernet(task, seed, ctx.device)
        net_t = copy.deepcopy(net_s) if p["real_weights"] == "trained" else None
        optimizers = [self._weight_optimizer(net) for net in (net_s, net_t) if net is not None]
        distances: list[float] = []
        for t in range(p["epochs"]):
            if deadline.expired():
                break
            order = torch.randperm(len(s_train), generator=generator).to(s_train.y.device)
            # A last batch of one image is dropped: batch norm cannot train on it.
            for index in [b for b in order.split(p["batch_train"]) if len(b) > 1]:
                self._weight_step(net_s, optimizers[0], s_train.subset(index), lam, generator)
                if net_t is not None:
                    self._weight_step(net_t, optimizers[1], _batch(real_train, p["batch_real"], generator), lam,
                                      generator)
            if t % p["lambda_period"]:
                continue
            noise_seed = int(torch.randint(2 ** 62, (), generator=generator))
            h_s = self._hypergradient(net_s, s_train, s_val, lam, noise_seed, differentiable=True)
            h_t = self._hypergradient(net_t or net_s, _batch(real_train, p["batch_real"], generator),
                                      _batch(real_val, p["batch_real"], generator), lam, noise_seed,
                                      differentiable=False)
            distance, lam = calibration_step(h_t, h_s, s_val.x, optimizer, lam, p["lr_lambda"])
            if distance is not None:
                distances.append(distance)
        return distances, lam

    def _weight_optimizer(self, net: NasBench201Supernet) -> torch.optim.Optimizer:
        p = self.params
        return torch.optim.SGD(net.weight_parameters(), lr=p["lr_net"], momentum=p["momentum"],
                               weight_decay=p["weight_decay"])

    def _weight_step(self, net: NasBench201Supernet, optimizer: torch.optim.Optimizer, batch: Split,
                     lam: torch.Tensor, generator: torch.Generator) -> None:
        """Algorithm 1, line 4: one SGD step on θ with λ fixed (a fresh Gumbel draw under GDAS)."""
        logits = net(batch.x, alphas=lam, relaxation=self.params["relaxation"], tau=self.params["tau"],
                     generator=generator)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(logits, batch.y).backward()
        optimizer.step()

    def _hypergradient(self, net: NasBench201Supernet, train: Split, val: Split, lam: torch.Tensor,
                       noise_seed: int, differentiable: bool) -> list[torch.Tensor]:
        """``∇λ L*(λ)`` (``[6×5]``) of the supernet at its current weights on ``(train, val)``."""
        p = self.params
        names = [name for name, _ in net.named_parameters() if name != "alphas"]

        def loss(data: Split, weight_decay: float) -> Loss:
            def value(params: list[torch.Tensor], hyper: list[torch.Tensor]) -> torch.Tensor:
                # The same Gumbel draw in every evaluation, so H, M and ∇L_val see one sub-network.
                noise = torch.Generator().manual_seed(noise_seed)
                logits = functional_call(net, dict(zip(names, params)), (data.x,),
                                         {"alphas": hyper[0], "relaxation": p["relaxation"], "tau": p["tau"],
                                          "generator": noise})
                penalty = 0.5 * weight_decay * sum((w ** 2).sum() for w in params) if weight_decay else 0.0
                return F.cross_entropy(logits, data.y) + penalty
            return value

        return hypergradient(loss(train, p["weight_decay"]), loss(val, 0.0), net.weight_parameters(), [lam],
                             terms=p["neumann_terms"], alpha=p["neumann_alpha"], differentiable=differentiable)


def _batch(split: Split, size: int, generator: torch.Generator) -> Split:
    """``min(size, |split|)`` distinct random rows of ``split``."""
    index = torch.randperm(len(split), generator=generator)[:size].to(split.y.device)
    return split.subset(index)

