"""A stand-in for the NAS-Bench-201 supernet whose best architecture is planted, for search tests."""

from __future__ import annotations

import torch
from torch import nn

from harness.spaces.nasbench201 import EDGES, OPS
from harness.spaces.nasbench201_supernet import encode_arch, mixing_weights

NUM_CLASSES = 4


class PlantedSupernet(nn.Module):
    """Architecture weights ``alphas`` and a shared learnable class bias (the only weight).

    Subclasses set ``target`` (an arch string) and write ``forward`` from
    :meth:`planted_share`: ``q(w) = mean_e w[e, target_e]``, the mixing weight on the planted
    ops, which the tests make decide the loss or the accuracy.
    """

    target: str

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.alphas = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS), generator=generator))
        self.bias = nn.Parameter(torch.zeros(NUM_CLASSES))

    @classmethod
    def from_space(cls, space, generator=None):
        return cls(generator)

    def weight_parameters(self):
        return [self.bias]

    def planted_share(self, alphas=None, relaxation="softmax", tau=1.0, generator=None) -> torch.Tensor:
        weights = mixing_weights(self.alphas if alphas is None else alphas, relaxation, tau, generator)
        return (weights * encode_arch(self.target)).sum(1).mean()
