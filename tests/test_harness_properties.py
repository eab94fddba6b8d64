"""Structural properties of every registered family (and the same code serves every
loss): vmap equals a loop, a mask equals indexing in value and gradient, weights of one
equal no weights and scale the NLL, ``mean`` is ``sum / count``, and repeated calls with
the same shapes trace once."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _harness as H
from cases import CASES, all_parametrisations, pid

PARAMS = all_parametrisations()
CASE_LIST = list(CASES.values())


def _f32(case, choice, n=6, seed=H.SEED):
    data, params, kw = H.inputs(case, choice, n=n, seed=seed)
    return (H.to_jax(data, jnp.float32), {a: H.to_jax(v, jnp.float32) for a, v in kw.items()},
            data, kw)


M = np.array([True, False, True, True, False, True])  # the mask test's mask (n = 6)
IDX = np.flatnonzero(M)


def _mask_programs(case, names):
    """``(first, second)``, the mask test's two jitted functions of ``(d, k)``.

    ``first``: the masked value and gradient, the indexed ones (reverse mode), and the
    reductions. ``second``: the indexed gradient's sensitivity to its inputs (its
    condition numbers, for the backward-error bound of the test): ``d g_j / d v_l`` and
    ``d g_j / d data``, in one forward-over-reverse pass whose primal (the aux) is the
    indexed value and gradient by reverse mode. ``second`` costs more than ``first`` to
    trace, lower and compile (about 60% of the two on gamma and Student t: a second-order
    program; bench/TEST_TIME.md, "Harness modules, stop 21") and is needed only
    where the masked and indexed gradients are not bitwise equal (the test then compares
    them within its bound), so the test compiles it only there."""
    argn = tuple(range(len(names)))
    m = jnp.asarray(M)

    def first(d, k):
        f_mask = H.grad_fn(case, d, k, names, where=m)
        sub_k = {a: v[IDX] for a, v in k.items()}
        return {
            "masked": jax.value_and_grad(f_mask, argnums=argn)(*(k[n] for n in names)),
            "indexed": jax.value_and_grad(H.grad_fn(case, d[IDX], sub_k, names),
                                          argnums=argn)(*(sub_k[n] for n in names)),
            "plain": H.call(case, "nll", d, k),
            "ones": H.call(case, "nll", d, k, weights=jnp.ones(d.shape[0])),
            "twice": H.call(case, "nll", d, k, weights=2.0),
            "mean": H.call(case, "nll", d, k, reduction="mean"),
            "none": H.call(case, "nll", d, k, reduction="none"),
        }

    def second(d, k):
        sub_k = {a: v[IDX] for a, v in k.items()}
        floating = jnp.issubdtype(d.dtype, jnp.floating)

        def indexed(dd, *v):
            vg = jax.value_and_grad(H.grad_fn(case, dd, sub_k, names), argnums=argn)(*v)
            return vg[1], vg

        off = 1 if floating else 0
        wrt = tuple(range(1 - off, len(names) + 1))
        jac, vg_index = jax.jacfwd(indexed, argnums=wrt, has_aux=True)(
            d[IDX], *(sub_k[n] for n in names))
        return {
            "dgdv": tuple(tuple(jac[j][off + l] for l in argn) for j in argn),
            "dgdd": tuple(jac[j][0] for j in argn) if floating else None,
            "indexed": vg_index,
        }

    return jax.jit(first), jax.jit(second)


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_mask_equals_indexing_and_weights(cp):
    case, choice = cp
    d, k, data, kw = _f32(case, choice)
    names = H.float_args(case, kw)
    idx = IDX
    first, second = _mask_programs(case, names)
    r = jax.tree.map(np.asarray, first(d, k))
    tol = 8 * H.EPS32 * (np.sum(np.abs(r["none"])) + 1)  # sums in different orders
    (vm, gm), (vi, gi) = r["masked"], r["indexed"]
    assert abs(vm - vi) <= tol
    for g_mask in gm:
        assert np.all(np.delete(g_mask, idx, axis=0) == 0)
    # Masked and indexed gradients bitwise equal satisfy the bound below whatever its
    # size (it is >= 0): its condition numbers (the costlier, second-order program) are
    # computed only where some entry differs.
    if not all(np.array_equal(g_mask[idx], g_index) for g_mask, g_index in zip(gm, gi)):
        r2 = jax.tree.map(np.asarray, second(d, k))
        _, gi = r2["indexed"]
        sub = [np.asarray(k[n])[idx] for n in names]
        for j, (g_mask, g_index) in enumerate(zip(gm, gi)):
            # each entry is one observation's derivative; either computation is the exact
            # one at inputs perturbed by a few eps32 (backward error), plus a few roundings
            # of its value: 8 eps32 (|g| + |dg/dv| |v| + |dg/dy| |y|), twice (masked and
            # indexed)
            size = g_index.size
            cond = np.abs(g_index).reshape(-1).astype(np.float64)
            for l, v in enumerate(sub):
                cond += np.abs(np.asarray(r2["dgdv"][j][l], np.float64).reshape(size, -1)) @ np.abs(
                    v.astype(np.float64)).reshape(-1)
            if r2["dgdd"] is not None:
                cond += np.abs(np.asarray(r2["dgdd"][j], np.float64).reshape(size, -1)) @ np.abs(
                    np.asarray(d, np.float64)[idx]).reshape(-1)
            bound = 2 * 8 * H.EPS32 * cond.reshape(g_index.shape)
            assert np.all(np.abs(g_mask[idx] - g_index) <= bound), (names[j], g_mask[idx] - g_index, bound)
    assert abs(r["ones"] - r["plain"]) <= tol and abs(r["twice"] - 2 * r["plain"]) <= 2 * tol
    assert abs(r["mean"] - r["plain"] / d.shape[0]) <= tol / d.shape[0]
    assert abs(np.sum(r["none"]) - r["plain"]) <= tol


@pytest.mark.parametrize("case", CASE_LIST, ids=list(CASES))
def test_vmap_equals_a_loop(case):
    choice = case.parametrisations()[0]
    batches = [_f32(case, choice, seed=s)[:2] for s in range(3)]
    d = jnp.stack([b[0] for b in batches])
    k = {a: jnp.stack([b[1][a] for b in batches]) for a in batches[0][1]}
    f = jax.jit(jax.vmap(lambda d, k: H.call(case, "nll", d, k)))
    got = np.asarray(f(d, k))
    loop = np.array([float(H.call(case, "nll", *b)) for b in batches])
    np.testing.assert_allclose(got, loop, rtol=8 * H.EPS32)


@pytest.mark.parametrize("case", CASE_LIST, ids=list(CASES))
def test_same_shapes_trace_once(case):
    choice = case.parametrisations()[0]
    chex.clear_trace_counter()  # chex counts per code object, across parametrised tests

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(d, k):
        return H.call(case, "nll", d, k), H.call(case, "log_prob", d, k)

    for seed in range(3):  # a second trace would raise AssertionError
        jax.block_until_ready(f(*_f32(case, choice, seed=seed)[:2]))
