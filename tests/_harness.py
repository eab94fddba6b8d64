"""Shared helpers of the registry-driven tests (tests/test_harness_*.py)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from cases import FamilyCase

N = 12  # observations per test input: one shape for every family, so compiles are shared
SEED = 20261201


def inputs(case: FamilyCase, choice: dict[str, str], seed: int = SEED, n: int = N):
    """Valid float64 inputs ``(data, canonical params, kwargs of the parametrisation)``."""
    rng = np.random.default_rng([seed, len(case.name)])
    data, params = case.sample(rng, n)
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    return np.asarray(data), params, case.convert(params, choice)


def to_jax(x: Any, dtype=None):
    a = np.asarray(x)
    if dtype is not None and np.issubdtype(a.dtype, np.floating):
        return jnp.asarray(a, dtype)
    return jnp.asarray(a)


def fn(case: FamilyCase, kind: str):
    return getattr(case.module, kind)


def call(case: FamilyCase, kind: str, data, kwargs, **extra):
    return fn(case, kind)(data, **kwargs, **case.options, **extra)


def canonical(case: FamilyCase, kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
    """The inverse of ``case.convert``: any parametrisation back to the canonical one, in
    float64 (used to evaluate the reference at exactly the inputs a test passed)."""
    out = {k: np.asarray(v, np.float64) for k, v in kwargs.items()}
    for g in case.family.groups:
        canon = g.members[0]
        for m in g.members[1:]:
            if m.name in out:
                out[canon.name] = np.asarray(m.to_canonical(np.asarray(out.pop(m.name))),
                                             np.float64)
    return out


def event_ndim(case: FamilyCase, name: str) -> int:
    if name == case.family.data.name:
        return case.family.data.event_ndim
    return next(p.event_ndim for p in case.family.flat_params if p.name == name)


def with_bad(case: FamilyCase, data, kwargs, arg: str, value, index: int = 1):
    """Copies of the inputs with ``arg`` at observation ``index`` replaced by ``value``."""
    data = np.array(data, copy=True)
    kwargs = {k: np.array(v, copy=True) for k, v in kwargs.items()}
    if arg == case.family.data.name:
        if np.issubdtype(data.dtype, np.integer):
            data[index] = int(value)
        else:
            data[index] = value
    else:
        kwargs[arg] = np.array(kwargs[arg], np.float64)
        kwargs[arg][index] = value
    return data, kwargs


def drop(case: FamilyCase, data, kwargs, index: int = 1):
    """The inputs without observation ``index`` (boolean indexing, for mask tests)."""
    keep = np.arange(len(data)) != index
    return data[keep], {k: np.asarray(v)[keep] for k, v in kwargs.items()}


def float_args(case: FamilyCase, kwargs) -> list[str]:
    return case.float_params(kwargs)


def grad_fn(case: FamilyCase, data, kwargs, names, kind="nll", **extra):
    """``f(*values) -> scalar`` over the parameters ``names`` (the rest bound)."""
    fixed = {k: v for k, v in kwargs.items() if k not in names}

    def f(*values):
        kw = dict(fixed, **dict(zip(names, values)))
        out = call(case, kind, data, kw, **extra)
        return jnp.sum(out)

    return f


EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def canonical_grad_fn(case: FamilyCase, data, choice, params, names, kind="nll", **extra):
    """``f(*canonical values) -> scalar``: each parameter given in ``choice``'s member,
    computed from the canonical value by the member's ``from_canonical``. Finite
    differences then stay inside the support (a probability vector stays on the
    simplex), and the member's derivative is checked through the chain rule."""
    members = {}
    for g in case.family.groups:
        m = next(m for m in g.members if m.name == choice[g.name])
        members[g.members[0].name] = m
    fixed = {k: v for k, v in params.items() if k not in names}

    def f(*values):
        kw = {}
        for k, v in list(fixed.items()) + list(zip(names, values)):
            m = members.get(k)
            if m is not None and m.from_canonical is not None:
                kw[m.name] = m.from_canonical(v)
            else:
                kw[k] = v
        return jnp.sum(call(case, kind, data, kw, **extra))

    return f
