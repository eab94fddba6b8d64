"""nllax.objectives: beta-NLL and the faithful objective, by their exact gradients.

References are closed forms written out here (Seitzer et al. 2022, Stirn et al. 2023):
the per-observation gradients of the sum reduction are

* beta_nll:  d/dloc = (loc - y) var^(beta - 1),  d/dvar = var^beta (1/(2 var) - r^2/(2 var^2));
* faithful:  d/dloc = 2 (loc - y) (the SSE's),   d/dvar = 1/(2 var) - r^2/(2 var^2) (the NLL's),

evaluated in float64 NumPy. Tolerance: each gradient is a handful of float32 operations
(a subtraction, a division, a power), each rounding by u = 2^-24 relative, and the
autodiff and closed form need not round alike: 64 u on the relative error, with
|r| and var kept away from cancellation (|r| >= 0.1, var in [0.25, 4]).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax
from nllax import objectives as O

N = 12
RTOL = 64 * 2.0**-24  # see the module docstring


def _data(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=N)
    loc = y + rng.choice([-1.0, 1.0], size=N) * rng.uniform(0.1, 2.0, size=N)
    var = rng.uniform(0.25, 4.0, size=N)
    return (jnp.asarray(y, jnp.float32), jnp.asarray(loc, jnp.float32),
            jnp.asarray(var, jnp.float32))


def _grads(f, y, loc, var, **kw):
    return jax.grad(lambda m, v: f(y, m, v, **kw), argnums=(0, 1))(loc, var)


def _f64(*xs):
    return [np.asarray(x, np.float64) for x in xs]


def _assert_rel(got, want, rtol=RTOL):
    got = np.asarray(got, np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


@pytest.mark.parametrize("beta", [0.0, 0.25, 0.5, 1.0])
def test_beta_nll_gradients_are_the_closed_form(beta):
    y, loc, var = _data()
    gm, gv = jax.jit(lambda m, v: _grads(O.beta_nll, y, m, v, beta=beta))(loc, var)
    Y, M, V = _f64(y, loc, var)
    r = Y - M
    _assert_rel(gm, (M - Y) * V ** (beta - 1.0))
    _assert_rel(gv, V**beta * (0.5 / V - 0.5 * r * r / V**2))


@pytest.mark.parametrize("beta", [0.25, 1.0])
def test_beta_nll_value_is_the_weighted_nll(beta):
    y, loc, var = _data(1)
    Y, M, V = _f64(y, loc, var)
    nll = 0.5 * (Y - M) ** 2 / V + 0.5 * np.log(2 * np.pi * V)
    # the value: float32 rounding of a sum of N terms, relative to the sum of |terms|
    got = O.beta_nll(y, loc, var, beta=beta, reduction="none")
    _assert_rel(got, V**beta * nll)
    total = float(O.beta_nll(y, loc, var, beta=beta))
    assert abs(total - np.sum(V**beta * nll)) <= N * RTOL * np.sum(np.abs(V**beta * nll))


def test_beta_zero_is_the_gaussian_nll_value_and_gradient():
    y, loc, var = _data(2)
    f = lambda m, v: O.beta_nll(y, m, v, beta=0.0)  # noqa: E731
    g = lambda m, v: nllax.gaussian.nll(y, m, var=v)  # noqa: E731
    # beta = 0 runs the Gaussian family's own terms: the same operations, the same bits
    assert float(f(loc, var)) == float(g(loc, var))
    for a, b in zip(jax.grad(f, (0, 1))(loc, var), jax.grad(g, (0, 1))(loc, var)):
        np.testing.assert_array_equal(a, b)


def test_beta_nll_mean_reduction_divides_by_the_count_and_where_is_indexing():
    y, loc, var = _data(3)
    keep = jnp.arange(N) % 3 != 0
    masked = O.beta_nll(y, loc, var, reduction="mean", where=keep)
    idx = np.asarray(keep)
    indexed = O.beta_nll(y[idx], loc[idx], var[idx], reduction="mean")
    np.testing.assert_allclose(masked, indexed, rtol=N * RTOL)
    w = jnp.linspace(0.5, 2.0, N)
    weighted = O.beta_nll(y, loc, var, weights=w)
    np.testing.assert_allclose(
        weighted, jnp.sum(w * O.beta_nll(y, loc, var, reduction="none")), rtol=N * RTOL)


def test_faithful_gradients_are_the_mse_for_loc_and_the_nll_for_var():
    y, loc, var = _data(4)
    gm, gv = jax.jit(lambda m, v: _grads(O.faithful, y, m, v))(loc, var)
    sse_m = jax.grad(lambda m: nllax.losses.sse(y, m))(loc)
    nll_v = jax.grad(lambda v: nllax.gaussian.nll(y, loc, var=v))(var)
    _assert_rel(gm, np.asarray(sse_m, np.float64))
    _assert_rel(gv, np.asarray(nll_v, np.float64))
    Y, M, V = _f64(y, loc, var)
    _assert_rel(gm, 2.0 * (M - Y))
    _assert_rel(gv, 0.5 / V - 0.5 * (Y - M) ** 2 / V**2)
    # with reduction="mean" the loc gradient is the MSE's
    gm_mean = jax.grad(lambda m: O.faithful(y, m, var, reduction="mean"))(loc)
    _assert_rel(gm_mean, np.asarray(jax.grad(lambda m: nllax.losses.mse(y, m))(loc)))


def test_faithful_value():
    y, loc, var = _data(5)
    Y, M, V = _f64(y, loc, var)
    want = (Y - M) ** 2 + 0.5 * (Y - M) ** 2 / V + 0.5 * np.log(2 * np.pi * V)
    _assert_rel(O.faithful(y, loc, var, reduction="none"), want)


@pytest.mark.parametrize("objective", [O.beta_nll, O.faithful])
def test_bad_variance_gives_nan_value_and_gradient(objective):
    y, loc, var = _data(6)
    for bad in (0.0, -1.0, np.nan):
        v = var.at[3].set(bad)
        assert np.isnan(float(objective(y, loc, v)))
        gm, gv = _grads(objective, y, loc, v)
        assert np.isnan(np.asarray(gm)).any() and np.isnan(np.asarray(gv)).any()
        per_obs = np.asarray(objective(y, loc, v, reduction="none"))
        assert np.isnan(per_obs[3]) and np.isfinite(np.delete(per_obs, 3)).all()
    # a masked invalid variance is ignored, as if indexed away
    v = var.at[3].set(-1.0)
    keep = jnp.arange(N) != 3
    assert np.isfinite(float(objective(y, loc, v, where=keep)))
    f = nllax.checked(lambda y, m, v: objective(y, m, v))
    with pytest.raises(Exception, match="`var` must be > 0"):
        f(y, loc, v)


@pytest.mark.parametrize("objective", [O.beta_nll, O.faithful])
def test_bad_shapes_and_options_raise(objective):
    y, loc, var = _data(7)
    with pytest.raises(ValueError, match="loc"):
        objective(y, loc[:, None], var)
    with pytest.raises(ValueError, match="var"):
        objective(y, loc, var[:, None])
    with pytest.raises(ValueError, match="reduction"):
        objective(y, loc, var, reduction="max")
    with pytest.raises(TypeError):
        objective(y, loc)  # var is required


def test_beta_must_be_a_number_in_the_unit_interval():
    y, loc, var = _data(8)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            O.beta_nll(y, loc, var, beta=bad)
    with pytest.raises(TypeError, match="beta"):
        O.beta_nll(y, loc, var, beta=jnp.asarray(0.5))


def test_exported():
    assert nllax.objectives is O and "objectives" in nllax.__all__
    assert O.beta_nll.__name__ == "beta_nll" and "NOT" in O.__doc__.upper()
