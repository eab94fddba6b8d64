"""GLM fits against statsmodels on its bundled data sets (float64): the binomial with
trials (star98, logit link), the negative binomial count models NB2 and NB1 with the
dispersion estimated by maximum likelihood (randhie), and the GLM negative binomial with
a fixed dispersion (randhie), whose reported standard errors come from the *expected*
information and so check the family's declared Fisher information.

Tolerances (the issue's: parameters 1e-6, standard errors 1e-5 relative), and why they
hold with room: both sides stop at their MLE, nllax by damped Newton with a relative step
below tol = eps^(2/3) = 3.7e-11 (quadratic convergence: ~tol^2 from theta-hat),
statsmodels by IRLS / Newton with tol=1e-12 here (IRLS stops on the relative change of
the deviance, so its parameters are only ~sqrt(tol) converged: measured 5e-8 for the GLM
negative binomial, still 20x inside 1e-6). The worst conditioning is star98's
(cond(X'X) = 1.2e13 on the raw regressors, cond of the Fisher matrix similar): a gradient
accurate to eps |g| then moves theta-hat by up to cond * eps ~ 3e-3 relative in the worst
direction *in principle*, but that direction is the column scale, which both sides share;
measured 5e-13 (params) and 4e-10 (standard errors). The standard errors are the inverse
of the same Hessian (statsmodels' analytic one for the canonical links; for NB its
analytic Hessian in (beta, alpha)), agreeing to rounding times the condition number.
The log-likelihoods at statsmodels' estimate are compared observation by observation:
two float64 implementations of one formula, to IMPL_ROUNDINGS eps of the log-gamma and
log terms they add and cancel (plus the linear predictor's rounding times the
derivative), and the total log-likelihood to the sum of those bounds, the sums' rounding
and the objective's gap between the two estimates."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import _tolerances as tt
import nllax

sm = pytest.importorskip("statsmodels.api")

PARAM_RTOL, SE_RTOL = 1e-6, 1e-5  # the tolerances against statsmodels (see above)


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence / domain chatter
        return fn(*a, **kw)


def _report(name, got, se, params, bse):
    print(f"\n{name}: max relative difference params {np.max(np.abs(got / params - 1)):.1e}, "
          f"standard errors {np.max(np.abs(se / bse - 1)):.1e}")
    np.testing.assert_allclose(got, params, rtol=PARAM_RTOL, err_msg=name)
    np.testing.assert_allclose(se, bse, rtol=SE_RTOL, err_msg=name)


# ----------------------------------------------------------------------------------------
# binomial with trials: star98


def binomial_ll(beta, X, k, n):
    return nllax.binomial.log_prob(k, n, logits=X @ beta)


def _objective_gap(nll, hat, other, *args):
    """Bound on ``|nll(other) - nll(hat)|`` near the minimiser ``hat``: Taylor at ``hat``,
    ``|g| |d| + d' H d / 2`` with ``d = other - hat``, doubled for the Hessian's change
    along the segment (relative O(|d|), and |d| ~ 1e-8 here), plus the rounding of the
    two values' sums is counted by the caller."""
    d = np.asarray(other, np.float64) - np.asarray(hat, np.float64)
    # gradient and Hessian in one compiled program (op by op, every primitive of the
    # Hessian compiles on its own)
    g, h = (np.asarray(a, np.float64) for a in
            jax.jit(lambda b, *a: (jax.grad(nll)(b, *a), jax.hessian(nll)(b, *a)))(hat, *args))
    return float(2 * (np.linalg.norm(g) * np.linalg.norm(d) + 0.5 * d @ h @ d))


def _binomial_nll(beta, X, k, n):
    return -jnp.sum(binomial_ll(beta, X, k, n))


def _star98_predictor(beta, X, n):
    return {"trials": n, "logits": X @ beta}


