"""``dm``: dataset condensation with distribution matching (Zhao & Bilen, WACV 2023)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from condensers._matching import MatchingCondenser, RealSampler, SyntheticSet, class_pairs, make_augment
from harness.augment import DEFAULT_STRATEGY, SiameseAugment
from harness.convnet import ConvNet
from harness.registry import register_condenser


def mean_embedding_distance(net: ConvNet, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """``‖mean_i φ(real_i) − mean_j φ(syn_j)‖²`` with ``φ`` = :meth:`ConvNet.embed` (eq. 4 of the paper).

    Args:
        real: ``B×C×H×W`` real images of one class; their embedding is a constant.
        syn: ``ipc×C×H×W`` synthetic images of the same class; differentiable in them.

    Returns:
        A scalar: the squared L2 distance between the two ``embedding_dim`` mean embeddings.
    """
    with torch.no_grad():
        real_mean = net.embed(real).mean(0)
    return (real_mean - net.embed(syn).mean(0)).pow(2).sum()


@register_condenser("dm")
class DM(MatchingCondenser):
    """Distribution matching (Zhao & Bilen, WACV 2023, Algorithm 1).

    Each iteration samples a randomly initialized ConvNet embedding ``φ`` (never trained)
    and takes one SGD step on the synthetic images ``S`` (``(K·ipc)×C×H×W``) minimizing
    ``Σ_c ‖mean φ(A_ω(T_c)) − mean φ(A_ω(S_c))‖²`` over classes ``c``, with ``T_c`` a batch
    of ``batch_real`` real images and ``A_ω`` one siamese augmentation draw per class
    (:class:`harness.augment.SiameseAugment`; ``strategy: "none"`` turns it off).

    Defaults are the reference implementation's CIFAR-10 settings (20000 iterations,
    ``lr_img`` 1.0, ``batch_real`` 256, init from real images, ConvNet width 128, depth 3).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "iterations": 20000, "lr_img": 1.0, "batch_real": 256, "width": 128, "depth": 3, "init": "real",
        "strategy": DEFAULT_STRATEGY,
    }
    test_params: ClassVar[dict[str, Any]] = {"iterations": 3, "batch_real": 16, "width": 8, "depth": 2}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.augment: SiameseAugment | None = make_augment(self.name, self.params["strategy"])

    def iteration(self, net: ConvNet, synthetic: SyntheticSet, sampler: RealSampler,
                  optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        """One SGD step on ``S`` against the frozen ``net``; returns the distance per class."""
        net.requires_grad_(False)
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=synthetic.images.device)
        for _, real, syn in class_pairs(sampler, synthetic, self.params["batch_real"], generator, self.augment):
            distance = mean_embedding_distance(net, real, syn)
            torch.autograd.backward(distance, inputs=[synthetic.images])
            total += distance.detach()
        optimizer.step()
        return float(total) / synthetic.num_classes
