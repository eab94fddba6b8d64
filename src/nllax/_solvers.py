r"""The solvers behind :func:`nllax.fit`: each is an object with ``init`` / ``step`` /
``terminate`` / ``postprocess`` on a ``NamedTuple`` state (in the spirit of optimistix).

One loop (``nllax._fit._loop``) owns what every method shares: the iteration count,
``max_steps``, the last finite parameters, non-finite handling, the status, and the
progress chunks. A solver only says how to move and when it is done.

The interface (all methods are traced inside the compiled loop; a solver object is
immutable and hashable, it is part of the compile-cache key):

* ``init(fn, params, args, options, tol) -> state``: ``state.value`` and ``state.grad``
  are the objective and its gradient (any pytree) at ``params``.
* ``step(fn, params, args, options, state, tol) -> (params, state)``: one iteration.
* ``terminate(fn, params, args, options, state, tol) -> status``: ``RUNNING`` (-1),
  ``CONVERGED`` (0) or ``NONFINITE`` (2); ``MAX_STEPS`` is the loop's.
* ``postprocess(fn, last, args, options, state, tol, status)
  -> (params, value, grad, status)``: the point to report; ``last = (params, value,
  grad)`` is the last finite point the loop saw (default: report it).

``fn(params, *args)`` is the user's objective, checked to return a scalar of the fit's
dtype; ``fn.objective`` is the objective as the user passed it (the Gauss–Newton solver
reads its structure from there).

Built in: :class:`Newton` (damped Newton on the exact Hessian, the default for opaque
objectives), :class:`GaussNewton` (the same damping on :math:`J^\top W J` for a
:class:`nllax.Likelihood`, the default for those), :class:`Optax` (any optax
transformation) and the private minibatch solver used by ``fit(batch_size=...)``; the
trust region (``nllax._trust``) shares the damped solvers' scaling, acceptance,
convergence test and status (the helpers ``_scales`` ... ``_verdict`` below).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

__all__ = ["Solver", "Newton", "GaussNewton", "Optax"]

RUNNING = -1
CONVERGED = 0
MAX_STEPS = 1
NONFINITE = 2


def tree_norm(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.zeros(())
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))


def tree_finite(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def select(pred: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def _i32(x) -> jax.Array:
    return jnp.asarray(x).astype(jnp.int32)


def diagonal(h: jax.Array) -> jax.Array:
    """The diagonal of the square matrix ``h`` as a strided slice of its raveled entries
    (``h_ii`` is entry ``i (n + 1)``): the same values as ``jnp.diag(h)``, which traces a
    platform-dependent ``cond`` (both branches) and a gather for each call."""
    n = h.shape[0]
    return lax.slice(h.reshape(n * n), (0,), (n * n,), (n + 1,))


class Solver:
    """Base class of the solvers accepted by ``nllax.fit(..., solver=...)``.

    Subclasses implement ``init``, ``step`` and ``terminate`` (see the module docstring);
    ``postprocess`` defaults to the current point. ``default_tol(dtype)`` and
    ``default_max_steps`` give ``fit``'s defaults for this solver.
    """

    default_max_steps: int = 1000
    # True when ``step`` only ever moves to points whose value, gradient and parameters are
    # finite (a non-finite trial is a rejection) and says NONFINITE itself otherwise: then
    # the loop keeps no copy of the last finite point and tests no finiteness per step.
    finite_iterates: bool = False

    def default_tol(self, dtype) -> float:
        return float(jnp.finfo(dtype).eps) ** 0.5

    def init(self, fn, params, args, options, tol):  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, fn, params, args, options, state, tol):  # pragma: no cover - interface
        raise NotImplementedError

    def terminate(self, fn, params, args, options, state, tol):  # pragma: no cover
        raise NotImplementedError

    def postprocess(self, fn, last, args, options, state, tol, status):
        """``last = (params, value, grad)``: the last finite point (the current one unless
        the loop stopped on a non-finite value)."""
        del fn, args, options, state, tol
        return (*last, status)

    def starts_in_loop(self, state) -> bool:
        """Whether the loop's first iteration evaluates the start (``init`` evaluated
        nothing; the loop then counts that iteration as iteration 0, not a step, and the
        start's finiteness and the budget are decided after it). The loop then calls
        ``step(..., more=...)``, ``more`` saying whether the budget allows the iteration
        after this one (the rotated solvers propose the next trial at the end of ``step``
        and compute nothing costly for a trial that will not be evaluated)."""
        del state
        return False

    def budget(self, args, options, max_steps):
        """The iteration cap (the minibatch solver lowers it to ``epochs * batches``)."""
        del args, options
        return max_steps


# ---------------------------------------------------------------------------------------
# Damped Newton (exact Hessian) and Gauss-Newton / Fisher scoring (J'WJ)


def _stacked_entry(self, name):
    """``__getattr__`` of a state whose scalars travel stacked: ``num[i]`` for the name
    ``NUM[i]``, ``flags[i]`` for ``FLAGS[i]``."""
    cls = type(self)
    if name in cls.NUM:
        return self.num[cls.NUM.index(name)]
    if name in cls.FLAGS:
        return self.flags[cls.FLAGS.index(name)]
    raise AttributeError(name)


class _DampedState(NamedTuple):
    """The damped iteration's state. Its scalars travel as two stacked vectors (each
    loop-carried value costs the compiled loop a kernel or a copy), read by name as
    attributes: ``num`` = (value; lam: the Levenberg-Marquardt parameter, in
    Jacobi-scaled coordinates; nu: Nielsen's growth factor after rejections; r_prev: the
    relative size of the last accepted step, per-coordinate metric) and ``flags`` =
    (stale: x was just accepted, its curvature is new or still to be computed; blocked: a
    trial point since the last accepted one was not finite; trusted: the last step was
    accepted with rho > 0.75, the model is good). Build it with :meth:`make`."""

    x: jax.Array  # flat parameters
    grad: jax.Array  # flat gradient
    hess: jax.Array  # curvature matrix at x (valid when not stale)
    d: jax.Array  # running max of |diag(curvature)|: the damping's scaling (Moré 1978)
    num: jax.Array
    flags: jax.Array
    status: jax.Array
    extra: Any  # solver-specific loop invariants (Gauss-Newton: the constant Jacobian)
    trial: Any = None  # the proposed trial point (_Trial), evaluated and judged next

    NUM = ("value", "lam", "nu", "r_prev")
    FLAGS = ("stale", "blocked", "trusted")

    @classmethod
    def make(cls, x, value, grad, hess, d, lam, nu, stale, status, blocked, r_prev, trusted,
             extra, trial):
        dtype = x.dtype
        num = jnp.stack([jnp.asarray(v, dtype) for v in (value, lam, nu, r_prev)])
        flags = jnp.stack([jnp.asarray(v, bool) for v in (stale, blocked, trusted)])
        return cls(x, grad, hess, d, num, flags, _i32(status), extra, trial)

    __getattr__ = _stacked_entry


class _Trial(NamedTuple):
    """A damped step as proposed at the current point: the trial point ``xt`` and what
    judging it needs. The rotated loop carries it to the next iteration, which evaluates
    ``xt`` first (one trace of the evaluation per compiled fit). The scalars travel as two
    stacked vectors (each loop-carried value costs the loop a kernel or a copy), named by
    ``NUM`` and ``FLAGS``: ``num`` = (pred: the decrease the model predicts, php = p'Bp,
    pp = |s p|^2, r_q, r_p: the relative sizes of the undamped step and of the step taken)
    and ``flags`` = (first: no step yet, ``xt`` is the start; ok_h: the curvature at the
    current point is finite; valid_q, valid_p, grad_small, candidate, undamped). The trust
    region's trial (``nllax._trust``) is a subclass with its own names."""

    xt: jax.Array
    d: jax.Array  # the running max of |B_ii| including the current point
    c: jax.Array  # the convergence scale at the current point
    num: jax.Array
    flags: jax.Array

    NUM = ("pred", "php", "pp", "r_q", "r_p")
    FLAGS = ("first", "ok_h", "valid_q", "valid_p", "grad_small", "candidate", "undamped")

    @classmethod
    def make(cls, xt, d, c, **kw):
        return cls(xt, d, c, jnp.stack([kw[k] for k in cls.NUM]).astype(xt.dtype),
                   jnp.stack([jnp.asarray(kw[k]) for k in cls.FLAGS]))

    @classmethod
    def pending(cls, x0, dtype):
        """The trial of the first iteration: the start itself (the rest unused)."""
        v = jnp.zeros_like(x0)
        flags = jnp.zeros(len(cls.FLAGS), bool).at[0].set(True)
        return cls(x0, v, v, jnp.zeros(len(cls.NUM), dtype), flags)

    __getattr__ = _stacked_entry


