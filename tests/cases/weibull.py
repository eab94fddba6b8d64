"""Test case: the Weibull family (scipy.stats.weibull_min)."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, FamilyCase


def _sample(rng, n):
    scale = np.exp(rng.normal(size=n))
    concentration = np.exp(0.5 * rng.normal(size=n))
    return scale * rng.weibull(concentration), {"scale": scale, "concentration": concentration}


def _reference(y, scale, concentration):
    return stats.weibull_min.logpdf(y, concentration, scale=scale)


def _magnitude(y, scale, concentration):
    # the terms added: log k, log lambda, (k - 1) log z, z^k; and z^k = exp(k log z)
    # rounds k log z (one eps of k |log z|, times z^k)
    k, log_z = concentration, np.log(y / scale)
    t = np.exp(k * log_z)
    return (np.abs(np.log(k)) + np.abs(np.log(scale)) + np.abs(k - 1) * np.abs(log_z) + t
            + k * np.abs(log_z) * (1.0 + t) + 1.0)


CASE = FamilyCase(
    module=nllax.weibull,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=lambda y, scale, concentration: stats.weibull_min.logcdf(
        y, concentration, scale=scale),
    ref_log_sf=lambda y, scale, concentration: stats.weibull_min.logsf(
        y, concentration, scale=scale),
    invalid={"y": [-1.0, NAN], "scale": [0.0, -1.0, NAN], "concentration": [0.0, -1.0, NAN]},
    support="positive",
    normalisation=({"scale": 1.3, "concentration": 0.7}, {"scale": 0.5, "concentration": 3.0},
                   {"scale": 2.0, "concentration": 1.0}),
    rtol64=1e-12,
    rtol64_why="the same four terms in both; SciPy's log of y/lambda and power may "
               "round differently: a few eps of the largest term",
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="a sum of four terms, each within a few eps of its size; exp(k log z) "
            "carries the rounding of k log z",
    tails=((np.array([1e-12, 1e-3, 1.0, 5.0, 30.0]), {"scale": 1.0, "concentration": 1.5}),
           (np.array([1e-30, 1e3]), {"scale": 2.0, "concentration": 0.3})),
)
