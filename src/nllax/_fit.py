r"""Maximum-likelihood fitting: one compiled loop (``lax.while_loop``) around a solver.

``fit(objective, params0, *args)`` minimises ``objective(params, *args)`` (a scalar, the
NLL) over ``params``, any pytree of floating arrays, and returns a :class:`FitResult`.

The method is a *solver* (``nllax.solvers``): an object with ``init`` / ``step`` /
``terminate`` on a ``NamedTuple`` state. One loop here owns what they share: the
iteration budget, the last finite parameters, non-finite handling, the status, the
progress chunks and ``throw=``. The default solver is chosen from the objective:

* a :class:`nllax.Likelihood` (``fit(lik, ...)`` or ``fit(lik.nll, ...)``):
  :class:`~nllax.solvers.GaussNewton`, the damped iteration on :math:`J^\top W J` built
  from the family's per-observation curvature and the predictor's Jacobian (one pass over
  the data per step; the exact Hessian when the predictor is affine, i.e. Newton's method
  for a GLM); when the predictor is nonlinear in the parameters,
  :class:`~nllax.solvers.TrustRegion`, the same :math:`J^\top W J` in a Moré trust
  region (``nllax._trust``; it reaches all 54 NIST StRD starts within the default budget);
* any other callable: :class:`~nllax.solvers.Newton`, the same damped iteration on the
  exact Hessian (``jax.hessian`` of the flattened parameters). ``solver=TrustRegion()``
  puts the exact Hessian in the Moré trust region instead (trust-region Newton); it is
  not the default, since on the NIST ``0.5 * SSE`` callables it reaches fewer starts
  (``bench/NIST.md``).

Both solve :math:`(B + \lambda D)p = -g` by Cholesky after Jacobi scaling (:math:`D` the
running maximum of :math:`|B_{ii}|`), accept a step when the actual decrease is at least
``1e-4`` of the predicted one (or, at rounding level, when :math:`\|\nabla f\|` halves:
:math:`|\Delta f| \le 16\epsilon|f|`, or :math:`\le 10^3\epsilon|f|` when the predicted
decrease is below that too, since the rounding error of a sum such as ``0.5 * SSE``
scales with its terms, not its value), and update :math:`\lambda` by Nielsen's rule (an
indefinite :math:`B + \lambda D` counts as a rejected step, and :math:`\lambda` is raised at once to
the curvature along the rejected step).

**Convergence (per parameter)**: with :math:`c_i = \sqrt{|B_{ii}|}` at the current point
(:math:`1/c_i` is parameter *i*'s marginal standard error when the objective is an NLL),
the fit has converged at :math:`\theta` when, for *every* coordinate,

.. math::

    |g_i|/c_i \le \mathrm{tol}\,(c_i|\theta_i| + 1)
    \quad\text{and}\quad
    |q_i| \le \mathrm{tol}\,(|\theta_i| + 1/c_i),

with :math:`q = -B^{-1}g` the *undamped* Newton step (the estimate of
:math:`\hat\theta - \theta`); the undamped step is then taken, so the result is within
about :math:`\mathrm{tol}^2` of :math:`\hat\theta` when :math:`B` is the regular Hessian.
A parameter on a large scale can no longer hide one that has not converged (an earlier
single scaled norm over all parameters did, and used the running-max scaling, which a
poor start inflates). The fit also stops as converged when a rejected step is that small
and the gradient test holds (rounding level), or when :math:`\lambda` reaches
:math:`1/\epsilon^2` (no decrease can be found; ``NONFINITE`` if the trial points there are
not finite). Default ``tol = eps**(2/3)`` (3.7e-11 in float64, 4.9e-6 in float32),
``max_steps = 1000`` iterations (each one objective-and-gradient evaluation, plus a
curvature after accepted steps).

**Non-smooth objectives** (MAE, Laplace location): where the final curvature has an
exactly zero diagonal entry (piecewise-linear directions), the fit continues with
``optax.lbfgs`` (zoom line search) from the Newton point; it stops when 10 successive
steps are below ``tol`` relative, and the best point of both phases is returned
(``steps`` counts both). This second loop is compiled only for the fits that need it.

**Any optax transformation** (``optimizer=`` or ``solver=``, e.g. ``optax.lbfgs()``,
``optax.adam(1e-2)``): ``params <- params + update(grad)``; converged when
:math:`\|\nabla f\|_2 \le \mathrm{tol}\cdot\max(1, \min(|f|, |f_0|))`, default
``tol = sqrt(eps)``, ``max_steps = 10000``.

**Stochastic** (``batch_size=``): minibatch steps with an optax optimizer (default
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
For the damped solvers a non-finite trial point (e.g. a step out of the model's domain) is
just a rejected step; the status is ``NONFINITE`` only when no finite step can be found or
the curvature at an accepted point is not finite.

**Differentiable estimates**: ``jax.grad`` / ``jax.jacobian`` / ``jax.jvp`` of a function
of ``fit(...).params`` (and ``.value``) with respect to ``*args`` (data, a penalty weight,
a fixed scale) use the implicit function theorem at the returned point: with
:math:`H = \nabla^2_\theta f(\hat\theta, a)` (``jax.hessian``, exact),

.. math::

    \frac{\partial\hat\theta}{\partial a} = -H^{-1}\,\frac{\partial^2 f}{\partial\theta\,\partial a},
    \qquad \frac{\partial f(\hat\theta, a)}{\partial a} = \frac{\partial f}{\partial a}
    \text{ (envelope theorem)}.

It holds where :math:`\hat\theta` is a regular local minimum (converged, :math:`f` twice
differentiable there, :math:`H` positive definite) and the minimiser moves smoothly with
:math:`a`. It is not the derivative of the iterations: the loop is not differentiated, so
the cost is one Hessian and one Cholesky solve. Where the fit did not converge or
:math:`H` is not positive definite the derivatives are NaN (a clear answer, not a wrong
number). ``params0`` gets a zero derivative; ``grad_norm``, ``steps`` and ``status`` carry
none. Forward and reverse mode both work (a ``custom_jvp`` whose tangent is linear).

**Compilation and caching**: the whole loop is one ``jax.jit``-compiled
``lax.while_loop``. The compiled loop is cached on the *identity* of ``objective`` and
``solver``/``optimizer`` (plus ``batch_size`` and ``progress``) and on the shapes/dtypes of
``params0`` and ``args``: call ``fit`` again with the same function object and the same
optimizer object and it does not retrace; ``max_steps``, ``tol``, ``epochs``, ``key`` and
``progress_every`` are traced values and never retrace. A new ``lambda`` or a new
``optax.adam(lr)`` per call compiles again. To change a learning rate without recompiling,
build the optimizer once with ``optax.inject_hyperparams`` and pass
``hyperparams={"learning_rate": lr}``. The curvature is traced once per compiled loop.
On the CPU the fit programs are compiled with XLA's classic LLVM IR emitters
(``xla_cpu_use_fusion_emitters=False``, where this XLA knows the option): a fit loop is
~50 small kernels, and these compile in about 0.6x the CPU time (``bench/FIT_LOOP.md``).

**Progress** (``progress=True``, needs ``tqdm``: ``pip install nllax[progress]``): the
loop runs in chunks of ``progress_every`` iterations (an inner ``while_loop`` with no host
call) and a ``jax.debug.callback`` after each chunk updates the bar of *this* call (the
call passes a token as a traced argument, so a cached loop reports to the right bar and
concurrent or nested fits each have their own). Each callback is a round trip to the
host; measured with ``python bench/nist.py --speed`` (2000 Adam steps of 0.25 ms,
logistic regression n = 1e4, d = 20, float64, shared 2-core CPU at load 4-5): +2% to
+11% with updates every 200 steps, +6% to +12% with the default (50 updates per fit).
"""

