"""The ConvNet of the dataset-condensation literature (DC, DSA, DM, KIP, MTT).

``depth`` blocks of [3×3 conv (``width`` channels) → instance norm → ReLU → 2×2 average
pool], then a linear classifier. Zhao et al. (ICLR 2021) use depth 3, width 128; smaller
widths and depths make condensation affordable on a CPU.

Shapes: input ``N×C×H×W`` → logits ``N×num_classes``; :meth:`ConvNet.embed` gives the
flattened features ``N×(width·(H/2^depth)·(W/2^depth))`` used by DM, k-center and herding.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    """Args:
        in_channels: image channels.
        num_classes: output classes.
        image_size: side of the square input images.
        width: channels of every conv layer (128 in the papers).
        depth: number of conv blocks (3 in the papers); each halves the resolution.
        norm: ``"instance"`` (the papers' default; GroupNorm with one group per channel,
            affine) or ``"none"``.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 128,
                 depth: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if image_size >> depth < 1:
            raise ValueError(f"depth {depth} pools {image_size}px images below 1 pixel; lower depth")
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1),
                       nn.GroupNorm(width, width, affine=True) if norm == "instance" else nn.Identity(),
                       nn.ReLU(inplace=True), nn.AvgPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.embedding_dim = width * (image_size >> depth) ** 2
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened features before the classifier: ``N×embedding_dim``."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``N×num_classes``."""
        return self.classifier(self.embed(x))
