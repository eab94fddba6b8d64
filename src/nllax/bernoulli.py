r"""Bernoulli likelihood: the likelihood whose NLL is binary cross entropy.

.. math::

    \log p(y \mid z) = y \log\sigma(z) + (1-y)\log\sigma(-z),
    \qquad \log\sigma(z) = -\mathrm{softplus}(-z),

with logits :math:`z` (or probabilities :math:`p = \sigma(z)`:
:math:`y\log p + (1-y)\log(1-p)`). The NLL *is* the binary cross entropy with logits,
summed: :math:`\mathrm{NLL} = 1\cdot\mathrm{BCE} + 0`, and
:math:`\partial\,\mathrm{NLL}/\partial z = \sigma(z) - y`.

Both terms are computed in log space, so neither cancels: with :math:`y = 1` and
:math:`z = 20` the value is :math:`-2.06\times 10^{-9}` to full float32 precision (the
common form :math:`yz - \mathrm{softplus}(z)` returns 0 there). Logits of :math:`\pm\infty`
give exact limits (0 or :math:`-\infty`) with finite gradients and Hessians.

``y`` may be a soft target in [0, 1] (the cross entropy of two Bernoulli distributions);
targets outside [0, 1] and probabilities outside [0, 1] give NaN.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from nllax import _reduce as R

__all__ = ["log_prob", "nll"]

_FN = "nllax.bernoulli"
_Y_RULE = "`y` must lie in [0, 1] (a target outside [0, 1] or NaN)"
_P_RULE = "`probs` must lie in [0, 1] (a probability outside [0, 1] or NaN)"


def _xmul(y, t):
    """``y * t`` with ``0 * (-inf) = 0`` (an impossible outcome that was not observed)."""
    return jnp.where(y == 0, jnp.zeros((), t.dtype), y * t)


def _compute_logits(y, z):
    valid = (y >= 0) & (y <= 1)
    y = jnp.where(valid, y, jnp.zeros((), y.dtype))
    lp = _xmul(y, jax.nn.log_sigmoid(z)) + _xmul(1 - y, jax.nn.log_sigmoid(-z))
    return lp, ((valid, _Y_RULE),)


def _compute_probs(y, p):
    y_ok = (y >= 0) & (y <= 1)
    p_ok = (p >= 0) & (p <= 1)
    y = jnp.where(y_ok, y, jnp.zeros((), y.dtype))
    p = jnp.where(p_ok, p, jnp.full((), 0.5, p.dtype))
    lp = _xmul(y, jnp.log(p)) + _xmul(1 - y, jnp.log1p(-p))
    return lp, ((y_ok, _Y_RULE), (p_ok, _P_RULE))


def _prepare(y, logits, probs, weights, fn):
    R.exactly_one(logits, "logits", probs, "probs", fn)
    name, param = ("logits", logits) if probs is None else ("probs", probs)
    dtype = R.float_dtype(y, param, weights)
    y = R.as_data(y, "y", fn, dtype)
    param = R.as_param(param, name, fn, dtype)
    R.check_fits(param, name, y.shape, "y", fn)
    compute = _compute_logits if probs is None else _compute_probs
    return y, param, compute


def log_prob(y: Any, *, logits: Any = None, probs: Any = None) -> jax.Array:
    r"""Per-observation Bernoulli log-probability :math:`y\log p + (1-y)\log(1-p)`.

    Args:
      y: outcomes in [0, 1] (0/1, bool, or soft targets), any shape.
      logits: :math:`z = \log(p/(1-p))`, broadcastable to ``y.shape``; or
      probs: :math:`p \in [0, 1]`. Exactly one of the two.

    Returns:
      Array of ``y.shape``; NaN for ``y`` or ``probs`` outside [0, 1].

    Example:
      >>> import nllax
      >>> float(nllax.bernoulli.log_prob(1.0, logits=0.0))  # log(1/2)
      -0.6931471...
    """
    y, param, compute = _prepare(y, logits, probs, None, _FN + ".log_prob")
    return R.finish_log_prob(_FN, compute, y, (param,),
                             guarded=() if probs is None else (0,))


def nll(
    y: Any,
    *,
    logits: Any = None,
    probs: Any = None,
    reduction: str = "sum",
    weights: Any = None,
    where: Any = None,
) -> jax.Array:
    r"""Bernoulli negative log-likelihood (= binary cross entropy), reduced
    (``reduction``, ``weights``, ``where`` as in :func:`nllax.gaussian.nll`)."""
    fn = _FN + ".nll"
    y, param, compute = _prepare(y, logits, probs, weights, fn)
    return R.finish_nll(
        _FN, compute, y, (param,), safe=0.0, reduction=reduction, weights=weights, where=where,
        guarded=() if probs is None else (0,),
    )
