r"""Gaussian (Normal) likelihood: the likelihood whose NLL is the sum of squared errors.

.. math::

    \log p(y \mid \mu, \sigma) = -\frac{(y - \mu)^2}{2\sigma^2} - \log\sigma
        - \tfrac12\log(2\pi)

With a scalar :math:`\sigma` over :math:`n` observations (:math:`n = \sum w` with weights)

.. math::

    \mathrm{NLL} = \frac{1}{2\sigma^2}\,\mathrm{SSE} + \frac{n}{2}\log(2\pi\sigma^2)
               = \frac{n}{2\sigma^2}\,\mathrm{MSE} + \frac{n}{2}\log(2\pi\sigma^2).

With one :math:`\sigma_i` per observation (heteroscedastic) the NLL is *not* an affine
function of the SSE: it is a weighted least squares with weights :math:`1/\sigma_i^2`
plus :math:`\sum_i \log\sigma_i`.

Shapes: ``loc`` and ``scale`` (or ``log_scale``) broadcast to ``y``'s shape without
enlarging it: a scalar, a per-observation array of ``y``'s shape, or e.g. a per-column
``(d,)`` array for ``(n, d)`` data. ``(n,)`` data against an ``(n, 1)`` prediction is a
``ValueError``. ``scale <= 0`` or NaN gives NaN (value and gradient); ``log_scale`` is the
unconstrained parametrisation for a learned noise scale.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from nllax import _reduce as R

__all__ = ["log_prob", "nll"]

_FN = "nllax.gaussian"
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_ONE = 1.0  # default scale; identity-compared to tell "not given" from an explicit value


def _compute(y, loc, noise, is_log):
    if is_log:
        # log-scale: always a valid scale when finite; NaN/inf propagate on their own.
        z = (y - loc) * jnp.exp(-noise)
        return -0.5 * jnp.square(z) - noise - _HALF_LOG_2PI, ()
    valid, s, self_poisoned = R.safe_scale(noise)
    z = (y - loc) / s
    return -0.5 * jnp.square(z) - jnp.log(s) - _HALF_LOG_2PI, ((valid, R.SCALE_RULE, self_poisoned),)


def log_prob(
    y: Any, loc: Any, scale: Any = _ONE, *, log_scale: Any = None
) -> jax.Array:
    r"""Per-observation Gaussian log-density :math:`\log N(y \mid loc, scale^2)`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: mean, broadcastable to ``y.shape`` without enlarging it.
      scale: standard deviation :math:`\sigma > 0`, scalar or broadcastable like ``loc``.
      log_scale: alternatively :math:`\log\sigma` (unconstrained; for learned scales).

    Returns:
      Array of ``y.shape`` in the inputs' floating dtype (float32 for 16-bit inputs).
      NaN where ``scale <= 0`` or NaN.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.gaussian.log_prob(0.0, 0.0, 1.0))  # -log(2 pi) / 2
      -0.9189385...
    """
    y, loc, noise, is_log = R.prepare_location_scale(y, loc, scale, log_scale, None, _FN + ".log_prob", _ONE)
    return R.finish_log_prob(_FN, _compute, y, (loc, noise, is_log), check_nan=True,
        guarded=() if is_log else (1,))


def nll(
    y: Any,
    loc: Any,
    scale: Any = _ONE,
    *,
    log_scale: Any = None,
    reduction: str = "sum",
    weights: Any = None,
    where: Any = None,
) -> jax.Array:
    r"""Gaussian negative log-likelihood, reduced.

    :math:`\mathrm{NLL} = \sum_i w_i \left[\frac{(y_i-\mu_i)^2}{2\sigma_i^2} + \log\sigma_i
    + \tfrac12\log 2\pi\right]` over the observations kept by ``where``.

    Args:
      y, loc, scale, log_scale: as in :func:`log_prob`.
      reduction: ``"sum"`` (default), ``"mean"`` (divided by ``sum(weights * where)``;
        NaN for zero observations) or ``"none"`` (per observation, masked ones 0).
      weights: per-observation weights, broadcastable to ``y.shape``.
      where: boolean mask broadcastable to ``y.shape``; False drops the observation from
        the value and the gradient, exactly like indexing.

    Returns:
      A scalar (or ``y.shape`` for ``reduction="none"``).
    """
    fn = _FN + ".nll"
    y, loc, noise, is_log = R.prepare_location_scale(y, loc, scale, log_scale, weights, fn, _ONE)
    return R.finish_nll(
        _FN, _compute, y, (loc, noise, is_log),
        safe=0.0, reduction=reduction, weights=weights, where=where, check_nan=True,
        guarded=() if is_log else (1,),
    )
