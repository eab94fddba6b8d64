"""The NB2 derivative in the dispersion alpha, against a 150-digit reference, from
alpha = 2 down to 1e-30 (the Poisson limit, where fits of equidispersed data go).

The chain rule through the size r = 1/alpha combined two terms of size |k - mu| / alpha
into one of size (k - mu)^2 and took psi(k + r) - psi(r) as a difference of two numbers of
size log r: at alpha = 1e-4 in float32 the gradient had the wrong sign, and at 1e-8 in
float64 it was 5.6 for a true -20.6 (summed over five observations). nllax now writes
d log p / d alpha out (negative_binomial._nb2_dalpha)."""

from __future__ import annotations

from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import nllax

KS = [0, 1, 2, 5, 20, 200]
MUS = [0.01, 0.7, 3.0, 25.0, 400.0]
ALPHAS = [2.0, 0.5, 0.2, 0.15, 0.13, 0.126, 0.124, 0.12, 0.1, 0.05, 1e-2, 1e-3, 1e-5, 1e-9, 1e-15, 1e-30]


def _reference(k, mu, alpha):
    """d log p / d alpha = r^2 [log(1 + mu/r) + (k - mu)/(r + mu) - sum_{j<k} 1/(r + j)],
    r = 1/alpha, in 150 digits (r^2 = 1e60 at alpha = 1e-30 cancels ~60 digits)."""
    getcontext().prec = 150
    a = Decimal(float(alpha))
    r = 1 / a
    kk, m = Decimal(int(k)), Decimal(float(mu))
    s = sum((1 / (r + j) for j in range(int(k))), Decimal(0))
    return float(r * r * ((1 + m / r).ln() + (kk - m) / (r + m) - s))


def _grid(dtype):
    rows = [(k, m, a) for k in KS for m in MUS for a in ALPHAS]
    k, m, a = (np.array(c, dtype) for c in zip(*rows))
    return k, m, a, np.array([_reference(*row) for row in rows])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nb2_dispersion_gradient_to_the_poisson_limit(dtype, x64):
    k, mu, alpha, want = _grid(dtype)
    grad = jax.jit(jax.vmap(jax.grad(
        lambda kk, m, a: nllax.negative_binomial.log_prob(kk, mean=m, dispersion=a), 2)))
    got = np.asarray(grad(k, mu, alpha), np.float64)
    eps = float(np.finfo(dtype).eps)
    k64, mu64, r = k.astype(np.float64), mu.astype(np.float64), 1.0 / alpha.astype(np.float64)
    # The terms combined are of size (k - mu)^2 / 2 and k / 2 (their sum is the limit
    # alpha -> 0), each rounded a few times: 8 eps of their size. Below r = 6 the direct
    # form is used: r^2 times the rounding of psi(k + r) and psi(r) (a few eps of their size
    # in float32; 4 allowed). The expansion's truncation above r = 8 is below 1.4e-16 of
    # its leading term (negative_binomial._R_ASYM).
    size = 0.5 * np.square(k64 - mu64) + 0.5 * k64 + 1.0
    direct = np.where(r < 8.0, r * r, 0.0)
    psi = np.abs(special.digamma(k64 + r)) + np.abs(special.digamma(r))
    tol = eps * (8.0 * size + 4.0 * direct * (1.0 + psi))
    bad = np.abs(got - want) > tol
    assert not bad.any(), [(float(k64[i]), float(mu64[i]), float(alpha[i]), got[i], want[i])
                           for i in np.flatnonzero(bad)[:5]]


def test_nb2_limit_and_hessian(x64):
    k = np.array([0., 1., 3., 10., 50.])
    mu = np.array([0.5, 2., 3., 8., 60.])
    # alpha -> 0: d NLL / d alpha -> -sum(((k - mu)^2 - k) / 2), the Poisson score test's
    # statistic; at 1e-30 the terms of order alpha are below float64's resolution
    g = jax.grad(lambda a: nllax.negative_binomial.nll(k, mean=mu, dispersion=a))(1e-30)
    np.testing.assert_allclose(float(g), -np.sum((np.square(k - mu) - k) / 2), rtol=4e-16)

    def f(p):
        return nllax.negative_binomial.nll(k, log_mean=jnp.log(mu) + p[0],
                                          dispersion=jnp.exp(p[1]))

    g = jax.jit(jax.grad(f))
    for la in np.log([3.0, 0.2, 1e-2, 1e-6, 1e-12]):
        p = np.array([0.1, la])
        hess = np.asarray(jax.hessian(f)(p))
        h = 1e-5
        fd = np.stack([(g(p + h * e) - g(p - h * e)) / (2 * h) for e in np.eye(2)])
        # central differences of an accurate gradient: truncation h^2 |g'''| / 6 (g''' of
        # the size of the Hessian here) plus rounding eps |g| / h: 1e-8 of the largest entry
        np.testing.assert_allclose(hess, fd, rtol=0, atol=1e-8 * np.abs(fd).max())
