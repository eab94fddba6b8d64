"""The beta and Weibull families beyond the registry's harness: the beta density at large
precision against a 50-digit decimal reference, the derivatives of the beta's CDF,
the Weibull density at y = 0, and right-censored Weibull survival through
``nllax.censored``."""

from __future__ import annotations

import decimal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import nllax

_CTX = decimal.Context(prec=50)
_PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510")
# Stirling's series of log Gamma: B_2k / (2k (2k - 1)), to k = 7
_SERIES = [(1, 12), (-1, 360), (1, 1260), (-1, 1680), (1, 1188), (-691, 360360), (1, 156)]


def _lgamma(x: decimal.Decimal) -> decimal.Decimal:
    """log Gamma(x) for x >= 1000 to ~45 digits: the series' next term is < x^-15."""
    assert x >= 1000
    out = (x - decimal.Decimal("0.5")) * _CTX.ln(x) - x + _CTX.ln(2 * _PI) / 2
    for j, (num, den) in enumerate(_SERIES):
        out += decimal.Decimal(num) / (decimal.Decimal(den) * x ** (2 * j + 1))
    return out


def _beta_logpdf_decimal(y: float, mean: float, precision: float) -> float:
    with decimal.localcontext(_CTX):
        y_, m, p = decimal.Decimal(y), decimal.Decimal(mean), decimal.Decimal(precision)
        a, b = m * p, (1 - m) * p
        lbeta = _lgamma(a) + _lgamma(b) - _lgamma(a + b)
        return float((a - 1) * _CTX.ln(y_) + (b - 1) * _CTX.ln(1 - y_) - lbeta)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_beta_large_precision_against_decimal(dtype):
    # lgamma(a) + lgamma(b) - lgamma(a + b) cancels terms of size phi log phi (2e9 at
    # phi = 1e8) to leave log p of size ~10: the Stirling-remainder / bd0 form keeps
    # every digit the inputs allow.
    with jax.enable_x64(dtype == "float64"):
        mean, y = 0.3, np.array([0.3, 0.3001, 0.2999, 0.301])
        eps = float(np.finfo(dtype).eps)
        for precision in (1e4, 1e6, 1e8):
            m = jnp.asarray(mean, dtype)
            p = jnp.asarray(precision, dtype)
            yy = jnp.asarray(y, dtype)
            got = np.asarray(jax.jit(lambda y, m, p: nllax.beta.log_prob(
                y, mean=m, precision=p))(yy, m, p), np.float64)
            # the reference at the inputs as rounded to dtype
            yd, md, pd = (np.asarray(v, np.float64) for v in (yy, m, p))
            want = np.array([_beta_logpdf_decimal(float(v), float(md), float(pd))
                             for v in yd])
            a, b = md * pd, (1 - md) * pd
            # the terms added (|log p|, the logs, phi * bd0 <= |log p| + log phi) and the
            # rounding of a = mean * precision and b inside, weighted by d log p / d log a
            # = a (log y - psi(a) + psi(a + b)) (likewise b)
            dig = special.digamma
            mag = (np.abs(want) + np.abs(np.log(pd)) + np.abs(np.log(yd))
                   + np.abs(np.log1p(-yd)) + 1.0
                   + a * np.abs(np.log(yd) - dig(a) + dig(a + b))
                   + b * np.abs(np.log1p(-yd) - dig(b) + dig(a + b)))
            assert np.all(np.abs(got - want) <= 16 * eps * mag), (precision, got, want)


def test_beta_float32_gradients_at_tiny_mean_and_y():
    # d(-log p)/d mean = -phi [log y - log(1 - y) - psi(a) + psi(b)] and d(-log p)/dy =
    # -(a - 1)/y + (b - 1)/(1 - y) (a = mean phi, b = (1 - mean) phi), from SciPy's
    # digamma in float64 at the float32 inputs. Autodiff through bd0's quotient gave NaN
    # (mean 1e-20, y 1e-21) and -inf in y (y = 1e-21), though every derivative is a
    # normal float32. Bound: a few roundings of each term of the closed form, 16 eps32
    # times the sum of their sizes (the closed form's conditioning; no cancellation
    # inside the family's evaluation is larger).
    eps = np.finfo(np.float32).eps
    pts = np.asarray([(1e-20, 1e-21, 3.0), (1e-25, 1e-24, 3.0), (0.3, 1e-21, 3.0),
                      (1e-3, 1e-30, 3.0), (0.7, 1e-35, 0.5), (0.3, 0.3000001, 3.0),
                      (0.999, 1 - 1e-7, 50.0), (1e-6, 0.5, 1e4)], np.float32)
    m, y, p = (jnp.asarray(pts[:, i]) for i in range(3))
    grads = jax.jit(jax.grad(lambda m, y, p: nllax.beta.nll(y, mean=m, precision=p),
                             (0, 1)))
    gm, gy = (np.asarray(g, np.float64) for g in grads(m, y, p))
    md, yd, pd = (pts[:, i].astype(np.float64) for i in range(3))
    a, b = md * pd, (1 - md) * pd
    tm = np.stack([pd * np.log(yd), -pd * np.log1p(-yd), -pd * special.digamma(a),
                   pd * special.digamma(b)])
    ty = np.stack([(a - 1) / yd, -(b - 1) / (1 - yd)])
    for got, terms in ((gm, tm), (gy, ty)):
        assert np.all(np.isfinite(got)), got
        assert np.all(np.abs(got + terms.sum(0)) <= 16 * eps * np.abs(terms).sum(0)), (
            got, -terms.sum(0))


