r"""Laplace likelihood: the likelihood whose NLL is the sum of absolute errors.

.. math::

    \log p(y \mid \mu, \beta) = -\frac{|y - \mu|}{\beta} - \log(2\beta)

With a scalar :math:`\beta` over :math:`n = \sum w` observations

.. math::

    \mathrm{NLL} = \frac{1}{\beta}\,\mathrm{SAE} + n\log(2\beta)
               = \frac{n}{\beta}\,\mathrm{MAE} + n\log(2\beta),

so minimising the MAE is maximum likelihood under Laplace noise, whose location MLE is
the (weighted) median. The objective is not differentiable where a residual is 0: JAX
returns the subgradient 0 there, and its Hessian in ``loc`` is 0 almost everywhere.

Shapes and invalid values as in :mod:`nllax.gaussian`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from nllax import _reduce as R

__all__ = ["log_prob", "nll"]

_FN = "nllax.laplace"
_LOG2 = math.log(2.0)
_ONE = 1.0


def _compute(y, loc, noise, is_log):
    if is_log:
        return -R.abs_(y - loc) * jnp.exp(-noise) - noise - _LOG2, ()
    valid, s, self_poisoned = R.safe_scale(noise)
    return -R.abs_(y - loc) / s - jnp.log(s) - _LOG2, ((valid, R.SCALE_RULE, self_poisoned),)


def log_prob(y: Any, loc: Any, scale: Any = _ONE, *, log_scale: Any = None) -> jax.Array:
    r"""Per-observation Laplace log-density :math:`-|y-\mu|/\beta - \log 2\beta`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: location :math:`\mu`, broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`\beta > 0`, scalar or broadcastable like ``loc``.
      log_scale: alternatively :math:`\log\beta` (unconstrained).

    Returns:
      Array of ``y.shape``; NaN where ``scale <= 0`` or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.laplace.log_prob(1.0, 0.0, 1.0))  # -1 - log 2
      -1.6931471...
    """
    y, loc, noise, is_log = R.prepare_location_scale(
        y, loc, scale, log_scale, None, _FN + ".log_prob", _ONE
    )
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
    r"""Laplace negative log-likelihood, reduced (``reduction``, ``weights``, ``where`` as
    in :func:`nllax.gaussian.nll`).

    :math:`\mathrm{NLL} = \sum_i w_i \left[|y_i-\mu_i|/\beta_i + \log 2\beta_i\right]`.
    """
    fn = _FN + ".nll"
    y, loc, noise, is_log = R.prepare_location_scale(y, loc, scale, log_scale, weights, fn, _ONE)
    return R.finish_nll(
        _FN, _compute, y, (loc, noise, is_log),
        safe=0.0, reduction=reduction, weights=weights, where=where, check_nan=True,
        guarded=() if is_log else (1,),
    )