from __future__ import annotations

import enum
import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from nllax import _solvers as S
from nllax._family import _top_level as _family_top_level
from nllax._likelihood import likelihood_of
from nllax._trust import TrustRegion

__all__ = ["FitError", "FitResult", "FitStatus", "fit"]

_RUNNING = S.RUNNING


class FitStatus(enum.IntEnum):
    """Why the fit stopped (``FitResult.status`` holds the integer code)."""

    CONVERGED = S.CONVERGED
    MAX_STEPS = S.MAX_STEPS
    NONFINITE = S.NONFINITE

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
      steps: iterations run (damped solvers: trial steps, accepted or not; optax:
        updates; stochastic: minibatch updates).
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
        if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) and not x.weak_type:
            if not jnp.issubdtype(x.dtype, jnp.floating):
                raise TypeError(
                    f"nllax.fit: params0 leaves must be floating arrays, got dtype {x.dtype}"
                )
            return x  # already a strong-dtype array: no copy, no dispatch
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


def _dtype_of(params: Any) -> np.dtype:
    return jnp.result_type(*jax.tree_util.tree_leaves(params))


class _Objective:
    """The user's objective, checked to return a scalar and cast to the fit's dtype;
    ``objective`` is the callable as given (solvers read its structure from it)."""

    def __init__(self, objective: Callable, dtype):
        self.objective = objective
        self.dtype = dtype

    def __call__(self, params, *args):
        value = self.objective(params, *args)
        if jnp.shape(value) != ():
            raise ValueError(
                f"nllax.fit: objective must return a scalar, got shape {jnp.shape(value)}"
            )
        return jnp.asarray(value).astype(self.dtype)


