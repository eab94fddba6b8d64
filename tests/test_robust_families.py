"""Extremes of the Student-t, Cauchy and log-normal families and the MSLE loss, beyond
what the registry harness samples: df from 1e-3 to 1e8 (and infinity) with scales
1e-30..1e30 in float32 and float64, the CDFs where the probability is below the smallest
float32, the df-derivatives, and the MSLE against Keras' and scikit-learn's definitions."""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from scipy import special, stats

import nllax
from cases.student_t import CASE as T_CASE
from cases.student_t import t_logpdf_decimal

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)

DFS = [1e-3, 1.0, 30.0, 1e4, 1e8]
SCALES = [1e-30, 1.0, 1e30]
ZS = [-1e3, -3.0, 0.0, 0.5, 40.0]


def _grid():
    rows = list(itertools.product(DFS, SCALES, ZS))
    df = np.array([r[0] for r in rows])
    scale = np.array([r[1] for r in rows])
    loc = np.full(len(rows), 0.25)
    y = loc + scale * np.array([r[2] for r in rows])
    return y, loc, scale, df


def test_decimal_reference_agrees_with_scipy_where_scipy_is_exact():
    # scipy.stats.t loses digits to lgamma differences at large df; below df = 100 both
    # are exact to rounding (|lgamma| < 150: 150 eps absolute at most)
    rng = np.random.default_rng(0)
    df = np.array([1e-3, 0.3, 1.0, 2.5, 7.0, 30.0, 99.0])
    y = rng.normal(size=df.size) * 5
    got = t_logpdf_decimal(y, 0.2, 1.3, df)
    want = stats.t.logpdf(y, df, 0.2, 1.3)
    err = np.abs(got - want) / (1 + np.abs(want))
    assert np.max(err) <= 300 * EPS64, np.max(err)


def test_student_t_extremes_float64(x64):
    y, loc, scale, df = _grid()
    want = t_logpdf_decimal(y, loc, scale, df)
    f = jax.jit(lambda y, loc, s, d, ld: (nllax.student_t.log_prob(y, loc, s, df=d),
                                          nllax.student_t.log_prob(y, loc, s, log_df=ld)))
    for got in f(y, loc, scale, df, np.log(df)):
        # a few roundings of terms no larger than the result (and log df rounded: its
        # error moves log p by |d log p / d log df| eps <= |log p| eps): 16 eps
        err = np.abs(np.asarray(got) - want) / T_CASE.magnitude(y, loc, scale, df)
        assert np.max(err) <= 16 * EPS64, np.max(err) / EPS64


@pytest.mark.parametrize("param", ["df", "log_df"])
def test_student_t_extremes_float32(param):
    y, loc, scale, df = _grid()
    p = df if param == "df" else np.log(df)
    y32, loc32, s32, p32 = (np.asarray(v, np.float32) for v in (y, loc, scale, p))
    got = np.asarray(nllax.student_t.log_prob(y32, loc32, s32, **{param: p32}), np.float64)
    d = p32.astype(np.float64) if param == "df" else np.exp(p32.astype(np.float64))
    args = (y32.astype(np.float64), loc32.astype(np.float64), s32.astype(np.float64), d)
    want = t_logpdf_decimal(*args)
    err = np.abs(got - want) / (EPS32 * T_CASE.magnitude(*args))
    assert np.max(err) <= T_CASE.f32_ulps, (T_CASE.f32_why, np.max(err))


def test_student_t_infinite_df_is_the_gaussian():
    # log_df = 100 overflows to df = inf in float32: exactly the Gaussian density
    y = jnp.asarray([-3.0, 0.0, 0.7, 25.0], jnp.float32)
    got = nllax.student_t.log_prob(y, 0.5, 2.0, log_df=jnp.float32(100.0))
    want = nllax.gaussian.log_prob(y, 0.5, 2.0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2 * EPS32)
    # compiled (op by op, every primitive of the gradient compiles on its own)
    g = jax.jit(jax.grad(lambda s: jnp.sum(nllax.student_t.log_prob(y, 0.5, s, df=jnp.inf))))(2.0)
    assert np.isfinite(float(g))


