"""The NAS-Bench-201 cell search space.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020.

A cell is a DAG on 4 nodes whose 6 edges ``j <- i`` (``i < j``) each carry one of 5
operations; node 0 is the cell input and node 3 its output. An architecture is
written as a string with one ``|`` group per target node, groups joined by ``+``::

    |nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|skip_connect~2|

where ``op~i`` is the operation on the edge from node ``i``. The network is the
paper's macro skeleton (xautodl's ``TinyNetwork``): a stem, ``N`` cells, a residual
reduction block, ``N`` cells, a reduction block, ``N`` cells, then pooling and a
linear classifier.
"""

from __future__ import annotations

from typing import Any

import itertools
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces._avg_pool_3x3 import replace_avg_pools
from harness.spaces._params import SpaceParams, check_int

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The 5 candidate operations, in NAS-Bench-201's order."""

EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""The 6 edges as ``(target, source)`` pairs, in the order of the arch string."""

NUM_NODES = 4

_EXAMPLE = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|skip_connect~2|"
_FORMAT_HELP = (
    "expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with each op one of "
    f"{list(OPS)}, e.g. '{_EXAMPLE}'"
)


def parse_arch(s: str) -> tuple[str, ...]:
    """Return the 6 operations of arch string ``s`` in :data:`EDGES` order.

    Raises:
        ConfigError: ``s`` is not a well-formed NAS-Bench-201 arch string (the
            message shows the expected format).
    """
    if not isinstance(s, str):
        raise ConfigError(f"invalid architecture {s!r}: not a string; {_FORMAT_HELP}")
    groups = s.split("+")
    if len(groups) != NUM_NODES - 1:
        raise ConfigError(
            f"invalid architecture {s!r}: {len(groups)} '+'-separated node groups "
            f"instead of {NUM_NODES - 1}; {_FORMAT_HELP}"
        )
    ops: list[str] = []
    for target, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise ConfigError(
                f"invalid architecture {s!r}: node group {group!r} must start and end "
                f"with '|'; {_FORMAT_HELP}"
            )
        inputs = group[1:-1].split("|")
        if len(inputs) != target:
            raise ConfigError(
                f"invalid architecture {s!r}: node {target} has {len(inputs)} inputs "
                f"instead of {target}; {_FORMAT_HELP}"
            )
        for source, item in enumerate(inputs):
            op, sep, index = item.partition("~")
            if not sep or index != str(source):
                raise ConfigError(
                    f"invalid architecture {s!r}: input {item!r} of node {target} "
                    f"should be 'op~{source}'; {_FORMAT_HELP}"
                )
            if op not in OPS:
                raise ConfigError(
                    f"invalid architecture {s!r}: unknown operation {op!r}; {_FORMAT_HELP}"
                )
            ops.append(op)
    return tuple(ops)


def format_arch(ops: tuple[str, ...] | list[str]) -> str:
    """Return the arch string of 6 operations given in :data:`EDGES` order.

    Raises:
        ConfigError: not 6 operations, or one not in :data:`OPS`.
    """
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise ConfigError(f"an architecture has {len(EDGES)} operations, got {len(ops)}: {ops}")
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ConfigError(f"unknown operations {unknown}; choose from {list(OPS)}")
    groups, start = [], 0
    for target in range(1, NUM_NODES):
        items = (f"{op}~{source}" for source, op in enumerate(ops[start : start + target]))
        groups.append("|" + "|".join(items) + "|")
        start += target
    return "+".join(groups)


@lru_cache(maxsize=None)
def _all_archs() -> tuple[str, ...]:
    return tuple(format_arch(ops) for ops in itertools.product(OPS, repeat=len(EDGES)))


@lru_cache(maxsize=None)
def _canonical(arch: str) -> str:
    ops = parse_arch(arch)
    node_terms: list[list[str]] = [["x"]]
    for target in range(1, NUM_NODES):
        terms: list[str] = []
        for (edge_target, source), op in zip(EDGES, ops):
            if edge_target != target or op == "none" or not node_terms[source]:
                continue
            if op == "skip_connect":
                terms.extend(node_terms[source])
            else:
                terms.append(f"{op}({'+'.join(node_terms[source])})")
        node_terms.append(sorted(terms))
    return "+".join(node_terms[-1]) or "0"


def _is_connected(arch: str) -> bool:
    ops = parse_arch(arch)
    reached = {0}
    for (target, source), op in zip(EDGES, ops):  # edges are in topological order
        if op != "none" and source in reached:
            reached.add(target)
    return NUM_NODES - 1 in reached


class _LogitsOnly(nn.Module):
    """Wrap a network returning ``(features, logits)`` so it returns the logits.

    On a CPU the images go in channels-last, so that every layer runs channels-last: there
    the networks train 1.2-1.4× faster than channels-first at ``cifar10-cpu``'s and the
    paper's sizes (``benchmarks/candidate_training.py --layout``). One-channel images are
    channels-last already.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of ``x`` (``B×in_channels×H×W``)."""
        if x.device.type == "cpu" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)[1]


class NasBench201Space(SpaceParams):
    """The NAS-Bench-201 space (Dong & Yang, NAS-Bench-201, ICLR 2020).

    ``__init__`` only stores its parameters (scikit-learn style); they are checked
    when a network is built.

    Args:
        C: channels of the first stage (NAS-Bench-201 uses 16).
        N: cells per stage (NAS-Bench-201 uses 5).
        in_channels: input image channels (the stem is rebuilt for them).
        num_classes: classifier outputs.
    """

    def __init__(
        self, C: int = 16, N: int = 5, in_channels: int = 3, num_classes: int = 10
    ) -> None:
        self.C = C
        self.N = N
        self.in_channels = in_channels
        self.num_classes = num_classes

    def all_archs(self) -> list[str]:
        """Return all 5**6 = 15,625 arch strings in a fixed order.

        The order is lexicographic in the operation indices of :data:`OPS`, edge by
        edge in :data:`EDGES` order (the last edge varies fastest). It is not the
        index order of the NAS-Bench-201 benchmark files.
        """
        return list(_all_archs())

    def is_connected(self, arch: str) -> bool:
        """Return whether some path from node 0 to node 3 uses only non-``none`` edges."""
        return _is_connected(arch)

    def canonical(self, arch: str) -> str:
        """Return a canonical form equal for functionally equivalent cells.

        Each node's value is a multiset of terms, computed in topological order:

        * node 0 is the single term ``x`` (the cell input);
        * an edge ``j <- i`` adds to node ``j``:
            - nothing if its op is ``none`` or node ``i`` has no terms;
            - node ``i``'s terms as they are (flattened into the sum) if its op is
              ``skip_connect``;
            - the single term ``op(canonical of node i)`` otherwise;
        * the terms of a node are sorted, so their order does not matter, and
          duplicates are kept (``x + x`` differs from ``x``).

        The result is node 3's terms joined by ``+``, or ``"0"`` when node 3 has no
        terms (every disconnected cell). Following the usual convention, an op on a
        node without terms counts as zero, and pooling is not distributed over sums.

        Raises:
            ConfigError: ``arch`` is malformed.
        """
        return _canonical(arch)

    def sample(
        self, p: int, seed: int, drop_disconnected: bool = True, drop_isomorphs: bool = True
    ) -> list[str]:
        """Return ``p`` distinct architectures drawn uniformly without replacement.

        The space is shuffled with ``numpy.random.default_rng(seed)`` and scanned in
        that order: disconnected cells are skipped if ``drop_disconnected``, and if
        ``drop_isomorphs`` only the first architecture met of each :meth:`canonical`
        class is kept. The same arguments always give the same list.

        Raises:
            ConfigError: ``p`` is below 1 or exceeds the number of architectures
                left after the filters.
        """
        if p < 1:
            raise ConfigError(f"sample size p must be at least 1, got {p}")
        archs = _all_archs()
        order = np.random.default_rng(seed).permutation(len(archs))
        chosen: list[str] = []
        seen: set[str] = set()
        for index in order:
            arch = archs[index]
            if drop_disconnected and not _is_connected(arch):
                continue
            if drop_isomorphs:
                key = _canonical(arch)
                if key in seen:
                    continue
                seen.add(key)
            chosen.append(arch)
            if len(chosen) == p:
                return chosen
        raise ConfigError(
            f"cannot sample p={p} architectures: only {len(chosen)} are available with "
            f"drop_disconnected={drop_disconnected}, drop_isomorphs={drop_isomorphs}"
        )

    def build(self, arch: str) -> nn.Module:
        """Return the network of ``arch``, a module mapping ``B×in_channels×H×W`` to logits.

        The network is xautodl's ``TinyNetwork(C, N, genotype, num_classes)`` with
        its stem rebuilt as ``Conv2d(in_channels, C, 3, padding=1, bias=False)`` +
        ``BatchNorm2d(C)`` and its ``avg_pool_3x3`` layers computed by
        :class:`~harness.spaces._avg_pool_3x3.AvgPool3x3` (the same values, faster on a CPU);
        the returned module's ``forward`` gives ``B×num_classes`` logits only, running
        channels-last on a CPU. Weights come from torch's global generator.

        Raises:
            ConfigError: ``arch`` is malformed or a parameter is not a positive integer.
            ImportError: xautodl is not installed.
        """
        for name, value in self.describe().items():
            check_int(name, value)
        parse_arch(arch)
        try:
            from xautodl.models.cell_infers.tiny_network import TinyNetwork
            from xautodl.models.cell_searchs.genotypes import Structure
        except ImportError as exc:
            raise ImportError(
                "building NAS-Bench-201 networks needs xautodl: run "
                "`pip install --no-deps xautodl==1.0.0` (or `make setup`)"
            ) from exc
        net = TinyNetwork(self.C, self.N, Structure.str2structure(arch), self.num_classes)
        net.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, self.C, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(self.C),
        )
        return _LogitsOnly(replace_avg_pools(net))

    def train_candidate(self, arch: str, train: Any, evaluations: dict[str, Any], protocol: Any, seed: int,
                        device: torch.device) -> dict[str, float]:
        """Train ``arch`` on the image split ``train`` and evaluate it on each named split.

        Every space offers this method; the oracle and the search algorithms train through
        it, so they work on any space. See :func:`harness.training.train_candidate`.
        """
        from harness.training import train_candidate

        return train_candidate(self, arch, train, evaluations, protocol, seed, device)

    def stack_networks(self, archs: list[str], networks: list[nn.Module]) -> nn.Module:
        """The networks of ``archs`` (as :meth:`build` returns them) as one module trained together.

        The module maps ``B×K×in_channels×H×W`` (slot ``k`` for ``archs[k]``) to
        ``B×K×num_classes`` logits, slot ``k`` computed with ``networks[k]``'s layers and
        weights (see :mod:`harness.spaces.nasbench201_stacked`).
        """
        from harness.spaces.nasbench201_stacked import StackedNasBench201

        return StackedNasBench201(archs, networks)

    def supernet(self, generator: torch.Generator | None = None) -> nn.Module:
        """The differentiable supernet over this space (:mod:`harness.spaces.nasbench201_supernet`)."""
        from harness.spaces.nasbench201_supernet import NasBench201Supernet

        return NasBench201Supernet.from_space(self, generator=generator)