def test_binomial_star98_matches_statsmodels_glm(x64):
    d = sm.datasets.star98.load_pandas()
    k = d.endog["NABOVE"].to_numpy(np.float64)
    n = k + d.endog["NBELOW"].to_numpy(np.float64)
    X = sm.add_constant(d.exog.to_numpy(np.float64))
    # statsmodels: endog (successes, failures), Binomial family, logit link (canonical:
    # its IRLS covariance is the observed one)
    res = _quiet(sm.GLM(np.column_stack([k, n - k]), X, family=sm.families.Binomial()).fit,
                 tol=1e-13, maxiter=100)
    args = tuple(jnp.asarray(a) for a in (X, k, n))
    r = nllax.fit(_binomial_nll, jnp.zeros(X.shape[1]), *args, throw=True)
    s = nllax.summary(binomial_ll, r.params, *args)
    _report("GLM Binomial (star98)", np.asarray(r.params), np.asarray(s.stderr),
            np.asarray(res.params), np.asarray(res.bse))
    # the log-likelihood at statsmodels' estimate, per observation, against SciPy's
    # gammaln-based binom.logpmf: its error is a few eps of the log-gamma terms it
    # cancels (n log n <= 1e5 here), so 64 eps of those terms
    ll = np.asarray(binomial_ll(jnp.asarray(res.params), *args))
    want = stats.binom.logpmf(k, n, res.mu)
    bound = 64 * np.finfo(np.float64).eps * (special.gammaln(n + 1) + np.abs(want) + 1)
    assert np.all(np.abs(ll - want) <= bound)
    # statsmodels' llf is the same sum (its Binomial family scales by the trials): the
    # per-observation bound summed, and each side's n-term sum's rounding
    # (tt.sum_rounding); nllax's own log-likelihood is taken at its own estimate, lower by
    # the objective's gap between the two points (_objective_gap)
    gap = _objective_gap(_binomial_nll, r.params, jnp.asarray(res.params), *args)
    llf_bound = np.sum(bound) + 2 * tt.sum_rounding(ll) + gap
    assert abs(float(s.loglik) - res.llf) <= llf_bound, (float(s.loglik) - res.llf, llf_bound)
    # the same fit through nllax.Likelihood (Gauss-Newton on the family's structure; the
    # trials are a fixed entry of the predictor's output)
    lik = nllax.Likelihood(nllax.binomial, _star98_predictor)
    r2 = nllax.fit(lik, jnp.zeros(X.shape[1]), args[1], args[0], args[2], throw=True)
    np.testing.assert_allclose(np.asarray(r2.params), res.params, rtol=PARAM_RTOL)
    # the expected information of the binomial (n p q per observation, the family's
    # declared Fisher information) gives statsmodels' covariance too (canonical link)
    info = nllax.binomial.family.fisher_information(trials=jnp.asarray(n),
                                                    logits=jnp.asarray(X @ res.params))
    cov = np.linalg.inv(X.T @ (np.asarray(info["logits"])[:, None] * X))
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), res.bse, rtol=SE_RTOL)


# ----------------------------------------------------------------------------------------
# negative binomial: randhie


def _randhie():
    d = sm.datasets.randhie.load()
    y = np.asarray(d.endog, np.float64)
    X = sm.add_constant(np.asarray(d.exog, np.float64), prepend=False)
    return y, X


def nb_ll(variance):
    def ll(p, X, y):
        return nllax.negative_binomial.log_prob(y, log_mean=X @ p["beta"],
                                                dispersion=p["alpha"], variance=variance)
    return ll


def nb_nll_log_alpha(variance):
    # fitted on log(alpha) (unconstrained); the summary then takes alpha itself, whose
    # observed-information standard error is statsmodels' (invariance of the MLE)
    def nll(p, X, y):
        return -jnp.sum(nllax.negative_binomial.log_prob(
            y, log_mean=X @ p["beta"], dispersion=jnp.exp(p["log_alpha"]), variance=variance))
    return nll


NB_LL = {v: nb_ll(v) for v in ("nb2", "nb1")}
NB_NLL = {v: nb_nll_log_alpha(v) for v in ("nb2", "nb1")}


@pytest.mark.parametrize("variance", ["nb2", "nb1"])
def test_negative_binomial_randhie_matches_statsmodels(x64, variance):
    from statsmodels.discrete.discrete_model import NegativeBinomial

    y, X = _randhie()
    res = _quiet(NegativeBinomial(y, X, loglike_method=variance).fit, method="newton",
                 maxiter=100, tol=1e-12, disp=0)
    assert res.mle_retvals["converged"]
    args = (jnp.asarray(X), jnp.asarray(y))
    r = nllax.fit(NB_NLL[variance], {"beta": jnp.zeros(X.shape[1]),
                                     "log_alpha": jnp.asarray(0.0)}, *args, throw=True)
    hat = {"beta": r.params["beta"], "alpha": jnp.exp(r.params["log_alpha"])}
    s = nllax.summary(NB_LL[variance], hat, *args)
    got = np.append(np.asarray(hat["beta"]), float(hat["alpha"]))  # statsmodels: alpha last
    se = np.append(np.asarray(s.stderr["beta"]), float(s.stderr["alpha"]))
    _report(f"NegativeBinomial({variance}) (randhie)", got, se, np.asarray(res.params),
            np.asarray(res.bse))
    p = np.asarray(res.params)
    ll = np.asarray(NB_LL[variance]({"beta": jnp.asarray(p[:-1]), "alpha": jnp.asarray(p[-1])},
                                    *args))
    want = res.model.loglikeobs(p)
    bound = _nb_ll_bound(y, X, p[:-1], p[-1], variance)
    assert np.all(np.abs(ll - want) <= bound), np.max(np.abs(ll - want) / bound)