def test_student_t_df_gradient_at_the_extremes(x64):
    # d log p / d log_df against central differences of the (accurate) value, per point
    y = jnp.asarray([-1e3, -3.0, 0.0, 0.5, 40.0] * 5)
    ld = jnp.asarray(np.repeat(np.log(DFS), 5))
    f = jax.jit(lambda ld: nllax.student_t.log_prob(y, 0.25, 1.0, log_df=ld))
    g = jax.jit(jax.vmap(jax.grad(
        lambda y, ld: nllax.student_t.log_prob(y, 0.25, 1.0, log_df=ld), argnums=1)))(y, ld)
    h = 1e-4
    fd = (8 * (f(ld + h) - f(ld - h)) - (f(ld + 2 * h) - f(ld - 2 * h))) / (12 * h)
    scale = np.abs(np.asarray(f(ld))) * EPS64 / h + 1e-12
    # fourth-order differences: truncation ~h^4, rounding ~eps |f| / h
    np.testing.assert_array_less(np.abs(np.asarray(g - fd)),
                                 1e-7 * np.abs(np.asarray(g)) + 100 * scale)


def test_student_t_cdf_derivative_in_df(x64):
    # the central difference in the custom rule against scipy's stdtr differentiated by
    # finite differences (both ~1e-9 relative)
    t = np.array([-40.0, -3.0, -0.5, 0.0, 1.5, 8.0])
    nu = 3.7
    g = jax.jit(jax.vmap(jax.grad(lambda t, d: nllax.student_t.log_cdf(t, 0.0, df=d), argnums=1),
                         in_axes=(0, None)))(jnp.asarray(t), nu)  # compiled: not op by op
    h = 1e-5 * nu
    ref = lambda d: np.where(t <= 0, np.log(special.stdtr(d, t)),  # noqa: E731
                             np.log1p(-special.stdtr(d, -t)))
    fd = (ref(nu + h) - ref(nu - h)) / (2 * h)
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-12)


def test_student_t_cdf_below_the_smallest_float32():
    # P(T <= -1e3) at df = 30 is ~1e-80: float32 keeps its log (the series in log space)
    t = np.array([-1e3, -1e6, -1e20], np.float32)
    got32 = np.asarray(nllax.student_t.log_cdf(t, 0.0, df=30.0))
    with jax.enable_x64(True):
        got64 = np.asarray(nllax.student_t.log_cdf(t.astype(np.float64), 0.0, df=30.0))
    # cross-check float64 at -1e3 with scipy (whose probability is still a float64)
    np.testing.assert_allclose(got64[0], np.log(special.stdtr(30.0, -1e3)), rtol=1e-12)
    # float32: log p = -15.5 log(1 + t^2/30) + ...: |t| rounding and a few of log's, ~31
    # eps relative to the dominant term
    np.testing.assert_allclose(got32, got64, rtol=64 * EPS32)


def test_cauchy_tails_float32():
    z = np.array([-1e30, -1e10, 1e10, 1e30], np.float32)
    lc = np.asarray(nllax.cauchy.log_cdf(z, 0.0))
    ls = np.asarray(nllax.cauchy.log_sf(z, 0.0))
    want_lo = -np.log(np.pi * np.abs(z[:2].astype(np.float64)))
    np.testing.assert_allclose(lc[:2], want_lo, rtol=4 * EPS32)
    np.testing.assert_allclose(ls[2:], want_lo[::-1], rtol=4 * EPS32)
    np.testing.assert_allclose(lc[2:], -1 / (np.pi * z[2:].astype(np.float64)), rtol=4 * EPS32)
    # the density at z = 1e30 (z^2 overflows float32): -log(pi) - 2 log(1e30)
    lp = float(nllax.cauchy.log_prob(jnp.float32(1e30), 0.0))
    np.testing.assert_allclose(lp, -np.log(np.pi) - 60 * np.log(10), rtol=4 * EPS32)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cauchy_gradients_where_z_squared_overflows(dtype, x64):
    """The derivative 2z / (1 + z^2) of log(1 + z^2) must not overflow: once z^2 did
    (|z| > 1.8e19 in float32, 1.3e154 in float64) it was 0, and the scale's derivative
    (1 - z g(z)) / scale, -1 / scale in the tail, came out as +1 / scale. Checked up to
    |z| = 1e37 / 1e300, where 1 / max(|z|, 1) is still a normal number (XLA:CPU flushes
    denormals to zero; beyond 1 / tiny = 8.5e37 in float32 the derivative itself is one)."""
    dt = np.dtype(dtype).type
    eps = float(np.finfo(dt).eps)
    big = [1e10, 1e19, 2e19, 1e20, 1e30, 1e37] + ([1e154, 2e154, 1e200, 1e300] if dtype == "float64" else [])
    zs = [0.0, 1e-30, 0.5, 1.0, 3.0] + big
    zs = np.array(zs + [-z for z in zs[1:]], dtype)
    nll = lambda y, loc, scale: nllax.cauchy.nll(y, loc, scale)
    g_y, g_loc, g_scale = jax.vmap(jax.grad(nll, (0, 1, 2)), (0, None, None))(
        zs, dt(0.0), dt(1.0))
    g_ls = jax.vmap(jax.grad(lambda y, ls: nllax.cauchy.nll(y, 0.0, log_scale=ls), 1),
                    (0, None))(zs, dt(0.0))
    from fractions import Fraction
    want = np.array([float(2 * Fraction(float(z)) / (1 + Fraction(float(z)) ** 2)) for z in zs])
    # g = 2 (z / b) / (b + s^2 / b): 1 / b, z * (1 / b), s^2, * (1 / b), +, / : 6 roundings
    np.testing.assert_allclose(np.asarray(g_y, np.float64), want, rtol=8 * eps, atol=0)
    np.testing.assert_array_equal(np.asarray(g_loc), -np.asarray(g_y))
    # d/dscale = 1 - z g(z): z g carries the 8 eps of g (and is at most 2 in size), so
    # the difference is within 16 eps absolute; -1 in both tails, 0 at |z| = 1
    want_s = 1.0 - zs.astype(np.float64) * want
    np.testing.assert_allclose(np.asarray(g_scale, np.float64), want_s, rtol=0, atol=16 * eps)
    np.testing.assert_allclose(np.asarray(g_ls, np.float64), want_s, rtol=0, atol=16 * eps)
    # the Hessian in loc, 2 (1 - z^2) / (1 + z^2)^2, by autodiff of the written-out
    # derivative (max and min split their derivative at |z| = 1, where it is 0); checked
    # where it is a normal number (|z| <= 1e10 / 1e19 in float32 / float64)
    small = zs[np.abs(zs.astype(np.float64)) <= (1e10 if dtype == "float32" else 1e19)]
    h = jax.vmap(jax.hessian(nll, 1), (0, None, None))(small, dt(0.0), dt(1.0))
    zf = [Fraction(float(z)) for z in small]
    want_h = np.array([float(2 * (1 - z * z) / (1 + z * z) ** 2) for z in zf])
    # ~12 roundings through the derivative's derivative, relative to max(|h|, 2 eps) near
    # the sign change at |z| = 1
    np.testing.assert_allclose(np.asarray(h, np.float64), want_h, rtol=16 * eps, atol=4 * eps)


