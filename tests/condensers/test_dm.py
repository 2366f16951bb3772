"""Tests of the ``dm`` condenser (distribution matching)."""

from __future__ import annotations

import pytest
import torch

from condensers._matching import random_convnet
from condensers.dm import DM, mean_embedding_distance
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task
from harness.types import ProxyData

SMALL = {"batch_real": 16, "width": 8, "depth": 2}


def class_ordered(proxy: ProxyData) -> torch.Tensor:
    """The proxy's train + val images, grouped by class (order within a class does not matter)."""
    x, y = torch.cat([proxy.train.x, proxy.val.x]), torch.cat([proxy.train.y, proxy.val.y])
    return x[torch.argsort(y, stable=True)]


def mean_distance(task, images: torch.Tensor, ipc: int, nets: int = 8) -> float:
    """Σ_c ‖mean φ(T_c) − mean φ(S_c)‖² averaged over fixed random embeddings, T_c all of class c."""
    total = 0.0
    for seed in range(nets):
        net = random_convnet(task, SMALL["width"], SMALL["depth"], 1000 + seed, torch.device("cpu"))
        for c in range(task.num_classes):
            real = task.train.x[task.train.y == c]
            total += mean_embedding_distance(net, real, images[c * ipc:(c + 1) * ipc]).item()
    return total / nets


def test_distance_is_zero_for_equal_means_and_differentiable():
    task = tiny_image_task()
    net = random_convnet(task, 8, 2, 0, torch.device("cpu"))
    real = task.train.x[:6]
    assert mean_embedding_distance(net, real, real.flip(0)).item() == pytest.approx(0.0, abs=1e-10)
    syn = task.train.x[6:8].clone().requires_grad_(True)
    distance = mean_embedding_distance(net, real, syn)
    distance.backward()
    assert distance.item() > 0 and syn.grad.abs().sum() > 0


def test_conforms():
    check_condenser(DM(iterations=3, **SMALL))


@pytest.mark.parametrize("strategy", ["none", "color_crop_cutout_flip_scale_rotate"])
def test_mean_embedding_distance_decreases(strategy):
    task = tiny_image_task()
    ipc = 4
    before = DM(iterations=0, **SMALL).condense(task, ipc, tiny_context())
    after = DM(iterations=30, strategy=strategy, **SMALL).condense(task, ipc, tiny_context())
    assert after.meta["iterations"] == 30
    assert mean_distance(task, class_ordered(after), ipc) < 0.8 * mean_distance(task, class_ordered(before), ipc)


def test_budget_stops_the_loop():
    proxy = DM(iterations=100, **SMALL).condense(tiny_image_task(), 4, tiny_context(budget_seconds=0.0))
    assert proxy.meta["iterations"] == 0 and proxy.meta["stopped_by_budget"]


def test_reference_defaults_and_bad_parameters():
    assert (DM.defaults["iterations"], DM.defaults["lr_img"], DM.defaults["batch_real"]) == (20000, 1.0, 256)
    with pytest.raises(ConfigError, match="init"):
        DM(init="zeros")
    with pytest.raises(ConfigError, match="unknown parameters"):
        DM(outer_loop=3)
