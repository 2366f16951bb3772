"""Helpers every image condenser shares: per-class budgets and the train/val split of a proxy.

The paper's protocol gives each baseline ``ipc`` images per class in total and splits them
into proxy train and proxy val in the original data's val ratio.
"""

from __future__ import annotations

import torch

from harness.errors import ConfigError
from harness.types import ProxyData, Split


def split_counts(ipc: int, val_fraction: float) -> tuple[int, int]:
    """Per-class ``(train, val)`` counts of a proxy with ``ipc`` images per class.

    ``val`` is ``round(ipc * val_fraction)`` clipped so both sides keep at least one image.

    Raises:
        ConfigError: ``ipc`` < 2 (a proxy needs one train and one val image per class).
    """
    if ipc < 2:
        raise ConfigError(f"ipc must be at least 2 (one train and one val image per class), got {ipc}")
    n_val = min(max(1, round(ipc * val_fraction)), ipc - 1)
    return ipc - n_val, n_val


def class_indices(y: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Positions of each class's samples in ``y``, in order."""
    return [torch.nonzero(y == c, as_tuple=True)[0] for c in range(num_classes)]


def split_per_class(proxy: Split, num_classes: int, val_fraction: float,
                    generator: torch.Generator) -> ProxyData:
    """Split a proxy of ``ipc`` images per class into proxy train and proxy val per class.

    Each class's images are shuffled with ``generator`` and cut by :func:`split_counts`.
    """
    train_parts, val_parts = [], []
    for index in class_indices(proxy.y, num_classes):
        n_train, _ = split_counts(len(index), val_fraction)
        shuffled = index[torch.randperm(len(index), generator=generator)]
        train_parts.append(shuffled[:n_train])
        val_parts.append(shuffled[n_train:])
    return ProxyData(train=proxy.subset(torch.cat(train_parts)), val=proxy.subset(torch.cat(val_parts)))
