"""Test case: the Huber family (and the huber / smooth_l1 rows).

Reference: the closed form evaluated in float64 by independent code, the normaliser
Z(delta) = sqrt(2 pi) erf(delta / sqrt 2) + 2 exp(-delta^2 / 2) / delta with scipy's
``erf``; the CDF in closed form, its central piece through scipy's scaled ``erfcx``
(no underflow in the far tails). The harness checks the normalisation by quadrature.
"""

import numpy as np
from scipy import special

import nllax

from . import NAN, EquivalenceCase, FamilyCase


def ref_log_z(d):
    d = np.asarray(d, np.float64)
    return np.log(np.sqrt(2 * np.pi) * special.erf(d / np.sqrt(2))
                  + 2 * np.exp(-0.5 * d * d) / d)


def ref_rho(a, d):
    return np.where(a <= d, 0.5 * a * a, d * (a - 0.5 * d))


def _reference(y, loc, scale, delta):
    z = (y - loc) / scale
    return -ref_rho(np.abs(z), delta) - np.log(scale) - ref_log_z(delta)


def _log_lower(w, d):
    """log F(w) for w <= 0 (standardised), scalar float64."""
    lz = float(ref_log_z(d))
    if w <= -d:
        return d * w + 0.5 * d * d - np.log(d) - lz
    # F Z = exp(-d^2/2)/d + sqrt(2 pi) (Phi(w) - Phi(-d)), and with scipy's scaled
    # erfcx(x) = exp(x^2) erfc(x): Phi(w) - Phi(-d) = exp(-w^2/2) / 2 *
    # [erfcx(|w|/sqrt2) - exp((w^2 - d^2)/2) erfcx(d/sqrt2)] (no underflow)
    a, b = abs(w) / np.sqrt(2), d / np.sqrt(2)
    bracket = special.erfcx(a) - np.exp(0.5 * (w * w - d * d)) * special.erfcx(b)
    with np.errstate(divide="ignore"):  # a bracket of 0 (w = -d) is log 0: F is the tail's
        second = 0.5 * np.log(2 * np.pi) - 0.5 * w * w + np.log(0.5 * bracket)
    return np.logaddexp(-0.5 * d * d - np.log(d), second) - lz


def _ref_log_cdf_z(z, d):
    out = np.empty(np.shape(z))
    for i, (zi, di) in enumerate(zip(np.ravel(z), np.ravel(np.broadcast_to(d, np.shape(z))))):
        if zi <= 0:
            out.flat[i] = _log_lower(zi, di)
        else:
            out.flat[i] = np.log1p(-np.exp(_log_lower(-zi, di)))
    return out


def _bc(*xs):
    return np.broadcast_arrays(*(np.asarray(x, np.float64) for x in xs))


def ref_log_cdf(y, loc, scale, delta):
    y, loc, scale, delta = _bc(y, loc, scale, delta)
    return _ref_log_cdf_z((y - loc) / scale, delta)


def ref_log_sf(y, loc, scale, delta):
    y, loc, scale, delta = _bc(y, loc, scale, delta)
    return _ref_log_cdf_z((loc - y) / scale, delta)


def _sample(rng, n):
    loc = rng.normal(size=n)
    scale = np.exp(rng.normal(size=n))
    delta = np.exp(rng.uniform(np.log(0.2), np.log(5.0), size=n))
    y = loc + scale * rng.standard_t(4, size=n) * 1.5
    return y, {"loc": loc, "scale": scale, "delta": delta}


def _magnitude(y, loc, scale, delta):
    # the terms added: rho(z) (z rounded twice; rho's relative condition number in z is
    # <= 2), log s, log Z (each to a few roundings)
    z = (y - loc) / scale
    return ref_rho(np.abs(z), delta) + np.abs(np.log(scale)) + np.abs(ref_log_z(delta)) + 1.0


_Z = np.array([-700.0, -40.0, -8.0, -1.5, -0.3, 0.0, 0.4, 2.0, 9.0, 40.0, 700.0])

CASE = FamilyCase(
    module=nllax.huber,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=ref_log_cdf,
    ref_log_sf=ref_log_sf,
    invalid={"scale": [-1.0, 0.0, NAN], "delta": [-1.0, 0.0, NAN], "y": [NAN]},
    support="real",
    normalisation=({"loc": 0.3, "scale": 1.7, "delta": 1.0},
                   {"loc": -2.0, "scale": 0.05, "delta": 0.3},
                   {"loc": 0.5, "scale": 2.0, "delta": 4.0}),
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="rho(z) with z = r/s (2 roundings, condition <= 2), log s, log Z(delta) (a "
            "log1p of an erf/erfc combination: a few roundings), a sum of three terms",
    tails=((_Z, {"loc": 0.0, "scale": 1.0, "delta": 1.0}),
           (_Z, {"loc": 0.0, "scale": 1.0, "delta": 1e-3}),
           (_Z, {"loc": 0.0, "scale": 1.0, "delta": 25.0}),
           (_Z, {"loc": 1.0, "scale": 3.0, "delta": 6.0})),
)


def _eq_sample(rng, n):
    # outliers so that both pieces of the Huber function are used
    y = rng.normal(size=n) + 4.0 * (rng.uniform(size=n) < 0.3) * rng.normal(size=n)
    return y, rng.normal(size=n), {"scale": 0.7, "delta": 1.3}


EQUIVALENCES = {
    "huber": EquivalenceCase(_eq_sample),
    "smooth_l1": EquivalenceCase(_eq_sample),
}
