"""Test case: the asymmetric Laplace family (and the pinball row).

Reference: ``scipy.stats.laplace_asymmetric`` with kappa = sqrt(tau / (1 - tau)) and
scipy's scale s / sqrt(tau (1 - tau)) (the rates kappa / c = tau / s above the location
and 1 / (kappa c) = (1 - tau) / s below; normaliser 1 / (c (kappa + 1/kappa)) =
tau (1 - tau) / s). Its ``logcdf``/``logsf`` are ``log`` of the CDF, which lose the far
tails, so the CDF references are its closed form in scipy's (kappa, c) parametrisation,
the exponential side in log space.
"""

import numpy as np
from scipy import stats

import nllax

from . import NAN, EquivalenceCase, FamilyCase


def scipy_params(scale, quantile):
    tau = np.asarray(quantile, np.float64)
    return np.sqrt(tau / (1 - tau)), np.asarray(scale, np.float64) / np.sqrt(tau * (1 - tau))


def _reference(y, loc, scale, quantile):
    kappa, c = scipy_params(scale, quantile)
    return stats.laplace_asymmetric.logpdf(y, kappa, loc, c)


def _log_cdf_x(x, kappa):
    # scipy's CDF: exp(x / kappa) kappa^2 / (1 + kappa^2) below 0,
    # 1 - exp(-kappa x) / (1 + kappa^2) = (kappa^2 - expm1(-kappa x)) / (1 + kappa^2) above
    # (a sum of two non-negative terms: exact where F is small, i.e.
    # for kappa near 0; log1p of the small deficit where F > 1/2)
    k2 = kappa ** 2
    lo = np.minimum(x, 0.0) / kappa - np.log1p(1 / k2)  # log(k2 / (1 + k2)), no cancellation
    xp = np.maximum(x, 0.0)
    deficit = np.exp(-kappa * xp) / (1 + k2)
    hi = np.where(deficit < 0.5, np.log1p(-np.minimum(deficit, 0.5)),
                  np.log(k2 - np.expm1(-kappa * xp)) - np.log1p(k2))
    return np.where(x < 0, lo, hi)


def _log_sf_x(x, kappa):
    # 1 - F = (1 - kappa^2 expm1(x / kappa)) / (1 + kappa^2) below 0
    # (log1p of the small deficit kappa^2 e^{x/kappa} / (1 + kappa^2) where it is < 1/2)
    k2 = kappa ** 2
    xn = np.minimum(x, 0.0)
    deficit = np.exp(xn / kappa) * k2 / (1 + k2)
    lo = np.where(deficit < 0.5, np.log1p(-np.minimum(deficit, 0.5)),
                  np.log1p(-k2 * np.expm1(xn / kappa)) - np.log1p(k2))
    hi = -kappa * np.maximum(x, 0.0) - np.log1p(k2)
    return np.where(x < 0, lo, hi)


def ref_log_cdf(y, loc, scale, quantile):
    kappa, c = scipy_params(scale, quantile)
    return _log_cdf_x((y - loc) / c, kappa)


def ref_log_sf(y, loc, scale, quantile):
    kappa, c = scipy_params(scale, quantile)
    return _log_sf_x((y - loc) / c, kappa)


def _sample(rng, n):
    loc = rng.normal(size=n)
    scale = np.exp(rng.normal(size=n))
    tau = rng.uniform(0.05, 0.95, size=n)
    kappa, c = scipy_params(scale, tau)
    y = stats.laplace_asymmetric.rvs(kappa, loc, c, random_state=rng)
    return y, {"loc": loc, "scale": scale, "quantile": tau}


def _magnitude(y, loc, scale, quantile):
    # the terms added: rho_tau(u) (u = r/s, 2 roundings; times tau or 1 - tau), log tau,
    # log1p(-tau), log s
    u = (y - loc) / scale
    return (np.abs(u) * np.maximum(quantile, 1 - quantile) + np.abs(np.log(quantile))
            + np.abs(np.log1p(-quantile)) + np.abs(np.log(scale)) + 1.0)


# |u| <= 300: at u = -700, tau = 1e-6 the survival deficit 1e-310 is a subnormal, which
# XLA:CPU flushes to zero
_U = np.array([-300.0, -30.0, -1.0, 0.0, 0.5, 30.0, 300.0])

CASE = FamilyCase(
    module=nllax.asymmetric_laplace,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=ref_log_cdf,
    ref_log_sf=ref_log_sf,
    invalid={"scale": [-1.0, 0.0, NAN], "quantile": [0.0, 1.0, -0.5, 1.5, NAN],
             "y": [NAN]},
    support="real",
    normalisation=({"loc": 0.3, "scale": 1.7, "quantile": 0.5},
                   {"loc": -2.0, "scale": 0.05, "quantile": 0.1},
                   {"loc": 1.0, "scale": 2.0, "quantile": 0.97}),
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="u = r/s (2 roundings) times tau or 1 - tau (1 - tau exact for tau >= 1/2), "
            "log tau, log1p(-tau), log s: a sum of four terms",
    tails=((_U, {"loc": 0.0, "scale": 1.0, "quantile": 0.5}),
           (_U, {"loc": 0.0, "scale": 1.0, "quantile": 1e-6}),
           (_U, {"loc": 0.0, "scale": 1.0, "quantile": 1 - 1e-6}),
           (_U, {"loc": 2.0, "scale": 0.5, "quantile": 0.2})),
)


def _eq_sample(rng, n):
    kappa, c = scipy_params(0.8, 0.25)
    return (stats.laplace_asymmetric.rvs(kappa, 0.0, c, size=n, random_state=rng),
            rng.normal(size=n), {"scale": 0.8, "quantile": 0.25})


EQUIVALENCES = {"pinball": EquivalenceCase(_eq_sample, smooth=False)}
