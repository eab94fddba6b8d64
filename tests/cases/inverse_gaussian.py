"""Test case: the inverse Gaussian family (GLM parametrisation)."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, FamilyCase


def _sample(rng, n):
    # means around e and dispersions <= 1 keep log p mostly negative: the harness compares
    # float32 sums (vmap vs loop, mask vs indexing) relative to the total
    eta = 1.0 + rng.normal(size=n) * 0.5
    phi = np.exp(rng.uniform(np.log(0.05), np.log(1.0), size=n))
    mu = np.exp(eta)
    # scipy's invgauss(mu * phi, scale = 1 / phi) is the mean-mu, dispersion-phi law
    y = stats.invgauss.rvs(mu * phi, scale=1.0 / phi, random_state=rng)
    return y, {"log_mean": eta, "dispersion": phi}


def _scipy(fn):
    def ref(y, log_mean, dispersion):
        return fn(y, np.exp(log_mean) * dispersion, scale=1.0 / dispersion)
    return ref


def _magnitude(y, log_mean, dispersion):
    # -log(2 pi phi y^3)/2 and (x - 1)^2 / (2 phi y) with x = y e^-eta: the rounding of x
    # (relative eps (1 + |eta|)) is amplified by |d lp / d log x| = x |x - 1| / (phi y)
    x = y * np.exp(-log_mean)
    quad = np.square(x - 1) / (2 * dispersion * y)
    return (np.abs(_scipy(stats.invgauss.logpdf)(y, log_mean, dispersion)) + 1.0
            + 1.5 * np.abs(np.log(y)) + 0.5 * np.abs(np.log(dispersion)) + quad
            + x * np.abs(x - 1) / (dispersion * y) * (1 + np.abs(log_mean)))


CASE = FamilyCase(
    module=nllax.inverse_gaussian,
    sample=_sample,
    reference=_scipy(stats.invgauss.logpdf),
    ref_log_cdf=_scipy(stats.invgauss.logcdf),
    ref_log_sf=_scipy(stats.invgauss.logsf),
    invalid={"y": [0.0, -1.0, NAN], "mean": [0.0, -1.0, NAN], "dispersion": [0.0, -2.0, NAN]},
    support="positive",
    normalisation=({"log_mean": 0.3, "dispersion": 0.5}, {"log_mean": -1.0, "dispersion": 0.05}),
    rtol64=1e-12,
    rtol64_why="the same closed form in both (scipy: -log(2 pi)/2 - 1.5 log x - (x/mu - 1)^2 "
               "/ (2x) on the standardised x): a few roundings of terms no larger than ~10x "
               "the result in this sample",
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="a few roundings of each term, relative to their size and the conditioning in "
            "eta (see _magnitude)",
    # scipy's logsf subtracts two log-terms of size a^2/2 (its far upper tail is no
    # reference), so the tails stay where a^2/2 < ~40
    tails=((np.array([1e-3, 12.0]), {"log_mean": 0.0, "dispersion": 1.0}),
           (np.array([0.05, 40.0]), {"log_mean": 1.0, "dispersion": 0.3})),
)
