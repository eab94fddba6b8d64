"""Test case: the binomial family (and the binomial deviance row)."""

import numpy as np
from scipy import special

import nllax

import _refs
from . import INF, NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    trials = rng.integers(1, 41, size=n).astype(np.float64)
    z = rng.normal(size=n) * 2
    k = rng.binomial(trials.astype(np.int64), special.expit(z)).astype(np.float64)
    # the ends k = 0 and k = n (exact forms); observation 1 (the invalid-value slot) is
    # inside. Many trials (Loader's form, where the textbook one cancels) at observations
    # 6 and 7 when n >= 12: in the reference (n = 12) and float32 (n = 64) tests, not in
    # the gradient tests (n = 6 here, n = 8 in tests/test_wrappers.py), whose central
    # differences cannot resolve a curvature n p q = 2.4e8 (tests/test_glm_families_glm1.py
    # checks the derivative k - n p there)
    m = min(n, 3)
    trials[:m] = [25.0, 7.0, 12.0][:m]
    k[:m] = [0.0, 3.0, 12.0][:m]
    if n >= 12:
        trials[6:8] = [1e9, 123456.0]
        z[6] = special.logit(0.4)  # n p within 1e-7 of k = 4e8: no conditioning in z
        k[6] = 4e8
        k[7] = float(rng.binomial(123456, special.expit(z[7])))
    return k, {"trials": trials, "logits": z}


def _reference(successes, trials, logits):
    # 50-digit decimal: scipy's float64 binom.logpmf loses ~9 digits at n = 1e9
    return _refs.binomial_logpmf(successes, trials, logits)


def _bd0_size(k, lam):
    """The size of what bd0(k, lam) adds: |k - lam| near the mode (its series), the terms
    k |log(k / lam)|, lam and k away from it (the direct form)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.abs(k - lam) / np.maximum(k + lam, 1e-300)
        direct = k + lam + np.where(k > 0, k * np.abs(np.log(k / lam)), 0.0)
    return np.where(v < 0.1, np.abs(k - lam), direct)


def _magnitude(successes, trials, logits):
    # Loader's terms are each no larger than the result; what float32 adds beyond their
    # roundings is the conditioning of the rates n p, n q (one rounding each, moving bd0 by
    # |k - n p| eps, times |z| for the rounding of z itself) and of n - k (rounded once
    # when n > 2^24, moving the result by (n - k) |log((n - k) / (n q))| eps)
    p, q = special.expit(logits), special.expit(-logits)
    k, n = successes, trials
    return (np.abs(_reference(k, n, logits)) + 1.0
            + np.abs(k - n * p) * (np.abs(logits) + 1.0)
            + _bd0_size(k, n * p) + _bd0_size(n - k, n * q))


def _normalise(density, params):
    # sum over k = 0..n (beyond n the relation k <= n is violated: NaN, not 0)
    n = int(params["trials"])
    total = sum(density(float(k)) for k in range(n + 1))
    return total, 4 * (n + 1) * np.finfo(np.float64).eps


CASE = FamilyCase(
    module=nllax.binomial,
    sample=_sample,
    reference=_reference,
    invalid={"successes": [-1.0, 0.5, NAN, INF, 8.0],  # 8 > 7 trials, "trials": [-1.0, 2.5, NAN],
             "probs": [-0.1, 1.1, NAN]},
    support=_normalise,
    normalisation=({"trials": 20.0, "logits": 0.3}, {"trials": 9.0, "logits": -25.0}),
    magnitude=_magnitude,
    rtol64=1e-13,
    rtol64_why="Loader's form: a few roundings of terms no larger than the result, plus "
               "the conditioning |k - n p| |z| eps of the rates (<= ~50 eps relative here)",
    grad_exclude=("trials",),
    f32_ulps=16,
    f32_why="Loader's saddle-point form: a few roundings of terms no larger than the "
            "result, plus the conditioning of the rates n p, n q and of n - k",
)


def _eq_sample(rng, n):
    # trials per observation (data of the row: passed to the NLL, the loss and b)
    trials = rng.integers(1, 30, size=n).astype(np.float64)
    z = rng.normal(size=n)
    k = rng.binomial(trials.astype(np.int64), special.expit(z)).astype(np.float64)
    return k, z, {"trials": trials}


EQUIVALENCES = {"binomial_deviance": EquivalenceCase(_eq_sample)}
