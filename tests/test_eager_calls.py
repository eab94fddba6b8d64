"""Eager calls of ``nllax.verify.gradient_ratio`` / ``assert_proportional`` and
``Equivalence.check`` run as one compiled program (nllax._eager_calls).

Like the family functions (tests/test_eager.py): outside any transformation the call is
one jitted program cached per callables and argument structure, with the arrays and numbers
as its arguments. These tests check that the eager call gives what the same call inside a
user's jit gives (the same program: bit for bit), compiles once per structure, falls back
for objectives that need concrete values and for callables made afresh per call, and is not
used under a transformation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nllax
from nllax import _eager_calls


def _nll(w, x, y):
    return nllax.gaussian.nll(y, w[0] + w[1] * x, 2.0)


def _sse(w, x, y):
    return nllax.losses.sse(y, w[0] + w[1] * x)


def _data(seed=0, n=20):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, 1.0 + 2.0 * x + rng.normal(size=n), rng.normal(size=2)


def _bytes(tree):
    return [np.asarray(leaf).tobytes() for leaf in jax.tree_util.tree_leaves(tree)]


def test_gradient_ratio_eager_equals_the_traced_call_bit_for_bit():
    x, y, w = _data()
    eager = nllax.verify.gradient_ratio(_nll, _sse, w, x, y)
    traced = jax.jit(lambda p, a, b: nllax.verify.gradient_ratio(_nll, _sse, p, a, b))(w, x, y)
    assert _bytes(eager) == _bytes(traced)
    # and the value: 1 / (2 sigma^2) with sigma = 2, to a few eps of the dtype (a ratio of
    # two sums of 20 products of size ~10: rounding of each, relative)
    eps = np.finfo(np.asarray(eager.ratio).dtype).eps
    np.testing.assert_allclose(eager.ratio, 0.125, rtol=256 * eps)


def test_new_values_of_the_same_shapes_do_not_compile_again():
    before = _eager_calls._program.cache_info()
    for seed in range(3):
        x, y, w = _data(seed)
        nllax.verify.gradient_ratio(_nll, _sse, w, x, y)
    after = _eager_calls._program.cache_info()
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 2


def test_assert_proportional_runs_the_same_program_and_still_fails():
    x, y, w = _data(1)
    before = _eager_calls._program.cache_info()
    res = nllax.verify.assert_proportional(_nll, _sse, w, x, y, ratio=0.125)
    np.testing.assert_array_equal(res.ratio, nllax.verify.gradient_ratio(_nll, _sse, w, x, y).ratio)
    after = _eager_calls._program.cache_info()
    assert after.misses - before.misses <= 1  # one program for both entry points
    with pytest.raises(AssertionError, match="expected ratio"):
        nllax.verify.assert_proportional(_nll, _sse, w, x, y, ratio=0.5)


def test_an_objective_that_needs_concrete_values_falls_back():
    """``float(...)`` of an argument cannot be traced: the call runs op by op, as before,
    with the same result as an objective without it."""
    x, y, w = _data(2)

    def concrete_sse(p, a, b):
        s = float(np.asarray(b).sum())  # a Python number: needs the value
        return nllax.losses.sse(b, p[0] + p[1] * a) + 0.0 * s

    eager = nllax.verify.gradient_ratio(_nll, concrete_sse, w, x, y)
    ref = nllax.verify.gradient_ratio(_nll, _sse, w, x, y)
    eps = np.finfo(np.asarray(ref.ratio).dtype).eps
    np.testing.assert_allclose(eager.ratio, ref.ratio, rtol=16 * eps)
    nllax.verify.gradient_ratio(_nll, concrete_sse, w, x, y)  # the key remembers: no error


def test_a_lambda_made_per_call_stops_compiling():
    """The second lambda of the same line marks that code as made per call: from then on
    its calls compile nothing new (op by op reuses the compiled primitives)."""
    x, y, w = _data(3)
    misses = []
    for _ in range(4):
        f = lambda p, a, b: _nll(p, a, b)  # noqa: E731  (a new function each time)
        before = _eager_calls._program.cache_info().misses
        r = nllax.verify.gradient_ratio(f, _sse, w, x, y)
        misses.append(_eager_calls._program.cache_info().misses - before)
        assert np.isfinite(r.ratio)
    assert sum(misses[1:]) == 0, misses


def test_under_a_transformation_the_body_is_traced_as_before():
    x, y, w = _data(4)
    before = _eager_calls._program.cache_info()
    out = jax.vmap(lambda p: nllax.verify.gradient_ratio(_nll, _sse, p, x, y).ratio)(
        jnp.stack([w, w + 1.0]))
    assert out.shape == (2,)
    assert _eager_calls._program.cache_info() == before


def test_non_scalar_objective_still_raises():
    x, y, w = _data(5)
    with pytest.raises(ValueError, match="must return a scalar"):
        nllax.verify.gradient_ratio(lambda p, a, b: p * 1.0, _sse, w, x, y)


@pytest.mark.parametrize("name", ["sse", "mae", "poisson", "huber"])
def test_equivalence_check_eager_equals_the_traced_call_bit_for_bit(name):
    eq = nllax.equivalences[name]
    rng = np.random.default_rng(6)
    y = np.abs(rng.normal(size=12)) if name == "poisson" else rng.normal(size=12)
    y = np.round(y * 3) if name == "poisson" else y
    pred = rng.normal(size=12)
    noise = {k: 1.5 for k in eq.noise}
    where = np.arange(12) % 3 != 0
    eager = eq.check(y, pred, where=where, **noise)
    # the noise numbers are arguments of the eager program: arguments here too (a closed
    # over constant would be folded into a different program)
    traced = jax.jit(lambda a, b, m, z: dataclasses_tuple(eq.check(a, b, where=m, **z)))(
        y, pred, where, noise)
    assert _bytes(dataclasses_tuple(eager)) == _bytes(traced)


def dataclasses_tuple(c):
    return (c.nll, c.loss, c.a, c.b)


def test_equivalence_check_compiles_once_per_structure():
    eq = nllax.equivalences["sse"]
    before = _eager_calls._program.cache_info()
    for s in (0.5, 1.0, 2.0):  # a Python number: an argument, not part of the key
        c = eq.check(np.linspace(0, 1, 5), np.zeros(5), scale=s)
        # a sum of 5 squares against a * sse + b: a few roundings of the dtype each
        eps = np.finfo(np.asarray(c.nll).dtype).eps
        np.testing.assert_allclose(c.nll, c.predicted, rtol=64 * eps)
    after = _eager_calls._program.cache_info()
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 2


def test_lr_test_eager_equals_the_traced_call_and_still_raises():
    """nllax.lr_test's arithmetic and incomplete gamma function are one compiled program
    eagerly (the same body as under jit: bit for bit); its value checks still raise."""
    eager = nllax.lr_test(-105.2, -101.4, 2)
    traced = jax.jit(lambda a, b: nllax.lr_test(a, b, 2))(-105.2, -101.4)
    assert _bytes((eager.statistic, eager.pvalue)) == _bytes((traced.statistic, traced.pvalue))
    before = nllax._inference._lr_core_jit._cache_size()
    nllax.lr_test(-12.0, -10.5, 2)
    assert nllax._inference._lr_core_jit._cache_size() == before  # no new program
    with pytest.raises(ValueError, match="swapped"):
        nllax.lr_test(-101.4, -105.2, 2)


def test_an_int_argument_used_as_a_shape_is_part_of_the_key():
    """A Python int stays a Python int in the objective (a count, a shape), as before."""
    x, y, w = _data(7)

    def padded_sse(p, a, b, k):
        return nllax.losses.sse(b, p[0] + p[1] * a) + jnp.sum(jnp.zeros(k))

    r = nllax.verify.gradient_ratio(_nll_k, padded_sse, w, x, y, 3)
    ref = nllax.verify.gradient_ratio(_nll, _sse, w, x, y).ratio
    # the same gradients (the padding adds an exact 0): a few roundings of the dtype
    np.testing.assert_allclose(r.ratio, ref, rtol=16 * np.finfo(np.asarray(ref).dtype).eps)
    # it ran as a program: its key (body, callables, ...) is not one demoted to op by op
    assert not any(k[1] == (_nll_k, padded_sse) for k in _eager_calls._op_by_op)


def _nll_k(w, x, y, k):
    return _nll(w, x, y)
