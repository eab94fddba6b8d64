"""Tests of nllax.fit: the compiled maximum-likelihood loop.

Reference values: closed forms (least squares via numpy.linalg.lstsq in float64, the
sample mean, the weighted median) and scipy (linprog for L1 regression).
"""

import numpy as np
import optax
import pytest

import jax
import jax.numpy as jnp

import nllax


def _gauss_nll(params, x, y):
    return nllax.gaussian.nll(y, x @ params["beta"], log_scale=params["log_sigma"])


def _logistic_nll(beta, x, y):
    return nllax.bernoulli.nll(y, logits=x @ beta)


def _linear_data(n=200, d=3, seed=0, scales=None, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if scales is not None:
        x = x * np.asarray(scales)
    beta = rng.normal(size=d) / (1.0 if scales is None else np.asarray(scales))
    y = x @ beta + 0.5 * rng.normal(size=n)
    return x.astype(dtype), y.astype(dtype)


def test_public_names():
    for name in ("fit", "FitResult", "FitStatus", "FitError"):
        assert name in nllax.__all__
        assert hasattr(nllax, name)
    assert int(nllax.FitStatus.CONVERGED) == 0
    assert "non-finite" in nllax.FitStatus.NONFINITE.message


def test_gaussian_mle_float64_pytree(x64):
    # theta-hat is the least-squares solution and sigma-hat^2 = SSE / n.
    x, y = _linear_data()
    beta_ls = np.linalg.lstsq(x, y, rcond=None)[0]
    sigma2 = np.sum((y - x @ beta_ls) ** 2) / len(y)
    p0 = {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}
    r = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y))
    assert r.params["beta"].dtype == jnp.float64
    assert bool(r.converged), r.message
    np.testing.assert_allclose(r.params["beta"], beta_ls, rtol=1e-12)
    np.testing.assert_allclose(np.exp(2 * float(r.params["log_sigma"])), sigma2, rtol=1e-12)
    assert float(r.grad_norm) < 1e-9


def test_float32_default():
    x, y = _linear_data(dtype=np.float32)
    beta_ls = np.linalg.lstsq(x.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    p0 = {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}
    r = nllax.fit(_gauss_nll, p0, jnp.asarray(x), jnp.asarray(y))
    assert r.params["beta"].dtype == jnp.float32
    assert bool(r.converged), r.message
    np.testing.assert_allclose(r.params["beta"], beta_ls, rtol=1e-4, atol=1e-5)


def test_result_is_a_pytree_and_jittable():
    x, y = _linear_data(dtype=np.float32)

    @jax.jit
    def run(x, y):
        return nllax.fit(_gauss_nll, {"beta": jnp.zeros(3), "log_sigma": jnp.array(0.0)}, x, y)

    r = run(jnp.asarray(x), jnp.asarray(y))
    assert isinstance(r, nllax.FitResult)
    assert bool(r.converged)
    assert len(jax.tree_util.tree_leaves(r)) == 6  # 2 params leaves, value, grad_norm, steps, status


def test_no_retrace_on_second_call():
    # The objective's Python body runs only while tracing: count its calls.
    calls = []

    def nll(beta, x, y):
        calls.append(1)
        return _logistic_nll(beta, x, y)

    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(100, 4)), jnp.float32)
    y = jnp.asarray(rng.random(100) < 0.5, jnp.float32)
    r1 = nllax.fit(nll, jnp.zeros(4), x, y)
    traced = len(calls)
    assert traced > 0
    # new data, new start, other tol / max_steps: same compiled loop
    r2 = nllax.fit(nll, jnp.full(4, 0.1), x[::-1], y, tol=1e-4, max_steps=50)
    assert len(calls) == traced
    assert bool(r1.converged) and bool(r2.converged)
    # optax path too; a Python float start is the same as an array start
    opt = optax.adam(0.1)
    nllax.fit(nll, jnp.zeros(4), x, y, optimizer=opt, max_steps=20)
    traced = len(calls)
    nllax.fit(nll, jnp.ones(4), x, y, optimizer=opt, max_steps=30)
    assert len(calls) == traced


def test_learning_rate_change_does_not_retrace():
    calls = []

    def nll(beta, x, y):
        calls.append(1)
        return _logistic_nll(beta, x, y)

    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(50, 2)), jnp.float32)
    y = jnp.asarray(rng.random(50) < 0.5, jnp.float32)
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    r1 = nllax.fit(nll, jnp.zeros(2), x, y, optimizer=opt, max_steps=1, hyperparams={"learning_rate": 0.01})
    traced = len(calls)
    r2 = nllax.fit(nll, jnp.zeros(2), x, y, optimizer=opt, max_steps=1, hyperparams={"learning_rate": 0.02})
    assert len(calls) == traced
    # one gradient step from 0: twice the learning rate goes exactly twice as far
    ratio = np.asarray(r2.params) / np.asarray(r1.params)
    np.testing.assert_allclose(ratio, 2.0, rtol=1e-6)
    with pytest.raises(ValueError, match="inject_hyperparams"):
        nllax.fit(nll, jnp.zeros(2), x, y, optimizer=optax.sgd(0.1), hyperparams={"learning_rate": 1.0})


@pytest.mark.parametrize("make_opt", [lambda: optax.lbfgs(), lambda: optax.adam(0.05)], ids=["lbfgs", "adam"])
def test_any_optax_optimizer(x64, make_opt):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-x @ np.array([1.0, -0.5, 0.25])))).astype(np.float64)
    x, y = jnp.asarray(x), jnp.asarray(y)
    ref = nllax.fit(_logistic_nll, jnp.zeros(3), x, y)
    assert bool(ref.converged)
    r = nllax.fit(_logistic_nll, jnp.zeros(3), x, y, optimizer=make_opt(), max_steps=5000, tol=1e-9)
    assert bool(r.converged), r.message
    np.testing.assert_allclose(r.params, ref.params, rtol=1e-6, atol=1e-8)
