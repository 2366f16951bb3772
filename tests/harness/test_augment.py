"""Tests of the differentiable siamese augmentation shared by DSA and DM."""

from __future__ import annotations

import pytest
import torch

from harness.augment import DEFAULT_STRATEGY, TRANSFORMS, AugmentParams, SiameseAugment
from harness.errors import ConfigError


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_siamese_draw_transforms_identical_batches_identically(transform):
    augment = SiameseAugment(transform)
    params = augment.sample(torch.Generator().manual_seed(3))
    x = images()
    first, second = augment.apply(x, params), augment.apply(x.clone(), params)
    assert first.shape == x.shape
    assert torch.equal(first, second)
    # One draw is shared by every image: a single image is transformed as in the full batch.
    assert torch.allclose(augment.apply(x[2:3], params), first[2:3], atol=1e-6)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_differentiable_in_the_input(transform):
    augment = SiameseAugment(transform)
    x = images().requires_grad_(True)
    augment.apply(x, augment.sample(torch.Generator().manual_seed(1))).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_deterministic_under_a_generator_seed():
    augment = SiameseAugment()
    x = images(8)
    outputs = [augment(x, torch.Generator().manual_seed(seed)) for seed in (5, 5, 6)]
    assert torch.equal(outputs[0], outputs[1])
    draws = {augment.sample(torch.Generator().manual_seed(seed)).transform for seed in range(40)}
    assert draws == set(TRANSFORMS)


def test_per_image_mode_gives_each_image_its_own_parameters():
    augment = SiameseAugment("rotate")
    x = images(1).expand(6, -1, -1, -1)
    out = augment(x, torch.Generator().manual_seed(0))
    assert not torch.allclose(out[0], out[1])


def test_neutral_parameters_are_the_identity():
    x = images()
    one = torch.ones(1)
    half = torch.full((1,), 0.5)
    augment = SiameseAugment()
    assert torch.allclose(augment.apply(x, AugmentParams("rotate", {"angle": half})), x, atol=1e-5)
    assert torch.allclose(augment.apply(x, AugmentParams("crop", {"dy": half, "dx": half})), x)
    assert torch.equal(augment.apply(x, AugmentParams("flip", {"flip": one * 0.9})), x)
    assert torch.equal(augment.apply(x, AugmentParams("flip", {"flip": one * 0.1})), x.flip(3))


def test_crop_translates_with_zero_fill():
    x = images(1)
    shifted = SiameseAugment().apply(x, AugmentParams("crop", {"dy": torch.zeros(1), "dx": torch.full((1,), 0.5)}))
    # 16 px and ratio 0.125: shifts in [-2, 2]; dy = 0 moves the rows down by 2, dx = 0.5 keeps columns.
    assert torch.equal(shifted[..., 2:, :], x[..., :14, :])
    assert torch.equal(shifted[..., :2, :], torch.zeros_like(shifted[..., :2, :]))


def test_cutout_zeroes_a_half_side_square():
    x = images(1).abs() + 1
    out = SiameseAugment().apply(x, AugmentParams("cutout", {"cy": torch.full((1,), 0.5),
                                                             "cx": torch.full((1,), 0.5)}))
    zeroed = (out == 0).all(dim=1)
    assert int(zeroed.sum()) == 8 * 8
    assert torch.equal(out[:, :, ~zeroed[0]], x[:, :, ~zeroed[0]])


def test_unknown_strategy_is_rejected():
    with pytest.raises(ConfigError, match="blur"):
        SiameseAugment("color_blur")
    with pytest.raises(ConfigError):
        SiameseAugment("")
    assert SiameseAugment(DEFAULT_STRATEGY).transforms == TRANSFORMS


def test_parameters_must_fit_the_batch():
    augment = SiameseAugment("flip")
    with pytest.raises(ValueError, match="n=1"):
        augment.apply(images(3), augment.sample(torch.Generator().manual_seed(0), n=5))
