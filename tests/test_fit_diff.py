"""Differentiable estimates: derivatives of ``fit(...).params`` through the implicit
function theorem (``nllax._fit._solve_jvp``).

References: closed forms (least squares: d beta/dy = (X'X)^-1 X'; ridge:
d beta/d lambda = -(X'X + lambda I)^-1 beta) and central finite differences of re-fits in
float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax

EPS64 = float(np.finfo(np.float64).eps)


def _ridge(beta, X, y, lam):
    r = y - X @ beta
    return 0.5 * jnp.sum(r * r) + 0.5 * lam * jnp.sum(beta * beta)


def _logistic(beta, X, y):
    return nllax.bernoulli.nll(y, logits=X @ beta)


def _gauss_fixed_sigma(mu, y, sigma):
    return nllax.gaussian.nll(y, mu, sigma)


def _data(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.standard_normal((n, d - 1))]
    y = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)
    return X, y


def _beta_hat(X, y, lam):
    return nllax.fit(_ridge, jnp.zeros(X.shape[1]), X, y, lam).params


# The derivatives of fits are taken under jit: differentiated eagerly, every primitive of
# the implicit-function JVP and of the transposes around it compiles on its own (~200
# programs for one Jacobian); the rules are the same. test_params0_has_no_influence keeps
# the eager path.
_JACREV_Y = jax.jit(jax.jacrev(_beta_hat, argnums=1))
_JACFWD_Y = jax.jit(jax.jacfwd(_beta_hat, argnums=1))


def test_least_squares_jacobian_wrt_data_both_modes(x64):
    X, y = _data()
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    ref = np.linalg.solve(X.T @ X, X.T)  # d beta / d y
    rev = _JACREV_Y(Xj, yj, 0.0)
    fwd = _JACFWD_Y(Xj, yj, 0.0)
    # a linear solve with the Hessian X'X: about cond(X'X) * eps relative, 10x for the
    # Jacobi-scaled Cholesky and the products around it
    tol = 10 * np.linalg.cond(X.T @ X) * EPS64 * np.max(np.abs(ref))
    np.testing.assert_allclose(rev, ref, rtol=0, atol=tol)
    np.testing.assert_allclose(fwd, ref, rtol=0, atol=tol)


def test_ridge_derivative_wrt_the_penalty(x64):
    X, y = _data(seed=1)
    lam = 2.5
    b = np.linalg.solve(X.T @ X + lam * np.eye(3), X.T @ y)
    ref = -np.linalg.solve(X.T @ X + lam * np.eye(3), b)
    got = jax.jit(jax.jacrev(_beta_hat, argnums=2))(jnp.asarray(X), jnp.asarray(y), lam)
    a = X.T @ X + lam * np.eye(3)
    tol = 10 * np.linalg.cond(a) * EPS64 * np.max(np.abs(ref))
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


def test_logistic_gradient_matches_finite_differences(x64):
    rng = np.random.default_rng(2)
    X = np.c_[np.ones(200), rng.standard_normal((200, 2))]
    y = (rng.random(200) < 1 / (1 + np.exp(-X @ np.array([0.2, 1.0, -0.5])))).astype(float)
    w = jnp.asarray([0.3, -1.0, 2.0])

    def loss(X):
        return jnp.dot(w, nllax.fit(_logistic, jnp.zeros(3), X, jnp.asarray(y)).params)

    Xj = jnp.asarray(X)
    g = np.asarray(jax.jit(jax.grad(loss))(Xj))
    loss_at = jax.jit(loss)  # the re-fits, one program for all the points
    # central differences of re-fits on a few entries: truncation h^2/6 |f'''| and
    # rounding eps |f| / h; the re-fits are exact to ~tol^2 (quadratic convergence).
    # With h = eps^(1/3) both are ~eps^(2/3) |f| (~4e-11 here, |f| ~ 1, f''' ~ 1):
    # 1e3 eps^(2/3) leaves room for f''' up to 1e3.
    h = EPS64 ** (1 / 3)
    for i, j in [(0, 1), (5, 2), (17, 0), (199, 1)]:
        e = np.zeros_like(X)
        e[i, j] = h
        fd = (float(loss_at(X + e)) - float(loss_at(X - e))) / (2 * h)
        np.testing.assert_allclose(g[i, j], fd, rtol=0, atol=1e3 * EPS64 ** (2 / 3))


def test_value_derivative_is_the_envelope_theorem(x64):
    # d/d sigma of min_mu NLL(mu; y, sigma) = dNLL/dsigma at mu-hat = -SSE/sigma^3 + n/sigma
    y = jnp.asarray([0.5, 1.5, 2.0, 4.0])
    sigma = 1.3

    def best(sigma):
        return nllax.fit(_gauss_fixed_sigma, jnp.asarray(0.0), y, sigma).value

    sse = float(jnp.sum((y - jnp.mean(y)) ** 2))
    ref = -sse / sigma**3 + len(y) / sigma
    np.testing.assert_allclose(jax.jit(jax.grad(best))(sigma), ref, rtol=100 * EPS64)


def test_not_converged_gives_nan_derivatives(x64):
    X, y = _data(seed=3)

    def partial_fit(y):
        return nllax.fit(_logistic, jnp.zeros(3), jnp.asarray(X), y, max_steps=1).params

    yb = jnp.asarray((y > 0).astype(float))
    jac = jax.jit(jax.jacrev(partial_fit))(yb)
    assert np.all(np.isnan(jac))


def test_under_jit_and_vmap(x64):
    X, y = _data(seed=4)
    Xj = jnp.asarray(X)
    ys = jnp.stack([jnp.asarray(y), jnp.asarray(y[::-1])])
    f = jax.jit(jax.vmap(lambda y: jax.grad(lambda y: jnp.sum(_beta_hat(Xj, y, 0.0)))(y)))
    got = f(ys)
    ref = np.sum(np.linalg.solve(X.T @ X, X.T), axis=0)
    tol = 10 * np.linalg.cond(X.T @ X) * EPS64 * np.max(np.abs(ref))
    for row in np.asarray(got):
        np.testing.assert_allclose(row, ref, rtol=0, atol=tol)


def test_params0_has_no_influence(x64):
    X, y = _data(seed=5)
    # eager, on purpose: the one derivative of a fit taken outside jit in this module
    g = jax.grad(lambda b0: jnp.sum(nllax.fit(_ridge, b0, jnp.asarray(X), jnp.asarray(y), 0.0).params))(
        jnp.ones(3)
    )
    np.testing.assert_array_equal(g, np.zeros(3))


@pytest.mark.parametrize("solver", ["lbfgs"])
def test_optax_solver_estimates_are_differentiable_too(x64, solver):
    import optax

    X, y = _data(seed=6)
    opt = optax.lbfgs()

    def fit_lbfgs(y):
        return nllax.fit(_ridge, jnp.zeros(3), jnp.asarray(X), y, 0.0, solver=opt, tol=1e-12).params

    jac = jax.jit(jax.jacrev(fit_lbfgs))(jnp.asarray(y))
    ref = np.linalg.solve(X.T @ X, X.T)
    # the derivative is taken at the returned point: L-BFGS stops at |grad| <= 1e-12 max(1, |f|),
    # an error of about ||H^-1|| |grad| in beta, which moves the Hessian of a quadratic not at all
    tol = 10 * np.linalg.cond(X.T @ X) * EPS64 * np.max(np.abs(ref))
    np.testing.assert_allclose(jac, ref, rtol=0, atol=tol)
