"""What the harness does not cover for gaussian_natural, multivariate_normal and
gaussian_mixture: convexity in the natural parameters, the multivariate paths and their
float32 conditioning, the mixture's degenerate cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import nllax

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------
# gaussian_natural


def _natural_points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=n) * 5
    sigma = np.exp(rng.normal(size=n))
    y = mu + 3 * sigma * rng.normal(size=n)
    return y, mu / sigma**2, -0.5 / sigma**2, mu, sigma


def test_natural_nll_is_convex_and_its_hessian_is_cov_of_sufficient_statistics(x64):
    y, e1, e2, mu, sigma = _natural_points()

    def nll1(eta, yi):
        return nllax.gaussian_natural.nll(yi, eta[0], eta[1])

    hess = jax.jit(jax.vmap(jax.hessian(nll1)))(jnp.stack([e1, e2], -1), jnp.asarray(y))
    hess = np.asarray(hess)
    norm = np.linalg.norm(hess, axis=(1, 2))
    eig = np.linalg.eigvalsh(hess)
    # a computed symmetric 2x2 Hessian is within a few eps * ||H|| of the exact one
    # (a handful of roundings per entry), and eigenvalues move by at most that (Weyl)
    tol = 64 * EPS64 * norm
    assert np.all(eig >= -tol[:, None]), (eig, tol)
    # the exact Hessian: Cov(y, y^2) under N(mu, sigma^2), whatever y
    v = sigma**2
    want = np.stack([np.stack([v, 2 * mu * v], -1),
                     np.stack([2 * mu * v, 2 * v**2 + 4 * mu**2 * v], -1)], -2)
    # the entries are derivatives of z = (t y - eta1)/sqrt(t): relative rounding errors of
    # a few eps times the cancellation |t y| + |eta1| against |t y - eta1| ~ (|y| + |mu|)/sigma
    cond = (np.abs(y) + np.abs(mu)) / sigma + 1
    err = np.abs(hess - want).max(axis=(1, 2)) / norm
    assert np.all(err <= 64 * EPS64 * cond**2), (err, cond)


def test_natural_nll_convex_along_random_segments_float32():
    # convexity of the sum, not just per observation: f(midpoint) <= mean of the ends
    y, e1, e2, _, _ = _natural_points(n=30, seed=1)
    rng = np.random.default_rng(2)
    a = (e1, e2)
    b = (e1 + rng.normal(size=e1.shape), e2 * np.exp(rng.normal(size=e2.shape)))
    f = jax.jit(lambda p, q: nllax.gaussian_natural.nll(jnp.asarray(y, jnp.float32), p, q))
    fa = float(f(jnp.asarray(a[0], jnp.float32), jnp.asarray(a[1], jnp.float32)))
    fb = float(f(jnp.asarray(b[0], jnp.float32), jnp.asarray(b[1], jnp.float32)))
    fm = float(f(jnp.asarray(0.5 * (a[0] + b[0]), jnp.float32),
                 jnp.asarray(0.5 * (a[1] + b[1]), jnp.float32)))
    # three sums of 30 terms in float32, each within ~30 eps of its size
    assert fm <= 0.5 * (fa + fb) + 100 * EPS32 * (abs(fa) + abs(fb))


def test_natural_equals_gaussian_through_the_map(x64):
    y, e1, e2, mu, sigma = _natural_points()
    got = nllax.gaussian_natural.log_prob(y, e1, e2)
    np.testing.assert_allclose(np.asarray(got), stats.norm.logpdf(y, mu, sigma), rtol=1e-11)
    m, v = nllax.gaussian_natural.to_mean_var(e1, e2)
    np.testing.assert_allclose(np.asarray(m), mu, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(v), sigma**2, rtol=1e-14)
    b1, b2 = nllax.gaussian_natural.from_mean_var(mu, sigma**2)
    np.testing.assert_allclose(np.asarray(b1), e1, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(b2), e2, rtol=1e-14)
