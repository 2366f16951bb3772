"""Tests of the ``kip`` condenser (kernel inducing points) and its neural tangent kernels."""

from __future__ import annotations

import math

import pytest
import torch

from condensers._matching import random_convnet
from condensers._ntk import empirical_ntk, fc_relu_ntk
from condensers.kip import KIP, centered_one_hot, krr_predict
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task
from harness.types import ProxyData

SMALL = {"batch_real": 8, "width": 8, "depth": 2}
W_STD, B_STD = math.sqrt(2), 0.1


def wide_fc_ntk(x: torch.Tensor, width: int, depth: int, seed: int) -> torch.Tensor:
    """The empirical NTK of one random NTK-parametrized ReLU network, ``J Jᵀ`` in float64."""
    generator = torch.Generator().manual_seed(seed)
    dims = [x.shape[1]] + [width] * depth + [1]
    weights = [torch.randn(dims[i + 1], dims[i], generator=generator, dtype=torch.float64).requires_grad_()
               for i in range(len(dims) - 1)]
    biases = [torch.randn(dims[i + 1], generator=generator, dtype=torch.float64).requires_grad_()
              for i in range(len(dims) - 1)]

    def output(sample: torch.Tensor) -> torch.Tensor:
        h = sample.double()
        for layer, (w, b) in enumerate(zip(weights, biases)):
            h = W_STD / math.sqrt(w.shape[1]) * w @ h + B_STD * b
            h = torch.relu(h) if layer < depth else h
        return h.sum()

    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(output(sample), weights + biases)]) for sample in x]
    jacobian = torch.stack(rows)
    return jacobian @ jacobian.T


@pytest.mark.parametrize("depth, width, nets", [(1, 8192, 1), (2, 512, 8)])
def test_fc_relu_ntk_matches_wide_random_networks(depth, width, nets):
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    exact = fc_relu_ntk(x, x, depth, W_STD, B_STD)
    estimate = sum(wide_fc_ntk(x, width, depth, seed) for seed in range(nets)) / nets
    assert (estimate - exact).abs().max() < 0.08 * exact.abs().max()


def test_fc_relu_ntk_of_depth_zero_is_the_linear_kernel_and_smooth_on_its_diagonal():
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    flat = x.detach().flatten(1).double()
    linear = W_STD ** 2 * flat @ flat.T / flat.shape[1] + B_STD ** 2
    assert torch.allclose(fc_relu_ntk(x, x, 0, W_STD, B_STD), linear)
    fc_relu_ntk(x, x, 3, W_STD, B_STD).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_empirical_ntk_is_the_gram_matrix_of_per_sample_gradients():
    task = tiny_image_task()
    net = random_convnet(task, 8, 2, 0, torch.device("cpu"), outputs=1)
    support = task.train.x[:4].clone().requires_grad_(True)
    targets = task.train.x[4:9]

    def gradient(image: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.flatten() for g in torch.autograd.grad(net(image[None]).sum(), list(net.parameters()))])

    j_s = torch.stack([gradient(x) for x in support.detach()])
    j_t = torch.stack([gradient(x) for x in targets])
    k_ss, k_ts = empirical_ntk(net, support, targets)
    assert k_ss.shape == (4, 4) and k_ts.shape == (5, 4)
    assert torch.allclose(k_ss, j_s @ j_s.T, rtol=1e-4, atol=1e-5)
    assert torch.allclose(k_ts, j_t @ j_s.T, rtol=1e-4, atol=1e-5)
    (k_ss.sum() + k_ts.sum()).backward()
    assert support.grad.abs().sum() > 0


