"""``random``: a class-balanced random sample of the training set (the coreset baseline)."""

from __future__ import annotations

import torch

from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.proxy import class_indices, split_per_class
from harness.registry import register_condenser
from harness.types import ProxyData, RunContext, Task


@register_condenser("random")
class RandomSelection(Condenser):
    """``ipc`` training images drawn uniformly per class, split into proxy train / val in the
    original val ratio (the "Random" column of the paper's Table 1)."""

    modalities = ("image",)

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Sample ``ipc`` images of each class without replacement and split them."""
        generator = ctx.generator("random")
        chosen = []
        for c, index in enumerate(class_indices(task.train.y, task.num_classes)):
            if len(index) < ipc:
                raise ConfigError(f"class {c} has {len(index)} training images, fewer than ipc={ipc}; "
                                  "lower ipc or use more training images")
            chosen.append(index[torch.randperm(len(index), generator=generator)[:ipc]])
        source = torch.cat(chosen)
        proxy = split_per_class(task.train.subset(source), task.num_classes, task.val_fraction, generator)
        proxy.meta = {"ipc": ipc, "source_indices": source.tolist()}
        return proxy
