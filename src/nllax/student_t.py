r"""Student-t likelihood: a location-scale family with polynomial tails, from the Cauchy
(``df = 1``) to the Gaussian (``df -> inf``).

.. math::

    \log p(y \mid \mu, s, \nu) = \log\Gamma\!\left(\tfrac{\nu+1}{2}\right)
        - \log\Gamma\!\left(\tfrac{\nu}{2}\right) - \tfrac12\log(\nu\pi) - \log s
        - \frac{\nu+1}{2}\,\log\!\left(1 + \frac{z^2}{\nu}\right),
    \qquad z = \frac{y - \mu}{s}.

**Parameters.** ``loc`` :math:`\mu`; the scale as in :mod:`nllax.gaussian` (exactly one
of ``scale``, ``log_scale``, ``var`` = :math:`s^2`, ``log_var``; default ``scale=1``);
the degrees of freedom, keyword-only and required: exactly one of ``df``
(:math:`\nu > 0`) or ``log_df`` (:math:`\log\nu`, unconstrained: a learned ``df``).
``df <= 0`` or NaN gives NaN (value and gradient) and a named ``nllax.checked`` error.

**Numerics** (float32 and float64, :math:`\nu` from 1e-3 to 1e8 and beyond):

* the constant is written :math:`C(\nu) - \tfrac12\log 2\pi` with
  :math:`C(\nu) = \log\Gamma(x + \tfrac12) - \log\Gamma(x) - \tfrac12\log x`,
  :math:`x = \nu/2`. :math:`C \to 0` as :math:`\nu \to \infty` (the Gaussian), and the
  difference of two log-gammas of size :math:`x\log x` would cancel catastrophically
  there (1e-7 absolute at :math:`\nu = 10^8` in float64). For :math:`x \ge 8` it is the
  asymptotic series
  :math:`C = \sum_{k\ge1} (2^{1-2k} - 2)\,B_{2k} / (2k(2k-1)\,x^{2k-1})
  = -\frac{1}{8x} + \frac{1}{192x^3} - \frac{1}{640x^5} + \dots` (ten terms: truncation
  below 3e-18 at :math:`x = 8`), below it the log-gamma difference (no cancellation
  there: the terms are at most :math:`|\log x| + 2`).
* :math:`\tfrac{\nu+1}{2}\log(1 + q)`, :math:`q = z^2/\nu`, is computed as
  :math:`\tfrac12(1 + 1/\nu)\,z^2\,g(q)` with :math:`g(q) = \mathrm{log1p}(q)/q`
  (a series below :math:`q = 10^{-4}`) for :math:`q \le 1`: exact in the Gaussian limit,
  :math:`\nu = \infty` included (``log_df`` large in float32 gives exactly the Gaussian
  density), and as :math:`\tfrac{\nu+1}{2}(2\log|z| - \log\nu + \mathrm{log1p}(\nu/z^2))`
  for :math:`q > 1`, so that :math:`z^2` may overflow (a scale of 1e-30 in float32)
  without the result doing so.

``log_cdf`` / ``log_sf``: :math:`P(T \le -|t|) = \tfrac12 I_{\nu/(\nu+t^2)}(\nu/2, \tfrac12)`
(the regularised incomplete beta); the small tail is always computed directly, in log
space, and the other side as ``log1p`` of minus it. With :math:`x = \nu/(\nu+t^2)` and
:math:`w = t^2/(\nu+t^2)` both formed directly (never as 1 minus a rounded number), and
the prefactor :math:`\log(aB(a, \tfrac12)) = \tfrac12\log(a\pi) - C(2a)` stable for
every :math:`a` (JAX's ``betainc`` forms :math:`\log\Gamma(a) + \log\Gamma(b) -
\log\Gamma(a+b)`: measured 3e-4 relative error at ``df`` = 1e3 in float32, 4e-7 at 1e8 in
float64, so it is not used):

* centre (:math:`w \le \tfrac32/(a + \tfrac52)`, probability >= ~0.04):
  :math:`\tfrac12(1 - I_w(\tfrac12, a))`, the continued fraction (DLMF 8.17.22, 300
  modified-Lentz steps);
* deep tail (:math:`x \le 1/4`): the power series
  :math:`I_x(a, \tfrac12) = \frac{x^a}{aB(a,\frac12)}\sum_n
  \frac{(1/2)_n}{n!}\frac{a}{a+n}x^n` (28 terms), in log space: no underflow where the
  probability is below the smallest float;
* between: the continued fraction for :math:`I_x(a, \tfrac12)`, or, from ``df`` = 3e5
  (float64) / 30 (float32), where it would need :math:`O(\sqrt{\nu})` steps, Hill's
  (1970, CACM 395) normal transformation (measured relative error below
  :math:`1.5\times10^{-6}/\nu`).

Measured against ``scipy.special.stdtr`` (tests/test_robust_families.py, t from -30 to 8):
relative error of ``log_cdf`` <= 6e-13 in float64 for ``df`` from 1e-3 to 1e8, <= 5e-6 in
float32.

**Derivatives of the CDFs.** In ``y``, ``loc`` and the scale: exact (the density over the
CDF, written out). In ``df`` / ``log_df``: a **central difference** in :math:`\log\nu` of
the accurate function, step :math:`\epsilon^{1/3}` (relative error ~1e-9 in float64,
~1e-4 in float32; the derivatives of the continued fraction and of Hill's transformation
in :math:`\nu` are not written out): a censored Student-t with a learned ``df`` trains,
but its ``df`` gradient is not exact.

Expected information per observation: :math:`(\nu+1)/((\nu+3)s^2)` for ``loc``;
:math:`2\nu/((\nu+3)s^2)` for ``scale`` (``log_scale``: :math:`2\nu/(\nu+3)`; ``var``:
:math:`\nu/(2(\nu+3)s^4)`; ``log_var``: :math:`\nu/(2(\nu+3))`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from nllax import _family as F
from nllax._math import log_ndtr
from nllax.gaussian import NOISE, noise_information

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)
_HALF_LOG_PI = 0.5 * math.log(math.pi)

# C(2x) = sum_k c_k / x^(2k-1), c_k = (2^(1-2k) - 2) B_2k / (2k (2k-1)), k = 1..10
_C_SERIES = (-1 / 8, 1 / 192, -1 / 640, 17 / 14336, -31 / 18432, 691 / 180224,
             -5461 / 425984, 929569 / 15728640, -3202291 / 8912896, 221930581 / 79691776)
_X_SERIES = 8.0  # x = df / 2 from which the series is used


def _c_of_df(nu, log_nu):
    """``lgamma((nu+1)/2) - lgamma(nu/2) - log(nu/2)/2``, stable for every nu > 0 (-> 0)."""
    x = 0.5 * nu
    series = x >= _X_SERIES
    xs = jnp.where(series, x, _X_SERIES)   # each branch sees a harmless input where untaken
    xd = jnp.where(series, 1.0, x)
    inv = 1.0 / xs
    y = inv * inv
    acc = jnp.full_like(y, _C_SERIES[-1])
    for c in _C_SERIES[-2::-1]:
        acc = acc * y + c
    big = acc * inv
    log_x = jnp.where(series, 0.0, log_nu - _LOG2)
    small = jax.lax.lgamma(xd + 0.5) - jax.lax.lgamma(xd) - 0.5 * log_x
    return jnp.where(series, big, small)


def _half_df_log1p(z, nu, log_nu):
    """``(nu + 1) / 2 * log1p(z^2 / nu)`` and ``log1p(z^2 / nu)`` (see the module docstring)."""
    z2 = jnp.square(z)
    q = z2 / nu
    small = q <= 1.0
    qs = jnp.where(small, q, 0.0)
    tiny = qs < 1e-4
    qp = jnp.where(tiny, qs, 0.0)
    ql = jnp.where(tiny, 1.0, qs)
    g = jnp.where(tiny, 1.0 - qp * (0.5 - qp * (1.0 / 3.0 - 0.25 * qp)), jnp.log1p(ql) / ql)
    nus = jnp.where(small, nu, 1.0)
    half_small = 0.5 * (1.0 + 1.0 / nus) * jnp.where(small, z2, 0.0) * g
    # q > 1: log1p(q) = 2 log|z| - log nu + log1p(nu / z^2), z^2 may be inf there
    zb = jnp.where(small, 1.0, z)
    z2b = jnp.where(small, 1.0, z2)
    nub = jnp.where(small, 1.0, nu)
    lognub = jnp.where(small, 0.0, log_nu)
    l_big = 2.0 * jnp.log(jnp.abs(zb)) - lognub + jnp.log1p(nub / z2b)
    half_big = 0.5 * (nub + 1.0) * l_big
    l_small = qs * g
    return jnp.where(small, half_small, half_big), jnp.where(small, l_small, l_big)


def _log_prob(y, loc, scale, df):
    z = scale.divide(y - loc)
    nu, log_nu = df.value(), df.log()
    half, _ = _half_df_log1p(z, nu, log_nu)
    return _c_of_df(nu, log_nu) - _HALF_LOG_2PI - scale.log() - half


_N_SERIES = 28  # terms of the tail series: 0.25^28 < 2e-17


def _log_lower_tail(t, nu, log_nu):
    """``log P(T <= -|t|)`` for standard Student-t ``T`` with ``nu`` degrees of freedom."""
    a = 0.5 * nu
    _, l1p = _half_df_log1p(t, nu, log_nu)          # log(1 + t^2 / nu) = -log x
    t2 = jnp.square(t)
    x = jnp.exp(-l1p)                               # nu / (nu + t^2)
    w = t2 / (nu + t2)                              # 1 - x, formed directly
    # where the CF for I_x(a, 1/2) is slow: x >= (a + 1) / (a + 5/2), i.e. w <= 3/2 / (a + 5/2)
    central = w <= 1.5 / (a + 2.5)
    deep = x <= 0.25
    # centre: 1/2 (1 - I_w(1/2, a)) >= ~0.04, no cancellation; I_w(1/2, a) =
    # w^(1/2) x^a / (B(a, 1/2) / 2) * CF, log(B(a, 1/2)) = log(pi)/2 - log(a)/2 - C
    wc = jnp.where(central, w, 0.01)
    lc = jnp.where(central, l1p, 0.0)
    log_i_c = (0.5 * jnp.log(wc) - a * lc + _LOG2 - _HALF_LOG_PI + 0.5 * (log_nu - _LOG2)
               + _c_of_df(nu, log_nu) + jnp.log(_beta_cf(0.5, a, wc)))
    p_c = 0.5 * (1.0 - jnp.exp(log_i_c))
    # between: 1/2 I_x(a, 1/2) = 1/2 x^a (1-x)^(1/2) / (a B(a, 1/2)) * CF, in log space
    # with the stable prefactor (JAX's betainc forms lgamma(a) + lgamma(b) - lgamma(a+b):
    # 3e-4 relative error at df = 1e3 in float32, 4e-7 at df = 1e8 in float64)
    mid = ~(central | deep)
    # ... for large df the continued fraction needs O(sqrt(df)) steps (and in float32
    # cannot tell a + 1 from a above 1.6e7): Hill's normal transformation instead
    hill = mid & (nu >= (_HILL_DF64 if t.dtype == jnp.float64 else _HILL_DF32))
    cf = mid & ~hill
    xm = jnp.where(cf, x, 0.5)
    wm = jnp.where(cf, w, 0.5)
    lm = jnp.where(cf, l1p, 0.0)
    log_p_m = (-_LOG2 - a * lm + 0.5 * jnp.log(wm) - 0.5 * (log_nu - _LOG2) - _HALF_LOG_PI
               + _c_of_df(nu, log_nu) + jnp.log(_beta_cf(a, 0.5, xm)))
    log_p_m = jnp.where(hill, _log_tail_hill(jnp.where(hill, l1p, 1.0),
                                             jnp.where(hill, nu, 1e6)), log_p_m)
    # deep: the power series in log space
    xd = jnp.where(deep, x, 0.0)
    term = jnp.ones_like(xd)
    total = jnp.ones_like(xd)
    for n in range(1, _N_SERIES + 1):
        term = term * xd * ((n - 0.5) / n)
        total = total + term * (a / (a + n))
    lnu = jnp.where(deep, l1p, 0.0)
    log_p_d = (-_LOG2 - a * lnu - 0.5 * (log_nu - _LOG2) - _HALF_LOG_PI
               + _c_of_df(nu, log_nu) + jnp.log(total))
    return jnp.where(deep, log_p_d, jnp.where(central, jnp.log(p_c), log_p_m))


# Hill's transformation is used from these df on in the middle region (measured against
# the continued fraction / scipy: worst relative error ~1.5e-6 / df, at t^2 = 3 df)
_HILL_DF32 = 30.0
_HILL_DF64 = 3e5


def _log_tail_hill(l1p, nu):
    """``log P(T <= -|t|)`` by Hill's (1970, CACM algorithm 395) normal transformation
    for large ``nu``: ``y = (nu - 1/2) log1p(t^2 / nu)``, ``z = sqrt(y) (1 + (y + 3 +
    p(y) / (0.8 y^2 + 100 + b)) / b)``, ``b = 48 (nu - 1/2)^2``, then ``log Phi(-z)``."""
    a = nu - 0.5
    b = 48.0 * a * a
    y = a * l1p
    z = (((((-0.4 * y - 3.3) * y - 24.0) * y - 85.5) / (0.8 * y * y + 100.0 + b) + y + 3.0)
         / b + 1.0) * jnp.sqrt(y)
    return log_ndtr(-z)


def _beta_cf(a, b, x):
    """The continued fraction of ``I_x(a, b)`` (DLMF 8.17.22, modified Lentz), for
    ``x < (a + 1) / (a + b + 2)``, a fixed number of steps (no data-dependent loop)."""
    tiny = 1e-30
    steps = 300

    def guard(v):
        return jnp.where(jnp.abs(v) < tiny, tiny, v)

    qab, qap, qam = a + b, a + 1.0, a - 1.0
    d = 1.0 / guard(1.0 - qab * x / qap)
    c = jnp.ones_like(d)

    def body(m, state):
        c, d, h = state
        m = m.astype(x.dtype)
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / guard(1.0 + aa * d)
        c = guard(1.0 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / guard(1.0 + aa * d)
        c = guard(1.0 + aa / c)
        return c, d, h * d * c

    return jax.lax.fori_loop(1, steps + 1, body, (c, d, d))[2]


@jax.custom_jvp
def _log_cdf_t(t, nu):
    """``log P(T <= t)``. Its derivative in ``t`` is the density over the CDF, written out;
    the derivative in ``nu`` is a central difference in ``log nu`` of this accurate
    function, step ``h = eps^(1/3)`` (truncation ~h^2, rounding ~eps / h: ~1e-9 relative
    in float64, ~1e-4 in float32)."""
    log_nu = jnp.log(nu)
    lo = _log_lower_tail(t, nu, log_nu)
    # the large side: log(1 - p) = log1p(-exp(lo)), p <= 1/2
    hi = jnp.log1p(-jnp.exp(lo))
    return jnp.where(t <= 0, lo, hi)


def _log_cdf_t_jvp(primals, tangents):
    t, nu = primals
    dt, dnu = tangents
    out = _log_cdf_t(t, nu)
    tan = jnp.zeros_like(out)
    if type(dt) is not SymbolicZero:
        log_nu = jnp.log(nu)
        half, _ = _half_df_log1p(t, nu, log_nu)
        log_pdf = _c_of_df(nu, log_nu) - _HALF_LOG_2PI - half
        tan = tan + jnp.exp(log_pdf - out) * dt
    if type(dnu) is not SymbolicZero:
        h = float(jnp.finfo(out.dtype).eps) ** (1.0 / 3.0)
        up = _log_cdf_t(t, nu * math.exp(h))
        down = _log_cdf_t(t, nu * math.exp(-h))
        tan = tan + (up - down) / (2.0 * h) * (dnu / nu)
    return out, tan


_log_cdf_t.defjvp(_log_cdf_t_jvp, symbolic_zeros=True)


def _log_cdf(y, loc, scale, df):
    return _log_cdf_t(scale.divide(y - loc), df.value())


def _log_sf(y, loc, scale, df):
    return _log_cdf_t(scale.divide(loc - y), df.value())


def _fisher(loc, scale, df):
    nu = df.value()
    loc_info = (nu + 1.0) / (nu + 3.0) * scale.inverse() ** 2
    return {"loc": loc_info, **noise_information(scale, 2.0 * nu / (nu + 3.0))}


DF = F.OneOf(
    "df",
    (
        F.Param("df", F.POSITIVE, keyword_only=True, doc="degrees of freedom nu > 0"),
        F.Param("log_df", F.UNCONSTRAINED, keyword_only=True, to_canonical=jnp.exp,
                from_canonical=jnp.log, doc="log nu (a learned df)"),
    ),
    positive=True, kinds=("value", "log"),
)

family = F.Family(
    name="student_t",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location (median; the mean for df > 1)"), NOISE, DF),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    summary="StudentT(df, loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Student-t log-density.

    Args:
      y: observations, any shape.
      loc: location, broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`s > 0` (default 1); or exactly one of ``log_scale``, ``var``,
        ``log_var``.
      df: degrees of freedom :math:`\nu > 0` (keyword-only); or ``log_df`` =
        :math:`\log\nu`. Exactly one of the two.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` or ``df`` is <= 0 or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.student_t.log_prob(0.0, 0.0, 1.0, df=1.0))  # Cauchy: -log(pi)
      -1.14472...
      >>> float(nllax.student_t.log_prob(1.0, 0.0, log_df=40.0))  # the Gaussian
      -1.4189385...
    """,
    "nll": r"""Student-t negative log-likelihood, reduced (``reduction``, ``weights``,
    ``where`` as in :func:`nllax.gaussian.nll`); arguments as in :func:`log_prob`.
    """,
    "log_cdf": r"""Per-observation :math:`\log P(Y \le y)`, accurate deep in both tails.

    The derivative in ``y``, ``loc`` and the scale is exact; in ``df`` / ``log_df`` it is a
    central difference: ~1e-9 relative in float64, ~1e-4 in float32. See the module
    docstring.

    Example:
      >>> import nllax
      >>> float(nllax.student_t.log_cdf(-1.0, 0.0, df=1.0))  # log(1/4)
      -1.38629...
    """,
    "log_sf": r"""Per-observation :math:`\log P(Y > y)`; see :func:`log_cdf`.""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
