"""Tests of the IFT / Neumann hypergradient against exact ones on models small enough to invert."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.errors import ConfigError, DivergedError
from harness.hypergradient import ImplicitOperator, calibration_step, check_neumann, cosine_distance, hypergradient

TERMS = (0, 2, 8, 32, 128, 512)


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return 1.0 - float(cosine_distance(a, b))


# --- ridge regression with one log weight decay per feature --------------------------------------------------


def ridge_problem(seed: int = 0, n: int = 40, d: int = 5):
    """Features on different scales so that the Hessian is ill-conditioned and few terms fall short."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-0.5, 0.5, d, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    xv = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    y = x @ w + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    yv = xv @ w + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    lam = torch.randn(d, generator=g, dtype=torch.float64) - 1.0
    return x, y, xv, yv, lam


def ridge_losses(x, y, xv, yv):
    def train(params, hyper):
        (theta,), (lam,) = params, hyper
        return 0.5 * ((x @ theta - y) ** 2).mean() + 0.5 * (lam.exp() * theta ** 2).sum()

    def val(params, hyper):
        return 0.5 * ((xv @ params[0] - yv) ** 2).mean()

    return train, val


def ridge_solution(x, y, lam):
    """θ*(λ) = (XᵀX/n + diag(e^λ))⁻¹ Xᵀy/n, differentiable in λ (and in nothing else we vary)."""
    n = len(y)
    return torch.linalg.solve(x.T @ x / n + torch.diag(lam.exp()), x.T @ y / n)


def ridge_exact(x, y, xv, yv, lam):
    """The IFT hypergradient with the explicit inverse Hessian: −M H⁻¹ ∇θ L_val (no direct term)."""
    n = len(y)
    theta = ridge_solution(x, y, lam)
    hessian = x.T @ x / n + torch.diag(lam.exp())
    mixed = torch.diag(lam.exp() * theta)          # ∂²L/∂λ_i∂θ_j = δ_ij e^{λ_i} θ_i
    grad_val = xv.T @ (xv @ theta - yv) / len(yv)
    return -mixed @ torch.linalg.inv(hessian) @ grad_val, theta, hessian


def test_ridge_exact_ift_equals_differentiating_the_closed_form_solution():
    x, y, xv, yv, lam = ridge_problem()
    exact, _, _ = ridge_exact(x, y, xv, yv, lam)
    lam_leaf = lam.clone().requires_grad_(True)
    loss = 0.5 * ((xv @ ridge_solution(x, y, lam_leaf) - yv) ** 2).mean()
    (unrolled,) = torch.autograd.grad(loss, lam_leaf)
    torch.testing.assert_close(exact, unrolled)


def test_ridge_neumann_hypergradient_converges_to_the_exact_one_as_terms_are_added():
    x, y, xv, yv, lam = ridge_problem()
    exact, theta, hessian = ridge_exact(x, y, xv, yv, lam)
    alpha = 1.0 / float(torch.linalg.eigvalsh(hessian).max())
    train, val = ridge_losses(x, y, xv, yv)
    cosines = [cosine(hypergradient(train, val, [theta], [lam], terms=j, alpha=alpha), [exact]) for j in TERMS]
    assert cosines[0] < 0.99, f"the problem is too easy to show convergence: {cosines}"
    assert all(b >= a - 1e-9 for a, b in zip(cosines, cosines[1:])), f"cosine fell as terms were added: {cosines}"
    assert cosines[-1] > 0.999, cosines
    approx = hypergradient(train, val, [theta], [lam], terms=4000, alpha=alpha)[0]
    torch.testing.assert_close(approx, exact, rtol=1e-6, atol=1e-9)


def test_ridge_differentiable_hypergradient_backpropagates_exactly_to_the_validation_data():
    """d<h(X_val), r>/dX_val through the Neumann operator's transpose equals the exact one."""
    x, y, xv, yv, lam = ridge_problem(seed=1)
    _, theta, hessian = ridge_exact(x, y, xv, yv, lam)
    alpha = 1.0 / float(torch.linalg.eigvalsh(hessian).max())
    probe = torch.randn(lam.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    xv_leaf = xv.clone().requires_grad_(True)
    train, val = ridge_losses(x, y, xv_leaf, yv)
    (approx,) = hypergradient(train, val, [theta], [lam], terms=4000, alpha=alpha, differentiable=True)
    (ours,) = torch.autograd.grad((approx * probe).sum(), xv_leaf)

    xv_exact = xv.clone().requires_grad_(True)
    exact, _, _ = ridge_exact(x, y, xv_exact, yv, lam)
    (reference,) = torch.autograd.grad((exact * probe).sum(), xv_exact)
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-9)


# --- a tiny MLP whose hidden activation is a λ-weighted mixture (a one-edge "supernet") ----------------------

SHAPES = ((4, 3), (4,), (1, 4), (1,))
WEIGHT_DECAY = 1e-2


