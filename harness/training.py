"""Train and evaluate one candidate network: the paper's SGD with a cosine schedule.

Data stay on the device as whole tensors; an epoch is a random permutation sliced into
batches, so the Python work per step is one index, one forward and one backward.

The oracle and every search algorithm train a candidate through its space's
``train_candidate`` method, which for image spaces ends in :func:`train_candidate` here. That
method is where a space may choose the candidate's data: ``cv_folds``
(:mod:`harness.spaces.cv_folds`, appendix K) trains candidate ``fold:i`` on the train split
without fold ``i`` and validates it on fold ``i`` of the val split
(:meth:`~harness.spaces.cv_folds.CVFoldsSpace.candidate_data`); other spaces pass the splits
through unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F

from harness._allocator import retain_freed_memory
from harness.errors import DivergedError
from harness.seeding import derive_seed
from harness.types import Split, TrainProtocol


@dataclass
class Evaluation:
    """Accuracy (%) and mean cross-entropy of a model on one split."""

    acc: float
    loss: float


def default_device() -> torch.device:
    """The first CUDA device when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_model(model: torch.nn.Module, train: Split, protocol: TrainProtocol, seed: int) -> torch.nn.Module:
    """Train ``model`` in place on ``train`` (already on the model's device) and return it.

    SGD (momentum, Nesterov, weight decay) with the learning rate annealed by a cosine over
    all steps. Batches come from a permutation drawn from a generator seeded by ``seed``;
    a final batch of one sample is dropped (batch norm cannot train on it).

    Raises:
        DivergedError: the loss became NaN or infinite.
    """
    retain_freed_memory()
    n = len(train)
    batch_size = min(protocol.batch_size, n)
    steps = steps_per_epoch(n, batch_size)
    optimizer, schedule = sgd_with_cosine(model.parameters(), protocol, protocol.epochs * steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(protocol.epochs):
        order = torch.randperm(n, generator=generator).to(train.x.device)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            loss = F.cross_entropy(model(train.x[index]), train.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if not torch.isfinite(loss):
            raise DivergedError(f"training diverged (loss {loss.item()}); lower the learning rate")
    return model


def sgd_with_cosine(parameters: Iterable[torch.nn.Parameter], protocol: TrainProtocol, total_steps: int
                    ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """The protocol's SGD over ``parameters`` and its per-step cosine schedule over ``total_steps``."""
    optimizer = torch.optim.SGD(parameters, lr=protocol.lr, momentum=protocol.momentum,
                                weight_decay=protocol.weight_decay, nesterov=protocol.nesterov)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / max(1, total_steps))))
    return optimizer, schedule


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch over ``n`` samples; a final batch of a single sample is dropped."""
    full, rest = divmod(n, batch_size)
    return max(1, full + (1 if rest > 1 else 0))


def init_candidate(space: Any, arch: str, seed: int) -> torch.nn.Module:
    """Build ``arch`` with the initialization that depends only on ``(seed, arch)``."""
    torch.manual_seed(derive_seed(seed, arch, "init"))
    return space.build(arch)


def evaluate(model: torch.nn.Module, split: Split, batch_size: int = 1024) -> Evaluation:
    """Accuracy (%) and mean cross-entropy of ``model`` in eval mode on ``split``."""
    model.eval()
    return evaluate_logits(model, split, batch_size)


@torch.no_grad()
def evaluate_logits(forward: Callable[[torch.Tensor], torch.Tensor], split: Split,
                    batch_size: int = 1024) -> Evaluation:
    """Accuracy (%) and mean cross-entropy of ``forward(x) -> logits`` on ``split``, in batches.

    Unlike :func:`evaluate` it leaves the mode of any module alone (e.g. a supernet
    evaluated under chosen architecture weights).
    """
    correct, loss_sum = 0, 0.0
    for start in range(0, len(split), batch_size):
        logits = forward(split.x[start:start + batch_size])
        labels = split.y[start:start + batch_size]
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
    return Evaluation(acc=100.0 * correct / len(split), loss=loss_sum / len(split))


def train_candidate(space: Any, arch: str, train: Split, evaluations: dict[str, Split],
                    protocol: TrainProtocol, seed: int, device: torch.device) -> dict[str, float]:
    """Build ``arch`` from ``space``, train it on ``train`` and evaluate it on each named split.

    The initialization and batch order depend only on ``(seed, arch)``, so the oracle and a
    search algorithm training the same candidate on the same data with the same seed get
    the same numbers.

    Returns:
        ``{"<name>_acc": ..., "<name>_loss": ..., "train_seconds": ...}`` for each split name.
    """
    start = time.perf_counter()
    model = init_candidate(space, arch, seed).to(device)
    train_model(model, train.to(device), protocol, derive_seed(seed, arch, "order"))
    result: dict[str, float] = {}
    for name, split in evaluations.items():
        evaluation = evaluate(model, split.to(device))
        result[f"{name}_acc"] = evaluation.acc
        result[f"{name}_loss"] = evaluation.loss
    result["train_seconds"] = time.perf_counter() - start
    return result
