"""Test case: the gamma family (GLM parametrisation) and the gamma deviance row."""

import numpy as np
from scipy import stats

import nllax

import _refs_glm2
from . import NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    eta = rng.normal(size=n) * 0.8
    phi = np.exp(rng.uniform(np.log(0.02), np.log(3.0), size=n))
    phi[1] = 2.5  # a small shape
    # Large shapes (k = 1e3 and 500, where the textbook form cancels) after the first 8
    # rows: the gradient tests (n = 6 here, n = 8 in test_wrappers) differentiate
    # `dispersion` itself with steps of ~1e-5 to 1.2e-4, too coarse for phi = 1e-3
    # (test_glm2_families checks phi down to 1e-8).
    phi[8:10] = [1e-3, 2e-3][: max(0, n - 8)]
    y = rng.gamma(1.0 / phi, np.exp(eta) * phi)
    y[1] = 0.05
    return y, {"log_mean": eta, "dispersion": phi}


def _reference(y, log_mean, dispersion):
    # 60-digit decimal: scipy's float64 logpdf loses log10(k log k) digits at a large shape
    return _refs_glm2.gamma_logpdf_log_mean(y, log_mean, dispersion)


def _ref_log_cdf(y, log_mean, dispersion):
    return stats.gamma.logcdf(y, a=1.0 / dispersion, scale=np.exp(log_mean) * dispersion)


def _ref_log_sf(y, log_mean, dispersion):
    return stats.gamma.logsf(y, a=1.0 / dispersion, scale=np.exp(log_mean) * dispersion)


def _magnitude(y, log_mean, dispersion):
    # the terms added: log y, log(phi)/2, stirlerr(k) (<= 1/12k, or lgamma-sized below
    # k = 15: ~ |log phi|), and k * (x - 1 - log x) computed from x = y e^-eta (whose
    # rounding carries the conditioning |d lp / d log x| (1 + |eta|) = k |x - 1| (1 + |eta|))
    # and, where Loader's series is not used (|x - 1| / (x + 1) >= 0.1), the terms of
    # u - log1p(u) (x in [1/2, 2]) or of x - 1 - log x (beyond).
    k = 1.0 / dispersion
    x = y * np.exp(-log_mean)
    series = np.abs(x - 1) / (x + 1) < 0.1
    mid = (x >= 0.5) & (x <= 2)
    bd_terms = np.where(series, x - 1 - np.log(x),
                        np.where(mid, 2 * np.abs(x - 1), x + 1 + np.abs(np.log(x))))
    return (np.abs(_reference(y, log_mean, dispersion)) + 1.0 + np.abs(np.log(y))
            + 2 * np.abs(np.log(dispersion)) + k * bd_terms
            + k * np.abs(x - 1) * (1 + np.abs(log_mean)))


CASE = FamilyCase(
    module=nllax.gamma,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=_ref_log_cdf,
    ref_log_sf=_ref_log_sf,
    invalid={"y": [0.0, -1.0, NAN], "mean": [0.0, -1.0, NAN], "dispersion": [0.0, -2.0, NAN]},
    support="positive",
    normalisation=({"log_mean": 0.3, "dispersion": 0.5}, {"log_mean": -1.0, "dispersion": 0.05}),
    rtol64=1e-12,
    rtol64_why="Loader's decomposition: each term is no larger than ~20x the result in this "
               "sample and carries a few eps (50 eps x 20 = 1e-12 relative)",
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="a few roundings of each term of the saddle-point form, relative to the size of "
            "the terms and the conditioning in eta (see _magnitude)",
    tails=((np.array([1e-12, 80.0]), {"log_mean": 0.0, "dispersion": 1.0}),
           (np.array([1e-3, 3.0]), {"log_mean": 0.0, "dispersion": 0.01}),
           (np.array([1e-30, 500.0]), {"log_mean": 1.0, "dispersion": 4.0})),
)


def _eq_sample(rng, n):
    eta = rng.normal(size=n) * 0.5
    return rng.gamma(1.0 / 0.4, np.exp(eta) * 0.4), eta, {"dispersion": 0.4}


EQUIVALENCES = {"gamma_deviance": EquivalenceCase(_eq_sample)}
