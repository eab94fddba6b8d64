r"""Maximum-likelihood fitting: one compiled loop (``lax.while_loop``) around an objective.

``fit(objective, params0, *args)`` minimises ``objective(params, *args)`` (a scalar, the
NLL) over ``params``, any pytree of floating arrays, and returns a :class:`FitResult`.

Three methods, chosen by the arguments:

* **default** (``optimizer=None``): a Levenberg–Marquardt-damped Newton method on the
  exact Hessian (``jax.hessian`` of the flattened parameters). Each step solves

  .. math::

      (H + \lambda D)\,p = -g, \qquad D = \operatorname{diag}(d_i),\;
      d_i = \max_{k \le \text{now}} |H_{ii}^{(k)}|

  by Cholesky (after Jacobi scaling, so regressors on scales 1 to 1e5 are handled);
  a step is accepted when the actual decrease :math:`f(\theta) - f(\theta + p)` is at
  least ``1e-4`` of the decrease predicted by the quadratic model (or, at rounding level,
  when :math:`f` does not rise and :math:`\|\nabla f\|` halves), and :math:`\lambda` is
  updated by Nielsen's rule (shrunk by up to 3 after a good step, multiplied by
  2, 4, 8, ... after rejected ones, and raised at once to the curvature along the
  rejected step, :math:`|p^\top H p| / p^\top D p`, when that is larger; an indefinite
  :math:`H + \lambda D` counts as rejected). Large :math:`\lambda` turns the step into scaled gradient descent, which is
  also what happens where the Hessian is zero. Near the optimum :math:`\lambda \to 0`
  and convergence is quadratic.
  **Convergence**: the step is small relative to the parameters in the scaled norm,
  :math:`\|D^{1/2} p\| \le \mathrm{tol}\,(\|D^{1/2}\theta\| + \mathrm{tol})`, either an
  accepted, nearly undamped step (:math:`\lambda \le 1`; then :math:`\theta` is within
  about :math:`\mathrm{tol}^2` of :math:`\hat\theta` when the Hessian is regular) or a
  rejected one (no decrease can be found at that resolution).
  **Non-smooth objectives** (MAE, Laplace location): where the final Hessian has an exactly
  zero diagonal entry (piecewise-linear directions), the fit continues with
  ``optax.lbfgs`` (zoom line search) from the Newton point, which estimates curvature from
  gradient differences; it stops when 10 successive steps are below ``tol`` relative and
  the best point of both phases is returned (``steps`` counts both). Tested to reach the
  linear-programming L1-regression solution within 1e-3. Default ``tol = eps**(2/3)`` of
  the dtype
  (3.7e-11 in float64, 2.4e-5 in float32); ``max_steps=1000`` iterations, each
  counting one objective+gradient evaluation (plus a Hessian after accepted steps).
  Memory: the dense :math:`d \times d` Hessian and its Cholesky factor, i.e.
  :math:`2 \cdot 8 d^2` bytes in float64 (d = 3000: 144 MB); the Hessian costs about
  :math:`d` gradient evaluations, so this is for models up to a few thousand parameters.

* **any optax** ``GradientTransformation`` (``optimizer=optax.adam(1e-2)``,
  ``optax.lbfgs()``, ...): ``params <- params + update(grad)``. Transformations that take
  extra arguments (:class:`optax.GradientTransformationExtraArgs`, e.g. ``optax.lbfgs``
  and its zoom line search) receive ``value=``, ``grad=`` and ``value_fn=``.
  **Convergence**: :math:`\|\nabla f\|_2 \le \mathrm{tol}\cdot\max(1, \min(|f|, |f_0|))`
  (:math:`f_0` the starting value: a diverging run cannot pass the test); default
  ``tol = sqrt(eps)``, ``max_steps=10000`` updates.

* **stochastic** (``batch_size=``): minibatch steps with an optax optimizer (default
  ``optax.adam(1e-3)``) for ``epochs`` passes over the data. Every leaf of ``*args`` must
  be an array whose leading axis is the observation axis ``n`` (close over anything
  else); each epoch draws a permutation from ``key`` (``jax.random.fold_in(key, epoch)``)
  and slices ``n // batch_size`` minibatches of ``batch_size`` rows from it (the last
  ``n % batch_size`` rows of each permutation are left out of that epoch). The objective
  is called on a minibatch exactly as written: use a mean reduction if the learning rate
  should not depend on ``batch_size``. At the end, value and gradient are computed on the
  full data; the status is CONVERGED if they meet the optax test above, else MAX_STEPS.

**Non-finite values**: the loop stops and returns the last parameters whose value and
gradient were finite, with status ``NONFINITE`` (a NaN value with finite gradients counts).
For the default method a non-finite trial point (e.g. a step out of the model's domain) is
just a rejected step; the status is ``NONFINITE`` only when no finite step can be found or
the Hessian at an accepted point is not finite.

**Compilation and caching**: the whole loop is one ``jax.jit``-compiled
``lax.while_loop``. The compiled loop is cached on the *identity* of ``objective`` and
``optimizer`` (plus ``batch_size`` and ``progress``) and on the shapes/dtypes of
``params0`` and ``args``: call ``fit`` again with the same function object and the same
optimizer object and it does not retrace; ``max_steps``, ``tol``, ``epochs`` and ``key``
are traced values and never retrace. A new ``lambda`` or a new ``optax.adam(lr)`` per
call compiles again. To change a learning rate without recompiling, build the optimizer
once with ``optax.inject_hyperparams`` and pass ``hyperparams={"learning_rate": lr}``.

**Progress** (``progress=True``, needs ``tqdm``: ``pip install nllax[progress]``): the
loop runs in chunks of ``progress_every`` iterations (an inner ``while_loop`` with no host
call) and a ``jax.debug.callback`` after each chunk updates a tqdm bar. Each callback is a
round trip to the host; measured with ``python bench/nist.py --speed`` (2000 Adam steps of
0.25 ms, logistic regression n = 1e4, d = 20, float64, shared 2-core CPU at load 4-5):
+2% to +11% with updates every 200 steps, +6% to +12% with the default (50 updates per
fit), +15% to +24% every 10 steps; on the same machine at load 10 the overhead was several
times larger. One bar at a time per process.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

__all__ = ["FitError", "FitResult", "FitStatus", "fit"]

_RUNNING = -1


class FitStatus(enum.IntEnum):
    """Why the fit stopped (``FitResult.status`` holds the integer code)."""

    CONVERGED = 0
    MAX_STEPS = 1
    NONFINITE = 2

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


_MESSAGES = {
    FitStatus.CONVERGED: "the convergence test was met",
    FitStatus.MAX_STEPS: "stopped after max_steps (or all epochs) without meeting the test",
    FitStatus.NONFINITE: (
        "stopped on a non-finite value, gradient or Hessian; params are the last finite ones"
    ),
}


class FitError(RuntimeError):
    """Raised by ``fit(..., throw=True)`` when the fit did not converge."""


class FitResult(NamedTuple):
    """The outcome of :func:`fit`; a pytree, so it can be returned from ``jit``.

    Attributes:
      params: the estimate, same structure as ``params0``.
      value: objective at ``params``.
      grad_norm: Euclidean norm of the gradient at ``params`` (all leaves together).
      steps: iterations run (default method: trial steps, accepted or not; optax:
        updates applied; stochastic: minibatch updates).
      status: integer :class:`FitStatus` code.
    """

    params: Any
    value: jax.Array
    grad_norm: jax.Array
    steps: jax.Array
    status: jax.Array

    @property
    def converged(self) -> jax.Array:
        """``status == FitStatus.CONVERGED`` (a boolean array; works under jit)."""
        return self.status == FitStatus.CONVERGED

    @property
    def message(self) -> str:
        """Readable status (outside jit only)."""
        return str(FitStatus(int(self.status)))


# ---------------------------------------------------------------------------------------
# helpers


def _as_params(params0: Any) -> Any:
    def leaf(x):
        a = jnp.asarray(x)
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(
                f"nllax.fit: params0 leaves must be floating arrays, got dtype {a.dtype}"
            )
        # a strong (non-weak) dtype, so Python floats and arrays share one compiled loop
        return jnp.array(a, dtype=a.dtype)

    leaves = jax.tree_util.tree_leaves(params0)
    if not leaves:
        raise ValueError("nllax.fit: params0 has no array leaves")
    return jax.tree_util.tree_map(leaf, params0)


def _scalar(value: jax.Array) -> jax.Array:
    if jnp.shape(value) != ():
        raise ValueError(
            f"nllax.fit: objective must return a scalar, got shape {jnp.shape(value)}"
        )
    return value


def _tree_norm(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))


def _tree_finite(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _gscale(value: jax.Array, first: jax.Array) -> jax.Array:
    # Objective scale for the gradient test: the smaller of the current and the starting
    # |value| (at least 1), so a diverging run whose value explodes cannot pass it.
    return jnp.maximum(1.0, jnp.minimum(jnp.abs(value), jnp.abs(first)))


def _select(pred: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def _dtype_of(params: Any) -> np.dtype:
    return jnp.result_type(*jax.tree_util.tree_leaves(params))


# progress bar: the compiled callback reads the current bar from here, so a cached loop
# reports to the bar of the call that runs it.
_BAR: list[Any] = [None]


def _progress_update(it, value):
    bar = _BAR[0]
    if bar is not None:
        if np.isfinite(value):
            bar.set_postfix(value=f"{float(value):.8g}", refresh=False)
        bar.update(int(it) - bar.n)  # tqdm redraws at most every `mininterval` seconds


def _while(cond, body, state, progress, every, report):
    """``lax.while_loop``; with ``progress`` it runs chunks of ``every`` iterations in an
    inner loop with no callback and reports ``report(state) = (iteration, value)`` once per
    chunk, so the hot loop itself carries no host callback."""
    if not progress:
        return lax.while_loop(cond, body, state)

    def chunk(state):
        def inner_cond(c):
            return cond(c[0]) & (c[1] < every)

        def inner_body(c):
            return body(c[0]), c[1] + 1

        state, _ = lax.while_loop(inner_cond, inner_body, (state, jnp.zeros((), every.dtype)))
        jax.debug.callback(_progress_update, *report(state))
        return state

    return lax.while_loop(cond, chunk, state)


# ---------------------------------------------------------------------------------------
# default: damped Newton

_POLISH = optax.lbfgs()
_STALL = 10


@functools.partial(jax.jit, static_argnames=("objective", "progress"))
def _newton(params0, args, max_steps, tol, every, *, objective, progress):
    x0, unravel = ravel_pytree(params0)
    dtype = x0.dtype
    eps = jnp.finfo(dtype).eps
    lam_max = 1.0 / eps**2
    n = x0.size
    eye = jnp.eye(n, dtype=dtype)

    def f(x):
        return _scalar(objective(unravel(x), *args)).astype(dtype)

    vg = jax.value_and_grad(f)
    hess = jax.hessian(f)

    f0, g0 = vg(x0)
    h0 = hess(x0)
    ok0 = jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0)) & jnp.all(jnp.isfinite(h0))
    status0 = jnp.where(ok0, _RUNNING, FitStatus.NONFINITE).astype(jnp.int32)
    d0 = jnp.abs(jnp.diag(h0))
    state = (
        x0, f0, g0, h0, d0,
        jnp.asarray(1e-3, dtype), jnp.asarray(2.0, dtype),
        jnp.asarray(0, jnp.int32), status0,
    )

    def cond(state):
        return state[-1] == _RUNNING

    def body(state):
        x, fx, g, h, d, lam, nu, it, _ = state
        dmax = jnp.max(d)
        # Jacobi scaling; a zero-curvature direction (MAE) gets a floor, all-zero gets 1
        d_eff = jnp.where(dmax > 0, jnp.maximum(d, eps * dmax), jnp.ones_like(d))
        s = jnp.sqrt(d_eff)
        a = h / (s[:, None] * s[None, :]) + lam * eye
        chol = jnp.linalg.cholesky(a)  # NaN when a is not positive definite
        p = jax.scipy.linalg.cho_solve((chol, True), -g / s) / s
        valid_p = jnp.all(jnp.isfinite(p))
        p = jnp.where(valid_p, p, jnp.zeros_like(p))
        pred = -(g @ p + 0.5 * p @ (h @ p))
        xt = x + p
        ft, gt = vg(xt)
        ok_t = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt))
        actual = fx - ft
        rho = actual / jnp.where(pred > 0, pred, 1.0)
        gn, gnt = jnp.linalg.norm(g), jnp.linalg.norm(gt)
        # at rounding level f cannot tell better from worse; a halved gradient can
        polish = (jnp.abs(actual) <= 16 * eps * jnp.abs(fx)) & (gnt <= 0.5 * gn)
        accept = valid_p & ok_t & (pred > 0) & ((rho > 1e-4) | polish)
        small = valid_p & (
            jnp.linalg.norm(s * p) <= tol * (jnp.linalg.norm(s * x) + tol)
        )
        ht = lax.cond(accept, hess, lambda _: h, xt)
        ok_h = jnp.all(jnp.isfinite(ht))
        x = jnp.where(accept, xt, x)
        fx = jnp.where(accept, ft, fx)
        g = jnp.where(accept, gt, g)
        h = jnp.where(ok_h, ht, h)
        d = jnp.where(accept & ok_h, jnp.maximum(d, jnp.abs(jnp.diag(ht))), d)
        shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * jnp.clip(rho, 0.0, 1.0) - 1.0) ** 3)
        # after a rejection lambda must at least reach the curvature along the step (the
        # Rayleigh quotient in scaled space), or a tiny lambda needs many doublings to bite
        ps = s * p
        pp = ps @ ps
        curv = jnp.abs(p @ (h @ p)) / jnp.where(pp > 0, pp, 1.0)  # = |ps' A ps| / ps'ps
        measurable = pred > 1e3 * eps * jnp.abs(fx)  # not a rejection at rounding level
        lam_rej = jnp.maximum(lam * nu, jnp.where(valid_p & measurable & (pp > 0), curv, 0.0))
        lam_next = jnp.where(accept, lam * shrink, jnp.minimum(lam_rej, lam_max))
        stuck = (~accept) & (lam >= lam_max)
        nu = jnp.where(accept, 2.0, jnp.minimum(2.0 * nu, 2.0**20)).astype(dtype)
        it = it + 1
        status = jnp.where(
            accept & ~ok_h,
            FitStatus.NONFINITE,
            jnp.where(
                accept & small & (lam <= 1.0),  # small because near the optimum, not damped
                FitStatus.CONVERGED,
                jnp.where(
                    (~accept) & (small | stuck),
                    jnp.where(ok_t, FitStatus.CONVERGED, FitStatus.NONFINITE),
                    jnp.where(it >= max_steps, FitStatus.MAX_STEPS, _RUNNING),
                ),
            ),
        ).astype(jnp.int32)
        return (x, fx, g, h, d, lam_next.astype(dtype), nu, it, status)

    x, fx, g, h, _, _, _, it, status = _while(
        cond, body, state, progress, every, lambda st: (st[7], st[1])
    )
    newton = FitResult(unravel(x), fx, jnp.linalg.norm(g), it, status)

    # Non-smooth objectives (MAE, Laplace): the Hessian has zero-curvature directions and
    # the damped Newton steps degrade to scaled gradient descent, which stalls short of the
    # kink. Such fits are polished with L-BFGS (see _polish).
    dh = jnp.abs(jnp.diag(h))
    degenerate = jnp.any(dh == 0) & (status != FitStatus.NONFINITE)
    return newton, degenerate


@functools.partial(jax.jit, static_argnames=("objective", "progress"))
def _polish(newton, args, max_steps, tol, every, *, objective, progress):
    """L-BFGS (zoom line search) from the Newton point; it measures curvature from gradient
    differences, which the zero Hessian of a piecewise-linear objective cannot give. The
    best point of the two phases is returned."""
    params = newton.params
    eps = jnp.finfo(_dtype_of(params)).eps
    res = _optax_loop(
        objective, _POLISH, progress, params, _POLISH.init(params), args, max_steps,
        jnp.sqrt(eps), every, xtol=tol,
    )
    better = res.value <= newton.value
    return FitResult(
        _select(better, res.params, params),
        jnp.where(better, res.value, newton.value),
        jnp.where(better, res.grad_norm, newton.grad_norm),
        newton.steps + res.steps,
        jnp.where(better, res.status, newton.status),
    )


# ---------------------------------------------------------------------------------------
# any optax transformation, full data


def _update_fn(optimizer, objective, args):
    if isinstance(optimizer, optax.GradientTransformationExtraArgs):

        def update(g, opt_state, x, value):
            return optimizer.update(
                g, opt_state, x, value=value, grad=g,
                value_fn=lambda p: objective(p, *args),
            )
    else:

        def update(g, opt_state, x, value):
            del value
            return optimizer.update(g, opt_state, x)

    return update


def _optax_loop(objective, optimizer, progress, params0, opt_state, args, max_steps, tol, every,
                xtol=None):
    """The optax loop (traced inside a jitted caller). With ``xtol`` it also stops, as
    converged, after ``_STALL`` consecutive updates that each move the parameters by less
    than ``xtol`` relative (one is not enough: a line search can return a tiny first step)."""
    dtype = _dtype_of(params0)

    def f(x):
        return _scalar(objective(x, *args)).astype(dtype)

    vg = jax.value_and_grad(f)
    update = _update_fn(optimizer, objective, args)
    zero_g = jax.tree_util.tree_map(jnp.zeros_like, params0)
    state = (
        params0, opt_state, params0, jnp.asarray(jnp.nan, dtype), zero_g,
        jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32), jnp.asarray(jnp.nan, dtype),
        jnp.asarray(_RUNNING, jnp.int32),
    )

    def cond(state):
        return state[-1] == _RUNNING

    def body(state):
        x, opt_state, x_last, f_last, g_last, it, n_small, f_first, _ = state
        fx, g = vg(x)
        finite = jnp.isfinite(fx) & _tree_finite(g) & _tree_finite(x)
        f_first = jnp.where(it == 0, fx, f_first)
        conv = _tree_norm(g) <= tol * _gscale(fx, f_first)
        keep = finite
        if xtol is not None:  # polish mode returns the best point (L-BFGS is not monotone here)
            keep = finite & ((fx <= f_last) | jnp.isnan(f_last))
        x_last, f_last, g_last = _select(keep, (x, fx, g), (x_last, f_last, g_last))
        updates, new_state = update(g, opt_state, x, fx)
        if xtol is not None:
            small = _tree_norm(updates) <= xtol * (_tree_norm(x) + xtol)
            n_small = jnp.where(small, n_small + 1, 0)
            conv = conv | (n_small >= _STALL)
        status = jnp.where(
            ~finite,
            FitStatus.NONFINITE,
            jnp.where(conv, FitStatus.CONVERGED,
                      jnp.where(it >= max_steps, FitStatus.MAX_STEPS, _RUNNING)),
        ).astype(jnp.int32)
        go = status == _RUNNING
        x_new = optax.apply_updates(x, updates)
        x = _select(go, x_new, x)
        opt_state = _select(go, new_state, opt_state)
        return (
            x, opt_state, x_last, f_last, g_last, it + go.astype(jnp.int32), n_small, f_first,
            status,
        )

    _, _, x, fx, g, it, _, _, status = _while(
        cond, body, state, progress, every, lambda st: (st[5], st[3])
    )
    return FitResult(x, fx, _tree_norm(g), it, status)


@functools.partial(jax.jit, static_argnames=("objective", "optimizer", "progress"))
def _optax(params0, opt_state, args, max_steps, tol, every, *, objective, optimizer, progress):
    return _optax_loop(
        objective, optimizer, progress, params0, opt_state, args, max_steps, tol, every
    )


# ---------------------------------------------------------------------------------------
# stochastic minibatches


@functools.partial(
    jax.jit, static_argnames=("objective", "optimizer", "batch_size", "progress")
)
def _stochastic(params0, opt_state, args, key, epochs, max_steps, tol, every, *,
                objective, optimizer, batch_size, progress):
    dtype = _dtype_of(params0)
    n = jax.tree_util.tree_leaves(args)[0].shape[0]
    nb = n // batch_size
    total = jnp.minimum(epochs * nb, max_steps)

    def f(x, *a):
        return _scalar(objective(x, *a)).astype(dtype)

    vg = jax.value_and_grad(f)

    def new_perm(epoch):
        return jax.random.permutation(jax.random.fold_in(key, epoch), n)

    state = (
        params0, opt_state, params0, new_perm(0),
        jnp.asarray(0, jnp.int32), jnp.asarray(_RUNNING, jnp.int32),
    )

    def cond(state):
        return state[-1] == _RUNNING

    def body(state):
        x, opt_state, x_last, perm, it, _ = state
        b = it % nb
        perm = lax.cond((b == 0) & (it > 0), lambda: new_perm(it // nb), lambda: perm)
        idx = lax.dynamic_slice_in_dim(perm, b * batch_size, batch_size)
        batch = jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), args)
        fx, g = vg(x, *batch)
        finite = jnp.isfinite(fx) & _tree_finite(g) & _tree_finite(x)
        x_last = _select(finite, x, x_last)
        update = _update_fn(optimizer, objective, batch)
        updates, new_state = update(g, opt_state, x, fx)
        x_new = optax.apply_updates(x, updates)
        it = it + finite.astype(jnp.int32)
        status = jnp.where(
            ~finite, FitStatus.NONFINITE, jnp.where(it >= total, FitStatus.MAX_STEPS, _RUNNING)
        ).astype(jnp.int32)
        x = _select(finite, x_new, x)
        opt_state = _select(finite, new_state, opt_state)
        return (x, opt_state, x_last, perm, it, status)

    x, _, x_last, _, it, status = _while(
        cond, body, state, progress, every, lambda st: (st[4], jnp.nan)
    )
    # the last update can itself produce non-finite params: judge the end on full data
    fx, g = vg(x, *args)
    finite = jnp.isfinite(fx) & _tree_finite(g) & _tree_finite(x)
    x = _select(finite, x, x_last)
    conv = finite & (_tree_norm(g) <= tol * _gscale(fx, vg(params0, *args)[0]))
    status = jnp.where(
        ~finite, FitStatus.NONFINITE, jnp.where(conv, FitStatus.CONVERGED, status)
    ).astype(jnp.int32)
    fx, g = jax.lax.cond(finite, lambda: (fx, g), lambda: vg(x, *args))
    return FitResult(x, fx, _tree_norm(g), it, status)


_DEFAULT_STOCHASTIC = optax.adam(1e-3)


def _budget(max_steps, batch_size, epochs, args) -> int:
    total = int(max_steps)
    if batch_size is not None:
        n = np.shape(jax.tree_util.tree_leaves(args)[0])[0]
        total = min(total, int(epochs) * (n // int(batch_size)))
    return total


def _set_hyperparams(opt_state: Any, hyperparams: dict[str, Any]) -> Any:
    hp = getattr(opt_state, "hyperparams", None)
    if not isinstance(hp, dict):
        raise TypeError(
            "nllax.fit: hyperparams= needs an optimizer built with optax.inject_hyperparams"
        )
    unknown = set(hyperparams) - set(hp)
    if unknown:
        raise ValueError(f"nllax.fit: hyperparams {sorted(unknown)} not in {sorted(hp)}")
    new = dict(hp)
    for k, v in hyperparams.items():
        new[k] = jnp.asarray(v, dtype=jnp.asarray(hp[k]).dtype)
    return opt_state._replace(hyperparams=new)


def fit(
    objective: Callable[..., jax.Array],
    params0: Any,
    *args: Any,
    optimizer: optax.GradientTransformation | None = None,
    max_steps: int | None = None,
    tol: float | None = None,
    throw: bool = False,
    batch_size: int | None = None,
    epochs: int = 1,
    key: jax.Array | None = None,
    hyperparams: dict[str, Any] | None = None,
    progress: bool = False,
    progress_every: int | None = None,
) -> FitResult:
    r"""Minimise ``objective(params, *args)`` (an NLL) in one compiled loop.

    See the module docstring for the methods, convergence tests and caching rules.

    Args:
      objective: ``objective(params, *args) -> scalar``; the same function object on
        every call reuses the compiled loop.
      params0: starting point, any pytree of floating arrays (its dtype is the dtype of
        the fit; float32 by default, float64 under ``jax.enable_x64``).
      *args: data passed to ``objective`` (sliced along axis 0 when ``batch_size`` is set).
      optimizer: ``None`` for the damped Newton method, or any optax transformation.
      max_steps: iteration budget (default 1000 for Newton, 10000 for optax; for the
        stochastic mode it caps ``epochs * (n // batch_size)``).
      tol: convergence tolerance (relative step for Newton, relative gradient norm for
        optax); defaults depend on the dtype.
      throw: raise :class:`FitError` instead of returning a result that did not converge
        (outside ``jit`` only; under ``jit`` the status is returned).
      batch_size: minibatch size; turns on the stochastic mode.
      epochs: passes over the data in the stochastic mode.
      key: PRNG key for the shuffling (default ``jax.random.key(0)``).
      hyperparams: values for an ``optax.inject_hyperparams`` optimizer's hyperparameters
        (changing them does not recompile).
      progress: show a tqdm progress bar (needs ``tqdm``).
      progress_every: iterations between progress-bar updates (default: 2% of the
        budget, at least 1); changing it recompiles nothing.

    Returns:
      :class:`FitResult` with ``params, value, grad_norm, steps, status`` and the
      properties ``converged`` and ``message``.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([1.0, 2.0, 4.0])
      >>> nll = lambda mu, y: nllax.gaussian.nll(y, mu)
      >>> r = nllax.fit(nll, jnp.array(0.0), y)
      >>> round(float(r.params), 4), bool(r.converged)
      (2.3333, True)
    """
    if not callable(objective):
        raise TypeError("nllax.fit: objective must be callable")
    params0 = _as_params(params0)
    dtype = _dtype_of(params0)
    eps = float(jnp.finfo(dtype).eps)

    if optimizer is None and batch_size is None:
        if hyperparams is not None:
            raise ValueError("nllax.fit: hyperparams= needs an optax optimizer")
        max_steps = 1000 if max_steps is None else max_steps
        tol = eps ** (2.0 / 3.0) if tol is None else tol
        tol = jnp.asarray(tol, dtype)

        def call():
            res, degenerate = _newton(
                params0, args, max_steps, tol, every, objective=objective, progress=progress
            )
            polish = functools.partial(
                _polish, args=args, max_steps=max_steps, tol=tol, every=every,
                objective=objective, progress=progress,
            )
            if isinstance(degenerate, jax.core.Tracer):  # fit called under jit/vmap
                return lax.cond(degenerate, polish, lambda r: r, res)
            # compiled only for the (rare) fits that need it
            return polish(res) if bool(degenerate) else res
    else:
        if optimizer is None:
            optimizer = _DEFAULT_STOCHASTIC
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                f"nllax.fit: optimizer must be an optax GradientTransformation, got {optimizer!r}"
            )
        opt_state = optimizer.init(params0)
        if hyperparams is not None:
            opt_state = _set_hyperparams(opt_state, hyperparams)
        tol = eps**0.5 if tol is None else tol
        tol = jnp.asarray(tol, dtype)
        if batch_size is None:
            max_steps = 10000 if max_steps is None else max_steps
            runner = functools.partial(
                _optax, objective=objective, optimizer=optimizer, progress=progress
            )
            call = lambda: runner(params0, opt_state, args, max_steps, tol, every)
        else:
            leaves = jax.tree_util.tree_leaves(args)
            if not leaves:
                raise ValueError("nllax.fit: batch_size= needs data in *args to slice")
            n = np.shape(leaves[0])[0] if np.ndim(leaves[0]) else None
            for i, a in enumerate(leaves):
                if np.ndim(a) == 0 or np.shape(a)[0] != n:
                    raise ValueError(
                        "nllax.fit: with batch_size=, every leaf of *args must have the "
                        f"observation axis first with the same length; leaf {i} has shape "
                        f"{np.shape(a)}, the first has {np.shape(leaves[0])}"
                    )
            if not 1 <= int(batch_size) <= n:
                raise ValueError(f"nllax.fit: batch_size must be in [1, {n}], got {batch_size}")
            if key is None:
                key = jax.random.key(0)
            max_steps = np.iinfo(np.int32).max if max_steps is None else max_steps
            runner = functools.partial(
                _stochastic, objective=objective, optimizer=optimizer,
                batch_size=int(batch_size), progress=progress,
            )
            call = lambda: runner(
                params0, opt_state, args, key, epochs, max_steps, tol, every
            )

    every = 1 if progress_every is None else progress_every
    if progress_every is None and progress:
        every = max(1, _budget(max_steps, batch_size, epochs, args) // 50)
    every = jnp.asarray(max(int(every), 1), jnp.int32)

    if progress:
        try:
            import tqdm
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("nllax.fit(progress=True) needs tqdm: pip install tqdm") from e
        total = _budget(max_steps, batch_size, epochs, args)
        _BAR[0] = tqdm.tqdm(total=total, desc="nllax.fit", leave=False)
        try:
            result = call()
            jax.block_until_ready(result)
            jax.effects_barrier()
        finally:
            _BAR[0].close()
            _BAR[0] = None
    else:
        result = call()

    if throw and not isinstance(result.status, jax.core.Tracer):
        status = FitStatus(int(result.status))
        if status != FitStatus.CONVERGED:
            raise FitError(
                f"nllax.fit did not converge: {status} (steps={int(result.steps)}, "
                f"value={float(result.value):.10g}, grad_norm={float(result.grad_norm):.3g})"
            )
    return result
