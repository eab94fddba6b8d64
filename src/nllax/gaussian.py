r"""Gaussian (Normal) likelihood: the likelihood whose NLL is the sum of squared errors.

.. math::

    \log p(y \mid \mu, \sigma) = -\frac{(y - \mu)^2}{2\sigma^2} - \log\sigma
        - \tfrac12\log(2\pi)

With a scalar :math:`\sigma` over :math:`n` observations (:math:`n = \sum w` with weights)

.. math::

    \mathrm{NLL} = \frac{1}{2\sigma^2}\,\mathrm{SSE} + \frac{n}{2}\log(2\pi\sigma^2)
               = \frac{n}{2\sigma^2}\,\mathrm{MSE} + \frac{n}{2}\log(2\pi\sigma^2).

With one :math:`\sigma_i` per observation (heteroscedastic, "learned noise") the NLL is
*not* an affine function of the SSE: it is a weighted least squares with weights
:math:`1/\sigma_i^2` plus :math:`\sum_i \log\sigma_i`.

**The noise**: exactly one of ``scale`` (:math:`\sigma > 0`, default 1), ``log_scale``
(:math:`\log\sigma`), ``var`` (:math:`\sigma^2 > 0`) or ``log_var``
(:math:`\log\sigma^2`), scalar or per observation. The log forms are unconstrained (the
usual network head) and are computed without forming :math:`\sigma`: the standardised
residual is :math:`(y-\mu)\,e^{-\ell/2}e^{-\ell/2}` for ``log_scale`` :math:`\ell`, finite
and exact at :math:`y = \mu` for every log-scale down to :math:`-2\log(\text{max float})`
(-177 in float32, -1419 in float64); below that the scale underflows even squared and the
value at :math:`y=\mu` is NaN.

Shapes: ``loc`` and the noise broadcast to ``y``'s shape without enlarging it: a scalar, a
per-observation array of ``y``'s shape, or e.g. a per-column ``(d,)`` array for ``(n, d)``
data. ``(n,)`` data against an ``(n, 1)`` prediction is a ``ValueError``. ``scale <= 0``,
``var <= 0`` or NaN gives NaN (value and gradient). ``log_cdf`` and ``log_sf`` are the
log of :math:`\Phi(z)` and :math:`\Phi(-z)`, :math:`z = (y-\mu)/\sigma`, accurate deep in
both tails (``jax.scipy.special.log_ndtr``).

Expected (Fisher) information per observation: :math:`1/\sigma^2` for ``loc``,
:math:`2/\sigma^2` for ``scale``, 2 for ``log_scale``, :math:`1/(2\sigma^4)` for ``var``,
:math:`1/2` for ``log_var``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from nllax._math import log_ndtr

from nllax import _family as F

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_prob(y, loc, scale):
    z, factor = scale.standardize(y - loc)
    return F.Affine(-0.5 * factor * factor, jnp.square(z), -(scale.log() + _HALF_LOG_2PI))


def _log_cdf(y, loc, scale):
    return log_ndtr(scale.divide(y - loc))


def _log_sf(y, loc, scale):
    return log_ndtr(scale.divide(loc - y))


_NOISE_NAMES = {"value": "scale", "log": "log_scale", "square": "var", "log_square": "log_var"}


def noise_information(scale, c) -> dict:
    r"""Fisher information of the :data:`NOISE` member that was given, for a location-scale
    family whose information for :math:`\sigma` is :math:`c/\sigma^2` (``c`` a number or an
    array of the batch shape): by the chain rule :math:`c` for ``log_scale``,
    :math:`c/(4\sigma^4)` for ``var`` and :math:`c/4` for ``log_var``."""
    inv_var = scale.inverse() ** 2
    k = scale.kind
    return {_NOISE_NAMES[k]: {"value": c * inv_var, "log": c + 0 * scale.v,
                              "square": 0.25 * c * inv_var * inv_var,
                              "log_square": 0.25 * c + 0 * scale.v}[k]}


def _fisher(loc, scale):
    return {"loc": scale.inverse() ** 2, **noise_information(scale, 2.0)}


def _moments(loc, scale):
    var = scale.square()
    shape = jnp.broadcast_shapes(jnp.shape(loc), jnp.shape(var))
    return jnp.broadcast_to(loc, shape), jnp.broadcast_to(var, shape)


NOISE = F.OneOf(
    "scale",
    (
        F.Param("scale", F.POSITIVE, doc="standard deviation sigma > 0"),
        F.Param("log_scale", F.UNCONSTRAINED, to_canonical=jnp.exp, from_canonical=jnp.log,
                doc="log sigma"),
        F.Param("var", F.POSITIVE, to_canonical=jnp.sqrt, from_canonical=jnp.square,
                doc="variance sigma^2 > 0"),
        F.Param("log_var", F.UNCONSTRAINED, to_canonical=lambda v: jnp.exp(0.5 * v),
                from_canonical=lambda s: 2.0 * jnp.log(s), doc="log sigma^2"),
    ),
    default=1.0, positive=True, kinds=("value", "log", "square", "log_square"),
)

family = F.Family(
    name="gaussian",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="mean mu"), NOISE),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    moments=_moments,
    summary="Normal(loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Gaussian log-density :math:`\log N(y \mid loc, \sigma^2)`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: mean, broadcastable to ``y.shape`` without enlarging it.
      scale: standard deviation :math:`\sigma > 0` (default 1); or exactly one of
      log_scale: :math:`\log\sigma`, var: :math:`\sigma^2`, log_var: :math:`\log\sigma^2`.

    Returns:
      Array of ``y.shape`` in the inputs' floating dtype (float32 for 16-bit inputs).
      NaN where ``scale`` or ``var`` is <= 0 or NaN.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.gaussian.log_prob(0.0, 0.0, 1.0))  # -log(2 pi) / 2
      -0.9189385...
      >>> float(nllax.gaussian.log_prob(1.0, 1.0, log_scale=-90.0))  # sigma = 8e-40
      89.08106...
    """,
    "nll": r"""Gaussian negative log-likelihood, reduced.

    :math:`\mathrm{NLL} = \sum_i w_i \left[\frac{(y_i-\mu_i)^2}{2\sigma_i^2} + \log\sigma_i
    + \tfrac12\log 2\pi\right]` over the observations kept by ``where``.

    Args:
      y, loc, scale, log_scale, var, log_var: as in :func:`log_prob`.
      reduction: ``"sum"`` (default), ``"mean"`` (divided by ``sum(weights * where)``;
        NaN for zero observations) or ``"none"`` (per observation, masked ones 0).
      weights: per-observation weights, finite and ``>= 0`` (a negative, infinite or NaN
        weight makes the result NaN), broadcastable to ``y.shape``.
      where: boolean mask broadcastable to ``y.shape``; False drops the observation from
        the value and the gradient, exactly like indexing.

    Returns:
      A scalar (or ``y.shape`` for ``reduction="none"``).
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