# The logic that the damped iteration (``_Damped.step``) and the trust region
# (``nllax._trust``) share: scaling, the per-parameter convergence test, the acceptance of
# a step and the status. Each helper computes its per-coordinate reductions as one
# reduction over stacked rows, as ``_Damped.step`` did inline (each reduction is a kernel
# of its own, and each kernel costs compile time and a launch per step).


def _scales(d, hd, eps):
    """``(s, c)``: the step's scaling and the convergence scale, from ``d`` (the running
    maximum of ``|B_ii|`` over the accepted points: Moré's (1978) scaling) and ``hd``
    (``|B_ii|`` now). ``s = sqrt(d)``, ``c = sqrt(hd)``, each floored at ``eps`` times its
    largest entry (a zero-curvature direction, MAE), 1 where all are zero. The convergence
    scale is the *current* diagonal, so that a large curvature met far from the optimum
    cannot make the test lax there (the running max can)."""
    dmax, hmax = jnp.max(jnp.stack([d, hd]), axis=1)
    d_eff = jnp.where(dmax > 0, jnp.maximum(d, eps * dmax), jnp.ones_like(d))
    s = jnp.sqrt(d_eff)
    c = jnp.sqrt(jnp.where(hmax > 0, jnp.maximum(hd, eps * hmax), jnp.ones_like(hd)))
    return s, c