# progress bars: the compiled callback receives the token of the call that runs it and
# looks its bar up here (one entry per running fit, removed when the fit returns).
_BARS: dict[int, Any] = {}
_TOKENS = itertools.count(1)
_BARS_LOCK = threading.Lock()


def _progress_update(token, it, value):
    bar = _BARS.get(int(token))
    if bar is not None:
        if np.isfinite(value):
            bar.set_postfix(value=f"{float(value):.8g}", refresh=False)
        bar.update(int(it) - bar.n)  # tqdm redraws at most every `mininterval` seconds


def _while(cond, body, state, progress, every, token, report):
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
        jax.debug.callback(_progress_update, token, *report(state))
        return state

    return lax.while_loop(cond, chunk, state)


# ---------------------------------------------------------------------------------------
# the loop


class _Config(NamedTuple):
    """The static part of a fit (the compile-cache key besides shapes and dtypes)."""

    objective: Callable
    solver: S.Solver
    progress: bool


class _Controls(NamedTuple):
    """The traced knobs: changing them never recompiles."""

    max_steps: jax.Array
    tol: jax.Array
    every: jax.Array
    token: jax.Array


def _loop(solver, fn, params0, args, options, controls, progress):
    """Runs ``solver`` to termination; returns the FitResult and the final solver state."""
    tol = controls.tol
    state = solver.init(fn, params0, args, options, tol)
    budget = solver.budget(args, options, controls.max_steps)
    rotated = solver.starts_in_loop(state)
    if rotated:
        # init evaluated nothing: the first iteration evaluates the start (iteration 0, no
        # step) and decides its finiteness; the budget is tested after it as after a step
        status = jnp.asarray(_RUNNING)
        it0 = -1
    else:
        fin = jnp.isfinite(state.value) & S.tree_finite(state.grad) & S.tree_finite(params0)
        status = jnp.where(fin, solver.terminate(fn, params0, args, options, state, tol),
                           S.NONFINITE)
        status = jnp.where((status == _RUNNING) & (budget <= 0), S.MAX_STEPS, status)
        it0 = 0
    # the last finite point; a solver whose iterates are always finite needs no copy
    track = not solver.finite_iterates
    last = (params0, state.value, state.grad) if track else ()
    carry = (params0, state, jnp.asarray(it0, jnp.int32), status.astype(jnp.int32), last)

    def cond(carry):
        return carry[3] == _RUNNING

    def body(carry):
        params, state, it, _, last = carry
        more = {"more": it + 1 < budget} if rotated else {}
        params, state = solver.step(fn, params, args, options, state, tol, **more)
        it = it + 1
        verdict = solver.terminate(fn, params, args, options, state, tol)
        status = jnp.where(verdict != _RUNNING, verdict,
                           jnp.where(it >= budget, S.MAX_STEPS, _RUNNING))
        if track:
            fin = jnp.isfinite(state.value) & S.tree_finite(state.grad) & S.tree_finite(params)
            last = S.select(fin, (params, state.value, state.grad), last)
            status = jnp.where(~fin, S.NONFINITE, status)
        return params, state, it, status.astype(jnp.int32), last

    params, state, it, status, last = _while(
        cond, body, carry, progress, controls.every, controls.token,
        lambda c: (c[2], c[1].value),
    )
    if not track:
        last = (params, state.value, state.grad)
    # `last` is the current point whenever that is finite
    params, value, grad, status = solver.postprocess(fn, last, args, options, state, tol, status)
    return FitResult(params, value, S.tree_norm(grad), it, status), state


def _polishes(solver) -> bool:
    """Whether ``solver`` may end in the L-BFGS polish (a damped solver with ``polish``)."""
    return isinstance(solver, S._Damped) and solver.polish


