"""nllax.summary, nllax.lr_test and nllax.profile_ci against statsmodels and closed forms.

Every reference number comes from statsmodels (fitted with Newton's method to a tight
tolerance on data generated here with a fixed seed), from SciPy, or from a closed form
given in a comment. All comparisons run in float64 (the `x64` fixture).
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax
from nllax import _inference as inference

sm = pytest.importorskip("statsmodels.api")
scipy_stats = pytest.importorskip("scipy.stats")
scipy_optimize = pytest.importorskip("scipy.optimize")

PARAM_RTOL = 1e-6  # parameters (the brief's tolerance)
SE_RTOL = 1e-5  # standard errors, relative


def _mle(log_lik, params0, *args):
    """Our own maximum likelihood estimate (so parameters are compared, not copied)."""
    res = nllax.fit(lambda p, *a: -jnp.sum(log_lik(p, *a)), params0, *args, throw=True)
    return res.params


def _assert_close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------
# Data and models.


def _design(rng, n, p):
    return sm.add_constant(rng.normal(size=(n, p - 1)))


def _ols_data():
    rng = np.random.default_rng(0)
    n, p = 200, 3
    x = _design(rng, n, p)
    # Heteroscedastic noise, so that HC0 differs from the ML standard errors.
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=n) * (0.5 + np.abs(x[:, 1]))
    return x, y


@pytest.fixture(scope="module")
def ols_mle():
    """OLS data and nllax's MLE (fitted once for the module)."""
    x, y = _ols_data()
    with jax.enable_x64(True):
        params = _mle(ols_ll, {"beta": jnp.zeros(3), "sigma": jnp.asarray(1.0)}, x, y)
        params = jax.tree.map(np.asarray, params)
    return x, y, params


def ols_ll(params, x, y):
    return nllax.gaussian.log_prob(y, x @ params["beta"], params["sigma"])


def logit_ll(beta, x, y):
    return nllax.bernoulli.log_prob(y, logits=x @ beta)


def poisson_ll(beta, x, y):
    return nllax.poisson.log_prob(y, log_rate=x @ beta)


def mnlogit_ll(params, x, y):
    # statsmodels' MNLogit: class 0 is the reference, params has shape (p, K - 1).
    eta = x @ params["B"]
    logits = jnp.concatenate([jnp.zeros((x.shape[0], 1), eta.dtype), eta], axis=1)
    return nllax.categorical.log_prob(y, logits=logits)


# --------------------------------------------------------------------------------------
# OLS: statsmodels' log-likelihood uses sigma^2 = SSR / n (the ML estimate), its `scale`
# and `bse` use SSR / (n - p). nllax, with sigma a parameter, gives the ML standard
# errors, i.e. statsmodels' bse * sqrt((n - p) / n). AIC/BIC: statsmodels counts the p
# coefficients only; nllax counts every free parameter, sigma too (k = p + 1).


def test_ols_against_statsmodels(x64, ols_mle):
    x, y, params = ols_mle
    n, p = x.shape
    res = sm.OLS(y, x).fit()
    _assert_close(params["beta"], res.params, PARAM_RTOL)
    _assert_close(params["sigma"], math.sqrt(res.ssr / n), PARAM_RTOL)

    s = nllax.summary(ols_ll, params, x, y)
    _assert_close(s.stderr["beta"], res.bse * math.sqrt((n - p) / n), SE_RTOL)
    # The ML covariance itself: sigma_ml^2 (X'X)^-1 (the beta block; it is
    # block-diagonal at the MLE because d2l/dbeta dsigma = -2 X'r / sigma^3 = 0).
    _assert_close(s.cov[:p, :p], res.cov_params() * (n - p) / n, SE_RTOL)
    _assert_close(s.cov[:p, p], np.zeros(p), 0.0, atol=1e-12)
    # se(sigma_hat) = sigma_hat / sqrt(2n) (inverse of the observed information 2n/sigma^2).
    _assert_close(s.stderr["sigma"], params["sigma"] / math.sqrt(2 * n), SE_RTOL)
    assert s.nobs == n and s.k == p + 1
    _assert_close(s.loglik, res.llf, 1e-10)
    _assert_close(s.aic, res.aic + 2.0, 1e-10)
    _assert_close(s.bic, res.bic + math.log(n), 1e-10)

    # HC0: the beta block of the sandwich is (X'X)^-1 X' diag(r^2) X (X'X)^-1, exactly
    # statsmodels' HC0 (no n - p anywhere).
    res0 = sm.OLS(y, x).fit(cov_type="HC0")
    r = nllax.summary(ols_ll, params, x, y, covariance="robust")
    _assert_close(r.stderr["beta"], res0.bse, SE_RTOL)