def _relative_sizes(x, c, q, p, g):
    """``(r_q, r_p, r_g)``: the relative sizes of the steps ``q`` and ``p``,
    ``max_i |v_i| / (|x_i| + 1/c_i)``, and of the gradient,
    ``max_i |g_i| / (c_i (c_i |x_i| + 1))``, in one reduction.

    A step is small per parameter when its relative size is ``<= tol``, i.e.
    ``c_i |v_i| <= tol (c_i |x_i| + 1)`` for every ``i``; ``1/c_i`` is the parameter's
    marginal standard error when the objective is an NLL: a parameter whose value is 0 is
    then resolved to ``tol`` standard errors, any other to ``tol`` relative."""
    scale = jnp.abs(x) + 1.0 / c
    return jnp.max(
        jnp.stack([jnp.abs(q) / scale, jnp.abs(p) / scale, jnp.abs(g) / (c * c * scale)]),
        axis=1)


def _trial_gradient_size(gst, xt, c):
    """The relative size of the trial point's gradient (``gst = g_t / c``), as in
    :func:`_relative_sizes`; NaN unless its gradient and coordinates are all finite
    (``0 * inf`` is NaN), so it is also the finiteness test of the trial point."""
    return jnp.max(jnp.abs(gst) / (c * (jnp.abs(xt) + 1.0 / c)) + 0.0 * xt)


def _converging(fresh, ok_h, valid_q, r_q, r_prev, tol):
    """Whether the undamped step ``q`` is taken as the converging step: ``r_q`` and the
    last step's ``r_prev`` predict the error left after taking ``q``,
    ``r_q * (r_q / r_prev)`` (linear contraction; it over-estimates a quadratic one; no
    previous step: ``r_prev = 0``, the ratio is inf and the prediction is ``r_q``); it must
    be below ``tol``, and ``q`` itself below ``sqrt(tol)`` (the prediction needs the
    asymptotic regime). Only at a fresh point (its curvature just computed)."""
    predicted = r_q * jnp.minimum(1.0, r_q / r_prev)
    return fresh & ok_h & valid_q & (predicted <= tol) & (r_q <= jnp.sqrt(tol))


def _acceptance(fx, ft, pred, gn2, gnt2, ok_h, valid_p, ok_t, polish_ratio, eps):
    """``(accept, actual, rho)`` for the trial point: accepted when the actual decrease
    ``actual = f(x) - f(x + p)`` is more than ``1e-4`` of the predicted one ``pred > 0``,
    or, at rounding level, when the squared scaled gradient norm falls to ``gnt2 <=
    polish_ratio * gn2``: at rounding level f cannot tell better from worse, the gradient
    can. Rounding level: ``|actual|`` within ``16 eps |f|``, or, when the predicted
    decrease is itself not measurable (below ``1e3 eps |f|``), within that bound: the
    rounding error of a sum such as ``0.5 * SSE`` scales with its terms
    (``eps * sum |r_i y_i|``), not with its value, and can exceed ``16 eps |f|`` by far."""
    actual = fx - ft
    rho = actual / jnp.where(pred > 0, pred, 1.0)
    unmeasurable = 1e3 * eps * jnp.abs(fx)
    at_rounding = (jnp.abs(actual) <= 16 * eps * jnp.abs(fx)) | (
        (pred <= unmeasurable) & (jnp.abs(actual) <= unmeasurable))
    polish = at_rounding & (gnt2 <= polish_ratio * gn2)
    accept = ok_h & valid_p & ok_t & (pred > 0) & ((rho > 1e-4) | polish)
    return accept, actual, rho


def _stopping(candidate, accept, valid_q, valid_p, r_q, r_p, r_gt, grad_small, tol):
    """``(small, at_optimum)``. ``at_optimum``: the converging ``q`` was taken and the
    gradient at the new point is small per parameter (a rejected ``q`` leaves the error
    at ``x``, about ``r_q``: then ``r_q`` itself must be small, and the gradient at ``x``).
    ``small``: the step is small per parameter; for a rejected step that says "converged"
    only if the undamped step is small too (a damped or trust-region step is small
    whenever the damping is large or the region small), the step taken where the
    curvature is singular."""
    small = jnp.where(valid_q, r_q <= tol, valid_p & (r_p <= tol))
    at_optimum = candidate & jnp.where(accept, r_gt <= tol, grad_small & (r_q <= tol))
    return small, at_optimum


def _verdict(ok_h, ok_t, accept, at_optimum, small, grad_small, stuck, blocked):
    """``(status, blocked)`` after a step: NONFINITE where the curvature at the accepted
    point is not finite; CONVERGED at the optimum or when a rejected step is small and the
    gradient small (rounding level); ``stuck`` (no decrease can be found: the damping at
    its cap, the region below rounding) is CONVERGED at rounding level unless the way on
    was barred by non-finite trial points (``blocked`` since the last accepted point) and
    the gradient is not small."""
    blocked = (~accept) & (blocked | ~ok_t)
    status = jnp.where(
        ~ok_h,
        NONFINITE,
        jnp.where(
            at_optimum | ((~accept) & small & grad_small),
            CONVERGED,
            jnp.where(stuck, jnp.where(blocked & ~grad_small, NONFINITE, CONVERGED),
                      RUNNING),
        ),
    )
    return status, blocked


