"""``gcond_x``: gradient matching on synthetic node features with no synthetic edges (GCond-X)."""

import pytest
import torch

pytest.importorskip("torch_geometric")

from condensers.gcond_x import GCondX  # noqa: E402
from harness.data.csbm import load_csbm  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.testing import check_condenser, tiny_context, tiny_graph_task, tiny_image_task  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return load_csbm(num_nodes=120, num_classes=3, num_features=8, train_per_class=8, val_per_class=8, seed=0)


def _labelled_rows(task, c):
    mask = (task.train.mask | task.val.mask) & (task.train.y == c)
    return task.train.x[mask]


def test_gcond_x_conforms():
    proxy = check_condenser(GCondX(**GCondX.test_params))
    assert proxy.train.edge_index.shape == (2, 0) and proxy.train.edge_weight is None
    assert proxy.train.x is proxy.val.x


def test_graph_only():
    reason = GCondX().unsupported_reason(tiny_image_task())
    assert "graph" in reason and "image" in reason


def test_matching_moves_the_features_and_lowers_the_loss(task):
    proxy = GCondX(iterations=8, outer_loop=3, inner_loop=2, lr_feat=0.05).condense(task, 3, tiny_context())
    curve = proxy.meta["loss_curve"]
    assert proxy.meta["iterations"] == 8 and curve[-1] < curve[0]
    for c in range(3):
        learned = proxy.train.x[proxy.train.y == c]
        real = _labelled_rows(task, c)
        distance = (learned[:, None, :] - real[None, :, :]).norm(dim=-1)
        assert distance.min() > 1e-3  # no row is still a real node


def test_zero_budget_keeps_the_real_initialization(task):
    ctx = tiny_context(budget_seconds=0.0)
    proxy = GCondX(iterations=5, outer_loop=2, inner_loop=1).condense(task, 3, ctx)
    assert proxy.meta["iterations"] == 0 and proxy.meta["stopped_by_budget"]
    for c in range(3):
        learned = proxy.train.x[proxy.train.y == c]
        real = _labelled_rows(task, c)
        assert (learned[:, None, :] == real[None, :, :]).all(-1).any(1).all()  # copies of class-c nodes


def test_parameters_are_checked():
    for bad in ({"iterations": -1}, {"outer_loop": 0}, {"lr_feat": 0}, {"hops": 0}):
        with pytest.raises(ConfigError):
            GCondX(**bad)
    with pytest.raises(ConfigError, match="unknown parameters"):
        GCondX(adj_hidden=8)


def test_seed_changes_the_proxy():
    task = tiny_graph_task()
    params = {"iterations": 2, "outer_loop": 2, "inner_loop": 1}
    a = GCondX(**params).condense(task, 3, tiny_context(seed=0))
    b = GCondX(**params).condense(task, 3, tiny_context(seed=1))
    assert not torch.equal(a.train.x, b.train.x)