def _run_impl(params0, args, options, controls, *, config):
    fn = _Objective(config.objective, _dtype_of(params0))
    res, state = _loop(config.solver, fn, params0, args, options, controls, config.progress)
    solver = config.solver
    if _polishes(solver):
        degenerate = solver.degenerate(state) & (res.status != S.NONFINITE)
    else:
        degenerate = jnp.asarray(False)
    return res, degenerate


# XLA's CPU compiler options for the fit programs: the classic LLVM IR emitters instead of
# the MLIR fusion emitters compile a fit loop in about 0.6x the CPU time (the loop has
# ~50 small kernels, and each costs a fixed compile overhead) and run it as fast (measured:
# bench/FIT_LOOP.md). Only where this XLA knows the option and the backend is the CPU.
_XLA_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
# Extra options where the caller did not ask JAX for less optimisation
# (``jax_disable_most_optimizations``, whose -O0 an option here would override). Empty:
# LLVM's -O1 (``{"xla_backend_optimization_level": 1}``) compiles the fit programs in about
# 0.8x the CPU time at the same run time (bench/FIT_COMPILE.md, "Stop 21"), but is another
# code generation: the GLM fits keep their steps (parameters within 2e-15), the L-BFGS
# polish of non-smooth fits does not (MAE 176 -> 117 steps); left to a decision.
_OPT_LEVEL: dict = {}


@functools.cache
def _compiler_options() -> dict | None:
    if jax.default_backend() != "cpu":
        return None
    try:  # one tiny compile, once per process
        jax.jit(lambda x: x + 1, compiler_options=_XLA_OPTIONS).lower(np.float32(0)).compile()
    except Exception:  # noqa: BLE001  (an XLA without the option: its defaults)
        return None
    return _XLA_OPTIONS


def _program_options() -> dict | None:
    """The compiler options of a top-level fit program: :func:`_compiler_options` and
    ``_OPT_LEVEL`` unless ``jax_disable_most_optimizations`` is set."""
    options = _compiler_options()
    if options is None or jax.config.values.get("jax_disable_most_optimizations"):
        return options
    return {**_OPT_LEVEL, **options}


# Whether no transformation is tracing (compiler options are for top-level jits only: a
# nested one raises); the test eager family calls use too.
_top_level = _family_top_level


