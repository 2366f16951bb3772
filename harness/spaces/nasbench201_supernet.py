"""A differentiable supernet over the NAS-Bench-201 cell, for one-shot search and HCDC.

Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019 (softmax mixing);
Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours" (GDAS),
CVPR 2019 (hard Gumbel-softmax sampling); Dong & Yang, "NAS-Bench-201", ICLR 2020
(the cell and the macro skeleton).

The architecture parameters λ are a ``6×5`` tensor: one row per edge of :data:`EDGES`, one
column per operation of :data:`OPS`. Every cell of the network shares them. A node of a
cell is the sum over its incoming edges ``j <- i`` of the mixed operation

    x_j = Σ_i Σ_k w[e(j, i), k] · o_k(x_i),

where the mixing weights ``w`` come from λ through a *relaxation* (:func:`mixing_weights`):
``"softmax"`` (DARTS), ``"gumbel"`` (GDAS: one op per edge, straight-through gradients) or
``"weights"`` (λ used as the weights themselves: a one-hot λ evaluates exactly one cell).

Every batch norm of the supernet normalizes with batch statistics (no running averages):
statistics gathered under one λ are wrong under another, and the reference searches
(AutoDL's GDAS, DARTS-PT's selection) also run the supernet in training mode.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness._values import is_int
from harness.errors import ConfigError
from harness.spaces._avg_pool_3x3 import AvgPool3x3
from harness.spaces.nasbench201 import EDGES, NUM_NODES, OPS, format_arch, parse_arch

RELAXATIONS: tuple[str, ...] = ("softmax", "gumbel", "weights")
"""How λ becomes mixing weights: DARTS softmax, GDAS hard Gumbel-softmax, or λ as given."""

ALPHA_SHAPE: tuple[int, int] = (len(EDGES), len(OPS))
"""The shape of λ: ``6×5`` (edges × operations)."""

_NONE = OPS.index("none")


def _check_alphas(alphas: torch.Tensor) -> None:
    if not isinstance(alphas, torch.Tensor) or tuple(alphas.shape) != ALPHA_SHAPE:
        shape = tuple(alphas.shape) if isinstance(alphas, torch.Tensor) else type(alphas).__name__
        raise ConfigError(
            f"architecture weights must be a {ALPHA_SHAPE[0]}×{ALPHA_SHAPE[1]} tensor "
            f"(edges {EDGES} × ops {list(OPS)}), got {shape}"
        )


def mixing_weights(alphas: torch.Tensor, relaxation: str = "softmax", tau: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn λ (``6×5``) into the ``6×5`` weights that mix each edge's operations.

    * ``"softmax"``: ``w = softmax(λ)`` per edge (DARTS, Liu et al. 2019, eq. 2).
    * ``"gumbel"``: GDAS (Dong & Yang 2019, eq. 3-5): ``p = softmax((log_softmax(λ) + g) / τ)``
      with Gumbel noise ``g = -log(E)``, ``E ~ Exp(1)`` drawn from ``generator``; the
      forward value is the one-hot ``h`` of ``argmax p`` and the gradient that of ``p``
      (straight-through: ``h - p.detach() + p``).
    * ``"weights"``: ``w = λ`` unchanged (a one-hot λ selects one cell exactly).

    Raises:
        ConfigError: unknown relaxation, non-positive ``tau`` or λ not ``6×5``.
    """
    _check_alphas(alphas)
    if relaxation == "softmax":
        return F.softmax(alphas, dim=-1)
    if relaxation == "weights":
        return alphas
    if relaxation != "gumbel":
        raise ConfigError(f"unknown relaxation {relaxation!r}; choose one of {list(RELAXATIONS)}")
    if not tau > 0:
        raise ConfigError(f"the Gumbel-softmax temperature tau must be positive, got {tau}")
    exponential = torch.empty(ALPHA_SHAPE).exponential_(generator=generator)
    gumbels = -torch.log(exponential.clamp_min(torch.finfo(exponential.dtype).tiny)).to(alphas)
    soft = F.softmax((F.log_softmax(alphas, dim=-1) + gumbels) / tau, dim=-1)
    hard = F.one_hot(soft.detach().argmax(-1), len(OPS)).to(soft)
    return hard - soft.detach() + soft


