"""Users' own image arrays stored as NumPy ``.npz`` files.

``root`` is either a directory holding ``train.npz`` and ``test.npz`` or a single
``.npz`` file (the test split is then carved out of it). Each file holds ``x``:
``uint8`` images ``N×H×W×C`` (or ``N×H×W`` for grayscale) and ``y``: ``N``
integer class indices starting at 0.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from harness.data._splits import Pool, build_task, check_loader_params, select_splits
from harness.errors import DataError
from harness.types import Task

_LAYOUT = "a directory with train.npz and test.npz, or a single .npz file"


def load_npz(
    *,
    root: str | Path,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    split_seed: int = 0,
    resize: int | None = None,
) -> Task:
    """Load ``.npz`` image arrays as an image task.

    Args:
        root: a directory with ``train.npz`` and ``test.npz``, or one ``.npz`` file.
        train_size: train images taken after val (``None``: all that are left).
        val_size: val images carved from the train pool (``None``: 10% of it).
        test_size: test images (``None``: all of ``test.npz``, or 10% of a single file).
        split_seed: seed of the stratified draws.
        resize: side length to resize to (``None``: keep; images must then be square).
    """
    sizes = {"train_size": train_size, "val_size": val_size, "test_size": test_size}
    check_loader_params(split_seed, resize, sizes)
    path = Path(root).expanduser()
    train, test = read_pools(path)
    parts = select_splits(train, test, split_seed=split_seed, **sizes)
    labels = train.y if test is None else np.concatenate([train.y, test.y])
    meta = {"source": str(path), "split_seed": split_seed}
    return build_task("npz", parts, num_classes=int(labels.max()) + 1, resize=resize, meta=meta)


def read_pools(path: Path) -> tuple[Pool, Pool | None]:
    """Read the train pool and the test pool (``None`` for a single file) at ``path``."""
    if path.is_file():
        return read_npz(path, "all"), None
    if not path.is_dir():
        raise DataError(f"npz dataset root '{path}' does not exist; point 'root' at {_LAYOUT}")
    files = [path / "train.npz", path / "test.npz"]
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise DataError(f"missing {missing}; point 'root' at {_LAYOUT}")
    train, test = read_npz(files[0], "train"), read_npz(files[1], "test")
    if train.x.shape[1:] != test.x.shape[1:]:
        raise DataError(
            f"train.npz images are {train.x.shape[1:]} but test.npz images are "
            f"{test.x.shape[1:]} in '{path}'; both must share H×W×C"
        )
    return train, test


def read_npz(path: Path, pool_name: str) -> Pool:
    """Read and check ``x`` and ``y`` from one ``.npz`` file."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise DataError(
                    f"'{path}' holds {sorted(arrays.files)}; it needs arrays 'x' and 'y'"
                )
            x, y = arrays["x"], arrays["y"]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"could not read '{path}' as an .npz file: {exc}") from exc
    check_arrays(path, x, y)
    return Pool(x if x.ndim == 4 else x[..., None], y.astype(np.int64), pool_name)


def check_arrays(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Raise ``DataError`` unless ``x`` and ``y`` have the documented shapes and dtypes."""
    if x.ndim not in (3, 4):
        raise DataError(
            f"'{path}': x has shape {x.shape}; expected N×H×W×C, or N×H×W for grayscale"
        )
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
        raise DataError(
            f"'{path}': x has shape {x.shape}, which looks channels-first; "
            "store it as N×H×W×C, e.g. x.transpose(0, 2, 3, 1)"
        )
    if x.dtype != np.uint8:
        raise DataError(
            f"'{path}': x is {x.dtype}; expected uint8 pixels in 0-255 "
            "(from floats in [0, 1]: (x * 255).round().astype('uint8'))"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"'{path}': y is {y.dtype} of shape {y.shape}; expected N integer class indices"
        )
    if len(y) != len(x):
        raise DataError(f"'{path}': x has {len(x)} images but y has {len(y)} labels")
    if len(y) == 0:
        raise DataError(f"'{path}' holds no images")
    if y.min() < 0:
        raise DataError(f"'{path}': y has negative labels; class indices must start at 0")
