r"""Inverse Gaussian (Wald) likelihood in the GLM parametrisation: mean :math:`\mu`,
dispersion :math:`\phi` (shape :math:`\lambda = 1/\phi`).

.. math::

    \log p(y \mid \mu, \phi) = -\tfrac12\log(2\pi\phi y^3)
        - \frac{(y - \mu)^2}{2\phi\mu^2 y}, \qquad y > 0,

:math:`E[y] = \mu`, :math:`\mathrm{Var}[y] = \phi\mu^3`. In scipy's terms this is
``scipy.stats.invgauss(mu * phi, scale=1 / phi)`` (its shape is the mean over
:math:`\lambda`, its scale :math:`\lambda`).

**Parameters**: exactly one of ``log_mean`` (:math:`\log\mu`) or ``mean``
(:math:`\mu > 0`), and ``dispersion`` :math:`\phi > 0` (keyword-only, required).
``y <= 0``, a NaN, ``mean <= 0`` or ``dispersion <= 0`` give NaN (value and gradient)
and a named error under :func:`nllax.checked`.

**Numerics**: with :math:`x = y/\mu` the exponent is :math:`(x-1)^2/(2\phi y)`, one
rounding per operation and no cancellation. The CDF

.. math::

    F(y) = \Phi(a) + e^{2/(\phi\mu)}\,\Phi(b), \qquad
    a = \frac{x - 1}{\sqrt{\phi y}},\ b = -\frac{x + 1}{\sqrt{\phi y}},

overflows as written (:math:`e^{2/(\phi\mu)}` for a small dispersion). Since
:math:`b^2/2 - 2/(\phi\mu) = a^2/2`, its second term is
:math:`\tfrac12\,\mathrm{erfcx}(|b|/\sqrt2)\,e^{-a^2/2}` exactly, which we use in log
space (``logaddexp`` with :math:`\log\Phi(a)`). For :math:`y > \mu` the survival function
is :math:`\tfrac12 e^{-a^2/2}\bigl(\mathrm{erfcx}(a/\sqrt2) - \mathrm{erfcx}(|b|/\sqrt2)\bigr)`:
no overflow, and a relative error of about :math:`x\,\varepsilon/2` far in the upper tail,
where the two ``erfcx`` approach each other (the written-out form with
:math:`\log\Phi` loses :math:`a^2\varepsilon` there, i.e. everything beyond
:math:`a \approx 10^8`). For :math:`y \le \mu`, ``log_sf`` is :math:`\log(1 - F)`, whose
relative error is :math:`\varepsilon/(1 - F)` (:math:`1 - F` is at least ~1/40 there
unless :math:`\phi\mu > 10^3`). Both are differentiable in every argument.

Expected (Fisher) information per observation: :math:`1/(\phi\mu)` for ``log_mean``,
:math:`1/(\phi\mu^3)` for ``mean``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import erfcx

from nllax import _family as F
from nllax._math import log1mexp, log_ndtr
from nllax.gamma import DISPERSION, MEAN

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)
_SQRT_HALF = math.sqrt(0.5)


def _log_prob(y, mean, dispersion):
    xm1 = mean.divide(y) - 1.0
    return (-_HALF_LOG_2PI - 0.5 * jnp.log(dispersion) - 1.5 * jnp.log(y)
            - jnp.square(xm1) / (2.0 * dispersion * y))


def _parts(y, mean, dispersion):
    x = mean.divide(y)
    s = jnp.sqrt(dispersion * y)
    a = (x - 1.0) / s
    nb = (x + 1.0) / s  # -b > 0
    half_a2 = 0.5 * jnp.square(a)
    # log of e^{2/(phi mu)} Phi(b), without overflow
    second = jnp.log(erfcx(nb * _SQRT_HALF)) - _LOG2 - half_a2
    return a, nb, half_a2, second


def _log_cdf(y, mean, dispersion):
    a, _, _, second = _parts(y, mean, dispersion)
    return jnp.logaddexp(log_ndtr(a), second)


def _log_sf(y, mean, dispersion):
    a, nb, half_a2, second = _parts(y, mean, dispersion)
    upper = a > 0
    ap = jnp.where(upper, a, 1.0)
    nbp = jnp.where(upper, nb, 2.0)
    tail = jnp.log(erfcx(ap * _SQRT_HALF) - erfcx(nbp * _SQRT_HALF)) - _LOG2 - half_a2
    lc = jnp.logaddexp(log_ndtr(jnp.where(upper, -1.0, a)), jnp.where(upper, -1.0, second))
    return jnp.where(upper, tail, log1mexp(lc))


def _fisher(mean, dispersion):
    if mean.kind == "log":
        return {"log_mean": 1.0 / (dispersion * jnp.exp(mean.v))}
    return {"mean": 1.0 / (dispersion * mean.v ** 3)}


family = F.Family(
    name="inverse_gaussian",
    data=F.Data("y", F.POSITIVE),
    params=(MEAN, DISPERSION),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    summary="InverseGaussian(mean, dispersion)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation inverse Gaussian log-density with mean :math:`\mu` and
    dispersion :math:`\phi` (variance :math:`\phi\mu^3`).

    Args:
      y: positive observations, any shape.
      log_mean: :math:`\log\mu`, broadcastable to ``y.shape``; or
      mean: :math:`\mu > 0`. Exactly one of the two.
      dispersion: :math:`\phi > 0`, scalar or broadcastable to ``y.shape``.

    Returns:
      Array of ``y.shape``; NaN where ``y <= 0``, ``mean <= 0`` or ``dispersion <= 0``.

    Example:
      >>> import nllax
      >>> float(nllax.inverse_gaussian.log_prob(1.0, mean=1.0, dispersion=1.0))  # -log(2 pi)/2
      -0.9189385...
    """,
    "nll": r"""Inverse Gaussian negative log-likelihood, reduced (``reduction``, ``weights``,
    ``where`` as in :func:`nllax.gaussian.nll`).""",
    "log_cdf": r""":math:`\log P(Y \le y)`, in log space (no overflow of
    :math:`e^{2/(\phi\mu)}`); see the module docstring.""",
    "log_sf": r""":math:`\log P(Y > y)`; see the module docstring for its accuracy.""",
})
log_prob, nll, log_cdf, log_sf = (_fns[k] for k in ("log_prob", "nll", "log_cdf", "log_sf"))
F.register(__name__, family)
