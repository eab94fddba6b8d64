"""Beyond the registry harness: the gamma density at tiny dispersions (large shapes,
where the textbook form cancels), the Tweedie series window at its regime boundaries and
at powers near 1 and 2, and the Tweedie moments (an independent check of the series)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import _refs_glm2 as R
import nllax

EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def test_gamma_tiny_dispersion_float64_and_float32(x64):
    phi = np.array([1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-8])
    eta = np.array([0.3, -1.0, 2.0, 0.0, 5.0, -3.0])
    # y within a few standard deviations (sqrt(phi) relative) of the mean
    y = np.exp(eta) * (1.0 + np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0]) * np.sqrt(phi))
    want = R.gamma_logpdf_log_mean(y, eta, phi)
    f = jax.jit(lambda y, e, p: nllax.gamma.log_prob(y, log_mean=e, dispersion=p))
    got = np.asarray(f(y, eta, phi))
    # terms of the saddle-point form are O(|log phi| + |log y|), plus the conditioning
    # of k (x - 1 - log x) in x = y e^-eta: |d lp / d log x| (1 + |eta|) = k |x - 1| (1 + |eta|)
    x = y * np.exp(-eta)
    size = 1 + np.abs(want) + np.abs(np.log(phi)) + np.abs(np.log(y)) + np.abs(x - 1) / phi * (
        1 + np.abs(eta))
    assert np.all(np.abs(got - want) <= 32 * EPS64 * size), (got - want) / (EPS64 * size)
    # float32: the textbook form would keep no digit here (terms of size k log k ~ 1e9)
    g32 = np.asarray(f(*(jnp.asarray(v, jnp.float32) for v in (y, eta, phi))))
    y32, e32, p32 = (np.asarray(np.float32(v), np.float64) for v in (y, eta, phi))
    want32 = R.gamma_logpdf_log_mean(y32, e32, p32)
    x32 = y32 * np.exp(-e32)
    size32 = 1 + np.abs(want32) + np.abs(np.log(p32)) + np.abs(np.log(y32)) + np.abs(
        x32 - 1) / p32 * (1 + np.abs(e32))
    assert np.all(np.abs(g32 - want32) <= 32 * EPS32 * size32), (g32 - want32) / (EPS32 * size32)


def _tweedie_points():
    # (y, mu, phi, p): both sides of the integer/trapezoid switch (12 sigma = 63, sigma^2 ~
    # (p - 1) j_max), powers near 1 and 2, tiny y, large y
    pts = []
    for p in (1.5, 1.9):
        for sig in (5.0, 5.5):
            jm = sig**2 / (p - 1)
            pts.append((1.0, 1.0, 1.0 / ((2 - p) * jm), p))  # y = mu = 1: j_max = jm
    pts += [(0.7, 1.0, 0.5, 1.001), (3.0, 2.0, 0.1, 1.001), (0.5, 1.0, 1.0, 1.999),
            (2.0, 1.5, 0.01, 1.999), (1e-8, 1.0, 1.0, 1.3), (1e-5, 0.1, 2.0, 1.95),
            (50.0, 10.0, 0.5, 1.2), (1.0, 1.0, 1e-3, 1.5), (1.1, 1.0, 1e-4, 1.5)]
    return [tuple(map(float, t)) for t in pts]


def _tweedie_size(y, mu, phi, p):
    """The size of the terms both the series and the reference add (see tests/cases)."""
    from scipy.special import gammaln

    a = (2 - p) / (p - 1)
    jm = max(y ** (2 - p) / (phi * (2 - p)), 1.0)
    z = a * (np.log(y) - np.log(p - 1)) - np.log(phi) / (p - 1) - np.log(2 - p)
    return (1 + jm * abs(z) + gammaln(jm + 1) + abs(gammaln(jm * a)) + abs(np.log(y))
            + y * mu ** (1 - p) / ((p - 1) * phi) + mu ** (2 - p) / ((2 - p) * phi))


def test_tweedie_window_regimes_powers_near_1_and_2(x64):
    pts = _tweedie_points()
    y, mu, phi, p = (np.array(c) for c in zip(*pts))
    got = np.asarray(jax.jit(lambda *a: nllax.tweedie.log_prob(
        a[0], mean=a[1], dispersion=a[2], power=a[3]))(y, mu, phi, p))
    want = R.tweedie_logpdf(y, mu, phi, p)
    size = np.array([_tweedie_size(*t) for t in pts])
    # both add terms of size `size`, each to a few eps; 64 eps of it covers both
    err = np.abs(got - want)
    assert np.all(err <= 64 * EPS64 * size), list(zip(pts, err / (EPS64 * size)))


@pytest.mark.parametrize("mu,phi,p", [(1.0, 1.0, 1.5), (2.0, 0.3, 1.1), (0.5, 2.0, 1.8)])
def test_tweedie_mean_and_variance(x64, mu, phi, p):
    # E[y] = mu and Var[y] = phi mu^p, by quadrature of the density (the point mass at 0
    # contributes nothing to either raw moment)
    f = jax.jit(lambda y: jnp.exp(nllax.tweedie.log_prob(y, mean=mu, dispersion=phi,
                                                          power=p)))

    def moment(k):
        g = lambda y: float(f(jnp.float64(max(y, 1e-300)))) * y**k  # noqa: E731
        a, ea = integrate.quad(g, 0, mu, limit=400, epsabs=1e-13, epsrel=1e-11)
        b, eb = integrate.quad(g, mu, np.inf, limit=400, epsabs=1e-13, epsrel=1e-11)
        return a + b, ea + eb

    m1, e1 = moment(1)
    m2, e2 = moment(2)
    np.testing.assert_allclose(m1, mu, rtol=1e-9, atol=10 * e1)
    np.testing.assert_allclose(m2 - m1**2, phi * mu**p, rtol=1e-8, atol=10 * (e2 + 2 * m1 * e1))


def test_tweedie_power_outside_is_nan_and_checked():
    f = lambda p: nllax.tweedie.nll(jnp.array([0.0, 1.0]), log_mean=0.0,  # noqa: E731
                                    dispersion=1.0, power=p)
    assert np.isnan(float(f(2.0))) and np.isnan(float(f(1.0)))
    with pytest.raises(Exception, match=r"nllax.tweedie: `power` must lie in \(1, 2\)"):
        nllax.checked(jax.jit(f))(jnp.float32(2.5))
