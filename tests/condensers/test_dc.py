"""Tests of the ``dc`` condenser and of the gradient-matching pieces in ``condensers._matching``."""

from __future__ import annotations

import pytest
import torch

from condensers._matching import gradient_distance, random_convnet
from condensers.dc import DC, class_gradient_distance
from harness.errors import ConfigError, DivergedError
from harness.testing import check_condenser, tiny_context, tiny_image_task
from harness.types import ProxyData

SMALL = {"outer_loop": 2, "inner_loop": 2, "batch_real": 16, "width": 8, "depth": 2}


def class_ordered(proxy: ProxyData) -> torch.Tensor:
    """The proxy's train + val images, grouped by class (order within a class does not matter)."""
    x, y = torch.cat([proxy.train.x, proxy.val.x]), torch.cat([proxy.train.y, proxy.val.y])
    return x[torch.argsort(y, stable=True)]


def mean_matching_loss(task, images: torch.Tensor, ipc: int, nets: int = 6) -> float:
    """Σ_c D(∇θ L(T_c), ∇θ L(S_c)) averaged over fixed random nets, each class's whole real set as T_c."""
    total = 0.0
    for seed in range(nets):
        net = random_convnet(task, SMALL["width"], SMALL["depth"], 1000 + seed, torch.device("cpu"))
        for c in range(task.num_classes):
            real = task.train.x[task.train.y == c]
            total += class_gradient_distance(net, real, images[c * ipc:(c + 1) * ipc], c).item()
    return total / nets


def gradients(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in ((4, 3, 3, 3), (4,), (5, 16), (5,))]


def test_distance_is_zero_for_identical_gradients_and_positive_otherwise():
    g = gradients(0)
    assert float(gradient_distance(g, [t.clone() for t in g])) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_distance(g, gradients(1))) > 0.5


def test_distance_sums_one_minus_cosine_over_output_channels_and_skips_1d_parameters():
    g = gradients(0)
    other = [t.clone() for t in g]
    other[0][0] *= 3.0     # rescaling one output channel keeps its cosine at 1
    other[1] += 10.0       # biases are ignored
    other[2][1] *= -1.0    # a reversed row of the linear weight costs 1 - (-1) = 2
    assert float(gradient_distance(other, g)) == pytest.approx(2.0, abs=1e-4)


def test_distance_is_differentiable_in_the_synthetic_gradients():
    g = [t.clone().requires_grad_(True) for t in gradients(0)]
    gradient_distance(g, gradients(1)).backward()
    assert g[0].grad.abs().sum() > 0
    assert g[1].grad is None or not g[1].grad.any()


def test_conforms():
    check_condenser(DC(iterations=2, **SMALL))


def test_matching_loss_decreases():
    task = tiny_image_task()
    ipc = 4
    before = DC(iterations=0, **SMALL).condense(task, ipc, tiny_context())
    after = DC(iterations=6, **SMALL).condense(task, ipc, tiny_context())
    assert after.meta["iterations"] == 6 and after.meta["matching_loss"] > 0
    initial = mean_matching_loss(task, class_ordered(before), ipc)
    assert mean_matching_loss(task, class_ordered(after), ipc) < 0.9 * initial


def test_budget_stops_the_loop():
    task = tiny_image_task()
    proxy = DC(iterations=50, **SMALL).condense(task, 4, tiny_context(budget_seconds=0.0))
    assert proxy.meta["iterations"] == 0 and proxy.meta["stopped_by_budget"]
    assert proxy.meta["matching_loss"] is None


def test_reference_loops_by_ipc():
    assert DC().run_settings(10) == {"outer_loop": 10, "inner_loop": 50}
    assert DC().run_settings(50) == {"outer_loop": 50, "inner_loop": 10}
    assert DC(inner_loop=3).run_settings(1) == {"outer_loop": 1, "inner_loop": 3}
    with pytest.raises(ConfigError, match="outer_loop"):
        DC(iterations=1, width=8, depth=2).condense(tiny_image_task(), 4, tiny_context())


def test_divergence_raises():
    with pytest.raises(DivergedError, match="lr_img"):
        DC(iterations=2, lr_img=float("inf"), **SMALL).condense(tiny_image_task(), 4, tiny_context())


@pytest.mark.parametrize("params", [{"init": "zeros"}, {"iterations": -1}, {"lr_img": 0}, {"depth": 1.5},
                                    {"outer_loop": 0}])
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ConfigError):
        DC(**params)


def test_noise_init_and_too_deep_nets():
    task = tiny_image_task()
    proxy = DC(iterations=0, **SMALL).condense(task, 4, tiny_context())
    real = task.train.x
    assert not any(torch.equal(image, r) for image in proxy.train.x for r in real)
    with pytest.raises(ConfigError, match="depth"):
        DC(**{**SMALL, "depth": 4}).condense(task, 4, tiny_context())
