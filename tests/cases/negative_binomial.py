"""Test case: the negative binomial family, NB2 (NB1 in tests/test_glm_families_glm1.py:
one case per family here, and ``variance`` is a static option)."""

import numpy as np
from scipy import special, stats

import nllax

import _refs
from . import INF, NAN, FamilyCase


def _sample(rng, n, variance="nb2"):
    eta = rng.normal(size=n) * 1.2 + 0.5
    alpha = np.exp(rng.normal(size=n) * 0.8 - 0.5)
    mu = np.exp(eta)
    r = 1.0 / alpha if variance == "nb2" else mu / alpha
    k = stats.nbinom.rvs(r, r / (r + mu), random_state=rng).astype(np.float64)
    k[0] = 0.0
    if n >= 12:
        # Poisson limit (alpha = 1e-8) and a large count: only in the reference (n = 12)
        # and float32 (n = 64) tests, not in the finite-difference gradient tests (n = 6,
        # and n = 8 in tests/test_wrappers.py): the derivative in alpha loses
        # log10(1/alpha) digits by design (module docstring)
        alpha[6], eta[6], k[6] = 1e-8, np.log(3.5), 5.0
        alpha[7], eta[7], k[7] = 0.02, np.log(123000.0), 123456.0
    return k, {"log_mean": eta, "dispersion": alpha}


def _reference(counts, log_mean, dispersion, variance="nb2"):
    # 50-digit decimal (scipy's float64 form loses ~log10(r) digits at size r)
    return _refs.nbinom_logpmf(counts, log_mean, dispersion, variance)


def _bd0_size(k, lam):
    """|k - lam| near the mode (bd0's series), k + lam + k |log(k / lam)| elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.abs(k - lam) / np.maximum(k + lam, 1e-300)
        direct = k + lam + np.where(k > 0, k * np.abs(np.log(k / lam)), 0.0)
    return np.where(v < 0.1, np.abs(k - lam), direct)


def magnitude(counts, log_mean, dispersion, variance="nb2"):
    # Loader's terms are each no larger than the result; beyond their roundings float32
    # adds the conditioning of the inputs and of the derived r = size, x = mu / r:
    # |d/d eta| |eta| (the rounding of eta), |d/dr| r (of r), |k - n q| (of x), the size of
    # the two bd0 terms, and ~30 eps absolute of stirlerr's lgamma form for r < 16
    k, mu, a = counts, np.exp(log_mean), dispersion
    r = 1.0 / a if variance == "nb2" else mu / a
    n = k + r
    p, q = r / (r + mu), mu / (r + mu)
    d_eta = np.abs(k - mu) * (p if variance == "nb2" else 1.0)
    d_r = np.abs(special.digamma(k + r) - special.digamma(r) + np.log(p)) * r
    return (np.abs(_reference(k, log_mean, a, variance)) + 1.0 + d_eta * (np.abs(log_mean) + 2)
            + d_r * (2 + np.abs(np.log(a))) + _bd0_size(r, n * p) + _bd0_size(k, n * q)
            + np.where(r < 16, 30.0, 0.0))


CASE = FamilyCase(
    module=nllax.negative_binomial,
    sample=_sample,
    reference=_reference,
    invalid={"counts": [-1.0, 0.5, NAN, INF], "mean": [-1.0, 0.0, NAN],
             "dispersion": [-1.0, 0.0, NAN]},
    support=("counts", 400),
    normalisation=({"log_mean": np.log(3.0), "dispersion": 0.5},
                   {"log_mean": np.log(40.0), "dispersion": 0.05}),
    magnitude=magnitude,
    rtol64=1e-13,
    rtol64_why="Loader's form: a few roundings of terms no larger than the result, plus "
               "the conditioning of eta, r and x (tens of eps relative here)",
    f32_ulps=16,
    f32_why="Loader's saddle-point form: a few roundings of terms no larger than the "
            "result, plus the conditioning of eta, of r = 1/alpha and of x = alpha mu",
)
