"""``dc``: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from condensers._matching import (MatchingCondenser, RealSampler, SyntheticSet, check_positive_float,
                                  check_positive_int, class_pairs, gradient_distance)
from harness.augment import SiameseAugment
from harness.convnet import ConvNet
from harness.errors import ConfigError
from harness.registry import register_condenser

# (outer_loop, inner_loop) of the reference implementation, by images per class.
REFERENCE_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def class_gradient_distance(net: ConvNet, real: torch.Tensor, syn: torch.Tensor, c: int) -> torch.Tensor:
    """``D(∇θ L(real), ∇θ L(syn))`` for one class ``c`` (eq. 4 of Zhao et al., 2021).

    Args:
        real: real images of class ``c``, ``B×C×H×W``; their gradient is a constant.
        syn: synthetic images of class ``c``, ``ipc×C×H×W``; the distance is differentiable in them.

    Returns:
        The scalar :func:`condensers._matching.gradient_distance` between the two
        cross-entropy gradients w.r.t. every parameter of ``net``.
    """
    params = list(net.parameters())
    real_loss = F.cross_entropy(net(real), torch.full((len(real),), c, device=real.device))
    grads_real = [g.detach() for g in torch.autograd.grad(real_loss, params)]
    syn_loss = F.cross_entropy(net(syn), torch.full((len(syn),), c, device=syn.device))
    grads_syn = torch.autograd.grad(syn_loss, params, create_graph=True)
    return gradient_distance(list(grads_syn), grads_real)


def train_on_synthetic(net: ConvNet, synthetic: SyntheticSet, optimizer: torch.optim.Optimizer, epochs: int,
                       batch_size: int, generator: torch.Generator, augment: SiameseAugment | None) -> None:
    """The inner loop: ``epochs`` epochs of cross-entropy SGD on the (detached) synthetic set,
    each image augmented with its own parameters when ``augment`` is given (DSA)."""
    images = synthetic.images.detach()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator).to(images.device)
        for batch in order.split(batch_size):
            x = images[batch] if augment is None else augment(images[batch], generator)
            loss = F.cross_entropy(net(x), synthetic.labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


@register_condenser("dc")
class DC(MatchingCondenser):
    """Gradient matching (Zhao, Mopuri & Bilen, ICLR 2021, Algorithm 1).

    Each of ``iterations`` iterations takes a fresh ConvNet θ and alternates ``outer_loop``
    times: one SGD step on the synthetic images ``S`` minimizing
    ``Σ_c D(∇θ L(T_c), ∇θ L(S_c))`` (``T_c``: ``batch_real`` real images of class ``c``;
    ``D``: :func:`condensers._matching.gradient_distance`), then — except after the last
    step — ``inner_loop`` epochs of SGD (``lr_net``, batches of ``batch_train``) on θ with ``S``.
    ``S`` is ``(K·ipc)×C×H×W``.

    Defaults are the reference implementation's paper-scale settings (ConvNet width 128,
    depth 3, instance norm; ``outer_loop`` / ``inner_loop`` ``None`` take the reference's
    values for ``ipc`` in {1, 10, 20, 30, 40, 50}); CPU presets shrink them.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "iterations": 1000, "outer_loop": None, "inner_loop": None, "lr_img": 0.1, "lr_net": 0.01,
        "batch_real": 256, "batch_train": 256, "width": 128, "depth": 3, "init": "noise",
    }
    test_params: ClassVar[dict[str, Any]] = {"iterations": 2, "outer_loop": 2, "inner_loop": 1,
                                             "batch_real": 16, "width": 8, "depth": 2}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key, minimum in (("outer_loop", 1), ("inner_loop", 0)):
            if self.params[key] is not None:
                check_positive_int(self.name, key, self.params[key], minimum)
        check_positive_int(self.name, "batch_train", self.params["batch_train"])
        check_positive_float(self.name, "lr_net", self.params["lr_net"])
        self.augment: SiameseAugment | None = None

    def run_settings(self, ipc: int) -> dict[str, Any]:
        """``{"outer_loop": …, "inner_loop": …}`` for ``ipc``: the parameters, else the reference's.

        Raises:
            ConfigError: a loop is ``None`` and the reference has no value for ``ipc``.
        """
        outer, inner = self.params["outer_loop"], self.params["inner_loop"]
        if outer is None or inner is None:
            if ipc not in REFERENCE_LOOPS:
                raise ConfigError(
                    f"{self.name}: the reference sets outer_loop / inner_loop only for ipc in "
                    f"{sorted(REFERENCE_LOOPS)}, not ipc={ipc}; set both parameters explicitly "
                    f"(the reference pairs are {REFERENCE_LOOPS})")
            outer = REFERENCE_LOOPS[ipc][0] if outer is None else outer
            inner = REFERENCE_LOOPS[ipc][1] if inner is None else inner
        return {"outer_loop": outer, "inner_loop": inner}

    def iteration(self, net: ConvNet, synthetic: SyntheticSet, sampler: RealSampler,
                  optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        """One outer iteration of Algorithm 1; returns the distance per class and outer step."""
        settings = self.run_settings(synthetic.ipc)
        net_optimizer = torch.optim.SGD(net.parameters(), lr=self.params["lr_net"])
        total = torch.zeros((), device=synthetic.images.device)
        for step in range(settings["outer_loop"]):
            optimizer.zero_grad(set_to_none=True)
            for c, real, syn in class_pairs(sampler, synthetic, self.params["batch_real"], generator, self.augment):
                distance = class_gradient_distance(net, real, syn, c)
                # Per-class backward frees each class's double-backward graph before the next.
                torch.autograd.backward(distance, inputs=[synthetic.images])
                total += distance.detach()
            optimizer.step()
            if step < settings["outer_loop"] - 1:
                train_on_synthetic(net, synthetic, net_optimizer, settings["inner_loop"],
                                   self.params["batch_train"], generator, self.augment)
        return float(total) / (synthetic.num_classes * settings["outer_loop"])
