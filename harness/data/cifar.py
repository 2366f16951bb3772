"""CIFAR-10 and CIFAR-100 read from the official "python version" pickled batches."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data._splits import Pool, build_task, check_loader_params, select_splits
from harness.errors import ConfigError, DataError
from harness.types import Task

_BASE_URL = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class CifarVariant:
    """Where one CIFAR variant's files live and how its pickles are keyed."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    num_classes: int
    archive: str
    archive_md5: str


CIFAR10 = CifarVariant(
    name="cifar10",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    label_key=b"labels",
    num_classes=10,
    archive="cifar-10-python.tar.gz",
    archive_md5="c58f30108f718f92721af3b95e74349a",
)
CIFAR100 = CifarVariant(
    name="cifar100",
    folder="cifar-100-python",
    train_files=("train",),
    test_file="test",
    label_key=b"fine_labels",
    num_classes=100,
    archive="cifar-100-python.tar.gz",
    archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
)


def load_cifar(
    variant: CifarVariant,
    *,
    root: str | Path,
    download: bool = False,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    split_seed: int = 0,
    resize: int | None = None,
) -> Task:
    """Load a CIFAR variant as a 3-channel image task (registered with ``variant`` bound).

    Args:
        variant: :data:`CIFAR10` or :data:`CIFAR100`.
        root: the directory holding the batches folder, or the batches folder itself.
        download: fetch and extract the official archive into ``root`` if files are missing.
        train_size: train images taken from the train batches after val (``None``: all).
        val_size: val images carved from the train batches (``None``: 10%, i.e. 5000).
        test_size: test images drawn from the test batch (``None``: all 10000).
        split_seed: seed of the stratified draws.
        resize: side length to resize to (``None``: keep 32).
    """
    sizes = {"train_size": train_size, "val_size": val_size, "test_size": test_size}
    check_loader_params(split_seed, resize, sizes)
    if not isinstance(download, bool):
        raise ConfigError(f"dataset parameter 'download' must be true or false, got {download!r}")
    folder = locate_batches(variant, Path(root).expanduser(), download)
    train = read_batches(variant, [folder / name for name in variant.train_files], "train")
    test = read_batches(variant, [folder / variant.test_file], "test")
    parts = select_splits(train, test, split_seed=split_seed, **sizes)
    meta = {"source": str(folder), "split_seed": split_seed}
    return build_task(
        variant.name, parts, num_classes=variant.num_classes, resize=resize, meta=meta
    )


def _missing_files(variant: CifarVariant, folder: Path) -> list[Path]:
    """The variant's batch files absent from ``folder``."""
    names = (*variant.train_files, variant.test_file)
    return [folder / name for name in names if not (folder / name).is_file()]


def locate_batches(variant: CifarVariant, root: Path, download: bool) -> Path:
    """Return the folder holding the variant's batches, downloading them if allowed.

    ``root`` may be the batches folder itself or its parent. Raises ``DataError``
    naming the places looked at when the files are missing and ``download`` is false.
    """
    candidates = [root, root / variant.folder]
    for folder in candidates:
        if not _missing_files(variant, folder):
            return folder
    if download:
        download_archive(variant, root)
        return root / variant.folder
    looked = " or ".join(f"'{folder}'" for folder in candidates)
    missing = ", ".join(p.name for p in _missing_files(variant, candidates[-1]))
    raise DataError(
        f"{variant.name} batches not found in {looked} (missing: {missing}); point 'root' at "
        f"the directory containing '{variant.folder}', or pass 'download: true' to fetch them"
    )


def _md5(path: Path) -> str:
    """Hex MD5 digest of the file at ``path``."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_archive(variant: CifarVariant, root: Path) -> None:
    """Download the official archive into ``root``, check its MD5 and extract it there."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / variant.archive
    url = _BASE_URL + variant.archive
    if not archive.is_file():
        partial = archive.with_name(archive.name + ".part")
        try:
            urllib.request.urlretrieve(url, partial)
        except (urllib.error.URLError, OSError) as exc:
            raise DataError(
                f"could not download {url} ({exc}); download it by hand and extract it "
                f"into '{root}'"
            ) from exc
        partial.rename(archive)
    if _md5(archive) != variant.archive_md5:
        raise DataError(f"'{archive}' is corrupt (MD5 mismatch); delete it and download again")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")


def _read_pickle(path: Path) -> dict:
    """Unpickle one batch file, turning failures into ``DataError``."""
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"could not read CIFAR batch '{path}': {exc}") from exc
    if not isinstance(batch, dict):
        raise DataError(f"CIFAR batch '{path}' holds a {type(batch).__name__}, expected a dict")
    return batch


def _batch_arrays(variant: CifarVariant, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file's images (``N×32×32×3`` uint8) and labels, checked."""
    batch = _read_pickle(path)
    expected = f"expected b'data' (uint8 N×3072) and {variant.label_key!r} (N labels)"
    if b"data" not in batch or variant.label_key not in batch:
        raise DataError(f"CIFAR batch '{path}' has keys {sorted(batch)}; {expected}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[variant.label_key])
    if data.dtype != np.uint8 or data.shape[1:] != (3 * 32 * 32,) or labels.shape != data.shape[:1]:
        raise DataError(
            f"CIFAR batch '{path}' holds data {data.dtype} {data.shape} and labels "
            f"{labels.shape}; {expected}"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def read_batches(variant: CifarVariant, paths: list[Path], pool_name: str) -> Pool:
    """Read and concatenate batch files into a :class:`Pool` of ``N×32×32×3`` uint8 images."""
    images, labels = zip(*(_batch_arrays(variant, path) for path in paths))
    return Pool(np.concatenate(images), np.concatenate(labels), pool_name)
