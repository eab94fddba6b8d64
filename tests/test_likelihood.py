"""nllax.Likelihood and the Gauss-Newton / Fisher-scoring solver.

References: Newton-Raphson / Fisher scoring written in NumPy (float64, iterated to
convergence), closed-form information matrices, scipy.optimize (trust-exact) for the
non-convex Cauchy regression. Two small family modules are defined here: a Cauchy
location family (log-density not concave: negative observed curvature) and
``nllax.poisson`` with its expected information exposed as ``family.fisher`` (the hook
the family core will provide).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _tolerances as tt
import nllax
from nllax import _likelihood as L

EPS64 = float(np.finfo(np.float64).eps)


# -------------------------------------------------------------------------- test families


class _PoissonWithFisher:
    """nllax.poisson plus ``family.fisher``: the expected information of one observation
    for ``rate`` (1/rate) or ``log_rate`` (rate)."""

    log_prob = staticmethod(nllax.poisson.log_prob)
    nll = staticmethod(nllax.poisson.nll)

    class family:  # noqa: N801 - the attribute name the family core uses
        @staticmethod
        def fisher(rate=None, log_rate=None):
            if rate is not None:
                return {"rate": 1.0 / rate}
            return {"log_rate": jnp.exp(log_rate)}


def _cauchy_log_prob(y, loc):
    r = y - loc
    return -jnp.log1p(r * r) - jnp.log(jnp.pi)


class _Cauchy:
    """Cauchy(loc, 1): -log p = log(1 + r^2) + log(pi); d2/dloc2 = 2 (1 - r^2)/(1 + r^2)^2,
    negative for |r| > 1."""

    log_prob = staticmethod(_cauchy_log_prob)

    @staticmethod
    def nll(y, loc, *, reduction="sum", weights=None, where=None):
        t = -_cauchy_log_prob(y, loc)
        if weights is not None:
            t = t * weights
        if where is not None:
            t = jnp.where(where, t, 0.0)
        return t if reduction == "none" else jnp.sum(t)


# -------------------------------------------------------------------------- models
# Module level: a fit's compiled loop is cached on the objective's identity.


def _log_rate(beta, X, offset):
    return {"log_rate": X @ beta + offset}


def _rate(beta, X):
    return {"rate": X @ beta}


def _loc(beta, X):
    return {"loc": X @ beta}


def _hetero(p, X, Z):
    return {"loc": X @ p["b"], "log_scale": Z @ p["c"]}


POISSON = nllax.Likelihood(nllax.poisson, _log_rate)
POISSON_ID = nllax.Likelihood(_PoissonWithFisher, _rate)
CAUCHY = nllax.Likelihood(_Cauchy, _loc)
HETERO = nllax.Likelihood(nllax.gaussian, _hetero)


@functools.cache
def _information(lik, kind="observed"):
    """``lik.information`` as one compiled program (built once per Likelihood and kind):
    called eagerly it runs op by op, each primitive of the Jacobian and the products
    compiled on its own (~70 compiles a call)."""
    return jax.jit(functools.partial(lik.information, kind=kind))


@functools.cache
def _hessian(lik):
    """The exact Hessian of ``lik.nll`` in the raveled parameters, compiled once per
    Likelihood (jax.hessian op by op compiles every primitive of it)."""

    @functools.partial(jax.jit, static_argnums=1)
    def h(x, unravel, args, weights=None, where=None):
        return jax.hessian(lambda x: lik.nll(unravel(x), *args, weights=weights, where=where))(x)

    return h


def _design(n, d, seed):
    rng = np.random.default_rng(seed)
    return np.c_[np.ones(n), rng.standard_normal((n, d - 1))], rng


def _numpy_newton(grad_hess, beta, steps=60):
    for _ in range(steps):
        g, h = grad_hess(beta)
        beta = beta - np.linalg.solve(h, g)
    return beta


def _cond(h):
    s = 1.0 / np.sqrt(np.diag(h))
    return np.linalg.cond(h * s[:, None] * s[None, :])


# -------------------------------------------------------------------------- the object


def test_public_surface_and_calls(x64):
    assert nllax.Likelihood is L.Likelihood and "Likelihood" in nllax.__all__
    X, rng = _design(30, 3, 0)
    y = rng.poisson(2.0, 30).astype(float)
    off = rng.normal(size=30) * 0.1
    beta = jnp.asarray([0.3, -0.2, 0.1])
    args = (jnp.asarray(y), jnp.asarray(X), jnp.asarray(off))
    eta = X @ np.asarray(beta) + off
    # the two linear predictors (NumPy's, the Likelihood's) each within (d + 2) eps of
    # |X||beta| + |off|, which moves log p by |d log p / d eta| = |mu - y| times that; the
    # rest is the same float64 code on (nearly) the same eta
    mu = np.exp(eta)
    d_eta = 2 * (X.shape[1] + 2) * EPS64 * (np.abs(X) @ np.abs(np.asarray(beta)) + np.abs(off))
    per = np.abs(mu - y) * d_eta + 2 * tt.TERM_ROUNDINGS * EPS64 * (mu + np.abs(y * eta) + 1)
    terms = np.asarray(nllax.poisson.log_prob(args[0], log_rate=eta))
    err = abs(float(POISSON.nll(beta, *args)) - float(nllax.poisson.nll(args[0], log_rate=eta)))
    assert err <= np.sum(per) + 2 * tt.sum_rounding(terms), err
    ll = POISSON.log_lik(beta, *args)
    assert ll.shape == (30,)
    assert np.all(np.abs(np.asarray(ll) - terms) <= per)
    w = jnp.linspace(0.5, 1.5, 30)
    # the same terms, weighted and summed: each side's sum's rounding and the products'
    wll = np.asarray(w) * np.asarray(ll)
    err = abs(float(POISSON.nll(beta, *args, weights=w)) - float(jnp.sum(-w * ll)))
    assert err <= 2 * tt.sum_rounding(wll) + 2 * EPS64 * np.sum(np.abs(wll)), err
    assert L.likelihood_of(POISSON.nll) is POISSON and L.likelihood_of(POISSON) is POISSON
    assert L.likelihood_of(lambda b: b) is None
    # equal by family and predictor: a rebuilt object shares the compiled fits
    assert nllax.Likelihood(nllax.poisson, _log_rate) == POISSON
    with pytest.raises(TypeError, match="family module"):
        nllax.Likelihood(object(), _log_rate)
    with pytest.raises(TypeError, match="dict"):
        nllax.Likelihood(nllax.poisson, lambda b, X, o: X @ b).nll(beta, *args)


def test_affine_detection():
    x = jnp.zeros(3)
    X = jnp.ones((5, 3))
    assert L._is_affine(lambda b, X: {"a": X @ b + 1.0}, x, (X,))
    assert L._is_affine(lambda b, X: {"a": 2.0 * (X @ b)[::-1]}, x, (X,))
    assert not L._is_affine(lambda b, X: {"a": jnp.exp(X @ b)}, x, (X,))
    assert not L._is_affine(lambda b, X: {"a": X @ (b * b)}, x, (X,))


# -------------------------------------------------------------------------- GLM = Newton


def test_poisson_glm_with_offset_matches_newton_raphson(x64):
    X, rng = _design(400, 4, 1)
    off = 0.2 * rng.normal(size=400)
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.3, -0.2, 0.1]) + off)).astype(float)

    def gh(b):
        mu = np.exp(X @ b + off)
        return X.T @ (mu - y), X.T @ (mu[:, None] * X)

    ref = _numpy_newton(gh, np.zeros(4))
    args = (jnp.asarray(y), jnp.asarray(X), jnp.asarray(off))
    r = nllax.fit(POISSON, jnp.zeros(4), *args)
    assert bool(r.converged), r.message
    # same equations solved in float64: agreement to about cond(information) * eps;
    # 10x for the different summation orders
    rtol = 10 * _cond(gh(ref)[1]) * EPS64
    np.testing.assert_allclose(r.params, ref, rtol=rtol, atol=rtol)
    # fit(lik) and fit(lik.nll) are the same compiled fit, Gauss-Newton by default
    r2 = nllax.fit(POISSON.nll, jnp.zeros(4), *args)
    np.testing.assert_array_equal(r.params, r2.params)
    # the information of an affine predictor is the exact Hessian, = X' diag(mu) X
    info = _information(POISSON)(r.params, *args)
    # entry (j, k) a sum of n terms X_ij mu_i X_ik: each side's sum rounding
    # (tt.sum_rounding) and mu's (exp of a linear predictor rounded to (d + 2) eps of
    # |X||beta| + |off|, relative that much in mu, plus exp's few roundings)
    b = np.asarray(r.params)
    mu = np.exp(X @ b + off)
    rel_mu = (X.shape[1] + 2) * EPS64 * (np.abs(X) @ np.abs(b) + np.abs(off)) \
        + tt.TERM_ROUNDINGS * EPS64
    terms = np.abs(X)[:, :, None] * np.abs(X)[:, None, :] * mu[:, None, None]
    bound = 2 * tt.sum_rounding(terms) + 2 * np.einsum("i,ijk->jk", rel_mu, terms)
    assert np.all(np.abs(np.asarray(info) - gh(b)[1]) <= bound)
    # the canonical link: the expected information (the family's declared Fisher
    # information, exp(log_rate) per observation) is the observed one (the same bound:
    # two computations of the same sums)
    expected = _information(POISSON, "expected")(r.params, *args)
    assert np.all(np.abs(np.asarray(expected) - np.asarray(info)) <= bound)


def test_gn_matrix_is_one_matmul_over_the_data(x64):
    # The compiled curvature of a linear predictor is X'[WX, r]: one (d, d+1) product,
    # and no n x d product with the identity (what jax.jacfwd of X @ beta would give).
    n, d = 64, 5
    X = jnp.ones((n, d))
    args = (jnp.zeros(n), X, jnp.zeros(n))
    x = jnp.zeros(d)
    unravel = lambda v: v  # noqa: E731
    jac = POISSON.constant_jacobian(x, unravel, args)
    assert jac is not None and jac["log_rate"].shape == (n, d)
    hlo = jax.jit(
        lambda x, jac, *a: POISSON.value_grad_curvature(x, unravel, a, jac=jac)
    ).lower(x, jac, *args).compile().as_text()
    dots = [ln for ln in hlo.splitlines() if " dot(" in ln]
    assert any(f"f64[{d},{d + 1}]" in ln for ln in dots), dots
    assert not any(f"f64[{n},{d}]" in ln.split("=")[1].split("dot(")[0] for ln in dots), dots


def test_heteroscedastic_gaussian_block_curvature(x64):
    # k = 2 predicted parameters: a 2x2 curvature block per observation, indefinite one
    # by one (det = -2 r^2 / sigma^4); the sum is the exact Hessian (affine predictor).
    X, rng = _design(300, 2, 2)
    Z = X.copy()
    y = X @ np.array([1.0, 2.0]) + np.exp(Z @ np.array([-0.5, 0.4])) * rng.standard_normal(300)
    args = (jnp.asarray(y), jnp.asarray(X), jnp.asarray(Z))
    p0 = {"b": jnp.zeros(2), "c": jnp.zeros(2)}
    r = nllax.fit(HETERO, p0, *args)
    assert bool(r.converged), r.message
    newton = nllax.fit(HETERO.nll, p0, *args, solver=nllax.solvers.Newton())
    assert bool(newton.converged)
    from jax.flatten_util import ravel_pytree

    x, unravel = ravel_pytree(r.params)
    exact = _hessian(HETERO)(x, unravel, args)
    info = _information(HETERO)(r.params, *args)
    np.testing.assert_allclose(info, exact, rtol=1e-12, atol=1e-12 * np.max(np.abs(exact)))
    rtol = 10 * _cond(np.asarray(exact)) * EPS64
    for k in ("b", "c"):
        np.testing.assert_allclose(r.params[k], newton.params[k], rtol=rtol, atol=rtol)


# -------------------------------------------------------------------------- non-convex


def test_negative_observed_curvature_cauchy_regression(x64):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    X, rng = _design(200, 3, 3)
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_cauchy(200)
    args = (jnp.asarray(y), jnp.asarray(X))
    b0 = jnp.zeros(3)
    # the Gauss-Newton matrix at the start is indefinite: the fallback is exercised
    b_start = jax.jit(lambda b, a: CAUCHY.value_grad_curvature(b, lambda v: v, a)[2])(b0, args)
    assert np.min(np.linalg.eigvalsh(np.asarray(b_start))) < 0
    r = nllax.fit(CAUCHY, b0, *args)
    assert bool(r.converged), r.message

    def f(b):
        res = y - X @ b
        return np.sum(np.log1p(res * res))

    def g(b):
        res = y - X @ b
        return -X.T @ (2 * res / (1 + res * res))

    def h(b):
        res = y - X @ b
        return X.T @ ((2 * (1 - res * res) / (1 + res * res) ** 2)[:, None] * X)

    ref = scipy_optimize.minimize(f, np.zeros(3), jac=g, hess=h, method="trust-exact",
                                  options={"gtol": 1e-10})
    # (trust-exact may stop at rounding level with a "bad approximation" message; what
    # matters is its gradient, which enters the bound below)
    # its gradient within the requested gtol, or at the gradient's rounding floor (its
    # sum of 200 per-observation terms, tt.sum_rounding) where trust-exact stops
    res = y - X @ ref.x
    per_obs = -X * (2 * res / (1 + res * res))[:, None]
    floor = 2 * np.linalg.norm(tt.sum_rounding(per_obs))
    assert np.linalg.norm(g(ref.x)) <= max(1e-10, floor), ref
    hinv = np.linalg.norm(np.linalg.inv(h(ref.x)), 2)
    assert np.all(np.linalg.eigvalsh(h(ref.x)) > 0)  # a strict local minimum
    # |b - b_ref| <= ||H^-1|| (|g(b)| + |g(b_ref)|) to first order; 2x for the second order
    bound = 2 * hinv * (np.linalg.norm(g(np.asarray(r.params))) + np.linalg.norm(g(ref.x)))
    np.testing.assert_allclose(r.params, ref.x, rtol=0, atol=bound + 10 * EPS64)


# -------------------------------------------------------------------------- expected


def test_fisher_scoring_with_expected_information(x64):
    # Poisson with the identity link (rate = X beta): observed curvature y/mu^2, expected
    # 1/mu. Fisher scoring and Newton reach the same MLE.
    X, rng = _design(300, 3, 4)
    X[:, 1:] = np.abs(X[:, 1:])
    mu_true = X @ np.array([2.0, 1.0, 0.5])
    y = rng.poisson(mu_true).astype(float)

    def gh(b):
        mu = X @ b
        return X.T @ (1 - y / mu), X.T @ ((y / mu**2)[:, None] * X)

    ref = _numpy_newton(gh, np.array([2.0, 1.0, 0.5]))
    args = (jnp.asarray(y), jnp.asarray(X))
    b0 = jnp.asarray([3.0, 0.5, 0.5])
    scoring = nllax.fit(POISSON_ID, b0, *args, solver=nllax.solvers.GaussNewton(curvature="expected"))
    newton = nllax.fit(POISSON_ID, b0, *args)
    h_ref = gh(ref)[1]
    rtol = 10 * _cond(h_ref) * EPS64
    assert bool(newton.converged), newton.message
    np.testing.assert_allclose(newton.params, ref, rtol=rtol)  # quadratic: to rounding
    # Fisher scoring converges linearly: what the fit promises is its stopping rule,
    # |error_i| <= tol (|beta_i| + 1/sqrt(B_ii)), tol = eps**(2/3), plus rounding
    assert bool(scoring.converged), scoring.message
    tol = EPS64 ** (2 / 3)
    bound = tol * (np.abs(ref) + 1 / np.sqrt(np.diag(h_ref))) + rtol * np.abs(ref)
    assert np.all(np.abs(np.asarray(scoring.params) - ref) <= bound), (scoring.params - ref, bound)
    bs = np.asarray(scoring.params)
    mu = X @ bs
    # entries: sums of n terms X_ij w_i X_ik (tt.sum_rounding, each side) with w = 1 / mu
    # or y / mu^2, whose relative rounding is that of mu (the identity link's X beta:
    # (d + 2) eps |X||beta| / |mu|, cancellation included), once or twice, and a few more
    rel_mu = (X.shape[1] + 2) * EPS64 * (np.abs(X) @ np.abs(bs)) / np.abs(mu)

    def info_bound(wt, power):
        terms = np.abs(X)[:, :, None] * np.abs(X)[:, None, :] * np.abs(wt)[:, None, None]
        rel = power * rel_mu + tt.TERM_ROUNDINGS * EPS64
        return 2 * tt.sum_rounding(terms) + 2 * np.einsum("i,ijk->jk", rel, terms)

    expected = _information(POISSON_ID, "expected")(scoring.params, *args)
    want = X.T @ ((1 / mu)[:, None] * X)
    assert np.all(np.abs(np.asarray(expected) - want) <= info_bound(1 / mu, 1))
    observed = _information(POISSON_ID)(scoring.params, *args)
    want = X.T @ ((y / mu**2)[:, None] * X)
    assert np.all(np.abs(np.asarray(observed) - want) <= info_bound(y / mu**2, 2))
    with pytest.raises(ValueError, match="curvature"):
        nllax.solvers.GaussNewton(curvature="fisher")


def test_gauss_newton_needs_a_likelihood():
    with pytest.raises(TypeError, match="Likelihood"):
        nllax.fit(lambda b: jnp.sum(b**2), jnp.ones(2), solver=nllax.solvers.GaussNewton())


def test_categorical_falls_back_to_the_exact_hessian(x64):
    # logits with an event axis: the NLL is not elementwise in them, the exact Hessian
    # is used, and the fit is the multinomial-logit MLE (gradient zero).
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 2))
    labels = rng.integers(0, 3, 120)
    lik = nllax.Likelihood(nllax.categorical, lambda W, X: {"logits": X @ W})
    r = nllax.fit(lik, jnp.zeros((2, 3)), jnp.asarray(labels), jnp.asarray(X))
    # the logits are identified up to a constant per row: the Hessian is singular, so
    # the stopping rule is the rejected-small-step one; the gradient is zero all the same
    g = jax.jit(jax.grad(lik.nll))(r.params, jnp.asarray(labels), jnp.asarray(X))
    # within fit's per-coordinate gradient test plus the gradient's rounding
    # (tt.fit_gradient_bound; the singular direction has |H_ii| > 0 all the same)
    g_max = tt.fit_gradient_bound(lik.nll, r.params, jnp.asarray(labels), jnp.asarray(X))
    assert float(jnp.max(jnp.abs(g))) <= g_max, (r.message, g, g_max)


# -------------------------------------------------------------------------- one pass


def _fixed_scale(p, X, Z):
    # three predicted parameters: one on the parameters' first block, one on the
    # second (a scalar broadcast), and a scale that does not depend on them at all
    return {"loc": X @ p["b"] + p["s"] * Z[:, 0], "scale": 1.5 + 0.0 * Z[:, 1]}


FIXED_SCALE = nllax.Likelihood(nllax.gaussian, _fixed_scale)


def test_affine_jacobian_without_the_identity_product(x64):
    # The predictor's Jacobian is read off its linearisation (X itself for X @ beta,
    # columns placed by the parameters' slices), exactly jax.jacfwd's; a predicted
    # parameter that does not depend on the parameters has none.
    X, rng = _design(20, 3, 7)
    Z = rng.standard_normal((20, 2))
    from jax.flatten_util import ravel_pytree

    x, unravel = ravel_pytree({"b": jnp.asarray([0.5, -1.0, 2.0]), "s": jnp.asarray(0.3)})
    flat = lambda x: FIXED_SCALE._predict_flat(x, unravel, (X, Z), (20,))  # noqa: E731
    # both in one compiled program (op by op, each primitive compiles on its own)
    (jac, u), ref = jax.jit(lambda x: (L._affine_jacobian(flat, x), jax.jacfwd(flat)(x)))(x)
    np.testing.assert_array_equal(jac["loc"], ref["loc"])
    assert jac["scale"] is None and not np.any(ref["scale"])
    # compiled: no (n, d) product with the identity, no dot at all for X @ beta's J
    hlo = jax.jit(lambda X, x: L._affine_jacobian(lambda x: {"a": X @ x}, x)[0]).lower(
        jnp.asarray(X), jnp.zeros(3)).compile().as_text()
    assert " dot(" not in hlo


@pytest.mark.parametrize("rows", [None, 16])
@pytest.mark.parametrize("lik", ["hetero", "fixed_scale", "poisson"])
def test_one_pass_evaluation_matches_the_direct_one(x64, monkeypatch, lik, rows):
    # The fit's evaluation of an affine predictor, u = u0 + J (x - x0) in blocks of rows
    # (16 here: 50 rows = 4 blocks, the last padded and masked), against the direct one
    # (the predictor called at x); with weights and a mask, k = 1 and 2 predicted
    # parameters and a constant one. Same sums in another order: a few eps relative.
    if rows is not None:
        monkeypatch.setattr(L, "_chunk_rows", lambda m, d: rows)
    n = 50
    X, rng = _design(n, 2, 11)
    Z = np.c_[np.ones(n), rng.standard_normal(n)]
    weights = jnp.asarray(rng.uniform(0.5, 2.0, n))
    where = jnp.asarray(rng.random(n) > 0.2)
    if lik == "hetero":
        lk, p0, p1 = HETERO, {"b": jnp.zeros(2), "c": jnp.zeros(2)}, {"b": jnp.asarray([1.0, 2.0]), "c": jnp.asarray([-0.3, 0.2])}
        y = rng.standard_normal(n)
        args = (jnp.asarray(y), jnp.asarray(X), jnp.asarray(Z))
    elif lik == "fixed_scale":
        lk, p0, p1 = FIXED_SCALE, {"b": jnp.zeros(2), "s": jnp.zeros(())}, {"b": jnp.asarray([1.0, 2.0]), "s": jnp.asarray(0.4)}
        args = (jnp.asarray(rng.standard_normal(n)), jnp.asarray(X), jnp.asarray(Z))
    else:
        lk, p0, p1 = POISSON, jnp.zeros(2), jnp.asarray([0.3, -0.2])
        args = (jnp.asarray(rng.poisson(1.0, n), float), jnp.asarray(X), jnp.zeros(n))
    from jax.flatten_util import ravel_pytree

    x0, unravel = ravel_pytree(p0)
    x1, _ = ravel_pytree(p1)
    rw = {"weights": weights, "where": where}
    plan = jax.jit(lambda x0, args, rw: lk.affine_plan(x0, unravel, args, **rw))(x0, args, rw)
    assert plan is not None
    if lik == "fixed_scale":
        assert list(plan["jac"]) == ["loc"]  # the constant scale has no Jacobian block
    # the two evaluations in one compiled program (op by op, every primitive of them
    # compiles on its own: ~120 compiles a case), the exact Hessian in another
    got, want = jax.jit(lambda x1, args, plan, rw: (
        lk.value_grad_curvature(x1, unravel, args, plan=plan),
        lk.value_grad_curvature(x1, unravel, args, **rw)))(x1, args, plan, rw)
    exact = _hessian(lk)(x1, unravel, args, **rw)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=64 * EPS64, atol=64 * EPS64 * np.max(np.abs(b)))
    np.testing.assert_allclose(got[2], exact, rtol=1e-12, atol=1e-12 * np.max(np.abs(exact)))


def test_expected_information_ignores_a_masked_observation(x64):
    # `where` is exactly indexing: an observation whose expected information is infinite
    # (rate 0 under the identity link: 1/rate) and is masked out contributes exactly 0,
    # not inf * 0 = NaN.
    X, rng = _design(20, 3, 5)
    X = np.abs(X) + 0.5
    y = rng.poisson(X @ np.array([1.0, 0.5, 0.5])).astype(float)
    X[7] = 0.0  # rate 0 here
    where = np.arange(20) != 7
    beta = jnp.asarray([1.0, 0.5, 0.5])
    info = _information(POISSON_ID, "expected")
    masked = info(beta, jnp.asarray(y), jnp.asarray(X), where=jnp.asarray(where))
    indexed = info(beta, jnp.asarray(y[where]), jnp.asarray(X[where]))
    # the same sums in the same order but for one exact zero term: a few eps
    np.testing.assert_allclose(masked, indexed, rtol=8 * 20 * EPS64)


def test_eager_calls_are_one_cached_program(x64):
    """Outside jit, information / value_grad_curvature / affine_plan run as one compiled
    program cached per Likelihood and static arguments (op by op: ~80 compiles a call).
    The program is the method itself under jit: the same value as a jit of it, to the
    bit (same computation, same compiler)."""
    from jax.flatten_util import ravel_pytree

    rng = np.random.default_rng(3)
    X = jnp.asarray(np.c_[np.ones(30), rng.standard_normal(30)])
    y = jnp.asarray(rng.poisson(1.0, 30), float)
    b = jnp.asarray([0.2, -0.1])
    x, unravel = ravel_pytree(b)
    from nllax import _eager_calls

    _eager_calls._program.cache_clear()
    twin = nllax.Likelihood(POISSON.family, POISSON.predictor)  # equal: one program
    for kind in ("observed", "expected"):
        got = POISSON.information(b, y, X, jnp.zeros(30), kind=kind)
        again = twin.information(b, y, X, jnp.zeros(30), kind=kind)
        want = jax.jit(functools.partial(POISSON.information, kind=kind))(b, y, X, jnp.zeros(30))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(again, want)
    f, g, h = POISSON.value_grad_curvature(x, unravel, (y, X, jnp.zeros(30)))
    np.testing.assert_array_equal(h, POISSON.information(b, y, X, jnp.zeros(30), kind="observed"))
    assert POISSON.affine_plan(x, unravel, (y, X, jnp.zeros(30)))["jac"]
    info = _eager_calls._program.cache_info()
    # two information programs (one per kind), hit by the twin and by the check of h; one
    # program each for value_grad_curvature and affine_plan
    assert (info.currsize, info.hits) == (4, 3), info
    with pytest.raises(ValueError, match="kind must be one of"):
        POISSON.information(b, y, X, jnp.zeros(30), kind="nope")
