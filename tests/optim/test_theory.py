"""HAM against its theory (method.md): implicit bias on underdetermined least squares.

f(x) = ||Zx - y||^2 / (2n), Z of shape n x d with n < d. HAM-GD (SGD + HAM, the HYP* variant)
converges, to first order in the step size eta,
* for beta = 0 to the Bregman projection argmin_{Zx=y} R_a(x) - <grad R_a(x0), x>,
* for beta > 0 to the minimiser of f(x) + beta * sum_i(|x_i|/a - log(1 + a|x_i|)/a^2).
The references are solved with SciPy from their optimality conditions, independently of pyg_ham.
"""
import numpy as np
import pytest
import torch
from scipy import optimize

from pyg_ham import HAM

N, D = 5, 20


def problem(seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, D))
    truth = np.zeros(D)
    truth[rng.choice(D, 3, replace=False)] = rng.standard_normal(3)
    y = Z @ truth
    x0 = 0.01 * rng.standard_normal(D)
    return Z, y, x0


def grad_R(x, a):
    return np.sign(x) * np.log1p(a * np.abs(x)) / a


def R(x, a):
    t = a * np.abs(x)
    return ((1 + t) * np.log1p(t) - t).sum() / a**2


def bregman_projection(Z, y, x0, a):
    """argmin_{Zx=y} R_a(x) - <grad R_a(x0), x>, over x = x_p + B w with B a null-space basis of Z.

    A smooth strictly convex problem in w, solved by SciPy's Newton trust region.
    """
    u0 = grad_R(x0, a)
    xp = np.linalg.lstsq(Z, y, rcond=None)[0]
    B = np.linalg.svd(Z)[2][N:].T  # d x (d - n), orthonormal, Z @ B == 0

    def x_of(w):
        return xp + B @ w

    sol = optimize.minimize(
        lambda w: R(x_of(w), a) - u0 @ x_of(w), np.zeros(D - N),
        jac=lambda w: B.T @ (grad_R(x_of(w), a) - u0),
        hess=lambda w: B.T @ (B / (1 + a * np.abs(x_of(w)))[:, None]),
        method="trust-exact", options={"gtol": 1e-13})
    x = x_of(sol.x)
    assert np.abs(B.T @ (grad_R(x, a) - u0)).max() < 1e-10 and np.abs(Z @ x - y).max() < 1e-10
    return x


def regularised_minimiser(Z, y, a, beta):
    """Root of grad f(x) + beta * x / (1 + a|x|) (strictly convex objective)."""
    n = len(y)

    def grad(x):
        return Z.T @ (Z @ x - y) / n + beta * x / (1 + a * np.abs(x))

    def hess(x):
        return Z.T @ Z / n + np.diag(beta / (1 + a * np.abs(x)) ** 2)

    sol = optimize.root(grad, np.linalg.lstsq(Z, y, rcond=None)[0], jac=hess, method="hybr", tol=1e-14)
    assert np.abs(grad(sol.x)).max() < 1e-11
    return sol.x


def run_ham_gd(Z, y, x0, lr, alpha, beta, steps, ham=True, target_loss=None):
    """SGD + pyg_ham.HAM on the least-squares problem, float64, gradient written by hand."""
    Zt, yt = torch.from_numpy(Z), torch.from_numpy(y)
    x = torch.nn.Parameter(torch.from_numpy(x0.copy()).view(1, -1))  # 2-D: selected by "auto"
    opt = torch.optim.SGD([x], lr=lr)
    if ham:
        opt = HAM(opt, alpha=alpha, beta=beta)
    for step in range(steps):
        r = Zt @ x.detach()[0] - yt
        if target_loss is not None and float(r @ r) / (2 * N) <= target_loss:
            return step
        x.grad = (Zt.T @ r / N).view(1, -1)
        opt.step()
    return x.detach()[0].numpy() if target_loss is None else steps


@pytest.mark.parametrize("alpha", [1.0, pytest.param(10.0, marks=pytest.mark.slow)])  # (~10 s each)
def test_beta_zero_converges_to_bregman_projection(alpha):
    Z, y, x0 = problem()
    reference = bregman_projection(Z, y, x0, alpha)
    errors = {}
    for lr in (4e-3, 1e-3):
        x = run_ham_gd(Z, y, x0, lr, alpha, 0.0, steps=int(30 / lr))
        errors[lr] = np.abs(x - reference).max()
        assert errors[lr] <= 1.5 * lr, (lr, errors[lr])  # C * eta, C from method.md's numbers
    # the remaining error is the O(eta) discretisation: it shrinks (about linearly) with eta
    assert errors[1e-3] < 0.5 * errors[4e-3]
    # the limit differs from the Euclidean (alpha -> 0) projection: the bias is real
    euclid = x0 + np.linalg.pinv(Z) @ (y - Z @ x0)
    assert np.abs(euclid - reference).max() > 10 * errors[1e-3]


def test_l1_norm_of_hams_solution_falls_with_alpha():
    """pyg-ham's HAM-GD interpolates with a smaller L1 norm as alpha grows (the implicit sparsity
    bias), ordered as the Bregman projections it converges to, and below plain GD's solution."""
    Z, y, x0 = problem()
    lr = 4e-3
    gd = np.abs(run_ham_gd(Z, y, x0, lr, 0.0, 0.0, steps=int(30 / lr), ham=False)).sum()
    norms = [np.abs(run_ham_gd(Z, y, x0, lr, a, 0.0, steps=int(30 / lr))).sum() for a in (1.0, 10.0, 50.0)]
    limits = [np.abs(bregman_projection(Z, y, x0, a)).sum() for a in (1.0, 10.0, 50.0)]
    assert gd > norms[0] > norms[1] > norms[2]
    np.testing.assert_allclose(norms, limits, rtol=0.05)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.5), pytest.param(10.0, 0.5, marks=pytest.mark.slow)])  # (~14 s each)
def test_beta_positive_converges_to_regularised_minimiser(alpha, beta):
    Z, y, x0 = problem(1)
    reference = regularised_minimiser(Z, y, alpha, beta)
    for lr in (4e-3, 1e-3):
        x = run_ham_gd(Z, y, x0, lr, alpha, beta, steps=int(40 / lr))
        assert np.abs(x - reference).max() <= 1.5 * lr


def test_small_eta_alpha_is_no_slower_than_gd():
    Z, y, x0 = problem(2)
    lr = 1e-3
    steps_gd = run_ham_gd(Z, y, x0, lr, 0.0, 0.0, 200_000, ham=False, target_loss=1e-8)
    steps_ham = run_ham_gd(Z, y, x0, lr, 10.0, 0.0, 200_000, target_loss=1e-8)
    assert steps_gd < 200_000
    assert steps_ham <= steps_gd


def test_large_eta_alpha_diverges():
    """The stable range: roughly eta * (1 + alpha * max|x|) * L < 2 (L = largest eigenvalue of Z^T Z / n)."""
    Z, y, x0 = problem(2)
    L = np.linalg.eigvalsh(Z.T @ Z / N).max()
    lr = 1.5 / L  # stable for GD (eta * L < 2) ...
    x_gd = run_ham_gd(Z, y, x0, lr, 0.0, 0.0, 3000, ham=False)
    assert np.abs(Z @ x_gd - y).max() < 1e-6
    x_ham = run_ham_gd(Z, y, x0, lr, 200.0, 0.0, 3000)  # ... but not with eta * alpha = 300 / L
    assert not np.isfinite(x_ham).all() or np.abs(Z @ x_ham - y).max() > 1e-2
