"""Test case: the Student-t family, df from 1e-3 to 1e8, against a 50-digit decimal
reference (scipy.stats.t's float64 form loses digits to the log-gamma difference at large
df: 4e-13 relative at df = 1e3, 1e-7 absolute at 1e8), itself checked against scipy.stats.t
where scipy is exact (tests/test_robust_families.py)."""

import decimal
import math
from fractions import Fraction

import numpy as np
from scipy import special

import nllax

from . import NAN, FamilyCase

_CTX = decimal.Context(prec=50)
_D = decimal.Decimal
_PI = _D("3.14159265358979323846264338327950288419716939937510")


def _bernoulli(n_max):
    b = [Fraction(1)]
    for m in range(1, n_max + 1):
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
    return b


# Stirling's series for log Gamma(x), x >= 40: B_2k / (2k (2k - 1) x^(2k - 1)), k = 1..15
# (the next term is below 1e-40 there)
_STIRLING = [(_D(f.numerator) / _D(f.denominator)) / (2 * k * (2 * k - 1))
             for k, f in ((k, _bernoulli(30)[2 * k]) for k in range(1, 16))]


def lgamma_decimal(x: decimal.Decimal) -> decimal.Decimal:
    """log Gamma(x) for x > 0 in 50-digit decimal: shifted up to x >= 40 by the
    recurrence, then Stirling's series."""
    with decimal.localcontext(_CTX):
        prod = _D(1)
        while x < 40:
            prod *= x
            x += 1
        shift = prod.ln()
        s = (x - _D("0.5")) * x.ln() - x + (2 * _PI).ln() / 2
        xp = x
        x2 = x * x
        for c in _STIRLING:
            s += c / xp
            xp *= x2
        return s - shift


def t_logpdf_decimal(y, loc, scale, df) -> np.ndarray:
    """log p in 50-digit decimal from the float64 inputs (exact binary values)."""
    y, loc, scale, df = np.broadcast_arrays(*(np.asarray(v, np.float64)
                                              for v in (y, loc, scale, df)))
    out = np.empty(y.shape)
    with decimal.localcontext(_CTX):
        for i in np.ndindex(y.shape):
            nu, s = _D(float(df[i])), _D(float(scale[i]))
            z = (_D(float(y[i])) - _D(float(loc[i]))) / s
            v = (lgamma_decimal((nu + 1) / 2) - lgamma_decimal(nu / 2) - (nu * _PI).ln() / 2
                 - s.ln() - (nu + 1) / 2 * (1 + z * z / nu).ln())
            out[i] = float(v)
    return out


def _reference(y, loc, scale, df):
    return t_logpdf_decimal(y, loc, scale, df)


def _lower(t, df):
    """log P(T <= -|t|), scipy's stdtr of the small tail (computed directly)."""
    return np.log(special.stdtr(df, -np.abs(t)))


def _ref_log_cdf(y, loc, scale, df):
    t = (np.asarray(y) - loc) / scale
    lo = _lower(t, df)
    return np.where(t <= 0, lo, np.log1p(-np.exp(lo)))


def _ref_log_sf(y, loc, scale, df):
    return _ref_log_cdf(-np.asarray(y), -np.asarray(loc), scale, df)


# points of every df regime: 1, the switch to the series at df = 16, small, moderate,
# tiny (Cauchy-like and heavier), large (the Gaussian limit; 9th: not in the 16-bit
# test's 8 observations, float16 has no 1e8). The gradient test takes
# the first 6: its finite-difference step is absolute (1.2e-4) below 1, 12% of df = 1e-3
# (df = 1e-3 is checked in log_df in tests/test_robust_families.py).
_DFS = np.array([1.0, 15.999, 16.0, 0.05, 30.0, 200.0, 1e-3, 1e3, 1e8])


def _sample(rng, n):
    df = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), size=n))
    df[:len(_DFS)] = _DFS[:n]
    scale = np.exp(rng.normal(size=n))
    loc = rng.normal(size=n)
    t = rng.standard_t(np.maximum(df, 0.5)) * rng.choice([0.1, 1.0, 10.0], size=n)
    t[:4] = [-1e4, 0.0, 3.0, -40.0]
    return loc + scale * t, {"loc": loc, "scale": scale, "df": df}


def _magnitude(y, loc, scale, df):
    # the terms added: C(df) (below df = 16 a difference of log-gammas of size
    # |log(df/2)| + 2), log s, log(2 pi)/2 and (df+1)/2 log1p(z^2/df); each entered with a
    # few roundings, and the last one's argument z carries 2 roundings (relative), i.e.
    # an error of (df+1) z^2/(df+z^2) eps in the sum.
    z = (np.asarray(y) - loc) / scale
    q = z * z / df
    half = 0.5 * (df + 1) * np.log1p(q)
    lg = np.where(df < 16, np.abs(np.log(df / 2)) + 2.0, 0.1)
    return half + (df + 1) * z * z / (df + z * z) + lg + np.abs(np.log(scale)) + 1.0


CASE = FamilyCase(
    module=nllax.student_t,
    sample=_sample,
    reference=_reference,
    ref_log_cdf=_ref_log_cdf,
    ref_log_sf=_ref_log_sf,
    invalid={"df": [-1.0, 0.0, NAN], "scale": [-1.0, 0.0, NAN],
             "y": [NAN]},
    normalisation=({"loc": 0.3, "scale": 1.7, "df": 4.0},
                   {"loc": -2.0, "scale": 0.05, "df": 1.5},
                   {"loc": 0.0, "scale": 1.0, "df": 1e6}),
    magnitude=_magnitude,
    rtol64=1e-12,
    rtol64_why="agreement to rounding of the decimal reference and the float64 formulas "
               "(no cancellation: see the module); log_cdf against scipy's stdtr within "
               "10 rtol64 (continued fraction, series or Hill, each to a few hundred eps)",
    f32_ulps=16,
    f32_why="C(df) (series or log-gamma difference), log s, log1p: a sum of a few terms "
            "each within a few eps of its size (see _magnitude)",
    tails=((np.array([-1e100, -1e6, -30.0, 30.0, 1e6, 1e100]),
            {"loc": 0.0, "scale": 1.0, "df": 1.0}),
           (np.array([-1e30, -50.0, -8.0, 8.0, 50.0, 1e30]),
            {"loc": 0.0, "scale": 1.0, "df": 7.0}),
           (np.array([-1e100, -1e10, -2.0, -0.5, 0.5, 1e10, 1e100]),
            {"loc": 0.0, "scale": 1.0, "df": 0.01}),
           (np.array([-30.0, -12.0, -4.0, 4.0, 12.0, 30.0]),
            {"loc": 0.0, "scale": 1.0, "df": 300.0})),
)
