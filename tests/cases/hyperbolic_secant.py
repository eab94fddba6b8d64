"""Test case: the hyperbolic secant family (and the log_cosh row).

Reference: ``scipy.stats.hypsecant`` (density sech(x)/pi) with loc and scale; its
``logcdf``/``logsf`` are ``log`` of the CDF, which lose the far tails, so the CDF
references are the closed form (2/pi) arctan(exp(z)) taken on the side where it is
small (numpy's ``arctan`` of ``exp``, ``log1p`` for the other side).
"""

import numpy as np
from scipy import stats

import nllax

from . import NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    y = stats.hypsecant.rvs(size=n, random_state=rng) * 2
    return y, {"loc": rng.normal(size=n), "scale": np.exp(rng.normal(size=n))}


def _reference(y, loc, scale):
    # scipy's pdf is 1 / (pi cosh z): cosh overflows past |z| = 710, where
    # -log cosh z = log 2 - logaddexp(z, -z) (numpy) takes over
    z = (np.asarray(y, np.float64) - loc) / scale
    inside = np.abs(z) < 700
    zi = np.where(inside, z, 0.0)
    far = np.log(2.0 / np.pi) - np.logaddexp(z, -z) - np.log(scale)
    return np.where(inside, stats.hypsecant.logpdf(zi) - np.log(scale), far)


def _log_cdf_z(z):
    z = np.asarray(z, np.float64)
    # below -700, arctan(e^z) = e^z (1 - e^{2z}/3 ...) is e^z to float64 precision and
    # exp(z) heads for the subnormals: its log is z
    zl = np.minimum(z, 0.0)
    lo = np.where(zl > -700, np.log(2 / np.pi * np.arctan(np.exp(np.maximum(zl, -700.0)))),
                  zl + np.log(2 / np.pi))
    hi = np.log1p(-2 / np.pi * np.arctan(np.exp(-np.maximum(z, 0.0))))
    return np.where(z <= 0, lo, hi)


CASE = FamilyCase(
    module=nllax.hyperbolic_secant,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=lambda y, loc, scale: _log_cdf_z((y - loc) / scale),
    ref_log_sf=lambda y, loc, scale: _log_cdf_z((loc - y) / scale),
    invalid={"scale": [-1.0, 0.0, NAN], "var": [-1.0], "y": [NAN]},
    support="real",
    normalisation=({"loc": 0.3, "scale": 1.7}, {"loc": -2.0, "scale": 0.05}),
    magnitude=lambda y, loc, scale: np.abs((y - loc) / scale) + np.abs(np.log(scale)) + 2.0,
    f32_ulps=16,
    f32_why="|z| (2 roundings), log1p(exp(-2|z|)) <= log 2, log s, log(pi/2): a sum of "
            "four terms",
    tails=((np.array([-700.0, -100.0, -30.0, -5.0, 0.0, 5.0, 30.0, 100.0, 700.0]),
            {"loc": 0.0, "scale": 1.0}),),
)


def _eq_sample(rng, n):
    return stats.hypsecant.rvs(size=n, random_state=rng), rng.normal(size=n), {}


EQUIVALENCES = {"log_cosh": EquivalenceCase(_eq_sample)}