@dataclasses.dataclass(frozen=True)
class _Damped(Solver):
    """Levenberg–Marquardt-damped Newton iteration on a curvature matrix ``B``: the
    exact Hessian (:class:`Newton`) or :math:`J^\\top W J` (:class:`GaussNewton`).

    ``eager`` solvers evaluate value, gradient and curvature together at every trial
    point (one pass over the data per step, when the curvature costs about as much as
    the gradient); the others evaluate the curvature lazily, once per accepted point."""

    default_max_steps = 1000
    eager = False
    optimistic = False
    finite_iterates = True  # a trial point is accepted only when all of it is finite

    def default_tol(self, dtype) -> float:
        return float(jnp.finfo(dtype).eps) ** (2.0 / 3.0)

    # -- hooks
    def _prepare(self, fn, x, unravel, args):
        return None

    def _curvature(self, fn, x, unravel, args, extra):  # pragma: no cover - interface
        raise NotImplementedError

    def _evaluate(self, fn, x, unravel, args, extra):
        """``(value, grad, curvature)`` at ``x`` (eager solvers)."""
        f = lambda x: fn(unravel(x), *args)  # noqa: E731
        value, grad = jax.value_and_grad(f)(x)
        return value, grad, self._curvature(fn, x, unravel, args, extra)

    def _lazy_curvature(self, fn, unravel, args, state, more, dtype):
        """Non-eager solvers: the curvature at ``state.x``, computed once per accepted point
        (``state.stale``: one trace, a ``lax.cond``) and only when the loop goes on (the
        status is RUNNING and ``more``: the budget allows another iteration), else the
        stored one."""
        return lax.cond(
            state.stale & (state.status == RUNNING) & more,
            lambda x: self._curvature(fn, x, unravel, args, state.extra).astype(dtype),
            lambda x: state.hess,
            state.x,
        )

    # -- interface
    def _flat(self, fn, params, args):
        x0, unravel = ravel_pytree(params)
        dtype = x0.dtype

        def f(x):
            return fn(unravel(x), *args)

        return x0, unravel, f, dtype

    def init(self, fn, params, args, options, tol):
        del options, tol
        x0, unravel, f, dtype = self._flat(fn, params, args)
        return self._init_damped(fn, x0, unravel, args, f, dtype,
                                 self._prepare(fn, x0, unravel, args))

    def _init_damped(self, fn, x0, unravel, args, f, dtype, extra):
        """The damped iteration's first state, given the loop invariants ``extra``. It
        evaluates nothing: the loop's first iteration evaluates at ``x0``
        (``_Trial.first``), so the value and gradient (and an eager solver's curvature) are
        traced once per compiled fit, inside the loop body, not a second time for the
        start."""
        del fn, unravel, args, f
        n = x0.size
        return self._start(x0, jnp.zeros((), dtype), jnp.zeros(n, dtype),
                           jnp.zeros((n, n), dtype), extra, RUNNING, _Trial.pending(x0, dtype))

    def _start(self, x0, f0, g0, h0, extra, status, trial):
        n, dtype = x0.size, x0.dtype
        return _DampedState.make(
            x0, f0, g0, h0, jnp.zeros(n, dtype), 1e-3, 2.0, True, status, False, 0.0,
            self.optimistic, extra, trial,
        )

    def starts_in_loop(self, state) -> bool:
        return getattr(state, "trial", None) is not None

    def terminate(self, fn, params, args, options, state, tol):
        return state.status

    def step(self, fn, params, args, options, state, tol, more=True):
        """One rotated iteration: the previous iteration proposed the trial point and
        carried it here; it is evaluated first and judged, then the next trial is proposed
        from the new current point (a non-eager solver first computes the curvature there
        when it is new, and only if the loop goes on: ``more``, from the loop). The first
        iteration evaluates the start x0 instead and builds the state that a non-rotated
        ``init`` would have built (not a step: the loop counts it as iteration 0). The
        arithmetic of every step is that of propose-evaluate-judge in one iteration."""
        del options
        # the loop passes back the params that `step` returned: unravel(state.x)
        _, unravel, f, dtype = self._flat(fn, params, args)
        trial = state.trial
        if self.eager:
            ft, gt, ht = self._evaluate(fn, trial.xt, unravel, args, state.extra)
            ht = ht.astype(dtype)
        else:  # the curvature at an accepted point is computed below, when it is current
            ft, gt = jax.value_and_grad(f)(trial.xt)
            ht = state.hess
        judged = self._judge(state, trial, state.hess, ft, gt, ht, tol, dtype)
        ok0 = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt)) & jnp.all(jnp.isfinite(trial.xt))
        started = self._start(trial.xt, ft, gt, ht, state.extra,
                              jnp.where(ok0, RUNNING, NONFINITE), trial)
        # (the loop invariants and the trial are the same in both: not selected)
        fields = [f for f in _DampedState._fields if f not in ("extra", "trial")]
        new = judged._replace(**{f: jnp.where(trial.first, getattr(started, f),
                                              getattr(judged, f)) for f in fields})
        if not self.eager:
            new = new._replace(hess=self._lazy_curvature(fn, unravel, args, new, more, dtype))
        proposed = self._propose(new, new.hess, tol, dtype)
        new = new._replace(trial=proposed)
        return unravel(new.x), new

    def _propose(self, state, h, tol, dtype) -> _Trial:
        """The step from ``state`` with the curvature ``h`` at its point: the trial point
        and what the judgement of it needs (:class:`_Trial`)."""
        eps = jnp.finfo(dtype).eps
        x, g, lam = state.x, state.grad, state.lam
        n = x.size
        eye = jnp.eye(n, dtype=dtype)
        ok_h = jnp.isfinite(jnp.max(jnp.abs(h)))  # (a NaN or an inf anywhere)
        hd = jnp.abs(diagonal(h))
        # (where the curvature is not finite the step ends NONFINITE whatever d holds)
        d = jnp.where(state.stale, jnp.maximum(state.d, hd), state.d)
        # damping scale s (Jacobi scaling by the running max), convergence scale c
        s, c = _scales(d, hd, eps)

        # The damped step and the undamped Newton step, in one batched Cholesky solve
        # (a factor is NaN where its matrix is not positive definite).
        hs = jnp.where(ok_h, h, 0.0) / (s[:, None] * s[None, :])
        a = jnp.stack([hs + lam * eye, hs])
        chol = jnp.linalg.cholesky(a)
        rhs = jnp.broadcast_to((-g / s)[:, None], (2, n, 1))
        sol = jax.scipy.linalg.cho_solve((chol, True), rhs)[..., 0] / s
        valid = jnp.all(jnp.isfinite(sol), axis=1)
        sol = jnp.where(valid[:, None], sol, 0.0)  # a failed solve is no step
        p, q = sol[0], sol[1]
        valid_p, valid_q = valid[0], valid[1]

        # Convergence, per parameter (module docstring of nllax._fit): the undamped Newton
        # step q estimates the distance to the optimum; when the error it predicts is
        # below tol, q is taken, and the fit has converged if the gradient at the new
        # point is small per parameter.
        r_q, r_pd, r_g = _relative_sizes(x, c, q, p, g)
        grad_small = ok_h & (r_g <= tol)
        candidate = _converging(state.stale, ok_h, valid_q, r_q, state.r_prev, tol)
        # After a very successful step the quadratic model is trusted: the undamped step
        # is tried (a failure is an ordinary rejection, and lambda grows from where it
        # was). Near the optimum this removes the slow decay of lambda by 1/3 per step.
        undamped = candidate | (state.trusted & ok_h & valid_q)
        p = jnp.where(undamped, q, p)
        r_p = jnp.where(undamped, r_q, r_pd)  # the relative size of the step taken
        valid_p = valid_p | undamped

        # g'p, p'Hp and |s p|^2 in one reduction
        gp, php, pp = jnp.sum(jnp.stack([g * p, p * (h @ p), jnp.square(s * p)]), axis=1)
        pred = -(gp + 0.5 * php)
        xt = x + p
        return _Trial.make(xt, d, c, pred=pred, php=php, pp=pp, r_q=r_q, r_p=r_p,
                              first=False, ok_h=ok_h, valid_q=valid_q, valid_p=valid_p,
                              grad_small=grad_small, candidate=candidate, undamped=undamped)

    def _judge(self, state, t, h, ft, gt, ht, tol, dtype) -> _DampedState:
        """The state after the trial point ``t.xt`` (value ``ft``, gradient ``gt``,
        curvature ``ht``) was accepted or rejected; ``h`` the curvature at ``state.x``."""
        eps = jnp.finfo(dtype).eps
        lam_max = 1.0 / eps**2
        x, fx, g, lam, nu = state.x, state.value, state.grad, state.lam, state.nu
        c, xt, ok_h = t.c, t.xt, t.ok_h
        # in units of the curvature scale, so that one parameter on a large scale cannot
        # hide the others (its gradient's rounding noise dominates the plain norm)
        gs, gst = g / c, gt / c
        gn2, gnt2 = jnp.sum(jnp.stack([gs * gs, gst * gst]), axis=1)
        r_gt = _trial_gradient_size(gst, xt, c)
        ok_t = jnp.isfinite(ft) & jnp.isfinite(r_gt)
        # at rounding level, accepted when |gt/c| <= |g/c| / 2
        accept, actual, rho = _acceptance(fx, ft, t.pred, gn2, gnt2, ok_h, t.valid_p, ok_t,
                                          0.25, eps)
        small, at_optimum = _stopping(t.candidate, accept, t.valid_q, t.valid_p, t.r_q,
                                      t.r_p, r_gt, t.grad_small, tol)

        shrink = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * jnp.clip(rho, 0.0, 1.0) - 1.0) ** 3)
        # after a rejection lambda must at least reach the curvature along the step (the
        # Rayleigh quotient in scaled space), or a tiny lambda needs many doublings to bite
        pp = t.pp
        curv = jnp.abs(t.php) / jnp.where(pp > 0, pp, 1.0)
        measurable = t.pred > 1e3 * eps * jnp.abs(fx)  # not a rejection at rounding level
        curv = jnp.where(t.valid_p & measurable & (pp > 0), curv, 0.0)
        # after a failed trusted (undamped) try the damped step is tried next, with lambda
        # raised to the curvature along the failed step only (no growth factor)
        failed_try = t.undamped & ~t.candidate & ~accept
        lam_next = jnp.where(
            accept, lam * shrink,
            jnp.minimum(jnp.maximum(jnp.where(failed_try, lam, lam * nu), curv), lam_max))
        # no decrease at any damping
        stuck = (~accept) & (lam >= lam_max)
        nu = jnp.where(failed_try, nu,
                       jnp.where(accept, 2.0, jnp.minimum(2.0 * nu, 2.0**20))).astype(dtype)

        status, blocked = _verdict(ok_h, ok_t, accept, at_optimum, small, t.grad_small, stuck,
                                   state.blocked)
        return _DampedState.make(
            jnp.where(accept, xt, x), jnp.where(accept, ft, fx), jnp.where(accept, gt, g),
            jnp.where(accept, ht, h), t.d,
            lam_next.astype(dtype), nu, accept, status, blocked,
            jnp.where(accept, t.r_p, state.r_prev).astype(dtype),
            accept & (rho > 0.75) & self.optimistic, state.extra, state.trial,
        )

    def degenerate(self, state) -> jax.Array:
        """A zero diagonal entry of the last curvature: a piecewise-linear direction."""
        return jnp.any(diagonal(state.hess) == 0)


