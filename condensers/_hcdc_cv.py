"""HCDC on the M-fold cross-validation task of appendix K (Table 7): synthetic validation folds
calibrated on hypergradients over a continuous relaxation of the fold choice.

Ding et al., "Calibrated Dataset Condensation for Faster Hyperparameter Search", appendices J-K:
"we first condense the training set of the synthetic dataset by SDC-GM. Then, we learn a separate
validation set with 1/M-size of the training set and train with the HCDC objective on the M-HPO
trajectories". The ``hcdc`` plugin dispatches cv tasks (``task.meta["val_is_train"]``, the ``cv``
task of :mod:`harness.data.cv`) here (:func:`condense_cv` with the mapping of its ``cv`` parameter).

The relaxation (ours; the paper gives none). The hyperparameter of a fold choice is ``φ ∈ {0,1}^M``
(one-hot: the validating fold); λ ∈ R^M relaxes it with ``w = softmax(λ)``:

* training loss on a split whose samples have folds ``f(s)`` (the fold rule of
  :mod:`harness.spaces.cv_folds`): ``L_train(θ, λ) = mean_s (1 − w_{f(s)}) ℓ(θ; s) + ½·wd·‖θ‖²``
  (at a one-hot ``w`` exactly the loss on the other folds, up to the constant ``(M−1)/M``);
* validation loss: ``L_val(θ, λ) = Σ_j w_j · mean_{s ∈ fold j} ℓ(θ; s)`` (at a one-hot ``w`` the
  loss on the validating fold).

``S_train`` (``K·ipc`` images, fold rule) is the train source's proxy (``per_fold`` over ``dc`` by
default, read from the sweep's cache), kept fixed. ``S_val`` holds, for each fold ``j``, as many
images per class as ``S_train``'s fold ``j`` (``ipc / M``: one fold is ``1/M`` of ``S_train``, the
size the paper gives the validation set of each HPO configuration), interleaved by the fold rule
(``K·ipc×C×H×W`` in all); it starts from random original images of the same fold and class
(``val_init: "real"``) or from ``S_train``'s own fold (``"source"``). For each of ``repeats``
repeats and each fold ``i`` (the M HPO trajectories): ``λ ← init_scale · onehot(i)``, a fresh
ConvNet θ (the ``cv_folds`` space's, ``width`` × ``depth``) trained with SGD on ``S_train`` under
λ for ``epochs`` epochs (batches of ``batch_train``) and, with ``real_weights: "trained"``, a copy
θ_T trained alongside on batches of ``batch_real`` pool images (``"shared"``: θ itself). After
epochs ``t`` with ``t mod lambda_period = 0``:

1. ``h_S = ∇λ L*_S(λ)`` on ``(S_train, S_val)`` at θ (IFT + Neumann,
   :func:`harness.hypergradient.hypergradient`), differentiable in ``S_val``;
2. ``h_T = ∇λ L*_T(λ)`` at θ_T on a random pool batch of ``batch_real`` (training loss: its
   Hessian-vector products) and, for the validation loss, the whole pool (``val_real: null``) or
   ``val_real`` random pool images of every fold — the pool is the task's train split, which is
   also its val split. The folds' losses differ by little, so a sampled validation loss is mostly
   noise: the whole pool (one forward and backward pass, no Hessian) gives the true direction;
3. ``S_val ← S_val − lr_val ∇ D_c(h_T, h_S)`` and ``λ ← λ − lr_lambda · h_S``
   (:func:`harness.hypergradient.calibration_step`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from condensers._hcdc_common import (REAL_WEIGHTS, VAL_MOMENTUM, SettingsRules, calibration_meta, check_settings,
                                     fetch_train_source, merged_settings, run_trajectories)
from harness._values import is_int
from harness.convnet import ConvNet
from harness.errors import ConfigError
from harness.hypergradient import Loss, calibration_step, hypergradient
from harness.seeding import derive_seed
from harness.spaces.cv_folds import CVFoldsSpace, fold_of, interleave_folds
from harness.types import Deadline, ProxyData, RunContext, Split, Task

CV_DEFAULTS: dict[str, Any] = {
    "train_source": "per_fold", "train_source_params": {"inner": "dc"},
    "folds": 20, "width": 32, "depth": 3,
    "repeats": 1, "epochs": 20, "lambda_period": 2,
    "lr_net": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "batch_train": 256, "batch_real": 256, "val_real": None,
    "lr_lambda": 0.1, "lr_val": 0.1, "neumann_terms": 5, "neumann_alpha": 0.01, "init_scale": 3.0,
    "val_init": "real", "real_weights": "trained",
}
"""The cv settings (the paper's M = 20 and SDC-GM train set; the rest are ours)."""

CV_TEST_PARAMS: dict[str, Any] = {
    "train_source": "per_fold", "train_source_params": {"inner": "random", "folds": 2}, "folds": 2, "width": 4,
    "depth": 1, "epochs": 2, "lambda_period": 1, "batch_train": 16, "batch_real": 16, "neumann_terms": 2,
}
"""Settings small enough for a test on the tiny cv task."""

VAL_INITS: tuple[str, ...] = ("real", "source")
_RULES = SettingsRules(
    prefix="cv.",
    ints={"folds": 2, "width": 1, "depth": 1, "repeats": 1, "epochs": 1, "lambda_period": 1, "batch_train": 2,
          "batch_real": 2},
    positive=("lr_net", "lr_lambda", "lr_val", "init_scale"),
    non_negative=("momentum", "weight_decay"),
    choices={"val_init": VAL_INITS, "real_weights": REAL_WEIGHTS},
    example_source="per_fold",
)


def cv_settings(params: dict[str, Any]) -> dict[str, Any]:
    """:data:`CV_DEFAULTS` overridden by ``params``, checked.

    Raises:
        ConfigError: an unknown key or a value out of range (the message names it as ``cv.<key>``).
    """
    p = merged_settings("cv", CV_DEFAULTS, params)
    check_settings(p, _RULES)
    if p["val_real"] is not None and (not is_int(p["val_real"]) or p["val_real"] < 1):
        raise ConfigError(f"hcdc: cv.val_real must be null (the whole pool) or an integer >= 1, got {p['val_real']!r}")
    return p


def weighted_train_loss(logits: torch.Tensor, y: torch.Tensor, folds: torch.Tensor,
                        w: torch.Tensor) -> torch.Tensor:
    """``mean_s (1 − w_{f(s)}) ℓ_s``: the relaxed training loss (cross-entropy ``ℓ``).

    Args:
        logits: ``B×K``; y: ``B`` labels; folds: ``B`` fold indices; w: ``M`` fold weights.
    """
    return ((1 - w[folds]) * F.cross_entropy(logits, y, reduction="none")).mean()


def weighted_val_loss(logits: torch.Tensor, y: torch.Tensor, folds: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Σ_j w_j · mean_{s ∈ fold j} ℓ_s``: the relaxed validation loss (a fold absent from the batch adds 0).

    Args:
        logits: ``B×K``; y: ``B`` labels; folds: ``B`` fold indices; w: ``M`` fold weights.
    """
    losses = F.cross_entropy(logits, y, reduction="none")
    sums = torch.zeros_like(w).index_add(0, folds, losses)
    counts = torch.zeros_like(w).index_add(0, folds, torch.ones_like(losses))
    return (w * sums / counts.clamp(min=1)).sum()


class FoldedSplit:
    """A split with the fold of every sample (:func:`harness.spaces.cv_folds.fold_of`).

    Attributes:
        x: ``N×C×H×W`` (for ``S_val``, the learned leaf); y: ``N`` labels; folds: ``N`` fold indices.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, folds: int) -> None:
        self.x, self.y, self.folds = x, y, fold_of(y, folds)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``min(size, N)`` random samples: ``(x, y, folds)``."""
        index = torch.randperm(len(self.y), generator=generator)[:size].to(self.y.device)
        return self.x[index], self.y[index], self.folds[index]

    def per_fold_batch(self, size: int | None,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``size`` random samples of every fold (each fold's validation loss is estimated), or every
        sample when ``size`` is ``None``."""
        if size is None:
            return self.x, self.y, self.folds
        parts = []
        for j in range(int(self.folds.max()) + 1):
            index = torch.nonzero(self.folds == j, as_tuple=True)[0]
            parts.append(index[torch.randperm(len(index), generator=generator)[:size].to(index.device)])
        index = torch.cat(parts)
        return self.x[index], self.y[index], self.folds[index]


def relaxed_losses(net: ConvNet, train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...],
                   weight_decay: float) -> tuple[Loss, Loss]:
    """``(L_train(θ, [λ]), L_val(θ, [λ]))`` of ``net`` on ``(x, y, folds)`` batches, for
    :func:`harness.hypergradient.hypergradient`; ``val``'s images may be a learnable leaf."""
    names = [name for name, _ in net.named_parameters()]

    def loss(data: tuple[torch.Tensor, ...], relaxed: Any, decay: float) -> Loss:
        x, y, folds = data

        def value(params: list[torch.Tensor], hyper: list[torch.Tensor]) -> torch.Tensor:
            logits = functional_call(net, dict(zip(names, params)), (x,))
            penalty = 0.5 * decay * sum((p ** 2).sum() for p in params) if decay else 0.0
            return relaxed(logits, y, folds, torch.softmax(hyper[0], 0)) + penalty
        return value

    return loss(train, weighted_train_loss, weight_decay), loss(val, weighted_val_loss, 0.0)


