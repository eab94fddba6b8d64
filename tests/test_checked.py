"""`nllax.checked`: every invalid-value rule raises, under jit, vmap and grad.

One table of invalid inputs (``CASES``) drives every test. Each case has one invalid
observation, at index 1 of three, so the same table also tests that a masked-out invalid
value (``where=False``) does not raise. For each case we check that

* ``nllax.checked(fn)`` raises a ``JaxRuntimeError`` naming the function, the argument
  and the rule, whether ``fn`` is plain, jitted, vmapped or differentiated;
* the same inputs made valid pass through ``checked`` with the unchecked result;
* unchecked, the value is NaN and the gradient is not finite (the promise is "no
  silently wrong number", and a finite gradient of an invalid input is one).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import nllax

NAN = float("nan")
K = 3  # classes in the categorical cases


@dataclasses.dataclass(frozen=True)
class Case:
    """``fn(data, param, where=None) -> array``; ``bad`` and ``good`` are (data, param)
    pairs that differ only at observation 1; ``match`` is the expected message."""

    entry: str  # the public function (and its parametrisation)
    rule: str  # the argument whose rule is broken
    variant: str  # how it is broken
    fn: Callable[..., jax.Array]
    bad: tuple[Any, Any]
    good: tuple[Any, Any]
    match: str
    # Which argument is invalid: "param" (differentiated) or "data".
    invalid: str = "param"

    @property
    def id(self) -> str:
        return f"{self.entry}-{self.rule}_{self.variant}"


def _a(*xs, dtype=jnp.float32):
    return jnp.asarray(xs, dtype)


def _rule(fn_name: str, rule: str) -> str:
    return re.escape(f"{fn_name}: {rule}")


SCALE = "`scale` must be > 0"
Y01 = "`y` must lie in [0, 1]"
P01 = "`probs` must lie in [0, 1]"
LABELS = f"`labels` must be integers in [0, {K})"
COUNTS = "`counts` must be non-negative integers"
RATE = "`rate` must be >= 0"

Y3 = _a(0.5, 1.0, 2.0)
LOGITS = jnp.asarray([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5], [0.0, 0.0, 2.0]], jnp.float32)
PROBS_OK = jnp.asarray([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]], jnp.float32)


def _location_scale(family, name):
    def nll(y, s, where=None):
        return family.nll(y, 0.3, s, where=where)

    def log_prob(y, s, where=None):
        assert where is None
        return family.log_prob(y, 0.3, s)

    out = []
    for entry, fn in (("nll", nll), ("log_prob", log_prob)):
        for label, v in (("neg", -1.0), ("zero", 0.0), ("nan", NAN)):
            out.append(Case(f"{name}.{entry}", "scale", label, fn, (Y3, _a(1.0, v, 2.0)),
                            (Y3, _a(1.0, 0.5, 2.0)), _rule(f"nllax.{name}", SCALE)))
    return out


def _bernoulli():
    def nll_p(y, p, where=None):
        return nllax.bernoulli.nll(y, probs=p, where=where)

    def lp_p(y, p, where=None):
        return nllax.bernoulli.log_prob(y, probs=p)

    def nll_z(y, z, where=None):
        return nllax.bernoulli.nll(y, logits=z, where=where)

    def lp_z(y, z, where=None):
        return nllax.bernoulli.log_prob(y, logits=z)

    def bce(y, z, where=None):
        return nllax.losses.binary_cross_entropy(y, z, where=where)

    y_ok = _a(0.0, 1.0, 0.25)
    out = []
    for entry, fn in (("nll", nll_p), ("log_prob", lp_p)):
        for label, v in (("above", 1.5), ("below", -0.5), ("nan", NAN)):
            out.append(Case(f"bernoulli.{entry}", "probs", label, fn, (y_ok, _a(0.3, v, 0.7)),
                            (y_ok, _a(0.3, 0.6, 0.7)), _rule("nllax.bernoulli", P01)))
        for label, v in (("above", 2.0), ("below", -1.0), ("nan", NAN)):
            out.append(Case(f"bernoulli.{entry}-probs", "y", label, fn, (_a(0.0, v, 0.25),
                            _a(0.3, 0.6, 0.7)), (y_ok, _a(0.3, 0.6, 0.7)),
                            _rule("nllax.bernoulli", Y01), invalid="data"))
    for entry, fn in (("nll", nll_z), ("log_prob", lp_z), ("losses.bce", bce)):
        for label, v in (("above", 2.0), ("below", -1.0), ("nan", NAN)):
            out.append(Case(f"bernoulli.{entry}-logits", "y", label, fn,
                            (_a(0.0, v, 0.25), _a(0.3, -2.0, 4.0)), (y_ok, _a(0.3, -2.0, 4.0)),
                            _rule("nllax.bernoulli", Y01), invalid="data"))
    return out


def _categorical():
    def nll_z(lab, z, where=None):
        return nllax.categorical.nll(lab, logits=z, where=where)

    def lp_z(lab, z, where=None):
        return nllax.categorical.log_prob(lab, logits=z)

    def ce(lab, z, where=None):
        return nllax.losses.cross_entropy(lab, z, where=where)

    def nll_p(lab, p, where=None):
        return nllax.categorical.nll(lab, probs=p, where=where)

    def lp_p(lab, p, where=None):
        return nllax.categorical.log_prob(lab, probs=p)

    lab_ok = jnp.asarray([0, 2, 0], jnp.int32)
    out = []
    for entry, fn, param in (("nll", nll_z, LOGITS), ("log_prob", lp_z, LOGITS),
                             ("losses.cross_entropy", ce, LOGITS), ("nll-probs", nll_p, PROBS_OK),
                             ("log_prob-probs", lp_p, PROBS_OK)):
        for label, v in (("K", K), ("negative", -1), ("large", 1000)):
            bad = jnp.asarray([0, v, 0], jnp.int32)
            out.append(Case(f"categorical.{entry}", "label", label, fn, (bad, param),
                            (lab_ok, param), _rule("nllax.categorical", LABELS), invalid="data"))
    rows = {
        "above": [0.0, 1.5, -0.5],  # sums to 1 but outside [0, 1]
        "below": [-0.1, 0.6, 0.5],
        "sum": [0.3, 0.3, 0.3],  # in [0, 1] but not summing to 1
        "nan": [NAN, 0.5, 0.5],
    }
    for entry, fn in (("nll", nll_p), ("log_prob", lp_p)):
        for label, row in rows.items():
            bad = PROBS_OK.at[1].set(jnp.asarray(row, jnp.float32))
            out.append(Case(f"categorical.{entry}", "probs", label, fn, (lab_ok, bad),
                            (lab_ok, PROBS_OK), re.escape("nllax.categorical: `probs` must lie")))
    return out


def _poisson():
    def nll_r(k, r, where=None):
        return nllax.poisson.nll(k, rate=r, where=where)

    def lp_r(k, r, where=None):
        return nllax.poisson.log_prob(k, rate=r)

    def nll_e(k, e, where=None):
        return nllax.poisson.nll(k, log_rate=e, where=where)

    def lp_e(k, e, where=None):
        return nllax.poisson.log_prob(k, log_rate=e)

    def loss(k, e, where=None):
        return nllax.losses.poisson(k, e, where=where)

    k_ok = _a(0.0, 3.0, 7.0)
    out = []
    for entry, fn in (("nll", nll_r), ("log_prob", lp_r)):
        for label, v in (("neg", -0.5), ("nan", NAN)):
            out.append(Case(f"poisson.{entry}", "rate", label, fn, (k_ok, _a(1.0, v, 2.0)),
                            (k_ok, _a(1.0, 0.5, 2.0)), _rule("nllax.poisson", RATE)))
    for entry, fn, name in (("nll-rate", nll_r, "nllax.poisson"),
                            ("nll", nll_e, "nllax.poisson"), ("log_prob", lp_e, "nllax.poisson"),
                            ("log_prob-rate", lp_r, "nllax.poisson"),
                            ("losses.poisson", loss, "nllax.losses.poisson")):
        param = _a(1.0, 0.5, 2.0) if "rate" in entry else _a(0.0, -0.7, 0.7)
        for label, v in (("neg", -1.0), ("frac", 1.5), ("nan", NAN), ("inf", float("inf"))):
            out.append(Case(f"poisson.{entry}", "counts", label, fn, (_a(0.0, v, 7.0), param),
                            (k_ok, param), _rule(name, COUNTS), invalid="data"))
    return out


CASES = (
    _location_scale(nllax.gaussian, "gaussian")
    + _location_scale(nllax.laplace, "laplace")
    + _bernoulli()
    + _categorical()
    + _poisson()
)
IDS = [c.id for c in CASES]
# Every mode for the first variant of each (entry point, rule); the other variants (zero
# and NaN besides a negative scale...) under jit only, to keep the module fast.
_FIRST: dict[tuple[str, str], Case] = {}
for _c in CASES:
    _FIRST.setdefault((_c.entry, _c.rule), _c)
FULL = list(_FIRST.values())
REST = [c for c in CASES if c not in FULL]


def _scalar(fn):
    return lambda d, p: jnp.sum(fn(d, p))


def _stack2(x):
    x = jnp.asarray(x)
    return jnp.stack([x, x])


# The four ways a user meets an nllax call: each maps (case fn) -> f(data, param).
MODES: dict[str, Callable[[Callable], Callable]] = {
    "plain": _scalar,
    "jit": lambda fn: jax.jit(_scalar(fn)),
    "vmap": lambda fn: lambda d, p: jnp.sum(jax.vmap(fn)(_stack2(d), _stack2(p))),
    "grad": lambda fn: jax.jit(jax.grad(_scalar(fn), argnums=1)),
}


# Built once per (mode, case function): the variants of one rule share a function and
# their shapes, so they share its compiled programs (checked and unchecked) instead of
# each compiling its own; the unchecked gradient test reuses the "grad" mode's program.
@functools.cache
def _mode(mode: str, fn: Callable) -> Callable:
    return MODES[mode](fn)


@functools.cache
def _checked(mode: str, fn: Callable) -> Callable:
    return nllax.checked(_mode(mode, fn))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", FULL, ids=[c.id for c in FULL])
def test_checked_raises_naming_argument_and_rule(case, mode):
    f = _mode(mode, case.fn)
    checked = _checked(mode, case.fn)
    # Valid inputs of the same shapes pass through with the unchecked result (and the
    # same compiled checked function then meets the invalid ones).
    got = checked(*case.good)
    assert np.all(np.isfinite(np.asarray(got)))
    np.testing.assert_allclose(np.asarray(got), np.asarray(f(*case.good)), rtol=1e-6)
    with pytest.raises(checkify.JaxRuntimeError, match=case.match):
        jax.block_until_ready(checked(*case.bad))


@pytest.mark.parametrize("case", REST, ids=[c.id for c in REST])
def test_checked_raises_other_variants(case):
    f = _checked("plain", case.fn)
    with pytest.raises(checkify.JaxRuntimeError, match=case.match):
        jax.block_until_ready(f(*case.bad))


WHERE_CASES = [c for c in FULL if ".nll" in c.entry or "losses." in c.entry]


@functools.cache
def _masked(fn: Callable) -> Callable:
    """The case's value and gradient with the mask as an argument, one program per case
    function (eagerly, every primitive of the derivative is dispatched on its own)."""
    return jax.jit(jax.value_and_grad(lambda d, p, m: fn(d, p, where=m), argnums=1))


@pytest.mark.parametrize("case", WHERE_CASES, ids=[c.id for c in WHERE_CASES])
def test_masked_out_invalid_value_does_not_raise(case):
    mask = jnp.asarray([True, False, True])
    f = _masked(case.fn)
    v, g = map(np.asarray, nllax.checked(f)(*case.bad, mask))
    # Equal to dropping the masked observation: the valid inputs, masked the same way.
    v_ref, g_ref = map(np.asarray, f(*case.good, mask))
    np.testing.assert_allclose(v, v_ref, rtol=1e-6)
    np.testing.assert_allclose(g[[0, 2]], g_ref[[0, 2]], rtol=1e-6)
    np.testing.assert_array_equal(g[1], 0.0)  # a masked observation has no gradient


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unchecked_value_is_nan(case):
    out = np.asarray(case.fn(*case.bad))
    assert np.isnan(out[1] if out.ndim else out)
    if out.ndim:  # per-observation: only the invalid observation is NaN
        assert np.isfinite(out[[0, 2]]).all()


# Reverse mode, with respect to the invalid parameter itself: NaN, not 0 (the guard
# `where(scale > 0, scale, 1)` alone would give 0; `_reduce.poison` adds the NaN).
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unchecked_gradient_is_not_finite(case):
    # The "grad" mode's program of test_checked_raises_naming_argument_and_rule (the same
    # function and shapes: compiled once per case function, not op by op per case).
    g = np.asarray(_mode("grad", case.fn)(*case.bad))
    if case.invalid == "param":
        assert np.isnan(g[1]).all() and np.isfinite(g[[0, 2]]).all(), g
    else:  # the invalid observation's parameter gets a NaN gradient
        assert np.isnan(g[1]).all(), g


# Eager on purpose: outside jit the rules' validity is a concrete array in the derivative
# rules (`_family._concrete`; checked: an ArrayImpl there, a tracer under jit), a branch of
# its own; the reverse mode above runs the jitted one.
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unchecked_forward_mode_derivative_is_not_finite(case):
    p = jnp.asarray(case.bad[1])
    _, t = jax.jvp(lambda q: _scalar(case.fn)(case.bad[0], q), (p,), (jnp.ones_like(p),))
    assert not np.isfinite(np.asarray(t))


# NaN in data. For Bernoulli targets and Poisson counts a NaN breaks the data rule; for
# real-valued data (Gaussian and Laplace `y`, the residual losses) the rule is "`y` must
# not be NaN" (`_reduce.not_nan`). Inf data are not flagged: they give an infinite NLL,
# the right limit of the density, which `nllax.fit` reports as non-finite.
_NAN_DATA_CASES = [
    pytest.param(lambda y: nllax.gaussian.nll(y, 0.0, 1.0), "gaussian", id="gaussian.nll"),
    pytest.param(lambda y: nllax.gaussian.log_prob(y, 0.0, 1.0), "gaussian", id="gaussian.log_prob"),
    pytest.param(lambda y: nllax.laplace.nll(y, 0.0, 1.0), "laplace", id="laplace.nll"),
    pytest.param(lambda y: nllax.losses.sse(y, 0.0), "losses.sse", id="losses.sse"),
    pytest.param(lambda y: nllax.losses.mae(y, 0.0), "losses.mae", id="losses.mae"),
]


@pytest.mark.parametrize("fn, name", _NAN_DATA_CASES)
def test_checked_nan_in_data_raises(fn, name):
    with pytest.raises(checkify.JaxRuntimeError, match=rf"nllax\.{name}.*`y`"):
        nllax.checked(jax.jit(fn))(_a(1.0, NAN, 2.0))


@pytest.mark.parametrize("fn, name", _NAN_DATA_CASES)
def test_nan_in_data_gives_nan_unchecked(fn, name):
    out = np.asarray(jax.jit(fn)(_a(1.0, NAN, 2.0)))
    assert np.isnan(out).any()


_NAN_DATA_GRADS = [
    pytest.param(lambda y, m: nllax.gaussian.nll(y, m), id="gaussian.nll"),
    pytest.param(lambda y, m: nllax.laplace.nll(y, m), id="laplace.nll"),
    pytest.param(lambda y, m: nllax.losses.sse(y, m), id="losses.sse"),
    pytest.param(lambda y, m: nllax.losses.mse(y, m), id="losses.mse"),
    # abs' own derivative at NaN is finite: SAE/MAE once gave a NaN value with a finite
    # gradient here (found by test_properties.py; fixed by routing them through poison).
    pytest.param(lambda y, m: nllax.losses.sae(y, m), id="losses.sae"),
    pytest.param(lambda y, m: nllax.losses.mae(y, m), id="losses.mae"),
]


@pytest.mark.parametrize("fn", _NAN_DATA_GRADS)
def test_nan_in_data_gives_non_finite_gradient(fn):
    # One scalar prediction for all observations: a NaN observation must make its
    # gradient non-finite (the value is NaN).
    y = _a(1.0, NAN, 2.0)
    g = jax.grad(lambda m: fn(y, m * jnp.ones(3)))(jnp.float32(0.5))
    assert np.isnan(float(fn(y, jnp.full(3, 0.5))))
    assert not np.isfinite(float(g)), float(g)


def test_nan_in_masked_data_does_not_leak():
    y = _a(1.0, NAN, 2.0)
    mask = jnp.asarray([True, False, True])
    f = nllax.checked(jax.jit(jax.value_and_grad(
        lambda m: nllax.gaussian.nll(y, m, 1.0, where=mask))))
    v, g = f(jnp.float32(0.5))
    v_ref, g_ref = jax.value_and_grad(lambda m: nllax.gaussian.nll(y[mask], m, 1.0))(0.5)
    np.testing.assert_allclose([v, g], [v_ref, g_ref], rtol=1e-6)


def test_checked_names_the_first_broken_rule_per_call():
    # Two rules broken in one call: the error names one of them (checkify reports the
    # first failing check in program order), never neither.
    f = nllax.checked(jax.jit(lambda y, p: nllax.bernoulli.nll(y, probs=p)))
    with pytest.raises(checkify.JaxRuntimeError, match=r"nllax\.bernoulli: `(y|probs)`"):
        f(_a(2.0), _a(1.5))


def test_checked_with_nested_transforms():
    # jit of vmap of grad, wrapped once: the check survives every layer.
    def per_row(y, s):
        return jax.grad(lambda q: nllax.gaussian.nll(y, 0.0, q))(s)

    f = nllax.checked(jax.jit(jax.vmap(per_row)))
    ys = jnp.ones((4, 3))
    np.testing.assert_allclose(f(ys, jnp.ones(4)), jax.vmap(per_row)(ys, jnp.ones(4)))
    with pytest.raises(checkify.JaxRuntimeError, match=re.escape(SCALE)):
        f(ys, _a(1.0, 1.0, -1.0, 1.0))


def test_checked_survives_jit_cache():
    # The same jitted function, called unchecked first (cached), then checked.
    f = jax.jit(lambda y, s: nllax.gaussian.nll(y, 0.0, s))
    assert np.isnan(f(Y3, -1.0))
    with pytest.raises(checkify.JaxRuntimeError, match=re.escape(SCALE)):
        nllax.checked(f)(Y3, -1.0)
    assert np.isnan(f(Y3, -1.0))  # and unchecked again afterwards


def test_checked_must_be_outermost():
    # `checked` throws from Python after the computation: it cannot run inside `jit`.
    f = jax.jit(nllax.checked(lambda s: nllax.gaussian.nll(Y3, 0.0, s)))
    with pytest.raises(ValueError, match="checkify"):
        f(1.0)


def test_checks_cost_nothing_unchecked():
    # A check that is not functionalized by `checked` leaves no trace in compiled code.
    f = jax.jit(lambda y, s: nllax.gaussian.nll(y, 0.0, s))
    hlo = f.lower(Y3, 1.0).compile().as_text().lower()
    assert "callback" not in hlo and "custom-call" not in hlo
