"""GLM fits with the gamma and Tweedie families against statsmodels' GLM on its bundled
datasets (float64): the family's log-density as the objective of ``nllax.fit``, standard
errors from ``nllax.summary`` with the dispersion statsmodels estimates (Pearson)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import _inference_models as models
import nllax

sm = pytest.importorskip("statsmodels.api")

# statsmodels' IRLS stops when the deviance changes by less than tol (1e-13 relative
# here); the deviance is quadratic at its minimum, so its parameters are within about
# sqrt(1e-13) ~ 3e-7 relative of the exact solution, times the conditioning of the
# information (small for these designs). nllax.fit stops at a Newton decrement of
# eps^(2/3): its own error is far below that. 1e-6 leaves a factor 3.
PARAM_RTOL = 1e-6
# Standard errors are square roots of the inverse information at the estimate: a relative
# parameter error d moves them by ~d (the information is smooth in the parameters) and
# the Pearson scale by ~2d; 1e-5 leaves a factor 3 over 3e-6.
SE_RTOL = 1e-5


def _gamma_ll(beta, x, y):
    # statsmodels' default Gamma link is the canonical inverse link: mu = 1 / (x beta)
    return nllax.gamma.log_prob(y, mean=1.0 / (x @ beta), dispersion=1.0)


def test_gamma_scotland_against_statsmodels(x64):
    x, y = models.scotland()
    n, p = x.shape
    res = models.gamma_glm(x, y)
    beta0 = jnp.zeros(p).at[-1].set(1.0 / y.mean())  # the constant is the last column
    r = nllax.fit(lambda b, x, y: -jnp.sum(_gamma_ll(b, x, y)), beta0, x, y, throw=True)
    beta = np.asarray(r.params)
    np.testing.assert_allclose(beta, res.params, rtol=PARAM_RTOL)
    mu = 1.0 / (x @ beta)
    phi = float(np.sum((y - mu) ** 2 / mu**2) / (n - p))  # Pearson chi2 / (n - p)
    np.testing.assert_allclose(phi, res.scale, rtol=SE_RTOL)
    # the MLE of beta does not depend on phi; the covariance is phi (-H at phi = 1)^-1
    s = nllax.summary(_gamma_ll, jnp.asarray(beta), x, y, dispersion=phi)
    np.testing.assert_allclose(np.asarray(s.stderr), res.bse, rtol=SE_RTOL)
    _report("Gamma, inverse link (scotland)", beta, res.params, np.asarray(s.stderr), res.bse)


def _fair():
    d = sm.datasets.fair.load_pandas()
    return (sm.add_constant(np.asarray(d.exog, float), prepend=False),
            np.asarray(d.endog, float))


def _tweedie_ll(beta, x, y):
    return nllax.tweedie.log_prob(y, log_mean=x @ beta, dispersion=1.0, power=1.5)


def test_tweedie_fair_against_statsmodels(x64):
    x, y = _fair()
    n, p = x.shape
    res = sm.GLM(y, x, family=sm.families.Tweedie(var_power=1.5)).fit(tol=1e-13)
    beta0 = jnp.zeros(p).at[-1].set(np.log(y.mean()))
    # the Tweedie score in beta is sum (y - mu) mu^(1-p) x / phi: the MLE is statsmodels'
    # estimating equation, whatever phi (W(y, phi, p) does not depend on mu)
    r = nllax.fit(lambda b, x, y: -jnp.sum(_tweedie_ll(b, x, y)), beta0, x, y, throw=True)
    beta = np.asarray(r.params)
    np.testing.assert_allclose(beta, res.params, rtol=PARAM_RTOL)
    # the same estimate from the deviance (the loss of the equivalence row)
    r2 = nllax.fit(lambda b, x, y: nllax.losses.tweedie_deviance(y, x @ b, power=1.5),
                   beta0, x, y, throw=True)
    np.testing.assert_allclose(np.asarray(r2.params), res.params, rtol=PARAM_RTOL)
    # standard errors: statsmodels' IRLS covariance is the inverse *expected* information
    # with the Pearson scale (for the log link, not the canonical one, the observed
    # information differs): X^T diag(I_i) X with I_i the family's declared Fisher
    # information for log_mean (mu^(2-p) / phi)
    mu = np.exp(x @ beta)
    phi = float(np.sum((y - mu) ** 2 / mu**1.5) / (n - p))
    np.testing.assert_allclose(phi, res.scale, rtol=SE_RTOL)
    w = nllax.tweedie.family.fisher_information(
        log_mean=jnp.asarray(x @ beta), dispersion=phi, power=1.5)["log_mean"]
    info = x.T @ (x * np.asarray(w)[:, None])
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    np.testing.assert_allclose(se, res.bse, rtol=SE_RTOL)
    _report("Tweedie p=1.5, log link (fair)", beta, res.params, se, res.bse)


def _report(name, beta, ref, se, ref_se):
    rel = np.max(np.abs(beta - ref) / np.abs(ref))
    rel_se = np.max(np.abs(se - ref_se) / np.abs(ref_se))
    print(f"{name}: max rel param diff {rel:.2e}, max rel SE diff {rel_se:.2e}")