@dataclasses.dataclass(frozen=True)
class Newton(_Damped):
    r"""Levenberg–Marquardt-damped Newton on the exact Hessian (``jax.hessian``).

    Each step solves :math:`(H + \lambda D)p = -g` by Cholesky after Jacobi scaling
    (:math:`D` the running maximum of :math:`|H_{ii}|`, Moré's scaling); a step is
    accepted when the actual decrease is at least ``1e-4`` of the decrease the quadratic
    model predicts, and :math:`\lambda` follows Nielsen's rule. An indefinite
    :math:`H + \lambda D` counts as a rejected step. The Hessian is traced once and
    evaluated once per accepted point.

    Args:
      polish: continue non-smooth fits (an exactly zero Hessian diagonal entry at the
        end, e.g. MAE) with ``optax.lbfgs`` from the Newton point.
      optimistic: after a step whose actual decrease was more than 0.75 of the
        predicted one, try the undamped step next (a failed try keeps lambda). Off by
        default here: on the NIST problems it costs Bennett5 (start 2) its convergence
        within the default budget.
    """

    polish: bool = True
    optimistic: bool = False

    def _curvature(self, fn, x, unravel, args, extra):
        return jax.hessian(lambda x: fn(unravel(x), *args))(x)



@dataclasses.dataclass(frozen=True)
class GaussNewton(_Damped):
    r"""The damped Newton iteration of :class:`Newton` on :math:`B = J^\top W J`, for an
    objective that is a :class:`nllax.Likelihood` (``fit(lik, ...)`` or
    ``fit(lik.nll, ...)``; any other objective raises ``TypeError``).

    :math:`J` is the Jacobian of the predicted family parameters with respect to the
    parameters (``jax.jacfwd`` of the predictor; when the predictor is affine in the
    parameters, which is read off its JVP's jaxpr, it is read off the linearised
    predictor once per fit, and each evaluation is one pass over it: ``u = u0 + J (x -
    x0)`` and :math:`J^\top[WJ, g]` in cache-sized blocks of rows), :math:`W` the
    per-observation curvature of the family's NLL with respect to its predicted
    parameters (a :math:`k\times k` block per observation for :math:`k` predicted
    parameters), by autodiff: one JVP of the gradient with a ones tangent per predicted
    parameter, since the NLL terms are elementwise. :math:`J^\top W J` is one matrix
    product over the observations (for a linear predictor, :math:`X^\top W X`).

    For an affine predictor and ``curvature="observed"`` this *is* the exact Hessian:
    Newton's method at the cost of one pass over the data per step. For a nonlinear
    predictor it is the Gauss–Newton matrix (the predictor's second derivatives are left
    out). Observed curvature can be negative (a Student-t or Cauchy location, a
    non-canonical link); then :math:`B` may be indefinite, and the damping treats it as
    :class:`Newton` treats an indefinite Hessian (the step is rejected and
    :math:`\lambda` raised until :math:`B + \lambda D` is positive definite).

    Args:
      curvature: ``"observed"`` (default) or ``"expected"``: the family's expected
        information (Fisher scoring) where the family module exposes
        ``family.fisher`` and predicts one parameter, the observed curvature otherwise.
      polish: as for :class:`Newton`.
      optimistic: as for :class:`Newton`, and the first step is undamped too; on by
        default (GLMs from beta = 0: Poisson n = 1e4, p = 50 in 7 steps instead of 11,
        Gaussian in 2 instead of 4).
    """

    curvature: str = "observed"
    polish: bool = True
    optimistic: bool = True
    eager = True

    def __post_init__(self):
        if self.curvature not in ("observed", "expected"):
            raise ValueError(
                f"nllax.solvers.GaussNewton: curvature must be 'observed' or 'expected', "
                f"got {self.curvature!r}"
            )

    def _lik(self, fn):
        from nllax._likelihood import likelihood_of

        lik = likelihood_of(fn.objective)
        if lik is None:
            raise TypeError(
                "nllax.solvers.GaussNewton needs a nllax.Likelihood objective "
                "(fit(lik, ...) or fit(lik.nll, ...)); got "
                f"{getattr(fn.objective, '__name__', type(fn.objective).__name__)}"
            )
        return lik

    def _prepare(self, fn, x, unravel, args):
        # an affine predictor: u = u0 + J (x - x0), one pass over J per evaluation;
        # otherwise J (and u) from the predictor at every point
        lik = self._lik(fn)
        plan = lik.affine_plan(x, unravel, args)
        return {"plan": plan} if plan is not None else {"jac": None}

    def _curvature(self, fn, x, unravel, args, extra):
        return self._evaluate(fn, x, unravel, args, extra)[2]

    def _evaluate(self, fn, x, unravel, args, extra):
        f, g, h = self._lik(fn).value_grad_curvature(
            x, unravel, args, kind=self.curvature, **extra
        )
        return f.astype(fn.dtype), g, h


