"""Neural tangent kernels for ``kip``: a closed form and an empirical one.

* :func:`fc_relu_ntk` — the infinite-width NTK of a fully connected ReLU network in the NTK
  parametrization (Jacot et al., 2018; Arora et al., 2019), computed layer by layer with the
  arc-cosine kernels of Cho & Saul (2009). This is the ``FC`` kernel KIP uses.
* :func:`empirical_ntk` — ``Θ(x, x') = ⟨∂f(x)/∂θ, ∂f(x')/∂θ⟩`` of one finite network with a
  single output, from per-sample Jacobians (``torch.func``: ``vmap`` of ``jacrev`` through
  ``functional_call``). Differentiable in the support images, so KIP can learn them through it.

Inputs are batches of images ``N×C×H×W`` (the FC kernel flattens them); kernels are ``N₁×N₂``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

# ρ is kept this far inside [-1, 1]: arccos has an infinite slope at ±1, where the kernels
# themselves are smooth (on the diagonal ρ ≡ 1 does not depend on the inputs at all).
_RHO_MARGIN = 1e-9
# Per-sample Jacobians of the targets are computed in chunks of this many images.
JACOBIAN_CHUNK = 256


def fc_relu_ntk(x1: torch.Tensor, x2: torch.Tensor, depth: int, w_std: float, b_std: float) -> torch.Tensor:
    """The infinite-width NTK of ``depth`` hidden ReLU layers and a linear readout.

    Each dense layer is ``h = w_std/√fan_in · W z + b_std · b`` with standard normal ``W``, ``b``.
    With ``Σ⁰(x, x') = w_std² ⟨x, x'⟩ / d + b_std²`` and ``Θ⁰ = Σ⁰``, every hidden layer maps

        ``Σ ← w_std² · √(Σ(x,x) Σ(x',x'))/(2π) · (sin φ + (π − φ) cos φ) + b_std²``
        ``Θ ← Σ + w_std² · (π − φ)/(2π) · Θ``,     ``φ = arccos(Σ(x,x') / √(Σ(x,x) Σ(x',x')))``

    (the first- and zeroth-order arc-cosine kernels: ``E[relu(u) relu(v)]`` and
    ``E[relu'(u) relu'(v)]`` for ``(u, v)`` Gaussian with covariance ``Σ``).

    Args:
        x1: ``N₁×…`` inputs, flattened to ``N₁×d``.
        x2: ``N₂×…`` inputs of the same ``d``.
        depth: hidden layers (KIP's "FC1", "FC2", … kernels); 0 gives the linear kernel ``Σ⁰``.

    Returns:
        ``Θ``, float64 ``N₁×N₂``; differentiable in both inputs.
    """
    a, b = x1.flatten(1).double(), x2.flatten(1).double()
    d = a.shape[1]
    sigma = w_std ** 2 * (a @ b.T) / d + b_std ** 2
    var1 = w_std ** 2 * a.pow(2).sum(1) / d + b_std ** 2
    var2 = w_std ** 2 * b.pow(2).sum(1) / d + b_std ** 2
    theta = sigma
    for _ in range(depth):
        norms = torch.sqrt(var1[:, None] * var2[None, :])
        rho = (sigma / norms).clamp(-1 + _RHO_MARGIN, 1 - _RHO_MARGIN)
        angle = torch.arccos(rho)
        relu_cov = norms * (torch.sqrt(1 - rho ** 2) + (math.pi - angle) * rho) / (2 * math.pi)
        slope_cov = (math.pi - angle) / (2 * math.pi)
        sigma = w_std ** 2 * relu_cov + b_std ** 2
        theta = sigma + w_std ** 2 * slope_cov * theta
        var1, var2 = w_std ** 2 * var1 / 2 + b_std ** 2, w_std ** 2 * var2 / 2 + b_std ** 2
    return theta


def jacobian(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobians of a single-output ``net`` w.r.t. all its parameters: ``N×P``.

    Differentiable in ``x`` when ``x`` requires grad (the parameters are treated as constants).
    """
    params = {name: p.detach() for name, p in net.named_parameters()}

    def output(p: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        return functional_call(net, p, (sample.unsqueeze(0),)).reshape(())

    per_sample = vmap(jacrev(output), in_dims=(None, 0))(params, x)
    return torch.cat([j.flatten(1) for j in per_sample.values()], dim=1)


def empirical_ntk(net: nn.Module, support: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two kernel blocks KRR needs, from ``Θ(x, x') = J(x) J(x')ᵀ`` of a single-output ``net``.

    Args:
        support: ``n×C×H×W``; the kernels are differentiable in these images.
        targets: ``m×C×H×W``; their Jacobians are constants, computed in chunks of
            :data:`JACOBIAN_CHUNK` images.

    Returns:
        ``(K_ss, K_ts)``: ``n×n`` and ``m×n``.
    """
    j_s = jacobian(net, support)
    with torch.no_grad():
        j_t = torch.cat([jacobian(net, chunk) for chunk in targets.split(JACOBIAN_CHUNK)])
    return j_s @ j_s.T, j_t @ j_s.T
