r"""Gradient comparison of two objectives: are they proportional, and with which ratio?

Two objectives :math:`f(\theta)` and :math:`g(\theta)` with
:math:`\nabla_\theta f = a\,\nabla_\theta g` for a constant :math:`a > 0` have the same
stationary points, so every gradient-based optimiser reaches the same :math:`\hat\theta`
from either. That is what :data:`nllax.equivalences` claims for each NLL and its loss
(``a`` is the table's ``scale``); :func:`gradient_ratio` measures it and
:func:`assert_proportional` turns it into a test.

With :math:`u = \nabla f` and :math:`v = \nabla g` flattened over all leaves of the
parameter pytree:

.. math::

    \text{ratio} = \frac{\langle u, v\rangle}{\langle v, v\rangle}
    \;(\text{least squares: } \min_a \lVert u - a v\rVert),\qquad
    \text{cosine} = \frac{\langle u, v\rangle}{\lVert u\rVert\,\lVert v\rVert},\qquad
    \text{residual} = \frac{\lVert u - \text{ratio}\cdot v\rVert}{\lVert u\rVert}
    = \sqrt{1 - \text{cosine}^2}.

The residual is computed from its definition (not from the cosine, which loses half the
digits near 1). Everything is computed on gradients rescaled by their largest entry, so
neither ``<v, v>`` nor ``<u, u>`` overflows or underflows in float32.

Degenerate cases give NaN, never a misleading finite number: a zero :math:`\nabla g`
(the ratio is undefined), a non-finite entry in either gradient (every statistic is
NaN), and a zero :math:`\nabla f` (the ratio is 0, exactly; the cosine and the residual
are NaN because :math:`\lVert u\rVert = 0`).

Evaluate at a generic point, not at a stationary point: there the gradients are rounding
noise and their ratio means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GradientRatio", "assert_proportional", "default_rtol", "gradient_ratio"]

_FN = "nllax.verify"

# Default relative tolerances of `assert_proportional`, keyed on the gradients' dtype
# (16-bit gradients are compared in float32, so their rounding sets the tolerance).
# float64: NLL and loss gradients of a few hundred observations agree to ~1e-15
# (measured in tests/test_same_theta.py); 1e-10 leaves room for larger sums and for
# cancellation in a gradient that is small relative to its terms.
_RTOL = {2: 1e-2, 4: 1e-4, 8: 1e-10}


class GradientRatio(NamedTuple):
    """The result of :func:`gradient_ratio`; a pytree, so it can be returned from ``jit``.

    Attributes:
      ratio: least-squares :math:`a` in :math:`\\nabla f \\approx a \\nabla g`, scalar.
      cosine: cosine of the angle between the two gradients (1 when proportional with
        a positive ratio), scalar.
      residual: :math:`\\lVert\\nabla f - a\\nabla g\\rVert / \\lVert\\nabla f\\rVert`
        (0 when proportional), scalar.
      leaf_ratios: the same least-squares ratio for each leaf alone, a pytree shaped
        like ``params`` with one scalar per leaf (NaN for a leaf whose
        :math:`\\nabla g` is 0 or whose gradients are non-finite).
      grad_f_norm: :math:`\\lVert\\nabla f\\rVert`, scalar.
      grad_g_norm: :math:`\\lVert\\nabla g\\rVert`, scalar.
    """

    ratio: jax.Array
    cosine: jax.Array
    residual: jax.Array
    leaf_ratios: Any
    grad_f_norm: jax.Array
    grad_g_norm: jax.Array


def default_rtol(dtype: Any) -> float:
    """The default ``rtol`` of :func:`assert_proportional` for gradients of ``dtype``:
    1e-10 for float64, 1e-4 for float32, 1e-2 for float16/bfloat16."""
    return _RTOL[min(max(np.dtype(dtype).itemsize, 2), 8)]


def _compute_dtype(leaves: list[jax.Array]) -> np.dtype:
    dt = np.dtype(jnp.result_type(*leaves)) if leaves else np.dtype(jnp.float32)
    return np.dtype(jnp.float32) if dt.itemsize < 4 else dt


def _check_params(params: Any) -> None:
    leaves_with_path = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves_with_path:
        raise ValueError(f"{_FN}: `params` has no leaves; there is no gradient to compare.")
    for path, leaf in leaves_with_path:
        dt = np.dtype(jnp.asarray(leaf).dtype)
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(
                f"{_FN}: `params` leaf {jax.tree_util.keystr(path) or '(root)'} has dtype "
                f"{dt}; gradients need floating (real) parameters."
            )


def _grad(fn: Callable[..., Any], name: str, params: Any, args: tuple) -> Any:
    def scalar(p):
        out = jnp.asarray(fn(p, *args))
        if out.shape != ():
            raise ValueError(
                f"{_FN}: `{name}` must return a scalar, got shape {out.shape}; reduce it "
                f"(for example with reduction='sum')."
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise TypeError(f"{_FN}: `{name}` must return a real floating scalar, got {out.dtype}.")
        return out

    return jax.grad(scalar)(params)


def _stats(u: jax.Array, v: jax.Array):
    """(ratio, cosine, residual, |u|, |v|) of two flat vectors; NaN where undefined."""
    dt = u.dtype
    nan = jnp.asarray(jnp.nan, dt)
    finite = jnp.all(jnp.isfinite(u)) & jnp.all(jnp.isfinite(v))
    # Rescale by the largest entry so that the inner products cannot overflow/underflow;
    # guard the divisors (and the non-finite case) so every branch stays finite.
    su = jnp.max(jnp.abs(u), initial=0.0)
    sv = jnp.max(jnp.abs(v), initial=0.0)
    su_ok = finite & (su > 0)
    sv_ok = finite & (sv > 0)
    uh = jnp.where(finite, u, 0.0) / jnp.where(su_ok, su, 1.0)
    vh = jnp.where(finite, v, 0.0) / jnp.where(sv_ok, sv, 1.0)
    uu, vv, uv = jnp.vdot(uh, uh), jnp.vdot(vh, vh), jnp.vdot(uh, vh)
    rh = uv / jnp.where(sv_ok, vv, 1.0)  # ratio of the rescaled vectors
    nu, nv = jnp.sqrt(uu), jnp.sqrt(vv)
    ratio = jnp.where(sv_ok, rh * (jnp.where(su_ok, su, 0.0) / jnp.where(sv_ok, sv, 1.0)), nan)
    both = su_ok & sv_ok
    # clipped: rounding can put |cosine| a few ulps above 1 for parallel vectors
    cosine = jnp.where(both, jnp.clip(uv / jnp.where(both, nu * nv, 1.0), -1.0, 1.0), nan)
    resid = jnp.linalg.norm(uh - rh * vh) / jnp.where(both, nu, 1.0)
    residual = jnp.where(both, resid, nan)
    norm_u = jnp.where(finite, jnp.where(su_ok, su, 0.0) * nu, nan)
    norm_v = jnp.where(finite, jnp.where(sv_ok, sv, 0.0) * nv, nan)
    return ratio, cosine, residual, norm_u, norm_v


@jax.jit  # one compiled kernel per gradient structure, instead of many eager ops
def _compare(grad_f: Any, grad_g: Any) -> GradientRatio:
    leaves_f, tree = jax.tree_util.tree_flatten(grad_f)
    leaves_g = jax.tree_util.tree_leaves(grad_g)
    dt = _compute_dtype(leaves_f + leaves_g)
    flat = [(jnp.ravel(a).astype(dt), jnp.ravel(b).astype(dt)) for a, b in zip(leaves_f, leaves_g)]
    u = jnp.concatenate([a for a, _ in flat])
    v = jnp.concatenate([b for _, b in flat])
    ratio, cosine, residual, nu, nv = _stats(u, v)
    leaf_ratios = jax.tree_util.tree_unflatten(tree, [_stats(a, b)[0] for a, b in flat])
    return GradientRatio(ratio, cosine, residual, leaf_ratios, nu, nv)


def gradient_ratio(
    f: Callable[..., Any], g: Callable[..., Any], params: Any, *args: Any
) -> GradientRatio:
    r"""Compares :math:`\nabla_\theta f(\theta, \ldots)` with :math:`\nabla_\theta g(\theta, \ldots)`.

    Args:
      f, g: objectives ``f(params, *args) -> scalar`` (an NLL and a loss, say).
      params: the point :math:`\theta`, any pytree of floating arrays.
      *args: passed to both objectives (the data).

    Returns:
      A :class:`GradientRatio` with ``ratio`` (least squares
      :math:`\langle\nabla f,\nabla g\rangle/\langle\nabla g,\nabla g\rangle`),
      ``cosine``, ``residual`` (:math:`\lVert\nabla f - \text{ratio}\,\nabla g\rVert /
      \lVert\nabla f\rVert`), ``leaf_ratios`` (a pytree like ``params``) and the two
      gradient norms. Computed in the gradients' widest floating dtype (float32 for
      16-bit gradients). NaN where undefined: :math:`\nabla g = 0` (ratio, cosine,
      residual), :math:`\nabla f = 0` (cosine, residual; the ratio is then 0), any
      non-finite gradient entry (everything).

    Raises:
      ValueError / TypeError at trace time: an objective that does not return a real
      scalar, parameters that are empty or not floating.

    Works under ``jit`` and ``vmap`` (the objectives are static: close over them, as in
    ``jax.jit(lambda p, x, y: gradient_ratio(f, g, p, x, y))``).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 2.0, 2.5])
      >>> nll = lambda w, x, y: nllax.gaussian.nll(y, w[0] + w[1] * x, 2.0)
      >>> sse = lambda w, x, y: nllax.losses.sse(y, w[0] + w[1] * x)
      >>> r = nllax.verify.gradient_ratio(nll, sse, jnp.zeros(2), x, y)
      >>> float(r.ratio)  # 1 / (2 sigma^2)
      0.125
    """
    _check_params(params)
    return _compare(_grad(f, "f", params, args), _grad(g, "g", params, args))


def _scalar_float(x: Any, what: str) -> float:
    try:
        arr = np.asarray(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError) as e:
        raise TypeError(
            f"{_FN}.assert_proportional needs concrete values and cannot run inside jit "
            f"(`{what}` is traced); call it outside jit, or use gradient_ratio inside jit."
        ) from e
    if arr.shape != ():
        raise ValueError(f"{_FN}.assert_proportional: `{what}` must be a scalar, got shape {arr.shape}.")
    return float(arr)


def assert_proportional(
    f: Callable[..., Any],
    g: Callable[..., Any],
    params: Any,
    *args: Any,
    ratio: Any = None,
    rtol: float | None = None,
) -> GradientRatio:
    r"""Raises ``AssertionError`` unless :math:`\nabla f = \text{ratio}\cdot\nabla g` at ``params``.

    Passes when the gradients are proportional to ``rtol``
    (:math:`\lVert\nabla f - a\nabla g\rVert \le \text{rtol}\,\lVert\nabla f\rVert` for the
    least-squares :math:`a`) and, if ``ratio`` is given, the measured :math:`a` equals it
    to ``rtol`` (:math:`|a - \text{ratio}| \le \text{rtol}\,|\text{ratio}|`). Every
    degenerate case of :func:`gradient_ratio` (a NaN statistic) fails, with the reason.
    The message gives the expected and measured ratio, the cosine, the residual and the
    leaf that contributes most to the misfit.

    Args:
      f, g, params, *args: as in :func:`gradient_ratio`.
      ratio: the expected ratio (e.g. ``nllax.equivalences["sse"].a(y, scale=s)``), a
        Python or array scalar; ``None`` checks proportionality only.
      rtol: relative tolerance; default :func:`default_rtol` of the gradients' dtype
        (1e-10 for float64, 1e-4 for float32, 1e-2 for 16-bit).

    Returns:
      The :class:`GradientRatio`, when the assertion holds. Not usable inside ``jit``
      (it needs concrete values); use :func:`gradient_ratio` there.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 2.0, 2.5])
      >>> nll = lambda w, x, y: nllax.gaussian.nll(y, w[0] + w[1] * x, 2.0)
      >>> sse = lambda w, x, y: nllax.losses.sse(y, w[0] + w[1] * x)
      >>> _ = nllax.verify.assert_proportional(nll, sse, jnp.zeros(2), x, y, ratio=0.125)
    """
    _check_params(params)
    grad_f = _grad(f, "f", params, args)
    grad_g = _grad(g, "g", params, args)
    res = _compare(grad_f, grad_g)
    dt = np.dtype(res.ratio.dtype)
    tol = default_rtol(dt) if rtol is None else float(rtol)
    measured = _scalar_float(res.ratio, "ratio")
    cosine = _scalar_float(res.cosine, "cosine")
    residual = _scalar_float(res.residual, "residual")
    expected = None if ratio is None else _scalar_float(ratio, "ratio")

    problems = []
    if math.isnan(measured) or math.isnan(residual):
        nf, ng = _scalar_float(res.grad_f_norm, "norm"), _scalar_float(res.grad_g_norm, "norm")
        if math.isnan(nf) or math.isnan(ng):
            problems.append("a gradient has a non-finite entry (NaN or inf)")
        elif ng == 0.0:
            problems.append("grad g is exactly 0, so no ratio is defined")
        elif nf == 0.0:
            problems.append("grad f is exactly 0 while grad g is not")
    else:
        if not residual <= tol:
            problems.append(f"the gradients are not parallel (residual {residual:.3e} > rtol)")
        if expected is not None and not abs(measured - expected) <= tol * abs(expected):
            problems.append(
                f"the ratio differs from the expected one (relative error "
                f"{abs(measured - expected) / abs(expected) if expected else math.inf:.3e} > rtol)"
            )
    if not problems:
        return res

    digits = 17 if dt.itemsize >= 8 else 9

    def fmt(x):
        return f"{x:.{digits}g}"

    lines = [f"{_FN}.assert_proportional failed (rtol={tol:.1e}, {dt.name}): " + "; ".join(problems)]
    lines.append(f"  expected ratio : {'(any)' if expected is None else fmt(expected)}")
    lines.append(f"  measured ratio : {fmt(measured)}")
    lines.append(f"  cosine         : {fmt(cosine)}")
    lines.append(f"  residual       : {residual:.3e}  (|grad f - ratio * grad g| / |grad f|)")
    lines.append("  worst leaf     : " + _worst_leaf(grad_f, grad_g, res, expected, dt))
    raise AssertionError("\n".join(lines))


def _worst_leaf(grad_f, grad_g, res, expected, dt) -> str:
    """The leaf contributing most to |grad f - a grad g| (a: expected, else measured)."""
    a = expected if expected is not None else float(res.ratio)
    pf = jax.tree_util.tree_flatten_with_path(grad_f)[0]
    lg = jax.tree_util.tree_leaves(grad_g)
    lr = jax.tree_util.tree_leaves(res.leaf_ratios)
    if math.isnan(a):
        a = 0.0
    best = None
    for (path, uf), ug, r in zip(pf, lg, lr):
        uf = np.asarray(uf, dt).ravel()
        ug = np.asarray(ug, dt).ravel()
        with np.errstate(all="ignore"):
            miss = float(np.linalg.norm(uf - a * ug)) if uf.size else 0.0
        if math.isnan(miss):
            miss = math.inf
        if best is None or miss > best[0]:
            best = (miss, jax.tree_util.keystr(path) or "(root)", float(r))
    miss, name, r = best
    nf = float(res.grad_f_norm)
    share = miss / nf if nf > 0 and math.isfinite(nf) else math.nan
    return f"{name}: leaf ratio {r:.9g}, |grad f - a grad g| there / |grad f| = {share:.3e}"
