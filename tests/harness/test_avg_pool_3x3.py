"""Tests of NAS-Bench-201's avg_pool_3x3 as computed by the spaces (harness.spaces._avg_pool_3x3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.spaces import NasBench201Space
from harness.spaces._avg_pool_3x3 import (AvgPool3x3, _depthwise_is_faster, is_avg_pool_3x3, replace_avg_pools,
                                          replace_modules)

ARCH = "|avg_pool_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|"
REFERENCE = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"channels-first": x.contiguous(), "channels-last": x.contiguous(memory_format=torch.channels_last),
            "strided": x.transpose(2, 3)}


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 16, 9), (3, 8, 4, 4), (2, 32, 2, 2), (2, 4, 1, 1),
                                   (2, 2, 1, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_avg_pool2d_in_values_and_gradients(shape, dtype):
    base = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    for layout, x in _layouts(base).items():
        x = x.detach().requires_grad_()
        reference = x.detach().clone().requires_grad_()
        out, expected = AvgPool3x3()(x), REFERENCE(reference)
        torch.testing.assert_close(out, expected, atol=tolerance, rtol=tolerance, msg=layout)
        grad = torch.randn(out.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
        out.backward(grad)
        expected.backward(grad)
        torch.testing.assert_close(x.grad, reference.grad, atol=tolerance, rtol=tolerance, msg=layout)


def test_chooses_the_convolution_where_it_measured_faster():
    assert _depthwise_is_faster(torch.zeros(2, 8, 4, 4))  # channels-first, any size
    assert _depthwise_is_faster(torch.zeros(2, 8, 8, 8).contiguous(memory_format=torch.channels_last))
    assert not _depthwise_is_faster(torch.zeros(2, 8, 4, 4).contiguous(memory_format=torch.channels_last))
    assert not _depthwise_is_faster(torch.zeros(2, 8, 8, 8).transpose(2, 3))  # neither layout
    assert not _depthwise_is_faster(torch.zeros(2, 8, 8, 8, dtype=torch.float16))
    assert not _depthwise_is_faster(torch.zeros(8, 8, 8))  # unbatched


def test_trains_on_an_image_size_first_seen_in_inference_mode():
    pool = AvgPool3x3()
    with torch.inference_mode():
        pool(torch.randn(2, 3, 7, 5))
    x = torch.randn(2, 3, 7, 5, requires_grad=True)
    pool(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_unbatched_input_falls_back_to_avg_pool2d():
    x = torch.randn(3, 6, 6)
    assert torch.equal(AvgPool3x3()(x), REFERENCE(x))


def test_is_avg_pool_3x3_recognizes_only_that_pooling():
    assert is_avg_pool_3x3(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
    assert is_avg_pool_3x3(nn.AvgPool2d((3, 3), stride=(1, 1), padding=(1, 1), count_include_pad=False))
    assert not is_avg_pool_3x3(nn.AvgPool2d(3, stride=1, padding=1))  # counts the padding
    assert not is_avg_pool_3x3(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False))
    assert not is_avg_pool_3x3(nn.AvgPool2d(2, 2))
    assert not is_avg_pool_3x3(nn.MaxPool2d(3, stride=1, padding=1))


def test_replace_avg_pools_swaps_nested_pools_and_keeps_the_rest():
    network = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Sequential(REFERENCE, nn.AvgPool2d(2, 2)))
    assert replace_avg_pools(network) is network
    assert isinstance(network[1][0], AvgPool3x3)
    assert isinstance(network[1][1], nn.AvgPool2d)
    assert isinstance(network[0], nn.Conv2d)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_built_networks_compute_what_xautodl_pooling_computes(in_channels):
    space = NasBench201Space(C=8, N=1, in_channels=in_channels, num_classes=5)
    torch.manual_seed(0)
    network = space.build(ARCH)
    pools = [module for module in network.modules() if isinstance(module, AvgPool3x3)]
    assert len(pools) == 3 * ARCH.count("avg_pool_3x3")  # every cell's pooling edges
    assert not any(is_avg_pool_3x3(module) for module in network.modules())
    x = torch.randn(6, in_channels, 8, 8, generator=torch.Generator().manual_seed(2))
    out = network(x)
    replace_modules(network, lambda module: isinstance(module, AvgPool3x3), lambda: REFERENCE)
    assert not any(isinstance(module, AvgPool3x3) for module in network.modules())
    torch.testing.assert_close(out, network(x), atol=1e-5, rtol=1e-5)


def test_supernet_pools_with_avg_pool_3x3():
    supernet = NasBench201Space(C=4, N=1, in_channels=1, num_classes=3).supernet()
    assert any(isinstance(module, AvgPool3x3) for module in supernet.modules())
    assert not any(is_avg_pool_3x3(module) for module in supernet.modules())
