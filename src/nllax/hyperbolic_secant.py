r"""Hyperbolic secant likelihood: the likelihood whose NLL is the log-cosh loss.

.. math::

    p(y \mid \mu, s) = \frac{1}{\pi s}\,\mathrm{sech}(z), \qquad
    \log p = -\log\cosh z - \log\pi - \log s, \qquad z = \frac{y - \mu}{s},

the density of ``scipy.stats.hypsecant`` (:math:`\mathrm{sech}(x)/\pi`) with location and
scale. At unit scale over :math:`n = \sum w` observations

.. math::

    \mathrm{NLL} = \mathrm{log\_cosh}(y, \mu) + n\log\pi

(:data:`nllax.equivalences` ``["log_cosh"]``): minimising the log-cosh loss is maximum
likelihood under hyperbolic-secant noise, quadratic near 0 (:math:`z^2/2`) and linear in
the tails (:math:`|z| - \log 2`). :math:`\log\cosh(z/s)` is not a multiple of
:math:`\log\cosh z`, so other scales have no affine row. Mean :math:`\mu`, variance
:math:`\pi^2 s^2/4`; expected information :math:`1/(2s^2)` for ``loc``.

The scale: exactly one of ``scale`` (:math:`s > 0`, default 1), ``log_scale``, ``var``
(:math:`s^2`) or ``log_var``, as in :mod:`nllax.gaussian`; shapes and invalid values as
there.

Numerics: :math:`\log\cosh z = |z| + \mathrm{log1p}(e^{-2|z|}) - \log 2` (no overflow, no
cancellation; derivative :math:`\tanh z`, 0 at 0, NaN at NaN). The CDF is
:math:`F(z) = \tfrac{2}{\pi}\arctan e^{z}`; below 0 its log is
:math:`\log\tfrac{2}{\pi} + z + \log(\arctan(x)/x)` with :math:`x = e^z`, the last term
:math:`-x^2/3 + 13x^4/90` for :math:`x < 10^{-3}`, so the lower tail is exact where
:math:`e^z` underflows (:math:`\log F \approx z + \log(2/\pi)`); the upper half by
symmetry, ``log1mexp`` of the lower half's log.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M
from nllax.gaussian import NOISE

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_LOG_HALF_PI = math.log(0.5 * math.pi)
_LOG_2_OVER_PI = math.log(2.0 / math.pi)


def log_cosh_plus_log2(z):
    """``log cosh(z) + log 2 = |z| + log1p(exp(-2|z|))``, derivative ``tanh z``."""
    a = M.abs_(z)
    return a + jnp.log1p(jnp.exp(-2.0 * a))


def _log_prob(y, loc, scale):
    z = scale.divide(y - loc)
    # log p = -(log cosh z + log 2) + log 2 - log pi - log s
    return F.Affine(-1.0, log_cosh_plus_log2(z), -(scale.log() + _LOG_HALF_PI))


def _log_lower(w):
    """``log F(w)`` for ``w <= 0``: ``log(2/pi) + w + log(atan(x)/x)``, ``x = e^w``."""
    x = jnp.exp(w)
    small = x < 1e-3
    xs = jnp.where(small, 0.5, x)  # the untaken branch sees a harmless input
    x2 = jnp.square(jnp.where(small, x, 0.0))
    series = x2 * (-1.0 / 3.0 + (13.0 / 90.0) * x2)
    return _LOG_2_OVER_PI + w + jnp.where(small, series, jnp.log(jnp.arctan(xs) / xs))


def _log_cdf_z(z):
    g = _log_lower(jnp.where(z <= 0, z, -z))
    return jnp.where(z <= 0, g, M.log1mexp(g))


def _log_cdf(y, loc, scale):
    return _log_cdf_z(scale.divide(y - loc))


def _log_sf(y, loc, scale):
    return _log_cdf_z(scale.divide(loc - y))


family = F.Family(
    name="hyperbolic_secant",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location (mean, median and mode)"), NOISE),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=lambda loc, scale: {"loc": 0.5 * scale.inverse() ** 2},
    summary="HyperbolicSecant(loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation hyperbolic secant log-density
    :math:`-\log\cosh((y-\mu)/s) - \log\pi - \log s`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: location :math:`\mu`, broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`s > 0` (default 1); or exactly one of ``log_scale``, ``var``
        (:math:`s^2`), ``log_var``.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` is <= 0 or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.hyperbolic_secant.log_prob(0.0, 0.0))  # -log(pi)
      -1.1447298...
      >>> float(nllax.hyperbolic_secant.log_cdf(-1000.0, 0.0))  # -1000 + log(2/pi)
      -1000.4515...
    """,
    "nll": r"""Hyperbolic secant negative log-likelihood, reduced (``reduction``,
    ``weights``, ``where`` as in :func:`nllax.gaussian.nll`).

    :math:`\mathrm{NLL} = \sum_i w_i\left[\log\cosh(r_i/s_i) + \log\pi s_i\right]`; at unit
    scale, :func:`nllax.losses.log_cosh` plus :math:`n\log\pi`.
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
