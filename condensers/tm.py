"""``tm``: dataset distillation by matching training trajectories (Cazenavette et al., CVPR 2022)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from condensers._experts import ExpertPool, ExpertRecipe, expert_pool
from condensers._matching import (IMAGE_MOMENTUM, Learner, RealSampler, SynthesisCondenser, SyntheticSet,
                                  check_positive_float, check_positive_int, make_augment, random_convnet)
from harness.augment import DEFAULT_STRATEGY, SiameseAugment
from harness.errors import ConfigError
from harness.registry import register_condenser
from harness.training import DivergedError
from harness.types import RunContext, Task


def unflatten(net: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views of a flat ``P`` parameter vector shaped as ``net``'s named parameters (for ``functional_call``)."""
    shapes = [(name, p.shape) for name, p in net.named_parameters()]
    chunks = flat.split([math.prod(shape) for _, shape in shapes])
    return {name: chunk.view(shape) for (name, shape), chunk in zip(shapes, chunks)}


def trajectory_loss(net: nn.Module, start: torch.Tensor, target: torch.Tensor, images: torch.Tensor,
                    labels: torch.Tensor, lr: torch.Tensor, steps: int, batch_size: int,
                    generator: torch.Generator, augment: SiameseAugment | None) -> torch.Tensor:
    """The normalized parameter-matching loss of MTT (eq. 2 of Cazenavette et al., 2022).

    The student starts at the expert's ``θ*_t`` (``start``) and takes ``steps`` SGD steps
    ``θ ← θ − α ∇θ ℓ(A(x_b); θ)`` of cross-entropy on batches of ``batch_size`` synthetic
    images (reshuffled each time all were used; each image augmented with its own draw of
    ``augment``), the network evaluated functionally (``torch.func.functional_call``) at the
    current ``θ`` so the loss stays differentiable through every step:

        ``L = ‖θ_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²``

    Args:
        net: the architecture (its own parameters are not used).
        start, target: flat ``P`` expert parameters ``θ*_t`` and ``θ*_{t+M}``.
        images: ``n×C×H×W`` synthetic images; labels: their ``n`` classes.
        lr: the (positive, scalar) student learning rate ``α``.

    Returns:
        A scalar, differentiable in ``images`` and ``lr``; 1 when the student does not move.
    """
    theta = start.detach().requires_grad_(True)
    order: list[torch.Tensor] = []
    for _ in range(steps):
        if not order:
            order = list(torch.randperm(len(images), generator=generator).to(images.device).split(batch_size))
        batch = order.pop(0)
        x = images[batch] if augment is None else augment(images[batch], generator)
        loss = F.cross_entropy(functional_call(net, unflatten(net, theta), (x,)), labels[batch])
        (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
        theta = theta - lr * grad
    return (theta - target).pow(2).sum() / (start - target).pow(2).sum()


@register_condenser("tm")
class TM(SynthesisCondenser):
    """Matching Training Trajectories (Cazenavette et al., CVPR 2022, Algorithm 1).

    First a pool of ``experts`` ConvNets (``width``, ``depth``) is trained on the real data for
    ``expert_train_epochs`` epochs each (SGD ``lr_teacher``, batches of ``batch_train``,
    ``strategy`` augmentation), parameters saved per epoch; the pool lives in the sweep's
    shared cache (``ctx.cache``) and is reused by every seed, ipc and sweep that shares it
    (:mod:`condensers._experts`; without a cache the experts are trained and dropped). At paper
    scale an expert takes about 65 MB on disk (51 vectors of the ConvNet's 320k parameters).

    Then each iteration picks a random expert and start epoch ``t ∈ [0, max_start_epoch)``,
    unrolls a student for ``syn_steps`` steps from ``θ*_t`` on batches of ``batch_syn``
    synthetic images (``None``: all ``K·ipc``) with the learnable learning rate ``α``, and
    takes one SGD step (momentum 0.5) on the images (``lr_img``) and on ``log α`` (``lr_lr``)
    against :func:`trajectory_loss` with target ``θ*_{t+expert_epochs}``. ``α`` starts at
    ``lr_teacher`` and is learned in log space, so it stays positive.

    Defaults: the paper's CIFAR-10 ipc-10 settings (30 synthetic steps, 2 expert epochs, start
    epochs below 20, 100 experts of 50 epochs, ``lr_teacher`` 0.01, 5000 iterations, DSA,
    images initialized from real ones) with the reference's ``lr_img`` 1000 (tuned there for
    ZCA-whitened images; the harness does not whiten). The reference steps ``α`` itself with
    lr 1e-5; ``lr_lr`` 0.1 on ``log α`` is the same relative step at ``α`` = 0.01.

    ``meta`` records the learned ``syn_lr``, ``experts_trained`` (by this call), ``experts_cached``
    (found in the cache) and ``expert_seconds`` (obtaining them, not charged to the budget).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "iterations": 5000, "lr_img": 1000.0, "lr_lr": 0.1, "lr_teacher": 0.01,
        "syn_steps": 30, "expert_epochs": 2, "max_start_epoch": 20, "batch_syn": None,
        "experts": 100, "expert_train_epochs": 50, "batch_train": 256,
        "width": 128, "depth": 3, "init": "real", "strategy": DEFAULT_STRATEGY,
    }
    test_params: ClassVar[dict[str, Any]] = {
        "iterations": 2, "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 2, "experts": 2,
        "expert_train_epochs": 2, "batch_train": 16, "width": 8, "depth": 2, "lr_img": 10.0,
    }
    depends_on = (*SynthesisCondenser.depends_on, "condensers._experts")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key in ("syn_steps", "expert_epochs", "max_start_epoch", "experts", "expert_train_epochs",
                    "batch_train"):
            check_positive_int(self.name, key, self.params[key])
        for key in ("lr_lr", "lr_teacher"):
            check_positive_float(self.name, key, self.params[key])
        if self.params["batch_syn"] is not None:
            check_positive_int(self.name, "batch_syn", self.params["batch_syn"])
        last = self.params["max_start_epoch"] - 1 + self.params["expert_epochs"]
        if last > self.params["expert_train_epochs"]:
            raise ConfigError(
                f"{self.name}: targets reach expert epoch max_start_epoch - 1 + expert_epochs = {last}, but experts "
                f"train for only expert_train_epochs = {self.params['expert_train_epochs']}; raise "
                "expert_train_epochs or lower max_start_epoch / expert_epochs")
        self.augment: SiameseAugment | None = make_augment(self.name, self.params["strategy"])

    def recipe(self) -> ExpertRecipe:
        """How this condenser's experts are trained (what their cache key holds besides the data)."""
        return ExpertRecipe(width=self.params["width"], depth=self.params["depth"],
                            epochs=self.params["expert_train_epochs"], lr=self.params["lr_teacher"],
                            batch_size=self.params["batch_train"], strategy=self.params["strategy"])

    def learner(self, task: Task, synthetic: SyntheticSet, sampler: RealSampler, generator: torch.Generator,
                ctx: RunContext) -> Learner:
        """Obtain the expert pool, then SGD on the images and ``log α`` against :func:`trajectory_loss`."""
        pool = expert_pool(task, self.recipe(), self.params["experts"], ctx.cache, ctx.device)
        return _TMLearner(self, task, synthetic, pool, generator, ctx)


class _TMLearner(Learner):
    def __init__(self, tm: TM, task: Task, synthetic: SyntheticSet, pool: ExpertPool, generator: torch.Generator,
                 ctx: RunContext) -> None:
        self.tm, self.synthetic, self.pool, self.generator, self.device = tm, synthetic, pool, generator, ctx.device
        params = tm.params
        self.net = random_convnet(task, params["width"], params["depth"], 0, ctx.device)
        self.log_lr = torch.tensor(math.log(params["lr_teacher"]), device=ctx.device, requires_grad=True)
        self.image_optimizer = torch.optim.SGD([synthetic.images], lr=params["lr_img"], momentum=IMAGE_MOMENTUM)
        self.lr_optimizer = torch.optim.SGD([self.log_lr], lr=params["lr_lr"], momentum=IMAGE_MOMENTUM)

    def step(self, it: int) -> float:
        """One image and learning-rate step on a random expert segment."""
        params = self.tm.params
        expert = self.pool.trajectories[int(torch.randint(len(self.pool.trajectories), (1,), generator=self.generator))]
        t = int(torch.randint(params["max_start_epoch"], (1,), generator=self.generator))
        start, target = expert[t].to(self.device), expert[t + params["expert_epochs"]].to(self.device)
        images = self.synthetic.images
        batch_size = params["batch_syn"] or len(images)
        loss = trajectory_loss(self.net, start, target, images, self.synthetic.labels, self.log_lr.exp(),
                               params["syn_steps"], batch_size, self.generator, self.tm.augment)
        self.image_optimizer.zero_grad(set_to_none=True)
        self.lr_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.image_optimizer.step()
        self.lr_optimizer.step()
        if not torch.isfinite(self.log_lr):
            raise DivergedError(f"tm: the synthetic learning rate became non-finite at iteration {it}; "
                                f"lower lr_lr (now {params['lr_lr']})")
        return loss.item()

    def meta(self) -> dict[str, Any]:
        """The learned learning rate and what obtaining the experts cost."""
        return {"syn_lr": self.log_lr.detach().exp().item(), "experts_trained": self.pool.trained,
                "experts_cached": len(self.pool.trajectories) - self.pool.trained,
                "expert_seconds": self.pool.seconds}
