"""NAS-Bench-201's ``avg_pool_3x3``, computed fast on a CPU.

The operation is ``nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)``: each
output is the mean of the 3×3 window around it, clipped to the image,

    y[b, c, i, j] = Σ_{(u, v) ∈ W(i, j)} x[b, c, u, v] / |W(i, j)|,

where ``W(i, j)`` holds the in-image positions of ``{i-1, i, i+1} × {j-1, j, j+1}``.

On a CPU, a depthwise convolution with a kernel of ones, divided by the window sizes
``|W|``, is several times faster than PyTorch's ``avg_pool2d`` on channels-first tensors,
and faster on channels-last ones of at least 8×8 pixels; on smaller channels-last images
``avg_pool2d`` is faster (``benchmarks/candidate_training.py --pooling``). :class:`AvgPool3x3`
therefore computes the convolution on a CPU for channels-first tensors and channels-last
ones of at least 8×8 pixels, and ``avg_pool2d`` otherwise (smaller channels-last images,
other layouts, GPUs). Both give the same values up to the float rounding of the window sums.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=64)
def _window_sizes(height: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``|W(i, j)|`` for every position of a ``height×width`` image, as a ``1×1×height×width`` tensor.

    Made outside inference mode even when asked from inside it, so that training can use it later.
    """
    with torch.inference_mode(False), torch.no_grad():
        ones = torch.ones(1, 1, height, width, dtype=dtype, device=device)
        return F.conv2d(ones, torch.ones(1, 1, 3, 3, dtype=dtype, device=device), padding=1)


def _depthwise_is_faster(x: torch.Tensor) -> bool:
    """Whether :class:`AvgPool3x3` computes ``x`` as a depthwise convolution (see the module doc)."""
    if x.dim() != 4 or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    if x.is_contiguous():
        return True
    return x.is_contiguous(memory_format=torch.channels_last) and x.shape[2] * x.shape[3] >= 64


class AvgPool3x3(nn.Module):
    """A drop-in for ``nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)``: ``B×C×H×W`` → same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Average every 3×3 window of ``x`` (``B×C×H×W``), counting only in-image positions."""
        if _depthwise_is_faster(x):
            channels, height, width = x.shape[1:]
            kernel = x.new_ones(channels, 1, 3, 3)
            return F.conv2d(x, kernel, padding=1, groups=channels) / _window_sizes(height, width, x.dtype, x.device)
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def is_avg_pool_3x3(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.AvgPool2d`` that :class:`AvgPool3x3` computes."""
    if not isinstance(module, nn.AvgPool2d):
        return False
    spec = (module.kernel_size, module.stride, module.padding, module.ceil_mode, module.count_include_pad,
            module.divisor_override)
    return spec in {(3, 1, 1, False, False, None), ((3, 3), (1, 1), (1, 1), False, False, None)}


def replace_modules(network: nn.Module, matches: Callable[[nn.Module], bool],
                    make: Callable[[], nn.Module]) -> nn.Module:
    """Swap every submodule of ``network`` for which ``matches`` holds for a new ``make()``, in place.

    Returns:
        ``network``.
    """
    for parent in list(network.modules()):
        for name, child in parent.named_children():
            if matches(child):
                setattr(parent, name, make())
    return network


def replace_avg_pools(network: nn.Module) -> nn.Module:
    """Swap every ``avg_pool_3x3`` of ``network`` (see :func:`is_avg_pool_3x3`) for :class:`AvgPool3x3`, in place.

    Returns:
        ``network``.
    """
    return replace_modules(network, is_avg_pool_3x3, AvgPool3x3)
