"""A contextual stochastic block model (CSBM): a synthetic node-classification graph.

Deshpande, Montanari, Mossel & Sen, "Contextual Stochastic Block Models", NeurIPS 2018, in
its usual multi-class form: node ``i`` has a class ``y_i`` (classes balanced), features
``x_i = μ_{y_i} + ε_i`` with ``ε_i ~ N(0, I_F)`` and class means ``μ_c = signal · g_c / √F``
(``g_c ~ N(0, I_F)``, so ``‖μ_c‖ ≈ signal``), and undirected edges of which a fraction
``homophily`` joins nodes of the same class. With weak features and homophilous edges a
graph filter beats a per-node classifier, which is what graph tests need to see.

Used by the tests and the tiny graph presets; the graph is small and generated in
milliseconds.
"""

from __future__ import annotations

import numpy as np
import torch

from harness._values import is_int, is_number
from harness.errors import ConfigError
from harness.types import GraphSplit, Task


def load_csbm(
    *,
    num_nodes: int = 300,
    num_classes: int = 3,
    num_features: int = 16,
    avg_degree: float = 6.0,
    homophily: float = 0.8,
    signal: float = 1.5,
    train_per_class: int = 10,
    val_per_class: int = 20,
    seed: int = 0,
) -> Task:
    """Generate a CSBM graph as a node-classification :class:`Task`.

    Args:
        num_nodes: ``N``; classes get ``N // K`` or ``N // K + 1`` nodes.
        num_classes: ``K`` ≥ 2.
        num_features: ``F``, the feature dimension.
        avg_degree: expected degree; ``N · avg_degree / 2`` undirected edges are drawn
            (duplicates and self-loops dropped, so the realized degree is slightly lower).
        homophily: probability that a drawn edge joins two nodes of the same class.
        signal: ``‖μ_c‖``, the strength of the feature signal relative to unit noise.
        train_per_class, val_per_class: labelled nodes per class in the train and val
            masks; every other node is in the test mask.
        seed: seed of every draw.

    Returns:
        A graph task whose three splits share one graph (``x`` ``N×F``, symmetric
        ``edge_index`` ``2×E``) and differ in their masks.

    Raises:
        ConfigError: a parameter out of range, or classes too small for the masks.
    """
    _check(num_nodes, num_classes, num_features, avg_degree, homophily, signal, train_per_class,
           val_per_class)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(num_nodes) % num_classes)
    means = signal * rng.standard_normal((num_classes, num_features)) / np.sqrt(num_features)
    x = means[y] + rng.standard_normal((num_nodes, num_features))
    edge_index = _edges(y, num_classes, avg_degree, homophily, rng)
    masks = _masks(y, num_classes, train_per_class, val_per_class, rng)
    x_t, y_t = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    splits = {name: GraphSplit(x_t, y_t, edge_index, None, mask) for name, mask in masks.items()}
    same = (y_t[edge_index[0]] == y_t[edge_index[1]]).float().mean().item() if edge_index.numel() else float("nan")
    meta = {"source": "csbm", "seed": seed, "num_nodes": num_nodes, "num_edges": int(edge_index.shape[1]),
            "edge_homophily": same}
    return Task(name="csbm", modality="graph", num_classes=num_classes, meta=meta, **splits)


def _edges(y: np.ndarray, num_classes: int, avg_degree: float, homophily: float,
           rng: np.random.Generator) -> torch.Tensor:
    """Symmetric, coalesced ``2×E`` edges: each drawn edge joins a uniform node to a uniform
    node of its own class with probability ``homophily``, else of another class."""
    n = len(y)
    members = [np.flatnonzero(y == c) for c in range(num_classes)]
    m = int(round(n * avg_degree / 2))
    source = rng.integers(0, n, size=m)
    same = rng.random(m) < homophily
    shift = rng.integers(1, num_classes, size=m)
    target_class = np.where(same, y[source], (y[source] + shift) % num_classes)
    target = np.array([members[c][rng.integers(len(members[c]))] for c in target_class], dtype=np.int64)
    keep = source != target
    pairs = np.concatenate([np.stack([source[keep], target[keep]]), np.stack([target[keep], source[keep]])], axis=1)
    pairs = np.unique(pairs, axis=1)
    return torch.from_numpy(pairs).long()


def _masks(y: np.ndarray, num_classes: int, train_per_class: int, val_per_class: int,
           rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Per class, the first ``train_per_class`` shuffled nodes train, the next val, the rest test."""
    masks = {name: torch.zeros(len(y), dtype=torch.bool) for name in ("train", "val", "test")}
    for c in range(num_classes):
        nodes = torch.from_numpy(rng.permutation(np.flatnonzero(y == c)))
        masks["train"][nodes[:train_per_class]] = True
        masks["val"][nodes[train_per_class:train_per_class + val_per_class]] = True
        masks["test"][nodes[train_per_class + val_per_class:]] = True
    return masks


def _check(num_nodes: int, num_classes: int, num_features: int, avg_degree: float, homophily: float,
           signal: float, train_per_class: int, val_per_class: int) -> None:
    for name, value, minimum in (("num_nodes", num_nodes, 2), ("num_classes", num_classes, 2),
                                 ("num_features", num_features, 1), ("train_per_class", train_per_class, 1),
                                 ("val_per_class", val_per_class, 1)):
        if not is_int(value) or value < minimum:
            raise ConfigError(f"csbm parameter {name!r} must be an integer >= {minimum}, got {value!r}")
    for name, value in (("avg_degree", avg_degree), ("signal", signal)):
        if not is_number(value) or value < 0:
            raise ConfigError(f"csbm parameter {name!r} must be a non-negative number, got {value!r}")
    if not is_number(homophily) or not 0 <= homophily <= 1:
        raise ConfigError(f"csbm parameter 'homophily' must be a number in [0, 1], got {homophily!r}")
    smallest = num_nodes // num_classes
    if train_per_class + val_per_class >= smallest:
        raise ConfigError(
            f"csbm: classes have {smallest} nodes, too few for {train_per_class} train + {val_per_class} val "
            f"nodes and at least one test node; raise num_nodes or lower train_per_class / val_per_class")