def test_beta_cdf_derivatives(x64):
    # in y: the density; in mean and precision (the continued fraction's derivatives,
    # JAX's betainc has none) against central differences of SciPy's logcdf / logsf
    y, m, p = 0.4, 0.3, 5.0
    # the derivatives compiled, one program each (op by op, each primitive of the
    # continued fraction's derivatives compiles on its own)
    d = jax.jit(jax.grad(lambda y: jnp.exp(nllax.beta.log_cdf(y, mean=m, precision=p))))(y)
    np.testing.assert_allclose(float(d), stats.beta.pdf(y, 1.5, 3.5), rtol=1e-10)
    h = 1e-5  # central differences: truncation h^2 |f^(3)|, rounding eps / h: ~1e-10

    def ref(kind, y, m, p):
        return getattr(stats.beta, kind)(y, m * p, (1 - m) * p)

    for kind, fn in (("logcdf", nllax.beta.log_cdf), ("logsf", nllax.beta.log_sf)):
        grad = jax.jit(jax.grad(lambda m, p, y: fn(y, mean=m, precision=p), (0, 1)))
        for y, m, p in ((0.4, 0.3, 5.0), (0.5, 0.6, 40.0), (0.78, 0.8, 300.0)):
            g = grad(m, p, y)
            fd = ((ref(kind, y, m + h, p) - ref(kind, y, m - h, p)) / (2 * h),
                  (ref(kind, y, m, p + h * p) - ref(kind, y, m, p - h * p)) / (2 * h * p))
            np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-7)
    # twice differentiable (Newton's method on a censored beta regression)
    hess = jax.jit(jax.hessian(lambda v: nllax.beta.log_cdf(0.4, mean=v[0], precision=v[1])))(
        jnp.asarray([0.3, 5.0]))
    assert np.all(np.isfinite(np.asarray(hess)))
    np.testing.assert_allclose(np.asarray(hess), np.asarray(hess).T, rtol=1e-12)


def test_weibull_at_zero(x64):
    # y = 0 is in the support: density +inf (k < 1), 1/lambda (k = 1), 0 (k > 1), as SciPy
    k = jnp.asarray([0.5, 1.0, 2.0])
    got = np.asarray(nllax.weibull.log_prob(jnp.zeros(3), scale=2.0, concentration=k))
    np.testing.assert_array_equal(got, stats.weibull_min.logpdf(0.0, np.asarray(k), scale=2.0))
    assert np.all(np.asarray(nllax.weibull.log_cdf(jnp.zeros(3), scale=2.0,
                                                    concentration=k)) == -np.inf)
    assert np.all(np.asarray(nllax.weibull.log_sf(jnp.zeros(3), scale=2.0,
                                                   concentration=k)) == 0.0)
    # y < 0 is invalid: NaN, and a named error in checked mode
    assert np.isnan(float(nllax.weibull.log_prob(-1.0, scale=1.0, concentration=1.0)))
    from jax.experimental import checkify

    with pytest.raises(checkify.JaxRuntimeError, match="`y` must be >= 0"):
        nllax.checked(lambda y: nllax.weibull.nll(y, scale=1.0, concentration=2.0))(
            jnp.asarray([1.0, -1.0]))


WEIBULL_SURVIVAL = nllax.censored(nllax.weibull)


@jax.jit
def _survival_nll(log_params, t, upper):
    scale, k = jnp.exp(log_params[0]), jnp.exp(log_params[1])
    return WEIBULL_SURVIVAL.nll(t, scale=scale, concentration=k, upper=upper)


@jax.jit
def _hand_nll(log_params, t, event):
    # the textbook right-censored Weibull log-likelihood: events contribute the density
    # log k - log lambda + (k - 1) log(t / lambda) - (t / lambda)^k, censored times the
    # survival -(t / lambda)^k
    scale, k = jnp.exp(log_params[0]), jnp.exp(log_params[1])
    z = t / scale
    ll = jnp.where(event, jnp.log(k) - jnp.log(scale) + (k - 1) * jnp.log(z), 0.0) - z**k
    return -jnp.sum(ll)


def test_censored_weibull_is_the_survival_likelihood(x64):
    rng = np.random.default_rng(11)
    n = 40
    t_event = 2.0 * rng.weibull(1.4, n)
    t_cens = rng.uniform(0.5, 3.0, n)
    event = t_event <= t_cens
    t = np.minimum(t_event, t_cens)
    upper = np.where(event, np.inf, t)  # a censored time: y at its bound, P(Y > c)
    args = (jnp.asarray(t), jnp.asarray(upper))
    theta = jnp.asarray([np.log(1.8), np.log(1.2)])
    got = float(_survival_nll(theta, *args))
    want = float(_hand_nll(theta, jnp.asarray(t), jnp.asarray(event)))
    ref = -np.sum(np.where(event, stats.weibull_min.logpdf(t, 1.2, scale=1.8),
                           stats.weibull_min.logsf(t, 1.2, scale=1.8)))
    # sums of 40 terms of size <= ~5: 40 eps relative of the summed magnitudes
    np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    g1 = jax.jit(jax.grad(_survival_nll))(theta, *args)  # compiled: not op by op
    g2 = jax.jit(jax.grad(_hand_nll))(theta, jnp.asarray(t), jnp.asarray(event))
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-12)
    # and the fit reaches the same maximum
    r = nllax.fit(_survival_nll, jnp.zeros(2), *args, throw=True)
    h = nllax.fit(_hand_nll, jnp.zeros(2), jnp.asarray(t), jnp.asarray(event), throw=True)
    np.testing.assert_allclose(np.asarray(r.params), np.asarray(h.params), rtol=1e-8)
