"""Independent high-precision references for the GLM families gamma and tweedie: plain
Python ``decimal`` arithmetic at 60 digits (no mpmath), so that a float64 implementation
can be checked to its own rounding even where the textbook float64 formulas cancel (a
gamma density of shape 1e6 adds terms of size 1e7 to get a result of size 5).

``ln_gamma`` is Stirling's series with 30 Bernoulli terms after shifting the argument to
>= 60 (the remainder is below B_62 / (62 * 61 * 60^61) < 1e-60)."""

from __future__ import annotations

import decimal
import functools
from fractions import Fraction

import numpy as np

_CTX = decimal.Context(prec=60)
D = decimal.Decimal
_PI = D("3.14159265358979323846264338327950288419716939937510582097494459")
_HALF_LN_2PI = _CTX.divide(_CTX.ln(_CTX.multiply(2, _PI)), 2)
_SHIFT = 60
_TERMS = 30


@functools.lru_cache(maxsize=None)
def _bernoulli_even() -> tuple[Fraction, ...]:
    """B_2, B_4, ..., B_{2 _TERMS} (Akiyama-Tanigawa)."""
    n_max = 2 * _TERMS
    a = [Fraction(0)] * (n_max + 1)
    b = []
    for m in range(n_max + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        b.append(a[0])  # B_m with B_1 = +1/2 (unused)
    return tuple(b[2 * k] for k in range(1, _TERMS + 1))


@functools.lru_cache(maxsize=None)
def _stirling_coeffs() -> tuple[decimal.Decimal, ...]:
    return tuple(_CTX.divide(D(bk.numerator), D(bk.denominator) * (2 * k) * (2 * k - 1))
                 for k, bk in enumerate(_bernoulli_even(), start=1))


def ln_gamma(x: decimal.Decimal) -> decimal.Decimal:
    """log Gamma(x) for x > 0 to ~55 digits."""
    with decimal.localcontext(_CTX):
        x = +x
        acc = D(0)
        while x < _SHIFT:
            acc += x.ln()
            x += 1
        s = D(0)
        inv = 1 / x
        inv2 = inv * inv
        p = inv
        for c in _stirling_coeffs():
            s += c * p
            p *= inv2
        return (x - D("0.5")) * x.ln() - x + _HALF_LN_2PI + s - acc


def _dec(v) -> decimal.Decimal:
    return D(float(v))


def _gamma_logpdf(y, loc, dispersion, log_theta) -> np.ndarray:
    """log of the gamma density with shape k = 1/phi and scale theta, 60 digits, where
    ``log_theta(loc, phi)`` gives log theta in decimal from the location argument."""
    y, loc, dispersion = np.broadcast_arrays(*(np.asarray(a, np.float64)
                                               for a in (y, loc, dispersion)))
    out = np.empty(y.shape)
    with decimal.localcontext(_CTX):
        for i in np.ndindex(y.shape):
            yy, ll, phi = _dec(y[i]), _dec(loc[i]), _dec(dispersion[i])
            k = 1 / phi
            lt = log_theta(ll, phi)
            out[i] = float((k - 1) * yy.ln() - yy / lt.exp() - k * lt - ln_gamma(k))
    return out


def gamma_logpdf(y, mean, dispersion) -> np.ndarray:
    """log of the gamma density with shape 1/phi and scale mu phi, 60 digits."""
    return _gamma_logpdf(y, mean, dispersion, lambda mu, phi: (mu * phi).ln())


def gamma_logpdf_log_mean(y, log_mean, dispersion) -> np.ndarray:
    """As :func:`gamma_logpdf` with mu = exp(log_mean) taken in decimal (exactly the
    float64 log-mean, not its rounded exponential)."""
    return _gamma_logpdf(y, log_mean, dispersion, lambda eta, phi: eta + phi.ln())


def tweedie_log_series_full(y: float, phi: float, p: float) -> float:
    """log W(y, phi, p) by the whole series in float64: every term from j = 1 to
    j_max + 60 sqrt(j_max / (p - 1) + 1) + 200 (beyond which the terms, concave in j with
    a width ~ sqrt((p - 1) j_max), are below e^-1000 of the largest), summed by
    ``logsumexp``. Independent of nllax's windowed series (src/nllax/tweedie.py)."""
    from scipy.special import gammaln, logsumexp

    a = (2 - p) / (p - 1)
    z = a * (np.log(y) - np.log(p - 1)) - np.log(phi) / (p - 1) - np.log(2 - p)
    jm = max(1.0, y ** (2 - p) / (phi * (2 - p)))
    hi = int(jm + 60 * np.sqrt(jm / (p - 1) + 1) + 200)
    j = np.arange(1, hi + 1, dtype=np.float64)
    return float(logsumexp(j * z - gammaln(j + 1) - gammaln(j * a)))


def tweedie_logpdf(y, mean, dispersion, power) -> np.ndarray:
    """Dunn & Smyth's series density (the whole series), log P(y = 0) = -lambda at 0."""
    y, mean, dispersion, power = np.broadcast_arrays(
        *(np.asarray(v, np.float64) for v in (y, mean, dispersion, power)))
    out = np.empty(y.shape)
    for i in np.ndindex(y.shape):
        yy, mu, phi, p = y[i], mean[i], dispersion[i], power[i]
        kappa = mu ** (2 - p) / (2 - p)
        if yy == 0:
            out[i] = -kappa / phi
        else:
            out[i] = (-np.log(yy) + tweedie_log_series_full(yy, phi, p)
                      + (yy * mu ** (1 - p) / (1 - p) - kappa) / phi)
    return out


def tweedie_sample(rng, mean, dispersion, power):
    """Draws by the compound Poisson-gamma construction."""
    mean, dispersion, power = np.broadcast_arrays(mean, dispersion, power)
    lam = mean ** (2 - power) / (dispersion * (2 - power))
    shape = (2 - power) / (power - 1)
    scale = dispersion * (power - 1) * mean ** (power - 1)
    n = rng.poisson(lam)
    return np.where(n > 0, rng.gamma(np.maximum(n, 1) * shape, scale), 0.0)
