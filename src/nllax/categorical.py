r"""Categorical likelihood: the likelihood whose NLL is cross entropy with integer labels.

.. math::

    \log p(y = k \mid z) = z_k - \log\sum_j e^{z_j} = \mathrm{log\_softmax}(z)_k

over the class axis ``axis`` of the logits :math:`z` (or :math:`\log p_k` for
probabilities). The NLL *is* the cross entropy with logits, summed over observations:
:math:`\mathrm{NLL} = 1\cdot\mathrm{CE} + 0`, and
:math:`\partial\,\mathrm{NLL}/\partial z = \mathrm{softmax}(z) - \mathrm{onehot}(y)`.

Numerics: with :math:`m = \max_j z_j` (attained first at :math:`a`),
:math:`\log\sum_j e^{z_j} = m + \mathrm{log1p}\big(\mathrm{expm1}(z_a - m)
+ \sum_{j \ne a} e^{z_j - m}\big)`, so a confident prediction keeps its tiny
log-probability (no :math:`\log(1 + 10^{-10}) = 0`), tied logits of any size give exactly
:math:`-\log K`, and :math:`-\infty` logits (masked classes) are exact. Logits equal to
:math:`+\infty` are taken as the limit (the :math:`+\infty` classes share all the mass).

Labels are integer class indices with the shape of the logits without ``axis``; logits
may also broadcast to that shape (e.g. one ``(K,)`` vector for every observation). A
label outside ``[0, K)`` gives NaN: a negative label never scores the last class and a
label ``>= K`` is never clamped.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _reduce as R

__all__ = ["log_prob", "nll"]

_FN = "nllax.categorical"
_P_RULE = "`probs` must lie in [0, 1] and sum to 1 over the class axis"


def _label_rule(k: int) -> str:
    return f"`labels` must be integers in [0, {k}) (a label outside the classes)"


def _take(x, idx):
    return jnp.take_along_axis(x, idx[..., None], axis=-1)[..., 0]


def _compute_logits(labels, z):
    # z: (..., K) with the class axis last and the labels' batch shape.
    k = z.shape[-1]
    valid = (labels >= 0) & (labels < k)
    lab = jnp.where(valid, labels, 0)
    # +inf logits: take the limit, in which the +inf classes share all the mass.
    top_inf = jnp.any(z == jnp.inf, axis=-1, keepdims=True)
    z = jnp.where(top_inf, jnp.where(z == jnp.inf, 0.0, -jnp.inf).astype(z.dtype), z)
    a = jnp.argmax(z, axis=-1)
    m = jax.lax.stop_gradient(_take(z, a))
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros((), z.dtype))  # all -inf: NaN below
    shifted = z - m[..., None]
    is_a = jnp.arange(k) == a[..., None]
    rest = jnp.sum(jnp.where(is_a, 0.0, jnp.exp(shifted)), axis=-1)
    log_norm = jnp.log1p(jnp.expm1(_take(shifted, a)) + rest)
    lp = _take(shifted, lab) - log_norm
    return lp, ((valid, _label_rule(k)),)


def _compute_probs(labels, p, *, eps):
    k = p.shape[-1]
    valid = (labels >= 0) & (labels < k)
    lab = jnp.where(valid, labels, 0)
    p_ok = jnp.all((p >= 0) & (p <= 1), axis=-1) & (jnp.abs(jnp.sum(p, axis=-1) - 1) <= k * eps)
    p_ok = jnp.broadcast_to(p_ok, labels.shape)
    p_safe = jnp.where(p_ok[..., None], p, jnp.full((), 1.0 / k, p.dtype))
    return jnp.log(_take(p_safe, lab)), ((valid, _label_rule(k)), (p_ok, _P_RULE))


def _prepare(labels, logits, probs, axis, weights, fn):
    R.exactly_one(logits, "logits", probs, "probs", fn)
    name, param = ("logits", logits) if probs is None else ("probs", probs)
    if labels is None:
        raise TypeError(f"{fn}: `labels` is required.")
    R.check_not_complex(labels, "labels", fn)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: `labels` must be integer class indices, got dtype {labels.dtype}; pass "
            f"`labels.astype(jnp.int32)` (for one-hot or soft targets use "
            f"`nllax.losses.cross_entropy`'s documented form or the Bernoulli family)."
        )
    dtype = R.float_dtype(param, weights)
    param = R.as_param(param, name, fn, dtype)
    if param.ndim == 0:
        raise ValueError(f"{fn}: `{name}` must have a class axis, got a scalar.")
    if not -param.ndim <= axis < param.ndim:
        raise ValueError(f"{fn}: `axis`={axis} is out of range for `{name}` of shape {param.shape}.")
    axis = axis % param.ndim
    param = jnp.moveaxis(param, axis, -1)
    R.check_fits(
        jnp.zeros(param.shape[:-1]), f"{name} (without the class axis)", labels.shape, "labels", fn
    )
    param = jnp.broadcast_to(param, labels.shape + param.shape[-1:])
    if probs is None:
        return labels, param, _compute_logits
    # Normalisation tolerance from the dtype the probabilities came in (a bfloat16 vector
    # rounded once misses 1 by up to K * 2**-9), never tighter than the compute dtype's.
    in_info = jnp.finfo(R._dtype_of(probs) or param.dtype)
    if in_info.bits < 32:
        eps = float(in_info.eps)  # sqrt(eps) would exceed 2**-4 for 16 bits
    else:
        eps = float(np.sqrt(max(float(in_info.eps), float(jnp.finfo(param.dtype).eps))))
    return labels, param, functools.partial(_compute_probs, eps=eps)


def log_prob(
    labels: Any, *, logits: Any = None, probs: Any = None, axis: int = -1
) -> jax.Array:
    r"""Per-observation categorical log-probability :math:`\log p_{y}`.

    Args:
      labels: integer class indices, shape ``batch``.
      logits: unnormalised log-probabilities with a class axis ``axis`` of size K; the
        rest broadcasts to ``labels.shape``. Or
      probs: probabilities in [0, 1] summing to 1 over ``axis`` (used as given, never
        renormalised). Exactly one of the two.
      axis: the class axis of ``logits``/``probs`` (default last).

    Returns:
      Array of ``labels.shape``; NaN for labels outside ``[0, K)`` or invalid ``probs``.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.categorical.log_prob(2, logits=jnp.zeros(4)))  # log(1/4)
      -1.3862943...
    """
    fn = _FN + ".log_prob"
    labels, param, compute = _prepare(labels, logits, probs, axis, None, fn)
    return R.finish_log_prob(_FN, compute, labels, (param,),
                             guarded=() if probs is None else (0,))


def nll(
    labels: Any,
    *,
    logits: Any = None,
    probs: Any = None,
    axis: int = -1,
    reduction: str = "sum",
    weights: Any = None,
    where: Any = None,
) -> jax.Array:
    r"""Categorical negative log-likelihood (= cross entropy with integer labels), reduced
    over observations (``reduction``, ``weights``, ``where`` as in
    :func:`nllax.gaussian.nll`, with the shape of ``labels``)."""
    fn = _FN + ".nll"
    labels, param, compute = _prepare(labels, logits, probs, axis, weights, fn)
    return R.finish_nll(
        _FN, compute, labels, (param,), safe=0, reduction=reduction, weights=weights, where=where,
        guarded=() if probs is None else (0,),
    )

from nllax._features import nll_from_features as nll_from_features
