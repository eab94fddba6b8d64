"""Bad input gets a clear answer: trace-time errors naming the argument for shapes and
types; NaN (value *and* gradient) for values JAX cannot check under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax

N = 5
y = jnp.linspace(0.0, 1.0, N)


SHAPE_CALLS = {
    "gaussian.log_prob": lambda p: nllax.gaussian.log_prob(y, p),
    "gaussian.nll": lambda p: nllax.gaussian.nll(y, p),
    "laplace.nll": lambda p: nllax.laplace.nll(y, p),
    "bernoulli.nll": lambda p: nllax.bernoulli.nll(y, logits=p),
    "bernoulli.probs": lambda p: nllax.bernoulli.log_prob(y, probs=p),
    "poisson.nll": lambda p: nllax.poisson.nll(jnp.ones(N), log_rate=p),
    "poisson.rate": lambda p: nllax.poisson.log_prob(jnp.ones(N), rate=p),
    "losses.sse": lambda p: nllax.losses.sse(y, p),
    "losses.mse": lambda p: nllax.losses.mse(y, p),
    "losses.mae": lambda p: nllax.losses.mae(y, p),
    "losses.bce": lambda p: nllax.losses.binary_cross_entropy(y, p),
    "losses.poisson": lambda p: nllax.losses.poisson(jnp.ones(N), p),
}


@pytest.mark.parametrize("name", list(SHAPE_CALLS))
@pytest.mark.parametrize("jit", [False, True])
def test_n_vs_n1_raises_naming_both(name, jit):
    f = jax.jit(SHAPE_CALLS[name]) if jit else SHAPE_CALLS[name]
    with pytest.raises(ValueError, match=r"\(5, 1\).*\(5,\)"):
        f(jnp.zeros((N, 1)))
    # And the other way round: (n, 1) data against (n,) predictions.


def test_n1_data_vs_n_prediction_raises():
    with pytest.raises(ValueError, match=r"`loc` has shape \(5,\).*`y`'s shape \(5, 1\)"):
        nllax.gaussian.nll(jnp.zeros((N, 1)), jnp.zeros(N))
    with pytest.raises(ValueError, match="pred"):
        nllax.losses.sse(jnp.zeros((N, 1)), jnp.zeros(N))


def test_scale_and_weights_and_mask_shapes_are_checked():
    with pytest.raises(ValueError, match="scale"):
        nllax.gaussian.nll(y, y, jnp.ones((N, 1)))
    with pytest.raises(ValueError, match="log_scale"):
        nllax.laplace.nll(y, y, log_scale=jnp.ones(3))
    with pytest.raises(ValueError, match="weights"):
        nllax.gaussian.nll(y, y, weights=jnp.ones((N, 1)))
    with pytest.raises(ValueError, match="where"):
        nllax.gaussian.nll(y, y, where=jnp.ones((N, 1), bool))
    with pytest.raises(TypeError, match="boolean mask"):
        nllax.gaussian.nll(y, y, where=jnp.ones(N))


def test_categorical_shape_errors():
    with pytest.raises(ValueError, match="labels"):
        nllax.categorical.nll(jnp.zeros(4, int), logits=jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="class axis"):
        nllax.categorical.nll(jnp.zeros((), int), logits=jnp.zeros(()))
    with pytest.raises(ValueError, match="axis"):
        nllax.categorical.nll(jnp.zeros(4, int), logits=jnp.zeros((4, 3)), axis=2)
    with pytest.raises(TypeError, match="integer class indices"):
        nllax.categorical.nll(jnp.zeros(4), logits=jnp.zeros((4, 3)))


@pytest.mark.parametrize("call", [
    lambda: nllax.gaussian.nll(y, jnp.arange(N)),
    lambda: nllax.gaussian.nll(y, y, jnp.ones(N, jnp.int32)),
    lambda: nllax.bernoulli.nll(y, logits=jnp.arange(N)),
    lambda: nllax.categorical.nll(jnp.zeros(2, int), logits=jnp.zeros((2, 3), int)),
    lambda: nllax.poisson.nll(jnp.ones(N), log_rate=jnp.ones(N, int)),
    lambda: nllax.losses.mse(y, jnp.arange(N)),
])
def test_integer_prediction_is_refused_with_advice(call):
    with pytest.raises(TypeError, match=r"floating array.*astype"):
        call()


def test_python_numbers_are_fine_as_parameters():
    assert np.isfinite(nllax.gaussian.nll(y, 0, 2))
    assert np.isfinite(nllax.poisson.nll(jnp.array([1, 2]), rate=3))


def test_exactly_one_parametrisation():
    with pytest.raises(ValueError, match="exactly one of `logits=` or `probs=`"):
        nllax.bernoulli.nll(y)
    with pytest.raises(ValueError, match="exactly one"):
        nllax.categorical.nll(jnp.zeros(2, int), logits=jnp.zeros((2, 3)), probs=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="exactly one of `log_rate=` or `rate=`"):
        nllax.poisson.nll(jnp.ones(2))
    with pytest.raises(ValueError, match="not both"):
        nllax.gaussian.nll(y, y, 2.0, log_scale=0.0)


def test_unknown_reduction_and_complex_input():
    with pytest.raises(ValueError, match="reduction"):
        nllax.gaussian.nll(y, y, reduction="avg")
    with pytest.raises(TypeError, match="real"):
        nllax.gaussian.nll(y, y + 1j)


# Values JAX cannot check under jit: NaN value, NaN gradient, in log_prob and every nll
# reduction, jitted or not. (fn, valid params, invalid params)
NAN_CASES = {
    "scale<=0": (lambda s: nllax.gaussian.nll(y, y * 0.5, s), 1.0, -1.0),
    "scale=0": (lambda s: nllax.gaussian.nll(y, y * 0.5, s), 1.0, 0.0),
    "scale=nan": (lambda s: nllax.gaussian.nll(y, y * 0.5, s), 1.0, jnp.nan),
    "laplace scale<0": (lambda s: nllax.laplace.nll(y, y * 0.5, s), 1.0, -2.0),
    "one scale of many": (lambda s: nllax.gaussian.nll(y, y * 0.5, jnp.ones(N).at[2].set(s)), 1.0, -1.0),
    "prob>1": (lambda p: nllax.bernoulli.nll(y, probs=jnp.full(N, 0.5).at[1].set(p)), 0.5, 1.5),
    "prob<0": (lambda p: nllax.bernoulli.nll(y, probs=jnp.full(N, 0.5).at[1].set(p)), 0.5, -0.1),
    "bernoulli target>1": (lambda z: nllax.bernoulli.nll(y.at[0].set(2.0), logits=jnp.full(N, z)), None, 0.3),
    "bce target<0": (lambda z: nllax.losses.binary_cross_entropy(y.at[0].set(-1.0), jnp.full(N, z)), None, 0.3),
    "cat probs>1": (lambda p: nllax.categorical.nll(jnp.array([0, 1]), probs=jnp.array([[p, 1 - p], [0.5, 0.5]])), 0.3, 1.5),
    "cat probs not normalised": (lambda p: nllax.categorical.nll(jnp.array([0, 1]), probs=jnp.array([[p, 0.9], [0.5, 0.5]])), 0.1, 0.3),
    "rate<0": (lambda l: nllax.poisson.nll(jnp.ones(3), rate=jnp.ones(3).at[0].set(l)), 1.0, -1.0),
}


@pytest.mark.parametrize("name", list(NAN_CASES))
@pytest.mark.parametrize("jit", [False, True])
def test_invalid_values_give_nan_value_and_gradient(name, jit):
    f, ok, bad = NAN_CASES[name]
    f = jax.jit(f) if jit else f
    bad = jnp.asarray(bad, jnp.float32)
    assert np.isnan(f(bad)), name
    g = jax.grad(f)(bad)
    assert np.isnan(g), f"{name}: gradient {g} is finite for an invalid input"
    if ok is not None:
        assert np.isfinite(f(jnp.asarray(ok, jnp.float32)))


@pytest.mark.parametrize("labels", [[0, -1], [0, 3], [0, 100]])
def test_out_of_range_labels_are_nan_not_clamped_or_wrapped(labels):
    z = jnp.array([[0.0, 1.0, 2.0], [0.0, 1.0, 5.0]])
    lp = nllax.categorical.log_prob(jnp.array(labels), logits=z)
    assert np.isfinite(lp[0]) and np.isnan(lp[1])
    g = jax.grad(lambda q: nllax.losses.cross_entropy(jnp.array(labels), q))(z)
    assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[0]))
    for red in ("sum", "mean"):
        assert np.isnan(nllax.categorical.nll(jnp.array(labels), logits=z, reduction=red))


@pytest.mark.parametrize("k", [-1.0, 2.5, jnp.inf, jnp.nan])
def test_invalid_counts_are_nan(k):
    counts = jnp.array([1.0, k])
    for fn in (lambda e: nllax.poisson.log_prob(counts, log_rate=e),
               lambda e: nllax.poisson.log_prob(counts, rate=jnp.exp(e)),
               lambda e: nllax.losses.poisson(counts, e, reduction="none")):
        out = fn(jnp.zeros(2))
        assert np.isfinite(out[0]) and np.isnan(out[1])
    g = jax.grad(lambda e: nllax.poisson.nll(counts, log_rate=e))(jnp.zeros(2))
    assert np.isnan(g[1])
    assert np.isnan(nllax.losses.poisson(counts, jnp.zeros(2)))


def test_invalid_values_under_vmap_are_nan_per_row():
    s = jnp.array([1.0, -1.0, 2.0])
    out = jax.vmap(lambda si: nllax.gaussian.nll(y, y, si))(s)
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isfinite(out[2])


def test_nan_in_data_propagates():
    assert np.isnan(nllax.gaussian.nll(y.at[0].set(jnp.nan), y))
    assert np.isnan(nllax.bernoulli.nll(y.at[0].set(jnp.nan), logits=y))
