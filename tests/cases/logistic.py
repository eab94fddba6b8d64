"""Test case: the logistic family (the demonstration of docs/adding-a-family.md)."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, FamilyCase


def _sample(rng, n):
    return rng.logistic(size=n) * 2, {"loc": rng.normal(size=n),
                                      "scale": np.exp(rng.normal(size=n))}


CASE = FamilyCase(
    module=nllax.logistic,
    sample=_sample,
    reference=lambda y, loc, scale: stats.logistic.logpdf(y, loc, scale),
    ref_log_cdf=lambda y, loc, scale: stats.logistic.logcdf(y, loc, scale),
    ref_log_sf=lambda y, loc, scale: stats.logistic.logsf(y, loc, scale),
    invalid={"scale": [-1.0, 0.0, NAN], "y": [NAN]},
    normalisation=({"loc": 0.3, "scale": 1.7}, {"loc": -2.0, "scale": 0.05}),
    magnitude=lambda y, loc, scale: np.abs((y - loc) / scale) + np.abs(np.log(scale)) + 1.0,
    f32_ulps=16,
    f32_why="|z| (2 roundings), log1p(exp(-|z|)) <= log 2, log s: a sum of three terms",
    tails=((np.array([-700.0, -30.0, 30.0, 700.0]), {"loc": 0.0, "scale": 1.0}),),
)
