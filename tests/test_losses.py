"""The classical losses against independent NumPy float64 formulas (and optax, which
users would otherwise call)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

import nllax

R = np.random.default_rng(0)
N = 50
Y = R.normal(size=N)
P = R.normal(size=N)
W = R.uniform(0.2, 2.0, size=N)
M = R.uniform(size=N) < 0.7


@pytest.mark.parametrize("name,elem,default", [
    ("sse", np.square, "sum"), ("mse", np.square, "mean"),
    ("sae", np.abs, "sum"), ("mae", np.abs, "mean"),
])
def test_residual_losses(x64, name, elem, default):
    f = getattr(nllax.losses, name)
    e = elem(Y - P)
    y, p = jnp.asarray(Y), jnp.asarray(P)
    want_default = e.sum() if default == "sum" else e.mean()
    np.testing.assert_allclose(f(y, p), want_default, rtol=1e-13)
    np.testing.assert_allclose(jax.jit(f)(y, p), want_default, rtol=1e-13)
    np.testing.assert_allclose(f(y, p, reduction="none"), e, rtol=1e-13)
    np.testing.assert_allclose(f(y, p, reduction="sum", weights=jnp.asarray(W)), (W * e).sum(), rtol=1e-13)
    np.testing.assert_allclose(f(y, p, reduction="mean", weights=jnp.asarray(W)),
                               (W * e).sum() / W.sum(), rtol=1e-13)
    np.testing.assert_allclose(f(y, p, reduction="mean", where=jnp.asarray(M)), e[M].mean(), rtol=1e-13)


def test_binary_cross_entropy_soft_targets_and_optax(x64):
    y = R.uniform(size=N)
    z = R.normal(size=N) * 4
    want = np.logaddexp(0, z) - y * z  # softplus(z) - y z
    got = nllax.losses.binary_cross_entropy(jnp.asarray(y), jnp.asarray(z), reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    ox = optax.losses.sigmoid_binary_cross_entropy(jnp.asarray(z), jnp.asarray(y))
    np.testing.assert_allclose(got, ox, rtol=1e-10)
    # The minimum over z of a soft-target BCE is the entropy of y, not 0.
    zstar = special.logit(y)
    ent = -(special.xlogy(y, y) + special.xlog1py(1 - y, -y))
    np.testing.assert_allclose(
        nllax.losses.binary_cross_entropy(jnp.asarray(y), jnp.asarray(zstar), reduction="none"), ent, rtol=1e-10)


def test_cross_entropy_and_optax(x64):
    labels = R.integers(0, 6, size=N)
    z = R.normal(size=(N, 6)) * 3
    want = special.logsumexp(z, axis=-1) - z[np.arange(N), labels]
    got = nllax.losses.cross_entropy(jnp.asarray(labels), jnp.asarray(z), reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    ox = optax.losses.softmax_cross_entropy_with_integer_labels(jnp.asarray(z), jnp.asarray(labels))
    np.testing.assert_allclose(got, ox, rtol=1e-10)
    np.testing.assert_allclose(nllax.losses.cross_entropy(jnp.asarray(labels), jnp.asarray(z)), want.sum(), rtol=1e-12)


def test_poisson_loss(x64):
    k = R.poisson(4.0, size=N).astype(np.float64)
    eta = R.normal(size=N)
    want = np.exp(eta) - k * eta
    got = nllax.losses.poisson(jnp.asarray(k), jnp.asarray(eta), reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_allclose(nllax.losses.poisson(jnp.asarray(k), jnp.asarray(eta), reduction="mean"),
                               want.mean(), rtol=1e-13)


def test_losses_share_the_argument_order():
    """Data first, prediction second, options keyword-only, everywhere."""
    import inspect

    for name in ("sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson"):
        params = list(inspect.signature(getattr(nllax.losses, name)).parameters.values())
        assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])
        assert {"reduction", "weights", "where"} <= {p.name for p in params[2:]}
