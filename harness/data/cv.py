"""The cross-validation task of HCDC's appendix K: an image task whose val split is its train pool.

Ding et al., "Calibrated Dataset Condensation for Faster Hyperparameter Search", appendices J-K
(Table 7): the data of the cross-validation is split into ``M`` folds; each fold validates a
network trained on the others. The ``cv`` loader wraps any registered image dataset (``base``,
loaded with ``base_params``) into a task whose train split is the pool of every labelled
non-test image of the base task (its train split, then its val split) and whose val split is
*the same pool*; the test split stays the base task's. The ``cv_folds`` space
(:mod:`harness.spaces.cv_folds`) then cuts both by the fold rule, so the oracle's candidate
``fold:i`` trains on the pool without fold ``i`` and validates on fold ``i``.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.errors import ConfigError
from harness.types import Split, Task


def load_cv(*, base: str, base_params: dict[str, Any] | None = None) -> Task:
    """Load ``base`` with ``base_params`` and return it as a cross-validation task.

    Returns:
        ``Task(name="cv")`` with ``train`` = ``val`` = the base train split followed by the base val
        split (``N×C×H×W``, the base task's normalization), ``test`` = the base test split, and
        ``meta`` = the base meta plus ``base``, ``val_is_train: True`` and ``pool_sizes``.

    Raises:
        ConfigError: ``base`` is ``cv`` itself, not an image dataset, or ``base_params`` is not a mapping.
        PluginNotFoundError: ``base`` is not a registered dataset.
    """
    from harness.data import load_task  # the registry imports this module

    if base == "cv":
        raise ConfigError("the cv task wraps another dataset; set base to e.g. npz or digits, not cv")
    if base_params is not None and not isinstance(base_params, dict):
        raise ConfigError(f"cv: base_params must be a mapping of the base dataset's parameters, got {base_params!r}")
    task = load_task(base, **(base_params or {}))
    if task.modality != "image":
        raise ConfigError(f"cv wraps image datasets; {base!r} is a {task.modality} dataset")
    pool = Split(torch.cat([task.train.x, task.val.x]), torch.cat([task.train.y, task.val.y]))
    meta = {**task.meta, "base": base, "val_is_train": True,
            "pool_sizes": {"train": len(task.train), "val": len(task.val)}}
    return Task(name="cv", modality="image", num_classes=task.num_classes, train=pool, val=pool, test=task.test,
                meta=meta)
