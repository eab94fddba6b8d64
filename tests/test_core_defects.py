"""The defects found in wave 1 by trying nllax as a new user would (issue: family core),
each fixed in the core and kept here as a test."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@pytest.mark.parametrize("family", ["gaussian", "laplace"])
def test_tiny_log_scale_is_finite_at_a_zero_residual_float32(family):
    # sigma = exp(-90) = 8e-40 is below float32's smallest normal: exp(90) overflows, and
    # the naive (y - loc) * exp(-log_scale) is 0 * inf = NaN at y == loc.
    mod = getattr(nllax, family)
    const = HALF_LOG_2PI if family == "gaussian" else math.log(2.0)
    got = mod.log_prob(jnp.float32(1.0), jnp.float32(1.0), log_scale=jnp.float32(-90.0))
    assert float(got) == pytest.approx(90.0 - const, rel=2 ** -23)
    g = jax.grad(lambda ls: mod.nll(jnp.ones(3), jnp.ones(3), log_scale=ls))(jnp.float32(-90.0))
    assert float(g) == 3.0  # d/d(log sigma) of the NLL's 3 log sigma at zero residuals
    # and a non-zero residual at that scale: -inf, the limit (not NaN)
    assert np.isneginf(float(mod.log_prob(jnp.float32(1.0), 0.0, log_scale=jnp.float32(-90.0))))


def test_tiny_log_scale_float64(x64):
    got = nllax.gaussian.log_prob(jnp.float64(1.0), jnp.float64(1.0), log_scale=-750.0)
    assert float(got) == pytest.approx(750.0 - HALF_LOG_2PI, rel=1e-15)
    got = nllax.gaussian.log_prob(1.0 + 2.0 ** -40, 1.0, log_scale=jnp.float64(-750.0))
    assert np.isneginf(float(got))  # (2^-40 / e^-750)^2 overflows: the value is -inf


def test_laplace_gradient_at_a_zero_residual_is_the_subgradient_zero():
    # The median of [1, 2, 3] is 2: with sign(0) = 0 the gradient there is exactly 0.
    y = jnp.array([1.0, 2.0, 3.0])
    assert float(jax.grad(lambda m: nllax.laplace.nll(y, m))(jnp.float32(2.0))) == 0.0
    assert float(jax.grad(lambda m: nllax.losses.mae(y, m))(jnp.float32(2.0))) == 0.0
    # and a NaN observation still gives a NaN gradient
    assert np.isnan(float(jax.grad(lambda m: nllax.losses.sae(y.at[0].set(jnp.nan), m))(2.0)))


def test_nan_weight_or_prediction_in_a_masked_slot_changes_nothing():
    y = jnp.array([0.5, 1.0, 2.0])
    where = jnp.array([True, False, True])
    w = jnp.array([1.0, jnp.nan, 2.0])
    loc = jnp.array([0.0, jnp.nan, 1.0])
    for fn in (lambda l: nllax.gaussian.nll(y, l, 1.5, weights=w, where=where),
               lambda l: nllax.losses.mse(y, l, weights=w, where=where),
               lambda l: nllax.laplace.nll(y, l, weights=w, where=where)):
        v, g = jax.value_and_grad(fn)(loc)
        assert np.isfinite(float(v)) and np.all(np.isfinite(g)) and float(g[1]) == 0.0


@pytest.mark.parametrize("bad", [-1.0, jnp.inf, jnp.nan])
def test_negative_or_non_finite_weights_are_invalid(bad):
    y = jnp.ones(3)
    w = jnp.array([1.0, bad, 1.0])
    assert np.isnan(float(nllax.gaussian.nll(y, 0.0, weights=w)))
    g = jax.grad(lambda p: nllax.losses.sse(y, p, weights=w))(jnp.zeros(3))
    g = np.asarray(g)
    assert np.isnan(g[1]) and np.all(np.isfinite(g[[0, 2]]))
    # weights that sum to zero: a mean over nothing, NaN like an empty mean
    assert np.isnan(float(nllax.losses.mse(y, jnp.zeros(3), weights=jnp.zeros(3))))


def test_function_fit_does_not_shadow_a_module():
    assert callable(nllax.fit)
    with pytest.raises(ModuleNotFoundError):
        __import__("nllax.fit")
    import importlib

    for private in ("nllax._fit", "nllax._inference", "nllax._equivalences", "nllax._cli"):
        importlib.import_module(private)


def test_equivalence_fields_are_a_and_b_and_keys_are_loss_names():
    eq = nllax.equivalences["sse"]
    assert float(eq.a(jnp.ones(4), scale=0.5)) == 2.0
    assert not hasattr(eq, "scale") and not hasattr(eq, "offset")
    assert "binary_cross_entropy" in nllax.equivalences and "bce" not in nllax.equivalences
