"""nllax.solvers.TrustRegion: the trust-region subproblem, the default-solver rule, fits.

The NIST StRD problems (tests/test_nist.py, bench/NIST.md) are its main end-to-end check.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax
from nllax._fit import _choose_solver, _Objective
from nllax._trust import _subproblem, _TrustState

EPS64 = float(np.finfo(np.float64).eps)


def _kkt(h, g, p, lam):
    """Residual of the trust-region optimality conditions (Moré & Sorensen 1983): p is a
    global minimiser of g.p + p.h.p/2 over ||p|| <= ||p|| iff (h + lam I) p = -g with
    lam >= 0 and h + lam I positive semi-definite."""
    n = len(g)
    a = h + lam * np.eye(n)
    return np.linalg.norm(a @ p + g), np.linalg.eigvalsh(a)[0]


@pytest.mark.parametrize("shift", [0.5, -0.7], ids=["definite", "indefinite"])
def test_subproblem_meets_the_optimality_conditions_on_the_boundary(x64, shift):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    e = np.array([0.0, 0.3, 1.0, 2.0]) + shift  # eigenvalues; the second case has e_min < 0
    h = q @ np.diag(e) @ q.T
    g = rng.normal(size=4)
    delta = 0.1 * np.linalg.norm(g) / np.max(np.abs(e))  # well inside ||H^{-1} g||
    p, lam = (np.asarray(v) for v in _subproblem(jnp.asarray(h), jnp.asarray(g), delta))
    # on the boundary to within the 10% that the solver asks for
    assert abs(np.linalg.norm(p) - delta) <= 0.1 * delta
    assert lam >= max(0.0, -e[0])
    res, emin = _kkt(h, g, p, float(lam))
    # p = -V (e + lam)^{-1} V'g is computed from the eigendecomposition: backward error a
    # few eps times ||h|| ||p|| + ||g|| (4 x 4, well separated shifted eigenvalues)
    assert res <= 100 * EPS64 * (np.linalg.norm(h, 2) * np.linalg.norm(p) + np.linalg.norm(g))
    assert emin >= -100 * EPS64 * np.linalg.norm(h, 2)


def test_subproblem_interior_step_is_the_newton_step(x64):
    h = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([1.0, -1.0])
    newton = -np.linalg.solve(h, g)
    p, lam = _subproblem(jnp.asarray(h), jnp.asarray(g), 10.0 * np.linalg.norm(newton))
    assert float(lam) == 0.0
    # eigendecomposition vs LU solve of a 2 x 2 matrix of condition ~3: a few eps
    atol = 100 * EPS64 * np.linalg.norm(newton)
    np.testing.assert_allclose(np.asarray(p), newton, rtol=0, atol=atol)


def test_subproblem_hard_case_reaches_the_boundary(x64):
    # the gradient is orthogonal to the eigenvector of the negative eigenvalue: the
    # solution has lam = -e_min = 1 and p = (+-sqrt(delta^2 - 1/9), -1/3)
    h = np.diag([-1.0, 2.0])
    g = np.array([0.0, 1.0])
    delta = 2.0
    p, lam = (np.asarray(v) for v in _subproblem(jnp.asarray(h), jnp.asarray(g), delta))
    np.testing.assert_allclose(lam, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p[1], -1.0 / 3.0, rtol=1e-12)
    np.testing.assert_allclose(abs(p[0]), np.sqrt(delta**2 - 1.0 / 9.0), rtol=1e-12)


# -- the default-solver rule


def _iteration(lik, params, *args):
    """The state type the default solver's init builds for this fit (at trace time)."""
    solver = _choose_solver(lik.nll, None, None, None)
    assert isinstance(solver, nllax.solvers.TrustRegion)
    fn = _Objective(lik.nll, jnp.result_type(params))
    return type(jax.eval_shape(lambda b: solver.init(fn, b, args, {}, 1e-6), params))

_EXP = nllax.Likelihood(nllax.gaussian, lambda b, x: {"loc": b[0] * jnp.exp(-b[1] * x)})
_POIS = nllax.Likelihood(nllax.poisson, lambda b, x: {"log_rate": b[0] + b[1] * x})


