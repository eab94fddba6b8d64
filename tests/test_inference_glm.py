"""nllax.summary with a nllax.Likelihood: the expected (Fisher) information
(``covariance="expected"``), Pearson's dispersion (``dispersion="pearson"``) and the t / F
tests that go with an estimated dispersion, against statsmodels' GLM on its bundled
datasets (float64, `x64` fixture).

statsmodels' ``GLM.fit()`` (IRLS, ``cov_type="nonrobust"``) takes its covariance from the
last weighted least-squares step, ``scale * (X' W X)^-1`` with the IRLS (Fisher) weights
``W``: the inverse *expected* information (its ``fit(method="newton")`` uses the observed
Hessian instead); ``scale="X2"`` is Pearson's chi2 / df_resid.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import ndtr

import _tolerances as tt
import nllax

sm = pytest.importorskip("statsmodels.api")
import _inference_models as models  # noqa: E402

from statsmodels.tools.sm_exceptions import DomainWarning  # noqa: E402

links = sm.families.links
# Both sides at the MLE to ~1e-10 relative (tol 1e-13 in statsmodels' IRLS, Gauss-Newton
# to convergence here): a standard error moves by its relative sensitivity to the
# parameters (O(1) here) times that, far below 1e-6.
SE_RTOL = 1e-6
PARAM_RTOL = 1e-6


def _sqrt_rate(beta, x):
    return {"rate": jnp.square(x @ beta)}  # Poisson with the sqrt link: sqrt(mu) = x beta


def _log_rate(beta, x):
    return {"log_rate": x @ beta}


def _probit(beta, x):
    return {"probs": ndtr(x @ beta)}


def _loc(beta, x):
    return {"loc": x @ beta}


POISSON_SQRT = nllax.Likelihood(nllax.poisson, _sqrt_rate)
POISSON_LOG = nllax.Likelihood(nllax.poisson, _log_rate)
PROBIT = nllax.Likelihood(nllax.bernoulli, _probit)
GAUSSIAN = nllax.Likelihood(nllax.gaussian, _loc)


def _fit(lik, beta0, y, x):
    r = nllax.fit(lik, jnp.asarray(beta0), jnp.asarray(y), jnp.asarray(x), throw=True)
    return r.params


def _cpunish():
    x, y, _, _ = models.cpunish()
    return x, y


@pytest.mark.parametrize("model", ["poisson_sqrt", "probit"])
def test_expected_information_against_statsmodels_glm(x64, model):
    if model == "poisson_sqrt":
        x, y = _cpunish()
        lik, family = POISSON_SQRT, sm.families.Poisson(links.Sqrt())
        beta0 = np.linalg.lstsq(x, np.sqrt(y + 0.5), rcond=None)[0]
    else:
        x, y = models.spector()
        lik, family = PROBIT, sm.families.Binomial(links.Probit())
        beta0 = np.zeros(x.shape[1])
    with warnings.catch_warnings():  # "the Sqrt link does not respect the domain"
        warnings.simplefilter("ignore", DomainWarning)
        glm = sm.GLM(y, x, family=family)
    beta = _fit(lik, beta0, y, x)
    models.close(beta, glm.fit(tol=1e-13).params, PARAM_RTOL)
    # statsmodels' covariances at our estimate (its IRLS stops on the deviance's change,
    # which leaves the parameters of the badly scaled cpunish design ~1e-7 apart, and the
    # standard errors move with them)
    res = glm.fit(start_params=np.asarray(beta), tol=1e-13)  # IRLS: expected information
    newton = glm.fit(start_params=np.asarray(beta), method="newton", tol=1e-13, maxiter=200)
    e = nllax.summary(lik, beta, y, x, covariance="expected")
    assert e.covariance == "expected" and "expected (Fisher)" in str(e)
    # the decrement sqrt(g' A^-1 g), A = cov^-1 (dispersion 1): near 0, as fit promises:
    # <= |g| / sqrt(lambda_min(A)) with |g| within fit's convergence test plus the
    # gradient's rounding (tt.fit_gradient_bound) ...
    cov = np.asarray(e.cov, np.float64)
    root_lmax = np.sqrt(np.linalg.eigvalsh(cov)[-1])
    g_max = tt.fit_gradient_bound(lik.nll, beta, jnp.asarray(y), jnp.asarray(x))
    assert e.newton_decrement <= g_max * root_lmax, (e.newton_decrement, g_max * root_lmax)
    # ... and equal to its definition from an independent gradient (the per-observation
    # terms summed here): the two gradients differ by at most twice the sum's rounding dg,
    # which moves the A^-1-norm by |dg| sqrt(lambda_max(cov)) (triangle inequality); a few
    # roundings of the quadratic form on top
    grads = tt.row_terms(lik.nll, beta, jnp.asarray(y), jnp.asarray(x))[1]
    g = grads.sum(axis=0)
    want = np.sqrt(g @ cov @ g)
    slack = (2 * np.linalg.norm(tt.sum_rounding(grads)) * root_lmax
             + tt.TERM_ROUNDINGS * len(g) * tt.EPS64 * want)
    assert abs(e.newton_decrement - want) <= slack, (e.newton_decrement, want, slack)
    models.close(e.stderr, res.bse, SE_RTOL)
    models.close(e.pvalues, res.pvalues, SE_RTOL)  # z tests, as statsmodels' GLM
    lo, hi = e.conf_int()
    models.close(np.c_[lo, hi], res.conf_int(), SE_RTOL)
    # a non-canonical link: the observed information differs, and is statsmodels'
    # Newton (observed Hessian) covariance
    o = nllax.summary(lik, beta, y, x)
    models.close(o.stderr, newton.bse, SE_RTOL)
    assert np.max(np.abs(np.asarray(o.stderr) / np.asarray(e.stderr) - 1)) > 1e-3
    # the bound log_lik is accepted too
    e2 = nllax.summary(lik.log_lik, beta, y, x, covariance="expected")
    np.testing.assert_array_equal(np.asarray(e2.cov), np.asarray(e.cov))


def test_expected_equals_observed_for_a_canonical_link(x64):
    x, y = _cpunish()
    beta = _fit(POISSON_LOG, np.zeros(x.shape[1]), y, x)
    e = nllax.summary(POISSON_LOG, beta, y, x, covariance="expected")
    o = nllax.summary(POISSON_LOG, beta, y, x)
    # the same matrix X' diag(mu) X by two roundings paths: n eps times the condition
    c = np.asarray(o.cov)
    scale = np.sqrt(np.outer(np.diag(c), np.diag(c)))
    models.within(e.cov, c, 10 * models.kappa(c) * len(y) * np.finfo(float).eps * scale)


def test_quasi_poisson_pearson_dispersion_against_statsmodels(x64):
    # quasi-Poisson: statsmodels GLM(Poisson).fit(scale="X2"); with use_t=True its
    # p-values and intervals are Student's t with df_resid = n - p, as R's summary.glm
    x, y = _cpunish()
    n, p = x.shape
    res = sm.GLM(y, x, family=sm.families.Poisson()).fit(tol=1e-13, scale="X2", use_t=True)
    beta = _fit(POISSON_LOG, np.zeros(p), y, x)
    s = nllax.summary(POISSON_LOG, beta, y, x, dispersion="pearson")
    assert s.dispersion_method == "pearson" and s.use_t and s.df_resid == n - p
    models.close(s.dispersion, res.scale, SE_RTOL)
    models.close(s.stderr, res.bse, SE_RTOL)
    models.close(s.zvalues, res.tvalues, SE_RTOL)
    models.close(s.pvalues, res.pvalues, SE_RTOL)
    lo, hi = s.conf_int(0.9)
    models.close(np.c_[lo, hi], res.conf_int(0.1), SE_RTOL)
    text = str(s)
    assert "P>|t|" in text and "dispersion (Pearson)" in text
    # Wald: F by default with an estimated dispersion (statsmodels' f_test)
    r = np.eye(p)[1:3]
    t = s.wald_test(r)
    ref = res.f_test(r)
    assert t.distribution == "F" and t.df_denom == n - p
    models.close(t.statistic, float(np.squeeze(ref.fvalue)), SE_RTOL)
    models.close(t.pvalue, float(ref.pvalue), SE_RTOL)
    # the expected information (canonical link: the same) with Pearson's dispersion
    e = nllax.summary(POISSON_LOG, beta, y, x, covariance="expected", dispersion="pearson")
    models.close(e.stderr, res.bse, SE_RTOL)
    # use_t=False: the same standard errors with normal p-values (statsmodels' default)
    z = nllax.summary(POISSON_LOG, beta, y, x, dispersion="pearson", use_t=False)
    res_z = sm.GLM(y, x, family=sm.families.Poisson()).fit(tol=1e-13, scale="X2")
    models.close(z.pvalues, res_z.pvalues, SE_RTOL)
    assert "P>|z|" in str(z)


def test_gaussian_pearson_dispersion_is_ols(x64):
    # Gaussian with the scale at 1 (its default): Pearson's dispersion is SSR / (n - p)
    # and the summary is statsmodels' OLS (bse, t p-values, t intervals)
    x, y, _ = models.macro()
    res = sm.OLS(y, x).fit()
    beta = _fit(GAUSSIAN, np.zeros(x.shape[1]), y, x)
    s = nllax.summary(GAUSSIAN, beta, y, x, dispersion="pearson")
    models.close(s.dispersion, res.scale, SE_RTOL)
    models.close(s.stderr, res.bse, SE_RTOL)
    models.close(s.pvalues, res.pvalues, SE_RTOL)
    lo, hi = s.conf_int()
    models.close(np.c_[lo, hi], res.conf_int(), SE_RTOL)


def test_pearson_with_freq_weights_equals_repeated_rows(x64):
    x, y, fw, _ = models.cpunish()
    idx = np.repeat(np.arange(len(y)), fw.astype(int))
    beta = _fit(POISSON_SQRT, np.linalg.lstsq(x, np.sqrt(y + 0.5), rcond=None)[0], y[idx],
                x[idx])  # the weighted MLE is that of the repeated rows
    w = nllax.summary(POISSON_SQRT, beta, y, x, covariance="expected", dispersion="pearson",
                      freq_weights=fw)
    r = nllax.summary(POISSON_SQRT, beta, y[idx], x[idx], covariance="expected",
                      dispersion="pearson")
    assert w.nobs == r.nobs and w.df_resid == r.df_resid
    models.close(w.dispersion, r.dispersion, 1e-12)
    models.close(w.stderr, r.stderr, 1e-10)


def test_t_quantile_against_scipy(x64):
    from scipy import stats

    from nllax._inference import _t_quantile, _t_two_sided

    for df in (1.0, 2.5, 10.0, 1e4):
        for level in (0.5, 0.95, 0.999999):
            q = float(_t_quantile(level, df, jnp.float64))
            # The bisection ends at the float64 resolution of log x, so the quantile
            # carries the relative error of JAX's betainc (its continued fraction),
            # scaled by |d log t / d log I| = 1/df at most in the tail (I ~ x^(df/2),
            # t ~ x^(-1/2)); 1e-9 is allowed for that error in the far tail (1 - level
            # = 1e-6), where x is as small as 1e-12.
            rtol = 1e-9 if level > 0.99 else 1e-11
            np.testing.assert_allclose(q, stats.t.ppf(0.5 + level / 2, df), rtol=rtol)
            np.testing.assert_allclose(float(_t_two_sided(q, df)), 1 - level, rtol=rtol)


def test_rao_score_test_uses_the_expected_information(x64):
    # H0: the last two coefficients are 0. Rao's statistic g' I^-1 g at the restricted
    # fit, I the expected information there (computed here by hand: X' W X with the
    # Poisson-sqrt Fisher weights 4)
    x, y = _cpunish()
    beta = _fit(POISSON_SQRT, np.linalg.lstsq(x, np.sqrt(y + 0.5), rcond=None)[0], y, x)
    s = nllax.summary(POISSON_SQRT, beta, y, x, covariance="expected")
    k = x.shape[1]
    t = s.score_test(np.eye(k)[-2:])
    assert t.covariance == "expected" and t.df == 2
    b = np.asarray(t.params_restricted)
    g = jax.grad(lambda b: jnp.sum(POISSON_SQRT.log_lik(b, jnp.asarray(y), jnp.asarray(x))))(
        jnp.asarray(b))
    info = 4 * x.T @ x  # d mu / d eta = 2 eta, Fisher weight (2 eta)^2 / mu = 4
    want = float(np.asarray(g) @ np.linalg.solve(info, np.asarray(g)))
    models.close(t.statistic, want, 1e-8)


def test_structure_errors(x64):
    x, y = _cpunish()
    beta = jnp.zeros(x.shape[1])
    with pytest.raises(ValueError, match="pass a nllax.Likelihood"):
        nllax.summary(models.poisson_ll, beta, x, y, covariance="expected")
    with pytest.raises(ValueError, match="pass a nllax.Likelihood"):
        nllax.summary(models.poisson_ll, beta, x, y, dispersion="pearson")
    with pytest.raises(ValueError, match="'pearson'"):
        nllax.summary(POISSON_LOG, beta, y, x, dispersion="deviance")
    two = nllax.Likelihood(nllax.gaussian, lambda p, x: {"loc": x @ p["b"],
                                                         "log_scale": p["s"]})
    with pytest.raises(ValueError, match="one predicted parameter"):
        nllax.summary(two, {"b": beta, "s": jnp.zeros(())}, y, x, covariance="expected")
    ordinal = nllax.Likelihood(nllax.ordinal, lambda p, x: {
        "location": x @ p, "cutpoints": jnp.array([0.0, 1.0])})
    with pytest.raises(ValueError, match="mean and variance"):
        nllax.summary(ordinal, beta, jnp.zeros(len(y), jnp.int32), x, dispersion="pearson")
    with pytest.raises(ValueError, match="sandwiches do not depend"):
        nllax.summary(POISSON_LOG, beta, y, x, covariance="HC0", dispersion="pearson")