def _check_discrete(s, res, shape=None):
    conv = (lambda a: np.asarray(a)) if shape is None else (lambda a: np.asarray(a).reshape(shape))
    _assert_close(conv(s.stderr if shape is None else s.stderr["B"]), conv(res.bse), SE_RTOL)
    pv = s.pvalues if shape is None else s.pvalues["B"]
    # p-values: the relative tolerance of the SEs, plus an absolute floor for tiny ones.
    _assert_close(conv(pv), conv(res.pvalues), 1e-4, atol=1e-12)
    _assert_close(s.loglik, res.llf, 1e-10)
    # Same k as statsmodels: every coefficient, no scale parameter.
    _assert_close(s.aic, res.aic, 1e-10)
    _assert_close(s.bic, res.bic, 1e-10)


def test_logit_against_statsmodels(x64):
    rng = np.random.default_rng(1)
    n, p = 400, 4
    x = _design(rng, n, p)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x @ np.array([-0.5, 1.0, -1.0, 0.3]))))) * 1.0
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    beta = _mle(logit_ll, jnp.zeros(p), x, y)
    _assert_close(beta, res.params, PARAM_RTOL)

    s = nllax.summary(logit_ll, beta, x, y)
    _check_discrete(s, res)
    lo, hi = s.conf_int(0.9)
    ci = res.conf_int(alpha=0.1)
    _assert_close(lo, ci[:, 0], 1e-6)
    _assert_close(hi, ci[:, 1], 1e-6)

    res0 = sm.Logit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=0, cov_type="HC0")
    _assert_close(nllax.summary(logit_ll, beta, x, y, covariance="robust").stderr, res0.bse, SE_RTOL)
    # OPG from statsmodels' analytic per-observation scores.
    sc = res.model.score_obs(res.params)
    opg = nllax.summary(logit_ll, beta, x, y, covariance="opg")
    _assert_close(opg.cov, np.linalg.inv(sc.T @ sc), SE_RTOL)


def test_poisson_against_statsmodels(x64):
    rng = np.random.default_rng(2)
    n, p = 300, 3
    x = _design(rng, n, p)
    y = rng.poisson(np.exp(x @ np.array([0.3, 0.5, -0.4]))).astype(float)
    res = sm.Poisson(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    beta = _mle(poisson_ll, jnp.zeros(p), x, y)
    _assert_close(beta, res.params, PARAM_RTOL)
    s = nllax.summary(poisson_ll, beta, x, y)
    _check_discrete(s, res)
    res0 = sm.Poisson(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=0, cov_type="HC0")
    r = nllax.summary(poisson_ll, beta, x, y, covariance="robust")
    _assert_close(r.stderr, res0.bse, SE_RTOL)
    sc = res.model.score_obs(res.params)
    _assert_close(nllax.summary(poisson_ll, beta, x, y, covariance="opg").cov,
                  np.linalg.inv(sc.T @ sc), SE_RTOL)


def test_mnlogit_against_statsmodels(x64):
    rng = np.random.default_rng(3)
    n, p, k = 400, 3, 3
    x = _design(rng, n, p)
    true = np.array([[0.0, 0.5, -0.5], [0.0, 1.0, 0.2], [0.0, -0.7, 0.8]])
    logits = x @ true
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=pr) for pr in prob])
    res = sm.MNLogit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    params = _mle(mnlogit_ll, {"B": jnp.zeros((p, k - 1))}, x, y)
    _assert_close(params["B"], res.params, PARAM_RTOL)

    s = nllax.summary(mnlogit_ll, params, x, y)
    assert s.stderr["B"].shape == (p, k - 1)
    _check_discrete(s, res, shape=(p, k - 1))
    # HC0 sandwich, same (p, K-1) layout.
    res0 = sm.MNLogit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=0, cov_type="HC0")
    r = nllax.summary(mnlogit_ll, params, x, y, covariance="robust")
    _assert_close(r.stderr["B"], res0.bse, SE_RTOL)
    # Names: pytree path plus the index in the matrix.
    assert s.names[:3] == ("B[0, 0]", "B[0, 1]", "B[1, 0]")


