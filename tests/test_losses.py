"""The classical losses against independent NumPy float64 formulas (and optax, which
users would otherwise call)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

import _tolerances as tt
import nllax

R = np.random.default_rng(0)
N = 50
Y = R.normal(size=N)
P = R.normal(size=N)
W = R.uniform(0.2, 2.0, size=N)
M = R.uniform(size=N) < 0.7


def _close(got, want, size):
    """Two float64 implementations of one formula (nllax's, NumPy's / optax's), each within
    a few roundings (tt.TERM_ROUNDINGS eps) of ``size``, the absolute values of the terms
    it adds or cancels per element: elementwise ``|got - want| <= 2 c eps size``."""
    err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    bound = 2 * tt.TERM_ROUNDINGS * tt.EPS64 * np.asarray(size, np.float64)
    assert np.all(err <= bound), (np.max(err / bound), err, bound)


def _close_sum(got, want, terms, per_term):
    """A reduction: each side's n-term sum (tt.sum_rounding of the terms) and the terms'
    own errors (``per_term``, summed)."""
    err = abs(float(got) - float(want))
    bound = 2 * tt.sum_rounding(terms) + np.sum(per_term)
    assert err <= bound, (err, bound)


@pytest.mark.parametrize("name,elem,default", [
    ("sse", np.square, "sum"), ("mse", np.square, "mean"),
    ("sae", np.abs, "sum"), ("mae", np.abs, "mean"),
])
def test_residual_losses(x64, name, elem, default):
    f = getattr(nllax.losses, name)
    e = elem(Y - P)
    y, p = jnp.asarray(Y), jnp.asarray(P)
    want_default = e.sum() if default == "sum" else e.mean()
    # the elements: y - p and a square / abs, a few roundings of e each (no cancellation
    # beyond the difference's, which both sides round alike); the reductions: e >= 0, so
    # the sum's rounding (n + c) eps sum(e) is relative to the result; a mean's or a
    # weighted mean's division, and the weights' own sum, a few roundings more
    scale = 1.0 if default == "sum" else 1.0 / N
    for got in (f(y, p), jax.jit(f)(y, p)):
        _close_sum(got, want_default, scale * e, 2 * tt.TERM_ROUNDINGS * tt.EPS64 * scale * e)
    _close(f(y, p, reduction="none"), e, e)
    we = W * e
    _close_sum(f(y, p, reduction="sum", weights=jnp.asarray(W)), we.sum(), we,
               2 * tt.TERM_ROUNDINGS * tt.EPS64 * we)
    wmean = we.sum() / W.sum()
    _close_sum(f(y, p, reduction="mean", weights=jnp.asarray(W)), wmean, we / W.sum(),
               2 * tt.TERM_ROUNDINGS * tt.EPS64 * we / W.sum()
               + wmean * 2 * tt.sum_rounding(W) / W.sum() / N)
    em = e[M] / M.sum()
    _close_sum(f(y, p, reduction="mean", where=jnp.asarray(M)), e[M].mean(), em,
               2 * tt.TERM_ROUNDINGS * tt.EPS64 * em)


def test_binary_cross_entropy_soft_targets_and_optax(x64):
    y = R.uniform(size=N)
    z = R.normal(size=N) * 4
    want = np.logaddexp(0, z) - y * z  # softplus(z) - y z
    got = nllax.losses.binary_cross_entropy(jnp.asarray(y), jnp.asarray(z), reduction="none")
    # the two terms cancel: the bound is on their absolute values
    size = np.logaddexp(0, z) + np.abs(y * z)
    _close(got, want, size)
    ox = optax.losses.sigmoid_binary_cross_entropy(jnp.asarray(z), jnp.asarray(y))
    _close(got, ox, size)
    # The minimum over z of a soft-target BCE is the entropy of y, not 0. (z* = logit(y)
    # carries its own rounding, but the loss is flat there: second order.)
    zstar = special.logit(y)
    ent = -(special.xlogy(y, y) + special.xlog1py(1 - y, -y))
    size = (np.logaddexp(0, zstar) + np.abs(y * zstar)
            + np.abs(special.xlogy(y, y)) + np.abs(special.xlog1py(1 - y, -y)))
    _close(nllax.losses.binary_cross_entropy(jnp.asarray(y), jnp.asarray(zstar),
                                             reduction="none"), ent, size)


def test_cross_entropy_and_optax(x64):
    labels = R.integers(0, 6, size=N)
    z = R.normal(size=(N, 6)) * 3
    want = special.logsumexp(z, axis=-1) - z[np.arange(N), labels]
    got = nllax.losses.cross_entropy(jnp.asarray(labels), jnp.asarray(z), reduction="none")
    # logsumexp (a sum of 6 exponentials after the max shift: 6 more roundings of its
    # size) minus the label's logit: cancelling terms
    lse = special.logsumexp(z, axis=-1)
    size = np.abs(lse) + np.abs(z[np.arange(N), labels]) + 6 * np.abs(lse)
    _close(got, want, size)
    ox = optax.losses.softmax_cross_entropy_with_integer_labels(jnp.asarray(z), jnp.asarray(labels))
    _close(got, ox, size)
    _close_sum(nllax.losses.cross_entropy(jnp.asarray(labels), jnp.asarray(z)), want.sum(), want,
               2 * tt.TERM_ROUNDINGS * tt.EPS64 * size)


def test_poisson_loss(x64):
    k = R.poisson(4.0, size=N).astype(np.float64)
    eta = R.normal(size=N)
    want = np.exp(eta) - k * eta
    got = nllax.losses.poisson(jnp.asarray(k), jnp.asarray(eta), reduction="none")
    size = np.exp(eta) + np.abs(k * eta)  # exp's few ulps, the product's, cancelling
    _close(got, want, size)
    _close_sum(nllax.losses.poisson(jnp.asarray(k), jnp.asarray(eta), reduction="mean"),
               want.mean(), want / N, 2 * tt.TERM_ROUNDINGS * tt.EPS64 * size / N)


def test_losses_share_the_argument_order():
    """Data first, prediction second, options keyword-only, everywhere."""
    import inspect

    for name in ("sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson"):
        params = list(inspect.signature(getattr(nllax.losses, name)).parameters.values())
        assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])
        assert {"reduction", "weights", "where"} <= {p.name for p in params[2:]}
