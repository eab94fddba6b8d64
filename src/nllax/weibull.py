r"""Weibull likelihood: the survival-analysis family with a closed-form survival function.

.. math::

    \log p(y \mid \lambda, k) = \log k - \log\lambda + (k - 1)\log z - z^k,
    \qquad z = y/\lambda,\ y \ge 0,

with scale :math:`\lambda > 0` and concentration (shape) :math:`k > 0`: SciPy's
``weibull_min(c=k, scale=lambda)``. The survival function is exact in closed form,
:math:`\log S(y) = -z^k`, and :math:`\log F(y) = \log(1 - e^{-z^k})`, computed with
:func:`nllax._math.log1mexp` (accurate for small :math:`z^k`, where :math:`1 - e^{-t}`
would lose its digits, and deep in the upper tail). :math:`k = 1` is the exponential
distribution with mean :math:`\lambda`. With :func:`nllax.censored` (``upper=`` the
censoring time of a right-censored observation) it is the Weibull survival model:
events contribute the density, censored times :math:`\log S`.

The support includes :math:`y = 0`: there the density is :math:`+\infty` for
:math:`k < 1` (``log_prob`` is ``+inf``), :math:`1/\lambda` for :math:`k = 1` and 0 for
:math:`k > 1` (``-inf``), as SciPy; the term :math:`(k-1)\log z` is computed with
:math:`0\cdot(-\infty) = 0` at :math:`k = 1`. Derivatives at :math:`y = 0` are not
finite (:math:`\log y` enters them); fit on positive times. :math:`z^k` is :math:`\exp(k\log z)`, so a large
:math:`z` overflows to ``inf`` only when :math:`z^k` itself does. ``y < 0`` or NaN,
``scale <= 0`` or ``concentration <= 0`` give NaN (value and gradient).

Mean :math:`\lambda\Gamma(1 + 1/k)`, variance
:math:`\lambda^2[\Gamma(1 + 2/k) - \Gamma(1 + 1/k)^2]`; expected information
:math:`(k/\lambda)^2` for ``scale``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import gammaln

from nllax import _family as F
from nllax import _math as M

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]


def _log_z(y, scale):
    return jnp.log(y) - jnp.log(scale)


def _log_prob(y, scale, concentration):
    log_z = _log_z(y, scale)
    return (jnp.log(concentration) - jnp.log(scale) + M.xmul(concentration - 1.0, log_z)
            - jnp.exp(concentration * log_z))


def _log_sf(y, scale, concentration):
    return -jnp.exp(concentration * _log_z(y, scale))


def _log_cdf(y, scale, concentration):
    return M.log1mexp(_log_sf(y, scale, concentration))


def _fisher(scale, concentration):
    return {"scale": jnp.square(concentration / scale)}


def _moments(scale, concentration):
    g1 = gammaln(1.0 + 1.0 / concentration)
    g2 = gammaln(1.0 + 2.0 / concentration)
    mean = scale * jnp.exp(g1)
    return mean, jnp.square(scale) * -jnp.expm1(2.0 * g1 - g2) * jnp.exp(g2)


family = F.Family(
    name="weibull",
    data=F.Data("y", F.NONNEGATIVE),
    params=(
        F.Param("scale", F.POSITIVE, keyword_only=True, doc="scale lambda > 0"),
        F.Param("concentration", F.POSITIVE, keyword_only=True,
                doc="concentration (shape) k > 0"),
    ),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    moments=_moments,
    summary="Weibull(scale, concentration)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Weibull log-density
    :math:`\log k - \log\lambda + (k-1)\log(y/\lambda) - (y/\lambda)^k`.

    Args:
      y: observations :math:`y \ge 0`, any shape.
      scale: :math:`\lambda > 0`, broadcastable to ``y.shape`` without enlarging it.
      concentration: :math:`k > 0`, likewise.

    Returns:
      Array of ``y.shape``; NaN where ``y < 0`` or a parameter is <= 0 or NaN; at
      ``y = 0``: ``+inf`` (k < 1), ``-log(scale)`` (k = 1), ``-inf`` (k > 1).

    Example:
      >>> import nllax
      >>> float(nllax.weibull.log_prob(1.0, scale=1.0, concentration=1.0))  # Exp(1): -1
      -1.0
    """,
    "log_sf": r"""Per-observation log survival function :math:`\log P(Y > y) = -(y/\lambda)^k`
    (exact). Arguments as in :func:`log_prob`.

    Example:
      >>> import nllax
      >>> float(nllax.weibull.log_sf(2.0, scale=1.0, concentration=2.0))
      -4.0
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
