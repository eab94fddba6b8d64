"""Test case: the Gaussian mixture (K = 3), against the mixture by hand in float64 from
scipy.stats.norm: logsumexp_k(log_softmax(logits)_k + norm.logpdf(y, loc_k, scale_k))."""

import numpy as np
from scipy import special, stats

import nllax

from . import INF, NAN, FamilyCase

K = 3


def _sample(rng, n):
    logits = rng.normal(size=(n, K)) * 1.5
    loc = rng.normal(size=(n, K)) * 2
    # scale >= 0.5: the density stays below 0.8, so log p is away from 0 (the reference
    # is compared relatively)
    scale = rng.uniform(0.5, 3.0, size=(n, K))
    w = special.softmax(logits, axis=-1)
    k = np.array([rng.choice(K, p=wi) for wi in w])
    y = loc[np.arange(n), k] + scale[np.arange(n), k] * rng.normal(size=n)
    return y, {"logits": logits, "loc": loc, "scale": scale}


def _terms(fn, y, logits, loc, scale):
    y = np.asarray(y, np.float64)[..., None]
    return special.log_softmax(np.asarray(logits, np.float64), axis=-1) + fn(y, loc, scale)


def _mix(fn):
    def ref(y, logits, loc, scale):
        return special.logsumexp(_terms(fn, y, logits, loc, scale), axis=-1)
    return ref


def _log_cdf_sf(y, logits, loc, scale):
    """(log F, log(1 - F)): each as the logsumexp of the weighted components, except that
    the one above log(1/2) is taken as log1p(-exp(other)) (the direct sum near 1 keeps
    only rounding: 5.6e-17 instead of -1e-300 at y = 80)."""
    lc = special.logsumexp(_terms(stats.norm.logcdf, y, logits, loc, scale), axis=-1)
    ls = special.logsumexp(_terms(stats.norm.logsf, y, logits, loc, scale), axis=-1)
    half = np.log(0.5)
    lc2 = np.where(ls < half, np.log1p(-np.exp(np.minimum(ls, half))), lc)
    ls2 = np.where(lc < half, np.log1p(-np.exp(np.minimum(lc, half))), ls)
    return lc2, ls2


def _magnitude(y, logits, loc, scale):
    # logsumexp's error is the responsibility-weighted error of its terms; each term
    # log_softmax_k - z_k^2 / 2 - log s_k - c has roundings of |logits_k| + |lse(logits)|
    # (log_softmax), |z_k| (|y| + |loc_k|) / s_k (the residual, squared) and z^2/2, log s
    t = _terms(stats.norm.logpdf, y, logits, loc, scale)
    resp = special.softmax(t, axis=-1)
    yy = np.asarray(y, np.float64)[..., None]
    z = (yy - loc) / scale
    size = (np.abs(logits) + np.abs(special.logsumexp(logits, axis=-1))[..., None]
            + np.abs(z) * (np.abs(yy) + np.abs(loc)) / scale + 0.5 * z**2
            + np.abs(np.log(scale)) + 1.0)
    return np.sum(resp * size, axis=-1) + np.log(K) + 1.0


_TAIL_PARAMS = {"logits": np.array([0.3, -1.0, 1.2]), "loc": np.array([-2.0, 0.5, 3.0]),
                "scale": np.array([0.7, 1.5, 2.0])}

CASE = FamilyCase(
    module=nllax.gaussian_mixture,
    sample=_sample,
    reference=_mix(stats.norm.logpdf),
    ref_log_cdf=lambda *a, **k: _log_cdf_sf(*a, **k)[0],
    ref_log_sf=lambda *a, **k: _log_cdf_sf(*a, **k)[1],
    invalid={
        "scale": [np.array([1.0, -1.0, 2.0]), np.array([1.0, 0.0, 2.0]),
                  np.array([1.0, NAN, 2.0])],
        "logits": [np.array([0.0, NAN, 1.0]), np.array([0.0, INF, 1.0]),
                   np.array([-INF, -INF, -INF])],
        "y": [NAN],
    },
    support="real",
    normalisation=(_TAIL_PARAMS,
                   {"logits": np.array([0.0, -30.0, 5.0]), "loc": np.array([0.0, 10.0, -40.0]),
                    "scale": np.array([1.0, 0.01, 20.0])}),
    # the terms are a few roundings each in both codes; logsumexp adds log1p of the
    # others: agreement to a few eps relative, 1e-12 leaves a large margin
    rtol64=1e-12,
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="each component term within a few eps of its size (the magnitude is their "
            "responsibility-weighted size), plus logsumexp's log of a sum of K terms",
    # the harness broadcasts each tail point's parameters to the data's shape: (K,) rows
    # shared by K = 3 points
    tails=((np.array([-80.0, 1.0, 80.0]), _TAIL_PARAMS),
           (np.array([-12.0, -6.0, 12.0]), _TAIL_PARAMS)),
)
