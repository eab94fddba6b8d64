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

:func:`compare_training` goes one step further: it trains on both objectives from the same
start, with the learning rate of :math:`g` scaled by :math:`a`, and returns how far the
two trajectories drift apart, step by step (any pytree model, neural networks included).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _eager_calls

__all__ = [
    "GradientRatio",
    "TrainingComparison",
    "assert_proportional",
    "compare_training",
    "default_rtol",
    "gradient_ratio",
]

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
    return _eager_calls.run(_grads_and_ratio, (f, g), params, *args)[2]


def _grads_and_ratio(f, g, params, *args):
    """Both gradients and their comparison: called eagerly, one cached program per
    objectives and argument structure (``nllax._eager_calls``), not op by op."""
    grad_f, grad_g = _grad(f, "f", params, args), _grad(g, "g", params, args)
    return grad_f, grad_g, _compare(grad_f, grad_g)


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
    grad_f, grad_g, res = _eager_calls.run(_grads_and_ratio, (f, g), params, *args)
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


# ----------------------------------------------------------------------------- training

_SCALINGS = ("lr", "none", "gradient")


class TrainingComparison(NamedTuple):
    """The result of :func:`compare_training`; a pytree (it can leave ``jit``).

    Step ``t`` (``t = 1 .. steps``) is the state after ``t`` updates; index ``t - 1`` of
    every per-step array.

    Attributes:
      ratio: the :math:`a` used (given, or :func:`gradient_ratio` at ``params0``), scalar.
      params_f, params_g: the final parameters of the two runs (pytrees like ``params0``).
      max_abs_diff: :math:`\\max_i |\\theta^f_{t,i} - \\theta^g_{t,i}|` over every entry
        of every leaf, shape ``(steps,)``.
      max_rel_diff: ``max_abs_diff`` divided by :math:`\\max_i |\\theta^f_{t,i}|` (a
        normwise relative difference: a parameter crossing zero does not make it
        infinite), shape ``(steps,)``.
      leaf_max_abs_diff: ``max_abs_diff`` for each leaf alone, a pytree like ``params0``
        of ``(steps,)`` arrays: which layer drifts first.
      value_f, value_g: :math:`f(\\theta^f_{t-1})` and :math:`g(\\theta^g_{t-1})`, the
        objectives at the start of each step (the training curves), shape ``(steps,)``.
      trajectory_f, trajectory_g: with ``trajectory=True``, every iterate
        :math:`\\theta_0, \\ldots, \\theta_{\\text{steps}}` (each leaf with a leading axis
        of ``steps + 1``); otherwise ``None``.
    """

    ratio: jax.Array
    params_f: Any
    params_g: Any
    max_abs_diff: jax.Array
    max_rel_diff: jax.Array
    leaf_max_abs_diff: Any
    value_f: jax.Array
    value_g: jax.Array
    trajectory_f: Any = None
    trajectory_g: Any = None

    @property
    def worst_rel_diff(self) -> jax.Array:
        """The largest ``max_rel_diff`` over all steps."""
        return jnp.max(self.max_rel_diff)


def _max_abs(tree: Any, dtype) -> jax.Array:
    leaves = [jnp.max(jnp.abs(x), initial=0.0).astype(dtype)
              for x in jax.tree_util.tree_leaves(tree)]
    return jnp.max(jnp.stack(leaves))


