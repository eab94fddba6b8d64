"""Models and statsmodels' bundled datasets shared by the inference test modules.

Module-level log-likelihoods, so that the compiled derivatives are shared between test
modules (jit caches on the function object). Loaders return NumPy float64 arrays (never
JAX arrays: they may run before a test's `x64` fixture) and are cached.
"""

from __future__ import annotations

import functools
import importlib
import math
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln

import nllax

sm = pytest.importorskip("statsmodels.api")

# The tolerances for comparisons with statsmodels on the same data (both sides
# at the MLE to ~1e-12, so far above float64 rounding times the conditioning here).
PARAM_RTOL = 1e-6
SE_RTOL = 1e-5


def close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def within(actual, expected, atol):
    """|actual - expected| <= atol elementwise (atol may be an array)."""
    err = np.abs(np.asarray(actual) - np.asarray(expected))
    assert np.all(err <= atol), f"error {err} above {atol}"


def kappa(cov):
    """Condition number of a covariance (or information) scaled to unit diagonal."""
    c = np.asarray(cov)
    d = 1 / np.sqrt(np.diag(c))
    return np.linalg.cond(c * np.outer(d, d))


@functools.lru_cache(maxsize=None)
def _objective(log_lik):
    # One objective object per model: nllax.fit compiles once per model and shapes.
    return lambda p, w, *a: -jnp.sum(w * log_lik(p, *a))


def mle(log_lik, params0, *args, freq_weights=None):
    """nllax's own MLE (so that parameters are compared, not copied)."""
    n = np.shape(args[0])[0]  # every model here takes x (n, p) first
    w = np.ones(n) if freq_weights is None else np.asarray(freq_weights, float)
    return nllax.fit(_objective(log_lik), params0, jnp.asarray(w), *args, throw=True).params


def results(module: str):
    """A reference-results module shipped with statsmodels' tests, or skip."""
    try:
        return importlib.import_module(module)
    except ImportError:  # statsmodels installed without its tests
        pytest.skip(f"{module} is not installed")


def ols_ll(p, x, y):
    return nllax.gaussian.log_prob(y, x @ p["beta"], p["sigma"])


def unit_gaussian_ll(beta, x, y):
    # sigma fixed at 1: with dispersion = SSR / (n - p) the covariance is statsmodels' OLS.
    return nllax.gaussian.log_prob(y, x @ beta, 1.0)


def logit_ll(beta, x, y):
    return nllax.bernoulli.log_prob(y, logits=x @ beta)


def poisson_ll(beta, x, y):
    return nllax.poisson.log_prob(y, log_rate=x @ beta)


def weighted_poisson_ll(beta, x, y, w):
    # Analytic / probability weights: each observation's log-likelihood times its weight.
    return w * nllax.poisson.log_prob(y, log_rate=x @ beta)


def gamma_ll(beta, x, y, phi):
    # Gamma GLM with the canonical inverse link, mean mu = 1 / (x beta), shape 1 / phi:
    # log f = nu log(nu y / mu) - nu y / mu - log y - log Gamma(nu), nu = 1 / phi.
    mu = 1.0 / (x @ beta)
    nu = 1.0 / phi
    return nu * jnp.log(nu * y / mu) - nu * y / mu - jnp.log(y) - gammaln(nu)


@functools.lru_cache(maxsize=None)
def macro():
    """Stata: `regress g_realinv g_realgdp L.realint, vce(robust)` (statsmodels'
    test_robustcov.py builds the same design). Returns x, y and the OLS MLE."""
    d = sm.datasets.macrodata.load_pandas().data
    g_gdp = 400 * np.diff(np.log(d["realgdp"].to_numpy()))
    g_inv = 400 * np.diff(np.log(d["realinv"].to_numpy()))
    x = sm.add_constant(np.c_[g_gdp, d["realint"].to_numpy()[:-1]], prepend=False)
    return x, g_inv, _ols_mle(x, g_inv)


def _ols_mle(x, y):
    res = sm.OLS(y, x).fit()
    return {"beta": np.asarray(res.params), "sigma": np.asarray(math.sqrt(res.ssr / len(y)))}


@functools.lru_cache(maxsize=None)
def grunfeld():
    """Stata: `regress invest mvalue kstock, vce(cluster company)` on the first 200 rows."""
    d = sm.datasets.grunfeld.load_pandas()
    y = d.endog.to_numpy(float)[:200]
    ex = d.exog[:200]
    x = sm.add_constant(ex[["value", "capital"]].to_numpy(float), prepend=False)
    return x, y, ex["firm"].to_numpy().astype(str), _ols_mle(x, y)


@functools.lru_cache(maxsize=None)
def ships():
    """Stata: `poisson accident yr_con op_75_79, vce(robust)` and `vce(cluster ship)`."""
    pd = pytest.importorskip("pandas")
    tests = results("statsmodels.discrete.tests")
    d = pd.read_csv(pathlib.Path(tests.__file__).parent / "results" / "ships.csv").dropna()
    x = sm.add_constant(d[["yr_con", "op_75_79"]].to_numpy(float), prepend=False)
    return x, d["accident"].to_numpy(float), d["ship"].to_numpy(int)


@functools.lru_cache(maxsize=None)
def cpunish():
    """statsmodels' test_glm_weights.py: log of column 3, constant last, its weights and
    clusters."""
    d = sm.datasets.cpunish.load()
    x = np.asarray(d.exog, float).copy()
    x[:, 3] = np.log(x[:, 3])
    x = sm.add_constant(x, prepend=False)
    fw = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 2, 3, 3], float)
    gid = np.arange(1, 18) // 2  # 9 clusters
    return x, np.asarray(d.endog, float), fw, gid


@functools.lru_cache(maxsize=None)
def spector():
    d = sm.datasets.spector.load()
    return sm.add_constant(np.asarray(d.exog, float), prepend=False), np.asarray(d.endog, float)


@functools.lru_cache(maxsize=None)
def scotland():
    d = sm.datasets.scotland.load()
    return sm.add_constant(np.asarray(d.exog, float), prepend=False), np.asarray(d.endog, float)


@functools.lru_cache(maxsize=None)
def longley():
    d = sm.datasets.longley.load()
    return sm.add_constant(np.asarray(d.exog, float), prepend=False), np.asarray(d.endog, float)


def gamma_glm(x, y):
    """statsmodels' Gamma GLM (default: canonical inverse link)."""
    import warnings

    from statsmodels.tools.sm_exceptions import DomainWarning

    with warnings.catch_warnings():  # "the inverse link does not respect the domain"
        warnings.simplefilter("ignore", DomainWarning)
        return sm.GLM(y, x, family=sm.families.Gamma()).fit(tol=1e-13)
