"""Train many candidates at once: the fast path of the oracle and of grid search.

A *run* is an ``(arch, seed)`` pair. :func:`train_runs` trains a group of runs on one split
and evaluates each on named splits, with the numbers one
:func:`harness.training.train_candidate` per run gives (same initialization, same batch
order, same SGD and schedule; equal up to float rounding, which a few SGD steps at a high
learning rate can amplify). When the space can stack its networks — a
``stack_networks(archs, networks)`` method returning one module that maps ``B×K×C×H×W`` to
``B×K×classes`` and gives the trained networks back with ``unstack()``, as
:class:`harness.spaces.NasBench201Space` has — the runs train together as the *members* of
that module, each on its own batches; otherwise they train one at a time.

Groups are cut from the candidate list by :func:`candidate_groups` with :func:`group_size`,
which depend only on the list, the space, the train split's shape, the batch size and the
device; the oracle and grid search therefore train a candidate in the same group and get
identical numbers for it.

The environment variable ``CONDNAS_TRAINER`` chooses the trainer:

* ``auto`` (default): batched when the space supports it and it gains (see
  :func:`group_size`), else one at a time;
* ``sequential``: always one at a time (the reference path);
* ``batched``: batched wherever the space supports it, even for a single run.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
import torch.nn.functional as F

from harness._allocator import retain_freed_memory
from harness.errors import ConfigError
from harness.seeding import derive_seed
from harness.training import DivergedError, evaluate, init_candidate, sgd_with_cosine, steps_per_epoch
from harness.types import Split, TrainProtocol

TRAINER_ENV = "CONDNAS_TRAINER"
TRAINERS = ("auto", "sequential", "batched")
MAX_MEMBERS = 16
"""On a CPU, at most this many runs train together (more gains little: larger activations
fall out of cache, and the grouped convolutions' cost per member stops falling, see
``benchmarks/candidate_training.py --convolutions``)."""
PIXEL_BUDGET = 2**19
"""On a CPU, members × batch size × image pixels stays within this, bounding the activations' memory."""
CPU_PIXELS = 2**13
"""Under ``auto`` on a CPU, runs train together only when a batch holds at most this many
pixels (batch size × height × width): beyond, each candidate's convolutions keep the core
busy on their own and batching gains nothing (``benchmarks/candidate_training.py``, one
thread, 2026-12-05, lone networks channels-last: 1.5-2.5× at the ``quick`` preset's 4,096
pixels, 1.24-1.30× at ``cifar10-cpu``'s images in batches of 32 (8,192 pixels), 0.97-1.03× in
batches of 64 (16,384), 0.75× at the preset's 32,768 and 0.63× at the paper's 262,144)."""
GPU_MAX_MEMBERS = 128
"""On a GPU, at most this many runs train together, fewer where their activations would not
fit (:data:`GPU_MEMORY_SHARE`). The candidates are small for a GPU (a ``quick`` network's
step is a few hundred kernels of microseconds' work each), so members mostly fill capacity a
lone network leaves idle. No GPU speed-up has been measured yet
(``benchmarks/candidate_training.py --oracle --device cuda``)."""
GPU_BYTES_PER_PIXEL = 12 * 2**10
"""The activation memory one member keeps for the backward pass, per pixel of its batch: a
bound for NAS-Bench-201 up to the paper's size (counted with ``saved_tensors_hooks``: the
costliest cell, a 3×3 convolution on every edge, keeps 1.3 KB at the ``quick`` preset's C=8,
N=1 and 10.6 KB at the paper's C=16, N=5; sampled cells 1.2 KB, 2.1 KB at ``cifar10-cpu``'s
C=8, N=2, and 9.7 KB)."""
GPU_MEMORY_SHARE = 0.5
"""On a GPU, a group's activations stay within this share of the device's total memory."""

Run = tuple[str, int]
"""An ``(arch, seed)`` pair."""


class MembersDivergedError(DivergedError):
    """Some members of a stacked model diverged.

    Attributes:
        members: their slots.
    """

    def __init__(self, members: list[int], losses: list[float]) -> None:
        super().__init__(f"training diverged for member(s) {members} (losses {losses}); lower the learning rate")
        self.members = members


def trainer_mode() -> str:
    """The trainer chosen by ``CONDNAS_TRAINER`` (``"auto"`` when unset).

    Raises:
        ConfigError: the variable holds something other than :data:`TRAINERS`.
    """
    mode = os.environ.get(TRAINER_ENV, "auto").strip().lower() or "auto"
    if mode not in TRAINERS:
        raise ConfigError(f"{TRAINER_ENV}={mode!r} is not a trainer; choose one of {list(TRAINERS)}")
    return mode


def uses_batched(space: Any, n_runs: int) -> bool:
    """Whether :func:`train_runs` trains ``n_runs`` runs of ``space`` together (see the module doc)."""
    mode = trainer_mode()
    if mode == "sequential" or not hasattr(space, "stack_networks"):
        return False
    return n_runs >= (1 if mode == "batched" else 2)


