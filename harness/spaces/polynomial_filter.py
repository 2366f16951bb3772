"""The continuous space of polynomial graph convolution filters (HCDC's graph search space).

Ding et al., "Calibrated Dataset Condensation for Faster Hyperparameter Search": section 7
("2-layer message-passing GNNs whose convolution matrix is a truncated sum of powers of the
graph Laplacian"), appendices C.3 (eq. 4), G and J, Fig. 6. A candidate is a filter that is a
polynomial of degree ``K`` in the normalized Laplacian ``L̃ = I − Ã``,

    C_λ = Σ_{k=0}^{K} λ_k B^k,    B = Ã = D̃^{-1/2} (A + I) D̃^{-1/2}  (basis "adjacency", default)
                                   or B = L̃                            (basis "laplacian"),

with ``A`` the (possibly weighted) adjacency and GCN's self-loop renormalization, so isolated
nodes (frequent in small induced or condensed graphs) keep their features. Both bases span the
same filters; they differ in which filters a uniform draw of λ favours: with powers of ``L̃``
(spectrum in [0, 2)) most uniform draws amplify high frequencies and fail on homophilous
graphs, while non-negative combinations of powers of ``Ã`` are the low-pass mixtures of
propagation depths (SGC, SIGN, GPR-GNN) among which a search is meaningful.

The network applies the filter in every layer, ``X^{(l+1)} = σ(C_λ X^{(l)} W^{(l)})`` with
ReLU as ``σ`` and no activation after the last layer. The coefficients λ ∈ R^{K+1} are the
hyperparameters; the weights ``W`` (with biases) are the parameters. λ enters the forward pass
smoothly, so the same network serves HCDC's hypergradients ∇λ (pass ``coefficients=`` a tensor
to :meth:`PolynomialFilterNet.forward`).

Candidates are strings ``"poly:λ_0,λ_1,…,λ_K"``, e.g. ``"poly:0.50,-0.25,0.10"``; sampled ones
draw each λ_k uniformly from ``[coef_low, coef_high]`` on a grid of 0.01.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness._values import is_number
from harness.errors import ConfigError
from harness.spaces._params import SpaceParams, check_dropout, check_int
from harness.types import GraphSplit

BASES: tuple[str, ...] = ("adjacency", "laplacian")
PREFIX = "poly:"
DECIMALS = 2
# Feature matrices with at most this share of non-zeros are multiplied as sparse tensors
# (Planetoid's bag-of-words features are about 1% dense), and graph operators with more are
# multiplied as dense matrices (learned condensed graphs are often nearly complete).
SPARSE_BELOW = 0.1
_EXAMPLE = "poly:0.50,-0.25,0.10"


def parse_filter(arch: str) -> tuple[float, ...]:
    """The coefficients ``(λ_0, …, λ_K)`` of a ``"poly:…"`` candidate string.

    Raises:
        ConfigError: not a string starting with ``poly:`` followed by comma-separated finite numbers.
    """
    if not isinstance(arch, str) or not arch.startswith(PREFIX):
        raise ConfigError(f"invalid polynomial filter {arch!r}: expected '{PREFIX}' and comma-separated "
                          f"coefficients λ_0,…,λ_K, e.g. {_EXAMPLE!r}")
    try:
        values = tuple(float(v) for v in arch[len(PREFIX):].split(","))
    except ValueError:
        raise ConfigError(f"invalid polynomial filter {arch!r}: coefficients must be numbers, "
                          f"e.g. {_EXAMPLE!r}") from None
    if not all(np.isfinite(values)):
        raise ConfigError(f"invalid polynomial filter {arch!r}: coefficients must be finite")
    return values


def format_filter(coefficients: Any) -> str:
    """The candidate string of coefficients ``(λ_0, …, λ_K)`` (a sequence or a 1-D tensor).

    Each coefficient is written with two decimals when that is exact, else with the shortest
    form that reads back as the same float.
    """
    values = [float(v) for v in (coefficients.tolist() if isinstance(coefficients, torch.Tensor) else coefficients)]
    return PREFIX + ",".join(_format_value(v) for v in values)


def _format_value(value: float) -> str:
    fixed = f"{value:.{DECIMALS}f}"
    return fixed if float(fixed) == value else repr(value)


def normalized_adjacency(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int) -> torch.Tensor:
    """``Ã = D̃^{-1/2} (A + I) D̃^{-1/2}`` as a sparse ``N×N`` COO tensor (GCN's renormalization).

    ``A[target, source]`` sums the weights of the edges ``source → target`` (1 when
    ``edge_weight`` is ``None``); self-loops already in ``edge_index`` are dropped before the
    unit self-loops are added, and ``D̃`` holds the row sums of ``A + I``. An isolated node
    keeps its own features (``Ã`` is the identity there).
    """
    weight = edge_weight if edge_weight is not None else torch.ones(edge_index.shape[1], device=edge_index.device)
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(num_nodes, device=edge_index.device)
    index = torch.cat([edge_index[:, keep], torch.stack([loops, loops])], dim=1)
    weight = torch.cat([weight[keep], torch.ones(num_nodes, device=weight.device, dtype=weight.dtype)])
    degree = torch.zeros(num_nodes, device=weight.device, dtype=weight.dtype).index_add_(0, index[1], weight)
    scale = degree.clamp_min(1e-12).pow(-0.5)
    values = scale[index[1]] * weight * scale[index[0]]
    return torch.sparse_coo_tensor(index.flip(0), values, (num_nodes, num_nodes), check_invariants=False).coalesce()


def apply_filter(coefficients: torch.Tensor, operator: torch.Tensor, h: torch.Tensor, basis: str) -> torch.Tensor:
    """``C_λ h = Σ_k λ_k B^k h`` for node features ``h`` (``N×d``): ``B = Ã`` (``basis="adjacency"``)
    or ``B = L̃ = I − Ã`` (``basis="laplacian"``), ``operator`` being ``Ã`` (sparse or dense)."""
    out = coefficients[0] * h
    power = h
    for coefficient in coefficients[1:]:
        propagated = operator @ power
        power = propagated if basis == "adjacency" else power - propagated
        out = out + coefficient * power
    return out


class PolynomialFilterNet(nn.Module):
    """``layers`` graph convolutions ``σ(C_λ X W)`` sharing the filter ``C_λ`` (eq. 4).

    Args:
        coefficients: λ, a length-``K+1`` sequence; stored as a buffer (not a parameter).
        basis: ``"adjacency"`` (λ_k multiplies ``Ã^k``) or ``"laplacian"`` (λ_k multiplies ``L̃^k``).
        in_channels: ``F``, node feature dimension.
        hidden: width of the hidden layers.
        num_classes: output logits per node.
        layers: number of graph convolutions (≥ 1).
        dropout: dropout on the hidden representations (before every layer but the first).
    """

    def __init__(self, coefficients: Any, basis: str, in_channels: int, hidden: int, num_classes: int, layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.basis = basis
        self.register_buffer("coefficients", torch.tensor(list(coefficients), dtype=torch.float32))
        widths = [in_channels] + [hidden] * (layers - 1) + [num_classes]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = dropout

    @staticmethod
    def graph_inputs(split: GraphSplit) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, Ã)``: the features (sparse when mostly zeros and not being learned) and
        the normalized adjacency of :func:`normalized_adjacency` (dense when mostly non-zero),
        computed once per graph."""
        x, n = split.x, split.x.shape[0]
        if not x.requires_grad and x.numel() and (x != 0).float().mean().item() < SPARSE_BELOW:
            x = x.to_sparse()
        operator = normalized_adjacency(split.edge_index, split.edge_weight, n)
        if operator._nnz() > SPARSE_BELOW * n * n:
            operator = operator.to_dense()
        return x, operator

    def forward(self, x: torch.Tensor, operator: torch.Tensor,
                coefficients: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``N×num_classes`` of node features ``x`` (``N×F``, dense or sparse) on the graph of
        ``operator``; ``coefficients`` overrides the stored λ (e.g. a tensor that requires grad)."""
        lam = self.coefficients if coefficients is None else coefficients
        h = x
        for i, linear in enumerate(self.linears):
            if i > 0:
                h = F.dropout(F.relu(h), self.dropout, self.training)
            projected = torch.sparse.mm(h, linear.weight.t()) + linear.bias if h.is_sparse else linear(h)
            h = apply_filter(lam, operator, projected, self.basis)
        return h


class PolynomialFilterSpace(SpaceParams):
    """Polynomial filters ``C_λ = Σ_{k≤order} λ_k B^k`` in a ``layers``-layer GNN (appendix C.3, J).

    ``__init__`` only stores its parameters; they are checked when used.

    Args:
        order: ``K``, the highest power (candidates have ``K + 1`` coefficients).
        basis: ``"adjacency"`` (powers of ``Ã``) or ``"laplacian"`` (powers of ``L̃ = I − Ã``).
        hidden: width of the hidden layers.
        layers: graph convolutions per network (the paper uses 2).
        dropout: dropout on hidden representations.
        coef_low, coef_high: sampled coefficients are uniform in ``[coef_low, coef_high]``.
        in_channels: node feature dimension ``F`` (set by the sweep from the task).
        num_classes: classes (set by the sweep from the task).
    """

    def __init__(self, order: int = 2, basis: str = "adjacency", hidden: int = 64, layers: int = 2,
                 dropout: float = 0.5, coef_low: float = 0.0, coef_high: float = 1.0, in_channels: int = 1433,
                 num_classes: int = 7) -> None:
        self.order = order
        self.basis = basis
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.coef_low = coef_low
        self.coef_high = coef_high
        self.in_channels = in_channels
        self.num_classes = num_classes

    def canonical(self, arch: str) -> str:
        """The normalized string of ``arch`` (two-decimal coefficients where exact).

        Raises:
            ConfigError: ``arch`` is malformed or has not ``order + 1`` coefficients.
        """
        return format_filter(self._values(arch))

    def coefficients(self, arch: str) -> torch.Tensor:
        """λ of ``arch`` as a float tensor of length ``order + 1`` (HCDC's continuous encoding).

        Raises:
            ConfigError: ``arch`` is malformed or has not ``order + 1`` coefficients.
        """
        return torch.tensor(self._values(arch), dtype=torch.float32)

    def _values(self, arch: str) -> tuple[float, ...]:
        values = parse_filter(arch)
        if len(values) != self.order + 1:
            raise ConfigError(f"polynomial filter {arch!r} has {len(values)} coefficients; this space "
                              f"(order {self.order}) needs {self.order + 1}, λ_0 … λ_{self.order}")
        return values

    def sample(self, p: int, seed: int, drop_disconnected: bool = True, drop_isomorphs: bool = True) -> list[str]:
        """``p`` distinct filters, each λ_k uniform on the 0.01-grid of ``[coef_low, coef_high]``.

        Draws come from ``numpy.random.default_rng(seed)``; a repeated draw is skipped, so
        the same arguments always give the same list. ``drop_disconnected`` and
        ``drop_isomorphs`` are accepted for the common space interface and have no effect
        (every coefficient vector is a different filter).

        Raises:
            ConfigError: ``p`` below 1 or above the number of grid points.
        """
        self.check()
        low, high = (int(np.ceil(v * 10 ** DECIMALS - 1e-9)) for v in (self.coef_low, self.coef_high))
        available = (high - low + 1) ** (self.order + 1)
        if p < 1 or p > available:
            raise ConfigError(f"sample size p must be between 1 and {available} for this space, got {p}")
        rng = np.random.default_rng(seed)
        chosen: dict[str, None] = {}
        while len(chosen) < p:
            grid = rng.integers(low, high + 1, size=self.order + 1)
            chosen.setdefault(format_filter(grid / 10 ** DECIMALS), None)
        return list(chosen)

    def build(self, arch: str) -> PolynomialFilterNet:
        """The network of filter ``arch``: ``model(*graph_inputs(model, split))`` gives ``N×num_classes``
        logits. Weights come from torch's global generator.

        Raises:
            ConfigError: ``arch`` is malformed or a space parameter is out of range.
        """
        self.check()
        return PolynomialFilterNet(self._values(arch), self.basis, self.in_channels, self.hidden,
                                   self.num_classes, self.layers, self.dropout)

    def train_candidate(self, arch: str, train: GraphSplit, evaluations: dict[str, GraphSplit], protocol: Any,
                        seed: int, device: torch.device) -> dict[str, float]:
        """Train ``arch`` full-batch on ``train``'s labelled nodes and evaluate it on each named split
        (:func:`harness.graph_training.train_graph_candidate`)."""
        from harness.graph_training import train_graph_candidate

        return train_graph_candidate(self, arch, train, evaluations, protocol, seed, device)

    def check(self) -> None:
        """Raise ``ConfigError`` naming the first space parameter that is out of range."""
        for name in ("order", "hidden", "layers", "in_channels", "num_classes"):
            check_int(name, getattr(self, name), minimum=0 if name == "order" else 1)
        if self.basis not in BASES:
            raise ConfigError(f"space parameter basis must be one of {list(BASES)}, got {self.basis!r}")
        check_dropout(self.dropout)
        bounds = (self.coef_low, self.coef_high)
        if not all(is_number(v) for v in bounds) or not self.coef_low < self.coef_high:
            raise ConfigError(f"space parameters coef_low < coef_high must be numbers, got {bounds!r}")
