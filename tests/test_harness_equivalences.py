"""Every row of ``nllax.equivalences`` from its registry test case: the identity
``NLL = a * loss + b`` (plain, weighted, masked, both; float64 and float32), the gradient
ratio equal to ``a``, and, for rows that tests/test_same_theta.py does not already fit,
the same theta-hat from ``nllax.fit`` on the NLL and on the loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _tolerances as tt
import nllax
from cases import EQUIVALENCE_CASES

ROWS = sorted(EQUIVALENCE_CASES)
N = 40
VARIANTS = ["plain", "weights", "where", "both"]


def _inputs(name, dtype, seed=0):
    rng = np.random.default_rng([seed, len(name)])
    y, pred, noise = EQUIVALENCE_CASES[name].sample(rng, N)
    w = rng.uniform(0.2, 2.0, size=N)
    m = rng.uniform(size=N) < 0.7
    fl = lambda x: jnp.asarray(x, dtype) if np.issubdtype(np.asarray(x).dtype, np.floating) \
        else jnp.asarray(x)
    return fl(y), fl(pred), {k: fl(v) for k, v in noise.items()}, fl(w), jnp.asarray(m)


def _identity(name, dtype):
    """``{variant: (|NLL - (a loss + b)|, sum_i (|nll_i| + |a_i loss_i| + |b_i|))}``: the
    miss, and the sum over the kept observations of the absolute per-observation pieces of
    the three sums (each observation checked alone, with its weight: ``a_i loss_i`` is its
    share of ``a loss`` for a mean loss too), which is what their rounding scales with."""
    eq = nllax.equivalences[name]
    y, pred, noise, w, m = _inputs(name, dtype)
    # per-observation data among the noise arguments (the binomial's trials) go by row
    rows = {k: v for k, v in noise.items() if jnp.ndim(v) and v.shape[0] == N}
    fixed = {k: v for k, v in noise.items() if k not in rows}

    def piece(yi, pi, wi, ri):
        c = eq.check(yi[None], pi[None], weights=wi[None], **fixed,
                     **{k: v[None] for k, v in ri.items()})
        return jnp.abs(c.nll) + jnp.abs(c.a * c.loss) + jnp.abs(c.b)

    @jax.jit
    def run(y, pred, noise, w, m):
        # each piece is linear in the observation's weight: evaluated once at weight 1
        per1 = jax.vmap(piece)(y, pred, jnp.ones_like(w), rows)
        out = {}
        for v in VARIANTS:
            kw = {"weights": w if v in ("weights", "both") else None,
                  "where": m if v in ("where", "both") else None}
            c = eq.check(y, pred, **kw, **noise)
            per = per1 * w if kw["weights"] is not None else per1
            if kw["where"] is not None:
                per = jnp.where(m, per, 0.0)
            out[v] = (c.abs_error, jnp.sum(per))
        return out

    return jax.tree.map(np.asarray, run(y, pred, noise, w, m))


def _identity_bound(size, eps):
    # each side is a sum of N per-observation terms (any order: (N + c) eps of the sum of
    # their absolute values, tt.sum_rounding), each term a few roundings (c =
    # tt.TERM_ROUNDINGS), then the affine map a * loss + b (covered by c)
    return (N + tt.TERM_ROUNDINGS) * eps * size


@pytest.mark.parametrize("name", ROWS)
def test_identity_float64(x64, name):
    for v, (err, size) in _identity(name, jnp.float64).items():
        bound = _identity_bound(size, tt.EPS64)
        assert err <= bound, (name, v, err, bound)


@pytest.mark.parametrize("name", ROWS)
def test_identity_float32(name):
    for v, (err, size) in _identity(name, jnp.float32).items():
        bound = _identity_bound(size, tt.EPS32)
        assert err <= bound, (name, v, err, bound)


def _gradient_and_sensitivities(fn, x, y):
    """``(g, dg/dx, dg/dy)`` of ``fn(x, y)`` with respect to ``x`` (flattened; ``dg/dy``
    None when ``y`` is not floating): one forward-over-reverse pass whose primal is the
    gradient. Traced inside the test's one jitted program (op by op, as
    tt.derivative_rounding runs them, each primitive was a compile of its own)."""
    shape = x.shape
    floating = jnp.issubdtype(y.dtype, jnp.floating)

    def g_of(xf, y):
        g = jax.grad(lambda v: fn(v.reshape(shape), y))(xf)
        return g, g

    jac, g = jax.jacfwd(g_of, argnums=(0, 1) if floating else 0, has_aux=True)(
        x.reshape(-1), y)
    return (g, jac[0], jac[1]) if floating else (g, jac, None)


@pytest.mark.parametrize("name", ROWS)
def test_gradient_ratio_is_a(x64, name):
    eq = nllax.equivalences[name]
    y, pred, noise, _, _ = _inputs(name, jnp.float64)
    fns = (lambda p, y: eq.nll(y, p, **noise), lambda p, y: eq.loss_at(y, p, **noise))

    @jax.jit
    def run(y, pred):
        r = nllax.verify.gradient_ratio(lambda p: fns[0](p, y), lambda p: fns[1](p, y), pred)
        return r, eq.a(y, **noise), [_gradient_and_sensitivities(fn, pred, y) for fn in fns]

    r, a, derivs = run(y, pred)
    a = float(a)
    # each gradient entry is one observation's derivative, within its backward-error
    # rounding (tt.derivative_rounding: eps times the derivative's condition numbers, c eps
    # (|g| + |dg/dx| |x| + |dg/dy| |y|)); the least-squares ratio and the residual are off
    # by the two relative errors added
    rtol = tt.TERM_ROUNDINGS * tt.EPS64  # the ratio's and a's own roundings
    x = np.abs(np.asarray(pred, np.float64)).reshape(-1)
    for g, dgdx, dgdy in derivs:
        g = np.asarray(g, np.float64)
        cond = np.abs(np.asarray(dgdx, np.float64)) @ x
        if dgdy is not None:
            cond = cond + np.abs(np.asarray(dgdy, np.float64)).reshape(g.size, -1) @ np.abs(
                np.asarray(y, np.float64).reshape(-1))
        dg = tt.TERM_ROUNDINGS * tt.EPS64 * (np.abs(g) + cond)
        rtol += float(np.linalg.norm(dg) / np.linalg.norm(g))
    assert abs(float(r.ratio) / a - 1) <= rtol and float(r.residual) <= rtol, (name, r, rtol)


def _already_fitted() -> set[str]:
    import test_same_theta

    return set(test_same_theta.CASES)


def _model(theta, x, pred0):
    """pred = pred0 + theta[0] + theta[1] x (for class logits: the first class fixed)."""
    lin = theta[0] + theta[1] * (x[:, None] if pred0.ndim == 2 else x)
    if pred0.ndim == 2:
        lin = jnp.concatenate([jnp.zeros_like(lin[:, :1]), lin], axis=1)
    return pred0 + lin


@pytest.mark.parametrize("name", ROWS)
def test_same_theta_hat_from_the_nll_and_the_loss(x64, name):
    if name in _already_fitted():
        pytest.skip("fitted in tests/test_same_theta.py")
    case = EQUIVALENCE_CASES[name]
    if not case.smooth:
        pytest.skip("non-smooth row: the minimiser sits on a kink; see test_same_theta")
    eq = nllax.equivalences[name]
    y, pred, noise, _, _ = _inputs(name, jnp.float64)
    x = jnp.linspace(-1.0, 1.0, N)
    pred0 = 0.5 * pred
    theta0 = jnp.zeros((2,) + pred.shape[1:-1] + ((pred.shape[-1] - 1,) if pred.ndim == 2
                                                   else ()))
    r_nll = nllax.fit(lambda t: eq.nll(y, _model(t, x, pred0), **noise), theta0)
    r_loss = nllax.fit(lambda t: eq.loss_at(y, _model(t, x, pred0), **noise), theta0)
    assert bool(r_nll.converged) and bool(r_loss.converged)
    diff = float(jnp.max(jnp.abs(r_nll.params - r_loss.params)))
    # each certified by its Newton step + rounding floor (tt.fit_distance): agreement to
    # the sum of the two distances to the optimum
    # (per-observation data among the noise arguments, the binomial's trials, go by row)
    rows = {k: v for k, v in noise.items() if jnp.ndim(v) and v.shape[0] == N}
    fixed = {k: v for k, v in noise.items() if k not in rows}

    def nll(t, y, x, pred0, *r):
        return eq.nll(y, _model(t, x, pred0), **fixed, **dict(zip(rows, r)))

    def loss(t, y, x, pred0, *r):
        return eq.loss_at(y, _model(t, x, pred0), **fixed, **dict(zip(rows, r)))

    args = (y, x, pred0, *rows.values())
    bound = (sum(tt.fit_distance(nll, r_nll.params, *args))
             + sum(tt.fit_distance(loss, r_loss.params, *args)))
    assert diff <= bound, (name, diff, bound)
