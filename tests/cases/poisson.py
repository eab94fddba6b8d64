"""Test case: the Poisson family (and the Poisson loss row)."""

import numpy as np

import nllax

import _refs
from . import INF, NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    eta = rng.normal(size=n) * 2
    k = rng.poisson(np.exp(eta)).astype(np.float64)
    k[:3] = [0.0, 1e3, 123456.0]
    eta[:3] = [-0.5, np.log(1e3 * 1.01), np.log(123000.0)]
    return k, {"log_rate": eta}


def _reference(counts, log_rate):
    # 50-digit decimal: scipy's float64 form loses digits at large counts.
    return _refs.poisson_logpmf(counts, np.exp(log_rate))


def _magnitude(counts, log_rate):
    # Loader's form adds stirlerr, log(2 pi k)/2 and bd0 >= 0: no cancellation of large
    # terms; the input eta itself enters as k * eta (the derivative wrt eta is k - lambda).
    return np.abs(_reference(counts, log_rate)) + np.abs(counts - np.exp(log_rate)) * np.abs(
        log_rate) + 1.0


CASE = FamilyCase(
    module=nllax.poisson,
    sample=_sample,
    reference=_reference,
    invalid={"counts": [-1.0, 0.5, NAN, INF], "rate": [-1.0, NAN]},
    support=("counts", 400),
    normalisation=({"log_rate": np.log(0.3)}, {"log_rate": np.log(40.0)}),
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="Loader's saddle-point form: a few roundings of terms no larger than the "
            "result, plus the conditioning in eta (|k - lambda| |eta| eps)",
)


def _eq_sample(rng, n):
    eta = rng.normal(size=n)
    return rng.poisson(np.exp(eta)).astype(np.float64), eta, {}


EQUIVALENCES = {"poisson": EquivalenceCase(_eq_sample),
                "poisson_deviance": EquivalenceCase(_eq_sample)}
