"""float32 accuracy of every registered family, in every parametrisation: the float32
result against the float64 reference evaluated at *the same* (float32-rounded) inputs,
within the case's bound ``f32_ulps * eps32 * magnitude`` (the size of the terms that are
added; the reason is written in the case). And the dtype conventions: 16-bit inputs are
computed in, and returned as, float32; float64 stays float64."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _harness as H
from cases import CASES, all_parametrisations, pid

PARAMS = all_parametrisations()


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_float32_accuracy(cp):
    case, choice = cp
    data, _, kw = H.inputs(case, choice, n=64)
    d32 = H.to_jax(data, jnp.float32)
    k32 = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    got = np.asarray(jax.jit(lambda d, k: H.call(case, "log_prob", d, k))(d32, k32))
    assert got.dtype == np.float32
    # the reference at the rounded inputs, mapped back to the canonical parameters
    # exactly in float64
    d64 = np.asarray(d32).astype(np.float64) if np.issubdtype(np.asarray(d32).dtype,
                                                                np.floating) else data
    with jax.enable_x64(True):
        canon = H.canonical(case, {a: np.asarray(v).astype(np.float64) for a, v in k32.items()})
    want = case.reference(d64, **canon)
    mag = (case.magnitude(d64, **canon) if case.magnitude is not None
           else np.abs(want) + 1.0)
    err = np.abs(got.astype(np.float64) - want)
    bound = case.f32_ulps * H.EPS32 * mag  # case.f32_why
    bad = ~(err <= bound) & ~(got == want)
    assert not np.any(bad), (case.f32_why, got[bad], want[bad], (err / (H.EPS32 * mag))[bad])


@functools.cache
def _upcast_log_prob(name):
    """log_prob at the given values upcast to float32 (exactly) inside the program."""
    case = CASES[name]

    def up(x):
        return x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.jit(lambda d, k: H.call(case, "log_prob", up(d), {a: up(v) for a, v in k.items()}))


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16_bit_inputs_are_computed_in_float32(case, dtype):
    data, _, kw = H.inputs(case, case.parametrisations()[0], n=8)
    big = float(jnp.finfo(dtype).max)
    if np.issubdtype(data.dtype, np.floating):
        data = np.where(np.abs(data) > big, 1.0, data)  # a count of 123456 is no float16
    kw = {a: np.where(np.abs(v) > big, 1.0, v) if np.issubdtype(np.asarray(v).dtype, np.floating)
          else v for a, v in kw.items()}  # nor 1e9 trials
    k16 = {a: H.to_jax(v, dtype) for a, v in kw.items()}
    d16 = H.to_jax(data, dtype)
    got = H.call(case, "log_prob", d16, k16)
    assert got.dtype == jnp.float32
    # the same as float32 on the exactly upcast values (same formulas, same dtype), upcast
    # in the program that computes them: a program whose inputs are float16 is compiled
    # differently from one whose inputs are float32 (eager calls are compiled programs,
    # nllax._family._eager; float16 beta and gamma came out 17 to 43 ulps away from an
    # eager float32 call at the same values), one that upcasts first as the family does
    # is compiled alike (bitwise equal on every case)
    want = _upcast_log_prob(case.name)(d16, k16)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=4 * H.EPS32, atol=0)
    total = H.call(case, "nll", d16, k16)
    assert total.dtype == jnp.float32


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_float64_stays_float64_and_weak_scalars_do_not_promote(x64, case):
    data, _, kw = H.inputs(case, case.parametrisations()[0], n=4)
    k = {a: H.to_jax(v, jnp.float64) for a, v in kw.items()}
    assert H.call(case, "nll", H.to_jax(data, jnp.float64), k).dtype == jnp.float64
    k32 = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    d32 = H.to_jax(data, jnp.float32)
    assert H.call(case, "nll", d32, k32, weights=2.0).dtype == jnp.float32