def _active_ops(weights: torch.Tensor, relaxation: str) -> list[list[int]]:
    """Per edge, the indices of the operations that must be computed.

    ``none`` is never computed (its output is zero, so it adds nothing and its weight's
    gradient is zero). Under ``"gumbel"`` only the sampled op is computed and back-propagated,
    as GDAS does; under ``"weights"`` without gradient, zero-weight ops are skipped too.
    """
    if relaxation == "gumbel":
        chosen = weights.detach().argmax(-1).tolist()
        return [[k] if k != _NONE else [] for k in chosen]
    if relaxation == "weights" and not weights.requires_grad:
        nonzero = (weights.detach() != 0).tolist()
        return [[k for k in range(len(OPS)) if k != _NONE and row[k]] for row in nonzero]
    every = [k for k in range(len(OPS)) if k != _NONE]
    return [every for _ in EDGES]


def _batch_norm(channels: int, affine: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=affine, track_running_stats=False)


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, affine: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        _batch_norm(c_out, affine),
    )


class _MixedEdge(nn.Module):
    """The non-zero operations of one edge (``B×C×H×W`` → ``B×C×H×W``), BN without affine."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({
            "skip_connect": nn.Identity(),
            "nor_conv_1x1": _relu_conv_bn(channels, channels, 1, 1, affine=False),
            "nor_conv_3x3": _relu_conv_bn(channels, channels, 3, 1, affine=False),
            "avg_pool_3x3": AvgPool3x3(),
        })

    def forward(self, x: torch.Tensor, row: torch.Tensor, active: list[int]) -> torch.Tensor | None:
        """Return ``Σ_k row[k] · o_k(x)`` over the ``active`` ops, or ``None`` when there are none."""
        terms = [row[k] * self.ops[OPS[k]](x) for k in active]
        return torch.stack(terms).sum(0) if terms else None


class _SearchCell(nn.Module):
    """A NAS-Bench-201 cell whose 6 edges are mixed operations (``B×C×H×W`` → same)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_MixedEdge(channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
        """Compute nodes 1..3 in order; a node no active op reaches is zero."""
        nodes = [x]
        for target in range(1, NUM_NODES):
            parts = [self.edges[e](nodes[source], weights[e], active[e])
                     for e, (edge_target, source) in enumerate(EDGES) if edge_target == target]
            parts = [p for p in parts if p is not None]
            nodes.append(torch.stack(parts).sum(0) if parts else torch.zeros_like(x))
        return nodes[-1]


class _ResidualReduction(nn.Module):
    """NAS-Bench-201's residual reduction block: stride-2 ReLU-Conv-BN ×2 plus an
    AvgPool + 1×1-conv shortcut (``B×C_in×H×W`` → ``B×C_out×H/2×W/2``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2, affine=True)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1, affine=True)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``shortcut(x) + conv_b(conv_a(x))``."""
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NasBench201Supernet(nn.Module):
    """The NAS-Bench-201 macro skeleton with every cell a mixed cell over λ.

    Same layout as the discrete network of :meth:`NasBench201Space.build` (xautodl's
    ``TinyNetwork``): stem ``Conv3×3(in_channels→C) + BN``, ``N`` cells at ``C`` channels,
    a residual reduction to ``2C``, ``N`` cells, a reduction to ``4C``, ``N`` cells, then
    ``BN + ReLU``, global average pooling and a linear classifier. Mixed operations use
    ReLU-Conv-BN with non-affine BN, as in DARTS' and GDAS' search networks.

    Args:
        C, N, in_channels, num_classes: as :class:`NasBench201Space`.
        generator: draws the initial λ, ``1e-3 · N(0, 1)`` per entry (as DARTS and GDAS do);
            the layers' weights come from torch's global generator.

    Attributes:
        alphas: the ``6×5`` parameter λ used when :meth:`forward` gets none.
    """

    def __init__(self, C: int = 16, N: int = 5, in_channels: int = 3, num_classes: int = 10,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name, value in {"C": C, "N": N, "in_channels": in_channels, "num_classes": num_classes}.items():
            if not is_int(value) or value < 1:
                raise ConfigError(f"supernet parameter {name} must be a positive int, got {value!r}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), _batch_norm(C, True))
        stages: list[nn.Module] = []
        for stage, channels in enumerate((C, 2 * C, 4 * C)):
            if stage:
                stages.append(_ResidualReduction(channels // 2, channels))
            stages.extend(_SearchCell(channels) for _ in range(N))
        self.cells = nn.ModuleList(stages)
        self.lastact = nn.Sequential(_batch_norm(4 * C, True), nn.ReLU())
        self.classifier = nn.Linear(4 * C, num_classes)
        self.alphas = nn.Parameter(1e-3 * torch.randn(ALPHA_SHAPE, generator=generator))

    @classmethod
    def from_space(cls, space: Any, generator: torch.Generator | None = None) -> "NasBench201Supernet":
        """The supernet of a :class:`NasBench201Space` (same ``C, N, in_channels, num_classes``).

        Raises:
            ConfigError: ``space`` is not a NAS-Bench-201 space.
        """
        described = space.describe() if hasattr(space, "describe") else {}
        needed = ("C", "N", "in_channels", "num_classes")
        if not all(key in described for key in needed):
            raise ConfigError(
                f"the NAS-Bench-201 supernet needs a nasbench201 space (with {list(needed)}), "
                f"got {space!r}"
            )
        return cls(**{key: described[key] for key in needed}, generator=generator)

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except λ: what the weight optimizer trains."""
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def forward(self, x: torch.Tensor, alphas: torch.Tensor | None = None, relaxation: str = "softmax",
                tau: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return the ``B×num_classes`` logits of ``x`` (``B×in_channels×H×W``) under λ.

        Args:
            alphas: the ``6×5`` λ (default: :attr:`alphas`); pass a tensor with
                ``requires_grad`` to differentiate the output with respect to it.
            relaxation, tau, generator: see :func:`mixing_weights`; one Gumbel sample is
                drawn per call and shared by all cells.
        """
        weights = mixing_weights(self.alphas if alphas is None else alphas, relaxation, tau, generator)
        active = _active_ops(weights, relaxation)
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature, weights, active) if isinstance(cell, _SearchCell) else cell(feature)
        return self.classifier(self.lastact(feature).mean(dim=(2, 3)))


def encode_arch(arch: str) -> torch.Tensor:
    """The one-hot ``6×5`` float encoding of an arch string (row = edge, column = op).

    Raises:
        ConfigError: ``arch`` is not a NAS-Bench-201 arch string.
    """
    index = torch.tensor([OPS.index(op) for op in parse_arch(arch)])
    return F.one_hot(index, len(OPS)).float()


def candidate_scores(alphas: torch.Tensor, candidates: list[str]) -> torch.Tensor:
    """Score each candidate by λ restricted to it: ``s(a) = Σ_e log_softmax(λ_e)[a_e]``.

    This is the log-probability of ``a`` under the factorized per-edge categorical
    ``softmax(λ)`` (the paper's "architecture weights restricted to the candidate set");
    the argmax architecture of λ scores highest among all architectures. Differentiable in λ.

    Returns:
        A tensor of ``len(candidates)`` scores, on λ's device.

    Raises:
        ConfigError: λ not ``6×5`` or a candidate is malformed.
    """
    _check_alphas(alphas)
    index = torch.tensor([[OPS.index(op) for op in parse_arch(a)] for a in candidates],
                         dtype=torch.long, device=alphas.device).reshape(len(candidates), len(EDGES))
    log_probs = F.log_softmax(alphas, dim=-1)
    return log_probs[torch.arange(len(EDGES), device=alphas.device), index].sum(-1)


def discretize(alphas: torch.Tensor) -> str:
    """The arch string taking the argmax operation of each edge's row of λ (``6×5``)."""
    _check_alphas(alphas)
    return format_arch([OPS[k] for k in alphas.detach().argmax(-1).tolist()])
