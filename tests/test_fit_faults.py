"""`nllax.fit` under faults: NaN gradients, NaN values, inf data, a diverging step size.

The documented contract (`nllax.fit` module docstring): on a non-finite value or
gradient the optax and stochastic loops stop and return the last parameters whose value
and gradient were finite, with status ``NONFINITE`` (a NaN value with finite gradients
counts); for the default damped Newton method a non-finite trial point is a rejected
step (it skips it), and the status is ``NONFINITE`` only when no finite step can be
found. In every case: never non-finite parameters when finite ones were seen, and the
returned ``value`` is the objective at the returned ``params``.

Faults are injected with two small `custom_jvp` functions, so that value and gradient
can be broken independently: beyond ``limit`` the first has a finite value (0) and a
NaN gradient, the second a NaN value and a finite gradient (0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nllax


@jax.custom_jvp
def nan_grad_beyond(x, limit):
    """0, with a NaN derivative where ``x > limit``."""
    return jnp.zeros_like(x)


@nan_grad_beyond.defjvp
def _nan_grad_jvp(primals, tangents):
    x, limit = primals
    dx, _ = tangents
    return nan_grad_beyond(x, limit), jnp.where(x > limit, jnp.nan, 0.0).astype(x.dtype) * dx


@jax.custom_jvp
def nan_value_beyond(x, limit):
    """NaN where ``x > limit`` (0 elsewhere), with a derivative of 0 everywhere."""
    return jnp.where(x > limit, jnp.nan, 0.0).astype(x.dtype)


@nan_value_beyond.defjvp
def _nan_value_jvp(primals, tangents):
    x, limit = primals
    dx, _ = tangents
    return nan_value_beyond(x, limit), jnp.zeros_like(dx)


# Module-level objectives: `fit` caches its compiled loop on the function object.
def quad_nan_grad(x, target, limit):
    return jnp.sum((x - target) ** 2) + jnp.sum(nan_grad_beyond(x, limit))


def quad_nan_value(x, target, limit):
    return jnp.sum((x - target) ** 2) + jnp.sum(nan_value_beyond(x, limit))


def gaussian_mean(mu, y):
    return nllax.gaussian.nll(y, mu)


def gaussian_mean_mean(mu, y):
    return nllax.gaussian.nll(y, mu, reduction="mean")


def tree_nan_grad(p, target, limit):
    # The fault is in one leaf only; the other leaf is a plain quadratic.
    return (jnp.sum((p["a"] - target) ** 2) + jnp.sum((p["b"] - target) ** 2)
            + jnp.sum(nan_grad_beyond(p["b"], limit)))


SGD = optax.sgd(0.1)
ADAM = optax.adam(0.3)
TARGET = jnp.asarray([3.0, 3.0], jnp.float32)
LIMIT = jnp.float32(1.0)
NONFINITE = int(nllax.FitStatus.NONFINITE)


def _finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(tree))


def _assert_consistent(result, objective, *args):
    """Finite params, and the reported value is the objective at those params."""
    assert _finite(result.params), result.params
    v = objective(result.params, *args)
    assert np.isfinite(float(result.value)), result.value
    # the same small sum of squares in two programs: a few roundings of each term, which
    # are all positive (no cancellation), on each side
    eps = float(jnp.finfo(jnp.asarray(result.value).dtype).eps)
    np.testing.assert_allclose(float(result.value), float(v), rtol=8 * eps)


def _sgd_iterates(x0, lr, steps):
    """Plain SGD on sum((x - 3)^2) from x0: x <- x - lr * 2 (x - 3) (by hand)."""
    xs = [np.float32(x0)]
    for _ in range(steps):
        xs.append(np.float32(xs[-1] - lr * 2 * (xs[-1] - 3.0)))
    return xs


@pytest.mark.parametrize("objective", [quad_nan_grad, quad_nan_value], ids=["nan_grad", "nan_value"])
def test_optax_stops_at_first_fault_with_last_finite_params(objective):
    # SGD(0.1) from 0: 0 -> 0.6 -> 1.08; the fault starts beyond 1, so the loop must stop
    # at 1.08 and give back 0.6 (the iterates by hand, `_sgd_iterates`).
    r = nllax.fit(objective, jnp.zeros(2), TARGET, LIMIT, optimizer=SGD)
    assert int(r.status) == NONFINITE, r.message
    assert "NONFINITE" in r.message
    assert not bool(r.converged)
    xs = _sgd_iterates(0.0, 0.1, 2)
    assert xs[-1] > 1.0 >= xs[-2]
    # one SGD step (xs[-2]): lr's rounding to float32, two products, a subtraction and
    # each side's final rounding: 4 eps32 relative
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(r.params, [xs[-2]] * 2, rtol=4 * eps32)
    _assert_consistent(r, objective, TARGET, LIMIT)
    # The gradient norm reported is that of the returned (finite) params: |2 (0.6 - 3)| * sqrt 2.
    # (float32: the params' 4 eps32, then 2 (x - 3), squares, sum, sqrt: 8 eps32 in all)
    np.testing.assert_allclose(float(r.grad_norm), 2 * (3 - xs[-2]) * np.sqrt(2), rtol=8 * eps32)


@pytest.mark.parametrize("objective", [quad_nan_grad, quad_nan_value], ids=["nan_grad", "nan_value"])
def test_adam_fault_gives_finite_params_and_says_so(objective):
    r = nllax.fit(objective, jnp.zeros(2), TARGET, LIMIT, optimizer=ADAM)
    assert int(r.status) == NONFINITE, r.message
    assert bool(jnp.all(r.params <= LIMIT))
    _assert_consistent(r, objective, TARGET, LIMIT)


def test_fault_in_one_leaf_of_a_pytree():
    p0 = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    r = nllax.fit(tree_nan_grad, p0, TARGET, LIMIT, optimizer=SGD)
    assert int(r.status) == NONFINITE, r.message
    # Both leaves are the iterate before the fault (the loop stops as a whole).
    xs = _sgd_iterates(0.0, 0.1, 2)
    eps32 = float(np.finfo(np.float32).eps)  # one SGD step: 4 eps32, as above
    np.testing.assert_allclose(r.params["a"], [xs[-2]] * 2, rtol=4 * eps32)
    np.testing.assert_allclose(r.params["b"], [xs[-2]] * 2, rtol=4 * eps32)
    _assert_consistent(r, tree_nan_grad, TARGET, LIMIT)


@pytest.mark.parametrize("objective", [quad_nan_grad, quad_nan_value], ids=["nan_grad", "nan_value"])
def test_newton_skips_faulty_trial_points(objective):
    # The default method treats a non-finite trial point as a rejected step: it never
    # moves into the faulty region and returns finite params and value.
    r = nllax.fit(objective, jnp.zeros(2), TARGET, LIMIT)
    assert bool(jnp.all(r.params <= LIMIT)), r.params
    _assert_consistent(r, objective, TARGET, LIMIT)


@pytest.mark.parametrize("objective", [quad_nan_grad, quad_nan_value], ids=["nan_grad", "nan_value"])
def test_newton_status_says_it_was_blocked_by_faults(objective):
    # Blocked at the edge x = 1 of the faulty region, where the true gradient is
    # 2 * (1 - 3) per coordinate (norm 5.66): that is not convergence, and the status must
    # say that the fit was stopped by non-finite values (an earlier fit version said
    # CONVERGED here).
    r = nllax.fit(objective, jnp.zeros(2), TARGET, LIMIT)
    assert int(r.status) == NONFINITE, (r.message, r.grad_norm)
    assert not bool(r.converged)
    # How close to the edge: every finite trial step is accepted (the objective is an
    # exact quadratic, so its decrease is the predicted one) unless that decrease is at
    # rounding level, <= 1e3 eps |f| (the solver's `measurable`, src/nllax/_solvers.py);
    # a coordinate delta short of the edge leaves a step of decrease |g_i| delta, so delta
    # <= 1e3 eps32 |f| / min_i |g_i| at x = (1, 1): f = 8, g_i = -4, i.e. 2.4e-4.
    eps32 = float(np.finfo(np.float32).eps)
    delta = 1e3 * eps32 * 8.0 / 4.0
    np.testing.assert_allclose(r.params, [1.0, 1.0], rtol=0, atol=delta)
    # |g| = 2 sqrt(2) (3 - x): moves by 2 sqrt(2) delta (relative delta / 2), plus the 8
    # eps32 of the norm's float32 evaluation (as above)
    np.testing.assert_allclose(float(r.grad_norm), 4 * np.sqrt(2), rtol=delta / 2 + 8 * eps32)


INF_DATA = jnp.asarray([1.0, jnp.inf, 2.0, 0.5], jnp.float32)
NAN_DATA = jnp.asarray([1.0, jnp.nan, 2.0, 0.5], jnp.float32)


@pytest.mark.parametrize("optimizer", [None, SGD], ids=["newton", "sgd"])
@pytest.mark.parametrize("y", [INF_DATA, NAN_DATA], ids=["inf", "nan"])
def test_non_finite_data_stops_at_once_with_params0(optimizer, y):
    # Nothing finite is ever seen after params0: the fit returns params0 itself.
    p0 = jnp.float32(0.25)
    r = nllax.fit(gaussian_mean, p0, y, optimizer=optimizer)
    assert int(r.status) == NONFINITE, r.message
    assert int(r.steps) == 0
    assert float(r.params) == float(p0)
    assert not np.isfinite(float(r.value))  # the objective at params0 is itself not finite


def test_non_finite_data_in_one_minibatch():
    # Stochastic mode: the faulty row is met in some minibatch; the loop stops there
    # with finite parameters (those before the faulty minibatch).
    y = jnp.concatenate([jnp.linspace(0.0, 2.0, 15), jnp.asarray([jnp.inf])]).astype(jnp.float32)
    r = nllax.fit(gaussian_mean_mean, jnp.float32(0.0), y, optimizer=SGD, batch_size=4,
                  epochs=3)
    assert int(r.status) == NONFINITE, r.message
    assert _finite(r.params)
    assert np.isfinite(float(gaussian_mean_mean(r.params, y[:-1])))


def test_non_finite_params0():
    r = nllax.fit(gaussian_mean, jnp.float32(jnp.nan), jnp.ones(3), optimizer=SGD)
    assert int(r.status) == NONFINITE, r.message
    assert int(r.steps) == 0


DIVERGE_Y = jnp.asarray([1.0, 5.0, 2.0], jnp.float32)
# one optimizer object for the three diverging runs: fit's compiled loop is cached on its
# identity (an optax.sgd(1e3) per test compiled the same loop three times)
DIVERGE = optax.sgd(1e3)


def test_diverging_learning_rate_returns_last_finite_params():
    # SGD(1e3) on the Gaussian NLL (curvature 3) multiplies the error by about -3000 per
    # step: float32 overflows after a dozen steps. With tol=0 only the fault can stop it.
    r = nllax.fit(gaussian_mean, jnp.float32(0.0), DIVERGE_Y, optimizer=DIVERGE, tol=0.0)
    assert int(r.status) == NONFINITE, r.message
    assert int(r.steps) > 3
    _assert_consistent(r, gaussian_mean, DIVERGE_Y)
    assert abs(float(r.params)) > 1e10  # it did diverge, and the last finite point is kept


def test_diverging_learning_rate_is_never_finite_garbage():
    # Whatever the status, the returned params are finite and the value is theirs.
    r = nllax.fit(gaussian_mean, jnp.float32(0.0), DIVERGE_Y, optimizer=DIVERGE)
    _assert_consistent(r, gaussian_mean, DIVERGE_Y)


def test_diverging_learning_rate_is_not_reported_converged():
    # An earlier fit tested |g| <= tol * max(1, |f|) at the current point, so a run whose
    # value exploded passed it: sgd(1e3) said CONVERGED after 1 step at mu = 8000
    # (value 9.6e7). Now it must run into the overflow and say NONFINITE.
    r = nllax.fit(gaussian_mean, jnp.float32(0.0), DIVERGE_Y, optimizer=DIVERGE)
    assert int(r.status) == NONFINITE, (r.message, r.params, r.value, r.grad_norm)
    _assert_consistent(r, gaussian_mean, DIVERGE_Y)


def test_throw_raises_on_fault():
    with pytest.raises(nllax.FitError, match="NONFINITE"):
        nllax.fit(gaussian_mean, jnp.float32(0.0), INF_DATA, optimizer=SGD, throw=True)


def test_fault_handling_in_float64(x64):
    target = jnp.asarray([3.0, 3.0], jnp.float64)
    r = nllax.fit(quad_nan_grad, jnp.zeros(2, jnp.float64), target, 1.0, optimizer=SGD)
    assert int(r.status) == NONFINITE
    assert r.params.dtype == jnp.float64
    # one SGD step in float64: 4 eps64 (lr, two products, the subtraction)
    np.testing.assert_allclose(r.params, [0.6, 0.6], rtol=4 * float(np.finfo(np.float64).eps))
    _assert_consistent(r, quad_nan_grad, target, 1.0)


def test_fault_under_jit():
    # fit inside a user's jit: the status is returned as an array, nothing raises.
    run = jax.jit(lambda y: nllax.fit(gaussian_mean, jnp.float32(0.0), y, optimizer=SGD))
    r = run(INF_DATA)
    assert int(r.status) == NONFINITE
    assert float(r.params) == 0.0
