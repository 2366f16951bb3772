"""Graph search spaces (polynomial filters, appendix J's PyG filters) and full-batch graph training."""

import pytest
import torch

pytest.importorskip("torch_geometric")

from harness.data.csbm import load_csbm  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.graph_training import evaluate_graph, train_graph_candidate, train_graph_model  # noqa: E402
from harness.spaces import get_space, list_spaces  # noqa: E402
from harness.spaces.gnn_filters import FILTERS, GNNFilterSpace, parse_candidate  # noqa: E402
from harness.spaces.polynomial_filter import (PolynomialFilterSpace, apply_filter, format_filter,  # noqa: E402
                                              normalized_adjacency, parse_filter)
from harness.types import GraphSplit, TrainProtocol  # noqa: E402

PROTOCOL = TrainProtocol(epochs=30, lr=0.05, weight_decay=5e-4)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def task():
    return load_csbm(num_nodes=150, num_classes=3, num_features=8, avg_degree=6.0, homophily=0.9, signal=1.0,
                     train_per_class=10, val_per_class=15, seed=0)


def poly_space(task, **params):
    return get_space("polynomial_filter", in_channels=task.in_channels, num_classes=task.num_classes,
                     **{"hidden": 16, **params})


def test_graph_spaces_are_registered():
    assert {"polynomial_filter", "gnn_filters"} <= set(list_spaces())


def test_filter_strings_round_trip_and_reject_malformed_ones():
    assert parse_filter("poly:0.50,-0.25,0.10") == (0.5, -0.25, 0.1)
    assert format_filter([0.5, -0.25, 0.1]) == "poly:0.50,-0.25,0.10"
    assert format_filter(torch.tensor([0.125, 1.0], dtype=torch.float64)) == "poly:0.125,1.00"
    space = PolynomialFilterSpace(order=2)
    assert space.canonical("poly:0.5,-0.25,0.1") == "poly:0.50,-0.25,0.10"
    for bad in ("gcn-w128-d2", "poly:a,b,c", "poly:1,nan,0", 3):
        with pytest.raises(ConfigError, match="poly:"):
            space.canonical(bad)
    with pytest.raises(ConfigError, match="needs 3"):
        space.canonical("poly:1.00,0.00")


def test_sample_is_deterministic_distinct_and_in_range():
    space = PolynomialFilterSpace(order=2, coef_low=-0.5, coef_high=1.0)
    first = space.sample(80, seed=0)
    assert first == space.sample(80, seed=0) and first != space.sample(80, seed=1)
    assert len(set(first)) == 80
    values = torch.tensor([parse_filter(a) for a in first])
    assert values.shape == (80, 3) and values.min() >= -0.5 and values.max() <= 1.0
    assert all(space.canonical(a) == a for a in first)
    with pytest.raises(ConfigError, match="between 1 and"):
        PolynomialFilterSpace(order=0, coef_low=0.0, coef_high=0.01).sample(3, seed=0)


def test_filter_is_the_polynomial_of_the_dense_operator():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 0, 3, 3], [1, 0, 2, 1, 0, 2, 3, 3]])  # a triangle, a looped node
    weight = torch.tensor([1.0, 1.0, 2.0, 2.0, 0.5, 0.5, 9.0, 9.0])
    operator = normalized_adjacency(edge_index, weight, 5)
    a = torch.zeros(5, 5)
    a[edge_index[1, :6], edge_index[0, :6]] = weight[:6]
    a += torch.eye(5)  # the given self-loops are replaced by unit ones; node 4 is isolated
    d = a.sum(1).rsqrt()
    dense = d[:, None] * a * d[None, :]
    assert torch.allclose(operator.to_dense(), dense)
    h, lam = torch.randn(5, 3), torch.tensor([0.3, -0.7, 0.2])
    assert torch.allclose(apply_filter(lam, operator, h, "adjacency"), (0.3 * torch.eye(5) - 0.7 * dense
                                                                        + 0.2 * dense @ dense) @ h, atol=1e-6)
    lap = torch.eye(5) - dense
    assert torch.allclose(apply_filter(lam, operator, h, "laplacian"), (0.3 * torch.eye(5) - 0.7 * lap
                                                                        + 0.2 * lap @ lap) @ h, atol=1e-6)


def test_polynomial_network_is_differentiable_in_the_coefficients(task):
    space = poly_space(task)
    torch.manual_seed(0)
    model = space.build("poly:0.20,0.50,0.30")
    inputs = model.graph_inputs(task.train)
    assert inputs[0].is_sparse is False  # CSBM features are dense
    lam = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    logits = model(*inputs, coefficients=lam)
    assert logits.shape == (150, 3)
    assert torch.autograd.grad(logits.square().sum(), lam)[0].abs().sum().item() > 0
    model.eval()
    assert torch.allclose(model(*inputs), model(*inputs, coefficients=lam.detach()))


