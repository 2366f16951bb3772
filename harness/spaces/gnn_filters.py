"""The discrete space of GNN convolution filters of HCDC's appendix J.

Ding et al., "Calibrated Dataset Condensation for Faster Hyperparameter Search", appendix J
(and Table 4 for what each filter computes): ten convolution filters — GCN, SAGE-Mean,
SAGE-Max, GAT, GIN-ε, GIN-0, SGC (K=2), SGC (K=3), ChebNet (K=2), ChebNet (K=3) — times a
width in {128, 256} times a depth in {2, 4}: 40 models, each built from PyTorch Geometric's
layers (``torch_geometric.nn``). Widths and depths are parameters, so CPU presets can shrink them.

A model stacks ``depth`` layers of one filter, ``in_channels → width → … → width → num_classes``,
with ReLU and dropout between layers. Candidates are strings ``"<filter>-w<width>-d<depth>"``,
e.g. ``"gcn-w128-d2"`` or ``"gin-eps-w256-d4"``. GCN, SGC and ChebNet use edge weights when a
graph has them (e.g. a learned condensed adjacency); SAGE, GAT and GIN treat every edge alike.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import ConfigError
from harness.spaces._params import SpaceParams, check_dropout, check_int, check_int_list
from harness.types import GraphSplit

FILTERS: tuple[str, ...] = ("gcn", "sage-mean", "sage-max", "gat", "gin-eps", "gin-0",
                            "sgc-k2", "sgc-k3", "cheb-k2", "cheb-k3")
"""The ten filters of appendix J, in the paper's order."""

WEIGHTED: frozenset[str] = frozenset({"gcn", "sgc-k2", "sgc-k3", "cheb-k2", "cheb-k3"})
"""Filters whose PyG layer takes edge weights."""

_EXAMPLE = "gcn-w128-d2"


def parse_candidate(arch: str) -> tuple[str, int, int]:
    """``(filter, width, depth)`` of a candidate string such as ``"sage-max-w256-d4"``.

    Raises:
        ConfigError: not ``"<filter>-w<width>-d<depth>"`` with a known filter and positive ints.
    """
    parts = arch.rsplit("-", 2) if isinstance(arch, str) else []
    if (len(parts) != 3 or parts[0] not in FILTERS or not parts[1].startswith("w") or not parts[2].startswith("d")
            or not parts[1][1:].isdigit() or not parts[2][1:].isdigit()):
        raise ConfigError(f"invalid GNN candidate {arch!r}: expected '<filter>-w<width>-d<depth>' with a "
                          f"filter in {list(FILTERS)}, e.g. {_EXAMPLE!r}")
    width, depth = int(parts[1][1:]), int(parts[2][1:])
    if width < 1 or depth < 1:
        raise ConfigError(f"invalid GNN candidate {arch!r}: width and depth must be positive")
    return parts[0], width, depth


def format_candidate(filter_name: str, width: int, depth: int) -> str:
    """The candidate string of one filter, width and depth."""
    return f"{filter_name}-w{width}-d{depth}"