def test_kernel_regression_recovers_a_linear_target():
    generator = torch.Generator().manual_seed(0)
    x_s, x_t = torch.randn(30, 5, generator=generator), torch.randn(12, 5, generator=generator)
    w = torch.randn(5, 3, generator=generator)
    prediction = krr_predict(x_t @ x_s.T, x_s @ x_s.T, x_s @ w, reg=1e-9)
    assert torch.allclose(prediction, (x_t @ w).double(), atol=1e-5)
    ridge = krr_predict(x_t @ x_s.T, x_s @ x_s.T, x_s @ w, reg=10.0)
    assert ridge.norm() < 0.9 * prediction.norm()


def test_centered_one_hot_rows_sum_to_zero():
    y = centered_one_hot(torch.tensor([0, 2, 1]), 3)
    assert torch.allclose(y.sum(1), torch.zeros(3), atol=1e-6) and y.argmax(1).tolist() == [0, 2, 1]


@pytest.mark.parametrize("kernel", ["convnet", "fc"])
def test_conforms(kernel):
    check_condenser(KIP(iterations=3, kernel=kernel, **SMALL))


def class_ordered(proxy: ProxyData) -> torch.Tensor:
    """The proxy's train + val images, grouped by class."""
    x, y = torch.cat([proxy.train.x, proxy.val.x]), torch.cat([proxy.train.y, proxy.val.y])
    return x[torch.argsort(y, stable=True)]


def held_out_krr_loss(task, support: torch.Tensor, ipc: int) -> float:
    """KIP's loss with the FC kernel on the task's validation images (never seen by KIP)."""
    y_s = centered_one_hot(torch.arange(task.num_classes).repeat_interleave(ipc), task.num_classes)
    k_ss = fc_relu_ntk(support, support, 1, W_STD, B_STD)
    k_ts = fc_relu_ntk(task.val.x, support, 1, W_STD, B_STD)
    prediction = krr_predict(k_ts, k_ss, y_s, 1e-6)
    return 0.5 * (prediction - centered_one_hot(task.val.y, task.num_classes).double()).pow(2).mean().item()


def test_kip_lowers_the_kernel_regression_loss_on_held_out_images():
    task, ipc = tiny_image_task(), 4
    before = KIP(iterations=0, kernel="fc", **SMALL).condense(task, ipc, tiny_context())
    after = KIP(iterations=30, kernel="fc", **SMALL).condense(task, ipc, tiny_context())
    assert after.meta["iterations"] == 30 and after.meta["loss_curve"][-1] < after.meta["loss_curve"][0]
    assert held_out_krr_loss(task, class_ordered(after), ipc) < 0.8 * held_out_krr_loss(task, class_ordered(before), ipc)


def test_learned_labels_change_the_images_and_proxy_labels_stay_hard():
    task = tiny_image_task()
    fixed = KIP(iterations=4, kernel="fc", **SMALL).condense(task, 4, tiny_context())
    learned = KIP(iterations=4, kernel="fc", learn_labels=True, **SMALL).condense(task, 4, tiny_context())
    assert not torch.equal(fixed.train.x, learned.train.x)
    assert torch.equal(fixed.train.y, learned.train.y) and learned.train.y.dtype == torch.int64
    assert 0.0 <= learned.meta["label_agreement"] <= 1.0 and "label_agreement" not in fixed.meta


def test_budget_stops_the_loop():
    proxy = KIP(iterations=100, **SMALL).condense(tiny_image_task(), 4, tiny_context(budget_seconds=0.0))
    assert proxy.meta["iterations"] == 0 and proxy.meta["stopped_by_budget"]


def test_reference_defaults_and_bad_parameters():
    assert (KIP.defaults["lr_img"], KIP.defaults["reg"], KIP.defaults["batch_real"]) == (0.04, 1e-6, 500)
    with pytest.raises(ConfigError, match="kernel must be one of"):
        KIP(kernel="rbf")
    with pytest.raises(ConfigError, match="b_std"):
        KIP(b_std=-0.1)
    with pytest.raises(ConfigError, match="learn_labels"):
        KIP(learn_labels="yes")
    with pytest.raises(ConfigError, match="reg"):
        KIP(reg=0)
