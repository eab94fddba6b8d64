"""The binomial and negative binomial families beyond their harness cases: the NB1
variance (the harness runs the default NB2: one case per family), limits (alpha -> 0 is
Poisson, n = 1 is Bernoulli, alpha = 1 is geometric), derivatives where finite
differences cannot reach (n = 1e9), the binomial's Fisher information, and the GLM
deviances' accuracy at a good fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from jax.test_util import check_grads
from scipy import special, stats

import _refs
import nllax
from cases import negative_binomial as NBC

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
NB = nllax.negative_binomial
BIN = nllax.binomial


# ----------------------------------------------------------------------------------------
# binomial


def test_binomial_matches_scipy_and_bernoulli(x64):
    rng = np.random.default_rng(0)
    n = rng.integers(0, 60, size=40).astype(np.float64)
    z = rng.normal(size=40) * 2
    k = rng.binomial(n.astype(np.int64), special.expit(z)).astype(np.float64)
    got = np.asarray(jax.jit(lambda k, n, z: BIN.log_prob(k, n, logits=z))(k, n, z))
    # scipy's float64 gammaln form is accurate for n < 60 (terms < 200: ~1e-13 absolute)
    np.testing.assert_allclose(got, stats.binom.logpmf(k, n, special.expit(z)), rtol=1e-12,
                               atol=1e-13)
    y = (k > 0).astype(np.float64)
    np.testing.assert_allclose(np.asarray(BIN.log_prob(y, 1.0, logits=z)),
                               np.asarray(nllax.bernoulli.log_prob(y, logits=z)), rtol=1e-14,
                               atol=1e-300)


def test_binomial_at_a_billion_trials_value_and_derivative():
    # float32, n = 1e9: the value against the decimal reference (the textbook form keeps
    # no digit), and the derivative k - n p, which central differences cannot check there
    # (curvature n p q = 2.4e8); k - n p in float32 is one rounding of n p (eps n p)
    n = np.float32(1e9)
    k = np.array([0.0, 1.0, 3.9999e8, 4e8, 4.0001e8, 1e9 - 7, 1e9], np.float32)
    z = np.full(k.shape, special.logit(0.4), np.float32)
    f = jax.jit(lambda k, z: (BIN.log_prob(k, n, logits=z),
                              jax.grad(lambda z: jnp.sum(BIN.log_prob(k, n, logits=z)))(z)))
    lp, g = map(np.asarray, f(jnp.asarray(k), jnp.asarray(z)))
    want = _refs.binomial_logpmf(k.astype(np.float64), 1e9, z.astype(np.float64))
    p = special.expit(z.astype(np.float64))
    # the case's bound: 16 eps32 of the terms added (the result and |k - np| (|z| + 1),
    # plus, at the ends, the exact n log q / n log p)
    mag = np.abs(want) + np.abs(k - 1e9 * p) * (np.abs(z) + 1.0) + 1.0
    assert np.all(np.abs(lp - want) <= 16 * EPS32 * mag), (lp, want)
    np.testing.assert_allclose(g, k.astype(np.float64) - 1e9 * p, rtol=0,
                               atol=4 * EPS32 * 1e9)


def test_binomial_extreme_logits_have_finite_gradients_and_hessians(x64):
    k = jnp.array([0.0, 5.0, 10.0, 0.0, 10.0])
    n = jnp.full(5, 10.0)
    z = jnp.array([-jnp.inf, 0.0, jnp.inf, -1e4, 1e4])
    lp = BIN.log_prob(k, n, logits=z)
    np.testing.assert_allclose(np.asarray(lp)[[0, 2, 3, 4]], 0.0, atol=1e-300)
    f = lambda z: BIN.nll(k, n, logits=z)  # noqa: E731
    # the derivatives compiled, in one program (op by op, each primitive of the Hessian
    # compiles on its own: ~200 compiles)
    g, h = jax.jit(lambda z: (jax.grad(f)(z), jax.hessian(f)(z)))(z)
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.isfinite(np.asarray(h)))
    # probabilities at the ends: 0 and 1 are exact, the unobserved outcome costs nothing
    grad_probs = jax.jit(jax.grad(lambda q, kk: BIN.nll(kk, 10.0, probs=q)))
    for p in (0.0, 1.0):
        kk = jnp.array([0.0 if p == 0 else 10.0])
        assert float(BIN.log_prob(kk, 10.0, probs=p)[0]) == 0.0
        g = grad_probs(jnp.asarray(0.5), kk)
        assert np.isfinite(float(g))
    assert float(BIN.log_prob(3.0, 10.0, probs=0.0)) == -np.inf


def test_binomial_fisher_information_is_the_expected_squared_score(x64):
    # (the harness's Fisher test needs a counts support; the binomial's is 0..n)
    n, z = 25.0, 0.7
    ks = jnp.arange(26.0)
    lp = BIN.log_prob(ks, n, logits=z)
    score = jax.jit(jax.vmap(jax.grad(lambda z, k: BIN.log_prob(k, n, logits=z)), (None, 0)))(
        jnp.asarray(z), ks)
    info = BIN.family.fisher_information(trials=jnp.asarray(n), logits=jnp.asarray(z))
    np.testing.assert_allclose(float(jnp.sum(jnp.exp(lp) * score**2)),
                               float(info["logits"]), rtol=1e-12)
    p = special.expit(z)
    info_p = BIN.family.fisher_information(trials=jnp.asarray(n), probs=jnp.asarray(p))
    np.testing.assert_allclose(float(info_p["probs"]), n / (p * (1 - p)), rtol=1e-14)


def test_successes_above_trials_is_nan_and_checked():
    k, n = jnp.array([1.0, 5.0, 2.0]), jnp.array([3.0, 4.0, 2.0])
    f = jax.jit(lambda z: BIN.nll(k, n, logits=z))
    z = jnp.zeros(3)
    assert np.isnan(float(f(z)))
    g = np.asarray(jax.grad(f)(z))
    assert np.isnan(g[1]) and np.all(np.isfinite(g[[0, 2]]))
    with pytest.raises(checkify.JaxRuntimeError, match="`successes` must be <= `trials`"):
        nllax.checked(f)(z)
    # masked: exempt
    m = jnp.array([True, False, True])
    assert np.isfinite(float(BIN.nll(k, n, logits=z, where=m)))


# ----------------------------------------------------------------------------------------
# negative binomial: NB1 (the harness covers NB2), limits


def _nb1_inputs(n, seed=0):
    rng = np.random.default_rng([seed, 1])
    return NBC._sample(rng, n, variance="nb1")


def test_nb1_matches_the_decimal_reference_and_scipy(x64):
    k, p = _nb1_inputs(12)
    want = _refs.nbinom_logpmf(k, p["log_mean"], p["dispersion"], "nb1")
    f = jax.jit(lambda k, e, a: (NB.log_prob(k, log_mean=e, dispersion=a, variance="nb1"),
                                 NB.log_prob(k, mean=jnp.exp(e), dispersion=a, variance="nb1")))
    for got in f(k, p["log_mean"], p["dispersion"]):
        # the NB2 case's rtol64 and reason: a few roundings plus the inputs' conditioning
        np.testing.assert_allclose(np.asarray(got), want, rtol=NBC.CASE.rtol64)
    mu = np.exp(p["log_mean"][:6])
    r = mu / p["dispersion"][:6]
    np.testing.assert_allclose(want[:6], stats.nbinom.logpmf(k[:6], r, r / (r + mu)),
                               rtol=1e-11)


def test_nb1_float32_within_the_case_bound():
    k, p = _nb1_inputs(64)
    k32 = k.astype(np.float32)
    e32 = p["log_mean"].astype(np.float32)
    a32 = p["dispersion"].astype(np.float32)
    got = np.asarray(jax.jit(lambda k, e, a: NB.log_prob(k, log_mean=e, dispersion=a,
                                                         variance="nb1"))(k32, e32, a32))
    e64, a64 = e32.astype(np.float64), a32.astype(np.float64)
    want = _refs.nbinom_logpmf(k32.astype(np.float64), e64, a64, "nb1")
    mag = NBC.magnitude(k32.astype(np.float64), e64, a64, "nb1")
    ratio = np.abs(got - want) / (EPS32 * mag)
    assert np.all(ratio <= NBC.CASE.f32_ulps), (NBC.CASE.f32_why, ratio.max())


@pytest.mark.parametrize("variance", ["nb1", "nb2"])
def test_nb_gradients_and_hessians_against_finite_differences(x64, variance):
    k, p = _nb1_inputs(6, seed=3)
    for kind, mean in (("log_mean", p["log_mean"]), ("mean", np.exp(p["log_mean"]))):
        def f(m, a):
            return NB.nll(k, **{kind: m}, dispersion=a, variance=variance) + jnp.sum(
                0.3 * NB.log_prob(k, **{kind: m}, dispersion=a, variance=variance))
        # eager, as before: under jit each of check_grads' JVP/VJP compositions is a large
        # program of its own (lgamma's derivatives), not shared between the four cases;
        # measured: 22.7 CPU s instead of 17.5 (bench/TEST_TIME.md)
        check_grads(f, (jnp.asarray(mean), jnp.asarray(p["dispersion"])), order=2,
                    modes=("fwd", "rev"), eps=1e-5)


def test_nb1_invalid_values_and_normalisation(x64):
    kw = dict(log_mean=jnp.log(jnp.array([2.0, 3.0, 4.0])), variance="nb1")
    for a in (-1.0, 0.0, np.nan):
        disp = jnp.array([0.5, a, 0.5])
        lp = np.asarray(NB.log_prob(jnp.array([1.0, 2.0, 3.0]), dispersion=disp, **kw))
        assert np.isnan(lp[1]) and np.all(np.isfinite(lp[[0, 2]]))
    with pytest.raises(checkify.JaxRuntimeError, match="`dispersion` must be > 0"):
        nllax.checked(lambda d: NB.nll(jnp.ones(3), dispersion=d, **kw))(
            jnp.array([0.5, -1.0, 0.5]))
    ks = jnp.arange(401.0)
    for mu, a in ((3.0, 0.5), (40.0, 2.0)):
        total = float(jnp.sum(jnp.exp(NB.log_prob(ks, mean=mu, dispersion=a, variance="nb1"))))
        assert abs(total - 1.0) <= 401 * 4 * EPS64


def test_nb_tends_to_poisson_and_geometric(x64):
    k = jnp.array([0.0, 1.0, 3.0, 12.0, 40.0, 1e4])
    mu = jnp.array([0.3, 2.0, 3.5, 9.0, 41.0, 1.0001e4])
    pois = np.asarray(nllax.poisson.log_prob(k, rate=mu))
    for variance in ("nb2", "nb1"):
        for a in (1e-10, 1e-14):
            got = np.asarray(NB.log_prob(k, mean=mu, dispersion=a, variance=variance))
            # the NB minus the Poisson log-pmf is O(alpha k^2) (nb2) / O(alpha k) (nb1);
            # beyond that, a few eps of the terms
            diff = np.abs(got - pois)
            bound = 2 * a * (k**2 + mu**2 + k + mu) + 64 * EPS64 * (np.abs(pois) + 1)
            assert np.all(diff <= bound), (variance, a, diff, bound)
    # float32 at alpha = 1e-9 (size 1e9): no cancellation, the Poisson value to a few eps
    k32, mu32 = k.astype(jnp.float32)[:5], mu.astype(jnp.float32)[:5]
    got = np.asarray(NB.log_prob(k32, mean=mu32, dispersion=jnp.float32(1e-9)))
    want = _refs.poisson_logpmf(np.asarray(k32, np.float64), np.asarray(mu32, np.float64))
    assert np.all(np.abs(got - want) <= 16 * EPS32 * (np.abs(want) + np.abs(
        np.asarray(k32) - np.asarray(mu32)) * np.abs(np.log(np.asarray(mu32, np.float64))) + 1))
    # alpha = 1: geometric, p(k) = q^k p with p = 1 / (1 + mu) (scipy counts trials >= 1)
    g = np.asarray(NB.log_prob(k[:5], mean=mu[:5], dispersion=1.0))
    np.testing.assert_allclose(g, stats.geom.logpmf(np.asarray(k[:5]) + 1,
                                                    1 / (1 + np.asarray(mu[:5]))), rtol=1e-13)


def test_nb_fisher_information_nb2_only():
    info = NB.family.fisher_information(log_mean=jnp.asarray(1.0), dispersion=jnp.asarray(0.5))
    np.testing.assert_allclose(float(info["log_mean"]), np.e / (1 + 0.5 * np.e), rtol=1e-6)
    assert NB.family.fisher_information(log_mean=jnp.asarray(1.0),
                                        dispersion=jnp.asarray(0.5), variance="nb1") == {}


# ----------------------------------------------------------------------------------------
# deviances


def test_deviances_keep_their_digits_at_a_good_fit():
    # y = 1e6, mu = y (1 + 1e-4): D = 2 [y log(y / mu) - (y - mu)] ~ y d^2 = 1e-2; the
    # textbook float32 form subtracts terms of 1e6 (no digit left); bd0's series keeps
    # them: the reference in float64 with log1p
    y = np.array([1e6, 5e4, 3.0, 0.0], np.float32)
    mu = (y.astype(np.float64) * (1 + 1e-4) + np.array([0, 0, 0, 0.25])).astype(np.float32)
    eta = np.log(mu.astype(np.float64)).astype(np.float32)
    got = np.asarray(nllax.losses.poisson_deviance(y, eta, reduction="none"))
    m = np.exp(eta.astype(np.float64))
    yy = y.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = 2 * np.where(yy > 0, -yy * np.log1p((m - yy) / yy) + (m - yy), m)
    # conditioning: the rounding of eta moves D by 2 |mu - y| |eta| eps
    bound = 16 * EPS32 * (want + 2 * np.abs(m - yy) * (np.abs(eta) + 1)) + 1e-30
    assert np.all(np.abs(got - want) <= bound), (got, want)
    # the binomial deviance is 0 at p = k / n and positive elsewhere
    k, n = jnp.array([0.0, 3.0, 10.0]), jnp.array([10.0, 10.0, 10.0])
    z = jnp.array([-jnp.inf, np.log(3 / 7), jnp.inf])
    np.testing.assert_allclose(np.asarray(nllax.losses.binomial_deviance(
        k, n, z, reduction="none")), 0.0, atol=1e-6)
    assert float(nllax.losses.binomial_deviance(k, n, jnp.zeros(3))) > 0
