"""``random`` on graph tasks: the subgraph induced by sampled labelled nodes (Table 2's "Random")."""

import json

import pytest
import torch

pytest.importorskip("torch_geometric")

import condensers.herding  # noqa: E402,F401  (registers the image-only plugin the sweep must skip)
import search_algos.grid  # noqa: E402,F401
from condensers._graph import graph_split_counts  # noqa: E402
from condensers.random_selection import RandomSelection  # noqa: E402
from harness.config import parse_config  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.sweep import run_sweep  # noqa: E402
from harness.testing import check_condenser, tiny_context, tiny_graph_task  # noqa: E402
from harness.data.csbm import load_csbm  # noqa: E402


def test_random_conforms_on_graphs_and_images():
    proxy = check_condenser(RandomSelection(), task=tiny_graph_task(), ipc=3)
    assert proxy.train.x is proxy.val.x and proxy.train.edge_index is proxy.val.edge_index
    check_condenser(RandomSelection())  # both declared modalities


def test_proxy_is_the_induced_subgraph_of_sampled_train_and_val_nodes():
    task = load_csbm(num_nodes=120, num_classes=3, train_per_class=6, val_per_class=12, seed=1)
    proxy = RandomSelection().condense(task, 4, tiny_context(seed=2))
    source = torch.tensor(proxy.meta["source_indices"])
    n_train = int(proxy.train.mask.sum())
    assert (n_train, int(proxy.val.mask.sum())) == (12, 24)  # 4 train and round(4 * 12 / 6) val per class
    assert task.train.mask[source[:n_train]].all() and task.val.mask[source[n_train:]].all()
    assert torch.equal(proxy.train.x, task.train.x[source]) and torch.equal(proxy.train.y, task.train.y[source])
    original = set(map(tuple, task.train.edge_index.t().tolist()))
    kept = {(int(source[a]), int(source[b])) for a, b in proxy.train.edge_index.t().tolist()}
    chosen = set(source.tolist())
    assert kept == {(a, b) for a, b in original if a in chosen and b in chosen}
    assert proxy.meta["num_edges"] == len(kept)


def test_counts_follow_each_class_val_to_train_ratio():
    task = load_csbm(num_nodes=120, num_classes=3, train_per_class=4, val_per_class=10)
    assert graph_split_counts(task, 3) == [(3, 8)] * 3  # round(3 * 10 / 4) = round(7.5) = 8
    with pytest.raises(ConfigError, match="ipc >= 1"):
        graph_split_counts(task, 0)
    with pytest.raises(ConfigError, match="fewer than"):
        RandomSelection().condense(task, 5, tiny_context())


def test_different_seeds_sample_different_nodes():
    task = tiny_graph_task()
    a = RandomSelection().condense(task, 3, tiny_context(seed=0)).meta["source_indices"]
    b = RandomSelection().condense(task, 3, tiny_context(seed=1)).meta["source_indices"]
    assert a != b


def test_graph_sweep_runs_random_and_skips_image_only_herding(tmp_path):
    config = parse_config({
        "name": "graph-tiny",
        "task": {"name": "csbm", "params": {"num_nodes": 90, "num_features": 8, "train_per_class": 6,
                                            "val_per_class": 6}},
        "space": {"name": "polynomial_filter", "params": {"hidden": 8}, "candidates": 3},
        "protocol": {"epochs": 5, "lr": 0.05},
        "oracle": {"seeds": [0, 1], "rank_by": "val_loss"},
        "condensers": [{"name": "random", "ipc": [3]}, {"name": "herding", "ipc": [3]}],
        "search_algos": ["grid"],
        "seeds": [0],
    })
    frame = run_sweep(config, results_root=tmp_path, progress=False, device="cpu").set_index("condenser")
    assert frame.loc["herding", "status"] == "skipped"
    assert "graph" in frame.loc["herding", "error"] and "image" in frame.loc["herding", "error"]
    row = frame.loc["random"]
    assert row["status"] == "ok", row["error"]
    assert len(json.loads(row["scores"])) == 3 and json.loads(row["candidates"])[0].startswith("poly:")
    assert 0 <= row["perf"] <= 100 and -1 <= row["noise_ceiling_spearman"] <= 1
