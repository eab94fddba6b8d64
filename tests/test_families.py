"""The five families against independent float64 references (SciPy / closed forms /
50-digit decimal for Poisson), for log_prob and every reduction, jitted and eager."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import nllax
import _refs

RTOL64 = 1e-12  # float64: agreement to rounding of the reference's own formula


@pytest.fixture(params=["eager", "jit"])
def mode(request):
    return request.param


def call(mode, fn, *args, **kwargs):
    if mode == "jit":
        return jax.jit(lambda *a: fn(*a, **kwargs))(*args)
    return fn(*args, **kwargs)


def _rng(seed=0):
    return np.random.default_rng(seed)


# Each case: (name, function computing log_prob, reference, data, params kwargs)
def _cases():
    r = _rng(1)
    n = 64
    y = r.normal(size=n) * 3
    loc = r.normal(size=n)
    scale_vec = np.exp(r.normal(size=n))
    yb = (r.uniform(size=n) < 0.4).astype(np.float64)
    z = r.normal(size=n) * 4
    p = r.uniform(size=n)
    labels = r.integers(0, 5, size=n)
    logits = r.normal(size=(n, 5)) * 3
    probs = stats.dirichlet.rvs(np.ones(5), size=n, random_state=2)
    counts = r.poisson(np.exp(r.normal(size=n) * 2)).astype(np.float64)
    counts[:4] = [0, 1e3, 123456, 5e6]
    rate = np.exp(r.normal(size=n) * 2)
    rate[:4] = [0.5, 1e3 * 1.01, 123000.0, 5e6 * 0.999]
    return [
        ("gaussian-scalar", lambda y, m: nllax.gaussian.log_prob(y, m, 1.7),
         lambda: _refs.gaussian_logpdf(y, loc, 1.7), (y, loc)),
        ("gaussian-vector", lambda y, m, s: nllax.gaussian.log_prob(y, m, s),
         lambda: _refs.gaussian_logpdf(y, loc, scale_vec), (y, loc, scale_vec)),
        ("gaussian-logscale", lambda y, m, s: nllax.gaussian.log_prob(y, m, log_scale=s),
         lambda: _refs.gaussian_logpdf(y, loc, scale_vec), (y, loc, np.log(scale_vec))),
        ("laplace-scalar", lambda y, m: nllax.laplace.log_prob(y, m, 0.8),
         lambda: _refs.laplace_logpdf(y, loc, 0.8), (y, loc)),
        ("laplace-vector", lambda y, m, s: nllax.laplace.log_prob(y, m, s),
         lambda: _refs.laplace_logpdf(y, loc, scale_vec), (y, loc, scale_vec)),
        ("laplace-logscale", lambda y, m, s: nllax.laplace.log_prob(y, m, log_scale=s),
         lambda: _refs.laplace_logpdf(y, loc, scale_vec), (y, loc, np.log(scale_vec))),
        ("bernoulli-logits", lambda y, z: nllax.bernoulli.log_prob(y, logits=z),
         lambda: _refs.bernoulli_logits(yb, z), (yb, z)),
        ("bernoulli-logits-scipy", lambda y, z: nllax.bernoulli.log_prob(y, logits=z),
         lambda: stats.bernoulli.logpmf(yb, 1 / (1 + np.exp(-z / 4))), (yb, z / 4)),
        ("bernoulli-probs", lambda y, p: nllax.bernoulli.log_prob(y, probs=p),
         lambda: stats.bernoulli.logpmf(yb, p), (yb, p)),
        ("categorical-logits", lambda k, z: nllax.categorical.log_prob(k, logits=z),
         lambda: _refs.categorical_logits(labels, logits), (labels, logits)),
        ("categorical-axis0", lambda k, z: nllax.categorical.log_prob(k, logits=z, axis=0),
         lambda: _refs.categorical_logits(labels, logits), (labels, logits.T)),
        ("categorical-probs", lambda k, p: nllax.categorical.log_prob(k, probs=p),
         lambda: np.log(probs[np.arange(n), labels]), (labels, probs)),
        ("poisson-rate", lambda k, lam: nllax.poisson.log_prob(k, rate=lam),
         lambda: _refs.poisson_logpmf(counts, rate), (counts, rate)),
        ("poisson-lograte", lambda k, eta: nllax.poisson.log_prob(k, log_rate=eta),
         lambda: _refs.poisson_logpmf(counts, np.exp(np.log(rate))), (counts, np.log(rate))),
        ("poisson-scipy", lambda k, lam: nllax.poisson.log_prob(k, rate=lam),
         lambda: stats.poisson.logpmf(counts[4:], rate[4:]), (counts[4:], rate[4:])),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_log_prob_matches_reference_float64(x64, mode, case):
    _, fn, ref, args = case
    got = call(mode, fn, *[jnp.asarray(a) for a in args])
    assert got.dtype == jnp.float64
    want = ref()
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL64, atol=0)


# nll(...) with each reduction, weights and a mask, against the reference log-probs.
NLL_CASES = [
    ("gaussian", lambda y, m, **kw: nllax.gaussian.nll(y, m, 1.3, **kw),
     lambda y, m: _refs.gaussian_logpdf(y, m, 1.3), "normal"),
    ("laplace", lambda y, m, **kw: nllax.laplace.nll(y, m, 0.6, **kw),
     lambda y, m: _refs.laplace_logpdf(y, m, 0.6), "normal"),
    ("bernoulli", lambda y, z, **kw: nllax.bernoulli.nll(y, logits=z, **kw),
     _refs.bernoulli_logits, "binary"),
    ("categorical", lambda k, z, **kw: nllax.categorical.nll(k, logits=z, **kw),
     _refs.categorical_logits, "labels"),
    ("poisson", lambda k, eta, **kw: nllax.poisson.nll(k, log_rate=eta, **kw),
     lambda k, eta: _refs.poisson_logpmf(k, np.exp(eta)), "counts"),
]


def _nll_data(kind, r, n=40):
    if kind == "normal":
        return r.normal(size=n), r.normal(size=n)
    if kind == "binary":
        return (r.uniform(size=n) < 0.5).astype(np.float64), r.normal(size=n) * 3
    if kind == "labels":
        return r.integers(0, 4, size=n), r.normal(size=(n, 4))
    return r.poisson(3.0, size=n).astype(np.float64), r.normal(size=n)


@pytest.mark.parametrize("case", NLL_CASES, ids=[c[0] for c in NLL_CASES])
def test_nll_reductions_weights_where_float64(x64, mode, case):
    _, nll, ref, kind = case
    r = _rng(7)
    data, pred = _nll_data(kind, r)
    n = data.shape[0]
    w = r.uniform(0.1, 3.0, size=n)
    mask = r.uniform(size=n) < 0.7
    lp = ref(data, pred)
    d, p = jnp.asarray(data), jnp.asarray(pred)

    W, M = jnp.asarray(w), jnp.asarray(mask)
    variants = {"sum": {}, "mean": dict(reduction="mean"), "none": dict(reduction="none"),
                "w": dict(weights=W), "w_mean": dict(weights=W, reduction="mean"),
                "m": dict(where=M), "m_mean": dict(where=M, reduction="mean"),
                "wm_mean": dict(where=M, weights=W, reduction="mean"),
                "m_none": dict(where=M, reduction="none")}
    if mode == "jit":  # every variant in one compiled program (one compile, not nine)
        got = jax.jit(lambda a, b: {k: nll(a, b, **kw) for k, kw in variants.items()})(d, p)
    else:
        got = {k: nll(d, p, **kw) for k, kw in variants.items()}

    # Every term has one sign (the densities here are below 1), so each sum of n terms is
    # within n eps relative of the exact one beyond the terms' own error: RTOL64 (4500 eps)
    # has room for n = 40.
    want = {"sum": -lp.sum(), "mean": -lp.mean(), "none": -lp, "w": -(w * lp).sum(),
            "w_mean": -(w * lp).sum() / w.sum(), "m": -lp[mask].sum(),
            "m_mean": -lp[mask].mean(), "wm_mean": -(w * lp)[mask].sum() / w[mask].sum(),
            "m_none": np.where(mask, -lp, 0.0)}
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=RTOL64, err_msg=key)


@pytest.mark.parametrize("case", NLL_CASES, ids=[c[0] for c in NLL_CASES])
def test_mask_equals_indexing_in_value_and_gradient(x64, case):
    _, nll, _, kind = case
    r = _rng(3)
    data, pred = _nll_data(kind, r)
    mask = r.uniform(size=data.shape[0]) < 0.6
    d, p = jnp.asarray(data), jnp.asarray(pred)
    # the two gradients in one compiled program (taken eagerly, every primitive of them
    # compiles on its own: ~65 programs a case); the indexing in NumPy
    g_mask, g_idx = jax.jit(lambda p, q, m, dm: (
        jax.grad(lambda p: nll(d, p, where=m))(p), jax.grad(lambda q: nll(dm, q))(q)))(
        p, pred[mask], mask, data[mask])
    np.testing.assert_allclose(g_mask[mask], g_idx, rtol=1e-13)
    assert np.all(np.asarray(g_mask)[~mask] == 0)


def test_masked_padding_does_not_leak_nan():
    """Padded labels of -1, padded NaN targets: masked out, value and gradient finite."""
    labels = jnp.array([0, 2, -1, -1])
    logits = jnp.ones((4, 3))
    mask = labels >= 0
    f = lambda z: nllax.categorical.nll(labels, logits=z, where=mask)  # noqa: E731
    assert np.isfinite(f(logits))
    # the gradients compiled (taken eagerly, every primitive compiles on its own)
    assert np.all(np.isfinite(jax.jit(jax.grad(f))(logits)))
    y = jnp.array([1.0, jnp.nan])
    g = jax.jit(jax.grad(lambda m: nllax.gaussian.nll(y, m, where=jnp.isfinite(y))))(jnp.zeros(2))
    np.testing.assert_array_equal(g, [-1.0, 0.0])


def test_weights_of_one_equal_no_weights():
    y = jnp.arange(5.0)
    m = jnp.ones(5)
    assert nllax.gaussian.nll(y, m, weights=jnp.ones(5)) == nllax.gaussian.nll(y, m)


def test_empty_reductions():
    """Documented: sum over no observations is 0; mean over none is NaN (0 / 0)."""
    e = jnp.zeros((0,))
    assert float(nllax.gaussian.nll(e, e)) == 0.0
    assert np.isnan(nllax.gaussian.nll(e, e, reduction="mean"))
    mask = jnp.zeros(3, bool)
    assert float(nllax.poisson.nll(jnp.ones(3), log_rate=jnp.zeros(3), where=mask)) == 0.0
    assert np.isnan(nllax.poisson.nll(jnp.ones(3), log_rate=jnp.zeros(3), where=mask,
                                      reduction="mean"))
    assert np.isnan(nllax.categorical.nll(jnp.zeros((0,), int), logits=jnp.zeros((0, 3)),
                                          reduction="mean"))


def test_broadcasting_documented_forms(x64):
    """Scalars, per-observation and per-column parameters broadcast; the data's shape
    is never enlarged."""
    r = _rng(5)
    y = r.normal(size=(6, 3))
    sd = np.exp(r.normal(size=3))
    got = nllax.gaussian.log_prob(jnp.asarray(y), 0.5, jnp.asarray(sd))
    np.testing.assert_allclose(got, stats.norm.logpdf(y, 0.5, sd), rtol=RTOL64)
    # One (K,) logit vector for every observation.
    labels = r.integers(0, 4, size=7)
    z = r.normal(size=4)
    got = nllax.categorical.log_prob(jnp.asarray(labels), logits=jnp.asarray(z))
    np.testing.assert_allclose(got, _refs.categorical_logits(labels, np.tile(z, (7, 1))),
                               rtol=RTOL64)


def test_integer_and_bool_data_are_promoted():
    y_int = jnp.array([0, 1, 1])
    z = jnp.array([0.3, -1.0, 2.0])
    a = nllax.bernoulli.log_prob(y_int, logits=z)
    b = nllax.bernoulli.log_prob(y_int.astype(bool), logits=z)
    c = nllax.bernoulli.log_prob(y_int.astype(jnp.float32), logits=z)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)
    assert a.dtype == jnp.float32
    assert nllax.poisson.log_prob(jnp.array([0, 3]), rate=2.0).dtype == jnp.float32


@pytest.mark.parametrize("dt", [jnp.float16, jnp.bfloat16])
def test_half_precision_computed_and_returned_in_float32(dt):
    y = jnp.array([0.5, 1.0, 2.0], dt)
    out = nllax.gaussian.log_prob(y, jnp.zeros(3, dt), jnp.asarray(1.5, dt))
    assert out.dtype == jnp.float32
    ref = stats.norm.logpdf(np.asarray(y, np.float64), 0.0, 1.5)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert nllax.bernoulli.nll(jnp.ones(3, dt), logits=jnp.ones(3, dt)).dtype == jnp.float32
    assert nllax.categorical.nll(jnp.array([0, 1]), logits=jnp.ones((2, 3), dt)).dtype == jnp.float32
    assert nllax.poisson.nll(jnp.ones(3, dt), log_rate=jnp.ones(3, dt)).dtype == jnp.float32
    assert nllax.losses.mse(jnp.ones(3, dt), jnp.ones(3, dt)).dtype == jnp.float32


def test_float32_inputs_stay_float32_under_x64(x64):
    y = jnp.ones(3, jnp.float32)
    assert nllax.gaussian.nll(y, y, 2.0).dtype == jnp.float32
    assert nllax.laplace.nll(y, y).dtype == jnp.float32
    assert nllax.poisson.nll(y, log_rate=y).dtype == jnp.float32


def test_strict_dtype_promotion_is_respected():
    """The library casts explicitly: no implicit promotion that strict mode would refuse."""
    with jax.numpy_dtype_promotion("strict"):
        y = jnp.ones(4, jnp.float32)
        nllax.gaussian.nll(y, y, 2.0, weights=jnp.ones(4, jnp.float32), where=y > 0)
        nllax.laplace.nll(y, y, log_scale=0.1, reduction="mean")
        nllax.bernoulli.nll(y, logits=y)
        nllax.bernoulli.nll(y, probs=y * 0.5)
        nllax.categorical.nll(jnp.array([0, 1]), logits=jnp.ones((2, 3)))
        nllax.categorical.nll(jnp.array([0, 1]), probs=jnp.ones((2, 2)) / 2)
        nllax.poisson.nll(y, log_rate=y)
        nllax.poisson.nll(y, rate=y)
        for name in ("sse", "mse", "sae", "mae", "binary_cross_entropy"):
            getattr(nllax.losses, name)(y, y)
        nllax.losses.cross_entropy(jnp.array([0, 1]), jnp.ones((2, 3)))
        nllax.losses.poisson(y, y)


def test_vmap_equals_loop():
    r = _rng(11)
    y = jnp.asarray(r.normal(size=(5, 8)), jnp.float32)
    m = jnp.asarray(r.normal(size=(5, 8)), jnp.float32)
    batched = jax.vmap(lambda a, b: nllax.laplace.nll(a, b, 0.5))(y, m)
    looped = jnp.stack([nllax.laplace.nll(y[i], m[i], 0.5) for i in range(5)])
    np.testing.assert_allclose(batched, looped, rtol=1e-6)
    labels = jnp.asarray(r.integers(0, 3, size=(4, 6)))
    z = jnp.asarray(r.normal(size=(4, 6, 3)), jnp.float32)
    batched = jax.vmap(lambda k, q: nllax.categorical.log_prob(k, logits=q))(labels, z)
    looped = jnp.stack([nllax.categorical.log_prob(labels[i], logits=z[i]) for i in range(4)])
    np.testing.assert_allclose(batched, looped, rtol=1e-6)
