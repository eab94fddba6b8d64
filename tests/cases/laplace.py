"""Test case: the Laplace family (and the SAE / MAE rows)."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    y = rng.laplace(size=n) * 2
    return y, {"loc": rng.normal(size=n), "scale": np.exp(rng.normal(size=n))}


CASE = FamilyCase(
    module=nllax.laplace,
    sample=_sample,
    reference=lambda y, loc, scale: stats.laplace.logpdf(y, loc, scale),
    ref_log_cdf=lambda y, loc, scale: stats.laplace.logcdf(y, loc, scale),
    ref_log_sf=lambda y, loc, scale: stats.laplace.logsf(y, loc, scale),
    invalid={"scale": [-1.0, 0.0, NAN], "var": [-1.0], "y": [NAN]},
    support="real",
    normalisation=({"loc": 0.3, "scale": 1.7}, {"loc": -2.0, "scale": 0.05}),
    magnitude=lambda y, loc, scale: np.abs((y - loc) / scale) + np.abs(np.log(2 * scale)) + 1.0,
    f32_ulps=16,
    f32_why="|r| / beta (2 roundings), log(2 beta), a sum of two terms",
    tails=((np.array([-300.0, -8.0, 8.0, 300.0]), {"loc": 0.0, "scale": 1.0}),),
)


def _eq_sample(rng, n):
    return rng.laplace(size=n), rng.normal(size=n), {"scale": 0.8}


EQUIVALENCES = {
    "sae": EquivalenceCase(_eq_sample, smooth=False),
    "mae": EquivalenceCase(_eq_sample, smooth=False),
}
