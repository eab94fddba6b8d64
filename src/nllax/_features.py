r"""Categorical NLL from features and classifier weights, without the logit matrix.

For features :math:`h_i \in \mathbb{R}^d`, a classifier :math:`W \in \mathbb{R}^{d\times V}`
and a bias :math:`b \in \mathbb{R}^V`, the logits are :math:`z_i = h_i^\top W + b` and

.. math::

    -\log p(y_i \mid h_i) = \log\sum_{j<V} e^{z_{ij}} - z_{i y_i},
    \qquad
    \frac{\partial}{\partial z_{ij}} = \mathrm{softmax}(z_i)_j - [j = y_i],

the categorical NLL of :func:`nllax.categorical.nll` (cross entropy with integer labels,
:math:`a = 1`, :math:`b = 0`). At language-model sizes the ``(batch, V)`` matrix of logits
is the largest object of a training step (batch 8192 by V = 131072 is 4 GiB in float32,
and its gradient as much again). Here it never exists: the vocabulary is cut into chunks
of ``chunk_size`` columns, and

* the forward pass computes each chunk's logits, folds them into a running (online)
  log-sum-exp per observation (running maximum :math:`m_i` and the sum of
  :math:`e^{z_{ij} - m_i}` over the columns other than the first maximum, so that
  :math:`\log\sum_j e^{z_{ij}} = m_i + \mathrm{log1p}(\cdot)` keeps a confident prediction's
  tiny loss) and picks the label's logit from its chunk, then drops the chunk;
* the backward pass (a ``jax.custom_vjp``) recomputes each chunk's logits from the saved
  features and classifier and the two numbers per observation of the log-normaliser,
  :math:`m_i` and :math:`\mathrm{log1p}(\cdot)`, forms
  :math:`g_i(\mathrm{softmax} - \mathrm{onehot})` for the chunk and accumulates
  :math:`\partial h = \sum_c \partial z_c W_c^\top`, writes
  :math:`\partial W_c = h^\top \partial z_c` and :math:`\partial b_c = \sum_i \partial z_{ic}`.

Peak temporary memory is a few ``(batch, chunk_size)`` blocks instead of several
``(batch, V)`` ones (measured in ``bench/features.py``); the work is one more matrix
product than the materialised version's three for value and gradient.

Accuracy. Both this and the materialised computation (``nllax.categorical.nll(labels,
logits=features @ classifier + bias)``) compute every logit as a length-``d`` dot
product plus the bias, accurate to :math:`\delta z_{ij} = \gamma_{d+1}(|h_i|^\top|W| +
|b|)_j`, with :math:`\gamma_n = nu/(1 - nu)` and :math:`u` the unit roundoff (:math:`2^{-24}`
in float32, :math:`2^{-53}` in float64). To first order, each then gives
:math:`z_{ij} - \mathrm{lse}_i` to within

.. math::

    \epsilon_{ij} = (1 - p_{ij})\,\delta z_{ij} + \sum_{k \ne j} p_{ik}\,\delta z_{ik}
    + (\gamma_{2V+16} + 5u)\min(1, \ell_i) + u\,\ell_i + 2u\,|z_{ij} - m_i|,

with :math:`p` the softmax, :math:`m_i` the row maximum and
:math:`\ell_i = \mathrm{lse}_i - m_i`: the observation's term is within
:math:`\epsilon_{iy_i}` (a relative accuracy for a confident prediction, whose term is
tiny), each softmax entry within the factor :math:`e^{2\epsilon_{ij} + 8u} - 1`, and the
gradients add the rounding of their sums, over ``V`` for :math:`\partial h` and over the
batch for :math:`\partial W` and :math:`\partial b` (:math:`\gamma_{V+2}` and
:math:`\gamma_{N+2}` times the sum of the absolute products). The two implementations
differ by at most the sum of their two bounds; ``tests/test_features.py`` evaluates the
bound elementwise and checks both against a float64 reference with it.

Conventions: ``classifier`` is ``(d, V)`` (``features @ classifier``), or ``(V, d)`` with
``vocab_axis=0`` (the layout of a tied input embedding, ``features @ embedding.T``,
without a transposed copy). Computation is in the widest floating dtype of features,
classifier and bias; float16/bfloat16 inputs are computed in float32 (the classifier is
converted one chunk at a time, never copied whole) and the result is the float32 value
of the inputs converted to float32. The matrix products use JAX's default precision, as
``features @ classifier`` does.

Validity as in the categorical family: a label outside ``[0, V)`` gives NaN (value and
gradients); a masked observation (``where=False``) is ignored exactly, in value and
gradient, whatever its label and features. ``-inf`` bias entries exclude their classes
exactly; a ``+inf`` or NaN logit (a ``+inf`` bias entry, NaN features, overflow) gives NaN
for its observation (the family takes the limit for ``+inf``; here that case is not worth
a second pass over the chunk). Only first-order reverse mode is defined
(``jax.grad``, ``jax.vjp``, ``jax.value_and_grad``; not ``jax.jvp`` or ``jax.hessian``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import checkify

from nllax import _reduce as R

__all__ = ["nll_from_features"]

_FN = "nllax.categorical.nll_from_features"
# Elements of one (batch, chunk) block of logits for the default chunk size: 2**24
# float32 values are 64 MiB (batch 8192: 2048 columns).
_CHUNK_ELEMENTS = 2**24
_MIN_CHUNK = 128


def _default_chunk(n: int, v: int) -> int:
    c = _CHUNK_ELEMENTS // max(n, 1)
    c = max(_MIN_CHUNK, 1 << (max(c, 1).bit_length() - 1))  # a power of two
    return min(c, v)


def _logits(f, w, b, start, size, vocab_axis):
    """``(n, size)`` logits of the columns ``start:start + size``, in f's dtype."""
    wc = lax.dynamic_slice_in_dim(w, start, size, axis=vocab_axis).astype(f.dtype)
    contract = 0 if vocab_axis == 1 else 1
    z = lax.dot_general(f, wc, (((1,), (contract,)), ((), ())))
    if b is not None:
        z = z + lax.dynamic_slice_in_dim(b, start, size)
    return z, wc