def test_log_normal_negative_y_message():
    f = nllax.checked(jax.jit(lambda y: nllax.log_normal.nll(y, 0.0)))
    with pytest.raises(checkify.JaxRuntimeError,
                       match=re.escape("negative y for the log-normal")):
        f(jnp.array([1.0, -2.0]))


def test_msle_matches_keras_and_sklearn_definitions(x64):
    from sklearn.metrics import mean_squared_log_error

    rng = np.random.default_rng(1)
    y = rng.exponential(3.0, size=20)
    pred = rng.exponential(3.0, size=20)
    got = float(nllax.losses.msle(y, pred))
    keras = np.mean(np.square(np.log(np.maximum(pred, 1e-7) + 1.0)
                              - np.log(np.maximum(y, 1e-7) + 1.0)))
    np.testing.assert_allclose(got, keras, rtol=1e-12)
    np.testing.assert_allclose(got, mean_squared_log_error(y, pred), rtol=1e-12)
    assert np.isnan(float(nllax.losses.msle(jnp.array([-1.0, 1.0]), jnp.array([0.0, 0.0]))))


CDF_DFS = [1e-3, 1.0, 30.0, 1e3, 1e4, 1e5, 1e6, 1e8]
CDF_T = [-30.0, -8.0, -3.0, -1.7, -1.0, -0.2, 0.2, 1.0, 3.0, 8.0]


def _stdtr_log_cdf(t, df):
    lo = np.log(special.stdtr(df, -np.abs(t)))
    return np.where(t <= 0, lo, np.log1p(-np.exp(lo)))


def test_student_t_log_cdf_every_df_float64_and_float32(x64):
    t, df = (np.array(v) for v in zip(*itertools.product(CDF_T, CDF_DFS)))
    want = _stdtr_log_cdf(t, df)
    got64 = np.asarray(nllax.student_t.log_cdf(jnp.asarray(t), 0.0, df=jnp.asarray(df)))
    got32 = np.asarray(nllax.student_t.log_cdf(jnp.asarray(t, jnp.float32), 0.0,
                                               df=jnp.asarray(df, jnp.float32)), np.float64)
    # float64: the harness's CDF tolerance (10 rtol64 = 1e-11) for every df
    np.testing.assert_allclose(got64, want, rtol=1e-11)
    # float32 (t and df exact in float32 here): the centre's 1 - I with I <= 0.92 costs
    # a factor <= 12 on a few roundings of the log-space prefactor: 64 eps32
    np.testing.assert_allclose(got32, want, rtol=64 * EPS32)
