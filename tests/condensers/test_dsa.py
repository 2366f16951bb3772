"""Tests of the ``dsa`` condenser (gradient matching under siamese augmentation)."""

from __future__ import annotations

import pytest
import torch

from condensers.dc import DC
from condensers.dsa import DSA
from harness.augment import DEFAULT_STRATEGY
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task

SMALL = {"iterations": 2, "outer_loop": 2, "inner_loop": 1, "batch_real": 16, "width": 8, "depth": 2}


def test_conforms():
    check_condenser(DSA(**SMALL))


def test_reference_defaults():
    assert DSA.defaults == {**DC.defaults, "init": "real", "strategy": DEFAULT_STRATEGY}
    assert DSA.defaults["lr_img"] == 0.1


def test_augmentation_changes_what_is_learned():
    task = tiny_image_task()
    augmented = DSA(**SMALL).condense(task, 4, tiny_context())
    plain = DSA(**SMALL, strategy="none").condense(task, 4, tiny_context())
    initial = DSA(**{**SMALL, "iterations": 0}).condense(task, 4, tiny_context())
    assert not torch.equal(augmented.train.x, plain.train.x)
    assert not torch.equal(augmented.train.x, initial.train.x)
    assert augmented.meta["iterations"] == 2 and augmented.meta["matching_loss"] > 0


def test_unknown_strategy_names_the_plugin():
    with pytest.raises(ConfigError, match="dsa.*blur"):
        DSA(strategy="crop_blur")
