"""Gradient identities (analytic forms) and autodiff checks against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special

import _tolerances as tt
import nllax


def _r(seed=0):
    return np.random.default_rng(seed)


def _grad(f):
    """``jax.grad(f)`` as one compiled program: called eagerly, every primitive of the
    derivative is compiled on its own (per shape). The derivative rules are the same;
    eager differentiation keeps its checks in test_check_grads_second_order."""
    return jax.jit(jax.grad(f))


def _close(got, want, size, eps=tt.EPS64, extra=0):
    """An autodiff gradient against its closed form: both are a few roundings (C =
    tt.TERM_ROUNDINGS, plus ``extra`` for a sum inside, a normaliser's) of the pieces
    they add or cancel, whose absolute values are ``size``: ``|got - want| <= 2 (C +
    extra) eps size`` elementwise."""
    err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    bound = 2 * (tt.TERM_ROUNDINGS + extra) * eps * np.asarray(size, np.float64)
    assert np.all(err <= bound), (np.max(err / bound), err, bound)


def test_bce_gradient_identity_including_zero(x64):
    r = _r(1)
    z = jnp.asarray(np.concatenate([r.normal(size=20) * 5, [0.0]]))
    y = jnp.asarray(np.concatenate([r.uniform(size=20), [1.0]]))  # soft targets too
    g = _grad(lambda q: nllax.losses.binary_cross_entropy(y, q))(z)
    _close(g, special.expit(np.asarray(z)) - np.asarray(y),
           special.expit(np.asarray(z)) + np.abs(np.asarray(y)))
    g0 = _grad(lambda q: nllax.losses.binary_cross_entropy(1.0, q))(0.0)
    assert float(g0) == -0.5  # sigma(0) - 1, exactly


def test_cross_entropy_gradient_is_softmax_minus_onehot(x64):
    r = _r(2)
    z = jnp.asarray(r.normal(size=(8, 5)) * 3)
    labels = jnp.asarray(r.integers(0, 5, size=8))
    g = _grad(lambda q: nllax.losses.cross_entropy(labels, q))(z)
    sm = special.softmax(np.asarray(z), axis=-1)
    onehot = np.eye(5)[np.asarray(labels)]
    want = sm - onehot
    # softmax: exp's and the 5-term normaliser's roundings (extra 5), minus the one-hot
    _close(g, want, sm + onehot, extra=5)
    # Class axis elsewhere.
    g0 = _grad(lambda q: nllax.losses.cross_entropy(labels, q, axis=0))(z.T)
    _close(g0, want.T, (sm + onehot).T, extra=5)


def test_cross_entropy_gradient_with_ties():
    z = jnp.full((2, 4), 1e4, jnp.float32)
    g = _grad(lambda q: nllax.losses.cross_entropy(jnp.array([0, 3]), q))(z)
    want = np.full((2, 4), 0.25) - np.eye(4)[[0, 3]]
    # float32: the shifted logits are exactly 0, softmax 1/4 to its 4-term normaliser's
    # roundings
    _close(g, want, 0.25 + np.eye(4)[[0, 3]], eps=tt.EPS32, extra=4)


def test_poisson_gradient_identity(x64):
    r = _r(3)
    eta = jnp.asarray(r.normal(size=30) * 2)
    k = jnp.asarray(r.poisson(3.0, size=30).astype(np.float64))
    want = np.exp(np.asarray(eta)) - np.asarray(k)
    for f in (lambda e: nllax.poisson.nll(k, log_rate=e), lambda e: nllax.losses.poisson(k, e)):
        _close(_grad(f)(eta), want, np.exp(np.asarray(eta)) + np.asarray(k))
    lam = jnp.exp(eta)
    g = _grad(lambda l: nllax.poisson.nll(k, rate=l))(lam)
    _close(g, 1 - np.asarray(k) / np.asarray(lam), 1 + np.asarray(k) / np.asarray(lam))
    # Zero count: d/d lambda = 1 even at lambda = 0.
    assert float(_grad(lambda l: nllax.poisson.nll(0.0, rate=l))(0.0)) == 1.0


def test_gaussian_gradient_identity(x64):
    r = _r(4)
    y = jnp.asarray(r.normal(size=25))
    mu = jnp.asarray(r.normal(size=25))
    sigma = jnp.asarray(np.exp(r.normal(size=25)))
    g = _grad(lambda m: nllax.gaussian.nll(y, m, sigma))(mu)
    yy, mm, ss = (np.asarray(a) for a in (y, mu, sigma))
    # the difference mu - y cancels |mu| + |y|
    _close(g, (mm - yy) / ss**2, (np.abs(mm) + np.abs(yy)) / ss**2)
    gs = _grad(lambda s: nllax.gaussian.nll(y, mu, s))(sigma)
    want = 1 / ss - (yy - mm) ** 2 / ss**3
    _close(gs, want, 1 / ss + (np.abs(yy) + np.abs(mm)) ** 2 / ss**3)


def test_laplace_gradient_identity(x64):
    y = jnp.array([1.0, -2.0, 3.0])
    mu = jnp.array([0.0, 0.0, 4.0])
    g = _grad(lambda m: nllax.laplace.nll(y, m, 2.0))(mu)
    np.testing.assert_allclose(g, np.sign(np.asarray(mu) - np.asarray(y)) / 2.0)


CHECKS = {
    "gaussian": (lambda m, s: nllax.gaussian.nll(jnp.array([0.3, -1.2, 2.0]), m, s),
                 (jnp.array([0.1, 0.2, -0.3]), jnp.array([0.7, 1.3, 2.0]))),
    "gaussian_log_scale": (lambda m, s: nllax.gaussian.nll(jnp.array([0.3, -1.2]), m, log_scale=s),
                           (jnp.array([0.1, 0.2]), jnp.array([-0.3, 0.4]))),
    "laplace": (lambda m, s: nllax.laplace.nll(jnp.array([0.3, -1.2, 2.0]), m, s),
                (jnp.array([0.1, 0.2, -0.3]), jnp.array([0.7, 1.3, 2.0]))),
    "bernoulli_logits": (lambda z: nllax.bernoulli.nll(jnp.array([1.0, 0.0, 0.3]), logits=z),
                         (jnp.array([0.5, -2.0, 3.0]),)),
    "bernoulli_probs": (lambda p: nllax.bernoulli.nll(jnp.array([1.0, 0.0, 0.3]), probs=p),
                        (jnp.array([0.5, 0.2, 0.9]),)),
    "categorical": (lambda z: nllax.categorical.nll(jnp.array([0, 2]), logits=z),
                    (jnp.array([[0.1, 1.0, -1.0], [2.0, 0.0, 0.5]]),)),
    "poisson_log_rate": (lambda e: nllax.poisson.nll(jnp.array([0.0, 3.0, 40.0]), log_rate=e),
                         (jnp.array([0.1, 1.0, 3.5]),)),
    "poisson_rate": (lambda l: nllax.poisson.nll(jnp.array([0.0, 3.0, 40.0]), rate=l),
                     (jnp.array([0.4, 2.0, 35.0]),)),
    "mse": (lambda p: nllax.losses.mse(jnp.array([1.0, 2.0, 3.0]), p), (jnp.array([0.5, 2.5, 2.0]),)),
    "poisson_loss": (lambda e: nllax.losses.poisson(jnp.array([0.0, 3.0]), e), (jnp.array([0.2, 1.0]),)),
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_grads_second_order(x64, name):
    f, args = CHECKS[name]
    args = tuple(jnp.asarray(a, jnp.float64) for a in args)
    # eps 1e-5: central differences of float64 accurate to ~1e-9 even at second order.
    # second order on f under jit: check_grads differentiates eagerly, and each JVP/VJP
    # of a jitted f is then one compiled program (cached by shape), not every primitive of
    # the derivative compiled on its own; the derivative rules are the same. The eager
    # path (f as users call it) keeps its first-order check, as jit(f) had it before.
    check_grads(jax.jit(f), args, order=2, modes=["fwd", "rev"], atol=1e-6, rtol=1e-6,
                eps=1e-5)
    check_grads(f, args, order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
