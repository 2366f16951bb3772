"""Full-batch training and evaluation of node classifiers on one graph (both graph spaces).

A graph model is a ``torch.nn.Module`` called as ``model(*inputs)`` and returning ``N×K``
logits, one row per node. ``inputs`` is ``(x, edge_index, edge_weight)`` of a
:class:`harness.types.GraphSplit` unless the model defines ``graph_inputs(split) -> tuple``
to precompute what it needs from a graph once (a normalized operator, sparse features);
:func:`graph_inputs` picks the right one.

How the :class:`harness.types.TrainProtocol` maps onto the usual GNN recipe (Kipf & Welling,
ICLR 2017): every epoch is ONE full-batch step of Adam on the cross-entropy of the labelled
(masked) nodes; ``epochs`` is the number of steps, ``lr`` Adam's learning rate and
``weight_decay`` its L2 penalty, held constant (no schedule). ``batch_size``, ``momentum`` and
``nesterov`` describe minibatch SGD and are not used on graphs (Adam keeps its default betas).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from harness.errors import DivergedError
from harness.seeding import derive_seed
from harness.training import Evaluation, init_candidate
from harness.types import GraphSplit, TrainProtocol


def graph_inputs(model: torch.nn.Module, split: GraphSplit) -> tuple[Any, ...]:
    """What ``model`` is called with on ``split``'s graph: its ``graph_inputs(split)`` when it
    defines one, else ``(x, edge_index, edge_weight)``."""
    prepare = getattr(model, "graph_inputs", None)
    return prepare(split) if prepare is not None else (split.x, split.edge_index, split.edge_weight)


def labelled(split: GraphSplit) -> torch.Tensor:
    """Positions of the nodes ``split`` labels (all nodes when it has no mask)."""
    if split.mask is None:
        return torch.arange(len(split.y), device=split.y.device)
    return torch.nonzero(split.mask, as_tuple=True)[0]


def train_graph_model(model: torch.nn.Module, train: GraphSplit, protocol: TrainProtocol,
                      seed: int) -> torch.nn.Module:
    """Train ``model`` in place on the labelled nodes of ``train`` (on the model's device).

    ``protocol.epochs`` full-batch Adam steps (``lr``, ``weight_decay``) on the mean
    cross-entropy of the ``train.mask`` nodes, the forward pass running over the whole graph.
    Dropout draws from torch's global generator, seeded here with ``seed``.

    Raises:
        DivergedError: the loss became NaN or infinite.
    """
    inputs = graph_inputs(model, train)
    nodes = labelled(train)
    targets = train.y[nodes]
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay)
    torch.manual_seed(seed)
    model.train()
    for _ in range(protocol.epochs):
        loss = F.cross_entropy(model(*inputs)[nodes], targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if not torch.isfinite(loss):
            raise DivergedError(f"training diverged (loss {loss.item()}); lower the learning rate")
    return model


@torch.no_grad()
def evaluate_graph(model: torch.nn.Module, split: GraphSplit) -> Evaluation:
    """Accuracy (%) and mean cross-entropy of ``model`` in eval mode on ``split``'s labelled nodes."""
    model.eval()
    return _score(model(*graph_inputs(model, split)), split)


def _score(logits: torch.Tensor, split: GraphSplit) -> Evaluation:
    nodes = labelled(split)
    logits, targets = logits[nodes], split.y[nodes]
    return Evaluation(acc=100.0 * (logits.argmax(1) == targets).float().mean().item(),
                      loss=F.cross_entropy(logits, targets).item())


def train_graph_candidate(space: Any, arch: str, train: GraphSplit, evaluations: dict[str, GraphSplit],
                          protocol: TrainProtocol, seed: int, device: torch.device) -> dict[str, float]:
    """Build ``arch`` from ``space``, train it on ``train`` and evaluate it on each named split.

    The initialization and the dropout draws depend only on ``(seed, arch)``, so the oracle and
    a search algorithm training the same candidate on the same graph with the same seed get
    the same numbers (as :func:`harness.training.train_candidate` for images). Splits that share
    one graph (the same tensors, e.g. a task's val and test) are run through the model once.

    Returns:
        ``{"<name>_acc": ..., "<name>_loss": ..., "train_seconds": ...}`` for each split name.
    """
    start = time.perf_counter()
    model = init_candidate(space, arch, seed).to(device)
    train_graph_model(model, train.to(device), protocol, derive_seed(seed, arch, "order"))
    model.eval()
    result: dict[str, float] = {}
    seen: list[tuple[GraphSplit, torch.Tensor]] = []
    with torch.no_grad():
        for name, split in evaluations.items():
            split = split.to(device)
            logits = next((out for other, out in seen if _same_graph(other, split)), None)
            if logits is None:
                logits = model(*graph_inputs(model, split))
                seen.append((split, logits))
            evaluation = _score(logits, split)
            result[f"{name}_acc"] = evaluation.acc
            result[f"{name}_loss"] = evaluation.loss
    result["train_seconds"] = time.perf_counter() - start
    return result


def _same_graph(a: GraphSplit, b: GraphSplit) -> bool:
    """Whether two splits are views of one graph (the very same tensors)."""
    return a.x is b.x and a.edge_index is b.edge_index and a.edge_weight is b.edge_weight
