"""Many NAS-Bench-201 networks computed as one module, for training candidates together.

``K`` networks of :meth:`NasBench201Space.build` (xautodl's ``TinyNetwork``), each with its
own cell and its own weights, become *members* of one :class:`StackedNasBench201`:

* activations are ``B×H×W×K×C`` (member ``k``'s channels in slot ``k``), seen by every
  convolution, batch norm and pooling as a channels-last ``B×(K·C)×H×W`` image batch (much
  faster on a CPU than channels-first for these many narrow channels);
* every convolution is grouped over the members that run it, every batch norm is per
  channel, the classifier is a batched matmul — so no number crosses between members;
* in each cell, every operation on the edges leaving a node runs once, on the slots of the
  (edge, member) pairs that have it (gathered along the member axis), and each output is
  added into its target node in edge order, as ``TinyNetwork`` sums the edges of a node.

Member ``k`` therefore computes exactly its own network (up to float rounding of the
grouped kernels), with fewer and larger kernels than ``K`` networks run one at a time: on a
CPU the grouped convolutions cost 1.5-2.5× less per member than a lone network's at batch
64, and each operation's fixed overhead is paid once for all members.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import ConfigError
from harness.spaces._avg_pool_3x3 import AvgPool3x3
from harness.spaces.nasbench201 import EDGES, NUM_NODES, parse_arch

_CONV_OPS = ("nor_conv_1x1", "nor_conv_3x3")


class _Stacked(nn.Module):
    """A module whose tensors are the members' own, concatenated along dim 0 in member order.

    :meth:`write_back` copies the current values back into the members' tensors.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sources: dict[str, list[torch.Tensor]] = {}

    def _stack(self, name: str, tensors: list[torch.Tensor], parameter: bool = True) -> None:
        value = torch.cat([t.detach() for t in tensors]).clone()
        if parameter:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)
        self._sources[name] = tensors

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy every stacked tensor's slices back into the members' tensors it was built from."""
        for name, targets in self._sources.items():
            for target, part in zip(targets, getattr(self, name).split([t.shape[0] for t in targets])):
                target.copy_(part)


class _StackedBatchNorm(_Stacked):
    """The members' ``BatchNorm2d`` side by side: one batch norm over all their channels (``B×ΣC×H×W``)."""

    def __init__(self, norms: list[nn.BatchNorm2d]) -> None:
        super().__init__()
        first = norms[0]
        if not (first.affine and first.track_running_stats and first.momentum is not None):
            raise ConfigError("can only stack affine batch norms with running statistics and a momentum")
        self.eps, self.momentum = first.eps, first.momentum
        self._norms = norms
        for name in ("weight", "bias"):
            self._stack(name, [getattr(n, name) for n in norms])
        for name in ("running_mean", "running_var"):
            self._stack(name, [getattr(n, name) for n in norms], parameter=False)
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x`` as ``BatchNorm2d`` does (batch statistics when training, running ones in eval)."""
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            self.momentum, self.eps)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the weights, running statistics and batch count back into the members' norms."""
        super().write_back()
        for norm in self._norms:
            norm.num_batches_tracked.copy_(self.num_batches_tracked)


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """View member activations ``B×H×W×M×C`` as a channels-last image batch ``B×(M·C)×H×W``."""
    return x.flatten(3).permute(0, 3, 1, 2)


def _as_members(y: torch.Tensor, members: int) -> torch.Tensor:
    """The inverse of :func:`_as_images`: ``B×(M·C)×H×W`` → ``B×H×W×M×C``."""
    return y.permute(0, 2, 3, 1).reshape(*y.shape[:1], *y.shape[2:], members, -1)


class _GroupedConv(_Stacked):
    """Optional ReLU, a convolution per member, optional batch norm: ``B×H×W×M×C_in`` → ``B×H'×W'×M×C_out``.

    Built from the members' own ``Conv2d`` (and ``BatchNorm2d``) modules, in member order.
    """

    def __init__(self, convs: list[nn.Conv2d], norms: list[nn.BatchNorm2d] | None, relu: bool) -> None:
        super().__init__()
        first = convs[0]
        self.relu = relu
        self.stride, self.padding = first.stride, first.padding
        self._stack("weight", [c.weight for c in convs])
        if first.bias is not None:
            self._stack("bias", [c.bias for c in convs])
        else:
            self.register_parameter("bias", None)
        self.norm = _StackedBatchNorm(norms) if norms else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply each member's layers to its slot of ``x`` (``B×H×W×M×C_in``)."""
        members = x.shape[3]
        if self.relu:
            x = F.relu(x)
        y = F.conv2d(_as_images(x), self.weight, self.bias, self.stride, self.padding, groups=members)
        if self.norm is not None:
            y = self.norm(y)
        return _as_members(y, members)


