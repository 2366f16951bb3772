"""The child network of the GraphNAS macro space: a stack of :class:`GraphNASLayer` s.

Gao et al., "GraphNAS: Graph Neural Architecture Search with Reinforcement Learning", IJCAI
2020, section 3.1: each layer is ``x ← act(layer(dropout(x)))`` with its own attention type,
aggregator, activation, number of heads and hidden units. Hidden layers concatenate their
heads; the last layer has ``num_classes`` units per head and averages its heads, and its
activation is applied to the logits too (as in the reference code). Dropout (rate
``dropout``, 0.6 in the reference) acts on every layer's input and on the attention
coefficients.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from harness.spaces.graphnas import LayerChoice
from harness.spaces.graphnas_layer import GraphNASLayer
from harness.types import GraphSplit

ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "linear": lambda x: x,
    "softplus": F.softplus, "leaky_relu": F.leaky_relu, "relu6": F.relu6, "elu": F.elu,
}
"""What each activation of :data:`harness.spaces.graphnas.ACTIVATIONS` computes."""

SPARSE_BELOW = 0.1
"""Input features with at most this share of non-zeros are multiplied as a sparse matrix."""


class GraphNASNet(nn.Module):
    """A GraphNAS child: ``x ← act_l(layer_l(dropout(x)))`` for each layer choice ``l``.

    Args:
        layers: one :class:`LayerChoice` per layer (the last one's ``hidden`` = classes).
        in_channels: node feature size ``F``.
        dropout: dropout on each layer's input and on the attention coefficients.
        pool_dim: hidden width of the message perceptron of the mean / max / mlp aggregators.
    """

    def __init__(self, layers: list[LayerChoice], in_channels: int, dropout: float, pool_dim: int) -> None:
        super().__init__()
        sizes = [in_channels] + [choice.heads * choice.hidden for choice in layers[:-1]]
        self.layers = nn.ModuleList(
            GraphNASLayer(size, choice.hidden, choice.heads, choice.attention, choice.aggregator,
                          concat=index < len(layers) - 1, dropout=dropout, pool_dim=pool_dim)
            for index, (size, choice) in enumerate(zip(sizes, layers)))
        self.activations = [ACTIVATION_FUNCTIONS[choice.activation] for choice in layers]
        self.dropout = dropout

    @staticmethod
    def graph_inputs(split: GraphSplit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(x, edge_index, edge_weight)`` of ``split``, ``x`` as a sparse COO tensor when mostly
        zeros (bag-of-words features) and not being learned."""
        x = split.x
        if not x.requires_grad and x.numel() and (x != 0).float().mean().item() <= SPARSE_BELOW:
            x = x.to_sparse().coalesce()
        return x, split.edge_index, split.edge_weight

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``N×num_classes`` of node features ``x`` (``N×F``, dense or sparse) on the graph
        ``edge_index`` (``2×E``) with optional ``edge_weight`` (``E``)."""
        h = x
        for layer, activation in zip(self.layers, self.activations):
            h = activation(layer(_dropout(h, self.dropout, self.training), edge_index, edge_weight))
        return h


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout of a dense tensor, or of the stored values of a sparse COO one."""
    if not x.is_sparse:
        return F.dropout(x, p, training)
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, training), x.shape, is_coalesced=True,
                                   check_invariants=False)