def _for_chunks(step, carry, v, chunk):
    """``step(carry, start, size)`` over the chunks: a scan over the full ones, then the
    ragged last one (never padded, so no copy of the classifier is made)."""
    n_full, rem = divmod(v, chunk)
    if n_full == 1:
        carry = step(carry, 0, chunk)
    elif n_full > 1:
        carry, _ = lax.scan(lambda c, s: (step(c, s, chunk), None), carry,
                            jnp.arange(n_full, dtype=jnp.int32) * chunk)
    if rem:
        carry = step(carry, n_full * chunk, rem)
    return carry


def _forward(f, w, b, labels, chunk, vocab_axis):
    """Per-observation ``(m, rest, z_label)``: the running maximum, the sum of
    ``exp(z - m)`` over all columns but the first maximum, and the label's logit."""
    n, dt = f.shape[0], f.dtype
    v = w.shape[vocab_axis]
    neg_inf = jnp.array(-jnp.inf, dt)

    def step(carry, start, size):
        m, rest, z_label = carry
        z, _ = _logits(f, w, b, start, size, vocab_axis)
        cm = jnp.max(z, axis=1)
        first = jnp.argmax(z, axis=1)
        cm_safe = jnp.where(jnp.isfinite(cm), cm, jnp.zeros((), dt))  # an all -inf chunk
        e = jnp.exp(z - cm_safe[:, None])
        crest = jnp.sum(jnp.where(jnp.arange(size) == first[:, None], jnp.zeros((), dt), e),
                        axis=1)
        rel = labels - start
        here = (rel >= 0) & (rel < size)
        zl = jnp.take_along_axis(z, jnp.clip(rel, 0, size - 1)[:, None], axis=1)[:, 0]
        z_label = jnp.where(here, zl, z_label)
        # Merge (m, rest) with the chunk's (cm, crest); a tie keeps the earlier maximum,
        # the first one overall, as the family does. No autodiff passes through here.
        up = cm > m
        down = jnp.exp(jnp.where(cm == -jnp.inf, neg_inf, cm - m))  # 0 for an all -inf chunk
        rest = jnp.where(up, crest + (1 + rest) * jnp.exp(m - cm_safe), rest + (1 + crest) * down)
        return jnp.maximum(m, cm), rest, z_label

    init = (jnp.full((n,), -jnp.inf, dt), jnp.zeros((n,), dt), jnp.zeros((n,), dt))
    return _for_chunks(step, init, v, chunk)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _terms(f, w, b, labels, chunk, vocab_axis):
    m, rest, z_label = _forward(f, w, b, labels, chunk, vocab_axis)
    return (m - z_label) + jnp.log1p(rest)


def _terms_fwd(f, w, b, labels, chunk, vocab_axis):
    m, rest, z_label = _forward(f, w, b, labels, chunk, vocab_axis)
    log1p_rest = jnp.log1p(rest)
    # m and log1p(rest) kept apart: softmax = exp((z - m) - log1p(rest)) then rounds
    # relative to the shifted logits, not to |m| (as the family's log-softmax does).
    return (m - z_label) + log1p_rest, (f, w, b, labels, m, log1p_rest)


