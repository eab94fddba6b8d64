"""Independent float64 references (NumPy/SciPy/decimal), shared by the core tests."""

from __future__ import annotations

import decimal
import math

import numpy as np
from scipy import special, stats

_CTX = decimal.Context(prec=50)
_HALF_LN_2PI = _CTX.divide(
    _CTX.ln(_CTX.multiply(2, decimal.Decimal("3.14159265358979323846264338327950288419716939937510"))), 2
)


def _ln_factorial(k: int) -> decimal.Decimal:
    """log k! in 50-digit decimal: an exact sum of logs for small k, the Stirling series
    with seven correction terms (error < 1e-60 for k > 2000) above."""
    if k <= 2000:
        return _CTX.ln(decimal.Decimal(math.factorial(k))) if k > 1 else decimal.Decimal(0)
    dk = decimal.Decimal(k)
    coef = [(1, 12), (-1, 360), (1, 1260), (-1, 1680), (1, 1188), (-691, 360360), (1, 156)]
    corr = sum(decimal.Decimal(c) / (decimal.Decimal(d) * dk ** (2 * j + 1)) for j, (c, d) in enumerate(coef))
    return (dk + decimal.Decimal("0.5")) * _CTX.ln(dk) - dk + _HALF_LN_2PI + corr


def poisson_logpmf(k, lam) -> np.ndarray:
    """log p(k | lam) = k log lam - lam - log k!, evaluated in 50-digit arithmetic so that
    its cancellation at large counts costs nothing (scipy's float64 form loses ~8 digits at
    k = 1e7)."""
    k = np.asarray(k, np.float64)
    lam = np.broadcast_to(np.asarray(lam, np.float64), k.shape)
    out = np.empty(k.shape)
    with decimal.localcontext(_CTX):
        _poisson_fill(out, k, lam)
    return out


def _poisson_fill(out, k, lam):
    for idx in np.ndindex(k.shape):
        ki, li = int(k[idx]), float(lam[idx])
        if li == 0.0:
            out[idx] = 0.0 if ki == 0 else -np.inf
            continue
        dl = decimal.Decimal(li)  # exact binary value of the float64 input
        v = (decimal.Decimal(ki) * _CTX.ln(dl) if ki else 0) - dl - _ln_factorial(ki)
        out[idx] = float(v)


def gaussian_logpdf(y, loc, scale):
    return stats.norm.logpdf(y, loc, scale)


def laplace_logpdf(y, loc, scale):
    return stats.laplace.logpdf(y, loc, scale)


def bernoulli_logits(y, z):
    """y log sigmoid(z) + (1 - y) log sigmoid(-z), with 0 * (-inf) = 0."""
    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    with np.errstate(invalid="ignore"):
        a = np.where(y == 0, 0.0, y * special.log_expit(z))
        b = np.where(y == 1, 0.0, (1 - y) * special.log_expit(-z))
    return a + b


def categorical_logits(labels, logits, axis=-1):
    lsm = special.log_softmax(np.asarray(logits, np.float64), axis=axis)
    lsm = np.moveaxis(lsm, axis, -1)
    return np.take_along_axis(lsm, np.asarray(labels)[..., None], axis=-1)[..., 0]


