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


def safe_scale(noise: jax.Array) -> tuple:
    """The scale rule: ``(valid, s, self_poisoned)``.

    A scalar scale is made NaN where invalid (``s * (1 + (0 or NaN))``): every term, and
    every derivative, then is NaN by plain arithmetic, with no per-observation select,
    so XLA keeps fusing the terms into the reduction. A per-observation scale is guarded
    instead (invalid entries replaced by 1, so that the untaken branch has a finite
    gradient and a masked-out entry cannot leak a NaN) and `poison` marks the result."""
    valid = noise > 0
    if noise.ndim == 0:
        nan_or = jnp.where(valid, 0.0, jnp.nan).astype(noise.dtype)
        return valid, noise * (1.0 + nan_or), True
    return valid, jnp.where(valid, noise, jnp.ones((), noise.dtype)), False


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


def poison(value: jax.Array, valid: jax.Array | bool, params: tuple = ()) -> jax.Array:
    """``value`` where ``valid``, NaN elsewhere, with NaN derivatives there too.

    A plain ``jnp.where(valid, value, nan)`` gives a NaN value but a zero (finite)
    gradient, and so does the guard (``where(scale > 0, scale, 1)``) that keeps the
    untaken branch finite. Here, with ``nan_or = 0 if valid else NaN``::

        value * (1 + nan_or) + sum_p where(valid, 0, p) * nan_or

    is ``value`` (and its derivative) where valid, and NaN with NaN derivatives in
    ``value`` and in each guarded parameter ``p`` (passed raw, before its guard)
    elsewhere, to all orders. It is plain arithmetic on purpose: a select on the result,
    or a custom derivative rule, makes XLA:CPU keep n-sized temporaries in
    value-and-gradient even when ``valid`` is a scalar (measured: 2 buffers at n = 1e7
    for the Gaussian NLL, against 0 for this form)."""
    if valid is True:
        return value
    nan_or = jnp.where(valid, 0.0, jnp.nan).astype(value.dtype)
    out = value * (1.0 + nan_or)
    for p in params:
        extra = p.ndim - nan_or.ndim  # e.g. probabilities with a trailing class axis
        v = jnp.reshape(valid, jnp.shape(valid) + (1,) * extra) if extra > 0 else valid
        n = jnp.reshape(nan_or, nan_or.shape + (1,) * extra) if extra > 0 else nan_or
        term = jnp.where(v, jnp.zeros((), p.dtype), p).astype(value.dtype) * n
        if extra > 0:
            term = jnp.sum(term, axis=tuple(range(term.ndim - extra, term.ndim)))
        out = out + term
    return out


def validate(fn: str, rules: Rules, mask: jax.Array | None) -> jax.Array | bool:
    """Combines the validity rules (masked-out observations are exempt), emits one
    `checked`-mode check per rule, and returns the validity that `poison` must apply.

    A rule is ``(valid, message)`` or ``(valid, message, True)``; the latter is
    *self-poisoned* (its input was already made NaN where invalid), so it is checked but
    not applied again."""
    out: jax.Array | bool = True
    for ok, message, *self_poisoned in rules:
        if mask is not None:
            ok = ok | ~mask
        _checks.check(ok, fn, message)
        if self_poisoned and self_poisoned[0]:
            continue
        out = ok if out is True else out & ok
    return out


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
    guarded: tuple[int, ...] = (),
) -> jax.Array:
    """The shared `nll` of every family: mask the data, compute the log-probabilities,
    poison the invalid ones, negate and reduce.

    ``check_nan`` names a NaN in real-valued data in `checked` mode; it is not part of the
    poison because NaN data already give a NaN value and gradient. When the validity is
    one scalar (a scalar scale, no mask), the reduced total is poisoned instead of each
    term: same value and gradient, but no per-observation select, which would stop XLA
    from fusing the terms into the reduction (one n-sized temporary buffer).

    ``guarded`` lists the positions in ``params`` of the parameters that ``compute``
    replaces by a safe value where invalid (a scale <= 0, probabilities outside [0, 1], a
    negative rate): the guard cuts them out of the gradient, so `poison` puts the NaN
    back. Unguarded parameters receive the NaN through the poisoned terms themselves."""
    shape = tuple(data.shape) if shape is None else shape
    mask = as_mask(where, shape, fn)
    data = mask_data(data, mask, safe)
    if check_nan:
        validate(fn, (not_nan(data),), mask)
    lp, rules = compute(data, *params)
    valid = validate(fn, rules, mask)
    float_params = tuple(params[i] for i in guarded)
    if reduction != "none" and jnp.ndim(valid) == 0:
        total = reduce(-lp, reduction=reduction, weights=weights, mask=mask, fn=fn)
        return poison(total, valid, float_params)
    lp = poison(lp, valid, float_params)
    return reduce(-lp, reduction=reduction, weights=weights, mask=mask, fn=fn)


def finish_log_prob(
    fn: str,
    compute: Callable[..., tuple[jax.Array, Rules]],
    data: jax.Array,
    params: tuple[jax.Array, ...],
    *,
    check_nan: bool = False,
    guarded: tuple[int, ...] = (),
) -> jax.Array:
    if check_nan:
        validate(fn, (not_nan(data),), None)
    lp, rules = compute(data, *params)
    return poison(lp, validate(fn, rules, None), tuple(params[i] for i in guarded))
