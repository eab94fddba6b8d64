"""Every registered family's gradients (and, for smooth families, Hessians) against
central finite differences in float64, in every parametrisation (differentiated through
the member's ``from_canonical``, so that finite steps stay in the support), in reverse
and forward mode, through ``nll`` (the sum) and ``log_prob`` (per observation) at once.

Written out rather than with ``jax.test_util.check_grads``, which compiles a new program
for every transformation it applies: here a case costs five compiled functions (the
objective at a batch of perturbed points, its gradient, the per-observation gradients at
the perturbed points, a JVP, the Hessian). Every tolerance comes from the values: the
finite differences' truncation from a second Richardson level, their rounding from the
per-observation sizes of the sums (tests/_tolerances.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import _harness as H
import _tolerances as tt
from cases import all_parametrisations, pid

PARAMS = all_parametrisations()
DIRECTIONS = 3


def _objective(case, choice, n):
    """``(f, parts, c, x0)``: ``f(x)`` is nll (sum) plus a weighted sum of log_prob over
    the flat parameters; ``parts(x) = (nll, log_prob vector)`` its pieces (``f = nll + c .
    log_prob``), whose per-observation sizes bound the rounding of the sums."""
    data, params, _ = H.inputs(case, choice, n=n)
    names = H.float_args(case, params)
    d = H.to_jax(data)
    full = {k: H.to_jax(v) for k, v in params.items()}
    x0, unravel = ravel_pytree({k: full[k] for k in names})
    c = jnp.asarray(np.random.default_rng(3).uniform(0.5, 1.5, size=n))
    nll = H.canonical_grad_fn(case, d, choice, full, names, "nll")

    def parts(x):
        p = unravel(x)
        vals = [p[k] for k in names]
        # a per-observation weighting of log_prob, so its per-element code path counts
        return nll(*vals), _per_obs(case, d, choice, full, names, vals)

    def f(x):
        v, lp = parts(x)
        return v + jnp.sum(c * lp)

    return f, parts, np.asarray(c), x0


def _per_obs(case, d, choice, full, names, vals):
    members = {g.members[0].name: next(m for m in g.members if m.name == choice[g.name])
               for g in case.family.groups}
    kw = {}
    for k, v in list({k: full[k] for k in full if k not in names}.items()) + list(zip(names, vals)):
        m = members.get(k)
        kw[m.name if m is not None else k] = (m.from_canonical(v) if m is not None and
                                              m.from_canonical is not None else v)
    return H.call(case, "log_prob", d, kw)


def _richardson(v, h):
    """``(R2, |R1 - R2|)`` from values at ``x0 + s u``, ``s`` = h, -h, h/2, -h/2, h/4, -h/4
    (leading axis): central differences ``D(s)`` with one Richardson step each, R1 = (4
    D(h/2) - D(h)) / 3 and R2 = (4 D(h/4) - D(h/2)) / 3, truncation O(h^4 f^(5)): R1's is
    16 times R2's, so ``|R1 - R2|`` estimates R2's truncation error 15 times over."""
    d = [(v[2 * i] - v[2 * i + 1]) / (2 * h / 2**i) for i in range(3)]
    r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
    return r2, np.abs(r1 - r2)


# R2's rounding: values each within delta give (4 * 2 delta / (h / 2) + 2 delta / h) / 3
# = 6 delta / h
ROUNDING_GAIN = 6.0


def _sum_size(n):
    """Rounding of the objective's sums, per unit of sum_i (1 + c_i) |term_i| (nll's n
    terms and the weighted log_prob's, any order: tt.sum_rounding)."""
    return (n + tt.TERM_ROUNDINGS) * tt.EPS64


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_gradients_match_finite_differences(x64, cp):
    case, choice = cp
    n = 6
    f, parts, c, x0 = _objective(case, choice, n=n)
    rng = np.random.default_rng(7)
    u = jnp.asarray(rng.normal(size=(DIRECTIONS, x0.size)))
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    # The step is relative per coordinate (u_i scaled by 1 + |x_i|), so a large coordinate
    # (a location of 30) does not set the step of a small one. h = eps^(1/4) (1.2e-4):
    # rounding ~ eps / h, truncation ~ (h / d)^4 / d for a feature of width d; both
    # bounded below from the values themselves (_richardson, ROUNDING_GAIN).
    u = u * (1.0 + jnp.abs(x0))
    h = tt.EPS64 ** 0.25
    steps = jnp.asarray([h, -h, h / 2, -h / 2, h / 4, -h / 4])
    pts = (x0[None, None, :] + steps[:, None, None] * u[None]).reshape(-1, x0.size)
    nv, lp = jax.jit(jax.vmap(parts))(pts)
    fv = np.asarray(nv + lp @ c).reshape(6, DIRECTIONS)
    # per-observation derivatives at the same points (forward mode): the gradient there
    # and the size of the terms its sums add up (its rounding)
    gn, jl = jax.jit(jax.vmap(jax.jacfwd(parts)))(pts)
    gn, jl = np.asarray(gn), np.asarray(jl)
    gpts = gn + np.einsum("i,pij->pj", c, jl)
    a_size = np.max(np.sum((1 + c)[None, :, None] * np.abs(jl), axis=1), axis=0)  # (d,)
    fd, trunc = _richardson(fv, h)
    g = np.asarray(jax.jit(jax.grad(f))(x0))
    un = np.asarray(u)
    # each value's rounding: its sums, and by backward error (as tt.derivative_rounding)
    # a few roundings of each input, the point x0 + s u's own among them (c eps |x_j| in
    # each coordinate, times |df/dx_j|: the value's condition number)
    delta_f = (_sum_size(n) * np.max(np.abs(np.asarray(lp)) @ (1 + c))
               + tt.TERM_ROUNDINGS * tt.EPS64
               * np.max(np.sum(np.abs(np.asarray(pts)) * np.abs(gpts), axis=1)))
    # u . g: the gradient's own rounding, its sums' (the nll's terms and log_prob's alike)
    dg = _sum_size(n) * a_size
    tol = trunc + ROUNDING_GAIN * delta_f / h + np.abs(un) @ dg
    assert np.all(np.abs(un @ g - fd) <= tol), (un @ g, fd, tol)
    smooth = case.family.smooth and case.grad_order != 1  # case.grad_order_why
    hess = None
    if smooth:
        # the exact Hessian (forward over reverse, like a JVP of the gradient) with each
        # observation's own: the Hessian-vector products below are hess @ u
        hn, hl = jax.jit(jax.hessian(parts))(x0)
        hess = np.asarray(hn) + np.einsum("i,ijk->jk", c, np.asarray(hl))
        b_size = np.sum((1 + c)[:, None, None] * np.abs(np.asarray(hl)), axis=0)
    # forward mode agrees with reverse mode to rounding: each is within the sums'
    # rounding of the per-observation derivatives (dg), and within a few roundings of its
    # inputs (backward error eps |x|, times |d g / d x| = |hess|, where it exists)
    jvp = np.asarray(jax.jit(jax.vmap(lambda t: jax.jvp(f, (x0,), (t,))[1]))(u))
    cond = 0.0 if hess is None else tt.TERM_ROUNDINGS * tt.EPS64 * (
        np.abs(un) @ (np.abs(hess) @ np.abs(np.asarray(x0))))
    tol_jvp = 2 * (np.abs(un) @ dg + cond)
    assert np.all(np.abs(jvp - un @ g) <= tol_jvp), (jvp, un @ g, tol_jvp)
    if not smooth:
        return
    # Hessian-vector products against Richardson differences of the gradient, with the
    # gradient's rounding in place of the value's: its sums (a_size), and each
    # per-observation derivative's own. The latter is no multiple of the derivative when
    # it is a difference of larger pieces (the Student t's digamma((df + 1) / 2) -
    # digamma(df / 2) at df = 16: pieces ~2, difference ~1e-3), so it is bounded by the
    # pieces' size as the harness models them: a term's pieces are at most |term| + 1
    # (log-gamma and log terms of order 1 beside it) and vary on the coordinate's own
    # scale 1 + |x_j| (the scale the steps use), i.e. derivatives of the pieces up to
    # (|term_i| + 1) / (1 + |x_j|), each within a few roundings.
    fd2, trunc2 = _richardson(gpts.reshape(6, DIRECTIONS, x0.size), h)
    hvp = un @ hess.T
    pieces = case.derivative_pieces * (  # case.derivative_pieces_why
        np.max(np.abs(np.asarray(lp)) + 1, axis=0) @ (1 + c))
    delta_g = _sum_size(n) * (a_size + pieces / (1 + np.abs(np.asarray(x0))))
    # the Hessian's own rounding: its sums, and the pieces' second derivatives (as above)
    sc = 1 + np.abs(np.asarray(x0))
    hv_round = _sum_size(n) * np.abs(un) @ (b_size + pieces / np.outer(sc, sc)).T
    tol2 = trunc2 + ROUNDING_GAIN * delta_g / h + hv_round
    assert np.all(np.abs(hvp - fd2) <= tol2), (hvp, fd2, tol2)


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_hessian_is_finite_and_symmetric(x64, cp):
    # Standard errors come from Hessians: they must exist wherever the value does.
    case, choice = cp
    if not case.family.smooth:
        pytest.skip(f"{case.name} is not twice differentiable (its Hessian is 0 a.e.)")
    n = 4
    _, parts, c, x0 = _objective(case, choice, n=n)
    hn, hl = jax.jit(jax.hessian(parts))(x0)
    hl = np.asarray(hl)
    hess = np.asarray(hn) + np.einsum("i,ijk->jk", c, hl)
    assert np.all(np.isfinite(hess))
    # H_jk and H_kj come from different tangents: each within the rounding of its sum over
    # observations (tt.sum_rounding of the per-observation second derivatives, each a few
    # roundings of its size), so they differ by at most twice that
    b_size = np.sum((1 + c)[:, None, None] * np.abs(hl), axis=0)
    # (plus the pieces' second derivatives, as for the gradient in the test above)
    vals = case.derivative_pieces * (np.abs(np.asarray(jax.jit(parts)(x0)[1])) + 1)
    sc = 1 + np.abs(np.asarray(x0))
    tol = 2 * _sum_size(n) * (b_size + (vals @ (1 + c)) / np.outer(sc, sc))
    assert np.all(np.abs(hess - hess.T) <= tol), np.max(np.abs(hess - hess.T) - tol)
