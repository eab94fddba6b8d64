"""Test case: the Gaussian family (and the SSE / MSE rows)."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    y = rng.normal(size=n) * 3
    return y, {"loc": rng.normal(size=n), "scale": np.exp(rng.normal(size=n))}


def _magnitude(y, loc, scale):
    # the terms that are added: z^2 / 2, log sigma, log(2 pi) / 2
    return 0.5 * ((y - loc) / scale) ** 2 + np.abs(np.log(scale)) + 1.0


CASE = FamilyCase(
    module=nllax.gaussian,
    sample=_sample,
    reference=lambda y, loc, scale: stats.norm.logpdf(y, loc, scale),
    ref_log_cdf=lambda y, loc, scale: stats.norm.logcdf(y, loc, scale),
    ref_log_sf=lambda y, loc, scale: stats.norm.logsf(y, loc, scale),
    invalid={"scale": [-1.0, 0.0, NAN], "var": [-1.0, 0.0, NAN], "y": [NAN]},
    support="real",
    normalisation=({"loc": 0.3, "scale": 1.7}, {"loc": -2.0, "scale": 0.05}),
    magnitude=_magnitude,
    # z = r / sigma (1-2 roundings, squared: <= 4 eps relative of z^2), log sigma, and the
    # sum of three terms: <= 8 eps of the largest, with room for the log-forms' exp.
    f32_ulps=16,
    f32_why="z = r/sigma squared (4 eps of z^2), log sigma, a sum of three terms",
    tails=((np.array([-40.0, -8.0, 8.0, 40.0]), {"loc": 0.0, "scale": 1.0}),),
)


def _eq_sample(rng, n):
    return rng.normal(size=n) * 2, rng.normal(size=n), {"scale": 0.7}


EQUIVALENCES = {
    "sse": EquivalenceCase(_eq_sample),
    "mse": EquivalenceCase(_eq_sample),
}
