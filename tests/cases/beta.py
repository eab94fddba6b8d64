"""Test case: the beta family (mean-precision parametrisation of beta regression)."""

import numpy as np
from scipy import special, stats

import nllax

from . import INF, NAN, FamilyCase


def _sample(rng, n):
    mean = special.expit(rng.normal(size=n))
    precision = np.exp(rng.normal(size=n) + 2.0)
    y = rng.beta(mean * precision, (1 - mean) * precision)
    return np.clip(y, 1e-6, 1 - 1e-6), {"mean": mean, "precision": precision}


def _ab(mean, precision):
    return mean * precision, (1.0 - mean) * precision


def _reference(y, mean, precision):
    a, b = _ab(mean, precision)
    # scipy.special.betaln is accurate for large arguments (asymptotic form), so only the
    # sum of three terms of size <= phi |log y| rounds.
    return (a - 1) * np.log(y) + (b - 1) * np.log1p(-y) - special.betaln(a, b)


def _magnitude(y, mean, precision):
    # the terms added (phi * KL, the logs, stirlerr) are bounded by |log p| plus the
    # logs; a = mean * precision and b are rounded inside, and log p moves by
    # a (log y - psi(a) + psi(a + b)) per relative change of a (likewise b).
    a, b = _ab(mean, precision)
    dig = special.digamma
    return (np.abs(_reference(y, mean, precision)) + np.abs(np.log(y)) + np.abs(np.log1p(-y))
            + a * np.abs(np.log(y) - dig(a) + dig(a + b))
            + b * np.abs(np.log1p(-y) - dig(b) + dig(a + b))
            + 0.5 * np.abs(np.log(precision)) + 1.0)


CASE = FamilyCase(
    module=nllax.beta,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=lambda y, mean, precision: stats.beta.logcdf(y, *_ab(mean, precision)),
    ref_log_sf=lambda y, mean, precision: stats.beta.logsf(y, *_ab(mean, precision)),
    invalid={"y": [0.0, 1.0, -0.5, 1.5, NAN, INF], "mean": [0.0, 1.0, 1.5, NAN],
             "precision": [0.0, -1.0, NAN]},
    support="unit",
    normalisation=({"mean": 0.3, "precision": 5.0}, {"mean": 0.8, "precision": 60.0},
                   {"mean": 0.5, "precision": 1.0}),
    rtol64=1e-11,
    rtol64_why="the reference sums (a-1) log y, (b-1) log(1-y) and betaln(a, b), terms up "
               "to phi |log y| (~1e3 at most here) for results of size >= ~1e-2: "
               "1e5 eps relative",
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="a sum of ~8 terms no larger than the magnitude (no cancellation of large "
            "terms: phi * bd0 >= 0), plus the rounding of a = mean * precision and "
            "b = (1 - mean) * precision, weighted by d log p / d log a (and b)",
    tails=((np.array([1e-8, 1e-3, 0.5, 0.999, 1 - 1e-8]), {"mean": 0.3, "precision": 5.0}),),
)
