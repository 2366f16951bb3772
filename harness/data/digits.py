"""scikit-learn's bundled 8×8 handwritten digits: the default dataset, no download."""

from __future__ import annotations

import numpy as np

from harness.data._splits import Pool, build_task, check_loader_params, select_splits
from harness.types import Task

MAX_PIXEL = 16
"""The digits' pixel values run from 0 to 16."""


def load_digits(
    *,
    train_size: int = 300,
    val_size: int = 300,
    test_size: int = 600,
    split_seed: int = 0,
    resize: int | None = None,
) -> Task:
    """Load the 1797 digits as a 1-channel, 10-class image task.

    Test, val and train are drawn in that order, disjoint and class-balanced, from
    the same 1797 images under ``split_seed``; ``meta["indices"]`` holds each
    split's positions in that array.
    """
    sizes = {"train_size": train_size, "val_size": val_size, "test_size": test_size}
    check_loader_params(split_seed, resize, sizes, allow_none=False)
    from sklearn.datasets import load_digits as sklearn_digits  # slow import: only when used

    bunch = sklearn_digits()
    pool = Pool(bunch.images.astype(np.uint8)[..., None], bunch.target.astype(np.int64), "all")
    parts = select_splits(pool, None, split_seed=split_seed, **sizes)
    return build_task(
        "digits",
        parts,
        num_classes=int(pool.y.max()) + 1,
        resize=resize,
        max_value=MAX_PIXEL,
        meta={"source": "sklearn.datasets.load_digits", "split_seed": split_seed},
    )
