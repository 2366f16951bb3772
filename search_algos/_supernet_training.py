"""Alternating first-order bilevel training of the NAS-Bench-201 supernet (shared by
``gdas`` and ``darts_pt``).

Liu et al., "DARTS", ICLR 2019 (first-order approximation, section 2.3); Dong & Yang,
"GDAS", CVPR 2019 (Algorithm 1). Each step takes one SGD step on the supernet weights ``w``
with a batch of the proxy train split (``min_w L_train(w, λ)``), then one Adam step on λ with
a batch of the proxy val split (``min_λ L_val(w, λ)``, ``w`` held fixed). How λ enters the
network (softmax, Gumbel sampling, projected weights) is the caller's ``forward``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from harness.errors import ConfigError, DivergedError
from harness.seeding import derive_seed
from harness.spaces.nasbench201_supernet import NasBench201Supernet, candidate_scores
from harness.training import evaluate_logits
from harness.types import ProxyData, RunContext, Split

Forward = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``forward(x, alphas, epoch) -> logits``: the supernet under the caller's relaxation."""

ARCH_BETAS = (0.5, 0.999)
"""Adam betas of the λ optimizer in both GDAS (AutoDL) and DARTS-PT."""

EVAL_BATCH = 256


@dataclass(frozen=True)
class BilevelSettings:
    """Optimizer settings of the bilevel search (defaults: AutoDL's GDAS on NAS-Bench-201).

    Attributes:
        batch_size: images per weight step and per λ step.
        lr, lr_min: SGD learning rate, cosine-annealed per step from ``lr`` to ``lr_min``.
        momentum, weight_decay, nesterov: SGD settings of the weights.
        grad_clip: maximum global gradient norm of the weights per step.
        arch_lr, arch_weight_decay: Adam settings of λ (betas :data:`ARCH_BETAS`).
    """

    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BilevelSettings":
        """Pick this class's fields out of a plugin's parameters (other keys are ignored).

        Raises:
            ConfigError: a batch size below 1 or a learning rate that is not positive.
        """
        settings = cls(**{name: params[name] for name in cls.__dataclass_fields__ if name in params})
        if settings.batch_size < 1 or not settings.lr > 0 or not settings.arch_lr > 0:
            raise ConfigError(f"batch_size must be >= 1 and lr, arch_lr > 0; got {settings}")
        return settings


