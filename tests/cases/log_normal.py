"""Test case: the log-normal family (and the MSLE row)."""

import numpy as np
from scipy import stats

import nllax

from . import NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    loc = rng.normal(size=n) * 3
    scale = np.exp(rng.normal(size=n))
    y = np.exp(loc + scale * rng.normal(size=n))
    y[:3] = [1e-30, 1.0, 1e30]
    return y, {"loc": loc, "scale": scale}


def _reference(y, loc, scale):
    return stats.lognorm.logpdf(y, s=scale, scale=np.exp(loc))


def _magnitude(y, loc, scale):
    # the terms added: z^2 / 2 with z = (log y - loc) / s (log y itself rounded: an error
    # |z| eps |log y| / s in z^2 / 2), log s, log y, log(2 pi) / 2
    ly = np.log(y)
    z = (ly - loc) / scale
    return 0.5 * z * z + np.abs(z) * (np.abs(ly) + np.abs(loc)) / scale + np.abs(ly) + \
        np.abs(np.log(scale)) + 1.0


CASE = FamilyCase(
    module=nllax.log_normal,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=lambda y, loc, scale: stats.lognorm.logcdf(y, s=scale, scale=np.exp(loc)),
    ref_log_sf=lambda y, loc, scale: stats.lognorm.logsf(y, s=scale, scale=np.exp(loc)),
    invalid={"y": [-1.0, 0.0, NAN], "scale": [-1.0, 0.0, NAN], "var": [-1.0, NAN]},
    support="positive",
    normalisation=({"loc": 0.3, "scale": 0.7}, {"loc": -2.0, "scale": 0.05}),
    magnitude=_magnitude,
    # scipy's lognorm evaluates (log(y) - loc) / s as log(y / exp(loc)) / s: the rounding
    # of y / exp(loc) is eps relative, i.e. eps absolute in log, so |z| eps / s in z^2/2
    rtol64=1e-11,
    rtol64_why="scipy's lognorm forms log(y / exp(loc)): eps absolute in a log of size "
               "up to 30, relative to the result",
    f32_ulps=16,
    f32_why="log y (eps |log y|), z^2 / 2 with z's roundings, log s, log y: a sum of four "
            "terms each within a few eps of its size (see _magnitude)",
    tails=((np.exp(np.array([-40.0, -8.0, 8.0, 40.0])), {"loc": 0.0, "scale": 1.0}),
           (np.array([1e-300, 1e300]), {"loc": 0.0, "scale": 10.0})),
)


def _eq_sample(rng, n):
    pred = rng.uniform(0.5, 5.0, size=n)
    y = np.expm1(np.log1p(pred) + 0.3 * rng.normal(size=n))
    return y, pred, {"scale": 0.7}


EQUIVALENCES = {"msle": EquivalenceCase(_eq_sample)}
