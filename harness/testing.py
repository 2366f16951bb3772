"""The plugin conformance kit: the checks every condenser and search algorithm must pass.

Use it in your own plugin's tests::

    from harness.testing import check_condenser

    def test_my_condenser_conforms():
        check_condenser(MyCondenser())

Each check raises ``AssertionError`` with a message saying what the plugin got wrong.
The tiny task and space below keep the checks to a second or two on a CPU.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from harness.plugin import Condenser, SearchAlgorithm
from harness.proxy import split_per_class
from harness.types import ProxyData, RunContext, SearchResult, Split, Task, TrainProtocol


def tiny_image_task(num_classes: int = 3, per_class: int = 16, size: int = 8, channels: int = 1,
                    seed: int = 0) -> Task:
    """A synthetic image task: each class a Gaussian blob around its own random image.

    Train / val / test hold ``per_class``, ``per_class // 2`` and ``per_class // 2`` images
    per class; the classes are easy to separate, so a trained net beats chance clearly.
    """
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, channels, size, size, generator=generator)

    def draw(n_per_class: int) -> Split:
        y = torch.arange(num_classes).repeat_interleave(n_per_class)
        x = centers[y] + 0.8 * torch.randn(len(y), channels, size, size, generator=generator)
        return Split(x, y)

    return Task(name="tiny", modality="image", num_classes=num_classes, train=draw(per_class),
                val=draw(per_class // 2), test=draw(per_class // 2), meta={"source": "synthetic"})


def tiny_space(task: Task) -> Any:
    """A NAS-Bench-201 space small enough to train in milliseconds on ``task``."""
    from harness.spaces import get_space

    return get_space("nasbench201", C=4, N=1, in_channels=task.in_channels, num_classes=task.num_classes)


def tiny_context(seed: int = 0, budget_seconds: float | None = None, rank_by: str = "val_acc") -> RunContext:
    """A CPU :class:`RunContext` with a two-epoch protocol."""
    return RunContext(seed=seed, device=torch.device("cpu"),
                      protocol=TrainProtocol(epochs=2, batch_size=16, lr=0.05),
                      rank_by=rank_by, budget_seconds=budget_seconds)


def check_condenser(condenser: Condenser, task: Task | None = None, ipc: int = 4, seed: int = 0) -> ProxyData:
    """Check a condenser: modality declared, shapes, dtypes, per-class counts, determinism.

    Returns:
        The proxy from the first call, for further plugin-specific assertions.
    """
    type(condenser).check_declaration()
    task = task or tiny_image_task()
    assert condenser.unsupported_reason(task) is None, condenser.unsupported_reason(task)
    first = condenser.condense(task, ipc, tiny_context(seed))
    assert isinstance(first, ProxyData), f"condense must return ProxyData, got {type(first).__name__}"
    for name in ("train", "val"):
        _check_split(getattr(first, name), task, f"proxy.{name}")
    if condenser.uses_ipc:
        for c in range(task.num_classes):
            n_train = int((first.train.y == c).sum())
            n_val = int((first.val.y == c).sum())
            assert n_train >= 1 and n_val >= 1, f"class {c}: {n_train} train / {n_val} val images; need >= 1 each"
            assert n_train + n_val == ipc, f"class {c}: {n_train} + {n_val} proxy images, expected ipc={ipc}"
    second = condenser.condense(task, ipc, tiny_context(seed))
    for name in ("train", "val"):
        a, b = getattr(first, name), getattr(second, name)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y), (
            f"proxy.{name} differs between two calls with seed {seed}: condense must be deterministic")
    return first


def check_search_algo(algo: SearchAlgorithm, task: Task | None = None, candidates: list[str] | None = None,
                      seed: int = 0) -> SearchResult:
    """Check a search algorithm: one finite score per candidate, a valid selection,
    an ordered trace, determinism under a seed, and a budget that shortens the search.

    Returns:
        The result of the first (unbudgeted) call.
    """
    type(algo).check_declaration()
    task = task or tiny_image_task()
    space = tiny_space(task)
    candidates = candidates or space.sample(4, seed=0)
    generator = torch.Generator().manual_seed(seed)
    proxy = split_per_class(task.train, task.num_classes, task.val_fraction, generator)

    start = time.perf_counter()
    first = algo.search(space, candidates, proxy, tiny_context(seed))
    full_seconds = time.perf_counter() - start
    assert isinstance(first, SearchResult), f"search must return SearchResult, got {type(first).__name__}"
    assert len(first.scores) == len(candidates), (
        f"{len(first.scores)} scores for {len(candidates)} candidates: score every candidate")
    assert all(math.isfinite(s) for s in first.scores), f"non-finite scores without a budget: {first.scores}"
    assert first.selected in candidates or first.meta.get("off_candidate_selection"), (
        f"selected {first.selected!r} is not a candidate; record an off-set choice in meta")
    times = [t for t, _ in first.trace]
    assert times == sorted(times), f"trace times must be non-decreasing, got {times}"

    second = algo.search(space, candidates, proxy, tiny_context(seed))
    assert _same_scores(first.scores, second.scores) and first.selected == second.selected, (
        "two searches with the same seed disagree: search must be deterministic")

    start = time.perf_counter()
    budgeted = algo.search(space, candidates, proxy, tiny_context(seed, budget_seconds=0.0))
    budget_seconds = time.perf_counter() - start
    assert len(budgeted.scores) == len(candidates), "a budgeted search must still return one score per candidate"
    assert budget_seconds < full_seconds, (
        f"with a zero budget the search took {budget_seconds:.2f} s, no less than unbudgeted "
        f"({full_seconds:.2f} s): honour ctx.budget_seconds")
    return first


def _check_split(split: Split, task: Task, where: str) -> None:
    assert isinstance(split, Split), f"{where} must be a Split, got {type(split).__name__}"
    assert split.x.dtype.is_floating_point, f"{where}.x must be floating point, got {split.x.dtype}"
    assert split.y.dtype == torch.int64, f"{where}.y must be int64 class indices, got {split.y.dtype}"
    assert split.x.shape[1:] == task.train.x.shape[1:], (
        f"{where}.x has images of shape {tuple(split.x.shape[1:])}, the task's are {tuple(task.train.x.shape[1:])}")
    assert len(split.x) == len(split.y) > 0, f"{where}: {len(split.x)} images for {len(split.y)} labels"
    assert torch.isfinite(split.x).all(), f"{where}.x has non-finite values"
    assert int(split.y.min()) >= 0 and int(split.y.max()) < task.num_classes, f"{where}.y has labels out of range"


def _same_scores(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))