def _exp_data():
    x = np.linspace(0.0, 4.0, 20)
    noise = 0.01 * np.sin(7.0 * x)  # deterministic, not white: the fit has residuals
    return jnp.asarray(2.0 * np.exp(-0.7 * x) + noise), jnp.asarray(x)


def test_default_for_a_nonlinear_predictor_is_the_trust_region(x64):
    y, x = _exp_data()
    b0 = jnp.array([1.0, 0.1])
    assert _iteration(_EXP, b0, y, x) is _TrustState
    default = nllax.fit(_EXP, b0, y, x)
    trust = nllax.fit(_EXP, b0, y, x, solver=nllax.solvers.TrustRegion())
    assert bool(default.converged)
    assert int(default.steps) == int(trust.steps)
    np.testing.assert_array_equal(np.asarray(default.params), np.asarray(trust.params))
    # the same minimiser as the damped Gauss-Newton iteration: both stop within
    # tol = eps**(2/3) (relative, per parameter) of it; 1e-8 leaves room for the
    # conditioning of J'J here (< 1e2)
    damped = nllax.fit(_EXP, b0, y, x, solver=nllax.solvers.GaussNewton())
    np.testing.assert_allclose(np.asarray(default.params), np.asarray(damped.params), rtol=1e-8)


def test_affine_predictor_keeps_the_damped_gauss_newton_iteration(x64):
    x = jnp.linspace(-1.0, 1.0, 30)
    y = jnp.round(jnp.exp(0.3 + 0.8 * x) + 0.4 * jnp.cos(5 * x))
    b0 = jnp.zeros(2)
    assert _iteration(_POIS, b0, y, x) is not _TrustState  # GaussNewton's damped state
    default = nllax.fit(_POIS, b0, y, x)
    damped = nllax.fit(_POIS, b0, y, x, solver=nllax.solvers.GaussNewton())
    assert bool(default.converged)
    assert int(default.steps) == int(damped.steps)  # the very same iteration
    np.testing.assert_array_equal(np.asarray(default.params), np.asarray(damped.params))
    # forced onto the trust region, the GLM reaches the same MLE (within tol each)
    trust = nllax.fit(_POIS, b0, y, x, solver=nllax.solvers.TrustRegion(trust_affine=True))
    assert bool(trust.converged)
    np.testing.assert_allclose(np.asarray(trust.params), np.asarray(damped.params), rtol=1e-8)


def test_glm_loop_invariants_travel_in_the_state(x64):
    # TrustRegion.init computes GaussNewton's loop invariants (the affine plan) once and
    # hands them to the damped iteration in its state, not through module-level storage
    from nllax import _solvers as S
    from nllax import _trust

    x = jnp.linspace(-1.0, 1.0, 30)
    y = jnp.round(jnp.exp(0.3 + 0.8 * x))
    solver = nllax.solvers.TrustRegion()
    fn = _Objective(_POIS.nll, jnp.float64)
    state = jax.eval_shape(lambda b: solver.init(fn, b, (y, x), {}, 1e-6), jnp.zeros(2))
    assert type(state) is S._DampedState and "plan" in state.extra
    assert not hasattr(_trust, "_PREPARED")


# log(b1) is NaN for b1 < 0. One object for the two tests below: fit's compiled loop is
# cached on it (a Likelihood per test compiled the same loop twice).
_LOG_B1 = nllax.Likelihood(nllax.gaussian, lambda b, x: {"loc": jnp.log(b[1]) + b[0] * x})


def test_non_finite_trial_points_are_rejected(x64):
    # the region's first step from b1 = 0.05 can cross zero, and a NaN trial point must
    # only shrink the region
    x = jnp.linspace(0.0, 1.0, 10)
    y = jnp.log(3.0) + 2.0 * x
    r = nllax.fit(_LOG_B1, jnp.array([0.0, 0.05]), y, x)
    assert bool(r.converged)
    # exact data: the MLE is (2, 3); tol = eps**(2/3) = 3.7e-11 relative per parameter
    np.testing.assert_allclose(np.asarray(r.params), [2.0, 3.0], rtol=1e-9)


