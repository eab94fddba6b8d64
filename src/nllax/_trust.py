r"""Newton or Gauss–Newton in a trust region (Moré 1978): :class:`TrustRegion`.

:class:`TrustRegion` minimises an objective with a curvature matrix :math:`B`: for a
:class:`nllax.Likelihood` (the default of :func:`nllax.fit` there when the predictor is
nonlinear) :math:`B = J^\top W J`, the curvature of :class:`~nllax.solvers.GaussNewton`,
evaluated with the value at every trial point (one pass over the data); for any other
callable (``solver=TrustRegion()``; not its default, see below) the exact Hessian, once per
accepted point (trust-region Newton). It controls the step by a trust radius
:math:`\Delta` in scaled coordinates instead of a damping parameter:

.. math::

    p = \arg\min_{\|Dp\| \le \Delta}\; g^\top p + \tfrac12 p^\top B p,

with :math:`D = \mathrm{diag}(d)`, :math:`d_i^2` the running maximum over the accepted
points of :math:`|B_{ii}|` (for least squares the column norms of :math:`J`: Moré's
scaling, which makes the iteration invariant to a rescaling of each parameter; floored at
:math:`\epsilon\max_j d_j^2`, as the damped solvers' scaling: ``nllax._solvers._scales``).
The subproblem is solved on the :math:`d\times d` matrix :math:`D^{-1}BD^{-1} =
V\,\mathrm{diag}(e)\,V^\top` (an eigendecomposition): :math:`p(\lambda) =
-D^{-1}V(\mathrm{diag}(e)+\lambda)^{-1}V^\top D^{-1}g`, with :math:`\lambda = 0` when that
step is inside the region and :math:`B` is positive definite, else the :math:`\lambda >
\max(0, -e_{\min})` where :math:`\|Dp(\lambda)\| = \Delta` (within 10%, as in MINPACK),
found by at most 40 bisections of :math:`[\max(0, -e_{\min}), \max(0, -e_{\min}) +
\|D^{-1}g\|/\Delta]` (the first trial point a thousandth of the way in; a few flops each on
the eigenbasis; Hebden's Newton iteration on :math:`1/\|Dp(\lambda)\| - 1/\Delta` would
need fewer, and would change the NIST routes, which are sensitive to such details:
``bench/NIST.md``); if the bracket does not resolve the 10%, the shorter step of the last
bisection point is taken (still the minimiser of the model within its own length); in the
"hard case" (the gradient orthogonal to the eigenvector of a non-positive
:math:`e_{\min}`) that eigenvector is added to reach the boundary (Moré & Sorensen 1983).

The radius follows the ratio :math:`\rho` of the actual to the predicted decrease (Moré
1978): :math:`\rho < 1/4`: :math:`\Delta \leftarrow \mu\min(\Delta, 10\|Dp\|)` with
:math:`\mu \in [0.1, 0.5]` from a quadratic interpolation of the objective along
:math:`p`; :math:`\rho \ge 3/4`, or a step inside the region (:math:`\lambda = 0`) with
:math:`\rho \ge 1/4`: :math:`\Delta \leftarrow 2\|Dp\|`. The first radius is
``factor * ||D x0||`` (``factor = 1``; ``factor`` itself if that is 0), then at most the
first step's length; no decrease inside a region below ``eps * (||D x|| + 1)`` stops the
fit (converged at rounding level, or ``NONFINITE`` if the trial points were not finite
and the gradient is not small). The scaling, the acceptance, the per-parameter
convergence test and the status are the damped solvers' (one definition each, in
``nllax._solvers``): accept when :math:`\rho > 10^{-4}`, or, at rounding level
(:math:`|\Delta f| \le 16\epsilon|f|`, or both the actual and the predicted decrease below
:math:`10^3\epsilon|f|`), when the scaled gradient norm :math:`\|g/c\|` does not increase
(not "halves", as in the damped solvers: Gauss–Newton converges only linearly on a
problem with residuals, and a constant such as the Gaussian NLL's :math:`(n/2)\log 2\pi`
can put the last digits of ``0.5 * SSE`` below rounding: NIST MGH09); converged when the
undamped step :math:`q = -B^{-1}g` and the gradient are small for every parameter
(:math:`|q_i| \le \mathrm{tol}(|\theta_i| + 1/c_i)`, :math:`|g_i|/c_i \le
\mathrm{tol}(c_i|\theta_i| + 1)`, :math:`c_i = \sqrt{|B_{ii}|}` now), ``q`` then taken.

Why a trust region: the NIST StRD problems MGH10 and MGH17 from their first start
(``bench/NIST.md``) reach a long curved valley where the damped iteration crawls (more
than 1000 steps: its steps are already nearly undamped Newton steps). The Gauss–Newton
trust region's first large steps take another route (as MINPACK's ``lmder`` does) and all
54 NIST starts of the likelihood form converge within the default budget. For an *affine*
predictor (a GLM), :math:`B` is the exact Hessian, the damped iteration is fast and tested
at scale (``bench/glm.py``), so :class:`TrustRegion` runs
:class:`~nllax.solvers.GaussNewton`'s iteration unchanged there (``trust_affine=True``
uses the trust region anyway). On the exact Hessian of ``0.5 * SSE`` the same trust region
takes worse routes than the damped :class:`~nllax.solvers.Newton` (fewer NIST starts reach
6 digits; most of the misses stop as CONVERGED at a stationary point that is not the
certified one: ``bench/NIST.md``, ``sse_trust``), so ``Newton`` stays the default for a
plain callable.

The solver is pure: the loop invariants that :class:`~nllax.solvers.GaussNewton` reads
from a Likelihood once per trace are computed by ``init`` and carried in the state
(``extra``), also when ``init`` hands an affine predictor to the damped iteration.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from nllax import _solvers as S

__all__ = ["TrustRegion"]


class _TrustState(NamedTuple):
    x: jax.Array  # flat parameters
    value: jax.Array
    grad: jax.Array  # flat gradient
    hess: jax.Array  # the curvature at x (exact Hessian: valid when not stale)
    d: jax.Array  # running max of |B_ii|: the region's scaling is its sqrt (Moré 1978)
    delta: jax.Array  # trust radius in the scaled norm ||D p||
    status: jax.Array
    blocked: jax.Array  # a trial point since the last accepted one was not finite
    r_prev: jax.Array  # relative size of the last accepted step (per-coordinate metric)
    stale: jax.Array  # x was just accepted (or is the start): its curvature is new
    first: jax.Array  # no step tried yet: the radius is capped by the first step's length
    extra: Any  # GaussNewton's loop invariants (None for the exact Hessian)
    trial: Any = None  # the proposed trial point (_TrustTrial), evaluated and judged next


class _TrustTrial(S._Trial):
    """A trust-region step as proposed at the current point (``nllax._solvers._Trial``
    with the trust region's scalars): ``num`` = (pred, dirder = g'p, r_q, r_p, pn =
    ||Dp||, delta: the radius after the first step's cap, lam: the subproblem's
    multiplier, sx = ||Dx||), ``flags`` = (first, ok_h, valid_q, valid_p, grad_small,
    candidate); ``d`` the region's scaling at the current point, ``c`` the convergence
    scale."""

    __slots__ = ()
    NUM = ("pred", "dirder", "r_q", "r_p", "pn", "delta", "lam", "sx")
    FLAGS = ("first", "ok_h", "valid_q", "valid_p", "grad_small", "candidate")


def _subproblem(hs, gs, delta, iters: int = 40):
    r"""``(p, lam)``: the minimiser of ``gs.p + p.hs.p/2`` over ``||p|| <= delta`` (scaled
    coordinates), ``lam`` its Lagrange multiplier, to within 10% of ``delta`` on the
    boundary. ``hs`` symmetric (maybe indefinite)."""
    dtype = hs.dtype
    tiny = jnp.finfo(dtype).tiny
    eps = jnp.finfo(dtype).eps
    e, v = jnp.linalg.eigh(hs)
    a = v.T @ gs
    scale = jnp.maximum(jnp.max(jnp.abs(e)), tiny)

    def coef(lam):
        den = e + lam
        ok = jnp.abs(den) > eps * scale
        return jnp.where(ok, a / jnp.where(ok, den, 1.0), 0.0), den, ok

    def norm(lam):
        c, _, _ = coef(lam)
        return jnp.sqrt(c @ c)

    interior = (e[0] > eps * scale) & (norm(0.0) <= delta)
    lo0 = jnp.maximum(0.0, -e[0])
    # ||p(lam)|| <= ||a|| / (e_min + lam) <= delta at hi0
    hi0 = lo0 + jnp.sqrt(a @ a) / delta + eps * scale

    def body(_, carry):
        # bisection: ||p(lam)|| decreases with lam on (lo0, inf)
        lam, lo, hi = carry
        n = norm(lam)
        lo = jnp.where(n > delta, lam, lo)
        hi = jnp.where(n <= delta, lam, hi)
        done = jnp.abs(n - delta) <= 0.1 * delta
        return jnp.where(done, lam, 0.5 * (lo + hi)), lo, hi

    start = lo0 + jnp.maximum(eps * scale, 1e-3 * (hi0 - lo0))
    lam, _, _ = lax.fori_loop(0, iters, body, (start, lo0, hi0))
    lam = jnp.where(interior, 0.0, lam)
    c, _, _ = coef(lam)
    ps = -(v @ c)
    # hard case: the boundary is not reached at lam ~ -e_min; add the eigenvector
    short = (~interior) & (e[0] <= eps * scale) & (jnp.sqrt(ps @ ps) < 0.9 * delta)
    tau = jnp.sqrt(jnp.maximum(delta**2 - ps @ ps, 0.0))
    z = v[:, 0] * jnp.where(gs @ v[:, 0] > 0, -1.0, 1.0)
    ps = jnp.where(short, ps + tau * z, ps)
    return ps, lam


@dataclasses.dataclass(frozen=True)
class TrustRegion(S.GaussNewton):
    r"""Gauss–Newton on :math:`B = J^\top W J` in a Moré (1978) trust region for a
    :class:`nllax.Likelihood` whose predictor is nonlinear in the parameters (the default
    of :func:`nllax.fit` for a Likelihood), Newton on the exact Hessian in the same trust
    region for any other callable objective (not its default: :class:`Newton` is); see
    ``nllax._trust`` for the method.

    Where a Likelihood's predictor is affine in the parameters (a GLM) or its NLL is not
    elementwise in the predicted parameters, this *is* :class:`GaussNewton` (the damped
    iteration), unless ``trust_affine=True``.

    Args:
      curvature: ``"observed"`` (default) or ``"expected"``, as for :class:`GaussNewton`
        (a Likelihood only).
      polish: as for :class:`Newton`.
      optimistic: as for :class:`GaussNewton` (its damped iteration only).
      factor: the first trust radius is ``factor * ||D x0||`` in the scaled norm.
      trust_affine: use the trust region for affine predictors too.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> lik = nllax.Likelihood(nllax.gaussian, lambda b, x: {"loc": b[0] * jnp.exp(-b[1] * x)})
      >>> x = jnp.array([0.0, 1.0, 2.0, 3.0]); y = 2.0 * jnp.exp(-0.5 * x)
      >>> r = nllax.fit(lik, jnp.array([1.0, 1.0]), y, x, solver=nllax.solvers.TrustRegion())
      >>> bool(r.converged), [round(float(v), 4) for v in r.params]
      (True, [2.0, 0.5])
    """

    factor: float = 1.0
    trust_affine: bool = False

    def _gauss_newton(self, fn) -> bool:
        """At trace time: whether the curvature is ``J'WJ`` (a Likelihood objective) rather
        than the exact Hessian (any other callable)."""
        from nllax._likelihood import likelihood_of

        return likelihood_of(fn.objective) is not None

    def _curvature(self, fn, x, unravel, args, extra):
        if self._gauss_newton(fn):
            return super()._curvature(fn, x, unravel, args, extra)
        return jax.hessian(lambda x: fn(unravel(x), *args))(x)

    def _evaluate(self, fn, x, unravel, args, extra):
        if self._gauss_newton(fn):
            return super()._evaluate(fn, x, unravel, args, extra)
        return S._Damped._evaluate(self, fn, x, unravel, args, extra)

    def init(self, fn, params, args, options, tol):
        # At trace time: the trust region unless GaussNewton found an affine predictor
        # (its one-pass plan) or the NLL is not elementwise in the predicted parameters;
        # then GaussNewton's damped iteration, with the loop invariants computed here.
        # Either evaluates nothing here: the loop's first iteration evaluates the start
        # (the rotated loop of the damped solvers: one trace of the evaluation per fit).
        del options, tol
        x0, unravel, f, dtype = self._flat(fn, params, args)
        if self._gauss_newton(fn):
            extra = super()._prepare(fn, x0, unravel, args)
            if not self.trust_affine and (
                    "plan" in extra or not self._lik(fn)._elementwise(x0, unravel, args)):
                return self._init_damped(fn, x0, unravel, args, f, dtype, extra)
        else:
            extra = None
        n = x0.size
        zero = jnp.zeros((), dtype)
        return _TrustState(
            x0, zero, jnp.zeros(n, dtype), jnp.zeros((n, n), dtype), jnp.zeros(n, dtype),
            zero, S._i32(S.RUNNING), jnp.asarray(False), zero, jnp.asarray(True),
            jnp.asarray(True), extra, _TrustTrial.pending(x0, dtype),
        )

    def _begin(self, state, dtype):
        """The start's state once its value, gradient and curvature are known: finite or
        NONFINITE, the region's scaling ``d0 = |diag B|`` and the first radius
        ``factor * ||D x0||``."""
        h0 = state.hess
        ok0 = (state.status == S.RUNNING) & jnp.all(jnp.isfinite(h0))
        d0 = jnp.abs(S.diagonal(jnp.where(ok0, h0, 0.0)))
        s0, _ = S._scales(d0, d0, jnp.finfo(dtype).eps)
        dx = jnp.linalg.norm(s0 * state.x)
        delta0 = jnp.where(dx > 0, self.factor * dx, self.factor).astype(dtype)
        return state._replace(d=d0, delta=delta0,
                              status=S._i32(jnp.where(ok0, S.RUNNING, S.NONFINITE)))

    def starts_in_loop(self, state) -> bool:
        return state.trial is not None

    def step(self, fn, params, args, options, state, tol, more=True):
        """One rotated iteration (as the damped solvers'): evaluate the carried trial
        point and judge it (the first iteration: evaluate the start), then propose the
        next trial (the exact Hessian first, at a new point, when the loop goes on)."""
        if not isinstance(state, _TrustState):
            return super().step(fn, params, args, options, state, tol, more)
        del options
        _, unravel, f, dtype = self._flat(fn, params, args)
        gauss_newton = self._gauss_newton(fn)
        t = state.trial
        # J'WJ: evaluated with the value at every trial point (one pass over the data);
        # the exact Hessian: once per accepted point, below
        if gauss_newton:
            ft, gt, ht = self._evaluate(fn, t.xt, unravel, args, state.extra)
            ht = ht.astype(dtype)
        else:
            ft, gt = jax.value_and_grad(f)(t.xt)
            ht = state.hess
        judged = self._judge_trust(state, t, ft, gt, ht, tol, dtype)
        ok0 = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt)) & jnp.all(jnp.isfinite(t.xt))
        # the start (as a non-rotated init built it; stale: its curvature is new)
        started = state._replace(value=ft, grad=gt, hess=ht,
                                 status=S._i32(jnp.where(ok0, S.RUNNING, S.NONFINITE)))
        fields = [k for k in _TrustState._fields if k not in ("extra", "trial")]
        new = judged._replace(**{k: jnp.where(t.first, getattr(started, k), getattr(judged, k))
                                 for k in fields})
        if not gauss_newton:
            new = new._replace(hess=lax.cond(
                new.stale & (new.status == S.RUNNING) & (more | t.first),
                lambda x: self._curvature(fn, x, unravel, args, state.extra).astype(dtype),
                lambda x: new.hess,
                new.x,
            ))
        begun = self._begin(new, dtype)
        new = new._replace(**{k: jnp.where(t.first, getattr(begun, k), getattr(new, k))
                              for k in ("d", "delta", "status")})
        new = new._replace(trial=self._propose_trust(new, tol, dtype))
        return unravel(new.x), new

    def _propose_trust(self, state, tol, dtype) -> _TrustTrial:
        """The step from ``state`` (its curvature ``state.hess`` current): the trust-region
        subproblem's solution, or the converging undamped step, and what judging it
        needs."""
        eps = jnp.finfo(dtype).eps
        x, g, h = state.x, state.grad, state.hess
        ok_h = jnp.all(jnp.isfinite(h))
        hd = jnp.abs(S.diagonal(h))
        d = jnp.where(state.stale & ok_h, jnp.maximum(state.d, hd), state.d)
        # the region's scaling s, the convergence scale c (as in the damped solvers)
        s, c = S._scales(d, hd, eps)

        hs = jnp.where(ok_h, h, 0.0) / (s[:, None] * s[None, :])
        gs = g / s
        delta = state.delta
        ps, lam = _subproblem(hs, gs, delta)
        p = ps / s
        valid_p = ok_h & jnp.all(jnp.isfinite(p))
        p = jnp.where(valid_p, p, jnp.zeros_like(p))
        # the undamped step q = -B^{-1} g (NaN where B is not positive definite)
        chol = jnp.linalg.cholesky(hs)
        q = jax.scipy.linalg.cho_solve((chol, True), -gs) / s
        valid_q = ok_h & jnp.all(jnp.isfinite(q))
        q = jnp.where(valid_q, q, jnp.zeros_like(q))

        # the per-parameter convergence test of the damped solvers: q is taken when the
        # error it predicts is below tol
        r_q, r_ps, r_g = S._relative_sizes(x, c, q, p, g)
        grad_small = ok_h & (r_g <= tol)
        candidate = S._converging(state.stale, ok_h, valid_q, r_q, state.r_prev, tol)
        p = jnp.where(candidate, q, p)
        r_p = jnp.where(candidate, r_q, r_ps)  # the relative size of the step taken
        lam = jnp.where(candidate, 0.0, lam)
        valid_p = valid_p | candidate
        pn = jnp.linalg.norm(s * p)
        # MINPACK: on the first iteration the radius is at most the first step's length
        delta = jnp.where(state.first, jnp.minimum(delta, pn), delta)

        dirder = g @ p
        pred = -(dirder + 0.5 * p @ (h @ p))
        return _TrustTrial.make(
            x + p, d, c, pred=pred, dirder=dirder, r_q=r_q, r_p=r_p, pn=pn, delta=delta,
            lam=lam, sx=jnp.linalg.norm(s * x), first=False, ok_h=ok_h, valid_q=valid_q,
            valid_p=valid_p, grad_small=grad_small, candidate=candidate)

    def _judge_trust(self, state, t, ft, gt, ht, tol, dtype) -> _TrustState:
        """The state after the trial point ``t.xt`` (value ``ft``, gradient ``gt``,
        curvature ``ht``) was accepted or rejected, and the next radius."""
        eps = jnp.finfo(dtype).eps
        x, fx, g, h = state.x, state.value, state.grad, state.hess
        c, xt, ok_h, valid_p = t.c, t.xt, t.ok_h, t.valid_p
        pred, dirder, delta, lam, candidate = t.pred, t.dirder, t.delta, t.lam, t.candidate
        gsc, gst = g / c, gt / c
        gn2, gnt2 = jnp.sum(jnp.stack([gsc * gsc, gst * gst]), axis=1)
        r_gt = S._trial_gradient_size(gst, xt, c)
        ok_t = jnp.isfinite(ft) & jnp.isfinite(r_gt)
        # at rounding level, accepted when |gt/c| <= |g/c| (not "halves", as in the damped
        # solvers: Gauss-Newton converges only linearly on a problem with residuals)
        accept, actual, rho = S._acceptance(fx, ft, pred, gn2, gnt2, ok_h, valid_p, ok_t,
                                            1.0, eps)
        small, at_optimum = S._stopping(candidate, accept, t.valid_q, valid_p, t.r_q, t.r_p,
                                        r_gt, t.grad_small, tol)

        # the radius (Moré 1978): after a poor step, mu * min(Delta, 10 ||Dp||) with mu in
        # [0.1, 0.5] the minimiser of the quadratic through f(x), its slope g.p along p and
        # f(x + p) (0.5 when f did not increase, 0.1 after a non-finite trial point);
        # twice the step's length after a good one
        act = jnp.where(ok_t, actual, -jnp.inf)
        mu = jnp.where(act >= 0, 0.5,
                       0.5 * dirder / jnp.minimum(dirder + 0.5 * act, -jnp.finfo(dtype).tiny))
        mu = jnp.where(ok_t & jnp.isfinite(mu), jnp.clip(mu, 0.1, 0.5), 0.1)
        good = ok_t & (pred > 0)
        shrink = ~good | (rho < 0.25)
        grow = good & ((rho >= 0.75) | ((lam == 0) & (rho >= 0.25)))
        pn = t.pn
        pn_eff = jnp.where(pn > 0, pn, delta)
        delta_next = jnp.where(shrink, mu * jnp.minimum(delta, 10.0 * pn_eff),
                               jnp.where(grow, 2.0 * pn_eff, delta))
        # a converging q (taken outside the radius logic) leaves the radius as it was
        delta_next = jnp.where(candidate, jnp.maximum(delta_next, delta), delta_next)

        # no decrease inside any region that rounding can resolve
        stuck = (~accept) & (delta_next <= eps * (t.sx + 1.0))
        status, blocked = S._verdict(ok_h, ok_t, accept, at_optimum, small, t.grad_small,
                                     stuck, state.blocked)
        return _TrustState(
            jnp.where(accept, xt, x), jnp.where(accept, ft, fx), jnp.where(accept, gt, g),
            jnp.where(accept, ht, h), t.d, delta_next.astype(dtype), S._i32(status), blocked,
            jnp.where(accept, t.r_p, state.r_prev).astype(dtype), accept,
            jnp.asarray(False), state.extra, state.trial,
        )