def _terms_bwd(chunk, vocab_axis, res, g):
    f, w, b, labels, m, log1p_rest = res
    v = w.shape[vocab_axis]
    dt = f.dtype

    def step(carry, start, size):
        df, dw, db = carry
        z, wc = _logits(f, w, b, start, size, vocab_axis)
        onehot = jnp.arange(size) == (labels - start)[:, None]
        p = jnp.exp((z - m[:, None]) - log1p_rest[:, None])
        dz = g[:, None] * (p - onehot.astype(dt))
        if vocab_axis == 1:  # wc (d, size)
            df = df + dz @ wc.T
            dwc = f.T @ dz
        else:  # wc (size, d)
            df = df + dz @ wc
            dwc = dz.T @ f
        dw = lax.dynamic_update_slice_in_dim(dw, dwc.astype(w.dtype), start, axis=vocab_axis)
        if db is not None:
            db = lax.dynamic_update_slice_in_dim(db, jnp.sum(dz, axis=0), start, axis=0)
        return df, dw, db

    init = (jnp.zeros_like(f), jnp.zeros_like(w), None if b is None else jnp.zeros_like(b))
    df, dw, db = _for_chunks(step, init, v, chunk)
    return df, dw, db, None


_terms.defvjp(_terms_fwd, _terms_bwd)


def _floating(x: Any, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{_FN}: `{name}` has dtype {x.dtype}; it is a model parameter and must be a "
            f"floating array (for example `{name}.astype(jnp.float32)`)."
        )
    return x