# Two float64 implementations of one log-likelihood formula: each log-gamma (SciPy's,
# XLA's) within a few ulps of max(|value|, 1), up to five pieces a side, two sides: 64
# roundings of the pieces' absolute values (as for star98 above).
IMPL_ROUNDINGS = 64


def _nb_ll_bound(y, X, beta, alpha, variance):
    """Per-observation bound on the difference of two implementations of the negative
    binomial log-likelihood at ``(beta, alpha)``: IMPL_ROUNDINGS eps of the pieces they
    add and cancel, plus each side's own rounding of the linear predictor ``X beta``
    (``(d + 2) eps |X| |beta|``) times ``|d ll / d eta|`` (its condition number)."""
    eps = np.finfo(np.float64).eps
    eta = X @ beta
    mu = np.exp(eta)
    size = 1.0 / alpha if variance == "nb2" else mu / alpha
    if variance == "nb2":
        rest = [size * np.log1p(alpha * mu), y * np.log(alpha * mu / (1 + alpha * mu))]
        dll = (y - mu) / (1 + alpha * mu)
    else:
        rest = [size * np.log1p(alpha), y * np.log(alpha / (1 + alpha))]
        dll = size * (special.digamma(y + size) - special.digamma(size) - np.log1p(alpha))
    pieces = [special.gammaln(y + size), special.gammaln(size), special.gammaln(y + 1)] + rest
    size_sum = np.sum(np.abs(np.broadcast_arrays(*pieces)), axis=0) + 1
    d_eta = (X.shape[1] + 2) * eps * (np.abs(X) @ np.abs(beta))
    return IMPL_ROUNDINGS * eps * size_sum + 2 * np.abs(dll) * d_eta


def nb_glm_ll(beta, X, y, alpha):
    return nllax.negative_binomial.log_prob(y, log_mean=X @ beta, dispersion=alpha)


def _nb_glm_nll(beta, X, y, alpha):
    return -jnp.sum(nb_glm_ll(beta, X, y, alpha))


def test_glm_negative_binomial_fixed_alpha_matches_statsmodels(x64):
    y, X = _randhie()
    alpha = 1.25  # fixed (near the NB2 estimate 1.29)
    model = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=alpha))
    res = _quiet(model.fit, tol=1e-13, maxiter=100)  # IRLS: expected-information bse
    res_oim = _quiet(model.fit, method="newton", tol=1e-13, maxiter=100)  # observed
    args = (jnp.asarray(X), jnp.asarray(y), jnp.asarray(alpha))
    r = nllax.fit(_nb_glm_nll, jnp.zeros(X.shape[1]), *args, throw=True)
    s = nllax.summary(nb_glm_ll, r.params, *args)
    # the log link is not the NB's canonical link: observed and expected information
    # differ at the MLE; nllax.summary's "observed" is statsmodels' Newton (OIM) bse
    _report("GLM NegativeBinomial(alpha=1.25), observed (randhie)", np.asarray(r.params),
            np.asarray(s.stderr), np.asarray(res_oim.params), np.asarray(res_oim.bse))
    # ... and the family's declared Fisher information mu / (1 + alpha mu) gives the
    # IRLS (expected information) standard errors
    info = nllax.negative_binomial.family.fisher_information(
        log_mean=jnp.asarray(X) @ r.params, dispersion=jnp.asarray(alpha))["log_mean"]
    cov = np.linalg.inv(X.T @ (np.asarray(info)[:, None] * X))
    _report("GLM NegativeBinomial(alpha=1.25), expected (randhie)", np.asarray(r.params),
            np.sqrt(np.diag(cov)), np.asarray(res.params), np.asarray(res.bse))
    ll = np.asarray(nb_glm_ll(jnp.asarray(res.params), *args))
    want = res.model.family.loglike_obs(y, res.mu, scale=1.0)
    bound = _nb_ll_bound(y, X, np.asarray(res.params), alpha, "nb2")
    assert np.all(np.abs(ll - want) <= bound), np.max(np.abs(ll - want) / bound)
