r"""Categorical likelihood: the likelihood whose NLL is cross entropy with integer labels.

.. math::

    \log p(y = k \mid z) = z_k - \log\sum_j e^{z_j} = \mathrm{log\_softmax}(z)_k

over the class axis ``axis`` of the logits :math:`z` (or :math:`\log p_k` for
probabilities). The NLL *is* the cross entropy with logits, summed over observations:
:math:`\mathrm{NLL} = 1\cdot\mathrm{CE} + 0`, and
:math:`\partial\,\mathrm{NLL}/\partial z = \mathrm{softmax}(z) - \mathrm{onehot}(y)`.

Numerics: with :math:`m = \max_j z_j`, :math:`d = z_y - m` and
:math:`T = \sum_{j \ne y} e^{z_j - m}` (the label's own term left out),
:math:`\log p_y = d - \mathrm{log1p}\big(T + \mathrm{expm1}(d)\big)`. So a confident
correct prediction keeps its tiny log-probability (:math:`-T`, not
:math:`\log(1 + T) = 0`), tied logits of any size give exactly :math:`-\log K`, and
:math:`-\infty` logits (masked classes) are exact. A logit of :math:`+\infty` (an
overflow upstream), a NaN logit and a row of only :math:`-\infty` logits give NaN, and
``nllax.checked`` names them. (Wave 1 returned the limit for :math:`+\infty` logits; the
branch that needs costs 16-20% of every call on XLA:CPU, measured, for an input no model
produces on purpose.) The gradient
:math:`\mathrm{onehot}(y) - \mathrm{softmax}(z)` is written out: one elementwise product
with the one-hot, from the forward pass's own buffer of :math:`e^{z_j - m}` (no second
exponential, no gather/scatter pair), with :math:`1 - p_y = -\mathrm{expm1}(\log p_y)`
exact for a confident label,
and is itself differentiable (Hessian :math:`\mathrm{diag}(p) - pp^\top`).

Labels are integer class indices with the shape of the logits without ``axis``; logits
may also broadcast to that shape (e.g. one ``(K,)`` vector for every observation). A
label outside ``[0, K)`` gives NaN: a negative label never scores the last class and a
label ``>= K`` is never clamped. ``probs`` are used as given, never renormalised; they
must lie in [0, 1] and sum to 1 within ``K * sqrt(eps)`` of their dtype (``K * eps`` for
16-bit inputs, so that a probability vector rounded once to bfloat16 is valid).
"""

from __future__ import annotations

import dataclasses


import jax
import jax.numpy as jnp
import numpy as np

from nllax import _family as F

__all__ = ["log_prob", "nll", "nll_from_features"]


def _take(x, idx):
    return jnp.take_along_axis(x, idx[..., None], axis=-1)[..., 0]


def _forward(z, labels):
    """``(log p_y, e, hit, log-normaliser - max)``: ``e`` holds ``exp(z - max)`` with the
    label's entry set to 0, ``hit`` is the one-hot of the label (see the module docstring)."""
    k = z.shape[-1]
    m = jnp.max(z, axis=-1)
    hit = jnp.arange(k) == labels[..., None]
    e = jnp.where(hit, jnp.zeros((), z.dtype), jnp.exp(z - m[..., None]))
    t = jnp.sum(e, -1)
    d = _take(z, labels) - m
    log1p = jnp.log1p(t + jnp.expm1(d))
    return d - log1p, e, hit, log1p


@jax.custom_jvp
def _lp_logits(z, labels):
    return _forward(z, labels)[0]


@_lp_logits.defjvp
def _lp_logits_jvp(primals, tangents):
    # d log p_y = sum_j (onehot_j - p_j) dz_j, p = softmax(z). Written out as one
    # elementwise product with the one-hot (no gather/scatter pair in the transpose), from
    # the forward's own exclusion buffer (no second exp): p_j = e_j / (1 + T + expm1(d))
    # off the label, and 1 - p_y = -expm1(log p_y) on it (exact for a confident label).
    # Autodiff through the max / exclusion form cost 1.5x optax on XLA:CPU, a gather +
    # scatter-add transpose 1.9x (measured, bench/CORE.md). Itself differentiable (the
    # Hessian diag(p) - p p^T).
    z, labels = primals
    dz, _ = tangents
    out, e, hit, log1p = _forward(z, labels)
    r = jnp.exp(-log1p)
    g = e * r[..., None] - hit.astype(z.dtype) * (-jnp.expm1(out))[..., None]  # p - onehot
    return out, -jnp.sum(g * dz, axis=-1)


