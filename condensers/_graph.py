"""What the graph condensers share: per-class node budgets, induced-subgraph proxies, and the
gradient-matching loop of GCond (Jin et al., "Graph Condensation for Graph Neural Networks",
ICLR 2022, Algorithm 1) with a pluggable synthetic adjacency.

**Budgets.** On a graph task ``ipc`` counts the proxy's *training* nodes per class, so the
paper's ratio is ``c_train / n = K · ipc / n`` (Table 2). The proxy's validation nodes keep
the task's own val-to-train ratio class by class: class ``c`` gets
``max(1, round(ipc · |val_c| / |train_c|))`` of them (:func:`graph_split_counts`), which is
never more than the task has when ``ipc ≤ |train_c|``.

**Proxies.** A proxy is one graph holding its train and val nodes, with a mask for each
(``ProxyData.train`` and ``ProxyData.val`` share the graph), just as the original task is one
graph with masks: training runs transductively over the whole proxy graph.

**Gradient matching.** :class:`GraphMatchingCondenser` learns synthetic node features
``X'`` (``n'×F``, ``n' = Σ_c (train_c + val_c)``) and, in subclasses, the synthetic adjacency.
Each iteration draws a fresh SGC (Wu et al. 2019; GCond's model for Cora),
``logits = Ã^k X W + b``, and alternates ``outer_loop`` times: one step on the synthetic graph
minimizing ``Σ_c (n'_c / max n') · D(∇_W L(real_c), ∇_W L(syn_c))`` (``D``: the layer-wise
distance of :func:`condensers._matching.gradient_distance`; real_c: class ``c``'s labelled
training nodes on the whole original graph, ``Ã^k X`` precomputed once), then ``inner_loop``
Adam steps of the SGC on the (detached) synthetic graph. The learned nodes are finally split at
random, per class, into proxy train and proxy val nodes (the paper's protocol for baselines).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from condensers._matching import check_positive_float, check_positive_int, gradient_distance, run_iterations
from harness._values import is_int
from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.seeding import derive_seed
from harness.spaces.polynomial_filter import normalized_adjacency
from harness.types import GraphSplit, ProxyData, RunContext, Task


def labelled_by_class(split: GraphSplit, num_classes: int) -> list[torch.Tensor]:
    """Positions of the labelled (masked) nodes of each class in ``split``'s graph."""
    mask = split.mask if split.mask is not None else torch.ones_like(split.y, dtype=torch.bool)
    return [torch.nonzero(mask & (split.y == c), as_tuple=True)[0] for c in range(num_classes)]


def graph_split_counts(task: Task, ipc: int | None) -> list[tuple[int, int]]:
    """``(train, val)`` proxy nodes of each class: ``ipc`` and ``max(1, round(ipc·|val_c|/|train_c|))``.

    Raises:
        ConfigError: ``ipc`` missing or below 1, or a class without training nodes.
    """
    if not is_int(ipc) or ipc < 1:
        raise ConfigError(f"graph proxies need ipc >= 1 training nodes per class, got {ipc!r}")
    train = labelled_by_class(task.train, task.num_classes)
    val = labelled_by_class(task.val, task.num_classes)
    counts = []
    for c, (t, v) in enumerate(zip(train, val)):
        if len(t) == 0:
            raise ConfigError(f"class {c} has no training nodes; a proxy cannot keep the class")
        counts.append((ipc, max(1, round(ipc * len(v) / len(t)))))
    return counts


def masked_pair(graph: GraphSplit, n_train: int) -> ProxyData:
    """The proxy whose graph is ``graph``: its first ``n_train`` nodes labelled for training, the
    rest for validation."""
    train_mask = torch.zeros(len(graph.y), dtype=torch.bool, device=graph.y.device)
    train_mask[:n_train] = True
    return ProxyData(train=GraphSplit(graph.x, graph.y, graph.edge_index, graph.edge_weight, train_mask),
                     val=GraphSplit(graph.x, graph.y, graph.edge_index, graph.edge_weight, ~train_mask))


def induced_proxy(graph: GraphSplit, train_nodes: torch.Tensor, val_nodes: torch.Tensor) -> ProxyData:
    """The subgraph induced by ``train_nodes ∪ val_nodes`` (train nodes first), masked as a proxy."""
    sub = graph.subset(torch.cat([train_nodes, val_nodes]))
    return masked_pair(sub, len(train_nodes))


def dense_normalized(adjacency: torch.Tensor) -> torch.Tensor:
    """``D̃^{-1/2} (A + I) D̃^{-1/2}`` of a dense non-negative ``n×n`` adjacency (differentiable)."""
    a = adjacency + torch.eye(len(adjacency), device=adjacency.device, dtype=adjacency.dtype)
    scale = a.sum(1).pow(-0.5)
    return scale[:, None] * a * scale[None, :]


