"""Tests of nllax.fit: the compiled maximum-likelihood loop.

Reference values: closed forms (least squares via numpy.linalg.lstsq in float64, the
sample mean, the weighted median) and scipy (linprog for L1 regression).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _tolerances as tt
import nllax


def _gauss_nll(params, x, y):
    return nllax.gaussian.nll(y, x @ params["beta"], log_scale=params["log_sigma"])


def _logistic_nll(beta, x, y):
    return nllax.bernoulli.nll(y, logits=x @ beta)


def _linear_data(n=200, d=3, seed=0, scales=None, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if scales is not None:
        x = x * np.asarray(scales)
    beta = rng.normal(size=d) / (1.0 if scales is None else np.asarray(scales))
    y = x @ beta + 0.5 * rng.normal(size=n)
    return x.astype(dtype), y.astype(dtype)


def test_public_names():
    for name in ("fit", "FitResult", "FitStatus", "FitError"):
        assert name in nllax.__all__
        assert hasattr(nllax, name)
    assert int(nllax.FitStatus.CONVERGED) == 0
    assert "non-finite" in nllax.FitStatus.NONFINITE.message


def test_gaussian_mle_float64_pytree(x64):
    # theta-hat is the least-squares solution and sigma-hat^2 = SSE / n.
    x, y = _linear_data()
    beta_ls = np.linalg.lstsq(x, y, rcond=None)[0]
    sigma2 = np.sum((y - x @ beta_ls) ** 2) / len(y)
    p0 = {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}
    r = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y))
    assert r.params["beta"].dtype == jnp.float64
    assert bool(r.converged), r.message
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    # certified distance to the optimum: Newton step at the result + rounding floor
    q, floor = tt.fit_distance(_gauss_nll, r.params, xj, yj)
    np.testing.assert_allclose(r.params["beta"], beta_ls, rtol=0, atol=q + floor + tt.lstsq_error(x, y))
    # sigma^2 = exp(2 log s): twice log s's error, plus SSE's n-term rounding
    rel = 2 * (q + floor) + (len(y) + 2 * tt.TERM_ROUNDINGS) * tt.EPS64
    np.testing.assert_allclose(np.exp(2 * float(r.params["log_sigma"])), sigma2, rtol=rel)
    assert float(r.grad_norm) <= tt.fit_gradient_bound(_gauss_nll, r.params, xj, yj)


def test_float32_default():
    x, y = _linear_data(dtype=np.float32)
    beta_ls = np.linalg.lstsq(x.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    p0 = {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}
    r = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y))
    assert r.params["beta"].dtype == jnp.float32
    assert bool(r.converged), r.message
    # float32: the rounding floor of the residuals and of the gradient's sum over lambda_min
    # (tt.gaussian_linear_floor, 2-norm), twice (the fit's own gradient and the Newton
    # step's second order), plus fit's float32 tol**2 (|beta| + 1) and the reference's error
    tol32 = tt.EPS32 ** (2 / 3)
    atol = (2 * tt.gaussian_linear_floor(x, y, beta_ls, tt.EPS32)
            + tol32**2 * (np.max(np.abs(beta_ls)) + 1) + tt.lstsq_error(x.astype(np.float64), y))
    np.testing.assert_allclose(r.params["beta"], beta_ls, rtol=0, atol=atol)


def test_result_is_a_pytree_and_jittable():
    x, y = _linear_data(dtype=np.float32)

    @jax.jit
    def run(x, y):
        return nllax.fit(_gauss_nll, {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}, x, y)

    r = run(jnp.asarray(x), jnp.asarray(y))
    assert isinstance(r, nllax.FitResult)
    assert bool(r.converged)
    assert len(jax.tree_util.tree_leaves(r)) == 6  # 2 params leaves, value, grad_norm, steps, status


def test_no_retrace_on_second_call():
    # The objective's Python body runs only while tracing: count its calls.
    calls = []

    def nll(beta, x, y):
        calls.append(1)
        return _logistic_nll(beta, x, y)

    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(100, 4)), jnp.float32)
    y = jnp.asarray(rng.random(100) < 0.5, jnp.float32)
    r1 = nllax.fit(nll, jnp.zeros(4), x, y)
    traced = len(calls)
    assert traced > 0
    # new data, new start, other tol / max_steps: same compiled loop
    r2 = nllax.fit(nll, jnp.full(4, 0.1), x[::-1], y, tol=1e-4, max_steps=50)
    assert len(calls) == traced
    assert bool(r1.converged) and bool(r2.converged)
    # optax path too; a Python float start is the same as an array start
    opt = optax.adam(0.1)
    nllax.fit(nll, jnp.zeros(4), x, y, optimizer=opt, max_steps=20)
    traced = len(calls)
    nllax.fit(nll, jnp.ones(4), x, y, optimizer=opt, max_steps=30)
    assert len(calls) == traced


def test_learning_rate_change_does_not_retrace():
    calls = []

    def nll(beta, x, y):
        calls.append(1)
        return _logistic_nll(beta, x, y)

    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(50, 2)), jnp.float32)
    y = jnp.asarray(rng.random(50) < 0.5, jnp.float32)
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    r1 = nllax.fit(nll, jnp.zeros(2), x, y, optimizer=opt, max_steps=1, hyperparams={"learning_rate": 0.01})
    traced = len(calls)
    r2 = nllax.fit(nll, jnp.zeros(2), x, y, optimizer=opt, max_steps=1, hyperparams={"learning_rate": 0.02})
    assert len(calls) == traced
    # one gradient step from 0: twice the learning rate goes exactly twice as far
    ratio = np.asarray(r2.params) / np.asarray(r1.params)
    # float32(0.02) = 2 float32(0.01) exactly; each -lr g rounds once, the ratio once more
    np.testing.assert_allclose(ratio, 2.0, rtol=4 * tt.EPS32)
    with pytest.raises(TypeError, match="inject_hyperparams"):
        nllax.fit(nll, jnp.zeros(2), x, y, optimizer=optax.sgd(0.1), hyperparams={"learning_rate": 1.0})


@pytest.mark.parametrize("make_opt", [lambda: optax.lbfgs(), lambda: optax.adam(0.05)], ids=["lbfgs", "adam"])
def test_any_optax_optimizer(x64, make_opt):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-x @ np.array([1.0, -0.5, 0.25])))).astype(np.float64)
    x, y = jnp.asarray(x), jnp.asarray(y)
    ref = nllax.fit(_logistic_nll, jnp.zeros(3), x, y)
    assert bool(ref.converged)
    r = nllax.fit(_logistic_nll, jnp.zeros(3), x, y, optimizer=make_opt(), max_steps=5000, tol=1e-9)
    assert bool(r.converged), r.message
    # the optax gradient test (tol=1e-9) as a distance |g| / lambda_min; the reference
    # within its Newton step + rounding floor
    dist = tt.gradient_test_distance(_logistic_nll, r.value, jnp.zeros(3), ref.params, 1e-9, x, y)
    np.testing.assert_allclose(r.params, ref.params, rtol=0, atol=dist + sum(tt.fit_distance(_logistic_nll, ref.params, x, y)))


def test_badly_scaled_near_collinear_poor_start(x64):
    # Regressors on scales 1 to 1e5, two near-collinear columns, start far away. An
    # earlier fit stopped here with one scaled norm over all parameters, which the 1e5
    # column dominated (and a running-max scaling inflated by the poor start): it said
    # CONVERGED with dNLL/dlog(sigma) = -3.3e-6 and sigma-hat^2 off by 8e-9, and passed
    # on some machines by rounding luck. The test is now per parameter.
    rng = np.random.default_rng(4)
    n = 400
    z = rng.normal(size=(n, 4))
    x = np.c_[np.ones(n), z[:, 0], 1e2 * z[:, 1], 1e5 * z[:, 2], z[:, 0] + 1e-4 * z[:, 3]]
    beta = np.array([3.0, 1.0, -0.02, 4e-5, 0.5])
    y = x @ beta + rng.normal(size=n)
    # float64 reference by QR (numpy.linalg.lstsq uses an SVD; both are backward stable)
    q, r = np.linalg.qr(x)
    beta_ls = np.linalg.solve(r, q.T @ y)
    p0 = {"beta": jnp.full(5, 100.0), "log_sigma": jnp.array(5.0)}
    res = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y))
    assert bool(res.converged), res.message
    eps = np.finfo(np.float64).eps
    # beta: a backward-stable solve of a problem with cond(x) ~ 1e9 (computed here) agrees
    # to about cond(x) * eps relative; 10x for the two different algorithms
    np.testing.assert_allclose(res.params["beta"], beta_ls, rtol=10 * np.linalg.cond(x) * eps)
    # log sigma: the stopping rule promises |error| <= tol (|log s| + se), se = 1/sqrt(2n)
    # the marginal standard error (curvature 2n), tol = eps**(2/3); sigma^2 = exp(2 log s)
    # doubles it. The reference SSE = sum r^2 is exact to n * eps relative (the summation);
    # its dependence on beta is second order at the minimum.
    sse = np.sum((y - x @ beta_ls) ** 2)
    log_s = 0.5 * np.log(sse / n)
    rtol = 2 * eps ** (2 / 3) * (abs(log_s) + 1 / np.sqrt(2 * n)) + n * eps
    np.testing.assert_allclose(np.exp(2 * float(res.params["log_sigma"])), sse / n, rtol=rtol)
    # and the verified part of the test: the gradient per parameter, in units of its
    # curvature scale c_i = sqrt(H_ii), is below tol (c_i |theta_i| + 1) at the result
    from jax.flatten_util import ravel_pytree

    th, unravel = ravel_pytree(res.params)
    f = lambda t: _gauss_nll(unravel(t), jnp.asarray(x), jnp.asarray(y))  # noqa: E731
    # one compiled program (op by op, every primitive of the Hessian compiles on its own)
    g, hess = map(np.asarray, jax.jit(lambda t: (jax.grad(f)(t), jax.hessian(f)(t)))(th))
    c = np.sqrt(np.abs(np.diag(hess)))
    assert np.all(np.abs(g) / c <= eps ** (2 / 3) * (c * np.abs(np.asarray(th)) + 1)), g


def _irls_logistic(x, y, steps=50):
    # Independent float64 reference: Newton-Raphson / IRLS in NumPy.
    beta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ beta))
        hess = x.T @ (x * (p * (1 - p))[:, None])
        beta = beta + np.linalg.solve(hess, x.T @ (y - p))
    return beta


def test_logistic_poor_start_matches_irls(x64):
    rng = np.random.default_rng(5)
    x = np.c_[np.ones(500), rng.normal(size=(500, 3)) * np.array([1.0, 10.0, 0.1])]
    beta = np.array([0.5, -1.0, 0.1, 3.0])
    y = (rng.random(500) < 1 / (1 + np.exp(-x @ beta))).astype(np.float64)
    ref = _irls_logistic(x, y)
    res = nllax.fit(_logistic_nll, jnp.array([20.0, -20.0, 20.0, -20.0]), jnp.asarray(x), jnp.asarray(y))
    assert bool(res.converged), res.message
    # both certified by a Newton step + rounding floor at their own point
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    atol = sum(tt.fit_distance(_logistic_nll, res.params, xj, yj)) + sum(
        tt.fit_distance(_logistic_nll, jnp.asarray(ref), xj, yj))
    np.testing.assert_allclose(res.params, ref, rtol=0, atol=atol)


def test_mae_regression_matches_linprog(x64):
    # L1 regression (MAE): the Hessian is 0, the default still gets within 1e-3.
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    n, d = 200, 3
    x = np.c_[np.ones(n), rng.normal(size=(n, d - 1)) * np.array([1.0, 100.0])]
    y = x @ np.array([1.0, 2.0, -0.01]) + rng.laplace(size=n)
    # min sum(u + v) s.t. x b + u - v = y, u, v >= 0
    lp = scipy_optimize.linprog(
        np.r_[np.zeros(d), np.ones(2 * n)],
        A_eq=np.c_[x, np.eye(n), -np.eye(n)],
        b_eq=y,
        bounds=[(None, None)] * d + [(0, None)] * (2 * n),
    )
    assert lp.status == 0
    b_ref = lp.x[:d]
    f_ref = np.mean(np.abs(y - x @ b_ref))

    def mae(b, x, y):
        return nllax.losses.mae(y, x @ b)

    res = nllax.fit(mae, jnp.zeros(d), jnp.asarray(x), jnp.asarray(y))
    assert int(res.status) != nllax.FitStatus.NONFINITE
    # fit's non-smooth target, and the certificate: gap / sharpness (tt.l1_distance_bound)
    bound, star = tt.l1_distance_bound(x, y, np.asarray(res.params), b_ref)
    assert bound <= tt.NONSMOOTH_TARGET, bound
    np.testing.assert_allclose(res.params, star, atol=min(bound, tt.NONSMOOTH_TARGET), rtol=0)
    # never below the (exact) optimum, but for the rounding of the two means
    f_star = np.mean(np.abs(y - x @ star))
    rounding = (tt.l1_gap_rounding(x, y, np.asarray(res.params)) + tt.l1_gap_rounding(x, y, star)) / n
    assert -rounding <= float(res.value) - f_star

    # Laplace NLL with the scale learned jointly: same location, beta-hat = MAE.
    def laplace_nll(p, x, y):
        return nllax.laplace.nll(y, x @ p["b"], log_scale=p["log_b"])

    res = nllax.fit(laplace_nll, {"b": jnp.zeros(d), "log_b": jnp.array(0.0)}, jnp.asarray(x), jnp.asarray(y))
    bound, star = tt.l1_distance_bound(x, y, np.asarray(res.params["b"]), b_ref)
    assert bound <= tt.NONSMOOTH_TARGET, bound
    np.testing.assert_allclose(res.params["b"], star, atol=min(bound, tt.NONSMOOTH_TARGET), rtol=0)
    # log b to the same target (relative in b), plus the location's error carried into the
    # mean absolute residual: Lipschitz constant mean_i |x_i|_1 times the certified bound
    lip = np.mean(np.sum(np.abs(x), axis=1))
    np.testing.assert_allclose(np.exp(float(res.params["log_b"])), f_ref,
                               rtol=tt.NONSMOOTH_TARGET + lip * bound / f_ref)


def test_weighted_median_location(x64):
    # Location-only Laplace with weights: the MLE is the weighted median.
    rng = np.random.default_rng(6)
    y = rng.standard_t(3, size=101)
    w = rng.random(101)
    order = np.argsort(y)
    cw = np.cumsum(w[order])
    median = y[order][np.searchsorted(cw, 0.5 * cw[-1])]

    def nll(mu, y, w):
        return nllax.laplace.nll(y, mu, weights=w)

    res = nllax.fit(nll, jnp.array(10.0), jnp.asarray(y), jnp.asarray(w))
    # fit's non-smooth target, certified: weighted L1 (w |y - mu|) = L1 of (w y, w)
    bound, star = tt.l1_distance_bound(w[:, None], w * y, np.atleast_1d(float(res.params)), np.array([median]))
    assert bound <= tt.NONSMOOTH_TARGET, bound
    assert abs(float(res.params) - median) <= min(bound, tt.NONSMOOTH_TARGET)


def _nan_beyond_three(p, target):
    # NaN value with a finite gradient beyond p = 3 (jnp.where's untaken branch gives 0).
    return jnp.where(p[0] > 3.0, jnp.nan, jnp.sum((p - target) ** 2))


@pytest.mark.parametrize("optimizer", [None, optax.sgd(0.1)], ids=["newton", "sgd"])
def test_nan_value_with_finite_gradient_stops(optimizer):
    res = nllax.fit(_nan_beyond_three, jnp.zeros(1), jnp.array(5.0), optimizer=optimizer, max_steps=500)
    assert int(res.status) == nllax.FitStatus.NONFINITE, res.message
    assert np.isfinite(float(res.value))
    assert 0.0 < float(res.params[0]) <= 3.0
    # float32 (p - 5)^2 against float64 from the same p: a subtraction and a square
    np.testing.assert_allclose(float(res.value), (float(res.params[0]) - 5.0) ** 2, rtol=2 * tt.EPS32)
    with pytest.raises(nllax.FitError, match="NONFINITE"):
        nllax.fit(_nan_beyond_three, jnp.zeros(1), jnp.array(5.0), optimizer=optimizer, throw=True)


def test_divergence_returns_last_finite_params():
    # Gradient descent with a far too large step on p**4: the iterates overflow.
    def f(p):
        return jnp.sum(p**4)

    res = nllax.fit(f, jnp.array([1.0]), optimizer=optax.sgd(1.0), max_steps=100)
    assert int(res.status) == nllax.FitStatus.NONFINITE
    assert np.all(np.isfinite(res.params)) and np.isfinite(float(res.value))
    # the same float32 p**4 (at most 3 products) in two programs: 3 roundings each side
    np.testing.assert_allclose(float(res.value), float(f(res.params)), rtol=6 * tt.EPS32)


def test_nonfinite_start():
    res = nllax.fit(lambda p: jnp.sum(jnp.log(p)), jnp.array([-1.0]))
    assert int(res.status) == nllax.FitStatus.NONFINITE
    assert int(res.steps) == 0


def test_max_steps_and_throw():
    x, y = _linear_data(dtype=np.float32)
    p0 = {"beta": jnp.zeros(3), "log_sigma": jnp.array(3.0)}
    res = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y), max_steps=1)
    assert int(res.status) == nllax.FitStatus.MAX_STEPS and int(res.steps) == 1
    assert not bool(res.converged)
    assert "MAX_STEPS" in res.message
    with pytest.raises(nllax.FitError, match="MAX_STEPS"):
        nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y), max_steps=1, throw=True)
    # under jit the status is returned, not raised
    run = jax.jit(lambda x, y: nllax.fit(_gauss_nll, p0, x, y, max_steps=1, throw=True))
    assert int(run(jnp.asarray(x), jnp.asarray(y)).status) == nllax.FitStatus.MAX_STEPS


def test_bad_arguments():
    with pytest.raises(TypeError, match="params0"):
        nllax.fit(lambda p: jnp.sum(p), jnp.array([1, 2]))
    with pytest.raises(ValueError, match="scalar"):
        nllax.fit(lambda p: p**2, jnp.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="optimizer"):
        nllax.fit(lambda p: jnp.sum(p**2), jnp.ones(2), optimizer="adam")


def test_stochastic_minibatches(x64):
    rng = np.random.default_rng(7)
    n = 2000
    x = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ np.array([0.3, 1.0, -1.0])))).astype(np.float64)
    x, y = jnp.asarray(x), jnp.asarray(y)

    def mean_nll(beta, x, y):
        return nllax.bernoulli.nll(y, logits=x @ beta, reduction="mean")

    full = nllax.fit(mean_nll, jnp.zeros(3), x, y)
    opt = optax.adam(0.02)
    kw = {"optimizer": opt, "batch_size": 128, "epochs": 30}
    r1 = nllax.fit(mean_nll, jnp.zeros(3), x, y, key=jax.random.key(1), **kw)
    r2 = nllax.fit(mean_nll, jnp.zeros(3), x, y, key=jax.random.key(1), **kw)
    r3 = nllax.fit(mean_nll, jnp.zeros(3), x, y, key=jax.random.key(2), **kw)
    assert int(r1.steps) == 30 * (n // 128)
    np.testing.assert_array_equal(r1.params, r2.params)  # seeded
    assert not np.array_equal(r1.params, r3.params)
    # Adam with a constant step (0.02; its steps are bounded by about the step size)
    # ends in a minibatch-noise ball around the MLE: the requirement is that it lies
    # within the MLE's own statistical error, one standard error sqrt(diag H_sum^-1) of
    # the summed NLL (an optimiser error below that does not change the inference)
    H = jax.jit(jax.hessian(mean_nll))(full.params, x, y) * n  # compiled: not op by op
    se = np.sqrt(np.diag(np.linalg.inv(np.asarray(H))))
    np.testing.assert_array_less(np.abs(np.asarray(r1.params) - np.asarray(full.params)), se)
    # value and grad_norm are on the full data: the same mean of n terms, twice
    terms, _ = tt.row_terms(mean_nll, r1.params, x, y)
    np.testing.assert_allclose(float(r1.value), float(mean_nll(r1.params, x, y)),
                               rtol=2 * tt.sum_rounding(terms) / abs(np.sum(terms)))
    with pytest.raises(ValueError, match="leading|observation axis"):
        nllax.fit(mean_nll, jnp.zeros(3), x, y[:-1], batch_size=10)


def test_progress_bar_same_result(capsys):
    pytest.importorskip("tqdm")
    x, y = _linear_data(dtype=np.float32)
    p0 = {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}
    plain = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y))
    shown = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y), progress=True, progress_every=1)
    np.testing.assert_array_equal(plain.params["beta"], shown.params["beta"])
    assert "nllax.fit" in capsys.readouterr().err


def test_diverging_optax_run_is_not_converged():
    # The gradient test is relative to min(|f|, |f(start)|): an exploding value must not
    # make a large gradient look small (sgd(1e3) on a Gaussian mean jumps to mu ~ 1e3 * n).
    y = jnp.arange(8.0)

    def nll(mu, y):
        return nllax.gaussian.nll(y, mu)

    r = nllax.fit(nll, jnp.float32(0.0), y, optimizer=optax.sgd(1e3), max_steps=50)
    assert int(r.status) != nllax.FitStatus.CONVERGED, r


class _FixedStepDescent(nllax.solvers.Solver):
    """A user-written solver: gradient descent with a fixed step, through the shared loop."""

    def __init__(self, lr):
        self.lr = lr

    def init(self, fn, params, args, options, tol):
        value, grad = jax.value_and_grad(fn)(params, *args)
        return _GDState(value, grad)

    def step(self, fn, params, args, options, state, tol):
        params = params - self.lr * state.grad
        return params, _GDState(*jax.value_and_grad(fn)(params, *args))

    def terminate(self, fn, params, args, options, state, tol):
        return jnp.where(jnp.linalg.norm(state.grad) <= tol, 0, -1).astype(jnp.int32)


class _GDState(NamedTuple):
    value: jax.Array
    grad: jax.Array


def _quad(p, t):
    return jnp.sum((p - t) ** 2)


def test_solver_interface_custom_solver_and_aliases():
    t = jnp.asarray([1.0, -2.0])
    r = nllax.fit(_quad, jnp.zeros(2), t, solver=_FixedStepDescent(0.25), tol=1e-6)
    assert bool(r.converged), r.message
    # its test |g| <= 1e-6 with g = 2 (p - t): |p - t| <= 1e-6 / 2, plus float32 rounding
    # of p - t and the square (a few eps |t|)
    np.testing.assert_allclose(r.params, t, rtol=0, atol=1e-6 / 2 + 4 * tt.EPS32 * float(jnp.max(jnp.abs(t))))
    # the loop's bookkeeping applies to any solver: a step into NaN stops it
    bad = nllax.fit(lambda p: jnp.sum(jnp.log(p)), jnp.ones(1), solver=_FixedStepDescent(2.0))
    assert int(bad.status) == nllax.FitStatus.NONFINITE and bool(jnp.isfinite(bad.value))
    # optimizer= is an alias of solver= for optax transformations
    opt = optax.sgd(0.1)
    a = nllax.fit(_quad, jnp.zeros(2), t, optimizer=opt, max_steps=7)
    b = nllax.fit(_quad, jnp.zeros(2), t, solver=opt, max_steps=7)
    c = nllax.fit(_quad, jnp.zeros(2), t, solver=nllax.solvers.Optax(opt), max_steps=7)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.params, c.params)
    with pytest.raises(ValueError, match="not both"):
        nllax.fit(_quad, jnp.zeros(2), t, solver=opt, optimizer=opt)
    n = nllax.fit(_quad, jnp.zeros(2), t, solver=nllax.solvers.Newton())
    assert bool(n.converged) and int(n.steps) <= 3


def test_progress_bars_are_per_call():
    pytest.importorskip("tqdm")
    from nllax import _fit

    t = jnp.asarray([1.0, -2.0])
    nllax.fit(_quad, jnp.zeros(2), t, progress=True)
    assert _fit._BARS == {}  # nothing left behind in the module
