"""Robust covariances of nllax.summary (HC0, HC1, cluster CR0/CR1), frequency weights,
df_resid and dispersion, against statsmodels and against the Stata and R results that
statsmodels ships with its tests (`statsmodels/*/tests/results`).

The statsmodels reference results are imported from the installed package; a test is
skipped when they are not installed. Every comparison runs in float64 (`x64` fixture).
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import nllax

sm = pytest.importorskip("statsmodels.api")
import _inference_models as models  # noqa: E402

PARAM_RTOL, SE_RTOL = models.PARAM_RTOL, models.SE_RTOL
_close, _within, _kappa = models.close, models.within, models.kappa


@pytest.fixture(scope="module")
def macro():
    return models.macro()


@pytest.fixture(scope="module")
def grunfeld():
    return models.grunfeld()


@pytest.fixture(scope="module")
def ships():
    return models.ships()


@pytest.fixture(scope="module")
def cpunish():
    return models.cpunish()


@pytest.fixture(scope="module")
def spector():
    return models.spector()


# --------------------------------------------------------------------------------------
# HC1 and the n - p convention.


def test_hc1_ols_against_stata_regress_and_statsmodels(x64, macro):
    x, y, params = macro
    n, p = x.shape
    st = models.results("statsmodels.regression.tests.results.results_macro_ols_robust").results_hc0
    assert st.cmdline.endswith("vce(robust)") and st.N == n
    # Stata's regress and statsmodels' OLS do not count sigma in p: df_resid = n - p.
    s = nllax.summary(models.ols_ll, params, x, y, covariance="HC1", df_resid=n - p)
    assert s.covariance == "HC1" and s.df_resid == n - p
    _close(s.correction, n / (n - p), 1e-15)
    _close(s.cov[:p, :p], st.cov, SE_RTOL)  # measured: 4e-14
    _close(s.cov[:p, :p], sm.OLS(y, x).fit(cov_type="HC1").cov_params(), SE_RTOL)
    # Stata's F for the two slopes uses the HC1 covariance and df (2, n - p).
    t = s.wald_test(["beta[0]", "beta[1]"], use_f=True)
    assert (t.df, t.df_denom, t.distribution) == (st.df_m, st.df_r, "F")
    _close(t.statistic, st.F, SE_RTOL)
    # The default counts every free parameter (sigma too): n / (n - p - 1).
    d = nllax.summary(models.ols_ll, params, x, y, covariance="HC1")
    assert d.df_resid == n - p - 1
    _close(d.cov, s.cov * (n - p) / (n - p - 1), 1e-13)
    # HC0 ("robust") is the sandwich without a factor.
    r = nllax.summary(models.ols_ll, params, x, y, covariance="robust")
    assert r.covariance == "HC0" and r.correction == 1.0
    _close(r.cov, s.cov * (n - p) / n, 1e-13)
    assert "small-sample factor" in str(s) and "df_resid: 199" in str(s)


def test_statsmodels_hc1_equals_hc0_outside_linear_models(x64, spector):
    # A documented difference: statsmodels' cov_type="HC1" applies n / (n - p) only in
    # OLS/WLS; for Logit, Poisson and GLM it returns HC0. nllax's HC1 always has the factor.
    x, y = spector
    n, p = x.shape
    r0 = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0, cov_type="HC0")
    r1 = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0, cov_type="HC1")
    _close(r1.bse, r0.bse, 1e-15)
    beta = jnp.asarray(r0.params)
    h0 = nllax.summary(models.logit_ll, beta, x, y, covariance="HC0")
    assert h0.newton_decrement < 1e-6  # statsmodels' estimate is our MLE (in SE units)
    h1 = nllax.summary(models.logit_ll, beta, x, y, covariance="HC1")
    _close(h0.stderr, r0.bse, SE_RTOL)
    _close(h1.stderr, r0.bse * math.sqrt(n / (n - p)), SE_RTOL)


# --------------------------------------------------------------------------------------
# Stata's maximum-likelihood commands: factor n / (n - 1) (HC1) and G / (G - 1) (cluster).


def test_poisson_robust_and_cluster_against_stata(x64, ships):
    x, y, ship = ships
    n, k = x.shape
    st = models.results("statsmodels.discrete.tests.results.results_count_robust_cluster")
    ml_cov = sm.Poisson(y, x).fit(method="newton", tol=1e-12, disp=0).cov_params()
    for ref, cov in ((st.results_poisson_hc1, "HC1"), (st.results_poisson_clu, "cluster")):
        assert ref.N == n
        # At Stata's own estimate, so that its convergence does not enter: the data are
        # integers (exact) and Stata printed 13 significant digits (rounding <= 5e-14),
        # which the sandwich amplifies by at most the condition number of the
        # unit-diagonal information; 100 x that bound.
        b = jnp.asarray(ref.params_table[:, 0])
        kw = {"groups": ship} if cov == "cluster" else {}
        s = nllax.summary(models.poisson_ll, b, x, y, covariance=cov, df_resid=n - 1, **kw)
        # Stata's estimate is the maximum of our log-likelihood within Stata's own
        # convergence test (scaled gradient g' H^-1 g < 1e-5, i.e. a Newton decrement
        # below sqrt(1e-5)).
        assert s.newton_decrement < math.sqrt(1e-5)  # measured: 2.5e-11
        rtol = 100 * _kappa(ml_cov) * 5e-14
        assert rtol < 1e-8  # measured: 1.3e-10
        _close(s.cov, ref.cov, rtol)
        # Stata's model test (chi2, Wald) with that covariance.
        t = s.wald_test(["[0]", "[1]"])
        _close(t.statistic, ref.chi2, rtol)
        _close(t.pvalue, ref.p, rtol)
    assert s.n_groups == st.results_poisson_clu.N_clust == 5
    # With df_resid = n - 1, (n - 1) / df_resid = 1: only G / (G - 1) remains.
    _close(s.correction, 5 / 4, 1e-15)


def test_cluster_ols_against_stata_regress_and_statsmodels(x64, grunfeld):
    x, y, firm, params = grunfeld
    n, p = x.shape
    st = models.results("statsmodels.regression.tests.results.results_grunfeld_ols_robust_cluster")
    ref = st.results_cluster
    assert ref.cmdline == "regress invest mvalue kstock, vce(cluster company)"
    s = nllax.summary(models.ols_ll, params, x, y, covariance="CR1", groups=firm, df_resid=n - p)
    assert s.n_groups == ref.N_clust == 10
    _close(s.correction, 10 / 9 * (n - 1) / (n - p), 1e-15)
    _close(s.cov[:p, :p], ref.cov, SE_RTOL)  # measured: 6e-8 (the dataset's rounding)
    res = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": firm})
    _close(s.cov[:p, :p], res.cov_params(), SE_RTOL)
    # Stata's and statsmodels' F test of a cluster covariance: df (m, G - 1).
    t = s.wald_test(["beta[0]", "beta[1]"], use_f=True)
    assert (t.df, t.df_denom) == (ref.df_m, ref.df_r) == (2, 9)
    _close(t.statistic, ref.F, SE_RTOL)
    ft = res.f_test(np.eye(p)[:2])
    _close(t.statistic, float(np.squeeze(ft.fvalue)), SE_RTOL)
    _close(t.pvalue, float(ft.pvalue), SE_RTOL)
    # "cluster" is CR1; CR0 is the sum of the cluster outer products, no factor.
    c = nllax.summary(models.ols_ll, params, x, y, covariance="cluster", groups=firm,
                      df_resid=n - p)
    assert c.covariance == "CR1"
    _close(c.cov, s.cov, 1e-15)
    c0 = nllax.summary(models.ols_ll, params, x, y, covariance="CR0", groups=firm)
    _close(c0.cov, s.cov / s.correction, 1e-13)
    r0 = sm.OLS(y, x).fit(cov_type="cluster",
                          cov_kwds={"groups": firm, "use_correction": False})
    _close(c0.cov[:p, :p], r0.cov_params(), SE_RTOL)


def test_cluster_logit_against_statsmodels(x64, spector):
    # statsmodels' default for a nonlinear model counts every parameter in p, as nllax's
    # default df_resid = n - k does.
    x, y = spector
    n, k = x.shape
    g = np.arange(n) % 8  # 8 clusters of 4
    res = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0, cov_type="cluster",
                             cov_kwds={"groups": g})
    beta = jnp.asarray(res.params)
    s = nllax.summary(models.logit_ll, beta, x, y, covariance="cluster", groups=g)
    assert s.newton_decrement < 1e-6  # statsmodels' estimate is our MLE (in SE units)
    _close(s.cov, res.cov_params(), SE_RTOL)
    res0 = sm.Logit(y, x).fit(method="newton", tol=1e-12, disp=0, cov_type="cluster",
                              cov_kwds={"groups": g, "use_correction": False})
    _close(nllax.summary(models.logit_ll, beta, x, y, covariance="CR0", groups=g).cov,
           res0.cov_params(), SE_RTOL)
    # Cluster labels of any sortable kind: strings give the same clusters.
    labels = np.array([f"g{v}" for v in g])
    _close(nllax.summary(models.logit_ll, beta, x, y, covariance="cluster", groups=labels).cov,
           s.cov, 1e-15)


# --------------------------------------------------------------------------------------
# Frequency weights, analytic and probability weights (Stata fweight / aweight / pweight).


def test_freq_weights_equal_repeated_rows(x64, cpunish):
    x, y, fw, gid = cpunish
    k = x.shape[1]
    reps = fw.astype(int)
    xe, ye, ge = np.repeat(x, reps, 0), np.repeat(y, reps), np.repeat(gid, reps)
    res = sm.GLM(y, x, family=sm.families.Poisson(), freq_weights=fw).fit(tol=1e-13)
    beta = jnp.asarray(res.params)
    # A repeated row is one more observation: the same summary as the expanded data, up
    # to the rounding of the 33-term sums taken in another order (33 eps relative),
    # amplified by the condition number of the unit-diagonal information.
    kappa = _kappa(res.cov_params())
    assert kappa < 2e4  # measured: 5e3
    rtol = 10 * kappa * 33 * np.finfo(np.float64).eps  # about 4e-10
    for cov, kw in (("HC1", {}), ("CR1", {"groups": gid})):
        s = nllax.summary(models.poisson_ll, beta, x, y, covariance=cov, freq_weights=fw, **kw)
        assert s.newton_decrement < 1e-6  # statsmodels' estimate is our weighted MLE
        kwe = {"groups": ge} if kw else {}
        e = nllax.summary(models.poisson_ll, beta, xe, ye, covariance=cov, **kwe)
        _close(s.cov, e.cov, rtol)
        assert s.nobs == e.nobs == 33 and s.df_resid == e.df_resid == 33 - k
        _close([s.loglik, s.aic, s.bic], [e.loglik, e.aic, e.bic], 1e-12)
    # Not the same as weights inside log_lik (analytic weights): the meat would count
    # w_i^2 and nobs the 17 rows.
    # The estimate and the observed covariance are the same (the same Hessian).
    a = nllax.summary(models.weighted_poisson_ll, beta, x, y, jnp.asarray(fw), covariance="HC0")
    h = nllax.summary(models.poisson_ll, beta, x, y, covariance="HC0", freq_weights=fw)
    assert a.nobs == 17 and np.max(np.abs(np.asarray(a.cov) / np.asarray(h.cov) - 1)) > 0.1
    ao = nllax.summary(models.weighted_poisson_ll, beta, x, y, jnp.asarray(fw))
    ho = nllax.summary(models.poisson_ll, beta, x, y, freq_weights=fw)
    assert ao.newton_decrement < 1e-6
    _close(ao.cov, ho.cov, rtol)
    # statsmodels' GLM(freq_weights=) agrees for the ML and HC0 covariances.
    for cov in ("nonrobust", "HC0"):
        res = sm.GLM(y, x, family=sm.families.Poisson(), freq_weights=fw).fit(
            tol=1e-13, cov_type=cov)
        s = nllax.summary(models.poisson_ll, beta, x, y, covariance="observed" if cov == "nonrobust"
                          else "HC0", freq_weights=fw)
        _close(s.stderr, res.bse, SE_RTOL)
        # statsmodels: nobs counts rows, wnobs the weights (its df_resid and BIC use wnobs).
        assert res.model.wnobs == s.nobs and res.df_resid == s.df_resid
        _close(res.bic_llf, s.bic, 1e-10)


@pytest.mark.parametrize("weights", ["none", "fweight", "aweight", "pweight"])
def test_glm_weights_against_stata(x64, cpunish, weights):
    # Stata's glm, family(poisson): nonrobust (OIM), vce(robust), vce(cluster id), for
    # no weights, [fweight=w], [aweight=w] (w normalised to sum to n) and [pweight=w].
    # Stata's ML commands use n / (n - 1) for robust and G / (G - 1) for clusters:
    # df_resid = N - 1, N = sum of the frequency weights (fweight) or the rows.
    x, y, fw, gid = cpunish
    n, k = x.shape
    st = models.results("statsmodels.genmod.tests.results.results_glm_poisson_weights")
    if weights == "fweight":
        ll, args, opts, big_n = models.poisson_ll, (x, y), {"freq_weights": fw}, int(fw.sum())
    elif weights == "none":
        ll, args, opts, big_n = models.poisson_ll, (x, y), {}, n
    else:  # aweight: normalised to sum to n; pweight: as given. Both go into log_lik.
        w = fw / fw.sum() * n if weights == "aweight" else fw
        ll, args, opts, big_n = models.weighted_poisson_ll, (x, y, jnp.asarray(w)), {}, n
    refs = {"observed": f"results_poisson_{weights}_nonrobust",
            "HC1": f"results_poisson_{weights}_hc1", "cluster": f"results_poisson_{weights}_clu1"}
    if weights == "pweight":  # Stata's pweight is always robust: its "nonrobust" is HC1
        refs["observed"] = None
    done = {}
    for cov, name in refs.items():
        if name is None:
            continue
        ref = getattr(st, name)
        assert ref.N == big_n
        kw = {"groups": gid} if cov == "cluster" else {}
        beta = jnp.asarray(ref.params_table[:, 0])
        # Stata's log-likelihood at its estimate differs from ours by 1.2e-8 relative (its
        # copy of the data or its reported estimate differ at that level), so agreement is
        # at the tolerance (measured: up to 1.2e-7).
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Stata's estimate is at the maximum: no warning
            s = nllax.summary(ll, beta, *args, covariance=cov, df_resid=big_n - 1, **opts, **kw)
        _close(s.stderr, ref.params_table[:, 1], SE_RTOL)
        assert s.nobs == big_n
        done[cov] = s
    if weights == "pweight":
        ref = st.results_poisson_pweight_nonrobust.params_table[:, 1]
        _close(done["HC1"].stderr, ref, SE_RTOL)


# --------------------------------------------------------------------------------------
# Dispersion: R's summary.glm standard errors for a Gamma GLM (scotland).


def test_gamma_dispersion_against_r(x64):
    rg = models.results("statsmodels.genmod.tests.results.results_glm")
    ref = rg.Scotvote()  # R: glm(YES ~ ..., family = Gamma), summary(): Pearson dispersion
    x, y = models.scotland()
    n, p = x.shape
    res = models.gamma_glm(x, y)
    beta = jnp.asarray(res.params)
    _close(beta, ref.params, PARAM_RTOL)  # statsmodels vs R
    mu = 1.0 / (x @ np.asarray(beta))
    phi = float(np.sum((y - mu) ** 2 / mu**2) / (n - p))  # Pearson chi2 / (n - p)
    # R printed 7 significant digits: half a unit of the last digit, per entry.
    half_ulp = lambda v: 0.5e-6 * 10.0 ** np.floor(np.log10(np.abs(v)))  # noqa: E731
    _within(phi, ref.scale, half_ulp(ref.scale))
    s = nllax.summary(models.gamma_ll, beta, x, y, 1.0, dispersion=phi)
    assert s.newton_decrement < 1e-6  # the hand-written likelihood has its MLE there
    assert s.dispersion == phi and "dispersion" in str(s)
    _within(s.stderr, ref.bse, half_ulp(np.asarray(ref.bse)) * (1 + 1e-9))
    _close(s.stderr, res.bse, SE_RTOL)
    _close(s.pvalues, res.pvalues, SE_RTOL)  # normal p-values, as statsmodels' GLM
    # The same as the dispersion inside the likelihood (the shape 1/phi scales the
    # Hessian of the mean parameters by 1/phi).
    # Compared on the scale sqrt(C_ii C_jj) of each entry: rounding (n eps) amplified by
    # the condition number of the unit-diagonal covariance.
    inside = nllax.summary(models.gamma_ll, beta, x, y, phi)
    c = np.asarray(s.cov)
    scale = np.sqrt(np.outer(np.diag(c), np.diag(c)))
    _within(inside.cov, c, 10 * _kappa(c) * n * np.finfo(np.float64).eps * scale)


# --------------------------------------------------------------------------------------
# Bad input.


def test_robust_covariance_bad_input(x64, spector):
    x, y = spector
    n, k = x.shape
    beta = jnp.asarray(sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-12).params)
    g = np.arange(n) % 4
    with pytest.raises(ValueError, match="needs groups="):
        nllax.summary(models.logit_ll, beta, x, y, covariance="cluster")
    with pytest.raises(ValueError, match="groups= is used only"):
        nllax.summary(models.logit_ll, beta, x, y, covariance="robust", groups=g)
    with pytest.raises(ValueError, match=r"`groups` must have shape \(32,\)"):
        nllax.summary(models.logit_ll, beta, x, y, covariance="CR1", groups=g[:-1])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        nllax.summary(models.logit_ll, beta, x, y, covariance="CR0", groups=np.zeros(n))
    with pytest.raises(ValueError, match=r"`freq_weights` must have shape \(32,\)"):
        nllax.summary(models.logit_ll, beta, x, y, freq_weights=np.ones((n, 1)))
    with pytest.raises(ValueError, match=">= 0"):
        nllax.summary(models.logit_ll, beta, x, y, freq_weights=-np.ones(n))
    with pytest.raises(TypeError, match="freq_weights"):
        nllax.summary(models.logit_ll, beta, x, y, freq_weights=np.array(["a"] * n))
    with pytest.raises(ValueError, match="df_resid"):
        nllax.summary(models.logit_ll, beta, x, y, covariance="HC1", df_resid=0)
    with pytest.raises(ValueError, match="dispersion= scales the observed"):
        nllax.summary(models.logit_ll, beta, x, y, covariance="HC0", dispersion=2.0)
    with pytest.raises(ValueError, match="dispersion"):
        nllax.summary(models.logit_ll, beta, x, y, dispersion=-1.0)
    with pytest.raises(ValueError, match="covariance"):
        nllax.summary(models.logit_ll, beta, x, y, covariance="HC3")
    # n <= k: HC1 cannot divide by n - p (the default df_resid).
    with pytest.raises(ValueError, match="df_resid = n - p"):
        nllax.summary(models.logit_ll, beta, x[:3], y[:3], covariance="HC1")


def test_freq_weights_in_profile_and_score_tests(x64):
    # One Poisson log-rate (no re-fit needed): frequency weights give the same profile
    # interval and score test as the repeated rows.
    y = jnp.array([0.0, 1.0, 3.0, 2.0, 4.0, 1.0])
    w = np.array([2.0, 1.0, 1.0, 3.0, 1.0, 1.0])
    ye = jnp.asarray(np.repeat(np.asarray(y), w.astype(int)))

    def ll(eta, y):
        return nllax.poisson.log_prob(y, log_rate=eta * jnp.ones_like(y))

    eta = jnp.log(jnp.sum(w * y) / w.sum())
    s = nllax.summary(ll, eta, y, freq_weights=w)
    e = nllax.summary(ll, eta, ye)
    assert s.nobs == e.nobs == 9
    # Sums of 6 or 9 terms in another order: rounding of a few eps (one parameter).
    tol = 100 * np.finfo(np.float64).eps
    ps, pe = s.profile_ci(0), e.profile_ci(0)
    # Each end is located to xtol = 1e-8 standard errors.
    _close([ps.lower, ps.upper], [pe.lower, pe.upper], 0.0, atol=2e-8 * float(s.stderr))
    _close(s.score_test(np.ones(1), 0.0).statistic, e.score_test(np.ones(1), 0.0).statistic, tol)
    _close(s.wald_test(np.ones(1), 0.0).statistic, e.wald_test(np.ones(1), 0.0).statistic, tol)
