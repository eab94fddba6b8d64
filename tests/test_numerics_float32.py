"""Float32 keeps its relative accuracy over the whole valid range, where naive formulas
cancel. References are float64 (or 50-digit decimal) evaluated on the *same float32
inputs*, so the errors measured are the library's, not the inputs' rounding.

Tolerances are in units of float32's machine epsilon (1.19e-7) and sit just above the
worst errors measured when they were written (noted beside each)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import nllax
import _refs

EPS32 = float(np.finfo(np.float32).eps)
f32 = np.float32


def _logspace_pm(lo=-30, hi=30, num=601):
    mag = np.logspace(lo, hi, num).astype(f32)
    return np.concatenate([mag, -mag, [0.0, np.inf, -np.inf]]).astype(f32)


@pytest.mark.parametrize("y", [0.0, 1.0, 0.25])
def test_bernoulli_logits_full_range(y):
    z = _logspace_pm()
    yv = np.full_like(z, y)
    got = jax.jit(lambda a, b: nllax.bernoulli.log_prob(a, logits=b))(yv, z)
    want = _refs.bernoulli_logits(yv.astype(np.float64), z.astype(np.float64))
    assert _refs.rel_err_f32(got, want) <= 4 * EPS32  # measured 1.5 eps


def test_bernoulli_does_not_cancel_where_the_common_form_does():
    # y = 1, z = 20: log sigmoid(20) = -2.06e-9; y*z - softplus(z) gives 0 in float32.
    got = nllax.bernoulli.log_prob(f32(1.0), logits=f32(20.0))
    assert got == pytest.approx(-2.0611536e-09, rel=2 * EPS32)
    naive = f32(20.0) - jax.nn.softplus(f32(20.0))
    assert naive == 0.0  # the failure mode this guards against


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_bce_gradient_is_sigmoid_minus_y_full_range(y):
    z = _logspace_pm()
    g = jax.jit(jax.grad(lambda q: nllax.losses.binary_cross_entropy(jnp.full(q.shape, y), q)))(z)
    want = special.expit(z.astype(np.float64)) - y
    assert np.max(np.abs(np.asarray(g, np.float64) - want)) <= 4 * EPS32  # measured 3.4 eps
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("label", range(5))
def test_categorical_logits_scaled_1e_minus30_to_1e30(label):
    r = np.random.default_rng(0)
    logits = (r.normal(size=(1, 5)) * np.logspace(-30, 30, 121)[:, None]).astype(f32)
    labels = np.full(logits.shape[0], label)
    got = jax.jit(lambda k, z: nllax.categorical.log_prob(k, logits=z))(labels, logits)
    want = _refs.categorical_logits_decimal(labels, logits.astype(np.float64))
    assert _refs.rel_err_f32(got, want) <= 8 * EPS32  # measured 6.1 eps


def test_categorical_tied_and_confident_logits():
    tied = np.broadcast_to(np.logspace(-30, 30, 61)[:, None], (61, 7)).astype(f32)
    got = nllax.categorical.log_prob(jnp.zeros(61, int), logits=jnp.asarray(tied))
    assert _refs.rel_err_f32(got, np.full(61, -np.log(7))) <= 2 * EPS32  # measured 0.3 eps
    # A confident prediction keeps its tiny log-probability (-2 exp(-80) = -3.6e-35).
    conf = np.zeros((40, 3), f32)
    conf[:, 0] = np.linspace(1, 80, 40)
    got = nllax.categorical.log_prob(jnp.zeros(40, int), logits=jnp.asarray(conf))
    want = _refs.categorical_logits_decimal(np.zeros(40, int), conf.astype(np.float64))
    assert _refs.rel_err_f32(got, want) <= 2 * EPS32  # measured 0.5 eps


def test_categorical_infinite_logits():
    # -inf logits (masked classes) are exact; a +inf logit is an overflow upstream: NaN,
    # and checked mode names it (wave 1 returned the limit, at 16-20% of every call).
    z = jnp.array([[-jnp.inf, 0, 1], [-jnp.inf, 0, 0], [jnp.inf, 0, 0], [jnp.inf, jnp.inf, 0]],
                  jnp.float32)
    got = nllax.categorical.log_prob(jnp.array([0, 1, 0, 0]), logits=z)
    assert np.isneginf(got[0]) and float(got[1]) == pytest.approx(-np.log(2), rel=EPS32)
    assert np.all(np.isnan(got[2:]))
    with pytest.raises(Exception, match=r"`logits` must be < \+inf"):
        nllax.checked(lambda z: nllax.categorical.log_prob(jnp.array([0, 0]), logits=z))(z[2:])


# Finite gradients *and* Hessians at the extremes: standard errors come from Hessians.
EXTREME_FNS = {
    "bernoulli": (lambda z: nllax.bernoulli.nll(jnp.array([1.0, 0.0, 1.0, 0.0, 0.5, 1.0]), logits=z),
                  jnp.array([1e4, 1e4, -1e30, jnp.inf, -jnp.inf, 0.0], jnp.float32)),
    "categorical": (lambda z: nllax.categorical.nll(jnp.array([0, 1, 2, 0]), logits=z),
                    jnp.array([[1e4, 0, -1e4], [1e30, 1e30, 1e30], [-jnp.inf, 0, 1e4],
                               [1e4, -jnp.inf, 0]], jnp.float32)),
    "poisson": (lambda e: nllax.poisson.nll(jnp.array([0.0, 3.0, 1e7, 0.0]), log_rate=e),
                jnp.array([-80.0, 30.0, 16.1, -jnp.inf], jnp.float32)),
    "gaussian": (lambda m: nllax.gaussian.nll(jnp.array([1e30, -1e30, 0.0]), m, 1e30),
                 jnp.array([0.0, 1e30, 1e-30], jnp.float32)),
}


@pytest.mark.parametrize("name", list(EXTREME_FNS))
def test_finite_gradients_and_hessians_at_extremes(name):
    f, x = EXTREME_FNS[name]
    g = jax.jit(jax.grad(f))(x)
    h = jax.jit(jax.hessian(f))(x)
    assert np.all(np.isfinite(g)), g
    assert np.all(np.isfinite(h)), h
