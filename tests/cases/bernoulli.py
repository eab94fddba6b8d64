"""Test case: the Bernoulli family (and the binary cross entropy row)."""

import numpy as np
from scipy import special

import nllax

from . import NAN, INF, EquivalenceCase, FamilyCase


def _sample(rng, n):
    y = (rng.uniform(size=n) < 0.4).astype(np.float64)
    y[:3] = [0.25, 0.5, 1.0]  # soft targets are valid
    return y, {"logits": rng.normal(size=n) * 2.5}


def _reference(y, logits):
    """y log sigmoid(z) + (1 - y) log sigmoid(-z), with 0 * (-inf) = 0."""
    with np.errstate(invalid="ignore"):
        a = np.where(y == 0, 0.0, y * special.log_expit(logits))
        b = np.where(y == 1, 0.0, (1 - y) * special.log_expit(-logits))
    return a + b


CASE = FamilyCase(
    module=nllax.bernoulli,
    sample=_sample,
    reference=_reference,
    invalid={"y": [-0.1, 1.1, NAN, INF], "probs": [-0.1, 1.1, NAN]},
    support="binary",
    normalisation=({"logits": 0.3}, {"logits": -30.0}, {"logits": 12.0}),
    magnitude=lambda y, logits: np.abs(_reference(y, logits)) + np.abs(y * logits) * (y % 1 != 0),
    f32_ulps=8,
    f32_why="log1p(exp(-|z|)) plus a term that is exact for 0/1 labels; soft targets "
            "add the rounding of y z",
)


def _eq_sample(rng, n):
    return (rng.uniform(size=n) < 0.5).astype(np.float64), rng.normal(size=n) * 3, {}


EQUIVALENCES = {"binary_cross_entropy": EquivalenceCase(_eq_sample)}