def dense_to_edges(adjacency: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(edge_index 2×E, edge_weight E)`` of the off-diagonal entries of ``adjacency`` above ``threshold``."""
    off = adjacency.detach().clone()
    off.fill_diagonal_(0)
    target, source = torch.nonzero(off > threshold, as_tuple=True)
    return torch.stack([source, target]), off[target, source]


class GraphMatchingCondenser(Condenser):
    """The GCond gradient-matching loop shared by ``gcond`` and ``gcond_x`` (see the module docstring).

    Subclasses set the synthetic adjacency: :meth:`adjacency_module` returns a learnable module
    mapping synthetic features ``n'×F`` to a dense ``n'×n'`` adjacency (or ``None`` for no
    edges, GCond-X's identity after self-loops), :meth:`updates_adjacency` says in which
    iterations its parameters step instead of the features, and the final dense adjacency keeps
    the entries above ``threshold`` as weighted edges.

    Common parameters: ``iterations`` (GCond's epochs), ``outer_loop``, ``inner_loop``,
    ``lr_feat`` (Adam on the features), ``lr_model`` (Adam on the SGC), ``hops`` (the SGC's
    ``k``) and ``batch_real`` (at most this many real training nodes per class and step).
    ``meta`` records the iterations done, the final ``matching_loss``, the window means of the
    loss (``loss_curve``), the proxy's edge count and whether the budget stopped the loop.
    """

    modalities = ("graph",)
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key, minimum in (("iterations", 0), ("outer_loop", 1), ("inner_loop", 0), ("hops", 1),
                             ("batch_real", 1)):
            check_positive_int(self.name, key, self.params[key], minimum)
        for key in ("lr_feat", "lr_model"):
            check_positive_float(self.name, key, self.params[key])

    def adjacency_module(self, num_features: int) -> nn.Module | None:
        """The learnable ``features ↦ dense adjacency`` map, or ``None`` for a graph without edges."""
        return None

    def updates_adjacency(self, iteration: int) -> bool:
        """Whether iteration ``iteration`` steps the adjacency module instead of the features."""
        return False

    def final_edges(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The proxy's weighted edges from the final dense adjacency."""
        raise NotImplementedError

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Learn ``Σ_c (train_c + val_c)`` synthetic nodes (:func:`graph_split_counts`) and split them.

        Raises:
            ConfigError: ``ipc`` below 1 or a class without training nodes.
            DivergedError: the synthetic features became NaN or infinite.
        """
        deadline = ctx.deadline()
        counts = graph_split_counts(task, ipc)
        generator = ctx.generator(self.name)
        device = ctx.device
        real = _RealGradients(task, self.params["hops"], self.params["batch_real"], device)
        sizes = [t + v for t, v in counts]
        labels = torch.arange(task.num_classes, device=device).repeat_interleave(torch.tensor(sizes, device=device))
        features = _initial_features(task, sizes, generator).to(device).requires_grad_(True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(ctx.seed, self.name, "adjacency"))
            adjacency = self.adjacency_module(task.in_channels)
        groups = {"features": ([features], torch.optim.Adam([features], lr=self.params["lr_feat"]))}
        if adjacency is not None:
            adjacency = adjacency.to(device)
            groups["adjacency"] = (list(adjacency.parameters()),
                                   torch.optim.Adam(adjacency.parameters(), lr=self.params["lr_adj"]))
        weights = [size / max(sizes) for size in sizes]

        def step(it: int) -> float:
            group = groups["adjacency" if adjacency is not None and self.updates_adjacency(it) else "features"]
            return self._iteration(it, ctx, real, features, labels, adjacency, group, weights, generator)

        loop = run_iterations(self.name, self.params["iterations"], deadline, step, features, "features",
                              "lr_feat", self.params["lr_feat"])
        return self._proxy(task, counts, features.detach(), labels, adjacency, ctx, {"ipc": ipc, **loop})

    def _iteration(self, it: int, ctx: RunContext, real: "_RealGradients", features: torch.Tensor,
                   labels: torch.Tensor, adjacency: nn.Module | None,
                   group: tuple[list[torch.Tensor], torch.optim.Optimizer], weights: list[float],
                   generator: torch.Generator) -> float:
        """One GCond epoch on a fresh SGC, stepping only ``group`` (the features or the adjacency
        module); returns the mean weighted distance per outer step."""
        tensors, optimizer = group
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(ctx.seed, self.name, "net", it))
            net = nn.Linear(features.shape[1], len(real.nodes)).to(features.device)
        net_opt = torch.optim.Adam(net.parameters(), lr=self.params["lr_model"])
        hops, total = self.params["hops"], 0.0
        for step in range(self.params["outer_loop"]):
            operator = _synthetic_operator(features, adjacency)
            propagated = _propagate_dense(operator, features, hops)
            loss = features.new_zeros(())
            for c in range(len(real.nodes)):
                grads_real = real.gradients(net, c, generator)
                syn = labels == c
                syn_loss = F.cross_entropy(net(propagated[syn]), labels[syn])
                grads_syn = torch.autograd.grad(syn_loss, list(net.parameters()), create_graph=True)
                loss = loss + weights[c] * gradient_distance(list(grads_syn), grads_real)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss, inputs=tensors)
            optimizer.step()
            total += loss.item()
            if step == self.params["outer_loop"] - 1:
                break
            with torch.no_grad():
                fixed = _propagate_dense(_synthetic_operator(features, adjacency), features, hops)
            for _ in range(self.params["inner_loop"]):
                net_opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(fixed), labels).backward()
                net_opt.step()
        return total / self.params["outer_loop"]

    def _proxy(self, task: Task, counts: list[tuple[int, int]], features: torch.Tensor, labels: torch.Tensor,
               adjacency: nn.Module | None, ctx: RunContext, meta: dict[str, Any]) -> ProxyData:
        """Split the synthetic nodes at random per class into train / val and build the proxy graph."""
        if adjacency is None:
            edge_index = torch.empty(2, 0, dtype=torch.long, device=features.device)
            edge_weight = None
        else:
            with torch.no_grad():
                edge_index, edge_weight = self.final_edges(adjacency(features))
        generator = ctx.generator(f"{self.name}-split")
        train_parts, val_parts, offset = [], [], 0
        for n_train, n_val in counts:
            order = offset + torch.randperm(n_train + n_val, generator=generator).to(features.device)
            train_parts.append(order[:n_train])
            val_parts.append(order[n_train:])
            offset += n_train + n_val
        graph = GraphSplit(features.clone(), labels.clone(), edge_index, edge_weight)
        proxy = induced_proxy(graph, torch.cat(train_parts), torch.cat(val_parts))
        proxy.meta = {**meta, "num_edges": int(proxy.train.edge_index.shape[1])}
        return proxy


class _RealGradients:
    """∇_W of the SGC loss on each class's labelled training nodes of the original graph.

    ``Ã^k X`` of the whole graph is computed once (SGC has no weights inside the propagation), so a
    real gradient costs one linear layer on the class's rows.
    """

    def __init__(self, task: Task, hops: int, batch_real: int, device: torch.device) -> None:
        graph = task.train.to(device)
        operator = normalized_adjacency(graph.edge_index, graph.edge_weight, graph.x.shape[0])
        propagated = graph.x
        for _ in range(hops):
            propagated = torch.sparse.mm(operator, propagated)
        self.features = propagated
        self.nodes = labelled_by_class(graph, task.num_classes)
        self.batch_real = batch_real

    def gradients(self, net: nn.Linear, c: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Detached ``∇_{W,b}`` of the cross-entropy of at most ``batch_real`` class-``c`` nodes."""
        nodes = self.nodes[c]
        if len(nodes) > self.batch_real:
            nodes = nodes[torch.randperm(len(nodes), generator=generator)[:self.batch_real].to(nodes.device)]
        target = torch.full((len(nodes),), c, device=nodes.device)
        loss = F.cross_entropy(net(self.features[nodes]), target)
        return [g.detach() for g in torch.autograd.grad(loss, list(net.parameters()))]


def _initial_features(task: Task, sizes: list[int], generator: torch.Generator) -> torch.Tensor:
    """Synthetic features of class ``c`` start as copies of random labelled class-``c`` nodes:
    training nodes first, then validation nodes, repeating only when both run out."""
    train = labelled_by_class(task.train, task.num_classes)
    val = labelled_by_class(task.val, task.num_classes)
    rows = []
    for size, t, v in zip(sizes, train, val):
        pool = torch.cat([t[torch.randperm(len(t), generator=generator)], v[torch.randperm(len(v), generator=generator)]])
        rows.append(pool[torch.arange(size) % len(pool)])
    return task.train.x[torch.cat(rows)].detach().clone().float()


def _synthetic_operator(features: torch.Tensor, adjacency: nn.Module | None) -> torch.Tensor | None:
    """``Ã'`` of the synthetic graph (``None`` for the identity of a graph without edges)."""
    return None if adjacency is None else dense_normalized(adjacency(features))


def _propagate_dense(operator: torch.Tensor | None, features: torch.Tensor, hops: int) -> torch.Tensor:
    """``Ã'^k X'`` (``X'`` itself when the operator is the identity)."""
    if operator is None:
        return features
    for _ in range(hops):
        features = operator @ features
    return features