def fold_hypergradients(p: dict[str, Any], net_s: ConvNet, net_t: ConvNet, lam: torch.Tensor, s_train: FoldedSplit,
                        s_val: FoldedSplit, pool: FoldedSplit,
                        generator: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(h_T, h_S)``: ``∇λ L*`` (``[M]``) on the pool at ``net_t`` (detached) and on ``(S_train, S_val)``
    at ``net_s`` (differentiable in ``S_val.x``)."""
    def grad(net: ConvNet, train: tuple, val: tuple, differentiable: bool) -> list[torch.Tensor]:
        train_loss, val_loss = relaxed_losses(net, train, val, p["weight_decay"])
        return hypergradient(train_loss, val_loss, list(net.parameters()), [lam], terms=p["neumann_terms"],
                             alpha=p["neumann_alpha"], differentiable=differentiable)

    h_s = grad(net_s, (s_train.x, s_train.y, s_train.folds), (s_val.x, s_val.y, s_val.folds), True)
    h_t = grad(net_t, pool.batch(p["batch_real"], generator), pool.per_fold_batch(p["val_real"], generator), False)
    return h_t, h_s


def initial_val(p: dict[str, Any], s_train: Split, pool: Split, num_classes: int, generator: torch.Generator) -> Split:
    """``S_val``: for every fold ``j``, as many images per class as ``S_train``'s fold ``j``, from random
    pool images of fold ``j`` and that class (``"real"``) or copied from ``S_train``'s fold ``j``
    (``"source"``); interleaved by the fold rule.

    Raises:
        ConfigError: the pool has too few images of some fold and class.
    """
    train_folds, pool_folds = fold_of(s_train.y, p["folds"]), fold_of(pool.y, p["folds"])
    parts = []
    for j in range(p["folds"]):
        mine = s_train.subset(torch.nonzero(train_folds == j, as_tuple=True)[0])
        if p["val_init"] == "source":
            parts.append(Split(mine.x.clone(), mine.y.clone()))
            continue
        xs = []
        for c in range(num_classes):
            n = int((mine.y == c).sum())
            index = torch.nonzero((pool_folds == j) & (pool.y == c), as_tuple=True)[0]
            if len(index) < n:
                raise ConfigError(f"hcdc: fold {j} of the pool has {len(index)} images of class {c}, fewer than the "
                                  f"{n} synthetic val images to initialize; use cv.val_init 'source'")
            xs.append(pool.x[index[torch.randperm(len(index), generator=generator)[:n].to(index.device)]])
        parts.append(Split(torch.cat(xs), mine.y[torch.argsort(mine.y, stable=True)]))
    return interleave_folds(parts, num_classes)


def condense_cv(task: Task, ipc: int | None, ctx: RunContext, params: dict[str, Any]) -> ProxyData:
    """HCDC (Algorithm 1) on a cross-validation task: keep the train source's pool, learn per-fold ``S_val``.

    Args:
        task: a cv task (val is the train pool).
        ipc: images per class of ``S_train`` (passed to the train source); ``S_val`` gets as many.
        ctx: the run context (seed, device, budget, the sweep's shared cache through ``proxy_from``).
        params: cv settings (:data:`CV_DEFAULTS` keys).

    Returns:
        ``ProxyData(train=S_train, val=S_val)``, both ``(K·ipc)×C×H×W`` carrying the fold rule.

    Raises:
        ConfigError: bad settings, ``ipc`` missing, or a train source with another number of folds.
        DivergedError: a hypergradient or ``S_val`` became NaN or infinite.
    """
    p = cv_settings(params)
    if ipc is None:
        raise ConfigError("hcdc needs ipc (images per class); set ipc in the sweep config")
    upstream, fetch_seconds = fetch_train_source(task, ipc, ctx, p)
    if upstream.meta.get("folds", p["folds"]) != p["folds"]:
        raise ConfigError(f"hcdc: cv.folds is {p['folds']} but the train source cut {upstream.meta['folds']} folds; "
                          "set both (and the cv_folds space) to the same M")
    deadline = ctx.deadline()
    generator = ctx.generator("hcdc-cv")
    device = ctx.device
    s_train = FoldedSplit(upstream.train.x.to(device), upstream.train.y.to(device), p["folds"])
    start_val = initial_val(p, upstream.train, task.train, task.num_classes, generator).to(device)
    s_val = FoldedSplit(start_val.x.detach().clone().requires_grad_(True), start_val.y, p["folds"])
    pool = FoldedSplit(task.train.x.to(device), task.train.y.to(device), p["folds"])
    optimizer = torch.optim.SGD([s_val.x], lr=p["lr_val"], momentum=VAL_MOMENTUM)
    space = CVFoldsSpace(folds=p["folds"], width=p["width"], depth=p["depth"], image_size=task.image_size,
                         in_channels=task.in_channels, num_classes=task.num_classes)

    def trajectory(k: int, i: int, arch: str) -> tuple[list[float], torch.Tensor, torch.Tensor]:
        lam_start = p["init_scale"] * F.one_hot(torch.tensor(i), p["folds"]).float().to(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(ctx.seed, "hcdc-cv", k, i))
            net = space.build(arch).to(device)
        distances, lam = _trajectory(p, net, lam_start, s_train, s_val, pool, optimizer, generator, deadline)
        return distances, lam_start, lam

    calibration = run_trajectories(space.all_archs(), p["repeats"], deadline, trajectory, ctx.progress)
    proxy = ProxyData(train=Split(s_train.x.detach().clone(), s_train.y.clone()),
                      val=Split(s_val.x.detach().clone(), s_val.y.clone()))
    proxy.meta = {**calibration_meta(ipc, p, upstream, fetch_seconds, deadline, calibration), "folds": p["folds"]}
    return proxy


def _trajectory(p: dict[str, Any], net_s: ConvNet, lam: torch.Tensor, s_train: FoldedSplit, s_val: FoldedSplit,
                pool: FoldedSplit, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                deadline: Deadline) -> tuple[list[float], torch.Tensor]:
    """One HPO trajectory (Algorithm 1, lines 2-8) from fold ``i``'s one-hot λ; returns its cosine
    distances and final λ."""
    net_t = copy.deepcopy(net_s) if p["real_weights"] == "trained" else net_s
    nets = [net_s] if net_t is net_s else [net_s, net_t]
    optimizers = [torch.optim.SGD(net.parameters(), lr=p["lr_net"], momentum=p["momentum"],
                                  weight_decay=p["weight_decay"]) for net in nets]
    distances: list[float] = []
    for t in range(p["epochs"]):
        if deadline.expired():
            break
        w = torch.softmax(lam, 0)
        order = torch.randperm(len(s_train.y), generator=generator).to(s_train.y.device)
        for index in order.split(p["batch_train"]):
            batches = [(s_train.x[index], s_train.y[index], s_train.folds[index])]
            if len(nets) == 2:
                batches.append(pool.batch(p["batch_real"], generator))
            for net, opt, (x, y, folds) in zip(nets, optimizers, batches):
                loss = weighted_train_loss(net(x), y, folds, w)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if t % p["lambda_period"]:
            continue
        h_t, h_s = fold_hypergradients(p, net_s, net_t, lam, s_train, s_val, pool, generator)
        distance, lam = calibration_step(h_t, h_s, s_val.x, optimizer, lam, p["lr_lambda"], knobs="cv.")
        if distance is not None:
            distances.append(distance)
    return distances, lam
