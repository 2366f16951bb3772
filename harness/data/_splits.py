"""Helpers shared by every dataset loader.

A loader reads its files into :class:`Pool` objects (``uint8``-like images
``N×H×W×C`` plus integer labels), picks rows with :func:`select_splits`, and hands
the picks to :func:`build_task`, which converts to float ``N×C×H×W``, optionally
resizes, normalizes with train-split statistics and returns the :class:`Task`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness._values import is_int
from harness.errors import ConfigError, DataError
from harness.seeding import derive_seed
from harness.types import Split, Task

HOLDOUT_FRACTION = 0.1
"""Share of a pool carved out for val (or test) when its size is not given."""


@dataclass
class Pool:
    """All images and labels of one source (e.g. CIFAR's train batches).

    Attributes:
        x: images ``N×H×W×C``.
        y: integer labels ``N``.
        name: which source the rows come from (``"train"``, ``"test"`` or ``"all"``).
    """

    x: np.ndarray
    y: np.ndarray
    name: str


@dataclass
class Part:
    """The rows of a :class:`Pool` chosen for one split."""

    pool: Pool
    index: np.ndarray


def check_size(param: str, value: Any, allow_none: bool = True) -> None:
    """Raise ``ConfigError`` unless ``value`` is a non-negative int (or ``None`` if allowed)."""
    if value is None and allow_none:
        return
    if not is_int(value) or value < 0:
        expected = "a non-negative integer" + (" or null" if allow_none else "")
        raise ConfigError(f"dataset parameter '{param}' must be {expected}, got {value!r}")


def check_loader_params(
    split_seed: Any, resize: Any, sizes: dict[str, Any], allow_none: bool = True
) -> None:
    """Validate the parameters every loader shares; raise ``ConfigError`` on a bad one."""
    for param, value in sizes.items():
        check_size(param, value, allow_none)
    if not is_int(split_seed):
        raise ConfigError(f"dataset parameter 'split_seed' must be an integer, got {split_seed!r}")
    if resize is not None and (not is_int(resize) or resize < 1):
        raise ConfigError(
            f"dataset parameter 'resize' must be a positive integer or null, got {resize!r}"
        )


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Return ``n`` sorted positions into ``labels``, as class-balanced as the data allows.

    Classes are visited round-robin in a seeded random order, so every class gets
    ``n // k`` or ``n // k + 1`` items unless it has fewer (then the others fill in).
    """
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[order]
    by_class = np.argsort(shuffled, kind="stable")
    sorted_labels = shuffled[by_class]
    rank = np.empty(len(labels), dtype=np.int64)
    rank[by_class] = np.arange(len(labels)) - np.searchsorted(sorted_labels, sorted_labels)
    picked = np.lexsort((np.arange(len(labels)), rank))[:n]
    return np.sort(order[picked])


def carve(labels: np.ndarray, sizes: dict[str, int | None], seed: int) -> dict[str, np.ndarray]:
    """Draw disjoint stratified subsets of ``labels``' positions, in ``sizes``' order.

    Each subset is drawn from what the earlier ones left; a size of ``None`` takes
    everything left. Raises ``DataError`` when a size exceeds what is left.
    """
    remaining = np.arange(len(labels))
    carved = {}
    for name, size in sizes.items():
        n = len(remaining) if size is None else size
        if n > len(remaining):
            raise DataError(
                f"cannot draw {n} {name} images: only {len(remaining)} of {len(labels)} are left "
                f"after the earlier splits; lower '{name}_size' (or the other sizes)"
            )
        picked = remaining[stratified_indices(labels[remaining], n, derive_seed(seed, name))]
        carved[name] = picked
        remaining = np.setdiff1d(remaining, picked, assume_unique=True)
    return carved


def holdout_size(size: int | None, pool_size: int) -> int:
    """``size`` if given, else :data:`HOLDOUT_FRACTION` of ``pool_size``."""
    return int(pool_size * HOLDOUT_FRACTION) if size is None else size


def select_splits(
    train_pool: Pool,
    test_pool: Pool | None,
    *,
    train_size: int | None,
    val_size: int | None,
    test_size: int | None,
    split_seed: int,
) -> dict[str, Part]:
    """Choose the rows of the train, val and test splits, stratified and seeded.

    Test comes from ``test_pool`` (``test_size=None``: all of it) or, when there is
    no test pool, is carved out of ``train_pool`` first (``None``: 10%). Val is then
    carved from the train pool (``None``: 10% of what is left) and train takes
    ``train_size`` of the rest (``None``: all). Carving test and val first keeps them
    fixed when only ``train_size`` changes.
    """
    sizes: dict[str, int | None] = {}
    if test_pool is None:
        sizes["test"] = holdout_size(test_size, len(train_pool.y))
        test_part = None
    else:
        test_index = carve(test_pool.y, {"test": test_size}, split_seed)["test"]
        test_part = Part(test_pool, test_index)
    sizes["val"] = holdout_size(val_size, len(train_pool.y) - sizes.get("test", 0))
    sizes["train"] = train_size
    carved = carve(train_pool.y, sizes, split_seed)
    parts = {name: Part(train_pool, index) for name, index in carved.items()}
    if test_part is not None:
        parts["test"] = test_part
    return {name: parts[name] for name in ("train", "val", "test")}


def to_float_nchw(x: np.ndarray, max_value: float) -> torch.Tensor:
    """Convert ``N×H×W×C`` images in ``[0, max_value]`` to float ``N×C×H×W`` in ``[0, 1]``."""
    nchw = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
    return nchw.float().div_(max_value)


def resize_images(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize ``N×C×H×W`` images to ``size×size`` (antialiased bilinear); ``None`` keeps them."""
    if size is None or (x.shape[-2] == size and x.shape[-1] == size):
        return x
    return F.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of ``N×C×H×W`` images; std is floored at 1e-8."""
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3), unbiased=False).clamp_min(1e-8)
    return mean, std