class BilevelTrainer:
    """Owns a supernet, its λ optimizer, the proxy on the device, the wall-clock budget and
    the search trace (``(seconds, best candidate so far)`` pairs).

    Args:
        space: the NAS-Bench-201 space the supernet mirrors.
        proxy: ``train`` trains the weights, ``val`` trains λ and scores.
        settings: optimizer settings.
        ctx: seed, device and ``budget_seconds`` (counted from construction).
        salt: distinguishes the random streams of different algorithms.
    """

    def __init__(self, space: Any, proxy: ProxyData, settings: BilevelSettings, ctx: RunContext,
                 salt: str) -> None:
        self.deadline = ctx.deadline()
        self.settings = settings
        torch.manual_seed(derive_seed(ctx.seed, salt, "init"))
        self.net = NasBench201Supernet.from_space(space, generator=ctx.generator(f"{salt}-alphas")).to(ctx.device)
        self.train_split = proxy.train.to(ctx.device)
        self.val_split = proxy.val.to(ctx.device)
        self.arch_optimizer = torch.optim.Adam([self.net.alphas], lr=settings.arch_lr, betas=ARCH_BETAS,
                                               weight_decay=settings.arch_weight_decay)
        self._order = ctx.generator(f"{salt}-order")
        self.trace: list[tuple[float, str]] = []

    def elapsed(self) -> float:
        """Seconds since the trainer was built."""
        return self.deadline.elapsed()

    def out_of_time(self) -> bool:
        """Whether ``ctx.budget_seconds`` has run out."""
        return self.deadline.expired()

    def best_candidate(self, candidates: list[str]) -> str:
        """The candidate with the highest :func:`candidate_scores` under the current λ."""
        with torch.no_grad():
            return candidates[int(candidate_scores(self.net.alphas, candidates).argmax())]

    def record(self, candidate: str) -> None:
        """Append ``(seconds since start, candidate)`` to :attr:`trace`."""
        self.trace.append((self.elapsed(), candidate))

    def record_best(self, candidates: list[str]) -> None:
        """Record the best candidate under the current λ (:meth:`best_candidate`)."""
        self.record(self.best_candidate(candidates))

    def train(self, epochs: int, forward: Forward, lr: float, lr_min: float,
              on_epoch: Callable[[int], None] | None = None) -> bool:
        """Run ``epochs`` epochs of alternating steps with a fresh SGD optimizer on the weights.

        The weight learning rate is cosine-annealed per step from ``lr`` to ``lr_min`` (pass
        ``lr_min == lr`` for a constant rate); λ keeps its Adam state across calls.
        ``on_epoch(epoch)`` runs after each completed epoch.

        Returns:
            ``False`` when the budget ran out before all epochs were done.

        Raises:
            DivergedError: a loss became NaN or infinite.
        """
        s = self.settings
        optimizer = torch.optim.SGD(self.net.weight_parameters(), lr=lr, momentum=s.momentum,
                                    weight_decay=s.weight_decay, nesterov=s.nesterov)
        n_train, n_val = len(self.train_split), len(self.val_split)
        batch = min(s.batch_size, n_train)
        steps_per_epoch = max(1, math.ceil(n_train / batch) - (n_train % batch == 1))  # BN needs 2+ images
        total = epochs * steps_per_epoch
        for epoch in range(epochs):
            order = torch.randperm(n_train, generator=self._order).to(self.train_split.x.device)
            for step in range(steps_per_epoch):
                if self.out_of_time():
                    return False
                progress = (epoch * steps_per_epoch + step) / max(1, total)
                for group in optimizer.param_groups:
                    group["lr"] = lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * progress))
                self._weight_step(optimizer, forward, order[step * batch:(step + 1) * batch], epoch)
                val_index = torch.randperm(n_val, generator=self._order)[:min(s.batch_size, n_val)]
                self._arch_step(forward, val_index.to(self.val_split.x.device), epoch)
            if on_epoch is not None:
                on_epoch(epoch)
        return True

    def _weight_step(self, optimizer: torch.optim.Optimizer, forward: Forward, index: torch.Tensor,
                     epoch: int) -> None:
        loss = F.cross_entropy(forward(self.train_split.x[index], self.net.alphas.detach(), epoch),
                               self.train_split.y[index])
        _check_finite(loss, "weight")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.weight_parameters(), self.settings.grad_clip)
        optimizer.step()

    def _arch_step(self, forward: Forward, index: torch.Tensor, epoch: int) -> None:
        loss = F.cross_entropy(forward(self.val_split.x[index], self.net.alphas, epoch), self.val_split.y[index])
        _check_finite(loss, "architecture")
        # Under Gumbel sampling every sampled op may be ``none``: then λ gets a zero gradient.
        (self.net.alphas.grad,) = torch.autograd.grad(loss, [self.net.alphas], allow_unused=True,
                                                      materialize_grads=True)
        self.arch_optimizer.step()

    def evaluate(self, forward: Callable[[torch.Tensor], torch.Tensor], split: Split | None = None
                 ) -> tuple[float, float]:
        """``(accuracy %, mean cross-entropy)`` of ``forward(x) -> logits`` on ``split``
        (default: the proxy val split), in fixed batches of :data:`EVAL_BATCH` images."""
        evaluation = evaluate_logits(forward, self.val_split if split is None else split, EVAL_BATCH)
        return evaluation.acc, evaluation.loss


def _check_finite(loss: torch.Tensor, which: str) -> None:
    if not torch.isfinite(loss):
        raise DivergedError(f"supernet search diverged ({which} loss {loss.item()}); lower lr / arch_lr")
