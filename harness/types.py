"""The plain data objects that flow through a sweep.

A :class:`Task` is what a condenser condenses and the oracle trains on; a
:class:`ProxyData` is what a condenser returns; a :class:`SearchResult` is what a
search algorithm returns; a :class:`RunContext` carries the seed, device, cache
and budget into every plugin call.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

MODALITIES = ("image", "graph")


@dataclass
class Split:
    """One labelled split of an image task.

    Attributes:
        x: float tensor ``N×C×H×W``, normalized per channel.
        y: int64 tensor ``N`` of class indices.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "Split":
        """Return the split with both tensors on ``device``."""
        return Split(self.x.to(device), self.y.to(device))

    def subset(self, index: torch.Tensor) -> "Split":
        """Return the rows selected by ``index`` (a long tensor of positions)."""
        return Split(self.x[index], self.y[index])

    def state(self) -> dict[str, Any]:
        """Plain tensors for the cache (CPU, detached), tagged with the split's kind."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": type(self).__name__,
                **{k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in fields.items()}}

    @staticmethod
    def from_state(state: dict[str, Any]) -> "Split":
        """Rebuild a split (of the kind it was) from :meth:`state`."""
        kinds = {cls.__name__: cls for cls in (Split, GraphSplit)}
        fields = dict(state)
        return kinds[fields.pop("kind")](**fields)


@dataclass
class GraphSplit(Split):
    """One split of a node-classification task: a whole graph and the nodes it labels.

    Attributes:
        x: float node features ``N×F``.
        y: int64 node labels ``N``.
        edge_index: int64 ``2×E`` (source, target) pairs.
        edge_weight: float ``E`` edge weights, or ``None`` for an unweighted graph.
        mask: bool ``N``, the nodes whose labels this split trains or scores on
            (``None``: all nodes).
    """

    edge_index: torch.Tensor = field(default_factory=lambda: torch.empty(2, 0, dtype=torch.long))
    edge_weight: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.mask.sum()) if self.mask is not None else int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "GraphSplit":
        """Return the graph with every tensor on ``device``."""
        return GraphSplit(self.x.to(device), self.y.to(device), self.edge_index.to(device),
                          None if self.edge_weight is None else self.edge_weight.to(device),
                          None if self.mask is None else self.mask.to(device))

    def subset(self, index: torch.Tensor) -> "GraphSplit":
        """The subgraph induced by the nodes ``index`` (edges kept when both ends are kept)."""
        keep = torch.zeros(self.x.shape[0], dtype=torch.bool, device=self.x.device)
        keep[index] = True
        new_id = torch.full((self.x.shape[0],), -1, dtype=torch.long, device=self.x.device)
        new_id[index] = torch.arange(len(index), device=self.x.device)
        both = keep[self.edge_index[0]] & keep[self.edge_index[1]]
        return GraphSplit(self.x[index], self.y[index], new_id[self.edge_index[:, both]],
                          None if self.edge_weight is None else self.edge_weight[both],
                          None if self.mask is None else self.mask[index])


@dataclass
class Task:
    """A dataset with train / val / test splits.

    Attributes:
        name: registry name of the dataset (``"digits"``, ``"cifar10"``, ...).
        modality: ``"image"`` or ``"graph"``.
        num_classes: number of classes.
        train, val, test: the three splits.
        meta: free-form description (source, resolution, normalization stats).
    """

    name: str
    modality: str
    num_classes: int
    train: Split
    val: Split
    test: Split
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        """Number of image channels (``C`` of ``N×C×H×W``)."""
        return int(self.train.x.shape[1])

    @property
    def image_size(self) -> int:
        """Side length of the (square) images."""
        return int(self.train.x.shape[-1])

    @property
    def val_fraction(self) -> float:
        """The original ``|val| / (|train| + |val|)``, kept by proxies that split."""
        return len(self.val) / (len(self.train) + len(self.val))


@dataclass
class ProxyData:
    """What a condenser returns: a small train split and a small val split.

    Attributes:
        train: the proxy's training split (synthetic or selected).
        val: the proxy's validation split, used by search algorithms to score.
        meta: ``ipc``, ``source_indices`` for coresets, condenser diagnostics.
    """

    train: Split
    val: Split
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    """What a search algorithm returns.

    Attributes:
        scores: one number per candidate, in the candidates' order; higher is better.
        selected: the chosen candidate (an architecture string).
        trace: ``(wall_seconds, best_candidate_so_far)`` pairs in time order.
        meta: anything else worth keeping (e.g. an off-candidate-set choice).
    """

    scores: list[float]
    selected: str
    trace: list[tuple[float, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def exhaustive(cls, candidates: list[str], scores: list[float], times: list[float],
                   meta: dict[str, Any] | None = None) -> "SearchResult":
        """The result of scoring ``candidates`` in order, candidate ``i`` scored at ``times[i]``
        seconds (NaN scores: not reached): the trace records each strict improvement, and the
        selection is the first best candidate (the first candidate when none was scored)."""
        trace: list[tuple[float, str]] = []
        best = -math.inf
        for arch, score, seconds in zip(candidates, scores, times):
            if score > best:
                best = score
                trace.append((float(seconds), arch))
        selected = trace[-1][1] if trace else candidates[0]
        return cls(scores=list(scores), selected=selected, trace=trace, meta=dict(meta or {}))


@dataclass
class TrainProtocol:
    """How a candidate is trained: the paper's SGD with a cosine schedule.

    The oracle uses the task's protocol; search algorithms reuse it on the proxy.
    """

    epochs: int = 50
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainProtocol":
        """Build from a config mapping; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown protocol keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The protocol as a plain mapping (for cache keys and rows)."""
        return dataclasses.asdict(self)


@dataclass
class Deadline:
    """A wall-clock budget counted from construction; ``seconds=None`` never expires."""

    seconds: float | None
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.seconds is not None and self.elapsed() >= self.seconds


@dataclass
class RunContext:
    """Everything a plugin call may need beyond its own parameters.

    Attributes:
        seed: the cell's seed; plugins must be deterministic given it.
        device: where tensors and models live.
        protocol: the task's training protocol.
        cache: the content-addressed cache, for plugins that reuse other stages.
        rank_by: what "better on validation" means: ``"val_acc"`` or ``"val_loss"``.
        budget_seconds: a wall-clock budget for iterative plugins (``None``: unbounded); start
            counting with :meth:`deadline`.
        progress: optional callback taking a short status string.
        upstream: set by a sweep: returns another condenser's proxy of the same task and
            seed through the shared cache (see :meth:`proxy_from`).
    """

    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    protocol: TrainProtocol = field(default_factory=TrainProtocol)
    cache: Any = None
    rank_by: str = "val_acc"
    budget_seconds: float | None = None
    progress: Callable[[str], None] | None = None
    upstream: Callable[[str, dict[str, Any], int | None], "ProxyData"] | None = None

    def proxy_from(self, condenser: str, params: dict[str, Any], task: Task, ipc: int | None) -> ProxyData:
        """Another condenser's proxy of ``task`` at ``ipc`` under this context's seed.

        Inside a sweep it comes from the shared cache (computed once, reused by every plugin
        that builds on it, e.g. HCDC on DC's synthetic train set); its ``meta`` then holds the
        ``condense_seconds`` it cost. Outside a sweep it is computed directly.
        """
        if self.upstream is not None:
            return self.upstream(condenser, params, ipc)
        from harness.registry import CONDENSERS

        start = time.perf_counter()
        proxy = CONDENSERS.create(condenser, **params).condense(task, ipc, self)
        proxy.meta = {**proxy.meta, "condense_seconds": time.perf_counter() - start}
        return proxy

    def deadline(self) -> Deadline:
        """``budget_seconds`` counted from now."""
        return Deadline(self.budget_seconds)

    def generator(self, salt: str = "") -> torch.Generator:
        """A CPU ``torch.Generator`` seeded from the cell seed and ``salt``."""
        from harness.seeding import derive_seed

        return torch.Generator().manual_seed(derive_seed(self.seed, salt))
