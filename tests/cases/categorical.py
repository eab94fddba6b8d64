"""Test case: the Categorical family (and the cross entropy row)."""

import numpy as np
from scipy import special

import nllax

from . import NAN, INF, EquivalenceCase, FamilyCase

K = 4


def _sample(rng, n):
    return rng.integers(0, K, size=n), {"logits": rng.normal(size=(n, K)) * 3}


def _reference(labels, logits):
    lsm = special.log_softmax(np.asarray(logits, np.float64), axis=-1)
    return np.take_along_axis(lsm, np.asarray(labels)[..., None], axis=-1)[..., 0]


def _magnitude(labels, logits):
    z = np.asarray(logits, np.float64)
    return np.abs(_reference(labels, z)) + np.max(np.abs(z), axis=-1)


CASE = FamilyCase(
    module=nllax.categorical,
    sample=_sample,
    reference=_reference,
    invalid={
        "labels": [-1, K, 100],
        "logits": [np.array([0.0, INF, 0.0, 1.0]), np.array([0.0, NAN, 0.0, 1.0])],
        "probs": [np.array([0.5, 0.6, -0.1, 0.0]), np.array([0.5, 0.6, 0.1, 0.0]),
                  np.array([NAN, 0.5, 0.25, 0.25])],
    },
    support="labels",
    normalisation=({"logits": np.array([0.1, -3.0, 2.0, 0.0])},),
    magnitude=_magnitude,
    # the shifted label logit z_y - m (exact or one rounding of the largest |z|), and
    # log1p of a sum of K terms each within 2 eps
    f32_ulps=16,
    f32_why="z_y - max (one rounding of max|z|) and log1p of a sum of K = 4 exponentials",
)


def _eq_sample(rng, n):
    return rng.integers(0, 3, size=n), rng.normal(size=(n, 3)), {}


EQUIVALENCES = {"cross_entropy": EquivalenceCase(_eq_sample)}
