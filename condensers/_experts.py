"""Expert trajectories for ``tm``: ConvNets trained on the real data, parameters saved per epoch.

Matching Training Trajectories (Cazenavette et al., CVPR 2022, section 3) needs, before any
synthesis, a pool of "experts": networks trained on the real training set, each recorded as
its flattened parameters ``θ*_0, θ*_1, …, θ*_E`` at the end of every epoch (``θ*_0``: the
initialization). They are the expensive part of the method and do not depend on the
synthesis, so each expert is stored in the shared content-addressed cache
(:class:`harness.cache.Cache`, stage :data:`EXPERT_STAGE`) under a key made of the training
data's content hash (:func:`data_fingerprint`), the :class:`ExpertRecipe`, the expert's index
and the source of the code that trains it — NOT the cell's seed, ``ipc`` or the synthesis
parameters — so every seed, ipc and sweep sharing that cache trains each expert once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from condensers._matching import make_augment
from harness.convnet import ConvNet
from harness.plugin import modules_source_hash
from harness.seeding import derive_seed
from harness.training import DivergedError
from harness.types import Split, Task

EXPERT_STAGE = "tm_experts"
# The code that determines an expert's trajectory; its source joins the cache key.
EXPERT_MODULES = ("condensers._experts", "harness.convnet", "harness.augment")


@dataclass(frozen=True)
class ExpertRecipe:
    """How each expert is trained: SGD without momentum or weight decay (the reference's
    defaults) for ``epochs`` epochs of shuffled batches, each image augmented with its own draw
    of ``strategy`` (:class:`harness.augment.SiameseAugment`; ``"none"``: no augmentation).

    Attributes:
        width, depth: the ConvNet (:class:`harness.convnet.ConvNet`).
        epochs: ``E``; a trajectory holds ``E + 1`` parameter vectors.
        lr: the SGD learning rate.
        batch_size: images per SGD step.
        strategy: the augmentation strategy.
    """

    width: int
    depth: int
    epochs: int
    lr: float
    batch_size: int
    strategy: str


def data_fingerprint(split: Split) -> str:
    """SHA-256 of a split's raw tensor bytes, shapes and dtypes: the identity of the data experts train on."""
    digest = hashlib.sha256()
    for tensor in (split.x, split.y):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def expert_net(task: Task, recipe: ExpertRecipe, index: int, device: torch.device) -> ConvNet:
    """Expert ``index``'s ConvNet at initialization (seeded by the index alone; global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("tm-expert", index))
        net = ConvNet(task.in_channels, task.num_classes, task.image_size, width=recipe.width, depth=recipe.depth)
    return net.to(device)


def train_expert(task: Task, recipe: ExpertRecipe, index: int, device: torch.device) -> torch.Tensor:
    """Train expert ``index`` on ``task.train`` and return its trajectory: float32 ``(E+1)×P`` on the CPU.

    Raises:
        DivergedError: the training loss became non-finite (lower the experts' ``lr``).
    """
    net = expert_net(task, recipe, index, device)
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr)
    augment = make_augment("tm", recipe.strategy)
    generator = torch.Generator().manual_seed(derive_seed("tm-expert", index, "batches"))
    x, y = task.train.x.to(device), task.train.y.to(device)
    trajectory = [torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu()]
    for epoch in range(recipe.epochs):
        for batch in torch.randperm(len(y), generator=generator).to(device).split(recipe.batch_size):
            images = x[batch] if augment is None else augment(x[batch], generator)
            loss = F.cross_entropy(net(images), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if not torch.isfinite(loss):
            raise DivergedError(f"tm: expert {index} diverged in epoch {epoch} (loss {loss.item()}); "
                                f"lower the experts' learning rate lr_teacher (now {recipe.lr})")
        trajectory.append(torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu())
    return torch.stack(trajectory)


@dataclass
class ExpertPool:
    """The expert trajectories of one run.

    Attributes:
        trajectories: ``count`` float32 CPU tensors ``(E+1)×P``.
        trained: how many of them this call trained (the rest came from the cache).
        seconds: wall time spent obtaining them (training and loading).
    """

    trajectories: list[torch.Tensor]
    trained: int
    seconds: float


def expert_pool(task: Task, recipe: ExpertRecipe, count: int, cache: Any, device: torch.device) -> ExpertPool:
    """Experts ``0 … count−1`` of ``recipe`` on ``task.train``: loaded from ``cache`` when present,
    else trained (and stored when ``cache`` is a :class:`harness.cache.Cache`; ``None``: not kept)."""
    start = time.perf_counter()
    trained = 0

    def train(index: int) -> torch.Tensor:
        nonlocal trained
        trained += 1
        return train_expert(task, recipe, index, device)

    base = {"data": data_fingerprint(task.train), "num_classes": task.num_classes,
            "recipe": dataclasses.asdict(recipe), "source": modules_source_hash(EXPERT_MODULES)}
    trajectories = []
    for index in range(count):
        if cache is None:
            trajectories.append(train(index))
        else:
            trajectories.append(cache.get_or_compute(EXPERT_STAGE, {**base, "index": index},
                                                     lambda index=index: train(index), kind="torch"))
    return ExpertPool(trajectories, trained, time.perf_counter() - start)