# ---------------------------------------------------------------------------------------
# any optax transformation


def _gscale(value: jax.Array, first: jax.Array) -> jax.Array:
    # Objective scale for the gradient test: the smaller of the current and the starting
    # |value| (at least 1), so a diverging run whose value explodes cannot pass it.
    return jnp.maximum(1.0, jnp.minimum(jnp.abs(value), jnp.abs(first)))


def _update_fn(optimizer, fn, args):
    if isinstance(optimizer, optax.GradientTransformationExtraArgs):

        def update(g, opt_state, x, value):
            return optimizer.update(
                g, opt_state, x, value=value, grad=g, value_fn=lambda p: fn(p, *args)
            )
    else:

        def update(g, opt_state, x, value):
            del value
            return optimizer.update(g, opt_state, x)

    return update


def set_hyperparams(opt_state: Any, hyperparams: dict[str, Any]) -> Any:
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


def _stored_value_and_grad(opt_state):
    """Whether the optimizer's state holds the value and gradient at the new point (the
    line searches of ``optax.lbfgs`` do): then they are reused, not recomputed."""
    try:
        v = optax.tree.get(opt_state, "value")
        g = optax.tree.get(opt_state, "grad")
    except (KeyError, ValueError):
        return False
    return v is not None and g is not None


class _OptaxState(NamedTuple):
    opt_state: Any
    value: jax.Array
    grad: Any
    f_first: jax.Array
    n_small: jax.Array
    best: Any  # (params, value, grad) with the lowest finite value (polish mode)