def test_lr_test_against_statsmodels(x64):
    # statsmodels' llr: LR test of the fitted Logit against the intercept-only model.
    rng = np.random.default_rng(4)
    x = _design(rng, 300, 3)
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-(x @ np.array([0.2, 0.3, 0.0]))))) * 1.0
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0)
    t = nllax.lr_test(res.llnull, res.llf, df=res.df_model)
    _assert_close(t.statistic, res.llr, 1e-10)
    _assert_close(t.pvalue, res.llr_pvalue, 1e-8)
    # And against SciPy's chi-square survival function.
    for stat, df in [(0.5, 1), (7.6, 2), (30.0, 5), (3.0, 2.5)]:
        t = nllax.lr_test(-100.0, -100.0 + stat / 2, df)
        _assert_close(t.pvalue, scipy_stats.chi2.sf(stat, df), 1e-10)


# --------------------------------------------------------------------------------------
# Singular and indefinite Hessians: NaN where affected, a warning, exact values elsewhere.


def test_duplicated_column_gives_nan_for_those_only(x64):
    rng = np.random.default_rng(5)
    n = 300
    x = _design(rng, n, 3)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x @ np.array([0.2, 1.0, -0.5]))))) * 1.0
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0)
    xd = np.column_stack([x, x[:, 1]])  # column 3 duplicates column 1
    beta = jnp.asarray(np.r_[res.params[0], res.params[1] / 2, res.params[2], res.params[1] / 2])
    with pytest.warns(nllax.InferenceWarning, match=r"\[1\], \[3\]"):
        s = nllax.summary(logit_ll, beta, xd, y)
    se = np.asarray(s.stderr)
    assert np.isnan(se[[1, 3]]).all()
    # The identified coefficients keep their exact standard errors (the reduced model's).
    _assert_close(se[[0, 2]], res.bse[[0, 2]], SE_RTOL)
    assert np.isnan(np.asarray(s.pvalues)[[1, 3]]).all()
    assert np.isnan(np.asarray(s.cov)[1]).all() and np.isnan(np.asarray(s.cov)[:, 3]).all()
    lo, hi = s.conf_int()
    assert np.isnan(np.asarray(lo)[1]) and np.isfinite(np.asarray(hi)[0])
    assert "nan" in str(s)
    # Robust and OPG share the rule.
    for cov in ("robust", "opg"):
        with pytest.warns(nllax.InferenceWarning):
            r = nllax.summary(logit_ll, beta, xd, y, covariance=cov)
        assert np.isnan(np.asarray(r.stderr)[[1, 3]]).all()
        assert np.isfinite(np.asarray(r.stderr)[[0, 2]]).all()


def test_flat_direction_gives_nan(x64):
    # loc = a + b: only the sum is identified; sigma is not affected.
    y = jnp.asarray(np.random.default_rng(6).normal(size=50))

    def ll(p, y):
        return nllax.gaussian.log_prob(y, p["a"] + p["b"], p["sigma"])

    params = {"a": y.mean() / 2, "b": y.mean() / 2, "sigma": jnp.std(y)}
    with pytest.warns(nllax.InferenceWarning, match="a, b"):
        s = nllax.summary(ll, params, y)
    assert np.isnan(float(s.stderr["a"])) and np.isnan(float(s.stderr["b"]))
    _assert_close(s.stderr["sigma"], params["sigma"] / math.sqrt(2 * 50), SE_RTOL)


