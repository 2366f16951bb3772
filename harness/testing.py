"""The plugin conformance kit: the checks every condenser and search algorithm must pass.

Use it in your own plugin's tests::

    from harness.testing import check_condenser

    def test_my_condenser_conforms():
        check_condenser(MyCondenser())

Each check raises ``AssertionError`` with a message saying what the plugin got wrong.
The tiny tasks and space below keep the checks to a second or two on a CPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from harness.data import load_task
from harness.plugin import Condenser, SearchAlgorithm
from harness.proxy import split_per_class
from harness.types import GraphSplit, ProxyData, RunContext, SearchResult, Split, Task, TrainProtocol


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


def tiny_graph_task(num_classes: int = 3, seed: int = 0) -> Task:
    """A synthetic node-classification task: a 120-node contextual stochastic block model
    (:func:`harness.data.csbm.load_csbm`) with 8 train, 8 val and 24 test nodes per class."""
    from harness.data.csbm import load_csbm

    return load_csbm(num_nodes=40 * num_classes, num_classes=num_classes, num_features=8, avg_degree=4.0,
                     train_per_class=8, val_per_class=8, seed=seed)


def tiny_task(modality: str) -> Task:
    """The tiny task of ``modality`` (``"image"`` or ``"graph"``)."""
    return tiny_graph_task() if modality == "graph" else tiny_image_task()


def tiny_space(task: Task, spec: dict[str, Any] | None = None) -> Any:
    """A space small enough to train in milliseconds on ``task``: the space ``spec``
    (``{"name": ..., "params": {...}}``, e.g. a search algorithm's ``test_space``) when given,
    else NAS-Bench-201 cells for images and narrow polynomial filters for graphs."""
    from harness.spaces import get_space

    if spec is not None:
        return get_space(spec["name"], **spec.get("params", {}), in_channels=task.in_channels,
                         num_classes=task.num_classes)
    if task.modality == "graph":
        return get_space("polynomial_filter", hidden=8, in_channels=task.in_channels, num_classes=task.num_classes)
    return get_space("nasbench201", C=4, N=1, in_channels=task.in_channels, num_classes=task.num_classes)


def tiny_context(seed: int = 0, budget_seconds: float | None = None, rank_by: str = "val_acc") -> RunContext:
    """A CPU :class:`RunContext` with a two-epoch protocol."""
    return RunContext(seed=seed, device=torch.device("cpu"),
                      protocol=TrainProtocol(epochs=2, batch_size=16, lr=0.05),
                      rank_by=rank_by, budget_seconds=budget_seconds)


def check_condenser(condenser: Condenser, task: Task | None = None, ipc: int = 4, seed: int = 0) -> ProxyData:
    """Check a condenser: modality declared, shapes, dtypes, per-class counts, determinism.

    Without ``task`` the condenser is checked on its ``test_task`` if it declares one, else on
    the tiny task of every modality it declares.
    Per-class counts: on an image task, ``ipc`` proxy images per class split into train and val
    (at least one each), or — for a cross-validation proxy whose ``meta["val_is_train"]`` is
    true — ``ipc`` images per class in one pool that is both train and val (a proxy that instead
    sets its own training epochs in ``meta["epochs"]``, early stopping, keeps the task's data);
    on a graph task, ``ipc`` proxy training nodes per class and
    ``max(1, round(ipc · |val_c| / |train_c|))`` validation nodes (the task's own val-to-train
    ratio of the class), counted over each split's masked nodes.

    Returns:
        The proxy from the first call (on the first declared modality), for further
        plugin-specific assertions.
    """
    type(condenser).check_declaration()
    if task is not None:
        tasks = [task]
    elif condenser.test_task is not None:
        tasks = [load_task(condenser.test_task["name"], **condenser.test_task["params"])]
    else:
        tasks = [tiny_task(m) for m in type(condenser).modalities]
    proxies = [_check_condenser_on(condenser, t, ipc, seed) for t in tasks]
    return proxies[0]


def _check_condenser_on(condenser: Condenser, task: Task, ipc: int, seed: int) -> ProxyData:
    assert condenser.unsupported_reason(task) is None, condenser.unsupported_reason(task)
    first = condenser.condense(task, ipc, tiny_context(seed))
    assert isinstance(first, ProxyData), f"condense must return ProxyData, got {type(first).__name__}"
    check = _check_graph_split if task.modality == "graph" else _check_split
    for name in ("train", "val"):
        check(getattr(first, name), task, f"proxy.{name}")
    if condenser.uses_ipc:
        _check_counts(first, task, ipc)
    second = condenser.condense(task, ipc, tiny_context(seed))
    for name in ("train", "val"):
        a, b = getattr(first, name), getattr(second, name)
        assert _same_split(a, b), (
            f"proxy.{name} differs between two calls with seed {seed}: condense must be deterministic")
    return first


def _check_counts(proxy: ProxyData, task: Task, ipc: int) -> None:
    if "epochs" in proxy.meta:  # the whole data, trained for fewer epochs (early stopping): no counts
        return
    if proxy.meta.get("val_is_train"):
        _check_pool_counts(proxy, task, ipc)
        return
    for c in range(task.num_classes):
        n_train, n_val = (_labelled_count(getattr(proxy, name), c) for name in ("train", "val"))
        if task.modality == "graph":
            have_train, have_val = (_labelled_count(getattr(task, name), c) for name in ("train", "val"))
            expected_val = max(1, round(ipc * have_val / have_train))
            assert (n_train, n_val) == (ipc, expected_val), (
                f"class {c}: {n_train} train / {n_val} val proxy nodes, expected ipc={ipc} train and "
                f"{expected_val} val (the task's val-to-train ratio {have_val}/{have_train})")
        else:
            assert n_train >= 1 and n_val >= 1, f"class {c}: {n_train} train / {n_val} val images; need >= 1 each"
            assert n_train + n_val == ipc, f"class {c}: {n_train} + {n_val} proxy images, expected ipc={ipc}"


def _check_pool_counts(proxy: ProxyData, task: Task, ipc: int) -> None:
    """A cross-validation proxy (``meta["val_is_train"]``) is one pool: ``val`` is ``train``, and it
    holds ``ipc`` images of every class."""
    assert _same_split(proxy.train, proxy.val), "meta says val_is_train but proxy.val differs from proxy.train"
    for c in range(task.num_classes):
        count = _labelled_count(proxy.train, c)
        assert count == ipc, f"class {c}: {count} images in the proxy pool, expected ipc={ipc}"


def _labelled_count(split: Split, c: int) -> int:
    labelled = split.y == c
    if isinstance(split, GraphSplit) and split.mask is not None:
        labelled = labelled & split.mask
    return int(labelled.sum())


def _same_split(a: Split, b: Split) -> bool:
    if not (torch.equal(a.x, b.x) and torch.equal(a.y, b.y)):
        return False
    if isinstance(a, GraphSplit):
        return (isinstance(b, GraphSplit) and torch.equal(a.edge_index, b.edge_index)
                and _same_optional(a.edge_weight, b.edge_weight) and _same_optional(a.mask, b.mask))
    return True


def _same_optional(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


def check_search_algo(algo: SearchAlgorithm, task: Task | None = None, candidates: list[str] | None = None,
                      seed: int = 0) -> SearchResult:
    """Check a search algorithm: one finite score per candidate, a valid selection,
    an ordered trace, determinism under a seed, and a zero budget that shortens the trace.

    Without ``task`` the algorithm is checked on the tiny task of every modality it declares
    (``candidates``, when given, must then suit each of their spaces), in the algorithm's
    ``test_space`` when it declares one. The proxy is a per-class
    split of the image train set, or the whole tiny graph with its train and val masks.

    Returns:
        The result of the first (unbudgeted) call on the first checked task.
    """
    type(algo).check_declaration()
    tasks = [task] if task is not None else [tiny_task(m) for m in type(algo).modalities]
    results = [_check_search_algo_on(algo, t, candidates, seed) for t in tasks]
    return results[0]


def _check_search_algo_on(algo: SearchAlgorithm, task: Task, candidates: list[str] | None,
                          seed: int) -> SearchResult:
    space = tiny_space(task, type(algo).test_space)
    candidates = candidates or space.sample(4, seed=0)
    if task.modality == "graph":
        proxy = ProxyData(train=task.train, val=task.val)
    else:
        generator = torch.Generator().manual_seed(seed)
        proxy = split_per_class(task.train, task.num_classes, task.val_fraction, generator)

    first = algo.search(space, candidates, proxy, tiny_context(seed))
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

    budgeted = algo.search(space, candidates, proxy, tiny_context(seed, budget_seconds=0.0))
    assert len(budgeted.scores) == len(candidates), "a budgeted search must still return one score per candidate"
    # Counted in recorded steps, not seconds: wall time on a shared machine is too noisy to compare.
    assert len(budgeted.trace) < len(first.trace), (
        f"with a zero budget the search recorded {len(budgeted.trace)} trace entries, no fewer than "
        f"unbudgeted ({len(first.trace)}): check ctx.budget_seconds before each unit of work")
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


def _check_graph_split(split: Split, task: Task, where: str) -> None:
    assert isinstance(split, GraphSplit), f"{where} must be a GraphSplit on a graph task, got {type(split).__name__}"
    n = len(split.y)
    assert split.x.dtype.is_floating_point, f"{where}.x must be floating point, got {split.x.dtype}"
    assert split.y.dtype == torch.int64, f"{where}.y must be int64 class indices, got {split.y.dtype}"
    assert split.x.dim() == 2 and split.x.shape == (n, task.train.x.shape[1]), (
        f"{where}.x has shape {tuple(split.x.shape)}, expected ({n}, {task.train.x.shape[1]}) node features")
    assert torch.isfinite(split.x).all(), f"{where}.x has non-finite values"
    assert n > 0 and int(split.y.min()) >= 0 and int(split.y.max()) < task.num_classes, (
        f"{where}.y is empty or has labels out of range")
    index = split.edge_index
    assert index.dtype == torch.int64 and index.dim() == 2 and index.shape[0] == 2, (
        f"{where}.edge_index must be int64 of shape 2×E, got {index.dtype} {tuple(index.shape)}")
    assert index.numel() == 0 or (int(index.min()) >= 0 and int(index.max()) < n), (
        f"{where}.edge_index refers to nodes outside 0..{n - 1}")
    if split.edge_weight is not None:
        assert split.edge_weight.shape == (index.shape[1],), (
            f"{where}.edge_weight has shape {tuple(split.edge_weight.shape)}, expected ({index.shape[1]},)")
        assert torch.isfinite(split.edge_weight).all(), f"{where}.edge_weight has non-finite values"
    assert split.mask is not None and split.mask.dtype == torch.bool and split.mask.shape == (n,), (
        f"{where}.mask must be a bool tensor of the {n} nodes it labels")
    assert bool(split.mask.any()), f"{where}.mask labels no node"


def _same_scores(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))
