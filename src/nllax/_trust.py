r"""Gauss–Newton in a trust region (Moré 1978), for a likelihood of a nonlinear predictor.

:class:`TrustRegion` minimises a :class:`nllax.Likelihood`'s NLL with the curvature
:math:`B = J^\top W J` of :class:`~nllax.solvers.GaussNewton`, but controls the step by a
trust radius :math:`\Delta` in scaled coordinates instead of a damping parameter:

.. math::

    p = \arg\min_{\|Dp\| \le \Delta}\; g^\top p + \tfrac12 p^\top B p,

with :math:`D = \mathrm{diag}(d)`, :math:`d_i` the running maximum over the iterations of
:math:`\sqrt{|B_{ii}|}` (for least squares the column norms of :math:`J`: Moré's scaling,
which makes the iteration invariant to a rescaling of each parameter). The subproblem is
solved on the :math:`d\times d` matrix :math:`D^{-1}BD^{-1} = V\,\mathrm{diag}(e)\,V^\top`
(an eigendecomposition): :math:`p(\lambda) = -D^{-1}V(\mathrm{diag}(e)+\lambda)^{-1}V^\top
D^{-1}g`, with :math:`\lambda = 0` when that step is inside the region and :math:`B` is
positive definite, else the :math:`\lambda > \max(0, -e_{\min})` where
:math:`\|Dp(\lambda)\| = \Delta` (within 10%, as in MINPACK), found by at most 40
bisections of :math:`[\max(0, -e_{\min}), \max(0, -e_{\min}) + \|D^{-1}g\|/\Delta]`
(the first trial point a thousandth of the way in; a few flops each on the eigenbasis;
Hebden's Newton iteration on :math:`1/\|Dp(\lambda)\| - 1/\Delta` would need fewer, and
would change the NIST routes, which are sensitive to such details: ``bench/NIST.md``); if
the bracket does not resolve the 10%, the shorter step of the last bisection point is
taken (still the minimiser of the model within its own length); in the "hard case" (the gradient orthogonal
to the eigenvector of a non-positive :math:`e_{\min}`) that eigenvector is added to reach
the boundary (Moré & Sorensen 1983).

The radius follows the ratio :math:`\rho` of the actual to the predicted decrease (Moré
1978): :math:`\rho < 1/4`: :math:`\Delta \leftarrow \mu\min(\Delta, 10\|Dp\|)` with
:math:`\mu \in [0.1, 0.5]` from a quadratic interpolation of the objective along
:math:`p`; :math:`\rho \ge 3/4`, or a step inside the region (:math:`\lambda = 0`) with
:math:`\rho \ge 1/4`: :math:`\Delta \leftarrow 2\|Dp\|`. The first radius is
``factor * ||D x0||`` (``factor = 1``; ``factor`` itself if that is 0), then at most the
first step's length; no decrease inside a region below ``eps * (||D x|| + 1)`` stops the
fit (converged at rounding level, or ``NONFINITE`` if the trial points were not finite
and the gradient is not small). Acceptance and the per-parameter convergence test are
those of the damped solvers (``nllax._solvers``): accept when :math:`\rho > 10^{-4}`, or,
at rounding level (:math:`|\Delta f| \le 16\epsilon|f|`, or both the actual and the
predicted decrease below :math:`10^3\epsilon|f|`), when the scaled gradient norm
:math:`\|g/c\|` decreases (not "halves", as in the damped solvers: Gauss–Newton
converges only linearly on a problem with residuals, and a constant such as the Gaussian
NLL's :math:`(n/2)\log 2\pi` can put the last digits of ``0.5 * SSE`` below rounding:
NIST MGH09); converged when the undamped step
:math:`q = -B^{-1}g` and the gradient are small for every parameter
(:math:`|q_i| \le \mathrm{tol}(|\theta_i| + 1/c_i)`, :math:`|g_i|/c_i \le
\mathrm{tol}(c_i|\theta_i| + 1)`, :math:`c_i = \sqrt{|B_{ii}|}` now), ``q`` then taken.

Why a trust region: the NIST StRD problems MGH10 and MGH17 from their first start
(``bench/NIST.md``) reach a long curved valley where the damped iteration crawls (more
than 1000 steps: its steps are already nearly undamped Newton steps). The trust region's
first large steps take another route (as MINPACK's ``lmder`` does) and all 54 NIST starts
converge within the default budget. For an *affine* predictor (a GLM), :math:`B` is the
exact Hessian, the damped iteration is fast and tested at scale (``bench/glm.py``), so
:class:`TrustRegion` runs :class:`~nllax.solvers.GaussNewton`'s iteration unchanged
there (``trust_affine=True`` uses the trust region anyway).
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from nllax import _solvers as S

__all__ = ["TrustRegion"]


# fit objective -> GaussNewton's loop invariants, from TrustRegion.init to the _prepare of
# the GaussNewton.init it calls (one entry at a time, removed when read)
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _TrustState(NamedTuple):
    x: jax.Array  # flat parameters
    value: jax.Array
    grad: jax.Array  # flat gradient
    hess: jax.Array  # J'WJ at x
    d: jax.Array  # running max of sqrt|B_ii|: the region's scaling (Moré 1978)
    delta: jax.Array  # trust radius in the scaled norm ||D p||
    status: jax.Array
    blocked: jax.Array  # a trial point since the last accepted one was not finite
    r_prev: jax.Array  # relative size of the last accepted step (per-coordinate metric)
    fresh: jax.Array  # x was just accepted (or is the start)
    first: jax.Array  # no step tried yet: the radius is capped by the first step's length
    extra: Any  # GaussNewton's loop invariants


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
    r"""Gauss–Newton on :math:`B = J^\top W J` in a Moré (1978) trust region, for a
    :class:`nllax.Likelihood` whose predictor is nonlinear in the parameters (the default
    of :func:`nllax.fit` for a Likelihood); see ``nllax._trust`` for the method.

    Where the predictor is affine in the parameters (a GLM) or the NLL is not
    elementwise in the predicted parameters, this *is* :class:`GaussNewton` (the damped
    iteration), unless ``trust_affine=True``.

    Args:
      curvature: ``"observed"`` (default) or ``"expected"``, as for :class:`GaussNewton`.
      polish: as for :class:`GaussNewton`.
      optimistic: as for :class:`GaussNewton` (its iteration only).
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

    def _prepare(self, fn, x, unravel, args):
        # GaussNewton's loop invariants, computed once per trace: `init` computes them to
        # choose the iteration and hands them on here (GaussNewton.init asks again)
        extra = _PREPARED.pop(fn, None)
        return super()._prepare(fn, x, unravel, args) if extra is None else extra

    def init(self, fn, params, args, options, tol):
        # At trace time: the trust region unless GaussNewton found an affine predictor
        # (its one-pass plan) or the NLL is not elementwise in the predicted parameters
        x0, unravel, _, dtype = self._flat(fn, params, args)
        extra = super()._prepare(fn, x0, unravel, args)
        if not self.trust_affine and ("plan" in extra
                                      or not self._lik(fn)._elementwise(x0, unravel, args)):
            _PREPARED[fn] = extra
            return super().init(fn, params, args, options, tol)
        f0, g0, h0 = self._evaluate(fn, x0, unravel, args, extra)
        h0 = h0.astype(dtype)
        ok0 = jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0)) & jnp.all(jnp.isfinite(h0))
        d0 = jnp.sqrt(jnp.abs(jnp.diag(jnp.where(ok0, h0, 0.0))))
        dmax = jnp.max(d0)
        d_eff = jnp.where(dmax > 0, jnp.maximum(d0, jnp.finfo(dtype).eps * dmax), 1.0)
        dx = jnp.linalg.norm(d_eff * x0)
        delta0 = jnp.where(dx > 0, self.factor * dx, self.factor).astype(dtype)
        return _TrustState(
            x0, f0, g0, h0, d0, delta0, S._i32(jnp.where(ok0, S.RUNNING, S.NONFINITE)),
            jnp.asarray(False), jnp.asarray(0.0, dtype), jnp.asarray(True), jnp.asarray(True),
            extra,
        )

    def step(self, fn, params, args, options, state, tol):
        if not isinstance(state, _TrustState):
            return super().step(fn, params, args, options, state, tol)
        _, unravel, _, dtype = self._flat(fn, params, args)
        eps = jnp.finfo(dtype).eps
        x, fx, g, h = state.x, state.value, state.grad, state.hess
        ok_h = jnp.all(jnp.isfinite(h))
        hd = jnp.abs(jnp.diag(h))
        d = jnp.where(state.fresh & ok_h, jnp.maximum(state.d, jnp.sqrt(hd)), state.d)
        dmax = jnp.max(d)
        s = jnp.where(dmax > 0, jnp.maximum(d, eps * dmax), jnp.ones_like(d))
        # convergence scale: the current diagonal (as in the damped solvers)
        hmax = jnp.max(hd)
        c = jnp.sqrt(jnp.where(hmax > 0, jnp.maximum(hd, eps * hmax), jnp.ones_like(hd)))

        hs = jnp.where(ok_h, h, 0.0) / (s[:, None] * s[None, :])
        gs = g / s
        delta = state.delta
        ps, lam = _subproblem(hs, gs, delta)
        p = ps / s
        valid_p = ok_h & jnp.all(jnp.isfinite(p))
        p = jnp.where(valid_p, p, jnp.zeros_like(p))
        # the undamped Gauss-Newton step q = -B^{-1} g (NaN where B is not pos. definite)
        chol = jnp.linalg.cholesky(hs)
        q = jax.scipy.linalg.cho_solve((chol, True), -gs) / s
        valid_q = ok_h & jnp.all(jnp.isfinite(q))
        q = jnp.where(valid_q, q, jnp.zeros_like(q))

        def grad_small_at(gv, xv):
            return jnp.all(jnp.abs(gv) / c <= tol * (c * jnp.abs(xv) + 1.0))

        def rel(v):
            return jnp.max(jnp.abs(v) / (jnp.abs(x) + 1.0 / c))

        grad_small = ok_h & grad_small_at(g, x)
        r_q = rel(q)
        # the error left after taking q, r_q * (r_q / r_prev) (linear contraction; no
        # previous step: r_q), below tol: q is taken and convergence tested after it
        predicted = r_q * jnp.minimum(1.0, r_q / state.r_prev)
        candidate = state.fresh & valid_q & (predicted <= tol) & (r_q <= jnp.sqrt(tol))
        p = jnp.where(candidate, q, p)
        lam = jnp.where(candidate, 0.0, lam)
        valid_p = valid_p | candidate
        pn = jnp.linalg.norm(s * p)
        # MINPACK: on the first iteration the radius is at most the first step's length
        delta = jnp.where(state.first, jnp.minimum(delta, pn), delta)

        dirder = g @ p
        pred = -(dirder + 0.5 * p @ (h @ p))
        xt = x + p
        ft, gt, ht = self._evaluate(fn, xt, unravel, args, state.extra)
        ht = ht.astype(dtype)
        ok_t = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt))
        actual = fx - ft
        rho = actual / jnp.where(pred > 0, pred, 1.0)
        gn, gnt = jnp.linalg.norm(g / c), jnp.linalg.norm(gt / c)
        # rounding level (as in the damped solvers): f cannot tell better from worse, a
        # halved gradient can
        unmeasurable = 1e3 * eps * jnp.abs(fx)
        at_rounding = (jnp.abs(actual) <= 16 * eps * jnp.abs(fx)) | (
            (pred <= unmeasurable) & (jnp.abs(actual) <= unmeasurable))
        polish = at_rounding & (gnt < gn)
        accept = ok_h & valid_p & ok_t & (pred > 0) & ((rho > 1e-4) | polish)

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
        pn_eff = jnp.where(pn > 0, pn, delta)
        delta_next = jnp.where(shrink, mu * jnp.minimum(delta, 10.0 * pn_eff),
                               jnp.where(grow, 2.0 * pn_eff, delta))
        # a converging q (taken outside the radius logic) leaves the radius as it was
        delta_next = jnp.where(candidate, jnp.maximum(delta_next, delta), delta_next)

        small = jnp.where(valid_q, S._per_coordinate_small(q, x, c, tol),
                          valid_p & S._per_coordinate_small(p, x, c, tol))
        at_optimum = candidate & jnp.where(accept, grad_small_at(gt, xt),
                                           grad_small & (r_q <= tol))
        # no decrease inside any region that rounding can resolve
        stuck = (~accept) & (delta_next <= eps * (jnp.linalg.norm(s * x) + 1.0))
        blocked = (~accept) & (state.blocked | ~ok_t)
        status = jnp.where(
            ~ok_h,
            S.NONFINITE,
            jnp.where(
                at_optimum | ((~accept) & small & grad_small),
                S.CONVERGED,
                jnp.where(stuck, jnp.where(blocked & ~grad_small, S.NONFINITE, S.CONVERGED),
                          S.RUNNING),
            ),
        )
        x = jnp.where(accept, xt, x)
        new = _TrustState(
            x, jnp.where(accept, ft, fx), jnp.where(accept, gt, g), jnp.where(accept, ht, h),
            d, delta_next.astype(dtype), S._i32(status), blocked,
            jnp.where(accept, rel(p), state.r_prev).astype(dtype), accept,
            jnp.asarray(False), state.extra,
        )
        return unravel(x), new
