"""Bad input gets a clear answer, for every registered family, from its case's data.

* Values JAX cannot check under jit: the invalid observation gives NaN (value and
  gradient, the gradient NaN exactly there), ``nllax.checked`` raises naming the argument,
  and the same value in a masked slot changes nothing (exactly like indexing).
* Shapes and dtypes: trace-time errors naming the argument.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import _harness as H
import nllax
from cases import CASES, all_parametrisations, choice_for, invalid_items, pid

INVALID = invalid_items()
IDS = [f"{c.name}-{a}-{v if np.ndim(v) == 0 else 'row' + str(i)}"
       for i, (c, a, v) in enumerate(INVALID)]
PARAMS = all_parametrisations()


# The compiled functions of one case take the (bad) values as arguments and are built once
# per case and argument names (functools.cache, keyed by the case's name): the values of
# one argument (a negative, a zero and a NaN scale) then share one compile.


@functools.cache
def _nan_run(name, names):
    case = CASES[name]

    def run(d, k):
        lp = H.call(case, "log_prob", d, k)
        none = H.call(case, "nll", d, k, reduction="none")
        total = H.call(case, "nll", d, k)
        f = H.grad_fn(case, d, k, names)
        grads = jax.grad(f, argnums=tuple(range(len(names))))(*(k[n] for n in names))
        return lp, none, total, grads

    return jax.jit(run)


@functools.cache
def _masked_nll(name):
    case = CASES[name]
    return jax.jit(lambda d, k, where: H.call(case, "nll", d, k, where=where))


@functools.cache
def _checked_masked_nll(name):
    return nllax.checked(_masked_nll(name))


@functools.cache
def _plain_nll(name):
    case = CASES[name]
    return jax.jit(lambda d, k: H.call(case, "nll", d, k))


@functools.cache
def _masked_weighted_grad(name, names):
    case = CASES[name]

    def g(d, k, where, w):
        f = H.grad_fn(case, d, k, names, where=where, weights=w)
        return jax.grad(f, argnums=tuple(range(len(names))))(*(k[n] for n in names))

    return jax.jit(g)


def _bad_inputs(case, arg, value):
    choice = choice_for(case, arg)
    data, _, kw = H.inputs(case, choice, n=4)
    return H.with_bad(case, data, kw, arg, value)


@pytest.mark.parametrize("item", INVALID, ids=IDS)
def test_invalid_value_is_nan_in_value_and_gradient(item):
    case, arg, value = item
    data, kw = _bad_inputs(case, arg, value)
    names = H.float_args(case, kw)
    d = H.to_jax(data, jnp.float32)
    k = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    lp, none, total, grads = jax.tree.map(np.asarray, _nan_run(case.name, tuple(names))(d, k))
    assert np.isnan(lp[1]) and np.all(np.isfinite(np.delete(lp, 1)))
    assert np.isnan(none[1]) and np.isnan(total)
    for name, g in zip(names, grads):
        # NaN exactly at the invalid observation (the others keep a finite gradient)
        assert np.all(np.isnan(g[1])), (name, g)
        assert np.all(np.isfinite(np.delete(g, 1, axis=0))), (name, g)


@pytest.mark.parametrize("item", INVALID, ids=IDS)
def test_checked_names_the_argument_and_a_mask_exempts_it(item):
    case, arg, value = item
    data, kw = _bad_inputs(case, arg, value)
    d = H.to_jax(data, jnp.float32)
    k = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    where = jnp.array([True, False, True, True])
    checked = _checked_masked_nll(case.name)
    with pytest.raises(checkify.JaxRuntimeError,
                       match=re.escape(f"{case.family.fn_name}: `{arg}`")):
        checked(d, k, jnp.ones(4, bool))
    masked = checked(d, k, where)  # the invalid observation is masked: no error
    # ... and the value is the NLL of the other three, as if indexed out
    d3, k3 = H.drop(case, data, kw)
    want = _plain_nll(case.name)(H.to_jax(d3, jnp.float32),
                                 {a: H.to_jax(v, jnp.float32) for a, v in k3.items()})
    # same terms summed in another order: 3 roundings of the largest partial sum
    assert abs(float(masked) - float(want)) <= 4 * H.EPS32 * (abs(float(want)) + 1)


@pytest.mark.parametrize("item", INVALID, ids=IDS)
def test_masked_invalid_value_has_a_zero_gradient(item):
    case, arg, value = item
    data, kw = _bad_inputs(case, arg, value)
    names = H.float_args(case, kw)
    d = H.to_jax(data, jnp.float32)
    k = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    where = jnp.array([True, False, True, True])
    w = jnp.array([1.0, jnp.nan, 2.0, 0.5])  # a NaN weight in the masked slot, too
    grads = _masked_weighted_grad(case.name, tuple(names))(d, k, where, w)
    for name, g in zip(names, grads):
        g = np.asarray(g)
        assert np.all(g[1] == 0) and np.all(np.isfinite(g)), (name, g)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_invalid_weights_are_nan_and_checked(case):
    data, _, kw = H.inputs(case, case.parametrisations()[0], n=4)
    d = H.to_jax(data, jnp.float32)
    k = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
    f = jax.jit(lambda d, k, w: H.call(case, "nll", d, k, weights=w))
    for bad in (-1.0, jnp.nan, jnp.inf):
        w = jnp.array([1.0, bad, 1.0, 1.0])
        assert np.isnan(float(f(d, k, w)))
    with pytest.raises(checkify.JaxRuntimeError, match="`weights` must be finite and >= 0"):
        nllax.checked(f)(d, k, jnp.array([1.0, -1.0, 1.0, 1.0]))


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_shape_mismatch_raises_naming_the_argument(cp):
    case, choice = cp
    data, _, kw = H.inputs(case, choice, n=5)
    for name in kw:
        v = np.asarray(kw[name])
        ev = H.event_ndim(case, name)
        bad = v[:, None] if ev == 0 else v[:, None, :]  # (n, 1) against (n,)
        with pytest.raises(ValueError, match=rf"`{name}.*\(5, 1"):
            H.call(case, "nll", data, dict(kw, **{name: bad}))
        with pytest.raises(ValueError, match=rf"`{name}"):
            jax.jit(lambda d, b: H.call(case, "log_prob", d, dict(kw, **{name: b})))(data, bad)
    for extra, err in (({"weights": np.ones((5, 1))}, ValueError),
                       ({"where": np.ones((5, 1), bool)}, ValueError),
                       ({"where": np.ones(5)}, TypeError),
                       ({"reduction": "median"}, ValueError)):
        with pytest.raises(err, match=next(iter(extra)) if err is ValueError else "mask"):
            H.call(case, "nll", data, kw, **extra)


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_integer_parameters_and_complex_inputs_are_type_errors(cp):
    case, choice = cp
    data, _, kw = H.inputs(case, choice, n=5)
    for name in H.float_args(case, kw):
        with pytest.raises(TypeError, match=rf"`{name}` has dtype int"):
            H.call(case, "nll", data, dict(kw, **{name: np.asarray(kw[name]).astype(np.int32)}))
        with pytest.raises(TypeError, match=rf"`{name}` must be real"):
            H.call(case, "nll", data, dict(kw, **{name: np.asarray(kw[name]) + 0j}))


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_exactly_one_of_each_group(case):
    data, params, kw = H.inputs(case, case.parametrisations()[0], n=5)
    for g in case.family.groups:
        others = {k: v for k, v in kw.items() if k != g.members[0].name}
        if len(g.members) > 1:
            second = g.members[1].name
            two = dict(kw, **case.convert(params, {**case.parametrisations()[0],
                                                   g.name: second}))
            with pytest.raises(ValueError, match="exactly one"):
                H.call(case, "nll", data, two)
        if g.default is H_REQUIRED:
            with pytest.raises(ValueError, match="exactly one"):
                H.call(case, "nll", data, others)


H_REQUIRED = __import__("inspect").Parameter.empty
