"""The GraphNAS macro search space: per layer an attention type, an aggregator, an activation,
a number of heads and of hidden units.

Gao, Yang, Zhang, Zhou & Hu, "GraphNAS: Graph Neural Architecture Search with Reinforcement
Learning", IJCAI 2020 (arXiv:1904.09981), section 3.1 and Table 1, with the defaults of the
official repository (github.com/GraphNAS/GraphNAS, ``MacroSearchSpace``):

- attention: gat, gcn, cos, const, gat_sym, linear, generalized_linear
  (:mod:`harness.spaces.graphnas_layer` says what each computes);
- aggregator: sum, mean, max, mlp;
- activation: sigmoid, tanh, relu, linear, softplus, leaky_relu, relu6, elu;
- heads: 1, 2, 4, 6, 8, 16;
- hidden units (per head): 4, 8, 16, 32, 64, 128, 256.

A child has ``layers`` layers (2 in the paper); every layer but the last takes the five
decisions, and the last one has ``num_classes`` units per head (averaged over its heads), so it
takes only four: 9 decisions for two layers, about 1.3·10⁷ architectures with the defaults.
The option lists are parameters, so CPU presets can drop the widest layers.

A candidate is a string with one comma-separated group per layer, layers separated by ``|``,
heads prefixed ``h`` and hidden units ``u``: ``"gat,sum,relu,h8,u16|gcn,mean,elu,h1"``.
:meth:`GraphNASSpace.decisions` lists the choices in the order a controller takes them, and
:meth:`GraphNASSpace.encode` / :meth:`GraphNASSpace.decode` map candidates to and from the
indices of the chosen options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from harness.errors import ConfigError
from harness.spaces._params import SpaceParams, check_dropout, check_int, check_int_list
from harness.types import GraphSplit

if TYPE_CHECKING:
    from harness.spaces.graphnas_net import GraphNASNet

ATTENTIONS: tuple[str, ...] = ("gat", "gcn", "cos", "const", "gat_sym", "linear", "generalized_linear")
AGGREGATORS: tuple[str, ...] = ("sum", "mean", "max", "mlp")
ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu", "linear", "softplus", "leaky_relu", "relu6", "elu")
HEADS: tuple[int, ...] = (1, 2, 4, 6, 8, 16)
HIDDEN: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
DECISION_TYPES: tuple[str, ...] = ("attention", "aggregator", "activation", "heads", "hidden")
"""The decisions of one layer, in the order they are taken (the last layer skips ``hidden``)."""

_EXAMPLE = "gat,sum,relu,h8,u16|gcn,mean,elu,h1"


@dataclass(frozen=True)
class LayerChoice:
    """The five decisions of one layer (``hidden`` is per head; the last layer's is the class count)."""

    attention: str
    aggregator: str
    activation: str
    heads: int
    hidden: int


def format_candidate(layers: list[LayerChoice]) -> str:
    """The candidate string of ``layers`` (the last layer's hidden units are not written)."""
    groups = [f"{c.attention},{c.aggregator},{c.activation},h{c.heads},u{c.hidden}" for c in layers[:-1]]
    last = layers[-1]
    return "|".join(groups + [f"{last.attention},{last.aggregator},{last.activation},h{last.heads}"])


def parse_candidate(arch: str, num_classes: int) -> list[LayerChoice]:
    """The layer choices of a candidate string (the last layer gets ``num_classes`` units).

    Raises:
        ConfigError: not ``attention,aggregator,activation,h<heads>,u<hidden>`` groups separated
            by ``|`` with a last group without ``u<hidden>``.
    """
    groups = arch.split("|") if isinstance(arch, str) else []
    layers = []
    for index, group in enumerate(groups):
        fields = group.split(",")
        last = index == len(groups) - 1
        numbers = fields[3:]
        prefixes = ("h",) if last else ("h", "u")
        if (len(fields) != 3 + len(prefixes)
                or any(not f.startswith(p) or not f[1:].isdigit() for f, p in zip(numbers, prefixes))):
            raise ConfigError(f"invalid GraphNAS candidate {arch!r}: expected layers "
                              "'attention,aggregator,activation,h<heads>,u<hidden>' separated by '|', the last "
                              f"without 'u<hidden>', e.g. {_EXAMPLE!r}")
        heads = int(numbers[0][1:])
        hidden = num_classes if last else int(numbers[1][1:])
        layers.append(LayerChoice(fields[0], fields[1], fields[2], heads, hidden))
    if not layers:
        raise ConfigError(f"invalid GraphNAS candidate {arch!r}: expected a string such as {_EXAMPLE!r}")
    return layers


class GraphNASSpace(SpaceParams):
    """GraphNAS' macro space (see the module docstring) over PyG message passing.

    ``__init__`` only stores its parameters; they are checked when used.

    Args:
        attentions, aggregators, activations: the options of those decisions (default: all).
        heads: numbers of heads (default :data:`HEADS`).
        hidden: hidden units per head of the non-final layers (default :data:`HIDDEN`).
        layers: layers per child (2 in the paper).
        dropout: dropout on layer inputs and attention coefficients (0.6 in the reference).
        pool_dim: hidden width of the message perceptron of mean / max / mlp (128 in the reference).
        in_channels: node feature dimension ``F`` (set by the sweep from the task).
        num_classes: classes (set by the sweep from the task).
    """

    def __init__(self, attentions: list[str] | None = None, aggregators: list[str] | None = None,
                 activations: list[str] | None = None, heads: list[int] | None = None,
                 hidden: list[int] | None = None, layers: int = 2, dropout: float = 0.6, pool_dim: int = 128,
                 in_channels: int = 1433, num_classes: int = 7) -> None:
        self.attentions = list(ATTENTIONS) if attentions is None else list(attentions)
        self.aggregators = list(AGGREGATORS) if aggregators is None else list(aggregators)
        self.activations = list(ACTIVATIONS) if activations is None else list(activations)
        self.heads = list(HEADS) if heads is None else list(heads)
        self.hidden = list(HIDDEN) if hidden is None else list(hidden)
        self.layers = layers
        self.dropout = dropout
        self.pool_dim = pool_dim
        self.in_channels = in_channels
        self.num_classes = num_classes

    def decisions(self) -> list[tuple[str, list[Any]]]:
        """``(decision type, options)`` of every decision, in the order a controller takes them:
        :data:`DECISION_TYPES` per layer, the last layer without ``hidden``."""
        self.check()
        options = {"attention": self.attentions, "aggregator": self.aggregators, "activation": self.activations,
                   "heads": self.heads, "hidden": self.hidden}
        per_layer = [(name, options[name]) for name in DECISION_TYPES]
        return per_layer * (self.layers - 1) + per_layer[:-1]

    def size(self) -> int:
        """The number of architectures in the space."""
        return math.prod(len(options) for _, options in self.decisions())

    def decode(self, indices: list[int]) -> str:
        """The candidate whose ``k``-th decision takes option ``indices[k]`` of :meth:`decisions`.

        Raises:
            ConfigError: the wrong number of indices or one out of range.
        """
        decisions = self.decisions()
        if len(indices) != len(decisions) or any(not 0 <= int(i) < len(o) for i, (_, o) in zip(indices, decisions)):
            raise ConfigError(f"a GraphNAS architecture takes {len(decisions)} decisions with option counts "
                              f"{[len(o) for _, o in decisions]}, got indices {list(indices)}")
        values = [options[int(i)] for i, (_, options) in zip(indices, decisions)] + [self.num_classes]
        width = len(DECISION_TYPES)
        return format_candidate([LayerChoice(*values[k:k + width]) for k in range(0, len(values), width)])

    def encode(self, arch: str) -> list[int]:
        """The option index of each decision of ``arch`` (the inverse of :meth:`decode`).

        Raises:
            ConfigError: ``arch`` is malformed or not in this space.
        """
        decisions = self.decisions()
        layers = parse_candidate(arch, self.num_classes)
        values = [getattr(choice, name) for choice in layers for name in DECISION_TYPES][:-1]
        if len(layers) != self.layers or any(v not in o for v, (_, o) in zip(values, decisions)):
            raise ConfigError(f"GraphNAS candidate {arch!r} is not in this space: {self.layers} layers with "
                              + "; ".join(f"{name} in {options}" for name, options in decisions[:len(DECISION_TYPES)]))
        return [options.index(v) for v, (_, options) in zip(values, decisions)]

    def canonical(self, arch: str) -> str:
        """``arch`` itself once checked (no two candidates of this space are equivalent).

        Raises:
            ConfigError: ``arch`` is malformed or not in this space.
        """
        return self.decode(self.encode(arch))

    def sample(self, p: int, seed: int, drop_disconnected: bool = True, drop_isomorphs: bool = True) -> list[str]:
        """``p`` distinct architectures, every decision uniform, drawn by ``numpy.random.default_rng(seed)``
        (a repeated draw is skipped). ``drop_disconnected`` / ``drop_isomorphs`` are accepted for
        the common space interface and have no effect here.

        Raises:
            ConfigError: ``p`` below 1 or above the size of the space.
        """
        counts = [len(options) for _, options in self.decisions()]
        if p < 1 or p > self.size():
            raise ConfigError(f"sample size p must be between 1 and {self.size()} (the size of this space), got {p}")
        rng = np.random.default_rng(seed)
        chosen: dict[str, None] = {}
        while len(chosen) < p:
            chosen.setdefault(self.decode([int(rng.integers(count)) for count in counts]), None)
        return list(chosen)

    def build(self, arch: str) -> "GraphNASNet":
        """The child network of ``arch``, called as ``model(x, edge_index, edge_weight)``. Weights come
        from torch's global generator.

        Raises:
            ConfigError: ``arch`` is malformed or not in this space.
            ImportError: PyTorch Geometric is not installed.
        """
        self.encode(arch)
        try:
            from harness.spaces.graphnas_net import GraphNASNet
        except ImportError as exc:
            raise ImportError("the graphnas space needs PyTorch Geometric: pip install 'condnas[graph]' "
                              "(or pip install torch_geometric)") from exc
        return GraphNASNet(parse_candidate(arch, self.num_classes), self.in_channels, self.dropout, self.pool_dim)

    def train_candidate(self, arch: str, train: GraphSplit, evaluations: dict[str, GraphSplit], protocol: Any,
                        seed: int, device: torch.device) -> dict[str, float]:
        """Train ``arch`` full-batch on ``train``'s labelled nodes and evaluate it on each named split
        (:func:`harness.graph_training.train_graph_candidate`)."""
        from harness.graph_training import train_graph_candidate

        return train_graph_candidate(self, arch, train, evaluations, protocol, seed, device)

    def check(self) -> None:
        """Raise ``ConfigError`` naming the first space parameter that is out of range."""
        for name, known in (("attentions", ATTENTIONS), ("aggregators", AGGREGATORS), ("activations", ACTIVATIONS)):
            values = getattr(self, name)
            if not values or any(v not in known for v in values) or len(set(values)) != len(values):
                raise ConfigError(f"space parameter {name} must be a non-empty list of distinct options from "
                                  f"{list(known)}, got {values!r}")
        for name in ("heads", "hidden"):
            check_int_list(name, getattr(self, name))
        for name in ("layers", "pool_dim", "in_channels", "num_classes"):
            check_int(name, getattr(self, name))
        check_dropout(self.dropout)
