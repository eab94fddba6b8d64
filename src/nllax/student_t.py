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
(the regularised incomplete beta), the small tail always computed directly and the other
side as ``log1p`` of minus it: near the centre (where the continued fraction would be
slow) :math:`\tfrac12(1 - I_{t^2/(\nu+t^2)}(\tfrac12, \nu/2))`, with both arguments formed
directly (never as 1 minus a rounded number); in the deep tail
(:math:`\nu/(\nu+t^2) \le 1/4`) the power series
:math:`I_x(a, \tfrac12) = \frac{x^a}{aB(a,\frac12)}\sum_n \frac{(1/2)_n}{n!}\frac{a}{a+n}x^n`
evaluated in log space (so the tail does not underflow where the probability is
below the smallest float), with :math:`\log(aB(a, \tfrac12)) = \tfrac12\log(a\pi) - C(2a)`
stable for every :math:`a`. Between, ``jax.scipy.special.betainc``. Its accuracy for very
large ``df`` (above ~1e4) is that of JAX's ``betainc`` (whose prefactor is a difference of
log-gammas of size :math:`\nu\log\nu`).

**Derivatives of the CDFs.** In ``y``, ``loc`` and the scale: exact (the density over the
CDF, written out). In ``df`` / ``log_df``: JAX's ``betainc`` has no derivative in its
shape parameters, so it is a **central difference** in :math:`\log\nu` of the accurate
function, step :math:`\epsilon^{1/3}` (relative error ~1e-10 in float64, ~1e-4 in
float32; a censored Student-t with a learned ``df`` trains, but its ``df`` gradient is
not exact).

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
from nllax.gaussian import NOISE

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
    central = x >= (a + 1.0) / (a + 2.5)            # where the CF for I_x(a, 1/2) is slow
    deep = x <= 0.25
    # centre: 1/2 (1 - I_w(1/2, a)) >= ~0.04, no cancellation
    wc = jnp.where(central, w, 0.1)
    p_c = 0.5 * (1.0 - jax.scipy.special.betainc(0.5, a, wc))
    # between: 1/2 I_x(a, 1/2)
    xm = jnp.where(central | deep, 0.5, x)
    p_m = 0.5 * jax.scipy.special.betainc(a, 0.5, xm)
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
    return jnp.where(deep, log_p_d, jnp.log(jnp.where(central, p_c, p_m)))


@jax.custom_jvp
def _log_cdf_t(t, nu):
    """``log P(T <= t)``. Its derivative in ``t`` is the density over the CDF, written out
    (autodiff through ``betainc`` at ``t = 0`` is inf * 0). JAX's ``betainc`` has no
    derivative in its shape parameters: the derivative in ``nu`` is a central difference
    in ``log nu`` of this accurate function, step ``h = eps^(1/3)`` (truncation ~h^2,
    rounding ~eps / h: ~1e-10 relative in float64, ~1e-4 in float32)."""
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
    inv_var = scale.inverse() ** 2
    r = nu / (nu + 3.0)
    info = {"loc": (nu + 1.0) / (nu + 3.0) * inv_var}
    k = scale.kind
    name = {"value": "scale", "log": "log_scale", "square": "var", "log_square": "log_var"}[k]
    info[name] = {"value": 2 * r * inv_var, "log": 2 * r + 0 * scale.v,
                  "square": 0.5 * r * inv_var * inv_var, "log_square": 0.5 * r + 0 * scale.v}[k]
    return info


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
      -1.1447298...
      >>> float(nllax.student_t.log_prob(1.0, 0.0, log_df=40.0))  # the Gaussian
      -1.4189385...
    """,
    "nll": r"""Student-t negative log-likelihood, reduced (``reduction``, ``weights``,
    ``where`` as in :func:`nllax.gaussian.nll`); arguments as in :func:`log_prob`.
    """,
    "log_cdf": r"""Per-observation :math:`\log P(Y \le y)`, accurate deep in both tails.

    The derivative in ``y``, ``loc`` and the scale is exact; in ``df`` / ``log_df`` it is a
    central difference (JAX's ``betainc`` has no derivative in its shape parameters):
    ~1e-10 relative in float64, ~1e-4 in float32. See the module docstring.

    Example:
      >>> import nllax
      >>> float(nllax.student_t.log_cdf(-1.0, 0.0, df=1.0))  # log(1/4)
      -1.3862943...
    """,
    "log_sf": r"""Per-observation :math:`\log P(Y > y)`; see :func:`log_cdf`.""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
