"""Tests of the ``graphnas`` search algorithm, its controller and its macro space's children."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("torch_geometric")

from harness.errors import ConfigError  # noqa: E402
from harness.graph_training import graph_inputs, labelled  # noqa: E402
from harness.spaces.graphnas import GraphNASSpace  # noqa: E402
from harness.testing import check_search_algo, tiny_context, tiny_graph_task, tiny_space  # noqa: E402
from harness.types import GraphSplit, ProxyData  # noqa: E402
from search_algos._graphnas_controller import GraphNASController  # noqa: E402
from search_algos._policy_gradient import MovingAverageBaseline, policy_gradient_step  # noqa: E402
from search_algos.graphnas import GraphNAS  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return tiny_graph_task()


@pytest.fixture
def proxy(task) -> ProxyData:
    return ProxyData(train=task.train, val=task.val)


def test_conforms():
    result = check_search_algo(GraphNAS(**GraphNAS.test_params))
    assert len(result.trace) == len(result.meta["sampled"]) == 3
    assert all(score < 0 for score in result.scores)  # log-probabilities of the candidates
    best = max(result.meta["child_val_acc"].values())
    assert result.meta["child_val_acc"][result.trace[-1][1]] == best
    assert result.meta.get("own_choice", result.trace[-1][1]) == result.trace[-1][1]


def _covering(space: GraphNASSpace) -> list[str]:
    """Architectures that together take every option of every decision at least once."""
    counts = [len(options) for _, options in space.decisions()]
    return [space.decode([(k + shift) % count for shift, count in enumerate(counts)]) for k in range(max(counts))]


def _one_step(space: GraphNASSpace, arch: str, split: GraphSplit) -> None:
    """Build ``arch``, take one Adam step on ``split``'s labelled nodes, check it learned something."""
    torch.manual_seed(0)
    model = space.build(arch)
    before = [p.detach().clone() for p in model.parameters()]
    logits = model(*graph_inputs(model, split))
    assert logits.shape == (split.x.shape[0], space.num_classes) and torch.isfinite(logits).all(), arch
    loss = F.cross_entropy(logits[labelled(split)], split.y[labelled(split)])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert model.layers[0].weight.grad.abs().sum() > 0, f"{arch}: no gradient reaches the first layer"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), arch


def test_every_option_of_the_macro_space_builds_and_trains_one_step(task):
    space = GraphNASSpace(in_channels=task.in_channels, num_classes=task.num_classes, pool_dim=8)
    archs = _covering(space)
    assert len(archs) == 8  # the eight activations are the widest decision
    for (_, options), column in zip(space.decisions(), zip(*map(space.encode, archs))):
        assert set(column) == set(range(len(options)))
    for arch in archs:
        _one_step(space, arch, task.train)


def test_every_sampled_child_builds_and_trains_one_step_on_sparse_and_weighted_graphs(task):
    space = GraphNASSpace(heads=[1, 2, 4], hidden=[4, 8, 16], pool_dim=8, in_channels=task.in_channels,
                          num_classes=task.num_classes)
    controller = GraphNASController([(n, len(o)) for n, o in space.decisions()], 16, 5.0, 2.5)
    controller.reset_parameters(torch.Generator().manual_seed(0))
    actions, _, _ = controller(batch=12, generator=torch.Generator().manual_seed(1))
    sparse = task.train.x * (torch.rand(task.train.x.shape, generator=torch.Generator().manual_seed(2)) < 0.05)
    weights = torch.rand(task.train.edge_index.shape[1], generator=torch.Generator().manual_seed(3)) + 0.1
    graphs = (task.train, GraphSplit(sparse, task.train.y, task.train.edge_index, None, task.train.mask),
              GraphSplit(task.train.x, task.train.y, task.train.edge_index, weights, task.train.mask))
    assert graph_inputs(space.build(space.decode(actions[0].tolist())), graphs[1])[0].is_sparse
    for indices, graph in itertools.product(actions.tolist(), graphs):
        _one_step(space, space.decode(indices), graph)