def rel_err(got, want) -> float:
    """Largest relative error, with exact matches (incl. equal infinities) counting 0."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    err = np.where(same, 0.0, err)
    return float(np.max(err)) if err.size else 0.0


def categorical_logits_decimal(labels, logits) -> np.ndarray:
    """log softmax(z)_label = -M - log sum_j exp(d_j - M), d_j = z_j - z_label, M = max d,
    in 50-digit decimal (SciPy's float64 log_softmax returns 0 for a log-probability of
    -1e-30, which float32 can represent)."""
    with decimal.localcontext(_CTX):
        return _categorical_decimal(labels, np.asarray(logits, np.float64))


def _categorical_decimal(labels, logits):
    out = np.empty(logits.shape[:-1])
    for idx in np.ndindex(out.shape):
        z = logits[idx]
        lab = int(np.asarray(labels)[idx])
        if np.isposinf(z).any():
            n_inf = int(np.isposinf(z).sum())
            out[idx] = -math.log(n_inf) if np.isposinf(z[lab]) else -np.inf
            continue
        if np.isneginf(z[lab]):
            out[idx] = -np.inf
            continue
        zl = decimal.Decimal(float(z[lab]))
        d = [decimal.Decimal(float(v)) - zl for v in z if not np.isneginf(v)]
        m = max(d)
        total = sum((_CTX.exp(x - m) for x in d if x - m > -5000), decimal.Decimal(0))
        out[idx] = float(-m - _CTX.ln(total))
    return out


def rel_err_f32(got, want) -> float:
    """Relative error of a float32 result against a float64 reference over the float32
    normal range. Where the true value underflows (|want| < smallest normal float32) the
    result must instead be within that smallest normal of it (XLA flushes subnormals to
    zero); a violation there is reported as an infinite error."""
    tiny = float(np.finfo(np.float32).tiny)
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        rel = np.abs(got - want) / np.abs(want)
        under = np.where(np.abs(got - want) <= tiny, 0.0, np.inf)
    err = np.where(same, 0.0, np.where(np.abs(want) >= tiny, rel, under))
    return float(np.max(err)) if err.size else 0.0


def binomial_logpmf(k, n, logits) -> np.ndarray:
    """log C(n, k) + k log p + (n - k) log(1 - p), p = 1 / (1 + exp(-z)), in 50-digit
    decimal (scipy's float64 form keeps ~7 digits at n = 1e9: its log-gamma terms are
    2e10 for an answer of -10)."""
    k = np.asarray(k, np.float64)
    n = np.broadcast_to(np.asarray(n, np.float64), k.shape)
    z = np.broadcast_to(np.asarray(logits, np.float64), k.shape)
    out = np.empty(k.shape)
    with decimal.localcontext(_CTX):
        for idx in np.ndindex(k.shape):
            ki, ni, zi = int(k[idx]), int(n[idx]), float(z[idx])
            if np.isinf(zi):
                p_one = zi > 0
                out[idx] = 0.0 if (ki == ni if p_one else ki == 0) else -np.inf
                continue
            dz = decimal.Decimal(zi)  # the exact binary value of the float64 input
            log_p = -_CTX.ln(1 + _CTX.exp(-dz))  # log sigmoid(z)
            log_q = -_CTX.ln(1 + _CTX.exp(dz))
            v = (_ln_factorial(ni) - _ln_factorial(ki) - _ln_factorial(ni - ki)
                 + ki * log_p + (ni - ki) * log_q)
            out[idx] = float(v)
    return out


def _bernoulli_b2j(m: int):
    """B_2, B_4, ..., B_2m as Fractions (Akiyama-Tanigawa)."""
    from fractions import Fraction

    out = []
    a = [Fraction(0)] * (2 * m + 1)
    for i in range(2 * m + 1):
        a[i] = Fraction(1, i + 1)
        for j in range(i, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        if i >= 2 and i % 2 == 0:
            out.append(a[0])
    return out


_B2J = _bernoulli_b2j(20)


def lgamma_decimal(x: decimal.Decimal) -> decimal.Decimal:
    """log Gamma(x), x > 0, in 50-digit decimal: shifted to x >= 60 by
    Gamma(x) = Gamma(x + m) / (x (x+1) ... (x+m-1)), then the Stirling series with 20
    Bernoulli terms (remainder below |B_42| / (42 * 41 * 60^41) < 1e-60)."""
    shift = decimal.Decimal(1)
    while x < 60:
        shift *= x
        x += 1
    s = (x - decimal.Decimal("0.5")) * _CTX.ln(x) - x + _HALF_LN_2PI
    xp = x
    x2 = x * x
    for j, b in enumerate(_B2J, start=1):
        s += decimal.Decimal(b.numerator) / decimal.Decimal(b.denominator * (2 * j) * (2 * j - 1)) / xp
        xp *= x2
    return s - _CTX.ln(shift)


def nbinom_logpmf(k, log_mean, dispersion, variance="nb2") -> np.ndarray:
    """Negative binomial log-pmf with mean exp(log_mean), size 1/alpha (nb2) or mu/alpha
    (nb1), in 50-digit decimal from the exact binary inputs (scipy's float64 form
    subtracts log-gamma terms of size r log r)."""
    k = np.asarray(k, np.float64)
    eta = np.broadcast_to(np.asarray(log_mean, np.float64), k.shape)
    alpha = np.broadcast_to(np.asarray(dispersion, np.float64), k.shape)
    out = np.empty(k.shape)
    with decimal.localcontext(_CTX):
        for idx in np.ndindex(k.shape):
            ki = int(k[idx])
            mu = _CTX.exp(decimal.Decimal(float(eta[idx])))
            a = decimal.Decimal(float(alpha[idx]))
            r = 1 / a if variance == "nb2" else mu / a
            dk = decimal.Decimal(ki)
            v = (lgamma_decimal(dk + r) - lgamma_decimal(r) - _ln_factorial(ki)
                 + r * _CTX.ln(r / (r + mu)) + (dk * _CTX.ln(mu / (r + mu)) if ki else 0))
            out[idx] = float(v)
    return out