def group_size(space: Any, train: Split, batch_size: int, device: torch.device) -> int:
    """How many runs train together on ``train`` with ``batch_size`` on ``device``.

    1 (one at a time) when the space cannot stack its networks, under
    ``CONDNAS_TRAINER=sequential``, or — under ``auto`` — on a CPU when a batch holds more
    than :data:`CPU_PIXELS` pixels. Else, on a CPU (or any device but CUDA), as many as
    :data:`MAX_MEMBERS` and :data:`PIXEL_BUDGET` allow; on a CUDA GPU, as many as
    :data:`GPU_MAX_MEMBERS` allows and as fit in :data:`GPU_MEMORY_SHARE` of its memory at
    :data:`GPU_BYTES_PER_PIXEL` (at least 1). The answer depends on the device's total
    memory, never on what is free at the moment, so the oracle and grid search form the same
    groups.
    """
    mode = trainer_mode()
    if mode == "sequential" or not hasattr(space, "stack_networks"):
        return 1
    pixels = max(1, min(batch_size, len(train)) * math.prod(train.x.shape[2:]))
    device = torch.device(device)
    if device.type == "cuda":
        budget = int(GPU_MEMORY_SHARE * _device_memory(device)) // (GPU_BYTES_PER_PIXEL * pixels)
        return max(1, min(GPU_MAX_MEMBERS, budget))
    if mode == "auto" and pixels > CPU_PIXELS:
        return 1
    return max(1, min(MAX_MEMBERS, PIXEL_BUDGET // pixels))


def _device_memory(device: torch.device) -> int:
    """Total memory of a CUDA ``device``, in bytes."""
    return torch.cuda.get_device_properties(device).total_memory


def candidate_groups(candidates: list[str], size: int) -> list[list[str]]:
    """``candidates`` cut into consecutive groups of near-equal sizes, at most ``size`` each.

    Raises:
        ConfigError: ``size`` is below 1.
    """
    if size < 1:
        raise ConfigError(f"a group holds at least one candidate, got size {size}")
    count = -(-len(candidates) // size)
    bounds = [round(i * len(candidates) / count) for i in range(count + 1)]
    return [candidates[a:b] for a, b in zip(bounds, bounds[1:])]


def train_runs(space: Any, runs: list[Run], train: Split, evaluations: dict[str, Split], protocol: TrainProtocol,
               device: torch.device) -> dict[Run, dict[str, float]]:
    """Train every ``(arch, seed)`` of ``runs`` on ``train`` and evaluate it on each named split.

    Returns:
        ``{(arch, seed): {"<name>_acc", "<name>_loss" for each split, "train_seconds"}}``; a
        stacked group's time is shared equally among its runs.

    Raises:
        DivergedError: a run's loss became NaN or infinite.
    """
    if uses_batched(space, len(runs)):
        return train_batched(space, runs, train, evaluations, protocol, device)
    return {(arch, seed): space.train_candidate(arch, train, evaluations, protocol, seed, device)
            for arch, seed in runs}


def train_batched(space: Any, runs: list[Run], train: Split, evaluations: dict[str, Split],
                  protocol: TrainProtocol, device: torch.device) -> dict[Run, dict[str, float]]:
    """:func:`train_runs` with all runs as members of ``space.stack_networks``, trained together.

    Each trained network is then evaluated on its own by :func:`harness.training.evaluate`.
    """
    start = time.perf_counter()
    model = space.stack_networks([arch for arch, _ in runs],
                                 [init_candidate(space, arch, seed) for arch, seed in runs]).to(device)
    try:
        train_members(model, train.to(device), protocol, [derive_seed(seed, arch, "order") for arch, seed in runs])
    except MembersDivergedError as error:
        raise DivergedError(f"training diverged for (arch, seed) {[runs[k] for k in error.members]}; "
                            "lower the learning rate") from error
    networks = [network.to(device) for network in model.unstack()]
    splits = {name: split.to(device) for name, split in evaluations.items()}
    results = {}
    for run, network in zip(runs, networks):
        results[run] = {}
        for name, split in splits.items():
            evaluation = evaluate(network, split)
            results[run].update({f"{name}_acc": evaluation.acc, f"{name}_loss": evaluation.loss})
    seconds = (time.perf_counter() - start) / len(runs)
    return {run: {**result, "train_seconds": seconds} for run, result in results.items()}


def train_members(model: torch.nn.Module, train: Split, protocol: TrainProtocol,
                  order_seeds: list[int]) -> torch.nn.Module:
    """Train a stacked ``model`` of ``K = len(order_seeds)`` members in place and return it.

    Member ``k`` follows :func:`harness.training.train_model` with seed ``order_seeds[k]``:
    its own batch order, the same SGD and cosine schedule (one optimizer over the stacked
    parameters is one per member, the update being elementwise). The loss is the sum of the
    members' mean cross-entropies, so each member's gradient is its own.

    Raises:
        MembersDivergedError: some member's loss became NaN or infinite.
    """
    retain_freed_memory()
    n = len(train)
    batch_size = min(protocol.batch_size, n)
    steps = steps_per_epoch(n, batch_size)
    optimizer, schedule = sgd_with_cosine(model.parameters(), protocol, protocol.epochs * steps)
    generators = [torch.Generator().manual_seed(seed) for seed in order_seeds]
    model.train()
    for _ in range(protocol.epochs):
        orders = torch.stack([torch.randperm(n, generator=g) for g in generators]).t().to(train.x.device)
        for step in range(steps):
            index = orders[step * batch_size:(step + 1) * batch_size]  # B×K: member k's batch in column k
            logits = model(train.x[index])  # B×K×classes
            losses = F.cross_entropy(logits.transpose(1, 2), train.y[index], reduction="none").mean(0)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            schedule.step()
        diverged = (~torch.isfinite(losses)).nonzero().flatten().tolist()
        if diverged:
            raise MembersDivergedError(diverged, [losses[k].item() for k in diverged])
    return model