def unflatten(flat: torch.Tensor) -> list[torch.Tensor]:
    parts, start = [], 0
    for shape in SHAPES:
        size = int(torch.tensor(shape).prod())
        parts.append(flat[start:start + size].reshape(shape))
        start += size
    return parts


def mlp(params: list[torch.Tensor], lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2 = params
    hidden = x @ w1.T + b1
    weights = F.softmax(lam, dim=0)
    mixed = weights[0] * torch.tanh(hidden) + weights[1] * hidden + weights[2] * torch.sigmoid(hidden)
    return (mixed @ w2.T + b2).squeeze(-1)


@pytest.fixture(scope="module")
def mlp_problem():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 3, generator=g, dtype=torch.float64)
    xv = torch.randn(60, 3, generator=g, dtype=torch.float64)
    target = lambda inputs: torch.sin(inputs[:, 0]) + inputs[:, 1] * inputs[:, 2]  # noqa: E731
    y, yv = target(x), target(xv)
    lam = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)

    def train(params, hyper):
        fit = 0.5 * ((mlp(params, hyper[0], x) - y) ** 2).mean()
        return fit + 0.5 * WEIGHT_DECAY * sum((p ** 2).sum() for p in params)

    def val(params, hyper):
        return 0.5 * ((mlp(params, hyper[0], xv) - yv) ** 2).mean()

    size = sum(int(torch.tensor(s).prod()) for s in SHAPES)
    flat = (0.5 * torch.randn(size, generator=g, dtype=torch.float64)).requires_grad_(True)
    optimizer = torch.optim.LBFGS([flat], lr=1.0, max_iter=2000, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = train(unflatten(flat), [lam])
        loss.backward()
        return loss

    optimizer.step(closure)
    return train, val, flat.detach(), lam


def test_mlp_neumann_hypergradient_near_the_optimum_matches_the_explicit_inverse(mlp_problem):
    train, val, flat, lam = mlp_problem
    grad = torch.autograd.functional.jacobian(lambda f: train(unflatten(f), [lam]), flat)
    assert grad.norm() < 1e-6, f"not at a stationary point: |∇θ L_train| = {grad.norm()}"
    hessian = torch.autograd.functional.hessian(lambda f: train(unflatten(f), [lam]), flat)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert eigenvalues.min() > 0, "the optimum found is not a strict local minimum"
    mixed = torch.autograd.functional.jacobian(
        lambda l: torch.autograd.functional.jacobian(lambda f: train(unflatten(f), [l]), flat, create_graph=True),
        lam)                                                              # P×H: ∂(∇θ L)/∂λ
    grad_theta = torch.autograd.functional.jacobian(lambda f: val(unflatten(f), [lam]), flat)
    direct = torch.autograd.functional.jacobian(lambda l: val(unflatten(flat), [l]), lam)
    assert direct.norm() > 1e-3, "the test needs a validation loss that depends on λ directly"
    exact = direct - mixed.T @ torch.linalg.solve(hessian, grad_theta)

    alpha = 1.0 / float(eigenvalues.max())
    params = unflatten(flat)
    cosines = [cosine(hypergradient(train, val, params, [lam], terms=j, alpha=alpha), [exact]) for j in TERMS]
    assert all(b >= a - 1e-6 for a, b in zip(cosines, cosines[1:])), f"cosine fell as terms were added: {cosines}"
    assert cosines[-1] > 0.99, cosines
    assert cosines[0] < cosines[-1] - 1e-3, cosines


def test_operator_products_match_explicit_matrices(mlp_problem):
    train, _, flat, lam = mlp_problem
    params = [p.clone().requires_grad_(True) for p in unflatten(flat)]
    hyper = [lam.clone().requires_grad_(True)]
    operator = ImplicitOperator(train, params, hyper, terms=3, alpha=0.1)
    hessian = torch.autograd.functional.hessian(lambda f: train(unflatten(f), [lam]), flat)
    v = torch.randn(len(flat), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hv = torch.cat([t.reshape(-1) for t in operator.hessian_vector(unflatten(v))])
    torch.testing.assert_close(hv, hessian @ v)
    polynomial = 0.1 * sum(torch.linalg.matrix_power(torch.eye(len(flat), dtype=torch.float64) - 0.1 * hessian, j)
                           for j in range(4))
    inverse = torch.cat([t.reshape(-1) for t in operator.inverse_hessian_vector(unflatten(v))])
    torch.testing.assert_close(inverse, polynomial @ v)
    u = torch.randn(3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mixed_vector = torch.cat([t.reshape(-1) for t in operator.mixed(unflatten(v))])
    transpose_vector = torch.cat([t.reshape(-1) for t in operator.mixed_transpose([u])])
    assert float(mixed_vector @ u) == pytest.approx(float(transpose_vector @ v), rel=1e-9)


def test_hyperparameters_unused_by_the_training_loss_get_only_the_direct_term():
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    theta, scale = torch.randn(2), torch.tensor(2.0)
    train = lambda p, h: ((x @ p[0]) ** 2).mean() + (p[0] ** 2).sum()  # noqa: E731
    val = lambda p, h: h[0] * (x @ p[0]).mean()  # noqa: E731
    (result,) = hypergradient(train, val, [theta], [scale], terms=5, alpha=0.1)
    torch.testing.assert_close(result, (x @ theta).mean())


def test_bad_neumann_settings_are_rejected_with_the_rule():
    with pytest.raises(ConfigError, match=">= 0"):
        check_neumann(-1, 0.1)
    with pytest.raises(ConfigError, match="positive"):
        check_neumann(3, 0.0)


# --- learning synthetic validation points aligns the hypergradients ---------------------------------------------


def logistic_losses(x, y, xv, yv):
    """Logistic regression with one log weight decay per feature; ``xv`` may be learnable."""
    def train(params, hyper):
        return F.binary_cross_entropy_with_logits(x @ params[0], y) + 0.5 * (hyper[0].exp() * params[0] ** 2).sum()

    def val(params, hyper):
        return F.binary_cross_entropy_with_logits(xv @ params[0], yv)

    return train, val


def fit_logistic(x, y, lam, steps: int = 25) -> torch.Tensor:
    """θ*(λ) by Newton's method (the problem is strongly convex)."""
    theta = torch.zeros(x.shape[1], dtype=x.dtype)
    train, _ = logistic_losses(x, y, x, y)
    for _ in range(steps):
        loss = lambda t: train([t], [lam])  # noqa: E731
        grad = torch.autograd.functional.jacobian(loss, theta)
        theta = theta - torch.linalg.solve(torch.autograd.functional.hessian(loss, theta), grad)
    return theta


def test_learning_synthetic_validation_points_lowers_the_hypergradient_cosine_distance():
    g = torch.Generator().manual_seed(0)
    d = 6
    w = torch.tensor([2.0, -1.5, 1.0, 0.0, 0.0, 0.5], dtype=torch.float64)

    def draw(n):
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        return x, (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(x @ w)).to(torch.float64)

    (x_t, y_t), (xv_t, yv_t) = draw(400), draw(400)
    x_s, y_s = x_t[:24], y_t[:24]                                  # the fixed synthetic train set
    yv_s = torch.tensor([0.0, 1.0] * 4, dtype=torch.float64)       # 4 synthetic val points per class
    xv_s = torch.randn(len(yv_s), d, generator=g, dtype=torch.float64).requires_grad_(True)
    lams = [torch.randn(d, generator=g, dtype=torch.float64) - 2.0 for _ in range(6)]
    theta_t = [fit_logistic(x_t, y_t, lam) for lam in lams]
    theta_s = [fit_logistic(x_s, y_s, lam) for lam in lams]
    targets = [hypergradient(*logistic_losses(x_t, y_t, xv_t, yv_t), [th], [lam], terms=20, alpha=0.5)
               for th, lam in zip(theta_t, lams)]

    def alignment() -> torch.Tensor:
        train, val = logistic_losses(x_s, y_s, xv_s, yv_s)
        distances = [cosine_distance(target, hypergradient(train, val, [th], [lam], terms=20, alpha=0.5,
                                                           differentiable=True))
                     for target, th, lam in zip(targets, theta_s, lams)]
        return torch.stack(distances).mean()

    optimizer = torch.optim.Adam([xv_s], lr=0.05)
    before = float(alignment().detach())
    for _ in range(40):
        optimizer.zero_grad()
        alignment().backward()
        optimizer.step()
    after = float(alignment().detach())
    assert after < 0.5 * before, f"cosine distance {before:.3f} -> {after:.3f}: S_val learning did not align"


def test_calibration_step_moves_val_towards_alignment_and_lambda_down_the_proxy_hypergradient():
    val = torch.tensor([1.0, 0.0], requires_grad=True)
    optimizer = torch.optim.SGD([val], lr=0.1)
    h_real = [torch.tensor([0.0, 1.0])]
    before = float(cosine_distance(h_real, [val.detach() * 2]))
    distance, lam = calibration_step(h_real, [val * 2], val, optimizer, torch.zeros(2), lr_lambda=0.5)
    assert distance == pytest.approx(before)
    assert float(cosine_distance(h_real, [val.detach() * 2])) < before
    assert torch.allclose(lam, torch.tensor([-1.0, 0.0]))


def test_calibration_step_skips_a_zero_hypergradient_and_rejects_a_non_finite_one():
    val = torch.ones(2, requires_grad=True)
    optimizer = torch.optim.SGD([val], lr=0.1)
    lam = torch.ones(2)
    assert calibration_step([torch.zeros(2)], [val], val, optimizer, lam, 0.5) == (None, lam)
    assert torch.equal(val, torch.ones(2))
    with pytest.raises(DivergedError, match="graph.neumann_alpha"):
        calibration_step([torch.tensor([float("nan"), 0.0])], [val], val, optimizer, lam, 0.5, knobs="graph.")
