"""Graph datasets: Planetoid files read through PyG, the CSBM generator, ogbn-arxiv's optional extra."""

import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")
sp = pytest.importorskip("scipy.sparse")

from harness.data import list_datasets, load_task  # noqa: E402
from harness.data.csbm import load_csbm  # noqa: E402
from harness.errors import ConfigError, DataError  # noqa: E402

SHARED_CORA = Path(__file__).resolve().parents[3] / "shared" / "data" / "planetoid"
N_TRAIN, N_UNLABELLED, N_TEST, N_CLASSES, N_FEATURES = 6, 504, 20, 3, 5


def write_planetoid(root: Path, name: str = "cora") -> dict:
    """Planetoid-format raw files of a tiny graph (the public split needs 500 val nodes after the
    labelled ones): a ring over all nodes, random binary features, labels ``node % 3``."""
    rng = np.random.default_rng(0)
    n_all = N_TRAIN + N_UNLABELLED
    n = n_all + N_TEST
    labels = np.arange(n) % N_CLASSES
    features = (rng.random((n, N_FEATURES)) < 0.5).astype(np.float32)
    features[:, 0] = 1.0  # no empty rows
    onehot = np.eye(N_CLASSES, dtype=np.int64)[labels]
    test_index = rng.permutation(np.arange(n_all, n))
    raw = root / name.capitalize() / "raw"
    raw.mkdir(parents=True)
    arrays = {"x": sp.csr_matrix(features[:N_TRAIN]), "y": onehot[:N_TRAIN],
              "allx": sp.csr_matrix(features[:n_all]), "ally": onehot[:n_all],
              # tx/ty rows are in test.index order
              "tx": sp.csr_matrix(features[test_index]), "ty": onehot[test_index],
              "graph": {i: [(i - 1) % n, (i + 1) % n] for i in range(n)}}
    for suffix, value in arrays.items():
        with open(raw / f"ind.{name}.{suffix}", "wb") as f:
            pickle.dump(value, f)
    (raw / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in test_index))
    return {"features": features, "labels": labels, "n": n}


def _read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_planetoid_reads_generated_files_from_a_read_only_root(tmp_path):
    truth = write_planetoid(tmp_path / "data")
    _read_only(tmp_path / "data")
    task = load_task("planetoid", root=str(tmp_path / "data"), dataset="cora", cache_dir=str(tmp_path / "cache"))
    assert task.modality == "graph" and task.num_classes == N_CLASSES and task.name == "cora"
    assert (len(task.train), len(task.val), len(task.test)) == (N_TRAIN, 500, N_TEST)
    assert task.val_fraction == pytest.approx(500 / (500 + N_TRAIN))
    assert task.in_channels == N_FEATURES
    x, y = task.train.x, task.train.y
    assert x.shape == (truth["n"], N_FEATURES)
    assert torch.equal(y, torch.from_numpy(truth["labels"]))
    expected = torch.from_numpy(truth["features"])
    assert torch.allclose(x, expected / expected.sum(1, keepdim=True))  # row-normalized
    assert task.val.x is x and task.test.edge_index is task.train.edge_index  # one graph, three masks
    assert not (task.train.mask & task.val.mask).any() and not (task.val.mask & task.test.mask).any()
    edges = set(map(tuple, task.train.edge_index.t().tolist()))
    assert len(edges) == 2 * truth["n"] and all((b, a) in edges for a, b in edges)
    assert not (tmp_path / "data" / "Cora" / "processed").exists()


def test_planetoid_keeps_raw_features_when_asked(tmp_path):
    truth = write_planetoid(tmp_path / "data")
    task = load_task("planetoid", root=tmp_path / "data", normalize_features=False, cache_dir=tmp_path / "cache")
    assert torch.equal(task.train.x, torch.from_numpy(truth["features"]))


def test_planetoid_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(DataError, match=r"no Cora raw files .*download: true"):
        load_task("planetoid", root=tmp_path, cache_dir=tmp_path / "cache")


def test_planetoid_unknown_name_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="CiteSeer"):
        load_task("planetoid", root=tmp_path, dataset="corra")


@pytest.mark.skipif(not (SHARED_CORA / "Cora" / "raw").is_dir(), reason="shared Cora files not present")
def test_real_cora_public_split(tmp_path):
    task = load_task("planetoid", root=SHARED_CORA, cache_dir=tmp_path)
    assert task.train.x.shape == (2708, 1433) and task.num_classes == 7
    assert (len(task.train), len(task.val), len(task.test)) == (140, 500, 1000)
    assert torch.bincount(task.train.y[task.train.mask]).tolist() == [20] * 7


def test_csbm_is_deterministic_and_homophilous():
    a, b = load_csbm(seed=3), load_csbm(seed=3)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.edge_index, b.train.edge_index)
    assert not torch.equal(a.train.x, load_csbm(seed=4).train.x)
    assert a.meta["edge_homophily"] == pytest.approx(0.8, abs=0.06)
    edges = a.train.edge_index
    assert (edges[0] != edges[1]).all()
    assert set(map(tuple, edges.t().tolist())) == set(map(tuple, edges.flip(0).t().tolist()))
    degree = edges.shape[1] / a.train.x.shape[0]
    assert 4.5 < degree <= 6.0
    for split, per_class in (("train", 10), ("val", 20)):
        assert torch.bincount(a.train.y[getattr(a, split).mask]).tolist() == [per_class] * 3
    total = a.train.mask.long() + a.val.mask.long() + a.test.mask.long()
    assert (total == 1).all()


def test_csbm_rejects_classes_too_small_for_the_masks():
    with pytest.raises(ConfigError, match="too few"):
        load_csbm(num_nodes=30, num_classes=3, train_per_class=5, val_per_class=5)
    with pytest.raises(ConfigError, match="homophily"):
        load_csbm(homophily=1.5)


def test_graph_datasets_are_registered():
    assert {"planetoid", "csbm", "ogbn-arxiv"} <= set(list_datasets())
    assert load_task("csbm", num_nodes=60, train_per_class=2, val_per_class=2).modality == "graph"


def test_ogbn_arxiv_without_ogb_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ogb(name, *args, **kwargs):
        if name == "ogb" or name.startswith("ogb."):
            raise ImportError("No module named 'ogb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ogb)
    with pytest.raises(ImportError, match="pip install ogb"):
        load_task("ogbn-arxiv")
