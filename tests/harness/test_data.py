"""Tests of the dataset loaders in ``harness.data`` on tiny generated files."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import _splits, cifar, list_datasets, load_task
from harness.errors import ConfigError, DataError, PluginNotFoundError

SHARED_CIFAR10 = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10"


def _images(n: int, seed: int, shape: tuple[int, ...] = (32, 32, 3)) -> np.ndarray:
    """Random uint8 images ``n×shape``."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, label_key: bytes) -> None:
    """Write ``N×32×32×3`` images as one pickled CIFAR batch (rows in CHW order)."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with path.open("wb") as handle:
        pickle.dump({b"data": data, label_key: [int(v) for v in labels]}, handle)


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    """A tiny CIFAR-10: 5 train batches of 8 images (4 per class in all) and 20 test images."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = np.arange(40) % 10
    for i in range(5):
        rows = slice(8 * i, 8 * (i + 1))
        _write_batch(folder / f"data_batch_{i + 1}", _images(8, i), labels[rows], b"labels")
    _write_batch(folder / "test_batch", _images(20, 99), np.arange(20) % 10, b"labels")
    return tmp_path


@pytest.fixture
def npz_root(tmp_path: Path) -> Path:
    """A tiny npz dataset: 40 train and 20 test 12×12 RGB images of 4 classes."""
    root = tmp_path / "arrays"
    root.mkdir()
    np.savez(root / "train.npz", x=_images(40, 1, (12, 12, 3)), y=np.arange(40) % 4)
    np.savez(root / "test.npz", x=_images(20, 2, (12, 12, 3)), y=np.arange(20) % 4)
    return root


def _index_sets(task) -> dict[str, set[int]]:
    """Each split's source positions as a set."""
    return {split: set(index.tolist()) for split, index in task.meta["indices"].items()}


# --- registry ---------------------------------------------------------------


def test_list_datasets() -> None:
    assert {"cifar10", "cifar100", "digits", "npz"} <= set(list_datasets()) and list_datasets() == sorted(list_datasets())


def test_unknown_dataset_suggests_close_name() -> None:
    with pytest.raises(PluginNotFoundError) as info:
        load_task("cifar")
    message = str(info.value)
    assert "could not resolve dataset 'cifar'" in message
    assert "did you mean 'cifar10'?" in message


def test_unknown_parameter_lists_accepted_ones() -> None:
    with pytest.raises(ConfigError, match="accepted: .*'train_size'"):
        load_task("digits", train_sise=10)


def test_missing_required_parameter() -> None:
    with pytest.raises(ConfigError, match="requires parameter.*'root'"):
        load_task("npz")


@pytest.mark.parametrize("params", [{"train_size": -1}, {"resize": 0}, {"split_seed": "a"}])
def test_bad_parameter_values(params: dict) -> None:
    with pytest.raises(ConfigError):
        load_task("digits", **params)


# --- shared helpers ---------------------------------------------------------


def test_stratified_indices_balance_uneven_classes() -> None:
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20)
    picked = _splits.stratified_indices(labels, 30, seed=3)
    assert len(set(picked.tolist())) == 30
    counts = np.bincount(labels[picked])
    assert counts[1] == 5 and sorted(counts.tolist()) == [5, 12, 13]
    assert np.array_equal(picked, _splits.stratified_indices(labels, 30, seed=3))


def test_carve_rejects_oversized_request() -> None:
    with pytest.raises(DataError, match="lower 'train_size'"):
        _splits.carve(np.zeros(10, dtype=np.int64), {"val": 5, "train": 6}, seed=0)


# --- digits -----------------------------------------------------------------


def test_digits_shapes_and_types() -> None:
    task = load_task("digits")
    assert task.modality == "image" and task.num_classes == 10
    assert tuple(task.train.x.shape) == (300, 1, 8, 8)
    assert (len(task.val), len(task.test)) == (300, 600)
    assert task.train.x.dtype == torch.float32 and task.train.y.dtype == torch.int64
    assert task.meta["sizes"] == {"train": 300, "val": 300, "test": 600}
    assert task.meta["resolution"] == 8


def test_digits_splits_are_stratified_and_disjoint() -> None:
    task = load_task("digits", train_size=50, val_size=40, test_size=100)
    assert torch.bincount(task.train.y).tolist() == [5] * 10
    assert torch.bincount(task.val.y).tolist() == [4] * 10
    sets = _index_sets(task)
    assert sum(len(s) for s in sets.values()) == 190
    assert len(sets["train"] | sets["val"] | sets["test"]) == 190


def test_digits_splits_follow_the_seed() -> None:
    first, again = load_task("digits", split_seed=1), load_task("digits", split_seed=1)
    other = load_task("digits", split_seed=2)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(first, split).x, getattr(again, split).x)
        assert torch.equal(getattr(first, split).y, getattr(again, split).y)
    assert not torch.equal(first.train.x, other.train.x)


def test_digits_normalized_with_train_statistics() -> None:
    task = load_task("digits")
    x = task.train.x
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(1), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(1), atol=1e-5)
    assert len(task.meta["mean"]) == len(task.meta["std"]) == 1
    assert 0 < task.meta["mean"][0] < 1  # computed on pixels scaled to [0, 1]


def test_digits_resize() -> None:
    task = load_task("digits", train_size=20, val_size=10, test_size=10, resize=16)
    assert tuple(task.test.x.shape) == (10, 1, 16, 16)
    assert task.image_size == 16 and task.meta["resolution"] == 16


# --- cifar ------------------------------------------------------------------