def _relu_conv_bn(blocks: list[nn.Module]) -> _GroupedConv:
    """Stack xautodl ``ReLUConvBN`` blocks (``.op = ReLU, Conv2d, BatchNorm2d``)."""
    return _GroupedConv([b.op[1] for b in blocks], [b.op[2] for b in blocks], relu=True)


class _AvgPool(nn.Module):
    """NAS-Bench-201's ``avg_pool_3x3`` (no padding counted) on ``B×H×W×M×C``."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = AvgPool3x3()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool every channel of every member."""
        return _as_members(self.pool(_as_images(x)), x.shape[3])


class _Identity(nn.Module):
    """NAS-Bench-201's ``skip_connect`` inside a cell."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` unchanged."""
        return x


class _Branch(nn.Module):
    """One operation on the edges leaving one node, run for every member whose cell has it there.

    The operation runs once over the gathered slots of all those (edge, member) pairs; its
    output is then cut into one segment per edge, added into that edge's target node.

    Attributes:
        source: the node the edges leave.
        targets: each segment's target node, in edge order.
        sizes: each segment's number of members.
        gather: the member slots of all segments, concatenated (long tensor).
        op: the stacked operation over those slots.
    """

    def __init__(self, source: int, segments: list[tuple[int, list[int]]], op: nn.Module) -> None:
        super().__init__()
        self.source = source
        self.targets = [target for target, _ in segments]
        self.sizes = [len(members) for _, members in segments]
        self.register_buffer("gather", torch.tensor([k for _, members in segments for k in members]))
        for i, (_, members) in enumerate(segments):
            self.register_buffer(f"members_{i}", torch.tensor(members))
        self.op = op

    def segments(self, x: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(target, member slots, output)`` of each segment, given the gathered slots ``x``."""
        outputs = self.op(x).split(self.sizes, dim=3)
        return [(target, getattr(self, f"members_{i}"), out)
                for i, (target, out) in enumerate(zip(self.targets, outputs))]


def _cell_op(op: str, layers: list[nn.Module]) -> nn.Module:
    if op in _CONV_OPS:
        return _relu_conv_bn(layers)
    if op == "avg_pool_3x3":
        if any(layer.preprocess is not None for layer in layers):
            raise ConfigError("cannot stack a pooling op that changes channels (not a NAS-Bench-201 cell)")
        return _AvgPool()
    return _Identity()


class _GatherMembers(torch.autograd.Function):
    """The member slots ``members[b]`` of a node ``B×H×W×K×C``, for each branch ``b`` leaving it.

    Autograd would give each gather its own node-sized zero gradient and then add them up;
    this backward fills one and adds every branch's gradient into its slots.
    """

    @staticmethod
    def forward(ctx: Any, node: torch.Tensor, members: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Return one ``B×H×W×len(members[b])×C`` tensor per branch."""
        ctx.members, ctx.shape, ctx.dtype, ctx.device = members, node.shape, node.dtype, node.device
        rows = node.reshape(-1, *node.shape[3:])  # (B·H·W)×K×C
        return tuple(rows.index_select(1, index).view(*node.shape[:3], len(index), -1) for index in members)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        """Scatter-add every branch's gradient into one node-sized gradient."""
        grad = torch.zeros(ctx.shape, dtype=ctx.dtype, device=ctx.device)
        for index, part in zip(ctx.members, grads):
            if part is not None:
                grad.index_add_(3, index, part)
        return grad, None


class _StackedCell(nn.Module):
    """The members' cells (xautodl ``InferCell``) at one position: ``B×H×W×K×C`` → same.

    Once a node is computed, each operation on the edges leaving it runs once (a
    :class:`_Branch`); node ``j`` is then the sum of its segments, added in edge order so each
    member sums its edges as ``InferCell`` does. A node no edge reaches stays zero.
    """

    def __init__(self, cells: list[nn.Module], member_ops: list[tuple[str, ...]]) -> None:
        super().__init__()
        branches = []
        for source in range(NUM_NODES - 1):
            edges = [(e, target) for e, (target, edge_source) in enumerate(EDGES) if edge_source == source]
            for op in sorted({ops[e] for ops in member_ops for e, _ in edges} - {"none"}):
                users = [(e, target, [k for k, ops in enumerate(member_ops) if ops[e] == op]) for e, target in edges]
                users = [(e, target, members) for e, target, members in users if members]
                layers = [cells[k].layers[e] for e, _, members in users for k in members]
                branches.append(_Branch(source, [(target, members) for _, target, members in users],
                                        _cell_op(op, layers)))
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute nodes 1..3 in order, each the sum of its incoming edges in edge order."""
        incoming: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {j: [] for j in range(1, NUM_NODES)}
        node = x
        for target in range(1, NUM_NODES):
            leaving = [branch for branch in self.branches if branch.source == target - 1]
            if leaving:
                for branch, piece in zip(leaving, _GatherMembers.apply(node, tuple(b.gather for b in leaving))):
                    for segment_target, members, out in branch.segments(piece):
                        incoming[segment_target].append((members, out))
            node = torch.zeros_like(x)
            for members, out in incoming[target]:
                node.index_add_(3, members, out)
        return node


class _StackedReduction(nn.Module):
    """The members' residual reduction blocks (xautodl ``ResNetBasicblock``, stride 2)."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn([b.conv_a for b in blocks])
        self.conv_b = _relu_conv_bn([b.conv_b for b in blocks])
        self.shortcut = _GroupedConv([b.downsample[1] for b in blocks], None, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``shortcut(avgpool(x)) + conv_b(conv_a(x))`` per member: ``B×H×W×K×C`` → ``B×H/2×W/2×K×2C``."""
        residual = self.shortcut(_as_members(F.avg_pool2d(_as_images(x), 2, 2), x.shape[3]))
        return residual + self.conv_b(self.conv_a(x))


class StackedNasBench201(_Stacked):
    """``K`` NAS-Bench-201 networks as one module: ``B×K×in_channels×H×W`` → ``B×K×num_classes``.

    Member ``k`` sees slot ``k`` of the input (its own batch) and gives slot ``k`` of the
    logits, computed with the layers and weights copied from ``networks[k]``; :meth:`unstack`
    copies the trained weights back into those networks.

    Args:
        archs: the members' arch strings.
        networks: the members' networks, as :meth:`NasBench201Space.build` returns them
            (same ``C``, ``N``, ``in_channels`` and ``num_classes``), already initialized.

    Attributes:
        members: ``K``.

    Raises:
        ConfigError: no members, a count mismatch, or networks of different shapes.
    """

    def __init__(self, archs: list[str], networks: list[nn.Module]) -> None:
        super().__init__()
        if not archs or len(archs) != len(networks):
            raise ConfigError(f"need one network per arch and at least one, got {len(archs)} archs "
                              f"and {len(networks)} networks")
        nets = [network.net for network in networks]  # unwrap _LogitsOnly
        if len({len(net.cells) for net in nets}) != 1 or len({net.classifier.weight.shape for net in nets}) != 1:
            raise ConfigError("cannot stack NAS-Bench-201 networks of different C, N or num_classes")
        member_ops = [parse_arch(arch) for arch in archs]
        self.members = len(nets)
        self._networks = list(networks)
        self.stem = _GroupedConv([net.stem[0] for net in nets], [net.stem[1] for net in nets], relu=False)
        self.cells = nn.ModuleList(
            _StackedReduction([net.cells[i] for net in nets]) if hasattr(nets[0].cells[i], "conv_a")
            else _StackedCell([net.cells[i] for net in nets], member_ops)
            for i in range(len(nets[0].cells)))
        self.lastact = _StackedBatchNorm([net.lastact[0] for net in nets])
        self._stack("weight", [net.classifier.weight for net in nets])
        self._stack("bias", [net.classifier.bias for net in nets])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``B×K×num_classes`` logits of ``x`` (``B×K×in_channels×H×W``)."""
        if x.dim() != 5 or x.shape[1] != self.members:
            raise ConfigError(f"expected input B×{self.members}×C×H×W (one slot per member), got {tuple(x.shape)}")
        feature = self.stem(x.permute(0, 3, 4, 1, 2).contiguous())
        for cell in self.cells:
            feature = cell(feature)
        pooled = F.relu(self.lastact(_as_images(feature))).mean(dim=(2, 3)).view(x.shape[0], self.members, -1)
        weight = self.weight.view(self.members, -1, pooled.shape[-1])
        return torch.einsum("bkc,koc->bko", pooled, weight) + self.bias.view(self.members, -1)

    def unstack(self) -> list[nn.Module]:
        """The members' networks (as given), holding this module's current weights and statistics."""
        for module in self.modules():
            if isinstance(module, _Stacked):
                module.write_back()
        return self._networks