def _images(part: Part, max_value: float, resize: int | None) -> torch.Tensor:
    """The part's images as float ``N×C×H×W`` in ``[0, 1]``, resized."""
    return resize_images(to_float_nchw(part.pool.x[part.index], max_value), resize)


def _labels(part: Part) -> torch.Tensor:
    """The part's labels as an int64 tensor."""
    return torch.from_numpy(part.pool.y[part.index]).long()


def _normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Subtract the per-channel ``mean`` and divide by ``std``."""
    return (x - mean[:, None, None]) / std[:, None, None]


def build_task(
    name: str,
    parts: dict[str, Part],
    *,
    num_classes: int,
    resize: int | None,
    max_value: float = 255.0,
    meta: dict[str, Any] | None = None,
) -> Task:
    """Turn the selected rows into a normalized image :class:`Task`.

    ``parts`` maps ``"train"``, ``"val"``, ``"test"`` to their rows. Images are
    scaled by ``max_value`` to ``[0, 1]``, resized, then normalized per channel with
    the train split's mean and std. ``meta`` is extended with ``sizes``,
    ``resolution``, ``original_resolution``, ``mean``, ``std`` and ``indices`` (each
    split's positions in its source pool, named in ``index_pools``).
    """
    if len(parts["train"].index) == 0:
        raise DataError(f"dataset '{name}' has an empty train split; raise 'train_size'")
    height, width = parts["train"].pool.x.shape[1:3]
    if height != width and resize is None:
        raise DataError(
            f"dataset '{name}' has non-square {height}x{width} images; "
            "pass 'resize' to make them square"
        )
    images = {split: _images(part, max_value, resize) for split, part in parts.items()}
    mean, std = channel_stats(images["train"])
    splits = {
        split: Split(_normalize(x, mean, std), _labels(parts[split])) for split, x in images.items()
    }
    meta = {
        **(meta or {}),
        "sizes": {split: len(s) for split, s in splits.items()},
        "resolution": int(splits["train"].x.shape[-1]),
        "original_resolution": [int(height), int(width)],
        "mean": mean.tolist(),
        "std": std.tolist(),
        "indices": {split: torch.from_numpy(p.index).long() for split, p in parts.items()},
        "index_pools": {split: p.pool.name for split, p in parts.items()},
    }
    return Task(name=name, modality="image", num_classes=num_classes, meta=meta, **splits)