def test_not_a_maximum_gives_nan(x64):
    # At a minimum of the "log-likelihood" the negative Hessian is negative definite.
    y = jnp.arange(5.0)

    def ll(theta, y):
        return (y - theta) ** 2

    with pytest.warns(nllax.InferenceWarning, match="not positive definite"):
        s = nllax.summary(ll, y.mean(), y)
    assert np.isnan(float(s.stderr))


def test_not_at_the_maximum_warns(x64):
    y = jnp.asarray(np.random.default_rng(7).normal(size=100))
    ll = lambda mu, y: nllax.gaussian.log_prob(y, mu, 1.0)
    with pytest.warns(nllax.InferenceWarning, match="standard errors .a Newton step"):
        s = nllax.summary(ll, y.mean() + 0.5, y)
    _assert_close(s.stderr, 0.1, 1e-12)  # the curvature does not depend on mu here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nllax.summary(ll, y.mean(), y)  # at the MLE: no warning


def test_nonfinite_loglik_gives_nan(x64):
    y = jnp.array([1.0, 2.0])
    with pytest.warns(nllax.InferenceWarning, match="not finite"):
        s = nllax.summary(lambda s, y: nllax.gaussian.log_prob(y, 0.0, s), jnp.asarray(-1.0), y)
    assert np.isnan(float(s.stderr))


# --------------------------------------------------------------------------------------
# Bad input.


def test_scalar_log_lik_is_a_clear_error(x64):
    x, y = _ols_data()
    params = {"beta": jnp.zeros(3), "sigma": jnp.asarray(1.0)}
    summed = lambda p, x, y: jnp.sum(ols_ll(p, x, y))
    with pytest.raises(ValueError, match=r"per-observation .* got a scalar"):
        nllax.summary(summed, params, x, y)
    with pytest.raises(ValueError, match=r"shape \(200, 1\)"):
        nllax.summary(lambda p, x, y: ols_ll(p, x, y)[:, None], params, x, y)
    with pytest.raises(ValueError, match="per-observation"):
        nllax.profile_ci(summed, params, x, y, which="sigma")
    with pytest.raises(ValueError, match="covariance"):
        nllax.summary(ols_ll, params, x, y, covariance="hessian")
    with pytest.raises(TypeError, match="floating"):
        nllax.summary(logit_ll, jnp.zeros(3, jnp.int32), x, y)
    with pytest.raises(ValueError, match="no parameters"):
        nllax.summary(lambda p, y: y, {}, jnp.asarray(y))


def test_lr_test_bad_input(x64):
    with pytest.raises(ValueError, match="df"):
        nllax.lr_test(-10.0, -9.0, 0)
    with pytest.raises(ValueError, match="df"):
        nllax.lr_test(-10.0, -9.0, -1)
    with pytest.raises(ValueError, match="swapped"):
        nllax.lr_test(-9.0, -10.0, 1)
    with pytest.raises(ValueError, match="scalars"):
        nllax.lr_test(jnp.zeros(3), -1.0, 1)
    with pytest.raises(ValueError, match="finite"):
        nllax.lr_test(jnp.nan, -1.0, 1)
    # A negative statistic at the rounding level is 0, p-value 1.
    t = nllax.lr_test(-1000.0, -1000.0 - 1e-12, 1)
    assert float(t.statistic) == 0.0 and float(t.pvalue) == 1.0
    # Under jit values cannot be checked: NaN instead of an error.
    t = jax.jit(nllax.lr_test, static_argnums=2)(-9.0, -10.0, 1)
    assert np.isnan(float(t.statistic)) and np.isnan(float(t.pvalue))
    t = jax.jit(nllax.lr_test, static_argnums=2)(-10.0, -9.0, 1)
    _assert_close(t.pvalue, scipy_stats.chi2.sf(2.0, 1), 1e-10)


