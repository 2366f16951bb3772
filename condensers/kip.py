"""``kip``: Kernel Inducing Points (Nguyen, Chen & Lee, ICLR 2021; Nguyen et al., NeurIPS 2021)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from condensers._matching import (Learner, RealSampler, SynthesisCondenser, SyntheticSet, check_non_negative_float,
                                  check_positive_float, check_positive_int, random_convnet)
from condensers._ntk import empirical_ntk, fc_relu_ntk
from harness.errors import ConfigError
from harness.registry import register_condenser
from harness.seeding import derive_seed
from harness.types import RunContext, Task

KERNELS = ("convnet", "fc")


def centered_one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """KIP's regression targets: one-hot rows minus ``1/K`` (each row sums to zero): ``N×K`` float."""
    return torch.nn.functional.one_hot(labels, num_classes).float() - 1.0 / num_classes


def krr_predict(k_ts: torch.Tensor, k_ss: torch.Tensor, y_s: torch.Tensor, reg: float) -> torch.Tensor:
    """Kernel ridge regression from the support set: ``K_ts (K_ss + reg · tr(K_ss)/n · I)⁻¹ y_s``.

    The ridge is scaled by the mean eigenvalue ``tr(K_ss)/n`` as in KIP, so ``reg`` does not
    depend on the kernel's scale. Solved in float64.

    Args:
        k_ts: ``m×n`` kernel between targets and the ``n`` support points.
        k_ss: ``n×n`` kernel of the support points.
        y_s: ``n×K`` support labels.
        reg: the relative ridge ``λ`` (KIP: 1e-6).

    Returns:
        ``m×K`` float64 predictions, differentiable in all three tensors.
    """
    k_ss, k_ts, y_s = k_ss.double(), k_ts.double(), y_s.double()
    n = k_ss.shape[0]
    ridge = reg * torch.trace(k_ss) / n
    return k_ts @ torch.linalg.solve(k_ss + ridge * torch.eye(n, dtype=k_ss.dtype, device=k_ss.device), y_s)