def test_gat_and_gcn_attention_match_pyg_convolutions(task):
    """On an unweighted graph, ``gat`` / ``gcn`` coefficients with sum aggregation are GAT / GCN."""
    from torch_geometric.nn import GATConv, GCNConv

    from harness.spaces.graphnas_layer import GraphNASLayer

    x, edge_index, n = task.train.x, task.train.edge_index, task.train.x.shape[0]
    torch.manual_seed(0)
    layer = GraphNASLayer(x.shape[1], 5, 3, "gat", "sum", concat=True, dropout=0.0, pool_dim=8).eval()
    gat = GATConv(x.shape[1], 5, heads=3).eval()
    with torch.no_grad():
        gat.lin.weight.copy_(layer.weight.t())
        gat.att_src.copy_(layer.att_source)
        gat.att_dst.copy_(layer.att_target)
        gat.bias.copy_(layer.bias)
    assert torch.allclose(layer(x, edge_index), gat(x, edge_index), atol=1e-5)
    layer = GraphNASLayer(x.shape[1], 5, 1, "gcn", "sum", concat=False, dropout=0.0, pool_dim=8).eval()
    gcn = GCNConv(x.shape[1], 5).eval()
    with torch.no_grad():
        gcn.lin.weight.copy_(layer.weight.t())
        gcn.bias.copy_(layer.bias)
    weights = torch.rand(edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    assert torch.allclose(layer(x, edge_index), gcn(x, edge_index), atol=1e-5)
    assert torch.allclose(layer(x, edge_index, weights), gcn(x, edge_index, weights), atol=1e-5)
    assert n == layer(x, edge_index).shape[0]


def test_policy_gradient_raises_the_probability_of_the_rewarded_choice():
    decisions = [("a", 3), ("b", 4), ("a", 3)]
    rewarded = torch.tensor([[2, 0, 1]])
    controller = GraphNASController(decisions, hidden=16, temperature=5.0, tanh_c=2.5)
    controller.reset_parameters(torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(controller.parameters(), lr=0.05)
    baseline = MovingAverageBaseline(0.9)
    sampler = torch.Generator().manual_seed(1)

    def probability() -> float:
        with torch.no_grad():
            return controller(rewarded)[1].exp().item()

    before = probability()
    assert before == pytest.approx(1 / 36, rel=0.1)  # the initial policy is nearly uniform
    for _ in range(150):
        actions, log_prob, entropy = controller(generator=sampler)
        reward = float((actions[0, 0] == 2) + (actions[0, 1] == 0) + (actions[0, 2] == 1)) / 3
        policy_gradient_step(optimizer, log_prob[0], reward - baseline.update(reward), entropy[0], 1e-4)
    assert probability() > 0.5 > 10 * before


def test_moving_average_baseline_starts_at_the_first_reward_and_weighs_recent_ones_more():
    baseline = MovingAverageBaseline(0.5)
    assert baseline.update(4.0) == 4.0
    assert baseline.update(1.0) == pytest.approx((0.5 * 4.0 + 1.0) / 1.5)


class ToySpace:
    """Two decisions of three options; training returns a fixed accuracy per child, recorded."""

    target = "2-0"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def decisions(self):
        return [("x", [0, 1, 2]), ("y", [0, 1, 2])]

    def decode(self, indices):
        return "-".join(map(str, indices))

    def encode(self, arch):
        return [int(part) for part in arch.split("-")]

    def train_candidate(self, arch, train, evaluations, protocol, seed, device):
        self.calls.append(arch)
        return {"val_acc": 90.0 if arch == self.target else 40.0 + 5 * self.encode(arch)[1], "val_loss": 1.0}


def test_search_converges_to_the_best_rewarded_child_and_scores_it_highest(proxy):
    space = ToySpace()
    candidates = ["0-0", "1-1", "2-0", "0-2"]
    result = GraphNAS(evaluations=200, lr=0.05, controller_hidden=16).search(space, candidates, proxy, tiny_context())
    assert result.selected == ToySpace.target
    assert result.trace[-1][1] == ToySpace.target and "own_choice" not in result.meta
    assert Counter(result.meta["sampled"][-40:])[ToySpace.target] >= 30
    # Rewards are cached: each child is trained once.
    assert len(space.calls) == len(set(space.calls)) == result.meta["evaluated"]


def test_trace_follows_the_best_child_so_far_and_records_an_off_candidate_choice(proxy):
    space = ToySpace()
    result = GraphNAS(evaluations=30, controller_hidden=16).search(space, ["0-0"], proxy, tiny_context())
    accuracies = result.meta["child_val_acc"]
    best_so_far = [max((accuracies[c] for c in result.meta["sampled"][:k + 1])) for k in range(30)]
    assert [accuracies[arch] for _, arch in result.trace] == best_so_far
    assert result.meta["own_choice"] == result.trace[-1][1] != "0-0"
    assert result.selected == "0-0"


def test_zero_evaluations_or_budget_trains_nothing(proxy):
    space = ToySpace()
    for algo, ctx in ((GraphNAS(evaluations=0), tiny_context()), (GraphNAS(), tiny_context(budget_seconds=0.0))):
        result = algo.search(space, ["0-0", "1-2"], proxy, ctx)
        assert result.trace == [] and space.calls == [] and len(result.scores) == 2
        assert "own_choice" not in result.meta


def test_a_space_without_decisions_and_bad_parameters_are_config_errors(task, proxy):
    with pytest.raises(ConfigError, match="space.name: graphnas"):
        GraphNAS().search(tiny_space(task), ["poly:0.10,0.20,0.30"], proxy, tiny_context())
    for params in ({"evaluations": -1}, {"lr": 0.0}, {"baseline_decay": 1.0}, {"epochs": 0}):
        with pytest.raises(ConfigError, match="graphnas"):
            GraphNAS(**params).search(ToySpace(), ["0-0"], proxy, tiny_context())



def test_the_graphnas_cpu_preset_names_valid_space_and_search_parameters():
    from harness.config import load_config

    config = load_config("graphnas-cpu")
    assert config.space["name"] == "graphnas" and config.budget_seconds > 0
    GraphNASSpace(**config.space["params"]).check()
    (entry,) = config.search_algos
    GraphNAS(**entry.params)._check(GraphNASSpace())