# --------------------------------------------------------------------------------------
# Output.


def test_table_and_html(x64, ols_mle):
    x, y, params = ols_mle
    s = nllax.summary(ols_ll, params, x, y)
    text = str(s)
    for name in ("beta[0]", "beta[2]", "sigma", "std err", "P>|z|", "[0.025", "0.975]"):
        assert name in text
    assert f"nobs: {s.nobs}" in text and "AIC" in text
    row = next(line for line in text.splitlines() if line.startswith("beta[1]"))
    assert f"{float(params['beta'][1]):.4f}" in row
    page = s._repr_html_()
    assert page.startswith("<table>") and "<th>beta[1]</th>" in page
    assert "Summary(k=4" in repr(s)


def test_names_follow_the_pytree():
    params = {"w": jnp.zeros((2, 2)), "b": [jnp.zeros(()), jnp.zeros(1)]}
    assert inference._param_names(params) == [
        "b.0", "b.1[0]", "w[0, 0]", "w[0, 1]", "w[1, 0]", "w[1, 1]"
    ]
    assert inference._param_names(jnp.zeros(2)) == ["[0]", "[1]"]


# --------------------------------------------------------------------------------------
# Profile likelihood.


def test_profile_ci_poisson_rate_closed_form(x64):
    # One parameter (log-rate eta), so the profile is the log-likelihood itself:
    # 2 (l_hat - l(eta)) = 2 [n e^eta - t eta - (t - t log(t / n))] with t = sum(y).
    y = jnp.array([0.0, 1.0, 0.0, 2.0, 0.0])
    n, t = 5, 3.0
    ll = lambda eta, y: nllax.poisson.log_prob(y, log_rate=eta * jnp.ones_like(y))
    eta_hat = math.log(t / n)
    q = scipy_stats.chi2.ppf(0.95, 1)

    def dev(eta):
        return 2 * (n * math.exp(eta) - t * eta - (t - t * math.log(t / n))) - q

    lo = scipy_optimize.brentq(dev, eta_hat - 10, eta_hat, xtol=1e-14)
    hi = scipy_optimize.brentq(dev, eta_hat, eta_hat + 10, xtol=1e-14)
    ci = nllax.profile_ci(ll, jnp.asarray(eta_hat), y, which=0)
    _assert_close([ci.lower, ci.upper], [lo, hi], 1e-8)
    assert ci.lower_status == ci.upper_status == "ok"
    # Small sample: the Wald interval (eta_hat -/+ 1.96 / sqrt(t)) is visibly off, and
    # the profile interval is skewed to the low side as the likelihood is.
    _assert_close(ci.wald, [eta_hat - 1.959964 / math.sqrt(t), eta_hat + 1.959964 / math.sqrt(t)], 1e-6)
    assert ci.wald[0] - ci.lower > 0.2 and ci.wald[1] - ci.upper > 0.15


def _logit_few_events():
    rng = np.random.default_rng(8)
    n = 40
    x = sm.add_constant(rng.normal(size=n))
    y = np.zeros(n)
    y[np.argsort(x[:, 1])[-6:][::2]] = 1.0  # 3 events, among the largest x
    y[np.argmin(x[:, 1])] = 1.0  # and one at the smallest: a finite MLE
    return x, y