def _layer_factory(filter_name: str, heads: int) -> Callable[[int, int, bool], nn.Module]:
    """A function ``(in, out, last) -> PyG layer`` of one filter."""
    from torch_geometric.nn import ChebConv, GATConv, GCNConv, GINConv, SAGEConv, SGConv

    def gin(train_eps: bool) -> Callable[[int, int, bool], nn.Module]:
        return lambda a, b, last: GINConv(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b)),
                                          train_eps=train_eps)

    def gat(a: int, b: int, last: bool) -> nn.Module:
        if last or b % heads:
            return GATConv(a, b, heads=1)
        return GATConv(a, b // heads, heads=heads)

    factories: dict[str, Callable[[int, int, bool], nn.Module]] = {
        "gcn": lambda a, b, last: GCNConv(a, b),
        "sage-mean": lambda a, b, last: SAGEConv(a, b, aggr="mean"),
        "sage-max": lambda a, b, last: SAGEConv(a, b, aggr="max"),
        "gat": gat,
        "gin-eps": gin(True),
        "gin-0": gin(False),
        "sgc-k2": lambda a, b, last: SGConv(a, b, K=2),
        "sgc-k3": lambda a, b, last: SGConv(a, b, K=3),
        "cheb-k2": lambda a, b, last: ChebConv(a, b, K=2),
        "cheb-k3": lambda a, b, last: ChebConv(a, b, K=3),
    }
    return factories[filter_name]


class FilterGNN(nn.Module):
    """``depth`` layers of one PyG convolution with ReLU and dropout between them.

    Args:
        filter_name: one of :data:`FILTERS`.
        in_channels, width, num_classes: feature, hidden and output sizes.
        depth: number of layers (≥ 1).
        dropout: dropout before every layer but the first.
        heads: GAT attention heads of the hidden layers (``width`` must divide by it; else 1).
    """

    def __init__(self, filter_name: str, in_channels: int, width: int, num_classes: int, depth: int,
                 dropout: float, heads: int) -> None:
        super().__init__()
        make = _layer_factory(filter_name, heads)
        sizes = [in_channels] + [width] * (depth - 1) + [num_classes]
        self.convs = nn.ModuleList(make(a, b, i == depth - 1) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))
        self.weighted = filter_name in WEIGHTED
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``N×num_classes`` of node features ``x`` (``N×F``) on the graph ``edge_index`` (``2×E``)."""
        h = x
        for i, conv in enumerate(self.convs):
            if i > 0:
                h = F.dropout(F.relu(h), self.dropout, self.training)
            h = conv(h, edge_index, edge_weight) if self.weighted else conv(h, edge_index)
        return h


class GNNFilterSpace(SpaceParams):
    """Appendix J's space: ``filters × widths × depths`` PyG models (40 by default).

    ``__init__`` only stores its parameters; they are checked when used.

    Args:
        filters: the filters of the space (default: all of :data:`FILTERS`).
        widths: hidden widths (default ``[128, 256]``).
        depths: numbers of layers (default ``[2, 4]``).
        dropout: dropout between layers.
        heads: GAT heads in hidden layers.
        in_channels: node feature dimension ``F`` (set by the sweep from the task).
        num_classes: classes (set by the sweep from the task).
    """

    def __init__(self, filters: list[str] | None = None, widths: list[int] | None = None,
                 depths: list[int] | None = None, dropout: float = 0.5, heads: int = 8,
                 in_channels: int = 1433, num_classes: int = 7) -> None:
        self.filters = list(FILTERS) if filters is None else list(filters)
        self.widths = [128, 256] if widths is None else list(widths)
        self.depths = [2, 4] if depths is None else list(depths)
        self.dropout = dropout
        self.heads = heads
        self.in_channels = in_channels
        self.num_classes = num_classes

    def all_archs(self) -> list[str]:
        """Every candidate, filters varying slowest and depths fastest."""
        self.check()
        return [format_candidate(f, w, d) for f, w, d in itertools.product(self.filters, self.widths, self.depths)]

    def canonical(self, arch: str) -> str:
        """``arch`` itself once checked (no two candidates of this space are equivalent).

        Raises:
            ConfigError: ``arch`` is malformed or not in this space.
        """
        filter_name, width, depth = parse_candidate(arch)
        if filter_name not in self.filters or width not in self.widths or depth not in self.depths:
            raise ConfigError(f"GNN candidate {arch!r} is not in this space: filters {self.filters}, "
                              f"widths {self.widths}, depths {self.depths}")
        return format_candidate(filter_name, width, depth)

    def sample(self, p: int, seed: int, drop_disconnected: bool = True, drop_isomorphs: bool = True) -> list[str]:
        """``p`` distinct candidates in the order of ``numpy.random.default_rng(seed)``'s permutation.

        ``drop_disconnected`` / ``drop_isomorphs`` are accepted for the common space interface
        and have no effect here.

        Raises:
            ConfigError: ``p`` below 1 or above the size of the space.
        """
        archs = self.all_archs()
        if p < 1 or p > len(archs):
            raise ConfigError(f"sample size p must be between 1 and {len(archs)} (the size of this space), got {p}")
        order = np.random.default_rng(seed).permutation(len(archs))[:p]
        return [archs[i] for i in order]

    def build(self, arch: str) -> FilterGNN:
        """The PyG model of ``arch``, called as ``model(x, edge_index, edge_weight)``. Weights come
        from torch's global generator.

        Raises:
            ConfigError: ``arch`` is malformed or not in this space.
            ImportError: PyTorch Geometric is not installed.
        """
        self.check()
        filter_name, width, depth = parse_candidate(self.canonical(arch))
        try:
            return FilterGNN(filter_name, self.in_channels, width, self.num_classes, depth, self.dropout, self.heads)
        except ImportError as exc:
            raise ImportError("the gnn_filters space needs PyTorch Geometric: pip install 'condnas[graph]' "
                              "(or pip install torch_geometric)") from exc

    def train_candidate(self, arch: str, train: GraphSplit, evaluations: dict[str, GraphSplit], protocol: Any,
                        seed: int, device: torch.device) -> dict[str, float]:
        """Train ``arch`` full-batch on ``train``'s labelled nodes and evaluate it on each named split
        (:func:`harness.graph_training.train_graph_candidate`)."""
        from harness.graph_training import train_graph_candidate

        return train_graph_candidate(self, arch, train, evaluations, protocol, seed, device)

    def check(self) -> None:
        """Raise ``ConfigError`` naming the first space parameter that is out of range."""
        unknown = [f for f in self.filters if f not in FILTERS]
        if unknown or not self.filters:
            raise ConfigError(f"space parameter filters must be a non-empty subset of {list(FILTERS)}, "
                              f"got {self.filters!r}")
        for name in ("widths", "depths"):
            check_int_list(name, getattr(self, name))
        for name in ("heads", "in_channels", "num_classes"):
            check_int(name, getattr(self, name))
        check_dropout(self.dropout)
