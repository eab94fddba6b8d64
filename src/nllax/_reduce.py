"""Argument handling shared by every family and loss: dtypes, shapes, validity, reduction.

One implementation of `reduction` / `weights` / `where`, so that the keywords mean the
same thing everywhere:

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

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _checks

Rules = Sequence[tuple[jax.Array, str]]
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
    return widest


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


def prepare_location_scale(y, loc, scale, log_scale, weights, fn, default):
    """Dtype, type and shape checks shared by the location-scale families.

    Returns ``(y, loc, noise, is_log)`` where ``noise`` is the scale or the log-scale."""
    if log_scale is not None and scale is not default:
        raise ValueError(f"{fn}: pass `scale=` or `log_scale=`, not both.")
    noise = scale if log_scale is None else log_scale
    noise_name = "scale" if log_scale is None else "log_scale"
    dtype = float_dtype(y, loc, noise, weights)
    y = as_data(y, "y", fn, dtype)
    loc = as_param(loc, "loc", fn, dtype)
    noise = as_param(noise, noise_name, fn, dtype)
    check_fits(loc, "loc", y.shape, "y", fn)
    check_fits(noise, noise_name, y.shape, "y", fn)
    return y, loc, noise, log_scale is not None


def safe_scale(noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(valid, s)``: whether the scale is > 0, and the scale with invalid entries
    replaced by 1 (guard the input so the untaken branch has a finite gradient)."""
    valid = noise > 0
    return valid, jnp.where(valid, noise, jnp.ones((), noise.dtype))


SCALE_RULE = "`scale` must be > 0 (got a value <= 0 or NaN)"
Y_NAN_RULE = "`y` must not be NaN (NaN in the data)"


@jax.custom_jvp
def abs_(x: jax.Array) -> jax.Array:
    """``|x|`` whose derivative is NaN at NaN (``jnp.abs``' is -1 there, which would give
    a finite gradient for a NaN observation), +1 at 0 as ``jnp.abs``, and NaN at +-inf."""
    return jnp.abs(x)


@abs_.defjvp
def _abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), dx * (jnp.where(x < 0, -1.0, 1.0).astype(x.dtype) + (x - x))


def not_nan(y: jax.Array) -> tuple[jax.Array, str]:
    """The rule for real-valued data: NaN propagates to the result by itself; this only
    names the cause in `checked` mode."""
    return ~jnp.isnan(y), Y_NAN_RULE


@jax.custom_jvp
def poison(value: jax.Array, valid: jax.Array, params: tuple = ()) -> jax.Array:
    """``value`` where ``valid``, NaN elsewhere, with NaN derivatives there too.

    A plain ``jnp.where(valid, value, nan)`` gives a NaN value but a zero (finite)
    gradient, and so does the guarded input (``where(scale > 0, scale, 1)``) that keeps
    the untaken branch finite. The tangent rule therefore adds ``dp * (0 or NaN)`` for
    every parameter ``p`` (the raw, unguarded inputs): the gradient with respect to an
    invalid input is NaN, never a finite number, and unchanged for valid ones."""
    del params
    return jnp.where(valid, value, jnp.nan)


@poison.defjvp
def _poison_jvp(primals, tangents):
    value, valid, params = primals
    dvalue, _, dparams = tangents
    # Linear in the tangents (so it transposes for grad): 1 or NaN times dvalue, plus
    # 0 or NaN times each parameter's tangent.
    nan_or = jnp.where(valid, 0.0, jnp.nan).astype(dvalue.dtype)
    out_t = dvalue * (nan_or + 1.0)
    for dp in jax.tree_util.tree_leaves(dparams):
        if dp.dtype == jax.dtypes.float0:
            continue
        if dp.ndim > out_t.ndim:  # e.g. logits with a trailing class axis
            dp = jnp.sum(dp, axis=tuple(range(out_t.ndim, dp.ndim)))
        out_t = out_t + dp.astype(dvalue.dtype) * nan_or
    return poison(value, valid, params), out_t


def validate(fn: str, rules: Rules, mask: jax.Array | None) -> jax.Array | bool:
    """Combines the validity rules (masked-out observations are exempt), emits one
    `checked`-mode check per rule, and returns the combined validity."""
    valid: jax.Array | bool = True
    for ok, message in rules:
        if mask is not None:
            ok = ok | ~mask
        _checks.check(ok, fn, message)
        valid = ok if valid is True else valid & ok
    return valid


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


def mask_data(data: jax.Array, mask: jax.Array | None, safe: Any) -> jax.Array:
    """Replaces masked-out data by a value for which every term is finite (guard the
    input, not only the output: the untaken branch of a `where` still differentiates)."""
    if mask is None:
        return data
    return jnp.where(mask, data, jnp.asarray(safe, data.dtype))


def reduce(
    terms: jax.Array,
    *,
    reduction: str,
    weights: Any,
    mask: jax.Array | None,
    fn: str,
) -> jax.Array:
    """Applies weights, mask and reduction to per-observation ``terms``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: `reduction` must be one of {REDUCTIONS}, got {reduction!r}.")
    w = None
    if weights is not None:
        w = as_param(weights, "weights", fn, terms.dtype)
        check_fits(w, "weights", terms.shape, "data", fn)
        terms = terms * w
    if mask is not None:
        terms = jnp.where(mask, terms, jnp.zeros((), terms.dtype))
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
        ones = jnp.where(mask, ones, jnp.zeros((), dtype))
    return jnp.sum(ones)


def finish_nll(
    fn: str,
    compute: Callable[..., tuple[jax.Array, Rules]],
    data: jax.Array,
    params: tuple[jax.Array, ...],
    *,
    safe: Any,
    reduction: str,
    weights: Any,
    where: Any,
    shape: tuple[int, ...] | None = None,
    check_nan: bool = False,
) -> jax.Array:
    """The shared `nll` of every family: mask the data, compute the log-probabilities,
    poison the invalid ones, negate and reduce.

    ``check_nan`` names a NaN in real-valued data in `checked` mode; it is not part of the
    poison because NaN data already give a NaN value and gradient. When the validity is
    one scalar (a scalar scale, no mask), the reduced total is poisoned instead of each
    term: same value and gradient, but no per-observation select, which would stop XLA
    from fusing the terms into the reduction (one n-sized temporary buffer)."""
    shape = tuple(data.shape) if shape is None else shape
    mask = as_mask(where, shape, fn)
    data = mask_data(data, mask, safe)
    if check_nan:
        validate(fn, (not_nan(data),), mask)
    lp, rules = compute(data, *params)
    valid = validate(fn, rules, mask)
    float_params = _float_leaves(params)
    if reduction != "none" and jnp.ndim(valid) == 0:
        total = reduce(-lp, reduction=reduction, weights=weights, mask=mask, fn=fn)
        return total if valid is True else poison(total, valid, float_params)
    lp = poison(lp, valid, float_params)
    return reduce(-lp, reduction=reduction, weights=weights, mask=mask, fn=fn)


def finish_log_prob(
    fn: str,
    compute: Callable[..., tuple[jax.Array, Rules]],
    data: jax.Array,
    params: tuple[jax.Array, ...],
    *,
    check_nan: bool = False,
) -> jax.Array:
    if check_nan:
        validate(fn, (not_nan(data),), None)
    lp, rules = compute(data, *params)
    return poison(lp, validate(fn, rules, None), _float_leaves(params))


def _float_leaves(params) -> tuple:
    return tuple(p for p in params if isinstance(p, jax.Array) and jnp.issubdtype(p.dtype, jnp.floating))