def test_profile_ci_logit_against_brute_force_grid(x64):
    x, y = _logit_few_events()
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0)
    beta = jnp.asarray(res.params)
    s = nllax.summary(logit_ll, beta, x, y)
    ci = s.profile_ci("[1]")
    assert ci.index == 1 and ci.evaluations < 30  # measured: 18 (Illinois steps)

    # Brute force, independent of nllax: for each slope on a fine grid, maximise over the
    # intercept with SciPy (NumPy log-likelihood), then interpolate the crossings.
    def nll(b0, b1):
        z = b0 + b1 * x[:, 1]
        return np.sum(np.logaddexp(0, z) - y * z)

    lmax = -res.llf
    se = float(s.stderr[1])
    q = scipy_stats.chi2.ppf(0.95, 1)

    def g(b1):
        r = scipy_optimize.minimize_scalar(lambda b0: nll(b0, b1), bracket=(-5, 0), tol=1e-12)
        return 2 * (r.fun - lmax) - q

    # A fixed coarse grid (not placed from our answer) finds each sign change; a fine
    # grid of 101 points in that cell (spacing 2.5e-4, about 5e-4 standard errors) and linear
    # interpolation give the reference crossing.
    coarse = np.linspace(-1.5, 3.0, 181)
    vals = np.array([g(b) for b in coarse])
    cells = np.nonzero(np.diff(np.sign(vals)))[0]
    assert len(cells) == 2
    refs = []
    for j in cells:
        fine = np.linspace(coarse[j], coarse[j + 1], 101)
        fv = np.array([g(b) for b in fine])
        m = np.nonzero(np.diff(np.sign(fv)))[0][0]
        refs.append(fine[m] - fv[m] * (fine[m + 1] - fine[m]) / (fv[m + 1] - fv[m]))
    # Measured: agreement to 1.6e-8 standard errors (the grid's interpolation error).
    _assert_close([ci.lower, ci.upper], refs, 0.0, atol=1e-6 * se)
    # Four events: the profile interval is not the symmetric Wald one.
    wald_lo, wald_hi = s.conf_int()
    assert ci.wald == pytest.approx((float(wald_lo[1]), float(wald_hi[1])), rel=1e-12)
    assert abs((ci.upper - ci.estimate) - (ci.estimate - ci.lower)) > 0.2 * se


def test_profile_ci_unbounded_side(x64):
    # y ~ N(sigmoid(psi), 1): the mean saturates at 1, so with ybar = 0.9 and n = 20 the
    # log-likelihood at psi = +inf is only n (1 - 0.9)^2 / 2 = 0.1 below the maximum,
    # less than chi2_1(0.95) / 2 = 1.92: the data do not bound psi above.
    y = jnp.asarray(0.9 + np.random.default_rng(9).normal(size=20) * 0.0)
    ll = lambda psi, y: nllax.gaussian.log_prob(y, jax.nn.sigmoid(psi), 1.0)
    psi_hat = jnp.asarray(math.log(0.9 / 0.1))
    ci = nllax.profile_ci(ll, psi_hat, y, which=0, max_expand=12)
    assert ci.upper == math.inf and ci.upper_status == "unbounded"
    assert ci.lower_status == "ok" and np.isfinite(ci.lower)
    assert np.isfinite(ci.wald[1])  # while Wald claims a finite upper bound


def test_profile_ci_bad_input(x64, ols_mle):
    x, y, params = ols_mle
    with pytest.raises(ValueError, match="not a parameter name"):
        nllax.profile_ci(ols_ll, params, x, y, which="beta")
    with pytest.raises(ValueError, match="out of range"):
        nllax.profile_ci(ols_ll, params, x, y, which=4)
    with pytest.raises(TypeError, match="which"):
        nllax.profile_ci(ols_ll, params, x, y, which=1.0)
    with pytest.raises(ValueError, match="level"):
        nllax.profile_ci(ols_ll, params, x, y, which=0, level=1.0)


# --------------------------------------------------------------------------------------
# Units, devices, dtypes.