def test_non_finite_start_is_reported(x64):
    x = jnp.linspace(0.0, 1.0, 10)
    r = nllax.fit(_LOG_B1, jnp.array([0.0, -1.0]), x, x)
    assert int(r.status) == nllax.FitStatus.NONFINITE


def test_trust_region_runs_under_jit_and_vmap(x64):
    y, x = _exp_data()
    b0 = jnp.array([[1.0, 0.1], [3.0, 1.5]])
    fit = jax.jit(jax.vmap(lambda b: nllax.fit(_EXP, b, y, x).params))
    out = np.asarray(fit(b0))
    ref = np.asarray(nllax.fit(_EXP, b0[0], y, x).params)
    # both starts converge to the same minimiser, each within tol = 3.7e-11 relative
    np.testing.assert_allclose(out, np.stack([ref, ref]), rtol=1e-8)


# -- plain callables: the same trust region on the exact Hessian (an option)


def _half_sse(b, x, y):
    return 0.5 * jnp.sum(jnp.square(y - b[0] * jnp.exp(-b[1] * x)))


def test_default_for_a_callable_stays_damped_newton():
    # the exact-Hessian trust region loses NIST starts that Newton reaches (bench/NIST.md)
    assert type(_choose_solver(_half_sse, None, None, None)) is nllax.solvers.Newton


def test_callable_objective_runs_the_exact_hessian_trust_region(x64):
    y, x = _exp_data()
    b0 = jnp.array([1.0, 0.1])
    solver = nllax.solvers.TrustRegion()
    fn = _Objective(_half_sse, jnp.float64)
    state = jax.eval_shape(lambda b: solver.init(fn, b, (x, y), {}, 1e-6), b0)
    assert type(state) is _TrustState and state.extra is None
    trust = nllax.fit(_half_sse, b0, x, y, solver=solver)
    newton = nllax.fit(_half_sse, b0, x, y)
    assert bool(trust.converged) and bool(newton.converged)
    # both stop within tol = eps**(2/3) = 3.7e-11 (relative, per parameter) of the same
    # minimiser; 1e-8 leaves room for the Hessian's conditioning here (< 1e2)
    np.testing.assert_allclose(np.asarray(trust.params), np.asarray(newton.params), rtol=1e-8)
    # the same minimiser as the likelihood form (Gauss-Newton curvature, same NLL up to a
    # constant)
    lik = nllax.fit(_EXP, b0, y, x)
    np.testing.assert_allclose(np.asarray(trust.params), np.asarray(lik.params), rtol=1e-8)


def test_exact_hessian_trust_region_leaves_a_saddle(x64):
    # f = x^4/4 - x^2/2 + y^2/2 from (0, 1): the gradient (0, 1) is orthogonal to the
    # Hessian's negative-curvature direction (the hard case), so a step that only damps
    # stays on x = 0 (the damped Newton default ends there at MAX_STEPS, y ~ 1e-90); the
    # trust region adds that direction and reaches a minimum (+-1, 0), f = -1/4
    def f(z):
        return 0.25 * z[0] ** 4 - 0.5 * z[0] ** 2 + 0.5 * z[1] ** 2

    r = nllax.fit(f, jnp.array([0.0, 1.0]), solver=nllax.solvers.TrustRegion())
    assert bool(r.converged)
    # converged per parameter to tol = 3.7e-11 (|q_i| <= tol (|z_i| + 1/c_i), c ~ 1 at
    # the minimum, where the Hessian is diag(2, 1)); 1e-9 leaves a margin for the last
    # Newton step's rounding
    np.testing.assert_allclose(np.abs(np.asarray(r.params)), [1.0, 0.0], rtol=0, atol=1e-9)
    assert float(r.value) == pytest.approx(-0.25, abs=1e-15)  # |f + 1/4| ~ |dz|^2 ~ 1e-18
