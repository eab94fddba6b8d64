"""Eager calls of the verification and equivalence entry points as one cached program.

The family functions do this in ``nllax._family._eager``: outside any transformation a call
runs as one jitted program cached per static structure, instead of op by op (each primitive
dispatched, and compiled on first use, on its own). Here the same for entry points whose
body is a user's objective (``nllax.verify.gradient_ratio`` differentiates ``f`` and ``g``)
or a row of the equivalence table:

- the key of a program: the callables, the pytree structure of the arguments and every leaf
  that is not an array or a float (strings, bools, ``None``, Python ints, often counts or
  shapes in an objective); arrays and floats are the program's arguments, as in
  ``_eager``. An unhashable key: the old path.
- a program whose trace fails falls back to the old path (which gives its result, or the
  error it gave before); when the old path succeeds (the body needs concrete values: an
  objective converts an argument to a Python number, say) its key remembers that.
- a user's callable made afresh for each call (``lambda w: nll(w, x, y)`` inside a loop)
  would compile a new program per call where op by op reuses the compiled primitives: the
  second callable seen with the same code (the same ``lambda`` line) and a different
  identity marks that code as per-call, and its calls run the old path from then on.
- both caches are bounded (``maxsize`` below): a program keeps its callables (and what
  they close over) alive until it is evicted.

Under ``jit``, ``grad`` or ``vmap`` nothing changes: the entry points call their bodies.
"""

from __future__ import annotations

import functools
import types
from collections import OrderedDict
from typing import Any, Callable

import jax

from nllax._family import _is_array_value, _top_level

__all__ = ["run", "top_level"]

top_level = _top_level

_DYN = object()  # marks an argument leaf of the program in the static key
_OP_BY_OP = object()  # a key whose trace needed concrete values

_MAXSIZE = 64

# code of the callables -> the callables last seen with it (bounded); codes seen with two
# different callables: made per call
_owners: OrderedDict = OrderedDict()
_per_call: set = set()
_op_by_op: set = set()


def _code(f: Any) -> Any:
    if isinstance(f, functools.partial):
        return ("partial", _code(f.func))
    if isinstance(f, types.MethodType):
        return ("method", _code(f.__func__))
    code = getattr(f, "__code__", None)
    if code is not None:
        return code
    try:  # a callable object (a row of the equivalence table): itself
        hash(f)
        return f
    except TypeError:
        return type(f)


def _same(a: Any, b: Any) -> bool:
    # a bound method is made at each attribute access, equal ones are the same callable;
    # so are equal hashable objects (a frozen dataclass)
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  (an __eq__ of arrays, say: not the same)
        return False


def _stable(fns: tuple) -> bool:
    """False for callables whose code was seen before with other callables (a lambda or
    a partial made afresh per call)."""
    codes = tuple(_code(f) for f in fns)
    try:
        if codes in _per_call:
            return False
        prev = _owners.get(codes)
    except TypeError:  # an unhashable callable type: no program
        return False
    if prev is not None and not all(_same(a, b) for a, b in zip(prev, fns)):
        _per_call.add(codes)
        _owners.pop(codes, None)
        return False
    _owners[codes] = fns
    _owners.move_to_end(codes)
    while len(_owners) > _MAXSIZE:
        _owners.popitem(last=False)
    return True


@functools.lru_cache(maxsize=_MAXSIZE)
def _program(body: Callable, fns: tuple, treedef, static: tuple):
    def run(*values):
        it = iter(values)
        leaves = [next(it) if s is _DYN else s for s in static]
        return body(*fns, *jax.tree_util.tree_unflatten(treedef, leaves))

    run.__name__ = getattr(body, "__name__", "eager")
    return jax.jit(run)


def run(body: Callable, fns: tuple, *args: Any):
    """``body(*fns, *args)``, as one cached program where the call is eager and its key
    allows (see the module's docstring), else called as it is."""
    if not _top_level() or not _stable(fns):
        return body(*fns, *args)
    leaves, treedef = jax.tree_util.tree_flatten(args)
    static, values = [], []
    for leaf in leaves:
        # a Python int is often a count or a shape in a user's objective: part of the key
        if _is_array_value(leaf) and not isinstance(leaf, int):
            static.append(_DYN)
            values.append(leaf)
        else:
            static.append(leaf)
    key = (body, fns, treedef, tuple(static))
    try:
        if key in _op_by_op:
            return body(*fns, *args)
        program = _program(body, fns, treedef, tuple(static))
    except TypeError:  # an unhashable static leaf or callable: the call as it is
        return body(*fns, *args)
    try:
        return program(*values)
    except Exception:  # noqa: BLE001
        # The trace failed: the body needs concrete values (a concretization error, a
        # shape from an argument...), or the arguments are wrong. The old path gives the
        # user what it gave before: its result, or its own error. Only when it succeeds
        # does this key run op by op from now on (a wrong shape once does not demote it).
        out = body(*fns, *args)
        if len(_op_by_op) >= 4 * _MAXSIZE:
            _op_by_op.clear()
        _op_by_op.add(key)
        return out