def _logits_elem(z):
    return jnp.all(z < jnp.inf, axis=-1) & jnp.any(z > -jnp.inf, axis=-1)


# Check-only (NaN already propagates): names a +inf or NaN logit, or a row of only -inf.
_LOGITS = F.Constraint(
    "logits", "must be < +inf and not all -inf (a +inf or NaN logit, or a row of -inf)",
    _logits_elem, propagates=True, event_ndim=1)


def _log_prob(labels, logits=None, probs=None):
    if probs is None:
        return _lp_logits(logits, labels)
    # `+ 0 * sum(p)`: the whole row enters, so an invalid row has a NaN gradient in every
    # entry, not only in the label's.
    return jnp.log(_take(probs, labels)) + 0.0 * jnp.sum(probs, axis=-1)


def _simplex(k: int, eps: float) -> F.Constraint:
    def elem(p):
        inside = jnp.all((p >= 0) & (p <= 1), axis=-1)
        return inside & (jnp.abs(jnp.sum(p, axis=-1) - 1) <= k * eps)

    return F.Constraint("simplex", "must lie in [0, 1] and sum to 1 over the class axis",
                        elem, safe=1.0 / k, event_ndim=1)


def _prepare(labels, params, options, fn, raw):
    axis = options["axis"]
    name = "logits" if "logits" in params else "probs"
    x = params[name]
    if x.ndim == 0:
        raise ValueError(f"{fn}: `{name}` must have a class axis, got a scalar.")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: `axis`={axis} is out of range for `{name}` of shape {x.shape}.")
    x = jnp.moveaxis(x, axis % x.ndim, -1)
    k = x.shape[-1]
    F.check_batch(x.shape[:-1], f"{name} (without the class axis)", labels.shape, "labels", fn)
    x = jnp.broadcast_to(x, labels.shape + (k,))
    overrides = {"labels": F.labels(k)}
    if name == "probs":
        # Normalisation tolerance from the dtype the probabilities came in (a bfloat16
        # vector rounded once misses 1 by up to K * 2**-9), never tighter than the compute
        # dtype's.
        raw_dt = getattr(raw["probs"], "dtype", None)
        in_info = jnp.finfo(raw_dt if raw_dt is not None and jnp.issubdtype(raw_dt, jnp.floating)
                            else x.dtype)
        if in_info.bits < 32:
            eps = float(in_info.eps)
        else:
            eps = float(np.sqrt(max(float(in_info.eps), float(jnp.finfo(x.dtype).eps))))
        overrides["probs"] = _simplex(k, eps)
    return labels, {name: x}, overrides


family = F.Family(
    name="categorical",
    # the rules with K are made per call by `_prepare`; these state them for the docs
    data=F.Data("labels", dataclasses.replace(
        F.labels(2), message="must be integers in [0, K) (a label outside the classes)"),
        kind="int"),
    params=(
        F.OneOf("logits", (
            F.Param("logits", _LOGITS, keyword_only=True, event_ndim=1,
                    doc="unnormalised log-probabilities, class axis `axis`"),
            F.Param("probs", _simplex(2, 0.0), keyword_only=True, event_ndim=1,
                    to_canonical=jnp.log,
                    from_canonical=lambda z: jax.nn.softmax(z, axis=-1),
                    doc="probabilities summing to 1 over `axis`"),
        )),
    ),
    options=(F.Option("axis", -1, doc="the class axis of logits / probs"),),
    log_prob=lambda labels, logits=None, probs=None, axis=-1: _log_prob(labels, logits, probs),
    prepare=_prepare,
    summary="Categorical(logits)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation categorical log-probability :math:`\log p_{y}`.

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
    """,
    "nll": r"""Categorical negative log-likelihood (= cross entropy with integer labels), reduced
    over observations (``reduction``, ``weights``, ``where`` as in
    :func:`nllax.gaussian.nll`, with the shape of ``labels``).""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)

from nllax._features import nll_from_features as nll_from_features  # noqa: E402
