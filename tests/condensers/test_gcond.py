"""``gcond``: gradient matching on synthetic node features and a pairwise-MLP adjacency (GCond)."""

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("torch_geometric")

from condensers._graph import dense_normalized, dense_to_edges  # noqa: E402
from condensers.gcond import GCond, PairwiseAdjacency  # noqa: E402
from harness.data.csbm import load_csbm  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.testing import check_condenser, tiny_context  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return load_csbm(num_nodes=120, num_classes=3, num_features=8, train_per_class=8, val_per_class=8, seed=0)


def test_gcond_conforms():
    proxy = check_condenser(GCond(**GCond.test_params))
    assert proxy.train.edge_weight is not None and proxy.train.edge_index.shape[1] > 0
    assert proxy.train.edge_index is proxy.val.edge_index


def test_pairwise_adjacency_is_the_symmetrized_mlp_of_concatenated_pairs():
    torch.manual_seed(0)
    mlp = PairwiseAdjacency(in_features=5, hidden=6, layers=3)
    x = torch.randn(7, 5)
    adjacency = mlp(x)
    assert adjacency.shape == (7, 7) and torch.allclose(adjacency, adjacency.t())
    assert torch.all(adjacency.diagonal() == 0)
    off = adjacency[~torch.eye(7, dtype=torch.bool)]
    assert off.min() > 0 and off.max() < 1
    pairs = torch.cat([x.repeat_interleave(7, 0), x.repeat(7, 1)], dim=1)  # [x_i; x_j], i slowest
    weight = torch.cat([mlp.first_i.weight, mlp.first_j.weight], dim=1)
    h = F.relu(F.batch_norm(pairs @ weight.t() + mlp.first_i.bias, None, None, mlp.norms[0].weight,
                            mlp.norms[0].bias, training=True))
    h = F.relu(F.batch_norm(mlp.hidden[0](h), None, None, mlp.norms[1].weight, mlp.norms[1].bias, training=True))
    scores = mlp.last(h).view(7, 7)
    expected = torch.sigmoid((scores + scores.t()) / 2) * (1 - torch.eye(7))
    assert torch.allclose(adjacency, expected, atol=1e-5)


def test_dense_helpers():
    adjacency = torch.tensor([[0.0, 0.5, 0.0], [0.5, 0.0, 0.2], [0.0, 0.2, 0.0]])
    normalized = dense_normalized(adjacency)
    degree = torch.tensor([1.5, 1.7, 1.2])
    assert torch.allclose(normalized, (adjacency + torch.eye(3)) / (degree[:, None] * degree[None, :]).sqrt())
    edge_index, weight = dense_to_edges(adjacency, threshold=0.3)
    assert edge_index.tolist() == [[1, 0], [0, 1]] and weight.tolist() == [0.5, 0.5]


def test_schedule_alternates_adjacency_and_feature_steps():
    gcond = GCond(adj_period=5, adj_iterations=2)
    assert [gcond.updates_adjacency(t) for t in range(7)] == [True, True, False, False, False, True, True]


def test_adjacency_only_iterations_leave_the_features_alone(task):
    proxy = GCond(iterations=3, outer_loop=2, inner_loop=1, adj_hidden=8, adj_period=1, adj_iterations=1,
                  lr_feat=1.0).condense(task, 3, tiny_context())
    real = task.train.x[task.train.mask | task.val.mask]
    assert (proxy.train.x[:, None, :] == real[None, :, :]).all(-1).any(1).all()  # still copies of real nodes
    assert proxy.meta["iterations"] == 3


def test_threshold_sparsifies_and_matching_lowers_the_loss(task):
    params = {"iterations": 6, "outer_loop": 3, "inner_loop": 1, "adj_hidden": 8, "adj_period": 3,
              "adj_iterations": 1, "lr_feat": 0.05, "lr_adj": 0.05}
    dense = GCond(**params, threshold=0.0).condense(task, 3, tiny_context())
    sparse = GCond(**params, threshold=0.6).condense(task, 3, tiny_context())
    n = len(dense.train.y)
    assert dense.train.edge_index.shape[1] == n * (n - 1)
    assert sparse.train.edge_index.shape[1] < dense.train.edge_index.shape[1]
    assert (sparse.train.edge_weight > 0.6).all()
    curve = dense.meta["loss_curve"]
    assert curve[-1] < curve[0]


def test_parameters_are_checked():
    for bad in ({"adj_layers": 1}, {"threshold": 1.0}, {"lr_adj": -1.0}, {"adj_period": 0}):
        with pytest.raises(ConfigError):
            GCond(**bad)
