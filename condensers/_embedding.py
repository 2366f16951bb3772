"""What the feature-space coresets ``kcenter`` and ``herding`` share.

Both pick ``ipc`` training images per class greedily in a feature space, then split them into
proxy train / val like ``random``. The feature space is either the raw pixels or the output of
a randomly initialized :class:`harness.convnet.ConvNet` (the dataset-condensation ConvNet;
Zhao et al., ICLR 2021, use it for their coreset baselines), seeded from the cell's seed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from harness._values import is_int
from harness.convnet import ConvNet
from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.proxy import class_indices, split_counts, split_per_class
from harness.seeding import derive_seed
from harness.types import ProxyData, RunContext, Task

EMBEDDINGS = ("convnet", "pixels")

# Images per forward pass: keeps the first conv layer's activations small (at 32 px and width
# 128 a batch of 256 needs ~130 MB) while 20,000 images still embed in one call.
_BATCH_SIZE = 256


def embed_images(x: torch.Tensor, embedding: str, seed: int, width: int = 128, depth: int = 3,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Embed images ``x`` (``N×C×H×W``) into features ``N×D`` on ``device``.

    Args:
        embedding: ``"pixels"``: the flattened images, ``D = C·H·W``; ``"convnet"``: the
            features of a randomly initialized ConvNet in eval mode,
            ``D = width·(H/2^depth)·(W/2^depth)``.
        seed: initializes the ConvNet's weights (the global RNG is left untouched).
        width, depth: the ConvNet's channels and conv blocks.

    Raises:
        ConfigError: unknown ``embedding``, or ``depth`` pools the images below one pixel.
    """
    if embedding == "pixels":
        return x.flatten(1).to(device)
    if embedding != "convnet":
        raise ConfigError(f"embedding must be one of {list(EMBEDDINGS)}, got {embedding!r}")
    size = int(x.shape[-1])
    if size >> depth < 1:
        raise ConfigError(f"a depth-{depth} ConvNet pools {size}px images below one pixel; "
                          f"use depth <= {size.bit_length() - 1} or embedding='pixels'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvNet(int(x.shape[1]), num_classes=1, image_size=size, width=width, depth=depth)
    net = net.to(device).eval()
    with torch.no_grad():
        return torch.cat([net.embed(batch.to(device)) for batch in x.split(_BATCH_SIZE)])


class FeatureCoreset(Condenser):
    """Base of coresets that pick ``ipc`` images per class greedily in a feature space.

    A subclass implements :meth:`select`; :meth:`condense` embeds ``task.train`` once, selects
    within each class, and splits the selection into proxy train / val with
    :func:`harness.proxy.split_per_class` in the task's val ratio.

    Parameters: ``embedding`` (``"convnet"`` or ``"pixels"``), ``width`` and ``depth`` of the
    random ConvNet (128 and 3 as in Zhao et al., 2021).
    """

    modalities = ("image",)
    defaults: ClassVar[dict[str, Any]] = {"embedding": "convnet", "width": 128, "depth": 3}
    test_params: ClassVar[dict[str, Any]] = {"width": 16, "depth": 2}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["embedding"] not in EMBEDDINGS:
            raise ConfigError(f"{self.name}: embedding must be one of {list(EMBEDDINGS)}, "
                              f"got {self.params['embedding']!r}")
        for key in ("width", "depth"):
            value = self.params[key]
            if not is_int(value) or value < 1:
                raise ConfigError(f"{self.name}: {key} must be a positive integer, got {value!r}")

    @staticmethod
    def select(features: torch.Tensor, k: int) -> torch.Tensor:
        """Positions (long ``k``) of the ``k`` rows of ``features`` (``n×D``) to keep, in pick order."""
        raise NotImplementedError

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Select ``ipc`` images of each class with :meth:`select` and split them into train / val.

        ``meta["source_indices"]`` lists the chosen rows of ``task.train``, class by class, each
        class in pick order.

        Raises:
            ConfigError: ``ipc`` is missing or below 2, or a class has fewer than ``ipc``
                training images.
        """
        if ipc is None:
            raise ConfigError(f"{self.name} needs ipc (images per class); set ipc in the sweep config")
        split_counts(ipc, task.val_fraction)  # rejects ipc < 2 before the embedding is computed
        per_class = class_indices(task.train.y, task.num_classes)
        for c, index in enumerate(per_class):
            if len(index) < ipc:
                raise ConfigError(f"class {c} has {len(index)} training images, fewer than ipc={ipc}; "
                                  "lower ipc or use more training images")
        features = embed_images(task.train.x, self.params["embedding"],
                                seed=derive_seed(ctx.seed, "coreset-embedding"),
                                width=self.params["width"], depth=self.params["depth"], device=ctx.device)
        chosen = [index[self.select(features[index.to(features.device)], ipc).cpu()] for index in per_class]
        source = torch.cat(chosen)
        proxy = split_per_class(task.train.subset(source), task.num_classes, task.val_fraction,
                                ctx.generator(self.name))
        proxy.meta = {"ipc": ipc, "source_indices": source.tolist()}
        return proxy
