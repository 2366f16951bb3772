"""Differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021), shared by DSA and DM.

DSA matches real and synthetic batches under the *same* random transformation
``A_ω``: the matching losses become ``D(∇θ L(A_ω(T_c)), ∇θ L(A_ω(S_c)))`` (DSA) and
``‖mean φ(A_ω(T_c)) − mean φ(A_ω(S_c))‖²`` (DM), with ``ω`` drawn once per class and
iteration. Every transformation is differentiable w.r.t. the image pixels, so the gradient
reaches the synthetic images through ``A_ω``.

As in the reference implementation, one call applies ONE transformation drawn uniformly from
the strategy (``"color_crop_cutout_flip_scale_rotate"``); ``color`` is brightness, then
saturation, then contrast. Parameters are drawn from a CPU ``torch.Generator`` (deterministic)
either once for a whole batch (:meth:`SiameseAugment.sample` with ``n=1``; the siamese mode)
or once per image (:meth:`SiameseAugment.__call__`; used to train networks on synthetic data).

Shapes: images ``N×C×H×W`` in, the same shape out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.errors import ConfigError

TRANSFORMS = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"

# The uniform draws in [0, 1) behind each transformation, in drawing order.
_PARAMETERS = {"color": ("brightness", "saturation", "contrast"), "crop": ("dy", "dx"), "cutout": ("cy", "cx"),
               "flip": ("flip",), "scale": ("sy", "sx"), "rotate": ("angle",)}


@dataclass(frozen=True)
class AugmentParams:
    """One draw of :class:`SiameseAugment`.

    Attributes:
        transform: the transformation chosen (one of :data:`TRANSFORMS`).
        values: its parameters, each a CPU tensor of length 1 (shared by every image of a
            batch) or ``N`` (one per image).
    """

    transform: str
    values: dict[str, torch.Tensor]


class SiameseAugment:
    """The DSA transformations with the reference implementation's ranges.

    Args:
        strategy: transformations joined by ``"_"``, a subset of :data:`TRANSFORMS`.
        flip_prob: probability of a horizontal flip.
        scale_ratio: each axis is scaled by a factor in ``[1/scale_ratio, scale_ratio]``.
        rotate_degrees: rotation angle in ``[-rotate_degrees, rotate_degrees]``.
        crop_ratio: translation by up to ``round(crop_ratio · side)`` pixels, zero filled.
        cutout_ratio: side of the zeroed square, as a fraction of the image side.
        brightness: ``x + (u − 0.5)·brightness``, ``u ~ U(0, 1)``.
        saturation: ``(x − mean_C x)·u·saturation + mean_C x`` (mean over channels).
        contrast: ``(x − mean_CHW x)·(u + contrast) + mean_CHW x`` (mean over the image).

    Raises:
        ConfigError: the strategy is empty or names an unknown transformation.
    """

    def __init__(self, strategy: str = DEFAULT_STRATEGY, *, flip_prob: float = 0.5,
                 scale_ratio: float = 1.2, rotate_degrees: float = 15.0, crop_ratio: float = 0.125,
                 cutout_ratio: float = 0.5, brightness: float = 1.0, saturation: float = 2.0,
                 contrast: float = 0.5) -> None:
        names = [name for name in strategy.split("_") if name]
        unknown = sorted(set(names) - set(TRANSFORMS))
        if not names or unknown:
            raise ConfigError(f"augmentation strategy {strategy!r} must join names from {list(TRANSFORMS)} "
                              f"with '_' (e.g. {DEFAULT_STRATEGY!r}); unknown: {unknown}")
        self.transforms = tuple(names)
        self.flip_prob = flip_prob
        self.scale_ratio = scale_ratio
        self.rotate_radians = math.radians(rotate_degrees)
        self.crop_ratio = crop_ratio
        self.cutout_ratio = cutout_ratio
        self.brightness = brightness
        self.saturation = saturation
        self.contrast = contrast

    def sample(self, generator: torch.Generator, n: int = 1) -> AugmentParams:
        """Draw a transformation and ``n`` parameter sets for it (``n=1``: siamese, one for all).

        Integer parameters (crop shifts, cutout centres) are drawn as fractions in ``[0, 1)``
        and turned into pixels by :meth:`apply`, so one draw fits batches of any image size.
        """
        transform = self.transforms[int(torch.randint(len(self.transforms), (1,), generator=generator))]
        return AugmentParams(transform, {key: torch.rand(n, generator=generator) for key in _PARAMETERS[transform]})

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Transform images ``x`` (``N×C×H×W``) with ``params`` (length 1 or ``N``); differentiable in ``x``."""
        lengths = {len(value) for value in params.values.values()}
        if not lengths <= {1, x.shape[0]}:
            raise ValueError(f"augmentation parameters of length {sorted(lengths)} cannot transform a batch of "
                             f"{x.shape[0]} images; sample with n=1 (shared) or n={x.shape[0]} (per image)")
        values = {key: value.to(x.device, x.dtype).expand(x.shape[0]) for key, value in params.values.items()}
        return getattr(self, f"_{params.transform}")(x, **values)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Transform every image of ``x`` with its own parameters (one transformation per call)."""
        return self.apply(x, self.sample(generator, n=x.shape[0]))

    def _color(self, x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor,
               contrast: torch.Tensor) -> torch.Tensor:
        x = x + (_per_image(brightness) - 0.5) * self.brightness
        channel_mean = x.mean(dim=1, keepdim=True)
        x = (x - channel_mean) * (_per_image(saturation) * self.saturation) + channel_mean
        image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - image_mean) * (_per_image(contrast) + self.contrast) + image_mean

    def _crop(self, x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        pad_y, pad_x = int(height * self.crop_ratio + 0.5), int(width * self.crop_ratio + 0.5)
        shift_y = (dy * (2 * pad_y + 1)).long() - pad_y  # integers in [-pad_y, pad_y]
        shift_x = (dx * (2 * pad_x + 1)).long() - pad_x
        padded = F.pad(x, [pad_x, pad_x, pad_y, pad_y])
        rows = torch.arange(height, device=x.device) + pad_y + shift_y[:, None]  # N×H
        cols = torch.arange(width, device=x.device) + pad_x + shift_x[:, None]  # N×W
        batch = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indexing around the channel slice puts the indexed dims first: N×H×W×C.
        return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    def _cutout(self, x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
        _, _, height, width = x.shape
        size_y, size_x = int(height * self.cutout_ratio + 0.5), int(width * self.cutout_ratio + 0.5)
        # Centres range over [0, side] for even squares, [0, side) for odd ones, as in the reference.
        top = (cy * (height + 1 - size_y % 2)).long() - size_y // 2
        left = (cx * (width + 1 - size_x % 2)).long() - size_x // 2
        rows = torch.arange(height, device=x.device)
        cols = torch.arange(width, device=x.device)
        inside_y = (rows >= top[:, None]) & (rows < top[:, None] + size_y)  # N×H
        inside_x = (cols >= left[:, None]) & (cols < left[:, None] + size_x)  # N×W
        keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
        return x * keep[:, None].to(x.dtype)

    def _flip(self, x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        return torch.where(_per_image(flip) < self.flip_prob, x.flip(3), x)

    def _scale(self, x: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
        low = 1.0 / self.scale_ratio
        factor_y, factor_x = low + sy * (self.scale_ratio - low), low + sx * (self.scale_ratio - low)
        zero = torch.zeros_like(factor_x)
        theta = torch.stack([torch.stack([factor_x, zero, zero], 1), torch.stack([zero, factor_y, zero], 1)], 1)
        return _warp(x, theta)

    def _rotate(self, x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        radians = (angle - 0.5) * 2 * self.rotate_radians
        cos, sin, zero = torch.cos(radians), torch.sin(radians), torch.zeros_like(radians)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        return _warp(x, theta)


def _per_image(value: torch.Tensor) -> torch.Tensor:
    """A length-``N`` parameter as ``N×1×1×1`` for broadcasting over images."""
    return value[:, None, None, None]


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` through the affine maps ``theta`` (``N×2×3``), zero outside the image."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)
