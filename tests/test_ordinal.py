"""The ordinal family beyond its harness case: the probit link through the same harness
tests (its own float64 reference), accuracy where naive CDF differences keep no digit
(tails, narrow and nearly certain intervals), the binary special case, shared against
per-observation cut-points, extremes, and fits against statsmodels' OrderedModel (logit
and probit) on the UCLA admissions data bundled with statsmodels."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

import _harness as H
import nllax
import test_harness_float32 as T32
import test_harness_gradients as TG
import test_harness_reference as TR
from cases import ordinal as ORD

sm = pytest.importorskip("statsmodels")

F64 = np.float64
EPS64 = H.EPS64


# ----------------------------------------------------------------------------------------
# the probit link through the harness


def probit_reference(labels, location, cutpoints):
    """log(Phi(b) - Phi(a)) from SciPy: ``norm.logcdf`` / ``norm.logsf`` for the end
    labels, log1p of minus the two tails for a nearly certain label, and otherwise the
    normaliser of SciPy's truncated normal, recovered as
    ``norm.logpdf(x) - truncnorm.logpdf(x, a, b)`` at the point of [a, b] nearest 0 (the
    subtraction costs eps |x|^2 / 2 absolutely, below 1e-14 of |log p| for the cases here)."""
    lo, hi, eta = ORD._bounds(labels, location, cutpoints)
    a, b = lo - eta, hi - eta
    out = np.empty(a.shape)
    for i in np.ndindex(a.shape):
        if np.isinf(a[i]):
            out[i] = stats.norm.logcdf(b[i])
        elif np.isinf(b[i]):
            out[i] = stats.norm.logsf(a[i])
        elif a[i] < 0 < b[i] and stats.norm.cdf(a[i]) + stats.norm.sf(b[i]) < 0.5:
            # nearly certain: the complement of the two (positive) tails
            out[i] = np.log1p(-(stats.norm.cdf(a[i]) + stats.norm.sf(b[i])))
        else:
            x = min(max(0.0, a[i]), b[i])
            out[i] = stats.norm.logpdf(x) - stats.truncnorm.logpdf(x, a[i], b[i])
    return out


def _probit_magnitude(labels, location, cutpoints):
    # as for the logit (cases/ordinal.py): one rounding in a and in b, each moving log p by
    # eps |x| phi(x) / p, and a sum of terms no larger than the log-CDFs involved
    lo, hi, eta = ORD._bounds(labels, location, cutpoints)
    lp = probit_reference(labels, location, cutpoints)
    p = np.exp(lp)
    a, b = lo - eta, hi - eta
    out = np.abs(lp) + 1.0
    for x in (a, b):
        fin = np.isfinite(x)
        xs = np.where(fin, x, 0.0)
        out = out + np.where(fin, np.abs(xs) * stats.norm.pdf(xs) / p
                             + np.abs(stats.norm.logcdf(-np.abs(xs))), 0.0)
    return out


PROBIT = dataclasses.replace(
    ORD.CASE, options={"link": "probit"}, reference=probit_reference,
    magnitude=_probit_magnitude,

    f32_why="one rounding each in a and b (the condition bound of the magnitude), the "
            "two-tailed log_ndtr (a few eps of |log Phi|) and a sum of two terms")


def test_probit_reference_and_reductions_float64():
    with jax.enable_x64(True):
        TR.test_log_prob_and_reductions_match_reference_float64(None, (PROBIT, {}))


@jax.jit
def _probit_d2_location(y, eta, c):
    f = lambda e, y, c: nllax.ordinal.log_prob(y, e, cutpoints=c, link="probit")  # noqa: E731
    return jax.vmap(jax.grad(jax.grad(f)))(eta, y, c)


def test_probit_gradients_and_hessian():
    # first derivatives against central differences (the harness's check on the reduced
    # NLL; its log_prob half is the same body); the second derivative in the location
    # against its closed form, d^2 log p / d eta^2 = (a phi(a) - b phi(b)) / p - g^2 with
    # g = (phi(a) - phi(b)) / p; and the whole Hessian finite and symmetric
    with jax.enable_x64(True):
        data, params, _ = H.inputs(PROBIT, {}, n=6)
        names = H.float_args(PROBIT, params)
        f = jax.jit(H.canonical_grad_fn(PROBIT, H.to_jax(data), {}, {
            k: H.to_jax(v) for k, v in params.items()}, names, "nll"))
        # check_grads compares with central differences of step 1e-5 at its float64
        # gradient tolerance (1e-5 relative, jax.test_util): truncation ~ (1e-5)^2 |f'''|/6
        # and rounding ~ eps64 |f| / 1e-5 = 2e-11 |f| are orders of magnitude below it for
        # this smooth function of order-1 inputs (n = 6)
        check_grads(f, [H.to_jax(params[k]) for k in names], order=1, modes=("fwd", "rev"),
                    eps=1e-5)
        TG.test_hessian_is_finite_and_symmetric(None, (PROBIT, {}))
        got = np.asarray(_probit_d2_location(jnp.asarray(data), H.to_jax(params["location"]),
                                             H.to_jax(params["cutpoints"])))
    lo, hi, eta = ORD._bounds(data, params["location"], params["cutpoints"])
    a, b = lo - eta, hi - eta
    p = np.exp(probit_reference(data, params["location"], params["cutpoints"]))

    def phi(x):
        return np.where(np.isfinite(x), stats.norm.pdf(np.where(np.isfinite(x), x, 0.0)), 0.0)

    def xphi(x):
        return np.where(np.isfinite(x), np.where(np.isfinite(x), x, 0.0) * phi(x), 0.0)

    g = (phi(a) - phi(b)) / p
    want = (xphi(a) - xphi(b)) / p - g ** 2
    # a few roundings of terms of size g^2 and |x| phi / p (the tails: the hazard squared)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.max(np.abs(want)))


def test_probit_float32_accuracy():
    T32.test_float32_accuracy((PROBIT, {}))


def test_probit_probabilities_sum_to_one(x64):
    for params in PROBIT.normalisation:
        c = jnp.asarray(params["cutpoints"])
        lp = nllax.ordinal.log_prob(jnp.arange(ORD.K), params["location"], cutpoints=c,
                                    link="probit")
        # K log-probabilities each within a few eps relative, exp and a sum of K terms
        assert abs(float(jnp.sum(jnp.exp(lp))) - 1.0) <= 16 * ORD.K * EPS64


# ----------------------------------------------------------------------------------------
# accuracy where the naive formula fails


def _probit_interval_midpoint(a, b):
    """log(Phi(b) - Phi(a)) for a narrow interval: the integral of phi over [a, b] by the
    midpoint expansion log(d phi(m)) + log1p(d^2 (m^2 - 1) / 24) + O(d^4) (the next term
    is d^4 (m^4 - 6 m^2 + 3) / 1920 - (d^2 (m^2 - 1) / 24)^2 / 2, below 1e-20 here)."""
    d, m = b - a, 0.5 * (a + b)
    return math.log(d) + stats.norm.logpdf(m) + math.log1p(d * d * (m * m - 1) / 24)


@functools.lru_cache(maxsize=None)
def _lp64(link):
    return jax.jit(lambda y, eta, c: nllax.ordinal.log_prob(y, eta, cutpoints=c, link=link))


def test_accuracy_where_naive_differences_cancel(x64):
    # (label, location, cut-points): narrow intervals, a nearly certain middle label, and
    # intervals deep in either tail, where sigmoid(b) - sigmoid(a) or Phi(b) - Phi(a) in
    # float64 keeps few or no digits.
    points = [
        (1, 0.0, [-1e-9, 1e-9]),          # width 2e-9 across 0
        (1, 3.0, [3.0 + 1e-7, 3.0 + 2e-7]),  # width 1e-7 beside the location
        (1, 0.0, [-30.0, 25.0]),           # nearly certain: log p ~ -1e-11
        (1, -40.0, [10.0, 10.5]),          # both CDFs within 1e-22 of 1
        (1, 40.0, [-10.5, -10.0]),         # both CDFs below 1e-22
        (2, 0.0, [-5.0, 30.0]),            # an end label deep in the upper tail
    ]
    y = jnp.asarray([p[0] for p in points])
    eta = jnp.asarray([p[1] for p in points], jnp.float64)
    c = jnp.asarray([p[2] for p in points], jnp.float64)
    got = np.asarray(_lp64("logit")(y, eta, c))
    want = ORD.logit_reference(np.asarray(y), np.asarray(eta), np.asarray(c))
    # the inputs are exact; the computed a = c - eta, b and d are one rounding each, moving
    # log p by at most eps (|a| f(a) + |b| f(b)) / p + eps |c| / d (tiny here): 64 eps
    # relative to max(|log p|, 1) covers it with room
    np.testing.assert_allclose(got, want, rtol=64 * EPS64, atol=0)
    got = np.asarray(_lp64("probit")(y[:2], eta[:2], c[:2]))
    want = np.array([_probit_interval_midpoint(b[0] - e, b[1] - e) for _, e, b in points[:2]])
    # narrow intervals: the midpoint expansion is exact to 1e-20. Across 0 the erf form
    # loses nothing; beside 0 (the second point, reflected to [-2e-7, -1e-7]) the
    # log-difference t = log Phi(b) - log Phi(a) ~ d phi / Phi carries an absolute error of
    # a few eps |log Phi(b)|, i.e. eps |log Phi| Phi / (d phi) relative in p (see the
    # module docstring)
    b2, d = -1e-7, 1e-7
    amp = abs(stats.norm.logcdf(b2)) * stats.norm.cdf(b2) / (d * stats.norm.pdf(b2))
    bound = 8 * EPS64 * np.array([1.0, amp]) / np.abs(want) + 8 * EPS64
    assert np.all(np.abs(got - want) <= bound * np.abs(want)), (got, want)
    got = np.asarray(_lp64("probit")(y[2:], eta[2:], c[2:]))
    want = probit_reference(np.asarray(y[2:]), np.asarray(eta[2:]), np.asarray(c[2:]))
    assert np.all(np.isfinite(got)) and got[0] < 0
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_two_labels_are_a_binary_model(x64):
    # K = 2: P(y = 1) = 1 - F(c - eta) = F(eta - c), the Bernoulli with logits eta - c
    # (logit) and Phi(eta - c) (probit)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 12)
    eta = rng.normal(size=12) * 3
    c = np.array([0.4])
    got = _lp64("logit")(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(c))
    want = nllax.bernoulli.log_prob(jnp.asarray(y, jnp.float64), logits=jnp.asarray(eta - c))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=8 * EPS64)
    got = _lp64("probit")(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(c))
    want = np.where(y == 1, stats.norm.logcdf(eta - c), stats.norm.logcdf(c - eta))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13)


def test_shared_cutpoints_equal_per_observation_rows_and_masks():
    rng = np.random.default_rng(4)
    y = jnp.asarray(rng.integers(0, 4, 10))
    eta = jnp.asarray(rng.normal(size=10), jnp.float32)
    c = jnp.asarray([-1.0, 0.3, 1.2], jnp.float32)
    rows = jnp.broadcast_to(c, (10, 3))
    m = jnp.asarray(rng.uniform(size=10) < 0.6)

    @jax.jit
    def both(y, eta, c, rows, m):
        f = lambda cc: nllax.ordinal.nll(y, eta, cutpoints=cc, where=m)  # noqa: E731
        return jax.value_and_grad(f)(c), jax.value_and_grad(f)(rows)

    (v1, g1), (v2, g2) = both(y, eta, c, rows, m)
    # the same terms summed in the same order: equal to rounding of the sum
    assert abs(float(v1) - float(v2)) <= 4 * H.EPS32 * abs(float(v1))
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2).sum(0), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(g2)[~np.asarray(m)] == 0)  # masked rows: no gradient


@functools.lru_cache(maxsize=None)
def _extremes(link):
    def one(eta, label, c):
        f = lambda e, cc: nllax.ordinal.nll(label, e, cutpoints=cc, link=link)  # noqa: E731
        return f(eta, c), jax.grad(f, argnums=(0, 1))(eta, c), jax.hessian(
            f, argnums=(0, 1))(eta, c)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def test_extreme_locations_have_finite_gradients_and_hessians(x64):
    # locations of +-1e4 (optax's extreme-logit test) and +-40, every label, both links
    c = jnp.asarray([-1.0, 0.5, 2.0])
    eta = jnp.repeat(jnp.asarray([-1e4, -40.0, 40.0, 1e4]), 4)
    labels = jnp.tile(jnp.arange(4), 4)
    for link in ("logit", "probit"):
        out = _extremes(link)(eta, labels, c)
        for x in jax.tree.leaves(out):
            assert np.all(np.isfinite(np.asarray(x))), link


# ----------------------------------------------------------------------------------------
# fits against statsmodels' OrderedModel


def _ucla():
    import pandas as pd
    import statsmodels

    path = os.path.join(os.path.dirname(statsmodels.__file__), "miscmodels", "tests",
                        "results", "ologit_ucla.csv")
    if not os.path.exists(path):
        pytest.skip("statsmodels' test data are not installed")
    d = pd.read_csv(path)
    levels = ["unlikely", "somewhat likely", "very likely"]
    y = pd.Categorical(d["apply"], categories=levels, ordered=True).codes.astype(np.int32)
    x = d[["pared", "public", "gpa"]].to_numpy(np.float64)
    return y, x


def _cutpoints(theta):
    # statsmodels' parametrisation: the first cut-point, then logs of the increments
    return jnp.cumsum(jnp.concatenate([theta[:1], jnp.exp(theta[1:])]))


def _ordinal_ll(p, x, y, link):
    return nllax.ordinal.log_prob(y, x @ p["beta"], cutpoints=_cutpoints(p["theta"]),
                                  link=link)


def logit_ll(p, x, y):
    return _ordinal_ll(p, x, y, "logit")


def probit_ll(p, x, y):
    return _ordinal_ll(p, x, y, "probit")


LOG_LIK = {"logit": logit_ll, "probit": probit_ll}


@functools.lru_cache(maxsize=None)
def _objective(link):
    ll = LOG_LIK[link]
    return lambda p, x, y: -jnp.sum(ll(p, x, y))


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_fit_matches_statsmodels_ordered_model(x64, link):
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    y, x = _ucla()
    model = OrderedModel(y, x, distr=link)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence chatter
        res = model.fit(method="bfgs", disp=0, maxiter=2000, gtol=1e-11)
    # statsmodels' optimum: BFGS on OrderedModel's numerical score stops ~2e-7 (relative)
    # from the maximum (for the logit its line search reports a loss of precision), inside
    # the 1e-6 compared; nllax's Newton uses exact derivatives, and the assertion below
    # shows its estimate is at least as good by statsmodels' own log-likelihood
    sm_params = np.asarray(res.params)
    sm_bse = np.asarray(res.bse)

    p0 = {"beta": jnp.zeros(3), "theta": jnp.asarray([0.0, 0.0])}
    fit = nllax.fit(_objective(link), p0, jnp.asarray(x), jnp.asarray(y), throw=True)
    s = nllax.summary(LOG_LIK[link], fit.params, jnp.asarray(x), jnp.asarray(y))
    got = np.concatenate([np.asarray(fit.params["beta"]), np.asarray(fit.params["theta"])])
    se = np.concatenate([np.asarray(s.stderr["beta"]), np.asarray(s.stderr["theta"])])
    # the issue's tolerances; statsmodels' standard errors come from a central-difference
    # Hessian (error O(h^2), h ~ eps^(1/4) |x|: ~1e-8 relative) at its own estimate (which
    # moves them by ~3e-7 times the third derivative: measured 3e-6 relative)
    np.testing.assert_allclose(got, sm_params, rtol=1e-6)
    np.testing.assert_allclose(se, sm_bse, rtol=1e-5)
    # and the log-likelihood of each observation at statsmodels' estimate (its naive CDF
    # difference is accurate here: every probability of these data is above 1e-3)
    p_sm = {"beta": jnp.asarray(sm_params[:3]), "theta": jnp.asarray(sm_params[3:])}
    mine = np.asarray(LOG_LIK[link](p_sm, jnp.asarray(x), jnp.asarray(y)))
    np.testing.assert_allclose(mine, model.loglikeobs(sm_params), rtol=1e-12)
    assert abs(float(s.loglik) - res.llf) <= 1e-9 * abs(res.llf)
    # statsmodels' log-likelihood is no higher at its estimate than at nllax's (to the
    # rounding of a sum of 400 terms)
    assert model.loglike(got) >= res.llf - 400 * EPS64 * abs(res.llf)
