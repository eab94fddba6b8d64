"""Tolerances derived from the dtype's eps and the problem's conditioning, or from a
certificate computed at the result (issue 15 item 1): never from a value once observed.

* :func:`sum_rounding`: the worst-case rounding of a float sum of ``n`` terms (each term
  itself within a few eps), ``(n + c) eps sum |t_i|`` (Higham, recursive summation; XLA's
  pairwise sums are better, so this holds on any machine and any reduction order).
* :func:`row_terms`: the per-observation terms of an objective (values and gradients), to
  feed :func:`sum_rounding`.
* :func:`newton_certificate`: at a point of a smooth, strictly convex objective, the
  Newton step ``q = H^-1 g`` (the estimate of ``theta - theta*``, exact to second order)
  and the smallest Hessian eigenvalue (``|theta - theta*| <= |g| / lambda_min``).
* :func:`fit_distance`: the Newton step at a fitted point and how close to ``theta*`` any
  float64 method can get, from the rounding of the gradient: ``|delta g| / lambda_min``.
* :func:`relative_gradient_rounding`, :func:`lstsq_error`: rounding of a gradient, error
  of a least-squares reference.
* :func:`l1_certificate`: for least-absolute-deviations regression, an exact optimality
  certificate of the linear program's vertex and the sharpness constant ``kappa``:
  ``|theta - theta*|_inf <= (f(theta) - f(theta*)) / kappa``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)

# A few roundings of each term before it is added (products, a log, an exp): the "c" of
# (n + c) eps.
TERM_ROUNDINGS = 8


def sum_rounding(terms, eps: float = EPS64, per_term: int = TERM_ROUNDINGS) -> float:
    """Bound on the rounding of ``sum(terms)`` (along axis 0): ``(n + c) eps sum|t_i|``
    (an array when the terms are vectors)."""
    t = np.abs(np.asarray(terms, np.float64))
    return (t.shape[0] + per_term) * eps * np.sum(t, axis=0)


def row_terms(objective, params, *rows):
    """Per-observation values and flattened gradients of ``objective(params, *rows)``,
    every argument batched along its leading axis; scaled so that they add up to the
    objective (an objective with a mean reduction gives 1/n of each row's value).

    Returns ``(values (n,), grads (n, p))`` as float64 NumPy arrays."""
    vals, grads = _row_fn(objective, len(rows))(params, *rows)
    n = np.shape(vals)[0]
    vals = np.asarray(vals, np.float64)
    # the flat order of ravel_pytree: the leaves in tree order, each raveled
    grads = np.concatenate([np.asarray(g, np.float64).reshape(n, -1)
                            for g in jax.tree_util.tree_leaves(grads)], axis=1)
    full = float(objective(params, *rows))
    n = vals.shape[0]
    # the reduction: sum (scale 1) or mean (scale 1/n); whichever reproduces the full value
    scale = min((1.0, 1.0 / n), key=lambda s: abs(s * vals.sum() - full))
    return scale * vals, scale * grads


@functools.lru_cache(maxsize=None)
def _row_fn(objective, k: int):
    """One compiled per-row value-and-gradient per objective (and shapes)."""

    def one(p, *row):
        return objective(p, *(r[None] for r in row))

    return jax.jit(jax.vmap(jax.value_and_grad(one), in_axes=(None,) + (0,) * k))


@functools.lru_cache(maxsize=None)
def _newton_fn(objective):
    """One compiled Newton step and smallest Hessian eigenvalue per objective (and shapes)."""

    @jax.jit
    def parts(params, *args):
        v, unravel = ravel_pytree(params)

        def f(v):
            return objective(unravel(v), *args)

        h = jax.hessian(f)(v)
        return jnp.linalg.solve(h, jax.grad(f)(v)), jnp.linalg.eigvalsh(h)[0]

    return parts


def newton_certificate(objective, params, *args):
    """``(|H^-1 g|_2, |H^-1 g|_inf, lambda_min(H))`` at ``params`` in the working dtype
    (call under x64 for float64), ``H`` the exact Hessian (``jax.hessian``)."""
    q, lam = _newton_fn(objective)(params, *args)
    q = np.asarray(q, np.float64)
    return float(np.linalg.norm(q)), float(np.max(np.abs(q))), float(lam)


# fit's default tolerance for the damped Newton solvers (src/nllax/_fit.py: tol =
# eps**(2/3)); a converged result is within about tol**2 (relative) of theta-hat when no
# rounding intervenes.
FIT_TOL64 = EPS64 ** (2 / 3)


def fit_distance(objective, params, *rows, eps: float = EPS64):
    """``(newton, floor)`` at a fitted ``params`` (every ``rows`` argument batched along
    the observations):

    * ``newton``: ``|H^-1 g|_inf``, the Newton step, i.e. ``theta - theta*`` to second order;
    * ``floor``: ``|delta g|_2 / lambda_min``, the distance to the optimum that the rounding
      of the gradient (a sum of n per-observation gradients, :func:`sum_rounding`) leaves
      unresolved for any method in this precision (and how large a Newton step computed at
      the exact optimum can come out), plus the fit's own ``tol**2 (|theta| + 1)``.

    So ``|theta - theta*|_inf <= newton + floor`` and, for a converged fit,
    ``newton <= floor``."""
    _, grads = row_terms(objective, params, *rows)
    dg = sum_rounding(grads, eps)
    _, q_inf, lam = newton_certificate(objective, params, *rows)
    theta = np.asarray(ravel_pytree(params)[0], np.float64)
    floor = float(np.linalg.norm(dg)) / lam + FIT_TOL64**2 * (np.max(np.abs(theta)) + 1)
    return q_inf, floor


def relative_gradient_rounding(objective, params, *rows, eps: float = EPS64) -> float:
    """Relative rounding of the gradient, ``|delta g| / |g|`` for the whole vector and for
    each leaf of ``params``, the largest of these (and a few eps for the final divisions)."""
    _, grads = row_terms(objective, params, *rows)
    g, dg = np.sum(grads, axis=0), sum_rounding(grads, eps)
    _, unravel = ravel_pytree(params)
    rel = [np.linalg.norm(dg) / np.linalg.norm(g)]
    for gl, dl in zip(jax.tree_util.tree_leaves(unravel(jnp.asarray(g))),
                      jax.tree_util.tree_leaves(unravel(jnp.asarray(dg)))):
        rel.append(np.linalg.norm(np.asarray(dl)) / np.linalg.norm(np.asarray(gl)))
    return float(max(rel)) + TERM_ROUNDINGS * eps


def lstsq_error(A: np.ndarray, y: np.ndarray, eps: float = EPS64) -> float:
    """Forward error bound (inf-norm) of a backward-stable least-squares solve (QR / SVD)
    of ``min |A x - y|``: ``m n eps (kappa + kappa^2 |r| / (|A| |x|)) |x|`` (Higham, Accuracy
    and Stability, ch. 20: backward error gamma_{mn}, condition kappa + kappa^2 eta)."""
    A, y = np.asarray(A, np.float64), np.asarray(y, np.float64)
    x = np.linalg.lstsq(A, y, rcond=None)[0]
    s = np.linalg.svd(A, compute_uv=False)
    kappa = s[0] / s[-1]
    r = np.linalg.norm(y - A @ x)
    xn = np.linalg.norm(x)
    m, n = A.shape
    return float(m * n * eps * (kappa + kappa**2 * r / (s[0] * xn)) * xn)


def l1_certificate(A: np.ndarray, y: np.ndarray, theta: np.ndarray):
    """Certifies a least-absolute-deviations solution ``theta`` (``min sum|y - A theta|``)
    found by a linear program, and returns ``(theta_star, kappa)``.

    The LP optimum is a vertex: ``m`` residuals are zero. ``theta_star`` solves those ``m``
    equations exactly (float64), removing the LP's own feasibility tolerance. It is optimal
    iff ``0`` is in the subdifferential: ``A_Z^T u = sum_{i not in Z} sign(r_i) a_i`` has a
    solution with ``|u|_inf <= 1``; with ``|u| < 1`` strictly the optimum is unique and
    sharp: for any direction ``d``, ``f'(theta*; d) >= (1 - |u|_inf) |A_Z d|_1 >= kappa
    |d|_inf`` with ``kappa = (1 - |u|_inf) sigma_min(A_Z)`` (as ``|A_Z d|_1 >= |A_Z d|_2 >=
    sigma_min |d|_2 >= sigma_min |d|_inf``). Since ``f`` is convex,
    ``|theta - theta*|_inf <= (f(theta) - f(theta*)) / kappa``."""
    A, y = np.asarray(A, np.float64), np.asarray(y, np.float64)
    m = A.shape[1]
    r = y - A @ theta
    zero = np.argsort(np.abs(r))[:m]
    AZ = A[zero]
    theta_star = np.linalg.solve(AZ, y[zero])
    rest = np.ones(len(y), bool)
    rest[zero] = False
    s = np.sign(y[rest] - A[rest] @ theta_star)
    u = np.linalg.solve(AZ.T, A[rest].T @ s)
    umax = float(np.max(np.abs(u)))
    assert umax < 1.0, f"not a strict L1 optimum: |u|_inf = {umax}"
    kappa = (1.0 - umax) * float(np.linalg.svd(AZ, compute_uv=False)[-1])
    return theta_star, kappa


def l1_gap_rounding(A: np.ndarray, y: np.ndarray, theta: np.ndarray, eps: float = EPS64) -> float:
    """Rounding of ``sum|y - A theta|`` evaluated in float64 (residuals: m products and a
    difference each; then the sum)."""
    A, y = np.asarray(A, np.float64), np.asarray(y, np.float64)
    terms = np.abs(y) + np.abs(A) @ np.abs(theta)
    return float(sum_rounding(terms, eps, per_term=A.shape[1] + 2))


def fit_gradient_bound(objective, params, *rows, tol: float = FIT_TOL64, eps: float = EPS64) -> float:
    """Bound on ``|g|_2`` at a converged damped-Newton fit: fit's documented per-parameter
    test ``|g_i| / c_i <= tol (c_i |theta_i| + 1)`` (``c_i = sqrt|H_ii|``), which the point
    before the final undamped step met (that step only shrinks the gradient near the
    optimum), plus the rounding of the gradient's n-term sum at the result."""
    v, unravel = ravel_pytree(params)
    h = jax.jit(jax.hessian(lambda v: objective(unravel(v), *rows)))(v)
    c = np.sqrt(np.abs(np.diag(np.asarray(h, np.float64))))
    theta = np.abs(np.asarray(v, np.float64))
    _, grads = row_terms(objective, params, *rows)
    return float(np.linalg.norm(tol * c * (c * theta + 1)) + np.linalg.norm(sum_rounding(grads, eps)))


def gradient_test_distance(objective, value, params0, ref_params, tol: float, *args) -> float:
    """Distance (2-norm) to the optimum promised by fit's optax gradient test
    ``|g|_2 <= tol max(1, min(|f|, |f0|))``: ``|theta - theta*| <= |g| / lambda_min`` for a
    strictly convex objective, with ``lambda_min`` at the optimum (``ref_params``) and a
    factor 2 for its change along the segment (relative change O(|theta - theta*|))."""
    f0 = abs(float(objective(params0, *args)))
    g_max = tol * max(1.0, min(abs(float(value)), f0))
    return 2 * g_max / newton_certificate(objective, ref_params, *args)[2]


def gaussian_linear_floor(x: np.ndarray, y: np.ndarray, beta: np.ndarray, eps: float) -> float:
    """Rounding floor (2-norm) of the Gaussian linear-model MLE ``beta`` computed in a
    precision ``eps``: the gradient ``X^T r / sigma^2`` carries the rounding of each residual
    ``r_i = y_i - x_i beta`` (``(d + 2) eps (|y_i| + |x_i| |beta|)``, cancellation included)
    and of the n-term sum; divided by ``lambda_min(X^T X / sigma^2)`` (sigma cancels)."""
    x, y, beta = (np.asarray(a, np.float64) for a in (x, y, beta))
    n, d = x.shape
    r = y - x @ beta
    dr = (d + 2) * eps * (np.abs(y) + np.abs(x) @ np.abs(beta))
    dg = np.abs(x).T @ dr + sum_rounding(x * r[:, None], eps)
    return float(np.linalg.norm(dg) / np.linalg.eigvalsh(x.T @ x)[0])


# fit's target for non-smooth objectives (issue 3; tests/test_fit.py, test_same_theta.py):
# within 1e-3 (absolute) of the optimum in every parameter. A stated requirement, checked
# with a certificate (l1_distance_bound), not a measured value.
NONSMOOTH_TARGET = 1e-3


def l1_distance_bound(A: np.ndarray, y: np.ndarray, theta: np.ndarray, theta_lp: np.ndarray):
    """``(bound, theta_star)``: ``|theta - theta*|_inf <= bound`` for least-absolute-deviations
    ``min sum|y - A theta|``, ``theta_lp`` the linear program's answer (made exact and
    certified by :func:`l1_certificate`); the bound is the objective gap over the sharpness,
    with the float64 rounding of both objective values. (Weighted: pass ``w A``, ``w y``.)"""
    A, y, theta = (np.asarray(a, np.float64) for a in (A, y, theta))
    star, kappa = l1_certificate(A, y, theta_lp)
    gap = np.sum(np.abs(y - A @ theta)) - np.sum(np.abs(y - A @ star))
    rounding = l1_gap_rounding(A, y, theta) + l1_gap_rounding(A, y, star)
    return (max(gap, 0.0) + rounding) / kappa, star


def equivalence_rounding(eq, y, pred, *, weights=None, where=None, eps: float = EPS64,
                         **noise) -> float:
    """Bound on ``|NLL - (a loss + b)|`` from rounding, for one row ``eq`` of
    ``nllax.equivalences``: each of the three sums has n terms, so ``(n + c) eps`` times the
    sum over observations of ``|nll_i| + |a_i loss_i| + |b_i|``, the per-observation pieces
    (each row checked alone; ``a_i loss_i`` is the observation's share of ``a loss`` for a
    mean loss too). Masked-out observations add nothing."""
    n = y.shape[0]
    w = jnp.ones(n, jnp.asarray(pred).dtype) if weights is None else weights
    m = jnp.ones(n, bool) if where is None else where

    def one(yi, pi, wi):
        c = eq.check(yi[None], pi[None], weights=wi[None], **noise)
        return jnp.abs(c.nll) + jnp.abs(c.a * c.loss) + jnp.abs(c.b)

    per = np.asarray(jax.jit(jax.vmap(one))(y, pred, w), np.float64)
    per = np.where(np.asarray(m), per, 0.0)
    return float((n + TERM_ROUNDINGS) * eps * np.sum(per))


def derivative_rounding(fn, x, y=None, eps: float = EPS64):
    """``(g, delta)``: the gradient of ``fn(x, y)`` with respect to ``x`` (flattened) and a
    bound on its rounding, by backward error: the computed gradient is the exact one at
    inputs perturbed by a few eps relative, plus a few roundings of its own value:
    ``c eps (|g| + |dg/dx| |x| + |dg/dy| |y|)`` (the condition numbers; ``y`` the data,
    skipped when not floating)."""
    x = jnp.asarray(x)
    shape = x.shape

    def g_of(xf, y):
        return jax.grad(lambda v: fn(v.reshape(shape), y))(xf)

    xf = x.reshape(-1)
    g = g_of(xf, y)
    dgdx = jax.jacfwd(g_of)(xf, y)
    cond = np.abs(np.asarray(dgdx, np.float64)) @ np.abs(np.asarray(xf, np.float64))
    if y is not None and jnp.issubdtype(jnp.asarray(y).dtype, jnp.floating):
        yf = jnp.asarray(y)
        dgdy = np.asarray(jax.jacfwd(g_of, argnums=1)(xf, yf), np.float64).reshape(xf.size, -1)
        cond = cond + np.abs(dgdy) @ np.abs(np.asarray(yf, np.float64).reshape(-1))
    g = np.asarray(g, np.float64)
    return g, TERM_ROUNDINGS * eps * (np.abs(g) + cond)


def gradient_ratio_rounding(u, v, eps: float = EPS64) -> dict:
    """Rounding of :func:`nllax.verify.gradient_ratio`'s statistics of two flat gradients
    ``u`` (of f) and ``v`` (of g), given exactly: each inner product of n terms is within
    ``gamma = (n + c) eps`` of the sum of its terms' absolute values (``<= |u| |v|``), the
    rescaling by the largest entries a few roundings more. Returns bounds:

    * ``ratio``: relative, ``gamma (|u||v| / |u.v| + 1)`` (``u.v``'s condition, and v.v's);
    * ``cosine``: absolute, ``gamma (1 + |cos|)``;
    * ``residual``: absolute, ``|u - r v| / |u|``: each entry's few roundings relative
      to ``|u_i| + |r v_i|`` (``c eps (1 + |cos|)``), ``r``'s error times ``|r||v|/|u| =
      |cos|``, and the norm's ``gamma`` relative;
    * ``norm``: relative, ``gamma``."""
    u, v = np.ravel(np.asarray(u, np.float64)), np.ravel(np.asarray(v, np.float64))
    gamma = (u.size + TERM_ROUNDINGS) * eps
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    cos = abs(u @ v) / (nu * nv)
    ratio = gamma * (1 / cos + 1) if cos > 0 else np.inf
    r = (u @ v) / (v @ v)
    resid = np.linalg.norm(u - r * v) / nu
    residual = TERM_ROUNDINGS * eps * (1 + cos) + ratio * cos + gamma * resid
    return {"ratio": float(ratio), "cosine": float(gamma * (1 + cos)),
            "residual": float(residual), "norm": float(gamma)}
