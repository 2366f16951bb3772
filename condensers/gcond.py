"""``gcond``: graph condensation with a learned adjacency (Jin et al., "Graph Condensation for
Graph Neural Networks", ICLR 2022; reference implementation ChandlerBang/GCond)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from condensers._graph import GraphMatchingCondenser, dense_to_edges
from condensers._matching import check_positive_float, check_positive_int
from harness._values import is_number
from harness.errors import ConfigError
from harness.registry import register_condenser


class PairwiseAdjacency(nn.Module):
    """GCond's ``A'_ij = sigmoid((g(x_i, x_j) + g(x_j, x_i)) / 2)``, zero on the diagonal.

    ``g`` is an MLP on the concatenation ``[x_i; x_j]`` (``2F → hidden → … → 1``, batch norm and
    ReLU between layers, ``layers`` linear layers in all). The first layer is applied as
    ``W_a x_i + W_b x_j`` so the ``n'^2`` pairs never materialize ``2F``-wide inputs.

    Args:
        in_features: ``F``.
        hidden: width of the hidden layers (GCond: 128 for Cora).
        layers: linear layers of ``g`` (GCond: 3), at least 2.
    """

    def __init__(self, in_features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.first_i = nn.Linear(in_features, hidden)
        self.first_j = nn.Linear(in_features, hidden, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 2))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden, track_running_stats=False) for _ in range(layers - 1))
        self.last = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The dense symmetric adjacency ``n'×n'`` in ``(0, 1)`` of synthetic features ``x`` (``n'×F``).

        Batch norm always uses the statistics of the current ``n'^2`` pairs, as in the reference.
        """
        n = len(x)
        h = (self.first_i(x)[:, None, :] + self.first_j(x)[None, :, :]).reshape(n * n, -1)
        h = F.relu(self.norms[0](h))
        for linear, norm in zip(self.hidden, self.norms[1:]):
            h = F.relu(norm(linear(h)))
        scores = self.last(h).view(n, n)
        adjacency = torch.sigmoid((scores + scores.t()) / 2)
        return adjacency * (1 - torch.eye(n, device=x.device, dtype=x.dtype))


@register_condenser("gcond")
class GCond(GraphMatchingCondenser):
    """Gradient matching of an SGC on synthetic node features ``X'`` and the adjacency
    ``A' = PairwiseAdjacency(X')`` (GCond, Algorithm 1; the "GCond" column of HCDC's Table 2).

    The loop is :class:`condensers._graph.GraphMatchingCondenser`'s, on the synthetic graph
    ``D̃^{-1/2}(A' + I)D̃^{-1/2}``. As in the reference, iteration ``t`` steps the adjacency MLP
    (Adam, ``lr_adj``) when ``t mod adj_period < adj_iterations`` and the features otherwise.
    The proxy graph keeps the entries of the final ``A'`` above ``threshold`` as weighted edges.

    Defaults: the reference's Cora settings (``hops`` 2, ``outer_loop`` 20, ``inner_loop`` 15,
    adjacency MLP of 3 layers and width 128, 10 of every 50 epochs on the adjacency) with fewer
    iterations and larger steps for CPU runs; presets shrink further.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "iterations": 200, "outer_loop": 20, "inner_loop": 15, "lr_feat": 0.01, "lr_adj": 0.01,
        "lr_model": 0.01, "hops": 2, "batch_real": 256, "adj_hidden": 128, "adj_layers": 3,
        "adj_period": 50, "adj_iterations": 10, "threshold": 0.01,
    }
    test_params: ClassVar[dict[str, Any]] = {"iterations": 3, "outer_loop": 2, "inner_loop": 1, "adj_hidden": 8,
                                             "adj_period": 2, "adj_iterations": 1}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive_float(self.name, "lr_adj", self.params["lr_adj"])
        check_positive_int(self.name, "adj_hidden", self.params["adj_hidden"])
        check_positive_int(self.name, "adj_layers", self.params["adj_layers"], minimum=2)
        check_positive_int(self.name, "adj_period", self.params["adj_period"])
        check_positive_int(self.name, "adj_iterations", self.params["adj_iterations"], minimum=0)
        threshold = self.params["threshold"]
        if not is_number(threshold) or not 0 <= threshold < 1:
            raise ConfigError(f"{self.name}: threshold must be a number in [0, 1), got {threshold!r}")

    def adjacency_module(self, num_features: int) -> PairwiseAdjacency:
        """GCond's pairwise MLP over ``num_features``-dimensional synthetic features."""
        return PairwiseAdjacency(num_features, self.params["adj_hidden"], self.params["adj_layers"])

    def updates_adjacency(self, iteration: int) -> bool:
        """``iteration mod adj_period < adj_iterations`` (the reference: 10 of every 50 epochs)."""
        return iteration % self.params["adj_period"] < self.params["adj_iterations"]

    def final_edges(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The entries of ``A'`` above ``threshold`` as weighted edges."""
        return dense_to_edges(adjacency, self.params["threshold"])
