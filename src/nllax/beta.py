r"""Beta likelihood in the mean-precision parametrisation of beta regression.

.. math::

    \log p(y \mid \mu, \phi) = (a - 1)\log y + (b - 1)\log(1 - y) - \log B(a, b),
    \qquad a = \mu\phi,\ b = (1 - \mu)\phi,

for :math:`0 < y < 1`, mean :math:`0 < \mu < 1` and precision :math:`\phi > 0`
(Ferrari & Cribari-Neto, 2004): :math:`\mathrm{E}\,y = \mu`,
:math:`\mathrm{Var}\,y = \mu(1-\mu)/(1+\phi)`. SciPy's ``beta(a, b)``.

Numerics: for a large precision, :math:`\log B(a, b) = \log\Gamma(a) + \log\Gamma(b) -
\log\Gamma(a + b)` subtracts numbers of size :math:`\phi\log\phi` to leave one of size
:math:`\log\phi` (at :math:`\phi = 10^6` float32 keeps no digit of it). With Stirling's
remainder :math:`\mathrm{stirlerr}(x) = \log\Gamma(x) - (x - \tfrac12)\log x + x -
\tfrac12\log 2\pi` (small: :math:`1/(12x)` for large :math:`x`), the density is exactly

.. math::

    \log p = -\phi\,[\mathrm{bd0}(\mu, y) + \mathrm{bd0}(1-\mu, 1-y)]
        + \tfrac12\log\frac{\mu(1-\mu)\phi}{2\pi} - \log y - \log(1-y)
        - \mathrm{stirlerr}(a) - \mathrm{stirlerr}(b) + \mathrm{stirlerr}(\phi),

with :math:`\mathrm{bd0}(x, m) = x\log(x/m) + m - x \ge 0` (the Kullback-Leibler
divergence of two Bernoulli laws, computed by a series near :math:`x = m`, as in
:mod:`nllax.poisson`): no large terms cancel. ``stirlerr`` is its asymptotic series for
:math:`x \ge 15` and the definition (with ``lgamma``) below.

``log_cdf`` and ``log_sf`` are :math:`\log I_y(a, b)` and :math:`\log I_{1-y}(b, a)`
(``jax.scipy.special.betainc``; the upper tail by symmetry, not :math:`1 - I_y`), each
as ``log1p`` of minus the other where it exceeds 1/2. They are accurate while the
probability is a normal float and ``-inf`` beyond it. Derivatives: in ``y`` analytic
(the density over the probability); in ``mean`` and ``precision`` (which JAX's
``betainc`` does not give) those of the incomplete beta's continued fraction, 256 terms
evaluated backward and differentiated by autodiff, to second order (a censored beta
regression fits with Newton's method). The fraction converges in
:math:`O(\sqrt{\max(a, b)})` terms: these derivatives are accurate for precisions up
to about :math:`10^4` and degrade beyond. ``log_prob`` and ``nll`` are differentiable to
any order in every argument.

``y`` outside (0, 1) or NaN, ``mean`` outside (0, 1) or NaN, ``precision <= 0`` or NaN
give NaN (value and gradient) and a named error under :func:`nllax.checked`. Expected
information for ``mean`` (precision fixed):
:math:`\phi^2[\psi'(a) + \psi'(b)]`.

References:
  S. Ferrari and F. Cribari-Neto, "Beta Regression for Modelling Rates and Proportions",
  Journal of Applied Statistics 31(7), 2004.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, gammaln, polygamma

from nllax import _family as F
from nllax._math import bd0 as _bd0
from nllax._math import log1mexp, stirlerr_real

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Loader's stirlerr for a real argument, lgamma(x) - (x - 1/2) log x + x - log(2 pi)/2
_stirlerr = stirlerr_real


@jax.custom_jvp
def _kl(x, m):
    """``bd0(x, m) = x log(x/m) + m - x`` for ``x, m > 0`` (Loader's, via the Poisson's).
    Its derivatives are written out (below): autodiff of the quotient inside ``bd0`` forms
    ``x / m**2``, which under- or overflows for a small ``m`` (float32: a NaN gradient at
    mean 1e-20, y 1e-21, and -inf in ``y`` at y = 1e-21) though every derivative is
    finite."""
    return _bd0(x, m, jnp.log(m))


@_kl.defjvp
def _kl_jvp(primals, tangents):
    # d/dx = log(x / m), d/dm = 1 - x/m = -(x - m)/m. Within a factor 2 (x - m exact by
    # Sterbenz's lemma) the log as log1p((x - m) / m): relative error a few eps however
    # close x is to m (log(x / m) would cancel there); beyond, log(x / m) is at least
    # log 2 in size and x / m a normal number for x, m in the unit interval.
    x, m = primals
    dx, dm = tangents
    d = x - m
    rel = d / m
    near = (x >= 0.5 * m) & (x <= 2.0 * m)
    log_ratio = jnp.where(near, jnp.log1p(rel), jnp.log(x / m))
    return _kl(x, m), log_ratio * dx - rel * dm


def _log_prob(y, mean, precision):
    one_m, one_y = 1.0 - mean, 1.0 - y
    a, b = mean * precision, one_m * precision
    log1m_y = jnp.log1p(-y)
    return (-precision * (_kl(mean, y) + _kl(one_m, one_y))
            + 0.5 * (jnp.log(mean) + jnp.log(one_m) + jnp.log(precision)) - _HALF_LOG_2PI
            - jnp.log(y) - log1m_y
            - _stirlerr(a) - _stirlerr(b) + _stirlerr(precision))


_CF_TERMS = 256


def _lbeta(a, b):
    # jax.scipy.special.betaln is off by 1.6e-8 at (20, 30) (measured against SciPy);
    # the plain lgamma difference rounds to eps * a log a
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def _log_betainc_cf(a, b, x, xc):
    """``log I_x(a, b)`` (``xc = 1 - x``, given to full precision) by the continued
    fraction of the incomplete beta function, ``I = x^a (1-x)^b / (a B(a, b)) / (1 + d_1/(1
    + d_2/(1 + ...)))``, evaluated backward from a fixed number of terms (a plain loop
    that autodiff differentiates in ``a`` and ``b``), on the side of the mean where it
    converges fast (``1 - I_{1-x}(b, a)`` on the other). Used for the derivatives in
    ``a`` and ``b`` only: accurate once the fraction has converged, which takes
    O(sqrt(max(a, b))) terms (256 cover precisions to ~1e4)."""
    flip = x > (a + 1.0) / (a + b + 2.0)
    p, q, z = jnp.where(flip, b, a), jnp.where(flip, a, b), jnp.where(flip, xc, x)

    def body(j, t):
        m = _CF_TERMS - j
        k = m // 2
        kf = jnp.asarray(k, z.dtype)
        odd = -(p + kf) * (p + q + kf) * z / ((p + 2 * kf) * (p + 2 * kf + 1.0))
        even = kf * (q - kf) * z / ((p + 2 * kf - 1.0) * (p + 2 * kf))
        return 1.0 + jnp.where(m % 2 == 1, odd, even) / t

    t = jax.lax.fori_loop(0, _CF_TERMS, body, jnp.ones_like(z))
    log_front = jnp.where(flip, b * jnp.log(xc) + a * jnp.log(x), a * jnp.log(x) + b * jnp.log(xc))
    log_i = log_front - jnp.log(p) - _lbeta(p, q) - jnp.log(t)
    return jnp.where(flip, log1mexp(jnp.minimum(log_i, 0.0)), log_i)


@jax.custom_jvp
def _log_betainc(a, b, x, xc):
    """``log I_x(a, b)`` with ``xc = 1 - x`` given to full precision by the caller (``y``
    and ``1 - y`` from the data: ``1 - (1 - y)`` would lose the digits of a small ``y``).
    The value from ``jax.scipy.special.betainc`` (as ``log1p`` of minus the complement
    ``I_{xc}(b, a)`` where it exceeds 1/2, which keeps the digits near 1); the derivative
    in ``x`` analytic (the density over the probability; ``xc`` follows ``x`` and carries
    no tangent of its own), in ``a`` and ``b`` that of the continued fraction
    :func:`_log_betainc_cf` (JAX does not differentiate ``betainc`` in ``a`` and ``b``)."""
    cdf, sf = betainc(a, b, x), betainc(b, a, xc)
    return jnp.where(cdf < 0.5, jnp.log(cdf), jnp.log1p(-sf))


@_log_betainc.defjvp
def _log_betainc_jvp(primals, tangents):
    a, b, x, xc = primals
    da, db, dx, _ = tangents
    out = _log_betainc(a, b, x, xc)
    _, d_ab = jax.jvp(lambda a, b: _log_betainc_cf(a, b, x, xc), (a, b), (da, db))
    log_pdf = (a - 1.0) * jnp.log(x) + (b - 1.0) * jnp.log(xc) - _lbeta(a, b)
    return out, d_ab + jnp.exp(log_pdf - out) * dx


def _log_cdf(y, mean, precision):
    return _log_betainc(mean * precision, (1.0 - mean) * precision, y, 1.0 - y)


def _log_sf(y, mean, precision):
    return _log_betainc((1.0 - mean) * precision, mean * precision, 1.0 - y, y)


def _fisher(mean, precision):
    a, b = mean * precision, (1.0 - mean) * precision
    return {"mean": jnp.square(precision) * (polygamma(1, a) + polygamma(1, b))}


def _moments(mean, precision):
    return mean, mean * (1.0 - mean) / (1.0 + precision)


family = F.Family(
    name="beta",
    data=F.Data("y", F.OPEN_UNIT),
    params=(
        F.Param("mean", F.OPEN_UNIT, keyword_only=True, doc="mean mu in (0, 1)"),
        F.Param("precision", F.POSITIVE, keyword_only=True, doc="precision phi > 0"),
    ),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    moments=_moments,
    summary="Beta(mean * precision, (1 - mean) * precision)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation beta log-density, mean-precision parametrisation
    (:math:`a = \mu\phi`, :math:`b = (1-\mu)\phi`).

    Args:
      y: observations in (0, 1), any shape.
      mean: :math:`\mu \in (0, 1)`, broadcastable to ``y.shape`` without enlarging it.
      precision: :math:`\phi > 0`, likewise.

    Returns:
      Array of ``y.shape``; NaN where ``y`` or ``mean`` is outside (0, 1), ``precision``
      is <= 0, or any is NaN.

    Example:
      >>> import nllax
      >>> float(nllax.beta.log_prob(0.5, mean=0.5, precision=4.0))  # Beta(2, 2): log 1.5
      0.4054...
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
