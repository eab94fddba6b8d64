"""Test case: the Tweedie family (1 < p < 2) and the Tweedie deviance row."""

import numpy as np
from scipy import integrate
from scipy.special import gammaln

import nllax

import _refs_glm2
from . import NAN, EquivalenceCase, FamilyCase


def _sample(rng, n):
    eta = rng.normal(size=n) * 0.5
    phi = np.exp(rng.uniform(np.log(0.05), np.log(3.0), size=n))
    p = rng.uniform(1.05, 1.95, size=n)
    # The first 6 rows (used by the float32 vmap / mask / checked-mode tests, which
    # compare float32 sums to ~8 eps of the total) keep the terms of log W small; the
    # series cancels between log W and the exponent (terms of size ~j_max |z|, see
    # _magnitude) at a power near 1 or 2 and at a small dispersion, so those rows come
    # after them: p = 1.99 (terms ~2000), p = 1.3 with phi = 0.02, p = 1.01 (terms ~1e4).
    # The float32 accuracy test (n = 64) bounds them all by their magnitude.
    m = min(n, 6)
    phi[:m] = np.exp(rng.uniform(np.log(0.5), np.log(3.0), size=m))
    p[:m] = rng.uniform(1.2, 1.8, size=m)
    fixed = [(6, 1.99, 0.5), (7, 1.3, 0.02), (8, 1.01, 0.3)]
    for i, pp, ph in fixed[: max(0, n - 6)]:
        p[i], phi[i] = pp, ph
    y = _refs_glm2.tweedie_sample(rng, np.exp(eta), phi, p)
    if n > 2:
        y[2] = 0.0  # the point mass
    for i, _, _ in fixed[: max(0, n - 6)]:
        y[i] = max(y[i], 0.2 * np.exp(eta[i]))
    if n > 7:
        y[7] = np.exp(eta[7]) * 1.1
    return y, {"log_mean": eta, "dispersion": phi, "power": p}


def _reference(y, log_mean, dispersion, power):
    # the whole series in float64 (every term up to far beyond the maximum)
    return _refs_glm2.tweedie_logpdf(y, np.exp(log_mean), dispersion, power)


def _magnitude(y, log_mean, dispersion, power):
    # the terms added: log y, the exponent y mu^(1-p) / ((1-p) phi) and mu^(2-p) /
    # ((2-p) phi), and log W, whose largest terms j z, log j!, log Gamma(j a) at
    # j ~ j_max are each computed to a few eps of their size (the exponent's input eta
    # enters with |d lp / d eta| = |y - mu| mu^(1-p) / phi, times |eta|)
    p, phi = power, dispersion
    mu = np.exp(log_mean)
    a = (2 - p) / (p - 1)
    ys = np.where(y > 0, y, 1.0)
    jm = np.maximum(ys ** (2 - p) / (phi * (2 - p)), 1.0)
    z = a * (np.log(ys) - np.log(p - 1)) - np.log(phi) / (p - 1) - np.log(2 - p)
    series = np.where(y > 0, jm * np.abs(z) + gammaln(jm + 1) + np.abs(gammaln(jm * a))
                      + np.abs(np.log(ys)) + ys * mu ** (1 - p) / ((p - 1) * phi), 0.0)
    kappa = mu ** (2 - p) / ((2 - p) * phi)
    cond = np.abs(y - mu) * mu ** (1 - p) / phi * (1 + np.abs(log_mean))
    return np.abs(_reference(y, log_mean, dispersion, power)) + 1.0 + series + kappa + cond


def _integrate(density, params):
    """P(y = 0) plus the integral over y > 0. Near 0 the density behaves like y^(a - 1)
    (a = (2 - p)/(p - 1)): that part is integrated with QUADPACK's algebraic weight.
    The harness's ``density`` is eager (~25 ms a call through the series window, and
    QUADPACK needs ~2000 calls here): the same nllax.tweedie.log_prob is used jitted."""
    import jax
    import jax.numpy as jnp

    kw = {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}
    lp = jax.jit(lambda y: nllax.tweedie.log_prob(y, **kw))
    # eager and jitted programs round differently: a few eps of the terms of log W
    assert abs(density(0.7) - float(np.exp(lp(0.7)))) <= 1e-12 * density(0.7)

    def density(y):  # noqa: F811
        return float(np.exp(lp(jnp.float64(y))))

    p = float(params["power"])
    a = (2 - p) / (p - 1)
    c = float(np.exp(params["log_mean"]))
    if a < 1:  # density(0) is the point mass: the continuous part's limit is taken at 1e-300
        lo, e1 = integrate.quad(lambda y: density(max(y, 1e-300)) * max(y, 1e-300) ** (1 - a),
                                0, c, weight="alg", wvar=(a - 1, 0), epsabs=1e-14,
                                epsrel=1e-12, limit=500)
    else:  # bounded near 0
        lo, e1 = integrate.quad(lambda y: density(max(y, 1e-300)), 0, c, epsabs=1e-14,
                                epsrel=1e-12, limit=500)
    hi, e2 = integrate.quad(density, c, np.inf, epsabs=1e-14, epsrel=1e-12, limit=500)
    return density(0.0) + lo + hi, 10 * (e1 + e2) + 1e-11


CASE = FamilyCase(
    module=nllax.tweedie,
    sample=_sample,
    reference=_reference,
    invalid={"y": [-1.0, NAN], "mean": [0.0, -1.0, NAN], "dispersion": [0.0, -2.0, NAN],
             "power": [1.0, 2.0, 0.5, 2.5, NAN]},
    support=_integrate,
    normalisation=({"log_mean": 0.0, "dispersion": 1.0, "power": 1.5},
                   {"log_mean": 0.7, "dispersion": 0.1, "power": 1.05},
                   {"log_mean": -0.7, "dispersion": 2.0, "power": 1.9}),
    derivative_pieces=nllax.tweedie.TERMS["float64"],
    derivative_pieces_why="the derivatives in the dispersion and the power are moments of the "
                          "series' window (TERMS = 120 nodes in float64), the second ones "
                          "differences of moments: each node's piece rounds at the harness's "
                          "modelled size",
    rtol64=5e-10,
    rtol64_why="both sides add log W and the exponent, terms of size up to ~1e4 (p = 1.01) "
               "for a result down to |log p| ~ 0.05 in this sample, each to a few eps: "
               "1e4 x 4 eps / 0.05 = 2e-10 (test_glm2_families bounds the error by 64 eps "
               "of the terms' size instead)",
    magnitude=_magnitude,
    f32_ulps=16,
    f32_why="a few roundings of each term of log W (j z, log j!, log Gamma(j a) near "
            "j_max) and of the exponent, relative to their size (see _magnitude)",
)


def _eq_sample(rng, n):
    eta = rng.normal(size=n) * 0.5
    y = _refs_glm2.tweedie_sample(rng, np.exp(eta), 0.8, 1.4)
    return y, eta, {"dispersion": 0.8, "power": 1.4}


EQUIVALENCES = {"tweedie_deviance": EquivalenceCase(_eq_sample)}