@dataclasses.dataclass(frozen=True)
class Optax(Solver):
    r"""Any optax transformation: ``params <- params + update(grad)``.

    Transformations that take extra arguments (:class:`optax.GradientTransformationExtraArgs`,
    e.g. ``optax.lbfgs`` and its zoom line search) receive ``value=``, ``grad=`` and
    ``value_fn=``; when their state stores the value and gradient at the new point they
    are reused (one objective evaluation per step fewer).

    Convergence: :math:`\|\nabla f\|_2 \le \mathrm{tol}\cdot\max(1, \min(|f|, |f_0|))`
    (:math:`f_0` the starting value: a diverging run cannot pass the test); default
    ``tol = sqrt(eps)``, ``max_steps = 10000``. ``fit(optimizer=opt)`` and
    ``fit(solver=opt)`` wrap ``opt`` in this class.

    Args:
      optimizer: an ``optax.GradientTransformation``.
      stall: if > 0, also stop (converged) after this many consecutive updates that each
        move the parameters by less than ``options["xtol"]`` relative (one is not enough:
        a line search can return a tiny first step); used by the L-BFGS polish.
      keep_best: report the iterate with the lowest value (L-BFGS is not monotone on
        non-smooth objectives).
    """

    optimizer: optax.GradientTransformation
    stall: int = 0
    keep_best: bool = False
    default_max_steps = 10000

    def __post_init__(self):
        if not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(
                "nllax.fit: optimizer must be an optax GradientTransformation, got "
                f"{self.optimizer!r}"
            )

    def init(self, fn, params, args, options, tol):
        opt_state = self.optimizer.init(params)
        if options.get("hyperparams") is not None:
            opt_state = set_hyperparams(opt_state, options["hyperparams"])
        f0, g0 = jax.value_and_grad(fn)(params, *args)
        return _OptaxState(opt_state, f0, g0, f0, jnp.asarray(0, jnp.int32), (params, f0, g0))

    def step(self, fn, params, args, options, state, tol):
        update = _update_fn(self.optimizer, fn, args)
        updates, opt_state = update(state.grad, state.opt_state, params, state.value)
        new = optax.apply_updates(params, updates)
        if _stored_value_and_grad(opt_state):
            value, grad = optax.value_and_grad_from_state(fn)(new, *args, state=opt_state)
        else:
            value, grad = jax.value_and_grad(fn)(new, *args)
        n_small = state.n_small
        if self.stall:
            xtol = options["xtol"]
            small = tree_norm(updates) <= xtol * (tree_norm(params) + xtol)
            n_small = jnp.where(small, n_small + 1, 0).astype(jnp.int32)
        best = state.best
        if self.keep_best:
            better = jnp.isfinite(value) & tree_finite(grad) & (value <= best[1])
            best = select(better, (new, value, grad), best)
        return new, _OptaxState(opt_state, value, grad, state.f_first, n_small, best)

    def terminate(self, fn, params, args, options, state, tol):
        conv = tree_norm(state.grad) <= tol * _gscale(state.value, state.f_first)
        if self.stall:
            conv = conv | (state.n_small >= self.stall)
        return _i32(jnp.where(conv, CONVERGED, RUNNING))

    def postprocess(self, fn, last, args, options, state, tol, status):
        if not self.keep_best:
            return (*last, status)
        p, v, g = state.best
        better = v <= last[1]
        return (*select(better, (p, v, g), last), status)


