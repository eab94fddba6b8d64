"""Test case: the ordinal family (logit link; tests/test_ordinal.py runs the probit link
through the same harness tests, and the fits against statsmodels' OrderedModel)."""

from __future__ import annotations

import decimal

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import nllax

from . import INF, NAN, FamilyCase

K = 4
_CTX = decimal.Context(prec=60)


def _sample(rng, n):
    steps = np.exp(0.5 * rng.normal(size=(n, K - 2)))
    c = np.cumsum(np.concatenate([rng.normal(-1.5, 1.0, size=(n, 1)), steps], axis=1), axis=1)
    eta = rng.normal(size=n) * 2
    labels = rng.integers(0, K, size=n)
    # the tails and a narrow interval, away from observation 1 (the invalid-value slot):
    # a middle label far in the lower and in the upper tail, end labels deep in the tails,
    # a nearly certain middle label, and an interval of width 1e-2
    labels[[0, 2, 3]] = [1, 2, 0]
    eta[[0, 2, 3]] = [25.0, -25.0, 30.0]
    if n >= 6:
        labels[[4, 5]] = [1, 2]
        eta[4] = c[4, 1] - 12.0
        c[4] = [c[4, 1] - 27.0, c[4, 1], c[4, 1] + 15.0]
        c[5, 2] = c[5, 1] + 1e-2  # (FD truncation of the gradient test: h^2 / d^3 small)
    return labels, {"location": eta, "cutpoints": c}


def _bounds(labels, location, cutpoints):
    """(a, b) = (c_{y-1} - eta, c_y - eta) in float64, +-inf at the ends."""
    labels = np.asarray(labels)
    c = np.asarray(cutpoints, np.float64)
    c = np.broadcast_to(c, labels.shape + c.shape[-1:])
    ext = np.concatenate([np.full(labels.shape + (1,), -np.inf), c,
                          np.full(labels.shape + (1,), np.inf)], axis=-1)
    lo = np.take_along_axis(ext, labels[..., None], -1)[..., 0]
    hi = np.take_along_axis(ext, labels[..., None] + 1, -1)[..., 0]
    eta = np.broadcast_to(np.asarray(location, np.float64), labels.shape)
    return lo, hi, eta


def _sigmoid_dec(x: decimal.Decimal) -> decimal.Decimal:
    return _CTX.divide(1, 1 + _CTX.exp(-x))


def logit_reference(labels, location, cutpoints):
    """log(sigmoid(c_y - eta) - sigmoid(c_{y-1} - eta)) in 60-digit decimal, from the exact
    binary values of the inputs: no cancellation can cost a digit."""
    lo, hi, eta = _bounds(labels, location, cutpoints)
    out = np.empty(lo.shape)
    with decimal.localcontext(_CTX):
        for i in np.ndindex(lo.shape):
            e = decimal.Decimal(float(eta[i]))
            up = decimal.Decimal(1) if np.isinf(hi[i]) else _sigmoid_dec(
                decimal.Decimal(float(hi[i])) - e)
            down = decimal.Decimal(0) if np.isinf(lo[i]) else _sigmoid_dec(
                decimal.Decimal(float(lo[i])) - e)
            out[i] = float(_CTX.ln(up - down))
    return out


def _magnitude(labels, location, cutpoints):
    # The condition bound: a = c_lo - eta and b = c_hi - eta are each one rounding (eps |a|,
    # eps |b|), moving log p by eps |x| f(x) / p; d = c_hi - c_lo one rounding, moving
    # log sinh(d/2) by at most eps (1 + d/2); and the sum of log sinh, log cosh(a/2) and
    # log cosh(b/2), terms no larger than (|a| + |b| + d)/2 + 1.
    lo, hi, eta = _bounds(labels, location, cutpoints)
    lp = logit_reference(labels, location, cutpoints)
    p = np.exp(lp)
    a, b = lo - eta, hi - eta
    fin_a, fin_b = np.isfinite(a), np.isfinite(b)
    ta = np.where(fin_a, np.abs(a) * stats.logistic.pdf(np.where(fin_a, a, 0.0)) / p, 0.0)
    tb = np.where(fin_b, np.abs(b) * stats.logistic.pdf(np.where(fin_b, b, 0.0)) / p, 0.0)
    size = np.where(fin_a, np.abs(a), 0.0) + np.where(fin_b, np.abs(b), 0.0)
    return np.abs(lp) + ta + tb + size + 1.0


def _sum_labels(density, params):
    """The K probabilities of one (location, cut-points) point sum to 1."""
    with jax.enable_x64(True):
        lp = nllax.ordinal.log_prob(jnp.arange(K), jnp.float64(params["location"]),
                                    cutpoints=jnp.asarray(params["cutpoints"], jnp.float64))
        total = float(np.sum(np.exp(np.asarray(lp))))
    # each log-probability within a few eps relative, exp and a sum of K terms
    return total, 16 * K * float(np.finfo(np.float64).eps)


CASE = FamilyCase(
    module=nllax.ordinal,
    sample=_sample,
    reference=logit_reference,
    invalid={
        "labels": [-1, K],
        "cutpoints": [np.array([0.5, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]),
                      np.array([NAN, 0.0, 1.0]), np.array([-INF, 0.0, 1.0])],
    },
    support=_sum_labels,
    normalisation=({"location": 0.3, "cutpoints": np.array([-1.0, 0.2, 2.0])},
                   {"location": -25.0, "cutpoints": np.array([-1.0, 0.2, 2.0])}),
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="one rounding each in a, b and d (the condition bound of the magnitude) and a "
            "sum of four terms, each within 2-3 eps",
)
