"""Argument handling shared by every family and loss: dtypes, shapes, masks, reductions.

The family pipeline (:mod:`nllax._family`) uses these; they are also the small stable
helpers other modules (the chunked cross entropy, the equivalence constants) build on.
`reduction` / `weights` / `where` mean the same thing everywhere:

* ``where`` (boolean mask, broadcastable to the data's shape) drops observations exactly
  as boolean indexing would, for values *and* gradients: masked data are replaced by a
  harmless value before anything is computed, so a padded label of -1 or a NaN in a
  masked slot cannot leak a NaN into the gradient.
* ``weights`` (broadcastable to the data's shape) multiply each observation's term.
* ``reduction="sum"`` sums; ``"mean"`` divides by the (weighted, masked) count
  ``sum(weights * where)``, so an empty reduction gives NaN (0 / 0); ``"none"`` returns
  the per-observation terms, with masked ones set to 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

REDUCTIONS = ("sum", "mean", "none")


def _is_weak(x: Any) -> bool:
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return True
    aval = getattr(x, "aval", None)
    return bool(getattr(x, "weak_type", False) or getattr(aval, "weak_type", False))


def _dtype_of(x: Any) -> np.dtype | None:
    if _is_weak(x) or x is None:
        return None
    return np.dtype(jnp.asarray(x).dtype) if not hasattr(x, "dtype") else np.dtype(x.dtype)


def float_dtype(*xs: Any) -> np.dtype:
    """The computation dtype: the widest floating dtype among ``xs`` (weak scalars and
    integer data do not count), float32 for float16/bfloat16, and JAX's default float
    when no input is floating."""
    widest = None
    for x in xs:
        dt = _dtype_of(x)
        if dt is None or not jnp.issubdtype(dt, jnp.floating):
            continue
        if widest is None or dt.itemsize > widest.itemsize:
            widest = dt
    if widest is None:
        return np.dtype(jnp.zeros((), dtype=float).dtype)
    if widest.itemsize < 4:
        return np.dtype(jnp.float32)
    # NumPy float64 data without x64: JAX computes in float32, and so do we (asking for
    # float64 there would only warn and truncate)
    return np.dtype(jax.dtypes.canonicalize_dtype(widest))


def check_not_complex(x: Any, name: str, fn: str) -> None:
    dt = _dtype_of(x)
    if isinstance(x, complex) or (dt is not None and jnp.issubdtype(dt, jnp.complexfloating)):
        raise TypeError(f"{fn}: `{name}` must be real, got a complex value.")


def as_data(x: Any, name: str, fn: str, dtype: np.dtype) -> jax.Array:
    """Observed data: bool, integer and floating inputs are accepted and cast."""
    if x is None:
        raise TypeError(f"{fn}: `{name}` is required.")
    check_not_complex(x, name, fn)
    return jnp.asarray(x).astype(dtype)


def as_param(x: Any, name: str, fn: str, dtype: np.dtype, hint: str = "") -> jax.Array:
    """A model parameter (prediction, scale, logits...): floating arrays or Python
    numbers. An integer or bool *array* is almost always a bug (a rounded prediction, a
    label passed in the wrong place), so it is refused rather than silently promoted."""
    check_not_complex(x, name, fn)
    if not _is_weak(x):
        dt = _dtype_of(x)
        if dt is not None and not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(
                f"{fn}: `{name}` has dtype {dt}; it is a model parameter and must be a "
                f"floating array (for example `{name}.astype(jnp.float32)`){hint}."
            )
    return jnp.asarray(x).astype(dtype)


def check_fits(param: jax.Array, pname: str, shape: tuple[int, ...], dname: str, fn: str) -> None:
    """``param`` must broadcast to the data's ``shape`` without enlarging it.

    This is what refuses ``(n,)`` data against an ``(n, 1)`` prediction, which NumPy
    broadcasting would silently turn into an ``(n, n)`` loss."""
    try:
        out = jnp.broadcast_shapes(param.shape, shape)
    except ValueError:
        out = None
    if out != tuple(shape):
        raise ValueError(
            f"{fn}: `{pname}` has shape {tuple(param.shape)}, which does not broadcast to "
            f"`{dname}`'s shape {tuple(shape)} without changing it. Pass `{pname}` with the "
            f"same shape as `{dname}` (or a scalar / per-observation shape that broadcasts "
            f"to it); reshape explicitly if a trailing axis of size 1 is the cause."
        )


def exactly_one(a: Any, aname: str, b: Any, bname: str, fn: str) -> None:
    if (a is None) == (b is None):
        raise ValueError(f"{fn}: pass exactly one of `{aname}=` or `{bname}=`.")


def select(ok: jax.Array, x: jax.Array, fill: Any) -> jax.Array:
    """``jnp.where(ok, x, fill)`` in ``x``'s dtype (``fill`` a number or an array that
    broadcasts), as one ``select_n``: ``jnp.where`` is itself a jitted function, so each
    use adds a nested ``jit`` to the caller's program (traced, lowered as a separate
    function and inlined again by XLA), which every compile of every family call pays."""
    fill = jnp.asarray(fill, x.dtype)
    shape = jnp.broadcast_shapes(jnp.shape(ok), x.shape, fill.shape)
    if jnp.shape(ok) != shape:
        ok = jnp.broadcast_to(ok, shape)
    if x.shape != shape:
        x = jnp.broadcast_to(x, shape)
    return lax.select(ok, x, jnp.broadcast_to(fill, shape))


def as_mask(where: Any, shape: tuple[int, ...], fn: str) -> jax.Array | None:
    if where is None:
        return None
    w = jnp.asarray(where)
    if w.dtype != jnp.bool_:
        raise TypeError(
            f"{fn}: `where` must be a boolean mask, got dtype {w.dtype}; use `where=m > 0` "
            f"or pass numeric factors as `weights=`."
        )
    check_fits(w, "where", shape, "data", fn)
    return jnp.broadcast_to(w, shape)


def reduce(
    terms: jax.Array,
    *,
    reduction: str,
    weights: Any,
    mask: jax.Array | None,
    fn: str,
) -> jax.Array:
    """Applies weights, mask and reduction to per-observation ``terms``.

    Masked slots are zeroed in the terms *and* in the weights before they meet, so a NaN
    term or weight in a masked slot reaches neither the value nor the gradient. (This
    helper does not check weights; the family pipeline does.)"""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: `reduction` must be one of {REDUCTIONS}, got {reduction!r}.")
    w = None
    if mask is not None:
        terms = select(mask, terms, 0)
    if weights is not None:
        w = as_param(weights, "weights", fn, terms.dtype)
        check_fits(w, "weights", terms.shape, "data", fn)
        if mask is not None:
            w = select(mask, w, 0)
        terms = terms * w
    if reduction == "none":
        return terms
    total = jnp.sum(terms)
    if reduction == "sum":
        return total
    return total / count(terms.shape, w, mask, terms.dtype)


def count(shape: tuple[int, ...], w: jax.Array | None, mask: jax.Array | None, dtype) -> jax.Array:
    """The number of observations in a reduction: ``sum(weights * where)``."""
    if w is None and mask is None:
        return jnp.asarray(float(np.prod(shape, dtype=np.int64)), dtype)
    ones = jnp.ones(shape, dtype) if w is None else jnp.broadcast_to(w, shape).astype(dtype)
    if mask is not None:
        ones = select(mask, ones, 0)
    return jnp.sum(ones)