def test_cifar10_shapes_balance_and_disjointness(cifar10_root: Path) -> None:
    task = load_task("cifar10", root=str(cifar10_root), train_size=20, val_size=10)
    assert task.num_classes == 10 and task.in_channels == 3
    assert tuple(task.train.x.shape) == (20, 3, 32, 32)
    assert (len(task.val), len(task.test)) == (10, 20)
    assert torch.bincount(task.train.y).tolist() == [2] * 10
    assert torch.bincount(task.val.y).tolist() == [1] * 10
    sets = _index_sets(task)
    assert not sets["train"] & sets["val"]
    assert task.meta["index_pools"] == {"train": "train", "val": "train", "test": "test"}


def test_cifar10_pixels_decoded_from_chw_rows(cifar10_root: Path) -> None:
    task = load_task("cifar10", root=cifar10_root / "cifar-10-batches-py", val_size=10)
    mean = torch.tensor(task.meta["mean"])[:, None, None]
    std = torch.tensor(task.meta["std"])[:, None, None]
    first = int(task.meta["indices"]["train"][0])
    batch_file = cifar10_root / "cifar-10-batches-py" / f"data_batch_{first // 8 + 1}"
    batch = cifar._read_pickle(batch_file)
    expected = torch.from_numpy(batch[b"data"][first % 8].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(task.train.x[0] * std + mean, expected, atol=1e-5)


def test_cifar10_splits_follow_the_seed(cifar10_root: Path) -> None:
    def load(seed: int):
        return load_task("cifar10", root=cifar10_root, train_size=10, test_size=10, split_seed=seed)

    first, again, other = load(0), load(0), load(5)
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.x, again.test.x)
    assert not torch.equal(first.train.x, other.train.x)


def test_cifar10_missing_root_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="download: true") as info:
        load_task("cifar10", root=missing)
    assert str(missing) in str(info.value)


def test_cifar10_too_many_requested(cifar10_root: Path) -> None:
    with pytest.raises(DataError, match="train_size"):
        load_task("cifar10", root=cifar10_root, val_size=10, train_size=31)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _write_batch(folder / "train", _images(30, 0), np.arange(30) % 100, b"fine_labels")
    _write_batch(folder / "test", _images(10, 1), np.arange(10), b"fine_labels")
    task = load_task("cifar100", root=tmp_path, val_size=5, resize=8)
    assert task.num_classes == 100
    assert (len(task.train), len(task.val), len(task.test)) == (25, 5, 10)
    assert tuple(task.train.x.shape[1:]) == (3, 8, 8)


def test_cifar10_download_extracts_archive(
    cifar10_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar10_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    variant = dataclasses.replace(cifar.CIFAR10, archive_md5=md5)

    def fake_fetch(url: str, dest: Path) -> None:
        shutil.copy(archive, dest)

    monkeypatch.setattr(cifar.urllib.request, "urlretrieve", fake_fetch)
    target = tmp_path / "fresh"
    task = cifar.load_cifar(variant, root=target, download=True, val_size=10)
    assert len(task.train) == 30
    assert (target / "cifar-10-batches-py" / "test_batch").is_file()


# --- npz --------------------------------------------------------------------


def test_npz_directory(npz_root: Path) -> None:
    task = load_task("npz", root=npz_root, train_size=20, val_size=8, resize=6)
    assert task.num_classes == 4
    assert tuple(task.train.x.shape) == (20, 3, 6, 6)
    assert (len(task.val), len(task.test)) == (8, 20)
    assert torch.bincount(task.train.y).tolist() == [5] * 4
    assert torch.allclose(task.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(task.train.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_npz_single_grayscale_file_carves_test(tmp_path: Path) -> None:
    path = tmp_path / "gray.npz"
    np.savez(path, x=_images(50, 3, (10, 10)), y=np.arange(50) % 5)
    task = load_task("npz", root=path, test_size=10, val_size=5)
    assert task.in_channels == 1
    assert (len(task.train), len(task.val), len(task.test)) == (35, 5, 10)
    sets = _index_sets(task)
    assert len(sets["train"] | sets["val"] | sets["test"]) == 50
    rows = torch.cat([task.train.x, task.val.x, task.test.x]).flatten(1)
    assert len(torch.unique(rows, dim=0)) == 50


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((4, 16), dtype=np.uint8), np.arange(4), "expected N×H×W×C"),
        (np.zeros((4, 3, 8, 8), dtype=np.uint8), np.arange(4), "channels-first"),
        (np.zeros((4, 8, 8, 3), dtype=np.float32), np.arange(4), "uint8"),
        (np.zeros((4, 8, 8, 3), dtype=np.uint8), np.arange(3), "4 images but y has 3"),
        (np.zeros((4, 8, 8, 3), dtype=np.uint8), np.zeros(4), "integer class indices"),
    ],
)
def test_npz_wrong_arrays(tmp_path: Path, x: np.ndarray, y: np.ndarray, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, y=y)
    with pytest.raises(DataError, match=message) as info:
        load_task("npz", root=path)
    assert str(path) in str(info.value)


def test_npz_missing_files_name_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_task("npz", root=tmp_path / "absent")
    assert str(tmp_path / "absent") in str(info.value)
    np.savez(tmp_path / "train.npz", x=_images(4, 0, (8, 8)), y=np.arange(4))
    with pytest.raises(DataError, match="test.npz"):
        load_task("npz", root=tmp_path)


@pytest.mark.skipif(not SHARED_CIFAR10.is_dir(), reason="shared CIFAR-10 npz not present")
def test_shared_cifar10_npz() -> None:
    sizes = {"train_size": 200, "val_size": 100, "test_size": 100}
    task = load_task("npz", root=SHARED_CIFAR10, resize=16, **sizes)
    assert tuple(task.train.x.shape) == (200, 3, 16, 16)
    assert task.num_classes == 10
    assert torch.bincount(task.train.y).tolist() == [20] * 10
