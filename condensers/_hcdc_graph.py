"""HCDC on graph tasks: synthetic validation nodes calibrated on hypergradients over the continuous
space of polynomial graph filters (Ding et al., "Calibrated Dataset Condensation for Faster
Hyperparameter Search", sections 4-5, Algorithm 1, appendices C.3, G, H and J).

The ``hcdc`` plugin dispatches graph tasks here (:func:`condense_graph` with the mapping of its
``graph`` parameter). λ are the coefficients of the filter ``C_λ = Σ_k λ_k B^k`` of
:mod:`harness.spaces.polynomial_filter`, shared by the layers of a
:class:`~harness.spaces.polynomial_filter.PolynomialFilterNet`; θ are its weights.

* ``S_train``: the train source's proxy (``gcond`` by default) restricted to its training nodes
  and the edges among them (the inductive setting of appendix C.1, so the training loss does not
  read ``S_val``); it is kept fixed.
* ``S_val``: the train source's whole proxy graph, whose validation nodes' features are learned
  (the structure, and the training nodes they attach to, stay the train source's). They start
  from the train source's val nodes (``val_init: "source"``) or from random original val nodes
  of the same class (``"real"``).
* For each of ``repeats`` repeats and each of ``trajectories`` starting filters λ (sampled from
  the polynomial space with ``candidate_seed``): a fresh network θ trained with Adam (``lr_net``,
  ``weight_decay``, dropout) on ``S_train`` under λ, one Adam step per epoch for ``epochs``
  epochs; with ``real_weights: "trained"`` a copy θ_T trained alongside on the original graph
  under the same λ (``"shared"``: θ itself). After epochs ``t`` with ``t mod lambda_period = 0``:

  1. ``h_S = ∇λ L*_S(λ)`` on ``(S_train, S_val)`` at θ (IFT, ``neumann_terms`` Hessian-vector
     products with step ``neumann_alpha``), differentiable in the learned val features;
  2. ``h_T = ∇λ L*_T(λ)`` on the original graph at θ_T (train-mask loss, val-mask loss);
  3. one Adam step (``lr_val``) on the val features against ``D_c(h_T, h_S) = 1 − cos``;
  4. ``λ ← λ − lr_lambda · h_S`` (the HPO trajectory of section 5.2 / appendix H).

Hypergradients are taken with dropout off; the training losses include the
``½ · weight_decay · ‖θ‖²`` that Adam's weight decay adds to their gradient. The space
parameters (``order``, ``basis``, ``hidden``, ``layers``, ``dropout``, ``coef_low``,
``coef_high``) should match the sweep's ``polynomial_filter`` space.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from condensers._graph import labelled_by_class
from condensers._hcdc_common import (REAL_WEIGHTS, SettingsRules, calibration_meta, check_settings, fetch_train_source,
                                     merged_settings, run_trajectories)
from harness.errors import ConfigError
from harness.graph_training import labelled
from harness.hypergradient import Loss, calibration_step, hypergradient
from harness.seeding import derive_seed
from harness.spaces.polynomial_filter import BASES, PolynomialFilterNet, PolynomialFilterSpace, normalized_adjacency
from harness.types import Deadline, GraphSplit, ProxyData, RunContext, Task

GRAPH_DEFAULTS: dict[str, Any] = {
    "train_source": "gcond", "train_source_params": {},
    "trajectories": 80, "candidate_seed": None, "repeats": 1,
    "epochs": 200, "lambda_period": 20,
    "lr_net": 0.01, "weight_decay": 5e-4, "lr_lambda": 0.05, "lr_val": 0.01,
    "neumann_terms": 10, "neumann_alpha": 0.01,
    "order": 2, "basis": "adjacency", "hidden": 64, "layers": 2, "dropout": 0.5,
    "coef_low": 0.0, "coef_high": 1.0,
    "val_init": "source", "real_weights": "trained",
}
"""The graph settings (the paper's 80 configurations and 2-layer networks; the rest are ours)."""

GRAPH_TEST_PARAMS: dict[str, Any] = {
    "train_source": "random", "trajectories": 2, "epochs": 4, "lambda_period": 2, "neumann_terms": 2, "hidden": 8,
}
"""Settings small enough for the conformance kit."""

VAL_INITS: tuple[str, ...] = ("source", "real")
_RULES = SettingsRules(
    prefix="graph.",
    ints={"trajectories": 1, "repeats": 1, "epochs": 1, "lambda_period": 1, "order": 0, "hidden": 1, "layers": 1},
    positive=("lr_net", "lr_lambda", "lr_val"),
    choices={"val_init": VAL_INITS, "real_weights": REAL_WEIGHTS, "basis": BASES},
    example_source="gcond",
)


def graph_settings(params: dict[str, Any]) -> dict[str, Any]:
    """:data:`GRAPH_DEFAULTS` overridden by ``params``, checked.

    Raises:
        ConfigError: an unknown key or a value out of range (the message names it).
    """
    p = merged_settings("graph", GRAPH_DEFAULTS, params)
    check_settings(p, _RULES)
    _space(p, 1, 2).check()
    return p


def _space(p: dict[str, Any], in_channels: int, num_classes: int) -> PolynomialFilterSpace:
    return PolynomialFilterSpace(order=p["order"], basis=p["basis"], hidden=p["hidden"], layers=p["layers"],
                                 dropout=p["dropout"], coef_low=p["coef_low"], coef_high=p["coef_high"],
                                 in_channels=in_channels, num_classes=num_classes)


class _Graphs:
    """The fixed inputs of both sides: the original graph, ``S_train`` and the ``S_val`` graph whose
    val-node features (:attr:`val_x`, a leaf) are learned."""

    def __init__(self, task: Task, upstream: ProxyData, val_init: str, generator: torch.Generator,
                 device: torch.device) -> None:
        source = upstream.train.to(device)
        self.s_train = source.subset(labelled(source))
        self.val_nodes = labelled(upstream.val.to(device))
        self.val_graph = upstream.val.to(device)
        init = self.val_graph.x[self.val_nodes]
        if val_init == "real":
            init = _real_val_features(task, self.val_graph.y[self.val_nodes].cpu(), generator).to(device)
        self.val_x = init.detach().clone().requires_grad_(True)
        self.val_operator = normalized_adjacency(self.val_graph.edge_index, self.val_graph.edge_weight,
                                                 len(self.val_graph.y))
        self.real_train, self.real_val = task.train.to(device), task.val.to(device)
        self.train_inputs = PolynomialFilterNet.graph_inputs(self.s_train)
        self.real_inputs = PolynomialFilterNet.graph_inputs(self.real_train)

    def val_features(self) -> torch.Tensor:
        """The ``S_val`` graph's features with the learned val rows in place (differentiable)."""
        return self.val_graph.x.detach().index_put((self.val_nodes,), self.val_x)

    def proxy(self) -> ProxyData:
        """``ProxyData(S_train, S_val graph with its val mask)``, detached."""
        v = self.val_graph
        val = GraphSplit(self.val_features().detach().clone(), v.y.clone(), v.edge_index.clone(),
                         None if v.edge_weight is None else v.edge_weight.clone(), v.mask.clone())
        return ProxyData(train=self.s_train, val=val)


def _real_val_features(task: Task, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Features of random original val nodes, one of the same class per label (distinct while they last)."""
    pools = labelled_by_class(task.val, task.num_classes)
    rows = torch.empty(len(labels), dtype=torch.long)
    for c, pool in enumerate(pools):
        where = torch.nonzero(labels == c, as_tuple=True)[0]
        if len(where) and not len(pool):
            raise ConfigError(f"hcdc: class {c} has no original val nodes to initialize from; use val_init 'source'")
        picks = pool[torch.randperm(len(pool), generator=generator)]
        rows[where] = picks[torch.arange(len(where)) % max(1, len(pool))]
    return task.val.x[rows]


def condense_graph(task: Task, ipc: int | None, ctx: RunContext, params: dict[str, Any]) -> ProxyData:
    """HCDC (Algorithm 1) on a graph task: keep the train source's training nodes, learn its val nodes.

    Args:
        task: a graph task.
        ipc: proxy training nodes per class (passed to the train source).
        ctx: the run context (seed, device, budget, the sweep's shared cache through ``proxy_from``).
        params: graph settings (:data:`GRAPH_DEFAULTS` keys).

    Raises:
        ConfigError: bad settings or ``ipc``.
        DivergedError: a hypergradient or the learned features became NaN or infinite.
    """
    p = graph_settings(params)
    if ipc is None:
        raise ConfigError("hcdc needs ipc (training nodes per class on a graph); set ipc in the sweep config")
    upstream, fetch_seconds = fetch_train_source(task, ipc, ctx, p)
    deadline = ctx.deadline()
    generator = ctx.generator("hcdc-graph")
    graphs = _Graphs(task, upstream, p["val_init"], generator, ctx.device)
    optimizer = torch.optim.Adam([graphs.val_x], lr=p["lr_val"])
    space = _space(p, task.in_channels, task.num_classes)
    candidate_seed = p["candidate_seed"] if p["candidate_seed"] is not None else derive_seed(ctx.seed, "hcdc",
                                                                                             "candidates")
    starts = space.sample(p["trajectories"], candidate_seed)

    def trajectory(k: int, i: int, arch: str) -> tuple[list[float], torch.Tensor, torch.Tensor]:
        lam_start = space.coefficients(arch).to(ctx.device)
        net = _network(space, arch, derive_seed(ctx.seed, "hcdc-graph", k, i), ctx.device)
        distances, lam = _trajectory(p, net, lam_start, graphs, optimizer, deadline, ctx)
        return distances, lam_start, lam

    calibration = run_trajectories(starts, p["repeats"], deadline, trajectory, ctx.progress)
    proxy = graphs.proxy()
    proxy.meta = {**calibration_meta(ipc, p, upstream, fetch_seconds, deadline, calibration),
                  "trajectory_starts": starts, "num_edges": int(proxy.val.edge_index.shape[1])}
    return proxy


def _network(space: PolynomialFilterSpace, arch: str, seed: int, device: torch.device) -> PolynomialFilterNet:
    """A network whose weights depend only on ``seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch).to(device)


def _trajectory(p: dict[str, Any], net_s: PolynomialFilterNet, lam: torch.Tensor, graphs: _Graphs,
                optimizer: torch.optim.Optimizer, deadline: Deadline,
                ctx: RunContext) -> tuple[list[float], torch.Tensor]:
    """One HPO trajectory of Algorithm 1 (lines 2-8); returns its cosine distances and final λ."""
    net_t = copy.deepcopy(net_s) if p["real_weights"] == "trained" else None
    sides = [(net_s, graphs.s_train, graphs.train_inputs)]
    if net_t is not None:
        sides.append((net_t, graphs.real_train, graphs.real_inputs))
    steppers = [(net, split, inputs, labelled(split),
                 torch.optim.Adam(net.parameters(), lr=p["lr_net"], weight_decay=p["weight_decay"]))
                for net, split, inputs in sides]
    distances: list[float] = []
    for t in range(p["epochs"]):
        if deadline.expired():
            break
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(ctx.seed, "hcdc-graph-dropout", t))
            for net, split, inputs, nodes, opt in steppers:
                net.train()
                loss = F.cross_entropy(net(*inputs, coefficients=lam)[nodes], split.y[nodes])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if t % p["lambda_period"]:
            continue
        h_s = _hypergradient(p, net_s, lam, _losses_s(p, net_s, graphs), differentiable=True)
        h_t = _hypergradient(p, net_t or net_s, lam, _losses_t(p, net_t or net_s, graphs), differentiable=False)
        distance, lam = calibration_step(h_t, h_s, graphs.val_x, optimizer, lam, p["lr_lambda"], knobs="graph.")
        if distance is not None:
            distances.append(distance)
    return distances, lam


def _loss(net: PolynomialFilterNet, names: list[str], inputs: Any, nodes: torch.Tensor, labels: torch.Tensor,
          weight_decay: float) -> Loss:
    """``loss(θ, [λ])``: cross-entropy of ``nodes`` (plus ``½·weight_decay·‖θ‖²``) of ``net`` on ``inputs``;
    ``inputs`` is a tuple or a function giving one (for features that change)."""
    def value(params: list[torch.Tensor], hyper: list[torch.Tensor]) -> torch.Tensor:
        args = inputs() if callable(inputs) else inputs
        logits = functional_call(net, dict(zip(names, params)), args, {"coefficients": hyper[0]})
        penalty = 0.5 * weight_decay * sum((w ** 2).sum() for w in params) if weight_decay else 0.0
        return F.cross_entropy(logits[nodes], labels) + penalty
    return value


def _losses_s(p: dict[str, Any], net: PolynomialFilterNet, graphs: _Graphs) -> tuple[Loss, Loss]:
    names = [name for name, _ in net.named_parameters()]
    train = graphs.s_train
    val = graphs.val_graph
    return (_loss(net, names, graphs.train_inputs, labelled(train), train.y[labelled(train)], p["weight_decay"]),
            _loss(net, names, lambda: (graphs.val_features(), graphs.val_operator), graphs.val_nodes,
                  val.y[graphs.val_nodes], 0.0))


def _losses_t(p: dict[str, Any], net: PolynomialFilterNet, graphs: _Graphs) -> tuple[Loss, Loss]:
    names = [name for name, _ in net.named_parameters()]
    train_nodes, val_nodes = labelled(graphs.real_train), labelled(graphs.real_val)
    return (_loss(net, names, graphs.real_inputs, train_nodes, graphs.real_train.y[train_nodes], p["weight_decay"]),
            _loss(net, names, graphs.real_inputs, val_nodes, graphs.real_val.y[val_nodes], 0.0))


def _hypergradient(p: dict[str, Any], net: PolynomialFilterNet, lam: torch.Tensor, losses: tuple[Loss, Loss],
                   differentiable: bool) -> list[torch.Tensor]:
    """``∇λ L*(λ)`` (length ``order + 1``) at ``net``'s current weights, dropout off."""
    net.eval()
    train_loss, val_loss = losses
    return hypergradient(train_loss, val_loss, list(net.parameters()), [lam], terms=p["neumann_terms"],
                         alpha=p["neumann_alpha"], differentiable=differentiable)

