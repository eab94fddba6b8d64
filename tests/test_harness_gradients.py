"""Every registered family's gradients (and, for smooth families, Hessians) against
central finite differences in float64, in every parametrisation (differentiated through
the member's ``from_canonical``, so that finite steps stay in the support), in reverse
and forward mode, through ``nll`` (the sum) and ``log_prob`` (per observation) at once.

Written out rather than with ``jax.test_util.check_grads``, which compiles a new program
for every transformation it applies: here a case costs five compiled functions (the
objective at a batch of perturbed points, its gradient, the gradient at perturbed
points, a JVP, a Hessian-vector product)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import _harness as H
from cases import all_parametrisations, pid

PARAMS = all_parametrisations()
DIRECTIONS = 3


def _objective(case, choice, n):
    """``f(x)``: nll (sum) plus a weighted sum of log_prob, over the flat parameters."""
    data, params, _ = H.inputs(case, choice, n=n)
    names = H.float_args(case, params)
    d = H.to_jax(data)
    full = {k: H.to_jax(v) for k, v in params.items()}
    x0, unravel = ravel_pytree({k: full[k] for k in names})
    c = jnp.asarray(np.random.default_rng(3).uniform(0.5, 1.5, size=n))
    nll = H.canonical_grad_fn(case, d, choice, full, names, "nll")

    def f(x):
        p = unravel(x)
        vals = [p[k] for k in names]
        # a per-observation weighting of log_prob, so its per-element code path counts
        return nll(*vals) + jnp.sum(c * _per_obs(case, d, choice, full, names, vals))

    return f, x0


def _per_obs(case, d, choice, full, names, vals):
    members = {g.members[0].name: next(m for m in g.members if m.name == choice[g.name])
               for g in case.family.groups}
    kw = {}
    for k, v in list({k: full[k] for k in full if k not in names}.items()) + list(zip(names, vals)):
        m = members.get(k)
        kw[m.name if m is not None else k] = (m.from_canonical(v) if m is not None and
                                              m.from_canonical is not None else v)
    return H.call(case, "log_prob", d, kw)


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_gradients_match_finite_differences(x64, cp):
    case, choice = cp
    f, x0 = _objective(case, choice, n=6)
    # The directions and steps in NumPy, f(x0) with the perturbed points: op by op, they
    # compiled dozens of small programs a case (bench/test_time.py).
    x0 = np.asarray(x0)
    rng = np.random.default_rng(7)
    u = rng.normal(size=(DIRECTIONS, x0.size))
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    # Central differences with one Richardson step, (4 D(h/2) - D(h)) / 3: truncation
    # O(h^4 |f^(5)|), rounding O(eps |f| / h). The step is relative per coordinate
    # (u_i scaled by 1 + |x_i|), so a large coordinate (a location of 30) does not set
    # the step of a small one. h = eps^(1/4) (1.2e-4): rounding ~ eps / h ~ 2e-12
    # relative, truncation ~ (h / d)^4 / d for a feature of width d (an ordinal interval
    # of width 1e-2: ~1e-6 of its 1/d-sized derivative), and 1e-6 relative leaves room.
    u = u * (1.0 + np.abs(x0))
    h = np.finfo(np.float64).eps ** 0.25
    steps = np.asarray([h, -h, h / 2, -h / 2])
    pts = (x0[None, None, :] + steps[:, None, None] * u[None]).reshape(-1, x0.size)
    fv = np.asarray(jax.jit(jax.vmap(f))(np.concatenate([x0[None], pts])))
    f0, fv = fv[0], fv[1:].reshape(4, DIRECTIONS)
    d1, d2 = (fv[0] - fv[1]) / (2 * h), (fv[2] - fv[3]) / h
    fd = (4 * d2 - d1) / 3
    g = np.asarray(jax.jit(jax.grad(f))(x0))
    # |u . g| <= |u| |g|: the size of the directional derivatives compared
    scale = (float(np.max(np.linalg.norm(u, axis=1))) * float(np.linalg.norm(g))
             + abs(float(f0)) * 1e-3 + 1e-8)
    np.testing.assert_allclose(u @ g, fd, rtol=0, atol=1e-6 * scale)
    # forward mode agrees with reverse mode to rounding
    jvp = jax.jit(jax.vmap(lambda t: jax.jvp(f, (x0,), (t,))[1]))(u)
    np.testing.assert_allclose(np.asarray(jvp), u @ g, rtol=1e-10, atol=1e-12 * scale)
    if not case.family.smooth or case.grad_order == 1:  # case.grad_order_why
        return
    # Hessian-vector products (forward over reverse) against differences of the gradient
    gv = np.asarray(jax.jit(jax.vmap(jax.grad(f)))(pts)).reshape(4, DIRECTIONS, x0.size)
    e1, e2 = (gv[0] - gv[1]) / (2 * h), (gv[2] - gv[3]) / h
    fd2 = (4 * e2 - e1) / 3
    hvp = jax.jit(jax.vmap(lambda t: jax.jvp(jax.grad(f), (x0,), (t,))[1]))(u)
    hscale = float(np.max(np.abs(np.asarray(hvp)))) + 1e-3 * scale + 1e-8
    np.testing.assert_allclose(np.asarray(hvp), np.asarray(fd2), rtol=0, atol=1e-6 * hscale)


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_hessian_is_finite_and_symmetric(x64, cp):
    # Standard errors come from Hessians: they must exist wherever the value does.
    case, choice = cp
    if not case.family.smooth:
        pytest.skip(f"{case.name} is not twice differentiable (its Hessian is 0 a.e.)")
    f, x0 = _objective(case, choice, n=4)
    hess = np.asarray(jax.jit(jax.hessian(f))(x0))
    assert np.all(np.isfinite(hess))
    np.testing.assert_allclose(hess, hess.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(hess)))