# ---------------------------------------------------------------------------------------
# stochastic minibatches (fit(batch_size=...))


class _MinibatchState(NamedTuple):
    opt_state: Any
    value: jax.Array  # on the minibatch `k`, at the current params
    grad: Any
    perm: jax.Array
    k: jax.Array  # index of the minibatch that value/grad belong to
    f_first: jax.Array  # full-data value at params0


@dataclasses.dataclass(frozen=True)
class Minibatch(Solver):
    """Minibatch steps with an optax optimizer (``fit(batch_size=...)``).

    Each epoch draws a permutation from ``options["key"]`` (``fold_in(key, epoch)``) and
    slices ``n // batch_size`` minibatches of ``batch_size`` rows from it; the value and
    gradient of minibatch ``k + 1`` are computed at the parameters after update ``k``.
    At the end, value and gradient are computed on the full data; the status is
    CONVERGED if they meet the :class:`Optax` test, else MAX_STEPS.
    """

    optimizer: optax.GradientTransformation
    batch_size: int

    def _n(self, args):
        return jax.tree_util.tree_leaves(args)[0].shape[0]

    def budget(self, args, options, max_steps):
        nb = self._n(args) // self.batch_size
        return jnp.minimum(options["epochs"] * nb, max_steps)

    def _batch(self, args, perm, k):
        nb = self._n(args) // self.batch_size
        idx = lax.dynamic_slice_in_dim(perm, (k % nb) * self.batch_size, self.batch_size)
        return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), args)

    def _perm(self, options, epoch, n):
        return jax.random.permutation(jax.random.fold_in(options["key"], epoch), n)

    def init(self, fn, params, args, options, tol):
        opt_state = self.optimizer.init(params)
        if options.get("hyperparams") is not None:
            opt_state = set_hyperparams(opt_state, options["hyperparams"])
        perm = self._perm(options, 0, self._n(args))
        k = jnp.asarray(0, jnp.int32)
        f0, g0 = jax.value_and_grad(fn)(params, *self._batch(args, perm, k))
        f_first = fn(params, *args)
        return _MinibatchState(opt_state, f0, g0, perm, k, f_first)

    def step(self, fn, params, args, options, state, tol):
        n = self._n(args)
        nb = n // self.batch_size
        batch = self._batch(args, state.perm, state.k)
        update = _update_fn(self.optimizer, fn, batch)
        updates, opt_state = update(state.grad, state.opt_state, params, state.value)
        new = optax.apply_updates(params, updates)
        k = state.k + 1
        perm = lax.cond(k % nb == 0, lambda: self._perm(options, k // nb, n), lambda: state.perm)
        value, grad = jax.value_and_grad(fn)(new, *self._batch(args, perm, k))
        return new, _MinibatchState(opt_state, value, grad, perm, k, state.f_first)

    def terminate(self, fn, params, args, options, state, tol):
        return _i32(RUNNING)

    def postprocess(self, fn, last, args, options, state, tol, status):
        params = last[0]
        value, grad = jax.value_and_grad(fn)(params, *args)
        finite = jnp.isfinite(value) & tree_finite(grad)
        conv = finite & (tree_norm(grad) <= tol * _gscale(value, state.f_first))
        status = jnp.where(~finite, NONFINITE, jnp.where(conv, CONVERGED, status))
        return params, value, grad, _i32(status)
