"""Every registered family's gradients (and, for smooth families, Hessians) against
central finite differences in float64, in every parametrisation (differentiated through
the member's ``from_canonical``, so that finite steps stay in the support), in reverse
and forward mode, through ``nll`` (the sum) and ``log_prob`` (per observation) at once.

Written out rather than with ``jax.test_util.check_grads``, which compiles a new program
for every transformation it applies: here a case costs two compiled functions, built once
per case and parametrisation and shared by the two tests (_programs): forward mode (JVPs
along every coordinate, vmapped, with the values they carry) at x0 and at a batch of
perturbed points, and the Hessian (forward over reverse) with the reverse-mode gradient
it differentiates. Every tolerance comes from the values: the finite differences'
truncation from a second Richardson level, their rounding from the per-observation sizes
of the sums (tests/_tolerances.py)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import _harness as H
import _tolerances as tt
from cases import CASES, all_parametrisations, pid

PARAMS = all_parametrisations()
DIRECTIONS = 3
N_OBS = 6  # observations per case (both tests: one set of programs)


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


def _value_and_jacfwd(fun):
    """``x -> (fun(x), d fun / dx)`` in forward mode: a JVP along every coordinate,
    vmapped (what ``jax.jacfwd`` does, keeping the values it computes on the way)."""

    def vj(x):
        basis = jnp.eye(x.size, dtype=x.dtype)
        return jax.vmap(lambda t: jax.jvp(fun, (x,), (t,)), out_axes=(None, -1))(basis)

    return vj


def _jacrev_twice(fun):
    def g(x):
        j = jax.jacrev(fun)(x)
        return j, j

    return g


@functools.cache
def _programs(name, choice_items):
    """``(parts, c, x0, u, h, pts, forward, reverse)`` of one case and parametrisation,
    built once (functools.cache: the two tests of a case share its compiled programs):

    * ``pts``: x0 (row 0), then ``x0 + s u`` for the Richardson steps s (h, -h, h/2, -h/2,
      h/4, -h/4; leading axis) and the DIRECTIONS unit directions ``u`` (NumPy);
    * ``forward(pts) -> ((nll, log_prob), (d nll, d log_prob))`` at every point, in
      forward mode (JVPs, vmapped over the coordinates and the points);
    * ``reverse(x) -> ((d2 nll, d2 log_prob), (d nll, d log_prob))``: for a smooth
      family ``jax.hessian`` (forward over reverse) of both pieces and the reverse-mode
      gradient it differentiates (the primal of the JVP of ``jax.jacrev``); otherwise
      ``None`` and the reverse-mode gradient."""
    case, choice = CASES[name], dict(choice_items)
    f, parts, c, x0 = _objective(case, choice, n=N_OBS)
    x0 = np.asarray(x0)
    rng = np.random.default_rng(7)
    u = rng.normal(size=(DIRECTIONS, x0.size))
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    # The step is relative per coordinate (u_i scaled by 1 + |x_i|), so a large coordinate
    # (a location of 30) does not set the step of a small one. h = eps^(1/4) (1.2e-4):
    # rounding ~ eps / h, truncation ~ (h / d)^4 / d for a feature of width d; both
    # bounded below from the values themselves (_richardson, ROUNDING_GAIN).
    u = u * (1.0 + np.abs(x0))
    h = tt.EPS64 ** 0.25
    steps = np.asarray([h, -h, h / 2, -h / 2, h / 4, -h / 4])
    pts = (x0[None, None, :] + steps[:, None, None] * u[None]).reshape(-1, x0.size)
    pts = np.concatenate([x0[None], pts])
    forward = jax.jit(jax.vmap(_value_and_jacfwd(parts)))
    if case.family.smooth:
        reverse = jax.jit(jax.jacfwd(_jacrev_twice(parts), has_aux=True))
    else:  # no Hessian to check (test_hessian_is_finite_and_symmetric skips): the gradient
        reverse = jax.jit(lambda x: (None, jax.jacrev(parts)(x)))
    return parts, c, x0, u, h, pts, forward, reverse


def _case_programs(case, choice):
    return _programs(case.name, tuple(sorted(choice.items())))


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
    n = N_OBS
    _, c, x0, u, h, pts, forward, reverse = _case_programs(case, choice)
    ((nv, lp), (gn, jl)) = jax.tree.map(np.asarray, forward(pts))
    # row 0 is x0: forward mode there (for the JVP check below); the others are the
    # perturbed points, values for the differences and per-observation derivatives for the
    # gradient there and the size of the terms its sums add up (its rounding)
    fwd0 = gn[0] + c @ jl[0]
    nv, lp, gn, jl, pts = nv[1:], lp[1:], gn[1:], jl[1:], pts[1:]
    fv = (nv + lp @ c).reshape(6, DIRECTIONS)
    gpts = gn + np.einsum("i,pij->pj", c, jl)
    a_size = np.max(np.sum((1 + c)[None, :, None] * np.abs(jl), axis=1), axis=0)  # (d,)
    fd, trunc = _richardson(fv, h)
    smooth = case.family.smooth and case.grad_order != 1  # case.grad_order_why
    # the reverse-mode gradient at x0 (and, for a smooth family, the exact Hessian: forward
    # over reverse, like a JVP of the gradient, with each observation's own; the
    # Hessian-vector products below are hess @ u)
    second, (rn, rl) = jax.tree.map(np.asarray, reverse(x0))
    g = rn + c @ rl
    un = u
    # each value's rounding: its sums, and by backward error (as tt.derivative_rounding)
    # a few roundings of each input, the point x0 + s u's own among them (c eps |x_j| in
    # each coordinate, times |df/dx_j|: the value's condition number)
    delta_f = (_sum_size(n) * np.max(np.abs(lp) @ (1 + c))
               + tt.TERM_ROUNDINGS * tt.EPS64
               * np.max(np.sum(np.abs(pts) * np.abs(gpts), axis=1)))
    # u . g: the gradient's own rounding, its sums' (the nll's terms and log_prob's alike)
    dg = _sum_size(n) * a_size
    tol = trunc + ROUNDING_GAIN * delta_f / h + np.abs(un) @ dg
    assert np.all(np.abs(un @ g - fd) <= tol), (un @ g, fd, tol)
    hess = None
    if smooth:
        hn, hl = second
        hess = hn + np.einsum("i,ijk->jk", c, hl)
        b_size = np.sum((1 + c)[:, None, None] * np.abs(hl), axis=0)
    # forward mode agrees with reverse mode to rounding: each is within the sums'
    # rounding of the per-observation derivatives (dg), and within a few roundings of its
    # inputs (backward error eps |x|, times |d g / d x| = |hess|, where it exists)
    jvp = un @ fwd0
    cond = 0.0 if hess is None else tt.TERM_ROUNDINGS * tt.EPS64 * (
        np.abs(un) @ (np.abs(hess) @ np.abs(x0)))
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
    n = N_OBS
    # the programs and point of test_gradients_match_finite_differences (no new compile)
    _, c, x0, _, _, pts, forward, reverse = _case_programs(case, choice)
    (hn, hl), _ = jax.tree.map(np.asarray, reverse(x0))
    hess = hn + np.einsum("i,ijk->jk", c, hl)
    assert np.all(np.isfinite(hess))
    # H_jk and H_kj come from different tangents: each within the rounding of its sum over
    # observations (tt.sum_rounding of the per-observation second derivatives, each a few
    # roundings of its size), so they differ by at most twice that
    b_size = np.sum((1 + c)[:, None, None] * np.abs(hl), axis=0)
    # (plus the pieces' second derivatives, as for the gradient in the test above)
    lp0 = np.asarray(forward(pts)[0][1][0])  # log_prob at x0 (row 0)
    vals = case.derivative_pieces * (np.abs(lp0) + 1)
    sc = 1 + np.abs(x0)
    tol = 2 * _sum_size(n) * (b_size + (vals @ (1 + c)) / np.outer(sc, sc))
    assert np.all(np.abs(hess - hess.T) <= tol), np.max(np.abs(hess - hess.T) - tol)
