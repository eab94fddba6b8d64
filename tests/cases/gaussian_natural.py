"""Test case: the Gaussian in natural parameters, against scipy.stats.norm through the map
(eta1, eta2) -> (mu, sigma^2) = (-eta1 / (2 eta2), -1 / (2 eta2))."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, FamilyCase


def _sample(rng, n):
    mu = rng.normal(size=n) * 2
    sigma = np.exp(0.7 * rng.normal(size=n))
    y = mu + 1.5 * sigma * rng.normal(size=n)
    return y, {"eta1": mu / sigma**2, "eta2": -0.5 / sigma**2}


def _mean_sd(eta1, eta2):
    eta1, eta2 = np.asarray(eta1, np.float64), np.asarray(eta2, np.float64)
    return -eta1 / (2 * eta2), np.sqrt(-1.0 / (2 * eta2))


def _reference(y, eta1, eta2):
    mu, sd = _mean_sd(eta1, eta2)
    return stats.norm.logpdf(y, mu, sd)


def _magnitude(y, eta1, eta2):
    # z = (t y - eta1) / sqrt(t): t y and the difference are one rounding each relative to
    # |t y| + |eta1|, so z moves by eps (|t y| + |eta1|) / sqrt(t) and z^2 / 2 by |z| times
    # that; plus z^2 / 2, log t / 2 and log(2 pi) / 2, the terms added.
    t = -2.0 * np.asarray(eta2, np.float64)
    z = (t * y - eta1) / np.sqrt(t)
    return (np.abs(z) * (np.abs(t * y) + np.abs(eta1)) / np.sqrt(t) + 0.5 * z**2
            + np.abs(0.5 * np.log(t)) + 1.0)


def _norm(fn):
    def ref(y, eta1, eta2):
        mu, sd = _mean_sd(eta1, eta2)
        return fn(y, mu, sd)
    return ref


CASE = FamilyCase(
    module=nllax.gaussian_natural,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=_norm(stats.norm.logcdf),
    ref_log_sf=_norm(stats.norm.logsf),
    invalid={"eta2": [1.0, 0.0, NAN], "y": [NAN]},
    support="real",
    normalisation=({"eta1": 0.3, "eta2": -0.2}, {"eta1": 40.0, "eta2": -200.0}),
    # both computations start from the same (eta1, eta2); scipy goes through mu and sigma
    # (2-3 roundings of each), which moves log p by ~eps (|z| (|y| + |mu|) / sigma + 1):
    # the magnitude below is <= 30 for the sampler, so 1e-12 is ~45x the worst of that.
    rtol64=1e-12,
    rtol64_why="scipy through (mu, sigma): a few roundings of mu, sigma, z, relative",
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="z from t y - eta1 (2 roundings of |t y| + |eta1|), squared, plus log t / 2: "
            "a sum of three terms",
    tails=((np.array([-40.0, -8.0, 8.0, 40.0]), {"eta1": 0.0, "eta2": -0.5}),
           (np.array([90.0, 110.0]), {"eta1": 100.0, "eta2": -0.5})),
)
