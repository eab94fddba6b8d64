"""float32 accuracy of every registered family, in every parametrisation: the float32
result against the float64 reference evaluated at *the same* (float32-rounded) inputs,
within the case's bound ``f32_ulps * eps32 * magnitude`` (the size of the terms that are
added; the reason is written in the case). And the dtype conventions: 16-bit inputs are
computed in, and returned as, float32; float64 stays float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _harness as H
from cases import CASES, all_parametrisations, pid

PARAMS = all_parametrisations()
N = 64  # observations: one shape for both value tests, so that they share programs


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_float32_accuracy(cp):
    case, choice = cp
    data, _, kw = H.inputs(case, choice, n=N)
    d32 = H.to_jax(data, jnp.float32)
    k32 = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    # an eager call is one compiled program, cached per family and argument names
    # (nllax._family._eager): the 16-bit test's float32 call below, same shapes, reuses it
    got = np.asarray(H.call(case, "log_prob", d32, k32))
    assert got.dtype == np.float32
    # the reference at the rounded inputs, mapped back to the canonical parameters
    # exactly in float64
    _assert_within_f32_bound(case, got, d32, k32, data)


def _rows(v, ok):
    """The observations ``ok`` of a parameter (a scalar or a per-observation array)."""
    v = np.asarray(v)
    return v if v.ndim == 0 or v.shape[0] != ok.shape[0] else v[ok]


def _assert_within_f32_bound(case, got, d32, k32, data):
    """``got`` (float32) against the float64 reference at the same float32 inputs, within
    the case's bound ``f32_ulps * eps32 * magnitude`` (its ``f32_why``)."""
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


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16_bit_inputs_are_computed_in_float32(case, dtype):
    data, _, kw = H.inputs(case, case.parametrisations()[0], n=N)
    big = float(jnp.finfo(dtype).max)
    if np.issubdtype(data.dtype, np.floating):
        data = np.where(np.abs(data) > big, 1.0, data)  # a count of 123456 is no float16
    kw = {a: np.where(np.abs(v) > big, 1.0, v) if np.issubdtype(np.asarray(v).dtype, np.floating)
          else v for a, v in kw.items()}  # nor 1e9 trials
    k16 = {a: H.to_jax(v, dtype) for a, v in kw.items()}
    d16 = H.to_jax(data, dtype)
    got = H.call(case, "log_prob", d16, k16)
    assert got.dtype == jnp.float32
    # the same as float32 on the exactly upcast values (same formulas, same dtype)
    k32 = {a: v.astype(jnp.float32) for a, v in k16.items()}
    d32 = d16.astype(jnp.float32) if jnp.issubdtype(d16.dtype, jnp.floating) else d16
    # computed in float32: within the case's float32 bound of the float64 reference at
    # the exactly upcast values (float16 arithmetic would miss it by ~eps16/eps32 = 8192x).
    # Not bit-equal to the float32 call: each is one compiled program (eager calls are
    # jitted), and XLA may fuse and round the two differently.
    # Rounding to 16 bits can make an input invalid (a probability to 1, a bound to
    # another): then the float32 call of the upcast values is NaN too, and so must be this.
    want = np.asarray(H.call(case, "log_prob", d32, k32))
    got = np.asarray(got)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    _assert_within_f32_bound(case, got[ok], np.asarray(d32)[ok],
                             {a: _rows(v, ok) for a, v in k32.items()}, np.asarray(data)[ok])
    # the reduced value's dtype only: traced, not compiled (jax.eval_shape runs the same
    # trace an eager call compiles, whose output dtype is the traced one)
    assert _dtype(case, d16, k16) == jnp.float32


def _dtype(case, d, k, **extra):
    """The dtype ``H.call(case, "nll", d, k, **extra)`` returns, from its trace alone (the
    extra values are arguments, as in an eager call: a Python number stays weakly typed)."""
    return jax.eval_shape(lambda d, k, e: H.call(case, "nll", d, k, **e), d, k, extra).dtype


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_float64_stays_float64_and_weak_scalars_do_not_promote(x64, case):
    data, _, kw = H.inputs(case, case.parametrisations()[0], n=4)
    k = {a: H.to_jax(v, jnp.float64) for a, v in kw.items()}
    assert _dtype(case, H.to_jax(data, jnp.float64), k) == jnp.float64
    k32 = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    d32 = H.to_jax(data, jnp.float32)
    assert _dtype(case, d32, k32, weights=2.0) == jnp.float32