def _scalar_value(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    def value(p, *args):
        out = jnp.asarray(fn(p, *args))
        if out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
            raise ValueError(
                f"{_FN}.compare_training: `{name}` must return a real floating scalar, got "
                f"shape {out.shape} and dtype {out.dtype}."
            )
        return out

    return value


def _train_both(f, g, optimizer, optimizer_g, steps, scaling, minibatches, trajectory,
                params0, ratio, args):
    import optax  # a runtime dependency; imported here so `import nllax.verify` stays light

    if ratio is None:  # estimated inside the compiled program (eager autodiff is slow)
        first = jax.tree_util.tree_map(lambda x: x[0], args) if minibatches else args
        ratio = _compare(_grad(f, "f", params0, first), _grad(g, "g", params0, first)).ratio

    vg_f = jax.value_and_grad(_scalar_value(f, "f"))
    vg_g = jax.value_and_grad(_scalar_value(g, "g"))
    leaves0 = jax.tree_util.tree_leaves(params0)
    dt = _compute_dtype(list(leaves0))

    def times_a(tree):
        return jax.tree_util.tree_map(lambda x: x * ratio.astype(x.dtype), tree)

    def step(carry, batch):
        pf, sf, pg, sg = carry
        data = batch if minibatches else args
        value_f, grad_f = vg_f(pf, *data)
        value_g, grad_g = vg_g(pg, *data)
        if scaling == "gradient":
            grad_g = times_a(grad_g)
        upd_f, sf = optimizer.update(grad_f, sf, pf)
        upd_g, sg = optimizer_g.update(grad_g, sg, pg)
        if scaling == "lr":
            upd_g = times_a(upd_g)
        pf = optax.apply_updates(pf, upd_f)
        pg = optax.apply_updates(pg, upd_g)
        diff = jax.tree_util.tree_map(lambda a, b: jnp.abs(a - b), pf, pg)
        leaf = jax.tree_util.tree_map(lambda d: jnp.max(d, initial=0.0).astype(dt), diff)
        big = _max_abs(pf, dt)
        worst = _max_abs(diff, dt)
        rel = worst / jnp.where(big > 0, big, 1.0)
        out = (worst, rel, leaf, value_f.astype(dt), value_g.astype(dt))
        if trajectory:
            out = out + (pf, pg)
        return (pf, sf, pg, sg), out

    carry0 = (params0, optimizer.init(params0), params0, optimizer_g.init(params0))
    xs = args if minibatches else None
    (pf, _, pg, _), out = jax.lax.scan(step, carry0, xs, length=steps)
    traj_f = traj_g = None
    if trajectory:

        def prepend(x0, xs_):
            return jnp.concatenate([jnp.asarray(x0)[None].astype(xs_.dtype), xs_])

        traj_f = jax.tree_util.tree_map(prepend, params0, out[5])
        traj_g = jax.tree_util.tree_map(prepend, params0, out[6])
    return TrainingComparison(ratio.astype(dt), pf, pg, out[0], out[1], out[2], out[3], out[4],
                              traj_f, traj_g)


_train_both_jit = jax.jit(_train_both, static_argnums=(0, 1, 2, 3, 4, 5, 6, 7))


def compare_training(
    f: Callable[..., Any],
    g: Callable[..., Any],
    params0: Any,
    *args: Any,
    optimizer: Any,
    steps: int,
    ratio: Any = None,
    scaling: str = "lr",
    optimizer_g: Any = None,
    minibatches: bool = False,
    trajectory: bool = False,
) -> TrainingComparison:
    r"""Trains on :math:`f` and on :math:`g` from the same start and compares, step by step.

    Both runs start at ``params0`` and take ``steps`` updates with the same optax
    ``optimizer`` (or ``optimizer_g`` for :math:`g`); :math:`g`'s run is adjusted by the
    ratio :math:`a` of
    :math:`\nabla f = a\nabla g` (``ratio``; when ``None``, :func:`gradient_ratio` of
    ``f`` and ``g`` at ``params0``, on the first minibatch with ``minibatches=True``)
    according to ``scaling``:

    * ``"lr"`` (default): every update of :math:`g`'s optimizer is multiplied by
      :math:`a`, i.e. **the learning rate of g is** :math:`\eta\cdot a` for an optimizer
      built with learning rate :math:`\eta` (every optax alias: its update is
      :math:`-\eta` times a direction that does not depend on :math:`\eta`; weight decay
      and schedules included). This is the statement for **SGD** (with or without
      momentum or Nesterov, any update linear in the gradient): if
      :math:`\nabla f = a\nabla g` then SGD on :math:`f` with :math:`\eta` and SGD on
      :math:`g` with :math:`\eta a` take the same steps,

      .. math::

          \theta_{t+1} = \theta_t - \eta\nabla f(\theta_t)
          = \theta_t - (\eta a)\nabla g(\theta_t),

      so the trajectories are identical in exact arithmetic and differ only by
      rounding, step for step.
    * ``"none"``: :math:`g` is trained with the same optimizer unchanged. This is the
      statement for **Adam** (and RMSProp, Adagrad, sign methods), whose update is
      invariant to a positive rescaling of the gradient except through :math:`\epsilon`.
      With :math:`\nabla f = a\nabla g` the moments of :math:`f`'s run are
      :math:`m^f = a m`, :math:`v^f = a^2 v`, hence

      .. math::

          \frac{\hat m^f}{\sqrt{\hat v^f} + \epsilon} = \frac{\hat m}{\sqrt{\hat v} + \epsilon/a}:

      **Adam(η, ε) on f is exactly Adam(η, ε/a) on g** (``eps_root`` becomes
      ``eps_root / a**2``). With the same :math:`\epsilon` on both, from a common state
      the two updates of each coordinate differ by at most

      .. math::

          \eta\,\frac{|\hat m|}{\sqrt{\hat v}}\,
          \min\Bigl(\bigl|1 - \tfrac1a\bigr|\frac{\epsilon}{\sqrt{\hat v}},\;
          \frac{|\sqrt a - 1|}{\sqrt a + 1}\Bigr)

      (from :math:`|\frac{1}{s+\epsilon_1} - \frac{1}{s+\epsilon_2}| =
      \frac{|\epsilon_1-\epsilon_2|}{(s+\epsilon_1)(s+\epsilon_2)}` with
      :math:`s = \sqrt{\hat v}`, bounded once by :math:`|\epsilon_1-\epsilon_2|/s^2`
      and once by its maximum over :math:`s`, reached at
      :math:`s = \sqrt{\epsilon_1\epsilon_2}`): relative to the step, a deviation of
      :math:`|1 - 1/a|\,\epsilon/\sqrt{\hat v}`, negligible wherever the gradient is
      well above :math:`\epsilon`, and never more than :math:`|\sqrt a - 1|/(\sqrt a + 1)`
      of the step. With ``eps=0`` the two runs agree to rounding.
    * ``"gradient"``: :math:`g`'s gradient is multiplied by :math:`a` before the
      optimizer, i.e. the run trains :math:`a\,g`, whose gradient is :math:`\nabla f`:
      the same trajectory as :math:`f`'s for every optimizer (to rounding), Adam's
      :math:`\epsilon` included. A check of :math:`a` itself.

    **Minibatches.** With ``minibatches=True`` every leaf of ``*args`` has a leading axis
    of length ``steps`` and step :math:`t` gets slice :math:`t` (pre-drawn minibatches).
    A loss with ``reduction="mean"`` over a batch of :math:`B` observations is
    :math:`1/B` times the same loss with ``reduction="sum"``, so **changing mean to sum
    multiplies a by the batch size**: the NLL (a sum) against a mean loss has
    :math:`a = B\,a_{\text{sum}}` (e.g. :math:`B/(2\sigma^2)` for the Gaussian NLL
    against the MSE, :math:`B` for BCE and cross entropy against their means). The
    learning rate that reproduces the NLL's run with a mean loss is therefore
    :math:`\eta a` with the *batch* size in :math:`a`; with batches of unequal sizes
    (a smaller last batch) :math:`a` changes from step to step, no single learning rate
    reproduces the run, and ``max_rel_diff`` shows where it departs.

    Args:
      f, g: objectives ``f(params, *args) -> scalar`` (an NLL and a loss, say).
      params0: the common start, any pytree of floating arrays.
      *args: the data, passed to both objectives at every step (or sliced per step,
        see ``minibatches``).
      optimizer: an optax ``GradientTransformation`` (``optax.sgd(1e-3)``,
        ``optax.adam(1e-3)``, ...), the one :math:`f` is trained with. Build it once and
        reuse it: the compiled training loop is cached on the objectives, the optimizer
        object and the static options.
      steps: the number of updates (a Python int >= 1).
      ratio: :math:`a`; ``None`` estimates it with :func:`gradient_ratio` at
        ``params0``. A non-finite or non-positive ratio is not refused (it may be traced)
        and simply gives diverging runs under ``"lr"``/``"gradient"``.
      scaling: ``"lr"``, ``"none"`` or ``"gradient"``, as above.
      optimizer_g: the optimizer of :math:`g`'s run when it differs (default: the same
        ``optimizer``); e.g. ``optax.adam(lr, eps=eps / a)`` reproduces Adam(lr, eps) on
        :math:`f` exactly, with ``scaling="none"``. ``scaling`` applies on top of it.
      minibatches: whether ``args`` hold one minibatch per step (leading axis ``steps``).
      trajectory: also return every iterate of both runs (memory ``2 (steps + 1)``
        copies of the parameters).

    Returns:
      A :class:`TrainingComparison`: the ratio used, both final parameters, the per-step
      maximum absolute and relative parameter differences (overall and per leaf), the
      training curves of both runs, and optionally both trajectories. One compiled
      ``lax.scan`` runs both trainings.

    Raises:
      ValueError / TypeError at trace time: an objective that does not return a real
      scalar, empty or non-floating parameters, an optimizer without ``init``/``update``,
      ``steps`` that is not a positive int, an unknown ``scaling``, minibatch leaves whose
      leading axis is not ``steps``.

    Example:
      >>> import jax.numpy as jnp, optax, nllax
      >>> x = jnp.linspace(-1.0, 1.0, 20); y = 0.5 - x + 0.1 * jnp.sin(9.0 * x)
      >>> nll = lambda w, x, y: nllax.gaussian.nll(y, w[0] + w[1] * x, 0.5)
      >>> mse = lambda w, x, y: nllax.losses.mse(y, w[0] + w[1] * x)
      >>> r = nllax.verify.compare_training(nll, mse, jnp.zeros(2), x, y,
      ...                                   optimizer=optax.sgd(1e-3), steps=200)
      >>> float(r.ratio)  # n / (2 sigma^2) = 20 / 0.5
      40.0
      >>> bool(r.worst_rel_diff < 1e-5)  # the same trajectory, to float32 rounding
      True
    """
    fn = f"{_FN}.compare_training"
    _check_params(params0)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"{fn}: `steps` must be a positive Python int, got {steps!r}.")
    steps = int(steps)
    if scaling not in _SCALINGS:
        raise ValueError(f"{fn}: `scaling` must be one of {_SCALINGS}, got {scaling!r}.")
    optimizer_g = optimizer if optimizer_g is None else optimizer_g
    for name, opt in (("optimizer", optimizer), ("optimizer_g", optimizer_g)):
        if not (callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))):
            raise TypeError(
                f"{fn}: `{name}` must be an optax GradientTransformation (with init and "
                f"update), got {type(opt).__name__}."
            )
    if minibatches:
        for path, leaf in jax.tree_util.tree_flatten_with_path(args)[0]:
            shape = np.shape(leaf)
            if not shape or shape[0] != steps:
                raise ValueError(
                    f"{fn}: with minibatches=True every leaf of `args` needs a leading axis "
                    f"of length steps={steps}; args{jax.tree_util.keystr(path)} has shape "
                    f"{shape}."
                )
    if ratio is not None:
        ratio = jnp.asarray(ratio)
        if ratio.shape != ():
            raise ValueError(f"{fn}: `ratio` must be a scalar, got shape {ratio.shape}.")
    return _train_both_jit(f, g, optimizer, optimizer_g, steps, scaling, bool(minibatches),
                           bool(trajectory), params0, ratio, args)
