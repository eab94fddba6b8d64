"""Eager calls of a family's functions run as one compiled program (nllax._family._eager).

Outside any transformation, ``nllax.gaussian.nll(y, loc, scale)`` is dispatched as one
jitted program cached per family, function and static arguments (the options such as
``axis`` or ``variance``, ``reduction``, which arguments are given), with the arrays and
numbers as its arguments, as `jax.numpy`'s own functions are. These tests check that the
eager call gives what the traced call gives, compiles once per shape, keeps its static
arguments apart, falls back for arguments a program cannot take, and is not used under a
transformation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax
from nllax import _family


def test_eager_equals_the_traced_call_bit_for_bit():
    """The eager program is the jitted body itself: the same value to the last bit as the
    same call inside a user's jit (one compiled program each, the same HLO)."""
    rng = np.random.default_rng(0)
    y, loc, s = rng.normal(size=(3, 50))
    s = np.exp(s)
    eager = nllax.gaussian.nll(y, loc, s, reduction="mean")
    traced = jax.jit(lambda a, b, c: nllax.gaussian.nll(a, b, c, reduction="mean"))(y, loc, s)
    assert np.asarray(eager).tobytes() == np.asarray(traced).tobytes()
    lp = nllax.poisson.log_prob(np.arange(5.0), rate=np.linspace(0.5, 3.0, 5))
    lp_jit = jax.jit(lambda a, b: nllax.poisson.log_prob(a, rate=b))(
        np.arange(5.0), np.linspace(0.5, 3.0, 5))
    np.testing.assert_array_equal(lp, lp_jit)


def test_new_values_of_the_same_shapes_do_not_compile_again():
    before = _family._eager_program.cache_info()
    y = jnp.linspace(-1.0, 1.0, 7)
    for scale in (0.5, 1.5, 2.5):  # a Python number: an argument, not part of the key
        out = nllax.laplace.nll(y, 0.0, scale)
        assert np.isfinite(out)
    after = _family._eager_program.cache_info()
    # one new program (the first call), then hits
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 2


def test_static_options_select_their_own_program():
    """``axis`` is an option (part of the key): the class axis moves, and each program
    computes with its own."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3))
    labels = np.array([0, 2, 1, 2])
    last = nllax.categorical.nll(labels, logits=z)
    first = nllax.categorical.nll(labels, logits=z.T, axis=0)
    ref = -np.sum(z[np.arange(4), labels] - np.log(np.sum(np.exp(z), axis=1)))
    # float32 (x64 off) or float64: a sum of 4 log-softmax terms of size ~2, each exact to
    # a few eps of the dtype
    eps = np.finfo(np.asarray(last).dtype).eps
    np.testing.assert_allclose(last, ref, rtol=64 * eps)
    np.testing.assert_allclose(first, ref, rtol=64 * eps)


def test_an_argument_a_program_cannot_take_falls_back_to_the_call_itself():
    """A Python list is not hashable and not an array: the call runs as before (op by op)
    and gives the same value as the array."""
    as_list = nllax.gaussian.nll([0.0, 1.0, 2.0], 0.5, 1.0)
    as_array = nllax.gaussian.nll(np.array([0.0, 1.0, 2.0]), 0.5, 1.0)
    np.testing.assert_array_equal(as_list, as_array)


def test_invalid_values_and_bad_shapes_behave_as_before():
    """A Python-number parameter is now a traced scalar in the eager program: an invalid
    one still gives NaN (value and gradient), a bad shape still raises naming the
    argument."""
    assert np.isnan(nllax.gaussian.nll(np.ones(3), 0.0, -1.0))
    assert np.isnan(nllax.poisson.nll(np.array([1.0, -1.0]), rate=1.0))
    assert np.isfinite(nllax.poisson.nll(np.array([1.0, 2.0]), rate=1.0))
    with pytest.raises(ValueError, match="scale"):
        nllax.gaussian.nll(np.ones(3), 0.0, np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        nllax.gaussian.nll(np.ones(3), 0.0, 1.0, reduction="avg")


def test_not_used_under_a_transformation():
    """Inside jit, grad or vmap the family's body is traced into the enclosing program as
    before (no nested program)."""
    seen = []

    def f(loc):
        seen.append(_family._top_level())
        return nllax.gaussian.nll(jnp.ones(3), loc, 1.0)

    jax.grad(f)(0.0)
    jax.jit(f)(0.0)
    jax.vmap(f)(jnp.zeros(2))
    assert seen == [False, False, False]
    jaxpr = jax.make_jaxpr(lambda loc: nllax.gaussian.nll(jnp.ones(3), loc, 1.0))(0.0)
    assert not any(e.primitive.name in ("pjit", "jit") and "gaussian" in str(e.params.get("name", ""))
                   for e in jaxpr.jaxpr.eqns)
    assert _family._top_level()
