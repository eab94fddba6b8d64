"""Summary.wald_test, Summary.score_test / score_test and Summary.predict against
statsmodels (on its bundled datasets), SciPy and closed forms. All in float64 (`x64`).
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import nllax
from nllax import _inference as inference

sm = pytest.importorskip("statsmodels.api")
scipy_stats = pytest.importorskip("scipy.stats")
import _inference_models as models  # noqa: E402

PARAM_RTOL, SE_RTOL = models.PARAM_RTOL, models.SE_RTOL
_close, _kappa = models.close, models.kappa
EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def spector():
    x, y = models.spector()
    res = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-13)
    return x, y, res


@pytest.fixture(scope="module")
def cpunish():
    x, y, _, _ = models.cpunish()
    res = sm.GLM(y, x, family=sm.families.Poisson()).fit(tol=1e-13)
    return x, y, res


def _sm_stat(t):
    return float(np.squeeze(t.statistic))


# --------------------------------------------------------------------------------------
# Wald tests.


def test_wald_test_against_statsmodels(x64, spector):
    x, y, res = spector
    k = x.shape[1]
    s = nllax.summary(models.logit_ll, jnp.asarray(res.params), x, y)
    # The same hypothesis written three ways: names, {name: coefficient} rows, a matrix.
    R = np.array([[0.0, 1.0, -1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    q = np.array([0.0, 2.0])
    ref = res.wald_test((R, q), scalar=True)
    for t in (s.wald_test(R, q), s.wald_test([{"[1]": 1, "[2]": -1}, {"[3]": 1.0}], q)):
        assert (t.distribution, t.df, t.df_denom) == ("chi2", 2, None)
        _close(t.statistic, _sm_stat(ref), SE_RTOL)
        _close(t.pvalue, float(ref.pvalue), SE_RTOL)
    # Several parameters at 0 (statsmodels' `wald_test(R)` with rows of the identity).
    t = s.wald_test(["[0]", "[2]"])
    _close(t.statistic, _sm_stat(res.wald_test(np.eye(k)[[0, 2]], scalar=True)), SE_RTOL)
    assert t.restrictions == ("[0]", "[2]")
    # One restriction: W = z^2 of the coefficient.
    t = s.wald_test("[1]")
    _close(t.statistic, float(s.zvalues[1]) ** 2, 1e-12)
    # F with df (m, df_resid); statsmodels' GLM df_resid = n - k as nllax's default.
    tf = s.wald_test(R, q, use_f=True)
    ref_f = res.wald_test((R, q), use_f=True, scalar=True)
    assert (tf.distribution, tf.df, tf.df_denom) == ("F", 2, res.df_resid)
    _close(tf.statistic, _sm_stat(ref_f), SE_RTOL)
    _close(tf.pvalue, float(ref_f.pvalue), SE_RTOL)
    # A robust covariance is used as it is (statsmodels' HC0 fit).
    r0 = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-13, cov_type="HC0")
    h = nllax.summary(models.logit_ll, jnp.asarray(res.params), x, y, covariance="HC0")
    _close(h.wald_test(R, q).statistic, _sm_stat(r0.wald_test((R, q), scalar=True)), SE_RTOL)
    assert str(s.wald_test(R, q)).startswith("Wald test: chi2(2) = ")
    assert str(tf).startswith("Wald test: F(2, 28) = ")


def test_wald_f_test_ols_with_dispersion_against_statsmodels(x64):
    # statsmodels' OLS: cov = s^2 (X'X)^-1, s^2 = SSR / (n - p), F with (m, n - p). In
    # nllax: a Gaussian log-likelihood with unit scale and dispersion = s^2.
    x, y = models.longley()
    n, p = x.shape
    res = sm.OLS(y, x).fit()
    s2 = res.ssr / (n - p)
    s = nllax.summary(models.unit_gaussian_ll, jnp.asarray(res.params), x, y, dispersion=s2)
    # Longley is ill-conditioned (the NIST test): the unit-diagonal covariance has a
    # condition number of 1.3e9, and statsmodels' pinv and our eigen-decomposition each
    # lose up to kappa * eps relative; 10 x that, or the tolerance if larger.
    kappa = _kappa(res.cov_params())
    assert kappa < 1e10
    tol = max(SE_RTOL, 10 * kappa * EPS)
    _close(s.stderr, res.bse, tol)
    assert s.df_resid == n - p == res.df_resid
    R = np.eye(p)[1:4]
    t = s.wald_test(R, use_f=True)
    ft = res.f_test(R)
    _close(t.statistic, float(np.squeeze(ft.fvalue)), tol)
    _close(t.pvalue, float(ft.pvalue), tol)
    assert (t.df, t.df_denom) == (ft.df_num, ft.df_denom)
    # With sigma as a parameter (the ML covariance sigma_ml^2 (X'X)^-1, sigma_ml^2 =
    # SSR / n), the chi2 statistic is m F (n - p) / n: the "count sigma or not" of the docs.
    ml = {"beta": np.asarray(res.params), "sigma": np.asarray(math.sqrt(res.ssr / n))}
    w = nllax.summary(models.ols_ll, ml, x, y).wald_test(["beta[1]", "beta[2]", "beta[3]"])
    _close(w.statistic, 3 * t.statistic * n / (n - p), tol)
    # The leaf name selects every entry of it.
    assert nllax.summary(models.ols_ll, ml, x, y).wald_test("beta").df == p


def test_distributions_against_scipy(x64):
    for stat, d1, d2 in [(0.5, 1, 10), (3.2, 2, 28), (9.41, 2, 24), (1e-3, 5, 3.5), (40.0, 3, 200)]:
        _close(inference._f_sf(stat, d1, d2, jnp.float64), scipy_stats.f.sf(stat, d1, d2), 1e-12)
        _close(inference._chi2_sf(stat, d1, jnp.float64), scipy_stats.chi2.sf(stat, d1), 1e-12)


def test_wald_test_nan_and_bad_input(x64):
    # Two identical columns: restrictions on them are NaN (with a warning), others not.
    x, y = models.spector()
    xd = np.column_stack([x, x[:, 0]])
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0)
    beta = jnp.asarray(np.r_[res.params[0] / 2, res.params[1:], res.params[0] / 2])
    with pytest.warns(nllax.InferenceWarning):
        s = nllax.summary(models.logit_ll, beta, xd, y)
    with pytest.warns(nllax.InferenceWarning, match="not positive definite"):
        t = s.wald_test("[0]")
    assert np.isnan(t.statistic) and np.isnan(t.pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = s.wald_test(["[1]", "[2]"])
    _close(t.statistic, _sm_stat(res.wald_test(np.eye(4)[[1, 2]], scalar=True)), SE_RTOL)
    with pytest.raises(ValueError, match="not a parameter name"):
        s.wald_test("beta")
    with pytest.raises(ValueError, match=r"shape \(m, k\) with k = 5"):
        s.wald_test(np.eye(4))
    with pytest.raises(ValueError, match="linearly dependent"):
        s.wald_test(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"`q` must be a scalar or have shape \(2,\)"):
        s.wald_test(["[1]", "[2]"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="empty dict"):
        s.wald_test({})
    with pytest.raises(ValueError, match="non-finite"):
        s.wald_test(np.array([np.nan, 1, 0, 0, 0]))
    with pytest.raises(ValueError, match="out of range"):
        s.wald_test({7: 1.0})
    with pytest.raises(TypeError, match="`R` must be"):
        s.wald_test(object())
    xm, ym, ml = models.macro()
    with pytest.raises(ValueError, match="must name one parameter"):
        nllax.summary(models.ols_ll, ml, xm, ym).wald_test({"beta": 1.0})


# --------------------------------------------------------------------------------------
# Score (Lagrange multiplier) tests.


def test_score_test_against_statsmodels(x64, cpunish):
    x, y, res = cpunish
    k = x.shape[1]
    s = nllax.summary(models.poisson_ll, jnp.asarray(res.params), x, y)
    # Exclusion restrictions: statsmodels' restricted fit is the model without them.
    keep = [0, 3, 4, 5, 6]
    rres = sm.GLM(y, x[:, keep], family=sm.families.Poisson()).fit(tol=1e-13)
    p_r = np.zeros(k)
    p_r[keep] = rres.params
    ref = res.model.score_test(p_r, k_constraints=2)
    t = s.score_test(["[1]", "[2]"])
    assert t.converged and t.df == 2 and t.covariance == "observed"
    _close(t.params_restricted, p_r, PARAM_RTOL)
    _close(t.statistic, float(np.squeeze(ref[0])), SE_RTOL)
    _close(t.pvalue, float(np.squeeze(ref[1])), SE_RTOL)
    # The likelihood-ratio test from the same restricted fit.
    lr = nllax.lr_test(t.loglik_restricted, s.loglik, t.df)
    _close(lr.statistic, 2 * (res.llf - rres.llf), SE_RTOL)
    # Given the restricted estimate instead: the method and the function agree exactly.
    for u in (s.score_test(params_restricted=jnp.asarray(p_r), df=2),
              s.score_test(["[1]", "[2]"], params_restricted=jnp.asarray(p_r)),
              inference.score_test(models.poisson_ll, jnp.asarray(p_r), x, y, df=2)):
        _close(u.statistic, float(np.squeeze(ref[0])), SE_RTOL)
    # A general linear restriction: statsmodels' fit_constrained and its score test.
    R = np.zeros((2, k))
    R[0, 1], R[0, 2], R[1, 3], R[1, 4] = 1.0, -1.0, 1.0, 1.0
    q = np.array([0.0, 0.5])
    rc = sm.GLM(y, x, family=sm.families.Poisson()).fit_constrained((R, q))
    t = s.score_test(R, q)
    _close(t.params_restricted, rc.params, PARAM_RTOL)
    _close(t.statistic, _sm_stat(rc.score_test()), SE_RTOL)
    with pytest.raises(ValueError, match="does not satisfy"):
        s.score_test(R, q, params_restricted=jnp.asarray(res.params))


def test_score_test_closed_form_poisson_rate(x64):
    # One Poisson log-rate eta, H0: rate = lam0. At eta0 = log lam0: g = sum(y) - n lam0
    # and the observed information is n lam0, so LM = (sum(y) - n lam0)^2 / (n lam0).
    y = jnp.array([0.0, 1.0, 3.0, 2.0, 4.0, 1.0])
    n, total, lam0 = 6, 11.0, 1.0

    def ll(eta, y):
        return nllax.poisson.log_prob(y, log_rate=eta * jnp.ones_like(y))

    expected = (total - n * lam0) ** 2 / (n * lam0)
    t = inference.score_test(ll, jnp.asarray(math.log(lam0)), y, df=1)
    _close(t.statistic, expected, 1e-13)
    _close(t.pvalue, scipy_stats.chi2.sf(expected, 1), 1e-12)
    s = nllax.summary(ll, jnp.log(y.mean()), y)
    _close(s.score_test(np.ones(1), math.log(lam0)).statistic, expected, 1e-13)
    # The OPG form: the information is sum of squared scores, sum (y_i - lam0)^2.
    t = inference.score_test(ll, jnp.asarray(0.0), y, df=1, covariance="opg")
    _close(t.statistic, (total - n) ** 2 / float(jnp.sum((y - 1.0) ** 2)), 1e-13)


def test_robust_and_opg_score_tests(x64, spector):
    # Against the formulas evaluated with statsmodels' analytic scores and Hessian at its
    # constrained fit: Boos' robust LM (statsmodels' _lm_robust) with the uncentred meat.
    from statsmodels.base._parameter_inference import _lm_robust

    x, y, res = spector
    n, k = x.shape
    mod = sm.GLM(y, x, family=sm.families.Binomial())
    R = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    q = np.zeros(2)
    rc = mod.fit_constrained((R, q))
    sc, hess = mod.score_obs(rc.params), mod.hessian(rc.params)
    ainv, g = np.linalg.inv(-hess), sc.sum(0)
    s = nllax.summary(models.logit_ll, jnp.asarray(res.params), x, y, covariance="HC0")
    t = s.score_test(R, q)  # the summary's covariance: the robust LM
    assert t.covariance == "HC0"
    _close(t.statistic, _sm_stat(_lm_robust(g, R, ainv, sc.T @ sc)), SE_RTOL)
    # statsmodels' own HC0 score test centres the scores (n times their sample
    # covariance), so it differs from this one by design.
    centred = _lm_robust(g, R, ainv, n * np.cov(sc.T))
    _close(_sm_stat(rc.score_test(cov_type="HC0")), _sm_stat(centred), 1e-10)
    assert abs(_sm_stat(centred) / t.statistic - 1) > 0.1
    t = s.score_test(R, q, covariance="opg")
    _close(t.statistic, g @ np.linalg.solve(sc.T @ sc, g), SE_RTOL)
    # Cluster-robust LM: the meat of the group sums, with the CR1 factor.
    groups = np.arange(n) % 8
    c = nllax.summary(models.logit_ll, jnp.asarray(res.params), x, y, covariance="CR1",
                      groups=groups)
    u = np.stack([sc[groups == j].sum(0) for j in range(8)])
    meat = c.correction * u.T @ u
    _close(c.score_test(R, q).statistic, _sm_stat(_lm_robust(g, R, ainv, meat)), SE_RTOL)
    with pytest.raises(ValueError, match="needs `R`"):
        s.score_test(params_restricted=jnp.asarray(rc.params), df=2)
    with pytest.raises(ValueError, match="'observed' or 'opg'"):
        inference.score_test(models.logit_ll, jnp.asarray(rc.params), x, y, df=2,
                             covariance="HC0")
    with pytest.raises(ValueError, match="give the restrictions"):
        s.score_test()
    with pytest.raises(ValueError, match="df"):
        inference.score_test(models.logit_ll, jnp.asarray(rc.params), x, y, df=0)


# --------------------------------------------------------------------------------------
# Predictions with delta-method standard errors.


def _mean(beta, x):
    return jnp.exp(x @ beta)


def _linear(beta, x):
    return x @ beta


def test_predict_against_statsmodels_get_prediction(x64, cpunish):
    x, y, res = cpunish
    s = nllax.summary(models.poisson_ll, jnp.asarray(res.params), x, y)
    xn = x[::3] * 1.05
    lin = res.get_prediction(xn, which="linear")
    mean = res.get_prediction(xn, which="mean")
    eta, mu = s.predict(_linear, xn), s.predict(_mean, xn)
    _close(eta.value, lin.predicted, 1e-12)
    _close(eta.stderr, lin.se, SE_RTOL)
    _close(mu.value, mean.predicted, 1e-12)
    _close(mu.stderr, mean.se, SE_RTOL)  # delta method: exp(eta) se(eta)
    # Intervals: the delta method on the response scale; statsmodels' default
    # ("endpoint") maps the linear predictor's interval through the inverse link.
    lo, hi = mu.conf_int(0.9)
    _close(np.c_[lo, hi], mean.conf_int(method="delta", alpha=0.1), SE_RTOL)
    lo, hi = eta.conf_int(0.9, transform=jnp.exp)
    _close(np.c_[lo, hi], mean.conf_int(alpha=0.1), SE_RTOL)
    # The covariance of the predictions: X V X' on the linear scale.
    _close(eta.cov, xn @ res.cov_params() @ xn.T, SE_RTOL, atol=1e-12)
    assert eta.jacobian.shape == (xn.shape[0], x.shape[1])
    # A nonlinear function of the parameters (a ratio of coefficients), by hand.
    r = s.predict(lambda b: b[1] / b[2])
    b, v = res.params, res.cov_params()
    jac = np.array([0, 1 / b[2], -b[1] / b[2] ** 2, 0, 0, 0, 0])
    _close(r.stderr, math.sqrt(jac @ v @ jac), SE_RTOL)
    _close(r.pvalues, 2 * scipy_stats.norm.sf(abs(b[1] / b[2]) / math.sqrt(jac @ v @ jac)),
           SE_RTOL)


def test_predict_gamma_with_dispersion_against_statsmodels(x64):
    x, y = models.scotland()
    n, p = x.shape
    res = models.gamma_glm(x, y)
    mu = 1.0 / (x @ res.params)
    phi = float(np.sum((y - mu) ** 2 / mu**2) / (n - p))  # statsmodels' scale
    s = nllax.summary(models.gamma_ll, jnp.asarray(res.params), x, y, 1.0, dispersion=phi)
    xn = x[:6] * 1.01
    mean = res.get_prediction(xn, which="mean")
    pm = s.predict(lambda b, xn: 1.0 / (xn @ b), xn)
    _close(pm.stderr, mean.se, SE_RTOL)
    with warnings.catch_warnings():  # statsmodels probes its inverse link at 0: 1/0
        warnings.simplefilter("ignore", RuntimeWarning)
        delta, endpoint = mean.conf_int(method="delta"), mean.conf_int()
    lo, hi = pm.conf_int()
    _close(np.c_[lo, hi], delta, SE_RTOL)
    # A decreasing transform: the ends are swapped back into order.
    lo, hi = s.predict(lambda b, xn: xn @ b, xn).conf_int(transform=lambda e: 1.0 / e)
    _close(np.c_[lo, hi], np.sort(endpoint, axis=1), SE_RTOL)


def test_predict_nan_and_bad_input(x64):
    x, y = models.spector()
    xd = np.column_stack([x, x[:, 0]])
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0)
    beta = jnp.asarray(np.r_[res.params[0] / 2, res.params[1:], res.params[0] / 2])
    with pytest.warns(nllax.InferenceWarning):
        s = nllax.summary(models.logit_ll, beta, xd, y)
    p = s.predict(_linear, xd[:3])  # uses the two unidentified coefficients
    assert np.isnan(np.asarray(p.stderr)).all() and np.isfinite(np.asarray(p.value)).all()
    p = s.predict(lambda b: b[1] - b[2])  # does not: its standard error is finite
    assert np.isfinite(float(p.stderr))
    with pytest.raises(TypeError, match="callable"):
        s.predict(3.0)
    with pytest.raises(TypeError, match="floating"):
        s.predict(lambda b: jnp.arange(3))
    with pytest.raises(ValueError, match="level"):
        p.conf_int(1.5)
