"""The robust and quantile losses (nllax.losses.huber, smooth_l1, log_cosh, pinball)
against optax and their written-out definitions, and the float32 accuracy of their
families at the extremes (tau near 0 and 1, delta tiny and huge, scales 1e-30..1e30).

The worst float32 errors are printed by
``PYTHONPATH=src:tests python tests/test_losses_robust.py``."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import checkify

import nllax
from cases import CASES

N = 50
EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=N) * 3
    pred = rng.normal(size=N)
    return jnp.asarray(y, dtype), jnp.asarray(pred, dtype)


def _sum_bound(dtype, total):
    # a sum of N non-negative terms, each within a few roundings, summed in a different
    # order: 4 (log2 N + 2) eps of the total
    return 4 * (np.log2(N) + 2) * float(np.finfo(dtype).eps) * abs(float(total))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("delta", [0.1, 1.0, 2.5])
def test_huber_is_optax_huber_loss_summed(dtype, delta):
    with jax.enable_x64(dtype == "float64"):
        y, pred = _data(dtype)
        got = nllax.losses.huber(y, pred, delta=delta)
        want = jnp.sum(optax.losses.huber_loss(pred, y, delta=delta))
        assert got.dtype == jnp.dtype(dtype)
        assert abs(float(got) - float(want)) <= _sum_bound(dtype, want)
        mean = nllax.losses.huber(y, pred, delta=delta, reduction="mean")
        assert abs(float(mean) - float(want) / N) <= _sum_bound(dtype, want) / N


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_cosh_is_optax_log_cosh_summed(dtype):
    with jax.enable_x64(dtype == "float64"):
        y, pred = _data(dtype)
        got = nllax.losses.log_cosh(y, pred)
        want = jnp.sum(optax.losses.log_cosh(pred, y))
        # optax's logaddexp(r, -r) - log 2 is within eps (|r| + log 2) of each term
        r = np.abs(np.asarray(y, np.float64) - np.asarray(pred, np.float64))
        slack = 4 * float(np.finfo(dtype).eps) * np.sum(r + 1.0)
        assert abs(float(got) - float(want)) <= _sum_bound(dtype, want) + slack


def test_log_cosh_keeps_its_digits_for_small_residuals():
    # log cosh r = r^2/2 - r^4/12 + r^6/45 - ..., truncated at r^8 (relative 1e-13 at
    # |r| = 1e-2); float32 within 4 eps of it, where optax's form loses eps / r^2
    r = np.array([1e-2, -3e-3, 1e-4, 2e-6, 0.0])
    r32 = r.astype(np.float32).astype(np.float64)
    want = r32 ** 2 / 2 - r32 ** 4 / 12 + r32 ** 6 / 45
    got = np.asarray(nllax.losses.log_cosh(jnp.asarray(r, jnp.float32), jnp.zeros(5),
                                           reduction="none"), np.float64)
    np.testing.assert_allclose(got, want, rtol=4 * EPS32, atol=0)


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 4.0])
def test_smooth_l1_is_the_pytorch_formula(x64, beta):
    y, pred = _data("float64", seed=1)
    r = np.abs(np.asarray(y) - np.asarray(pred))
    # torch.nn.SmoothL1Loss: 0.5 r^2 / beta if |r| < beta else |r| - 0.5 beta; beta = 0: L1
    per = np.where(r < beta, 0.5 * r ** 2 / max(beta, 1e-300), r - 0.5 * beta)
    got = nllax.losses.smooth_l1(y, pred, beta=beta, reduction="none")
    np.testing.assert_allclose(np.asarray(got), per, rtol=4 * EPS64, atol=0)
    assert abs(float(nllax.losses.smooth_l1(y, pred, beta=beta)) - per.sum()) <= _sum_bound(
        "float64", per.sum())
    if beta > 0:  # smooth_l1 = huber_beta / beta
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(nllax.losses.huber(y, pred, delta=beta,
                                                           reduction="none")) / beta,
            rtol=4 * EPS64)
    g = jax.grad(lambda p: nllax.losses.smooth_l1(y, p, beta=beta))(pred)
    d = np.asarray(pred) - np.asarray(y)
    want_g = np.where(np.abs(d) < beta, d / max(beta, 1e-300), np.sign(d))
    np.testing.assert_allclose(np.asarray(g), want_g, rtol=4 * EPS64, atol=0)


@pytest.mark.parametrize("tau", [0.05, 0.5, 0.9])
def test_pinball_is_the_check_function(x64, tau):
    y, pred = _data("float64", seed=2)
    r = np.asarray(y) - np.asarray(pred)
    per = np.maximum(tau * r, (tau - 1) * r)
    got = nllax.losses.pinball(y, pred, quantile=tau, reduction="none")
    np.testing.assert_allclose(np.asarray(got), per, rtol=2 * EPS64, atol=0)
    # the minimiser over a constant prediction is the tau-quantile: the subgradient at the
    # sample quantile contains 0 (here the derivative counts residuals on each side)
    q = np.quantile(np.asarray(y), tau, method="inverted_cdf")
    g = jax.grad(lambda c: nllax.losses.pinball(y, c, quantile=tau))(jnp.float64(q))
    assert abs(float(g)) <= max(tau, 1 - tau) + 1e-12


def test_pinball_needs_a_quantile_and_rejects_one_outside_the_unit_interval():
    y, pred = _data("float32")
    with pytest.raises(TypeError, match="quantile"):
        nllax.losses.pinball(y, pred)
    assert np.isnan(float(nllax.losses.pinball(y, pred, quantile=1.0)))
    f = nllax.checked(lambda y, p, t: nllax.losses.pinball(y, p, quantile=t))
    with pytest.raises(checkify.JaxRuntimeError, match="`quantile` must lie in"):
        f(y, pred, jnp.float32(1.5))


@pytest.mark.parametrize("loss,kw", [("huber", "delta"), ("smooth_l1", "beta")])
def test_threshold_out_of_range_is_nan_and_checked(loss, kw):
    y, pred = _data("float32")
    fn = getattr(nllax.losses, loss)
    assert np.isnan(float(fn(y, pred, **{kw: -1.0})))
    f = nllax.checked(lambda y, p, t: fn(y, p, **{kw: t}))
    with pytest.raises(checkify.JaxRuntimeError, match=f"`{kw}` must be"):
        f(y, pred, jnp.float32(-1.0))


def test_huber_with_infinite_delta_is_the_gaussian(x64):
    y = jnp.array([-40.0, -1.5, 0.0, 0.3, 7.0])
    np.testing.assert_allclose(np.asarray(nllax.huber.log_prob(y, 0.2, 1.5, delta=jnp.inf)),
                               np.asarray(nllax.gaussian.log_prob(y, 0.2, 1.5)), rtol=1e-15)
    for kind in ("log_cdf", "log_sf"):
        np.testing.assert_allclose(
            np.asarray(getattr(nllax.huber, kind)(y, 0.2, 1.5, delta=jnp.inf)),
            np.asarray(getattr(nllax.gaussian, kind)(y, 0.2, 1.5)), rtol=1e-13)


# -- float32 at the extremes ------------------------------------------------------------------

_Z = np.array([-1e4, -300.0, -30.0, -2.0, -0.5, 0.0, 0.1, 1.0, 3.0, 50.0, 1e3])
_SCALES = [1e-30, 1e-3, 1.0, 1e3, 1e30]
_TAU1 = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 6e-8, the largest below 1
EXTREMES = {
    "huber": [{"delta": d} for d in (1e-30, 1e-6, 0.01, 1.0, 30.0, 1e6, 1e30)],
    "hyperbolic_secant": [{}],
    "asymmetric_laplace": [{"quantile": t} for t in
                           (1e-30, 1e-7, 0.01, 0.5, 0.99, 1 - 1e-6, _TAU1)],
}


def worst_float32_errors(name):
    """``max err / (eps32 * magnitude)`` of log_prob over the extreme grid, float32 against
    the case's float64 reference at the rounded inputs (the harness's float32 rule)."""
    case = CASES[name]
    worst = 0.0
    for extra in EXTREMES[name]:
        for s in _SCALES:
            loc = 0.3 * s
            y32 = np.float32(loc + s * _Z)
            p32 = {"loc": np.full(_Z.shape, np.float32(loc)), "scale": np.float32(s),
                   **{k: np.float32(v) for k, v in extra.items()}}
            got = np.asarray(case.module.log_prob(jnp.asarray(y32), **{
                k: jnp.asarray(v) for k, v in p32.items()}), np.float64)
            p64 = {k: np.asarray(v, np.float64) for k, v in p32.items()}
            y64 = y32.astype(np.float64)
            want = case.reference(y64, **p64)
            mag = case.magnitude(y64, **p64)
            err = np.abs(got - want) / (EPS32 * mag)
            err = np.where(got == want, 0.0, err)  # equal infinities
            worst = max(worst, float(np.max(err)))
    return worst


def worst_float32_cdf_errors(name, z=_Z):
    """``max |err| / (eps32 (|log P| + 1))`` of log_cdf and log_sf over the extreme grid
    (float32 against the case's float64 references at the rounded inputs). The
    standardised residual is rounded, so the bound scales with ``|z d log P / dz|``,
    which is ``<= 2 |log P| + 1`` for these families (linear or quadratic tails)."""
    case = CASES[name]
    worst = 0.0
    for extra in EXTREMES[name]:
        for s in _SCALES:
            loc = 0.3 * s
            y32 = np.float32(loc + s * z)
            p32 = {"loc": np.float32(loc), "scale": np.float32(s),
                   **{k: np.float32(v) for k, v in extra.items()}}
            p64 = {k: np.asarray(v, np.float64) for k, v in p32.items()}
            for kind, ref in (("log_cdf", case.ref_log_cdf), ("log_sf", case.ref_log_sf)):
                got = np.asarray(getattr(case.module, kind)(jnp.asarray(y32), **{
                    k: jnp.asarray(v) for k, v in p32.items()}), np.float64)
                want = ref(y32.astype(np.float64), **p64)
                assert np.all(np.isfinite(want)), (name, kind, extra, s, want)
                err = np.abs(got - want) / (EPS32 * (np.abs(want) + 1.0))
                err = np.where(got == want, 0.0, err)
                if os.environ.get("NLLAX_DEBUG"):
                    print(name, kind, extra, s, float(np.max(err)), z[np.argmax(err)],
                          got[np.argmax(err)], want[np.argmax(err)])
                worst = max(worst, float(np.max(err)))  # NaN fails the comparison below
    return worst


@pytest.mark.parametrize("name", list(EXTREMES))
def test_float32_at_the_extremes_within_the_case_bound(name):
    worst = worst_float32_errors(name)
    assert worst <= CASES[name].f32_ulps, (name, worst, CASES[name].f32_why)


@pytest.mark.parametrize("name", list(EXTREMES))
def test_float32_cdf_at_the_extremes(name):
    # z = r / s rounded twice, and |z d log P / dz| <= 2 |log P| + 1: <= 6 eps of
    # (|log P| + 1); the log1p / log1mexp / erf / log_ndtr forms add a few eps each
    worst = worst_float32_cdf_errors(name)
    assert worst <= 16, (name, worst)


if __name__ == "__main__":
    for n in EXTREMES:
        print(f"{n}: worst float32 error {worst_float32_errors(n):.2f} eps32 x magnitude "
              f"(bound {CASES[n].f32_ulps}); log_cdf/log_sf worst "
              f"{worst_float32_cdf_errors(n):.2f} eps32 x (|log P| + 1)")
