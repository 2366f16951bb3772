"""``dsa``: dataset condensation with differentiable siamese augmentation (Zhao & Bilen, ICML 2021)."""

from __future__ import annotations

from typing import Any, ClassVar

from condensers._matching import make_augment
from condensers.dc import DC
from harness.augment import DEFAULT_STRATEGY
from harness.registry import register_condenser


@register_condenser("dsa")
class DSA(DC):
    """Gradient matching (:class:`condensers.dc.DC`) under one shared random augmentation.

    For each class the real batch ``T_c`` and the synthetic images ``S_c`` pass through the
    SAME draw ``ω`` of :class:`harness.augment.SiameseAugment` before their gradients are
    matched: ``min_S Σ_c D(∇θ L(A_ω(T_c)), ∇θ L(A_ω(S_c)))`` (eq. 5 of the paper); the inner
    loop trains θ on ``S`` augmented per image. ``strategy`` names the transformations
    (``"none"`` turns augmentation off, which is ``dc``).

    Defaults are the reference's DSA command for CIFAR-10: DC's settings with ``init: "real"``
    and the strategy ``color_crop_cutout_flip_scale_rotate`` (``lr_img`` stays 0.1).
    """

    defaults: ClassVar[dict[str, Any]] = {**DC.defaults, "init": "real", "strategy": DEFAULT_STRATEGY}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.augment = make_augment(self.name, self.params["strategy"])
