"""Hypergradients by the implicit function theorem with a truncated Neumann series.

Lorraine, Vicol & Duvenaud, "Optimizing Millions of Hyperparameters by Implicit
Differentiation", AISTATS 2020 (eq. 4 and Algorithm 3); used by HCDC (Ding et al.,
"Calibrated Dataset Condensation for Faster Hyperparameter Search", section 5.1, eq. IFT).

For parameters θ (``P`` numbers in a list of tensors) trained to a stationary point of
``L_train(θ, λ)`` and hyperparameters λ (``H`` numbers in a list of tensors), the gradient of
the optimized validation loss ``L*(λ) = L_val(θ*(λ), λ)`` is

    dL*/dλ = ∇λ L_val − M · H⁻¹ · ∇θ L_val,     M = ∂²L_train / ∂λ ∂θᵀ   (H×P),

with the Hessian ``H = ∂²L_train / ∂θ ∂θᵀ`` (P×P) inverted by the truncated Neumann series

    H⁻¹ v ≈ α Σ_{j=0}^{J} (I − α H)^j v,

which needs ``J`` Hessian-vector products and memory independent of ``J``; it converges when
``0 < α < 2 / ‖H‖`` and ``H`` is positive definite. Nothing here knows about networks: the
losses are callables of lists of tensors, so the same routine serves architecture weights
(HCDC on NAS-Bench-201) and continuous filter coefficients (graphs).

With ``differentiable=True`` the result keeps its graph to whatever the validation loss read
besides θ and λ (e.g. learnable synthetic validation images): the implicit term is a custom
autograd function whose backward applies the transposed operator ``(M H⁻¹)ᵀ u = H⁻¹ Mᵀ u``
(``H`` is symmetric, so is its Neumann polynomial) with the same Hessian-vector products,
so memory stays constant in ``J`` on the backward pass too.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from harness._values import is_int, is_number
from harness.errors import ConfigError, DivergedError

Tensors = list[torch.Tensor]
Loss = Callable[[Tensors, Tensors], torch.Tensor]
"""``loss(params, hyper) -> scalar``: must compute the loss from the tensors it is given."""

# Added to the product of norms so that a zero vector gives cosine 0, not NaN.
_EPS = 1e-12


class ImplicitOperator:
    """The linear map ``v ↦ M · H⁻¹ v`` of one training loss at one ``(θ, λ)`` and its transpose.

    Args:
        train_loss: ``L_train(θ, λ)``.
        params: θ, leaf tensors that ``train_loss`` reads (``P`` numbers in all).
        hyper: λ, leaf tensors that ``train_loss`` reads (``H`` numbers in all).
        terms: ``J``, the highest power of the Neumann series (``J`` Hessian-vector products).
        alpha: the Neumann step ``α``; needs ``0 < α < 2 / ‖H‖``.

    The training gradients ``∇θ L_train`` and ``∇λ L_train`` are built once with their graph,
    and every product below is one backward pass through that graph.
    """

    def __init__(self, train_loss: Loss, params: Tensors, hyper: Tensors, terms: int, alpha: float) -> None:
        check_neumann(terms, alpha)
        self.params, self.hyper, self.terms, self.alpha = params, hyper, terms, alpha
        grads = torch.autograd.grad(train_loss(params, hyper), params + hyper, create_graph=True,
                                    allow_unused=True, materialize_grads=True)
        self.grad_params, self.grad_hyper = list(grads[:len(params)]), list(grads[len(params):])

    def hessian_vector(self, vector: Sequence[torch.Tensor]) -> Tensors:
        """``H v`` for ``v`` shaped like θ."""
        return _vjp(self.grad_params, self.params, vector)

    def inverse_hessian_vector(self, vector: Sequence[torch.Tensor]) -> Tensors:
        """``H⁻¹ v ≈ α Σ_{j=0}^{J} (I − αH)^j v`` for ``v`` shaped like θ (detached result)."""
        term = [v.detach() for v in vector]
        total = [t.clone() for t in term]
        for _ in range(self.terms):
            product = self.hessian_vector(term)
            term = [t - self.alpha * p for t, p in zip(term, product)]
            total = [s + t for s, t in zip(total, term)]
        return [self.alpha * s for s in total]

    def mixed(self, vector: Sequence[torch.Tensor]) -> Tensors:
        """``M p = ∇λ (∇θ L_train · p)`` for ``p`` shaped like θ; shaped like λ."""
        return _vjp(self.grad_params, self.hyper, vector)

    def mixed_transpose(self, vector: Sequence[torch.Tensor]) -> Tensors:
        """``Mᵀ u = ∇θ (∇λ L_train · u)`` for ``u`` shaped like λ; shaped like θ."""
        return _vjp(self.grad_hyper, self.params, vector)

    def apply(self, vector: Sequence[torch.Tensor]) -> Tensors:
        """``M H⁻¹ v``: the implicit part of the hypergradient for ``v = ∇θ L_val``."""
        return self.mixed(self.inverse_hessian_vector(vector))

    def apply_transpose(self, vector: Sequence[torch.Tensor]) -> Tensors:
        """``(M H⁻¹)ᵀ u = H⁻¹ Mᵀ u`` (the Neumann polynomial of symmetric ``H`` is symmetric)."""
        return self.inverse_hessian_vector(self.mixed_transpose(vector))


class _ImplicitTerm(torch.autograd.Function):
    """``v ↦ M H⁻¹ v`` as an autograd node, so gradients reach what ``v = ∇θ L_val`` depends on."""

    @staticmethod
    def forward(ctx, operator: ImplicitOperator, *vector: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx.operator = operator
        return tuple(operator.apply(vector))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_outputs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return (None, *ctx.operator.apply_transpose(grad_outputs))


def hypergradient(train_loss: Loss, val_loss: Loss, params: Sequence[torch.Tensor],
                  hyper: Sequence[torch.Tensor], terms: int = 10, alpha: float = 0.01,
                  differentiable: bool = False) -> Tensors:
    """``dL*/dλ ≈ ∇λ L_val − M (α Σ_{j=0}^{J} (I − αH)^j) ∇θ L_val`` (Lorraine et al. 2020, eq. 4).

    Args:
        train_loss, val_loss: ``loss(params, hyper) -> scalar``; each must compute its loss
            from the tensors it is passed (use ``torch.func.functional_call`` for a module).
        params: θ at (near) a minimum of ``train_loss``, a list of tensors of any shapes.
        hyper: λ, a list of tensors of any shapes.
        terms: ``J`` ≥ 0, the number of Hessian-vector products.
        alpha: the Neumann step ``α`` > 0, below ``2 / ‖H‖``.
        differentiable: keep the result's graph to everything ``val_loss`` reads besides θ and
            λ (e.g. synthetic validation data), through both the direct term and the implicit
            term; otherwise the result is detached.

    Returns:
        The hypergradient, one tensor per entry of ``hyper`` with its shape.

    Raises:
        ConfigError: ``terms`` < 0 or ``alpha`` not positive.
    """
    theta = [p.detach().requires_grad_(True) for p in params]
    lam = [h.detach().requires_grad_(True) for h in hyper]
    operator = ImplicitOperator(train_loss, theta, lam, terms, alpha)
    grads = torch.autograd.grad(val_loss(theta, lam), theta + lam, create_graph=differentiable,
                                allow_unused=True, materialize_grads=True)
    grad_theta, direct = list(grads[:len(theta)]), list(grads[len(theta):])
    implicit = _ImplicitTerm.apply(operator, *grad_theta) if differentiable else operator.apply(grad_theta)
    result = [d - i for d, i in zip(direct, implicit)]
    return result if differentiable else [r.detach() for r in result]


def cosine_distance(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """``D_c(a, b) = 1 − cos(a, b)`` of two lists of tensors flattened into single vectors.

    The HCDC alignment loss (eq. HCDC, Definition 2); 1 when either vector is zero.
    Differentiable in both arguments.
    """
    flat_a = torch.cat([t.reshape(-1) for t in a])
    flat_b = torch.cat([t.reshape(-1) for t in b])
    return 1 - (flat_a * flat_b).sum() / (flat_a.norm() * flat_b.norm() + _EPS)


def calibration_step(h_real: Sequence[torch.Tensor], h_proxy: Sequence[torch.Tensor], val: torch.Tensor,
                     optimizer: torch.optim.Optimizer, lam: torch.Tensor, lr_lambda: float,
                     knobs: str = "") -> tuple[float | None, torch.Tensor]:
    """One calibration update of HCDC's Algorithm 1 (lines 7-8) from the two hypergradients.

    ``val`` (the learned synthetic validation data, which ``h_proxy`` is differentiable in)
    takes one ``optimizer`` step down ``D_c(h_real, h_proxy)``, and ``λ ← λ − lr_lambda ·
    h_proxy[0]``. When either hypergradient is all zero (λ has no effect, e.g. a Gumbel draw
    that disconnects a cell) there is nothing to align: nothing changes and the distance is
    ``None``.

    Args:
        knobs: prefix of the parameter names in error messages (``"graph."`` for graph HCDC).

    Returns:
        ``(D_c before the step, or None; the new λ)``.

    Raises:
        DivergedError: a hypergradient or ``val`` became NaN or infinite.
    """
    if not all(torch.isfinite(h).all() for h in (*h_real, *h_proxy)):
        raise DivergedError(f"hcdc: a hypergradient became non-finite; lower {knobs}neumann_alpha or "
                            f"{knobs}lr_lambda (now {lr_lambda})")
    if not all(any(bool(h.any()) for h in side) for side in (h_real, h_proxy)):
        return None, lam
    distance = cosine_distance(h_real, h_proxy)
    optimizer.zero_grad(set_to_none=True)
    distance.backward(inputs=[val])
    optimizer.step()
    if not torch.isfinite(val).all():
        raise DivergedError(f"hcdc: the learned validation data became non-finite; lower {knobs}lr_val")
    return float(distance.detach()), lam - lr_lambda * h_proxy[0].detach()


def check_neumann(terms: int, alpha: float) -> None:
    """Raise ``ConfigError`` unless ``terms`` is an int ≥ 0 and ``alpha`` a positive number."""
    if not is_int(terms) or terms < 0:
        raise ConfigError(f"the number of Neumann terms must be an integer >= 0, got {terms!r}")
    if not is_number(alpha) or not alpha > 0:
        raise ConfigError(f"the Neumann step alpha must be a positive number below 2 / ‖H‖, got {alpha!r}")


def _vjp(outputs: Tensors, inputs: Tensors, vector: Sequence[torch.Tensor]) -> Tensors:
    """``Σ_k v_k ∂outputs_k/∂inputs`` through the retained graph of ``outputs`` (detached).

    Outputs without a graph (a gradient that does not depend on ``inputs`` at all) add zero.
    """
    pairs = [(o, v) for o, v in zip(outputs, vector) if o.requires_grad]
    if not pairs:
        return [torch.zeros_like(i) for i in inputs]
    grads = torch.autograd.grad([o for o, _ in pairs], inputs, grad_outputs=[v for _, v in pairs],
                                retain_graph=True, allow_unused=True, materialize_grads=True)
    return [g.detach() for g in grads]