@register_condenser("kip")
class KIP(SynthesisCondenser):
    """Kernel Inducing Points (Nguyen, Chen & Lee, 2021, Algorithm 1).

    The support set ``(X_s, y_s)`` — ``X_s`` the synthetic images ``(K·ipc)×C×H×W``, ``y_s``
    their centered one-hot labels ``(K·ipc)×K`` (:func:`centered_one_hot`) — is learned with
    Adam (``lr_img``) so that kernel ridge regression on it predicts a fresh class-balanced
    batch of real images (``batch_real`` per class, ``X_t``, ``y_t``) well:

        ``L = ½ · mean((K_ts (K_ss + λ tr(K_ss)/n I)⁻¹ y_s − y_t)²)``     (:func:`krr_predict`)

    ``kernel``:

    * ``"convnet"``: the empirical NTK of the condensation ConvNet (``width``, ``depth``, one
      output) — a freshly initialized network each iteration, seeded by ``(seed, iteration)``,
      so the images fit the kernel's distribution over initializations, not one network's;
    * ``"fc"``: the closed-form infinite-width NTK of a ReLU network with ``fc_depth`` hidden
      layers (``w_std``, ``b_std``; :func:`condensers._ntk.fc_relu_ntk`).

    ``learn_labels`` also learns ``y_s`` (same optimizer). The proxy keeps each image's class
    as its label (the harness trains with hard labels); ``meta["label_agreement"]`` is the
    share of learned label rows whose arg-max is still the image's class.

    Defaults: the reference colab (Adam 0.04, 5000 class-balanced targets, λ = 1e-6,
    ``W_std = √2``, ``b_std = 0.1``, images initialized from real ones, labels fixed) with the
    condensation ConvNet (width 128, depth 3) as the kernel's network; 1000 iterations.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "iterations": 1000, "lr_img": 0.04, "batch_real": 500, "kernel": "convnet", "width": 128, "depth": 3,
        "fc_depth": 1, "w_std": 2 ** 0.5, "b_std": 0.1, "reg": 1e-6, "learn_labels": False, "init": "real",
    }
    test_params: ClassVar[dict[str, Any]] = {"iterations": 3, "batch_real": 8, "width": 8, "depth": 2}
    depends_on = (*SynthesisCondenser.depends_on, "condensers._ntk")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive_int(self.name, "batch_real", self.params["batch_real"])
        check_positive_int(self.name, "fc_depth", self.params["fc_depth"], minimum=0)
        for key in ("w_std", "reg"):
            check_positive_float(self.name, key, self.params[key])
        check_non_negative_float(self.name, "b_std", self.params["b_std"])
        if self.params["kernel"] not in KERNELS:
            raise ConfigError(f"{self.name}: kernel must be one of {list(KERNELS)}, got {self.params['kernel']!r}")
        if not isinstance(self.params["learn_labels"], bool):
            raise ConfigError(f"{self.name}: learn_labels must be true or false, got {self.params['learn_labels']!r}")

    def kernels(self, task: Task, x_s: torch.Tensor, x_t: torch.Tensor, seed: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(K_ss, K_ts)`` of one iteration (``n×n``, ``m×n``), differentiable in the support ``x_s``;
        ``seed`` initializes the ConvNet of the ``"convnet"`` kernel."""
        if self.params["kernel"] == "fc":
            depth, w_std, b_std = self.params["fc_depth"], self.params["w_std"], self.params["b_std"]
            return fc_relu_ntk(x_s, x_s, depth, w_std, b_std), fc_relu_ntk(x_t, x_s, depth, w_std, b_std)
        net = random_convnet(task, self.params["width"], self.params["depth"], seed, device, outputs=1)
        return empirical_ntk(net, x_s, x_t)

    def learner(self, task: Task, synthetic: SyntheticSet, sampler: RealSampler, generator: torch.Generator,
                ctx: RunContext) -> Learner:
        """Adam on the images (and the labels with ``learn_labels``) against the KRR loss."""
        return _KIPLearner(self, task, synthetic, sampler, generator, ctx)


class _KIPLearner(Learner):
    def __init__(self, kip: KIP, task: Task, synthetic: SyntheticSet, sampler: RealSampler,
                 generator: torch.Generator, ctx: RunContext) -> None:
        self.kip, self.task, self.synthetic, self.sampler, self.generator, self.ctx = (
            kip, task, synthetic, sampler, generator, ctx)
        self.labels = centered_one_hot(synthetic.labels, task.num_classes).requires_grad_(kip.params["learn_labels"])
        learned = [synthetic.images] + ([self.labels] if kip.params["learn_labels"] else [])
        self.optimizer = torch.optim.Adam(learned, lr=kip.params["lr_img"])

    def step(self, it: int) -> float:
        """One Adam step on the KRR loss of a fresh class-balanced real batch."""
        batches = [self.sampler.batch(c, self.kip.params["batch_real"], self.generator)
                   for c in range(self.task.num_classes)]
        x_t = torch.cat(batches)
        y_t = centered_one_hot(torch.cat([torch.full((len(b),), c, device=x_t.device) for c, b in enumerate(batches)]),
                               self.task.num_classes)
        seed = derive_seed(self.ctx.seed, self.kip.name, "net", it)
        k_ss, k_ts = self.kip.kernels(self.task, self.synthetic.images, x_t, seed, self.ctx.device)
        prediction = krr_predict(k_ts, k_ss, self.labels, self.kip.params["reg"])
        loss = 0.5 * (prediction - y_t.double()).pow(2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def meta(self) -> dict[str, Any]:
        """``label_agreement`` when labels are learned."""
        if not self.kip.params["learn_labels"]:
            return {}
        agreement = (self.labels.argmax(1) == self.synthetic.labels).float().mean()
        return {"label_agreement": float(agreement)}