def nll_from_features(
    labels: Any,
    features: Any,
    classifier: Any,
    *,
    bias: Any = None,
    chunk_size: int | None = None,
    vocab_axis: int = -1,
    reduction: str = "sum",
    weights: Any = None,
    where: Any = None,
) -> jax.Array:
    r"""Categorical NLL of ``labels`` under the logits ``features @ classifier + bias``,
    computed chunk by chunk over the vocabulary, never holding the ``(batch, V)`` logits.

    Equals ``nllax.categorical.nll(labels, logits=features @ classifier + bias,
    reduction=reduction, weights=weights, where=where)``, in value and in the gradients
    with respect to ``features``, ``classifier`` and ``bias``, to rounding: both are
    within a first-order bound of the exact result (each logit's dot-product error
    :math:`\gamma_{d+1}(|h|^\top|W| + |b|)`, weighted by the softmax, plus the rounding of
    the sums over V and over the batch; stated in full in ``nllax._features``), so they
    differ by at most twice it. The ``(batch, V)`` logits are never held: a few
    ``(batch, chunk_size)`` blocks at a time (the value and gradient at batch 8192,
    d 512, V 131072 in float32 need 84 MiB of temporaries against 8 GiB; see
    ``bench/FEATURES.md``).

    .. math::

        \mathrm{NLL} = \sum_i w_i \Big(\log\sum_{j<V} e^{z_{ij}} - z_{i y_i}\Big),
        \qquad z_i = h_i^\top W + b

    Args:
      labels: integer class indices, shape ``batch`` (any number of axes).
      features: ``batch + (d,)`` floating array (the last hidden layer).
      classifier: ``(d, V)`` floating array, or ``(V, d)`` with ``vocab_axis=0`` (a tied
        embedding matrix, used without a transposed copy).
      bias: optional ``(V,)`` floating array; ``-inf`` entries exclude a class exactly.
      chunk_size: vocabulary columns per chunk (a positive int). Default: the power of
        two for which one ``(batch, chunk)`` block holds at most :math:`2^{24}` values
        (64 MiB in float32; 2048 columns for a batch of 8192), at least 128 and at most
        ``V``. ``V`` need not be a multiple of it.
      vocab_axis: the vocabulary axis of ``classifier``: ``-1``/``1`` for ``(d, V)``,
        ``0`` for ``(V, d)``.
      reduction: ``"sum"``, ``"mean"`` (divided by ``sum(weights * where)``) or
        ``"none"`` (per observation, masked ones 0).
      weights: optional, broadcastable to ``labels.shape``.
      where: optional boolean mask, broadcastable to ``labels.shape``.

    Returns:
      A scalar (``"sum"``, ``"mean"``) or an array of ``labels.shape`` (``"none"``), in
      the computation dtype (float32 for 16-bit inputs). NaN where a label outside
      ``[0, V)`` is not masked (and NaN gradients); under :func:`nllax.checked` that
      raises instead.

    Raises:
      TypeError / ValueError at trace time: non-integer labels, non-floating features,
      classifier or bias, mismatched shapes (naming the argument), a bad ``chunk_size``,
      ``vocab_axis``, ``reduction`` or mask.

    Differentiable in reverse mode (``jax.grad``, ``jax.value_and_grad``, ``jax.vjp``),
    under ``jit`` and ``vmap``; not in forward mode (``jax.jvp``, ``jax.hessian``).

    Example:
      >>> import jax, jax.numpy as jnp, nllax
      >>> h = jax.random.normal(jax.random.key(0), (4, 8))        # batch 4, d = 8
      >>> W = jax.random.normal(jax.random.key(1), (8, 1000))     # V = 1000
      >>> y = jnp.array([3, 999, 0, 512])
      >>> a = nllax.categorical.nll_from_features(y, h, W, chunk_size=256)
      >>> b = nllax.categorical.nll(y, logits=h @ W)
      >>> bool(jnp.allclose(a, b, rtol=1e-5))
      True
    """
    if labels is None:
        raise TypeError(f"{_FN}: `labels` is required.")
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{_FN}: `labels` must be integer class indices, got dtype {labels.dtype}; pass "
            f"`labels.astype(jnp.int32)`."
        )
    features = _floating(features, "features")
    classifier = _floating(classifier, "classifier")
    if bias is not None:
        bias = _floating(bias, "bias")
    if classifier.ndim != 2:
        raise ValueError(
            f"{_FN}: `classifier` must be a matrix, (d, V) or (V, d) with vocab_axis=0, got "
            f"shape {classifier.shape}."
        )
    if isinstance(vocab_axis, bool) or vocab_axis not in (-2, -1, 0, 1):
        raise ValueError(f"{_FN}: `vocab_axis` must be 0 or 1 (or -1, -2), got {vocab_axis!r}.")
    vocab_axis = vocab_axis % 2
    v = classifier.shape[vocab_axis]
    d = classifier.shape[1 - vocab_axis]
    layout = "(d, V)" if vocab_axis == 1 else "(V, d)"
    if v == 0:
        raise ValueError(f"{_FN}: `classifier` has no classes (shape {classifier.shape}).")
    if features.ndim == 0 or features.shape[-1] != d:
        raise ValueError(
            f"{_FN}: `features` has shape {features.shape}, whose last axis must be the "
            f"feature size d = {d} of `classifier` {classifier.shape} (layout {layout}, "
            f"vocab_axis={vocab_axis}); for a (V, d) tied embedding pass vocab_axis=0."
        )
    if features.shape[:-1] != labels.shape:
        raise ValueError(
            f"{_FN}: `features` has shape {features.shape}, whose batch shape "
            f"{features.shape[:-1]} must equal `labels`'s shape {labels.shape} (one feature "
            f"vector per label)."
        )
    if bias is not None and bias.shape != (v,):
        raise ValueError(
            f"{_FN}: `bias` has shape {bias.shape}; it must be ({v},), one entry per class "
            f"of `classifier` {classifier.shape}."
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(f"{_FN}: `chunk_size` must be a positive int, got {chunk_size!r}.")
    n = int(np.prod(labels.shape, dtype=np.int64))
    chunk = _default_chunk(n, v) if chunk_size is None else min(int(chunk_size), v)

    dtype = R.float_dtype(features, classifier, bias, weights)
    mask = R.as_mask(where, labels.shape, _FN)
    f = features.reshape(n, d).astype(dtype)
    lab = labels.reshape(n)
    if mask is not None:  # masked rows: a valid label and zero features, so nothing leaks
        m = mask.reshape(n)
        lab = jnp.where(m, lab, 0)
        f = jnp.where(m[:, None], f, jnp.zeros((), dtype))
    valid = (lab >= 0) & (lab < v)
    checkify.debug_check(
        jnp.all(valid), f"{_FN}: `labels` must be integers in [0, {v}) (a label outside the "
        f"classes)")
    lab = jnp.where(valid, lab, 0).astype(jnp.int32)
    b = None if bias is None else bias.astype(dtype)
    w = classifier if jnp.finfo(classifier.dtype).bits < 32 or classifier.dtype == dtype \
        else classifier.astype(dtype)
    terms = _terms(f, w, b, lab, chunk, vocab_axis)
    # NaN where the label is invalid, with a NaN cotangent flowing back into every
    # gradient (plain arithmetic: a select would give a zero gradient there).
    nan_or = jnp.where(valid, jnp.zeros((), dtype), jnp.full((), jnp.nan, dtype))
    terms = (terms * (1 + nan_or)).reshape(labels.shape)
    return R.reduce(terms, reduction=reduction, weights=weights, mask=mask, fn=_FN)