def test_sparse_features_give_the_dense_result(task):
    torch.manual_seed(0)
    model = poly_space(task, dropout=0.0).build("poly:0.50,0.50,0.00")
    sparse_x = (task.train.x > 1.2).float()  # about 10% non-zero after thresholding
    graph = GraphSplit(sparse_x * 0.1 * (torch.rand_like(sparse_x) < 0.5), task.train.y, task.train.edge_index)
    inputs = model.graph_inputs(graph)
    assert inputs[0].is_sparse
    assert torch.allclose(model(*inputs), model(graph.x, inputs[1]), atol=1e-6)


def test_a_low_pass_filter_beats_an_mlp_on_a_homophilous_graph(task):
    space = poly_space(task)
    runs = {arch: space.train_candidate(arch, task.train, {"val": task.val, "test": task.test}, PROTOCOL, 0, CPU)
            for arch in ("poly:0.00,0.00,1.00", "poly:1.00,0.00,0.00")}
    low_pass, mlp = runs["poly:0.00,0.00,1.00"], runs["poly:1.00,0.00,0.00"]
    assert low_pass["val_acc"] > mlp["val_acc"] + 5 and low_pass["test_acc"] > 60
    assert set(low_pass) == {"val_acc", "val_loss", "test_acc", "test_loss", "train_seconds"}


def test_graph_training_is_deterministic_and_matches_evaluation(task):
    space = poly_space(task)
    arch = "poly:0.30,0.40,0.30"
    first = train_graph_candidate(space, arch, task.train, {"val": task.val, "test": task.test}, PROTOCOL, 3, CPU)
    second = train_graph_candidate(space, arch, task.train, {"val": task.val, "test": task.test}, PROTOCOL, 3, CPU)
    assert {k: v for k, v in first.items() if k != "train_seconds"} == {
        k: v for k, v in second.items() if k != "train_seconds"}
    other = train_graph_candidate(space, arch, task.train, {"val": task.val}, PROTOCOL, 4, CPU)
    assert other["val_loss"] != first["val_loss"]
    torch.manual_seed(1)
    model = train_graph_model(space.build(arch), task.train, PROTOCOL, seed=0)
    val = evaluate_graph(model, task.val)
    logits = model(*model.graph_inputs(task.val))[task.val.mask]
    labels = task.val.y[task.val.mask]
    assert val.acc == pytest.approx(100 * (logits.argmax(1) == labels).float().mean().item())
    assert val.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)


def test_protocol_epochs_and_learning_rate_drive_the_adam_steps(task):
    space = poly_space(task)
    zero = train_graph_candidate(space, "poly:0.00,1.00,0.00", task.train, {"train": task.train},
                                 TrainProtocol(epochs=0), 0, CPU)
    trained = train_graph_candidate(space, "poly:0.00,1.00,0.00", task.train, {"train": task.train}, PROTOCOL, 0, CPU)
    assert trained["train_loss"] < zero["train_loss"] - 0.3


def test_gnn_filter_space_has_the_40_models_of_appendix_j():
    space = GNNFilterSpace()
    archs = space.all_archs()
    assert len(archs) == 40 == len(set(archs))
    assert "gcn-w128-d2" in archs and "gin-eps-w256-d4" in archs and "cheb-k3-w128-d4" in archs
    assert parse_candidate("sage-max-w256-d4") == ("sage-max", 256, 4)
    assert space.sample(40, seed=0) != archs and sorted(space.sample(40, seed=0)) == sorted(archs)
    with pytest.raises(ConfigError, match="not in this space"):
        GNNFilterSpace(widths=[16]).canonical("gcn-w128-d2")
    for bad in ("gcn-128-2", "mlp-w16-d2", "gcn-w0-d2"):
        with pytest.raises(ConfigError, match="GNN candidate"):
            space.canonical(bad)


@pytest.mark.parametrize("filter_name", FILTERS)
def test_each_filter_builds_and_trains_on_a_small_csbm_graph(task, filter_name):
    space = get_space("gnn_filters", widths=[16], depths=[2], heads=4, in_channels=task.in_channels,
                      num_classes=task.num_classes)
    arch = f"{filter_name}-w16-d2"
    weighted = GraphSplit(task.train.x, task.train.y, task.train.edge_index,
                          torch.rand(task.train.edge_index.shape[1]), task.train.mask)
    run = space.train_candidate(arch, weighted, {"val": task.val}, TrainProtocol(epochs=15, lr=0.02), 0, CPU)
    assert run["val_acc"] > 45, run  # chance is 33 %
    torch.manual_seed(0)
    model = space.build(arch)
    assert model(task.train.x, task.train.edge_index).shape == (150, 3)