def test_badly_scaled_covariate_is_not_called_singular(x64):
    # A "calendar year" covariate next to the intercept: cond(X'X) is about 1e11, yet the
    # information is regular. The unit-diagonal scaling keeps it from being flagged.
    rng = np.random.default_rng(10)
    n = 300
    x = np.column_stack([np.ones(n), 2000.0 + 10.0 * rng.normal(size=n)])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x[:, 1] - 2000.0) / 10.0))) * 1.0
    assert np.linalg.cond(x.T @ x) > 1e10
    res = sm.Logit(y, x).fit(method="newton", tol=1e-10, maxiter=100, disp=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = nllax.summary(logit_ll, jnp.asarray(res.params), x, y)
    _assert_close(s.stderr, res.bse, SE_RTOL)


def test_sharded_data_and_float32(x64, ols_mle):
    # Observations sharded over every device give the same summary as one device.
    x, y, params = ols_mle
    devices = jax.devices()
    n = (x.shape[0] // len(devices)) * len(devices)
    if n != x.shape[0]:  # a device count that does not divide n = 200: refit on a prefix
        x, y = x[:n], y[:n]
        params = _mle(ols_ll, {"beta": jnp.zeros(3), "sigma": jnp.asarray(1.0)}, x, y)
    mesh = jax.sharding.Mesh(np.array(devices), ("obs",))
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("obs"))
    xs, ys = jax.device_put(x, rows), jax.device_put(y, rows)
    one = nllax.summary(ols_ll, params, x, y, covariance="robust")
    many = nllax.summary(ols_ll, params, xs, ys, covariance="robust")
    _assert_close(many.cov, one.cov, 1e-10)
    _assert_close(many.loglik, one.loglik, 1e-12)
    # Clusters (unsharded labels, sharded data).
    g = np.arange(n) % 10
    one_c = nllax.summary(ols_ll, params, x, y, covariance="CR1", groups=g)
    many_c = nllax.summary(ols_ll, params, xs, ys, covariance="CR1", groups=g)
    _assert_close(many_c.cov, one_c.cov, 1e-10)
    # float32 in, float32 out, close to the float64 standard errors.
    with jax.enable_x64(False):
        p32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
        s32 = nllax.summary(ols_ll, p32, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                            covariance="robust")
        assert s32.stderr["beta"].dtype == jnp.float32
    _assert_close(s32.stderr["beta"], one.stderr["beta"], 1e-4)


def test_profile_ci_warns_away_from_the_mle(x64):
    y = jnp.array([0.0, 1.0, 0.0, 2.0, 0.0])
    ll = lambda eta, y: nllax.poisson.log_prob(y, log_rate=eta * jnp.ones_like(y))
    with pytest.warns(nllax.InferenceWarning, match="assumes it is the MLE"):
        nllax.profile_ci(ll, jnp.asarray(0.5), y, which=0)


def test_profile_ci_domain_edge(x64):
    # y ~ N(sqrt(psi), 1), psi >= 0 (NaN below). With ybar = 0.5 and n = 4 the
    # log-likelihood at psi = 0 is only n * 0.5^2 / 2 = 0.5 below the maximum: the interval
    # reaches the edge of the domain, 0, where Wald gives a negative lower bound.
    y = jnp.array([0.2, 0.9, 0.1, 0.8])
    ll = lambda psi, y: nllax.gaussian.log_prob(y, jnp.sqrt(psi), 1.0)
    ci = nllax.profile_ci(ll, jnp.asarray(0.25), y, which=0)
    assert ci.lower_status == "domain" and 0.0 <= ci.lower < 1e-7
    assert ci.upper_status == "ok" and ci.wald[0] < -0.7
    # Upper bound in closed form: 2 * n/2 * (sqrt(psi) - 0.5)^2 = chi2_1(0.95).
    _assert_close(ci.upper, (0.5 + math.sqrt(scipy_stats.chi2.ppf(0.95, 1) / 4)) ** 2, 1e-9)


def test_batch_size_bounds_memory_not_results(x64, ols_mle):
    x, y, params = ols_mle
    for cov in ("observed", "robust"):
        full = nllax.summary(ols_ll, params, x, y, covariance=cov)
        part = nllax.summary(ols_ll, params, x, y, covariance=cov, batch_size=3)
        _assert_close(part.cov, full.cov, 1e-12, atol=1e-15)  # the zero blocks: rounding
    with pytest.raises(ValueError, match="batch_size"):
        nllax.summary(ols_ll, params, x, y, batch_size=0)