class _Program:
    """``jax.jit(fn, static_argnames=("config",))`` with :func:`_compiler_options` when
    called outside any transformation, the plain jit inside one (the enclosing program's
    options apply there); built on first use, so importing nllax compiles nothing.
    ``lower`` as for a jit (top level)."""

    def __init__(self, fn):
        self.fn = fn
        self._jits = {}
        functools.update_wrapper(self, fn)

    def _get(self, top: bool):
        jit = self._jits.get(top)
        if jit is None:
            options = _program_options() if top else None
            jit = self._jits[top] = jax.jit(self.fn, static_argnames=("config",),
                                            compiler_options=options)
        return jit

    def __call__(self, *args, **kwargs):
        return self._get(_top_level())(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._get(_top_level()).lower(*args, **kwargs)


_run = _Program(_run_impl)

_POLISH = S.Optax(optax.lbfgs(), stall=10, keep_best=True)


def _polish_impl(newton, args, options, controls, *, config):
    """L-BFGS (zoom line search) from the Newton point; it measures curvature from gradient
    differences, which the zero Hessian of a piecewise-linear objective cannot give. The
    best point of the two phases is returned."""
    params = newton.params
    fn = _Objective(config.objective, _dtype_of(params))
    eps = jnp.finfo(_dtype_of(params)).eps
    ctl = controls._replace(tol=jnp.sqrt(eps).astype(controls.tol.dtype))
    res, _ = _loop(_POLISH, fn, params, args, {"xtol": controls.tol}, ctl, config.progress)
    better = res.value <= newton.value
    return FitResult(
        S.select(better, res.params, params),
        jnp.where(better, res.value, newton.value),
        jnp.where(better, res.grad_norm, newton.grad_norm),
        newton.steps + res.steps,
        jnp.where(better, res.status, newton.status),
    )


_polish = _Program(_polish_impl)


def _solve_impl(config, params0, args, options, controls, run=None, polish=None):
    """The loop, then the polish where the loop says so. ``run`` / ``polish`` stand in
    for the compiled :func:`_run` / :func:`_polish` (``nllax report`` passes the same
    programs kept in its cache)."""
    run = _run if run is None else run
    polish = _polish if polish is None else polish
    res, degenerate = run(params0, args, options, controls, config=config)
    if not _polishes(config.solver):
        return res  # a solver that never polishes: no polish branch under jit either
    if isinstance(degenerate, jax.core.Tracer):  # under jit/vmap/grad
        return lax.cond(
            degenerate, lambda r: polish(r, args, options, controls, config=config),
            lambda r: r, res,
        )
    # compiled only for the (rare) fits that need it
    return polish(res, args, options, controls, config=config) if bool(degenerate) else res


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _solve(config, params0, args, options, controls):
    return _solve_impl(config, params0, args, options, controls)


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


@_solve.defjvp
def _solve_jvp(config, primals, tangents):
    """Implicit function theorem at the returned point (see the module docstring)."""
    params0, args, options, controls = primals
    _, dargs, _, _ = tangents
    res = _solve_impl(config, params0, args, options, controls)
    fn = _Objective(config.objective, _dtype_of(params0))
    x, unravel = ravel_pytree(res.params)

    def f(x, a):
        return fn(unravel(x), *a)

    def grad_x(a):
        return jax.grad(f)(x, a)

    h = jax.hessian(f)(x, args)
    # Jacobi-scaled Cholesky: NaN when H is not positive definite
    s = jnp.sqrt(jnp.abs(S.diagonal(h)))
    s = jnp.where(s > 0, s, 1.0)
    chol = jnp.linalg.cholesky(h / (s[:, None] * s[None, :]))
    nan_unless = jnp.where(res.converged & jnp.all(jnp.isfinite(chol)), 1.0, jnp.nan).astype(x.dtype)
    _, b = jax.jvp(grad_x, (args,), (dargs,))  # (d^2 f / dtheta da) . da, linear in da
    dx = -jax.scipy.linalg.cho_solve((chol, True), b / s) / s * nan_unless
    _, dvalue = jax.jvp(lambda a: f(x, a), (args,), (dargs,))
    tangent = FitResult(
        unravel(dx), dvalue, _zero_tangent(res.grad_norm), _zero_tangent(res.steps),
        _zero_tangent(res.status),
    )
    return res, tangent


# ---------------------------------------------------------------------------------------
# public entry point

_DEFAULT_STOCHASTIC = optax.adam(1e-3)


def _choose_solver(objective, solver, optimizer, batch_size):
    if solver is not None and optimizer is not None:
        raise ValueError("nllax.fit: give solver= or optimizer= (an alias), not both")
    solver = optimizer if solver is None else solver
    if batch_size is not None:
        if solver is None:
            solver = _DEFAULT_STOCHASTIC
        if isinstance(solver, S.Optax):
            solver = solver.optimizer
        if not isinstance(solver, optax.GradientTransformation):
            raise TypeError(
                "nllax.fit: batch_size= needs an optax optimizer (a GradientTransformation), "
                f"got {solver!r}"
            )
        return S.Minibatch(solver, int(batch_size))
    if solver is None:
        return TrustRegion() if likelihood_of(objective) is not None else S.Newton()
    if isinstance(solver, S.Solver):
        return solver
    if isinstance(solver, optax.GradientTransformation):
        return S.Optax(solver)
    raise TypeError(
        "nllax.fit: optimizer must be an optax GradientTransformation or solver= a "
        f"nllax.solvers solver, got {solver!r}"
    )


def _check_minibatch_args(args, batch_size):
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
    return n


def _host(v, dtype):
    """A control value as a NumPy scalar array when it is a host number (the compiled call
    takes it without a dispatch of its own), else as a JAX array (a traced ``tol``)."""
    if isinstance(v, (int, float, np.number, np.ndarray)):
        return np.asarray(v, dtype)
    return jnp.asarray(v, dtype)


def _has_tracer(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


def _setup(objective, params0, args, solver=None, optimizer=None, max_steps=None, tol=None,
           batch_size=None, epochs=1, key=None, hyperparams=None, progress=False,
           progress_every=None):
    """What :func:`fit` hands its compiled loop: ``(config, params0, options, controls,
    budget, token)`` for the same arguments (``nllax report`` calls ``_run`` and
    ``_polish`` with them itself, to keep the exported programs)."""
    lik = likelihood_of(objective)
    if lik is not None:
        objective = lik.nll  # one cache entry for fit(lik, ...) and fit(lik.nll, ...)
    if not callable(objective):
        raise TypeError("nllax.fit: objective must be callable")
    params0 = _as_params(params0)
    dtype = _dtype_of(params0)
    slv = _choose_solver(objective, solver, optimizer, batch_size)
    if hyperparams is not None and not isinstance(slv, (S.Optax, S.Minibatch)):
        raise ValueError("nllax.fit: hyperparams= needs an optax optimizer")

    options: dict[str, Any] = {"hyperparams": hyperparams}
    if isinstance(slv, S.Minibatch):
        n = _check_minibatch_args(args, batch_size)
        options["key"] = jax.random.key(0) if key is None else key
        options["epochs"] = jnp.asarray(epochs, jnp.int32)
        default_steps = np.iinfo(np.int32).max
        budget = min(int(max_steps if max_steps is not None else default_steps),
                     int(epochs) * (n // int(batch_size)))
    else:
        default_steps = slv.default_max_steps
        budget = int(max_steps if max_steps is not None else default_steps)
    max_steps = default_steps if max_steps is None else max_steps
    tol = slv.default_tol(dtype) if tol is None else tol

    every = 1 if progress_every is None else progress_every
    if progress_every is None and progress:
        every = max(1, budget // 50)
    token = next(_TOKENS) if progress else 0
    controls = _Controls(
        _host(max_steps, np.int32), _host(tol, dtype),
        _host(max(int(every), 1), np.int32), _host(token, np.int32),
    )
    config = _Config(objective, slv, bool(progress))
    return config, params0, options, controls, budget, token


def fit(
    objective: Callable[..., jax.Array],
    params0: Any,
    *args: Any,
    solver: Any = None,
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

    See the module docstring for the solvers, convergence tests, differentiation and
    caching rules.

    Args:
      objective: ``objective(params, *args) -> scalar``, or a :class:`nllax.Likelihood`
        (then ``args = (y, *covariates)`` and Gauss–Newton is the default); the same
        object on every call reuses the compiled loop.
      params0: starting point, any pytree of floating arrays (its dtype is the dtype of
        the fit; float32 by default, float64 under ``jax.enable_x64``).
      *args: data passed to ``objective`` (sliced along axis 0 when ``batch_size`` is
        set); derivatives of the estimate with respect to them are available (module
        docstring).
      solver: a ``nllax.solvers`` solver (``Newton()``, ``GaussNewton()``,
        ``TrustRegion()``, ``Optax(opt)``) or any optax transformation; default:
        ``TrustRegion()`` for a Likelihood (which is ``GaussNewton()``'s iteration when the
        predictor is affine), ``Newton()`` otherwise.
      optimizer: alias of ``solver`` for an optax transformation (the wave-1 keyword).
      max_steps: iteration budget (default 1000 for the damped solvers, 10000 for optax;
        for the stochastic mode it caps ``epochs * (n // batch_size)``).
      tol: convergence tolerance (per-parameter relative step for the damped solvers,
        relative gradient norm for optax); defaults depend on the dtype.
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
    config, params0, options, controls, budget, token = _setup(
        objective, params0, args, solver, optimizer, max_steps, tol, batch_size, epochs,
        key, hyperparams, progress, progress_every)

    # Outside any transformation there is nothing to differentiate: the custom_jvp wrapper
    # (about half of a small fit's Python overhead, 0.5 ms) is skipped; same program.
    solve = _solve if _has_tracer((params0, args, options, controls)) else _solve_impl
    if progress:
        try:
            import tqdm
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("nllax.fit(progress=True) needs tqdm: pip install tqdm") from e
        with _BARS_LOCK:
            _BARS[token] = tqdm.tqdm(total=budget, desc="nllax.fit", leave=False)
        try:
            result = solve(config, params0, args, options, controls)
            jax.block_until_ready(result)
            jax.effects_barrier()
        finally:
            with _BARS_LOCK:
                _BARS.pop(token).close()
    else:
        result = solve(config, params0, args, options, controls)

    if throw and not isinstance(result.status, jax.core.Tracer):
        status = FitStatus(int(result.status))
        if status != FitStatus.CONVERGED:
            raise FitError(
                f"nllax.fit did not converge: {status} (steps={int(result.steps)}, "
                f"value={float(result.value):.10g}, grad_norm={float(result.grad_norm):.3g})"
            )
    return result
