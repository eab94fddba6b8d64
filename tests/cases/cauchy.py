"""Test case: the Cauchy family."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, FamilyCase


def _sample(rng, n):
    loc = rng.normal(size=n)
    scale = np.exp(rng.normal(size=n) * 2)
    z = rng.standard_cauchy(size=n)
    z[:3] = [-1e8, 0.0, 1e5]
    return loc + scale * z, {"loc": loc, "scale": scale}


def _magnitude(y, loc, scale):
    # the terms added: log(1 + z^2) (its argument z with 2 roundings: 2 eps z^2/(1+z^2)
    # <= 2 eps), log s, log pi
    z = (np.asarray(y) - loc) / scale
    return np.log1p(z * z) + np.abs(np.log(scale)) + 2.0


CASE = FamilyCase(
    module=nllax.cauchy,
    sample=_sample,
    reference=lambda y, loc, scale: stats.cauchy.logpdf(y, loc, scale),
    ref_log_cdf=lambda y, loc, scale: stats.cauchy.logcdf(y, loc, scale),
    ref_log_sf=lambda y, loc, scale: stats.cauchy.logsf(y, loc, scale),
    invalid={"scale": [-1.0, 0.0, NAN], "var": [-1.0, NAN], "y": [NAN]},
    normalisation=({"loc": 0.3, "scale": 1.7}, {"loc": -2.0, "scale": 0.05}),
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="log(1 + z^2) (log1p or 2 log|z| + log1p), log s, log pi: a sum of three "
            "terms, each within a few eps of its size",
    tails=((np.array([-1e300, -1e10, -30.0, 30.0, 1e10, 1e300]), {"loc": 0.0, "scale": 1.0}),
           (np.array([-1e20, 1e20]), {"loc": 1.0, "scale": 1e-10})),
)
