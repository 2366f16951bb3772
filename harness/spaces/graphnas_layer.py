"""One layer of the GraphNAS macro search space: a multi-head message-passing layer whose edge
coefficients (the "attention type") and neighbourhood aggregator are architecture choices.

Gao, Yang, Zhang, Zhou & Hu, "GraphNAS: Graph Neural Architecture Search with Reinforcement
Learning", IJCAI 2020 (arXiv:1904.09981), section 3.1 and Table 1. For node ``i`` with
neighbours ``N(i)`` (self-loop included), head ``k`` and projected features ``h = x W``
(``N×heads×out``), the layer computes

    h'_i,k = AGG_{j ∈ N(i)} ( α^k_ij · h_j,k ),    then concatenates or averages the heads,

with the coefficients α of each attention type (``a_t``, ``a_s``: per-head vectors, ``⊙``
elementwise, ``e`` normalized by a softmax over ``N(i)``):

=====================  =====================================================================
``const``              α_ij = 1
``gcn``                α_ij = 1 / sqrt(d_i d_j)       (degrees with self-loops, as in GCN)
``gat``                e_ij = leaky_relu(a_t·h_i + a_s·h_j)
``gat_sym``            e_ij = leaky_relu(a_t·h_i + a_s·h_j) + leaky_relu(a_t·h_j + a_s·h_i)
``cos``                e_ij = ⟨a_t ⊙ h_i, a_s ⊙ h_j⟩
``linear``             e_ij = tanh(a_s·h_j)
``generalized_linear`` e_ij = w·tanh(a_t ⊙ h_i + a_s ⊙ h_j)
=====================  =====================================================================

and the aggregators ``sum``, ``mean`` and ``max`` of the messages ``α_ij h_j``, and ``mlp``: the
sum of ``α_ij · MLP(h_j)``, a two-layer perceptron (``out → pool_dim → out``, ReLU) of each
neighbour. As in the reference code, ``mean`` and ``max`` also use the perceptron (GraphSAGE's
pooling aggregators). Unlike the reference, which passes each edge's message through a
perceptron without a non-linearity, the perceptron has a ReLU and acts on the neighbours'
features before the coefficients weight them, so it runs once per node rather than per edge.

Weighted graphs (e.g. a condensed graph's learned adjacency) weight every coefficient:
``const`` becomes ``w_ij``, ``gcn`` uses weighted degrees, and the softmax types normalize
``w_ij exp(e_ij)`` (a softmax of ``e + log w``); unweighted graphs have ``w = 1``. Self-loops
are added with weight 1 where a node has none. Dropout of rate ``dropout`` is applied to the
coefficients while training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_remaining_self_loops, scatter, softmax

from harness.spaces.graphnas import ATTENTIONS

_PYG_AGGR = {"sum": "add", "mean": "mean", "max": "max", "mlp": "add"}
NEGATIVE_SLOPE = 0.2  # of GAT's leaky ReLU


class GraphNASLayer(MessagePassing):
    """A GraphNAS layer (see the module docstring) on PyG's ``MessagePassing``.

    Args:
        in_channels: input feature size ``F``.
        out_channels: features per head.
        heads: number of attention heads.
        attention: one of :data:`ATTENTIONS`.
        aggregator: one of :data:`AGGREGATORS`.
        concat: concatenate the heads (output ``heads·out``) or average them (output ``out``).
        dropout: dropout on the edge coefficients while training.
        pool_dim: hidden width of the message perceptron of ``mean`` / ``max`` / ``mlp``.
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int, attention: str, aggregator: str,
                 concat: bool, dropout: float, pool_dim: int) -> None:
        super().__init__(aggr=_PYG_AGGR[aggregator], node_dim=0)
        self.heads, self.out_channels, self.attention = heads, out_channels, attention
        self.concat, self.dropout = concat, dropout
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(in_channels, heads * out_channels)))
        self.att_target = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, heads, out_channels)))
        self.att_source = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, heads, out_channels)))
        self.score = nn.Linear(out_channels, 1, bias=False) if attention == "generalized_linear" else None
        self.pool = (None if aggregator == "sum" else
                     nn.Sequential(nn.Linear(out_channels, pool_dim), nn.ReLU(), nn.Linear(pool_dim, out_channels)))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Node features ``x`` (``N×F``, dense or sparse COO) on the graph ``edge_index`` (``2×E``,
        source → target) with optional ``edge_weight`` (``E``) → ``N×heads·out`` (concat) or ``N×out``."""
        n = x.shape[0]
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.shape[1], device=edge_index.device)
        edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, fill_value=1.0, num_nodes=n)
        projected = torch.sparse.mm(x, self.weight) if x.is_sparse else x @ self.weight
        h = projected.view(n, self.heads, self.out_channels)
        coefficients = F.dropout(self.coefficients(h, edge_index, edge_weight), self.dropout, self.training)
        out = self.propagate(edge_index, x=h if self.pool is None else self.pool(h), coefficients=coefficients)
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)
        return out + self.bias

    def coefficients(self, h: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        """The coefficient ``α_ij`` of every edge and head (``E×heads``) of projected features
        ``h`` (``N×heads×out``), ``edge_index`` with self-loops and ``edge_weight`` ``w_ij``."""
        source, target = edge_index
        n = h.shape[0]
        if self.attention == "const":
            return edge_weight.unsqueeze(1).expand(-1, self.heads)
        if self.attention == "gcn":
            degree = scatter(edge_weight, target, dim=0, dim_size=n, reduce="sum")
            norm = degree.clamp_min(1e-12).pow(-0.5)
            return (norm[source] * edge_weight * norm[target]).unsqueeze(1).expand(-1, self.heads)
        logits = self._attention_logits(h[target], h[source])
        return softmax(logits + edge_weight.clamp_min(1e-12).log().unsqueeze(1), target, num_nodes=n)

    def _attention_logits(self, h_i: torch.Tensor, h_j: torch.Tensor) -> torch.Tensor:
        """``e_ij`` (``E×heads``) of the softmax attention types, from target and source features."""
        a_t, a_s = self.att_target, self.att_source
        if self.attention == "gat":
            return F.leaky_relu((h_i * a_t).sum(-1) + (h_j * a_s).sum(-1), NEGATIVE_SLOPE)
        if self.attention == "gat_sym":
            return (F.leaky_relu((h_i * a_t).sum(-1) + (h_j * a_s).sum(-1), NEGATIVE_SLOPE)
                    + F.leaky_relu((h_j * a_t).sum(-1) + (h_i * a_s).sum(-1), NEGATIVE_SLOPE))
        if self.attention == "cos":
            return (h_i * a_t * h_j * a_s).sum(-1)
        if self.attention == "linear":
            return torch.tanh((h_j * a_s).sum(-1))
        if self.attention == "generalized_linear":
            return self.score(torch.tanh(h_i * a_t + h_j * a_s)).squeeze(-1)
        raise ValueError(f"unknown attention type {self.attention!r}; choose one of {list(ATTENTIONS)}")

    def message(self, x_j: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """The message of each edge, ``α_ij · x_j`` (``E×heads×out``), ``x_j`` being ``h_j`` or, for
        the ``mean`` / ``max`` / ``mlp`` aggregators, ``MLP(h_j)``."""
        return x_j * coefficients.unsqueeze(-1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.weight.shape[0]}, {self.out_channels}, heads={self.heads}, "
                f"attention={self.attention!r}, aggr={self.aggr!r}, concat={self.concat})")
