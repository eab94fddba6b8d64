r"""The family core: a family is a declaration, one pipeline does everything else.

A family module declares *what* it is, in one :class:`Family` object:

* its data (:class:`Data`: a name, a :class:`Constraint` on the support, integer or float),
* its parameters (:class:`Param`, or :class:`OneOf` for exactly-one groups such as
  ``scale`` / ``log_scale`` / ``var`` / ``log_var`` or ``logits`` / ``probs``), each with a
  constraint, a default, and whether it is positional or keyword-only,
* static options (:class:`Option`, e.g. the categorical ``axis``),
* the log-density (and, for continuous families, the log-CDF and log-survival function)
  as plain JAX functions of already checked arrays,

and gets its public ``log_prob``, ``nll``, ``log_cdf`` and ``log_sf`` functions, with real
signatures and docstrings, from :meth:`Family.functions`. The pipeline (this module) does,
in this order and identically for every family and every loss:

1. binding and exactly-one groups (``ValueError`` when zero or two are given);
2. dtypes: the widest floating input (weak Python scalars and integer data do not count),
   16-bit inputs computed in and returned as float32, integer parameters refused;
3. shapes: every parameter's batch shape must broadcast to the data's batch shape without
   enlarging it (``(n,)`` data against an ``(n, 1)`` prediction is a ``ValueError``
   naming both);
4. ``where`` (mask): masked data and per-observation parameters are replaced by safe
   values *before* anything is computed, so nothing in a masked slot (NaN, a padded label
   of -1, a NaN weight) reaches the value or the gradient;
5. validity: each constraint is a rule with a message; ``nllax.checked`` raises it, and
   otherwise an invalid value makes the result NaN, value *and* gradient;
6. the reduction: ``reduction="sum" | "mean" | "none"`` and ``weights``.

**How invalid values become NaN, and why this way.** Every rule is evaluated twice, at no
cost in the common case:

* per element (``log_prob``, ``reduction="none"``): the term is multiplied by
  ``1 + (0 where valid, NaN elsewhere)``, inside the elementwise loop;
* for a reduced NLL: each rule reduces to one scalar, computed by a reduction of plain
  arithmetic (``sum(|m| - m) == 0`` for a margin ``m`` that is ``>= 0`` exactly on the
  support, ``min``/``max`` for integers), and the *total* is multiplied by
  ``1 + (0 or NaN)``. The derivative of that factor is NaN too, so every entry of the
  gradient is NaN when any observation is invalid.

On XLA:CPU a reduction is a fused kernel that accepts arithmetic but not selects: a
per-element select in front of the sum forces an n-sized temporary buffer and an extra
pass, measured at 1.2-1.5x the time of the hand-written loss; the scalar form costs one
extra read of the checked input and no buffer. ``min``/``max`` reductions of floats do not
propagate NaN on XLA:CPU (measured), which is why float rules are sums. A rule on a
Python number or a 0-d array is a scalar from the start and costs nothing.

A parameter shared by all observations (a scalar) is checked whatever the mask: ``where``
exempts observations, not the model.

**Terms.** A log-density may return a plain array or ``Affine(mul, core, add)`` meaning
``mul * core + add``; when ``mul`` and ``add`` are scalars (a shared scale), a sum
reduction computes ``mul * sum(core) + count * add``: fewer operations per observation, and
the constant is added once instead of n times.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _checks
from nllax import _reduce as R

REQUIRED = inspect.Parameter.empty


# ----------------------------------------------------------------------------------------
# constraints


def _nan_or(ok: Any, dtype) -> jax.Array:
    """0 where ``ok``, NaN elsewhere, in ``dtype``."""
    return R.select(ok, jnp.zeros(jnp.shape(ok), dtype), np.nan)


def _sum_zero(m: jax.Array) -> jax.Array:
    """``all(m >= 0)`` and no NaN, as one reduction of plain arithmetic (fusable on
    XLA:CPU, NaN-propagating): ``sum(|m| - m) == 0``."""
    if m.ndim == 0:
        return m >= 0
    return jnp.sum(jnp.abs(m) - m) == 0


def _min(x):
    """``min(x)``, and +inf (the identity) for an empty ``x``."""
    hi = jnp.iinfo(x.dtype).max if jnp.issubdtype(x.dtype, jnp.integer) else jnp.inf
    return jnp.min(x, initial=hi)


def _max(x):
    lo = jnp.iinfo(x.dtype).min if jnp.issubdtype(x.dtype, jnp.integer) else -jnp.inf
    return jnp.max(x, initial=lo)


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A rule on an array: ``elem(x)`` per element, ``whole(x)`` one scalar for all.

    ``message`` completes "`name` ..." in `checked` errors. ``safe`` is a valid value put
    in masked slots (for an event rule, it may be a callable ``safe(event_shape) ->
    array``: a valid row, e.g. increasing cut-points, where no constant is valid).
    ``propagates=True`` marks a rule whose violation (NaN data) already
    gives NaN by plain arithmetic: it is checked in `checked` mode but not applied.
    ``event_ndim`` > 0: the rule is per row of that many trailing axes (a probability
    vector), ``elem`` returns the batch shape."""

    name: str
    message: str
    elem: Callable[[jax.Array], jax.Array] | None
    whole: Callable[[jax.Array], jax.Array] | None = None
    safe: Any = 0.0
    propagates: bool = False
    event_ndim: int = 0

    def all_ok(self, x: jax.Array) -> jax.Array:
        if x.ndim == 0 or self.whole is None:
            return jnp.all(self.elem(x))
        return self.whole(x)


def _real_elem(x):
    return ~jnp.isnan(x)


REAL = Constraint("real", "must not be NaN (NaN in the data)", _real_elem, propagates=True)
UNCONSTRAINED = Constraint("real", "", None)
POSITIVE = Constraint(
    "positive", "must be > 0 (got a value <= 0 or NaN)", lambda x: x > 0,
    # sum(|x| - x) == 0 rejects negatives and NaN, min > 0 rejects 0 (min is exact for
    # non-NaN floats even where it does not propagate NaN).
    whole=lambda x: _sum_zero(x) & (_min(x) > 0), safe=1.0)
NONNEGATIVE = Constraint(
    "nonnegative", "must be >= 0 (a negative or NaN value)", lambda x: x >= 0, whole=_sum_zero,
    safe=1.0)
UNIT = Constraint(
    "unit", "must lie in [0, 1] (a value outside [0, 1] or NaN)",
    lambda x: (x >= 0) & (x <= 1), whole=lambda x: _sum_zero(x - x * x), safe=0.5)
OPEN_UNIT = Constraint(
    "open_unit", "must lie in (0, 1) (a value outside (0, 1) or NaN)",
    lambda x: (x > 0) & (x < 1),
    whole=lambda x: _sum_zero(x - x * x) & (_min(x) > 0) & (_max(x) < 1), safe=0.5)


def _count_elem(k):
    return (k >= 0) & (k == jnp.floor(k)) & jnp.isfinite(k)


def _count_whole(k):
    # ceil(k) - k is 0 exactly for integers, > 0 otherwise, NaN for NaN/inf. ceil, not the
    # floor of the per-element rule: the gradient's pass evaluates that rule, and a floor
    # shared by both (XLA's CSE merges equal expressions) was written out as an n-sized
    # buffer (XLA:CPU's reduction fusion does not take a producer with another user)
    return jnp.sum((jnp.ceil(k) - k) + (jnp.abs(k) - k)) == 0


COUNTS = Constraint(
    "counts", "must be non-negative integers (a negative, non-integer or NaN count)",
    _count_elem, whole=_count_whole, safe=0.0)
COUNTS_INT = dataclasses.replace(COUNTS, whole=lambda k: _min(k) >= 0)


def interval(lo: float, hi: float, *, open_lo: bool = True, open_hi: bool = True,
             message: str | None = None) -> Constraint:
    """``lo < x < hi`` (or closed ends); NaN is outside."""
    def elem(x):
        a = x > lo if open_lo else x >= lo
        b = x < hi if open_hi else x <= hi
        return a & b

    def whole(x):
        return jnp.all(elem(x))

    lb = "(" if open_lo else "["
    rb = ")" if open_hi else "]"
    msg = message or f"must lie in {lb}{lo:g}, {hi:g}{rb} (a value outside or NaN)"
    mid = 0.5 * (lo + hi) if math.isfinite(hi) else (lo + 1.0)
    return Constraint(f"interval{lb}{lo:g},{hi:g}{rb}", msg, elem, whole, safe=mid)


def labels(k: int) -> Constraint:
    """Integer class labels in ``[0, k)``."""
    def elem(x):
        return (x >= 0) & (x < k)

    def whole(x):
        return (_min(x) >= 0) & (_max(x) < k)

    return Constraint("labels", f"must be integers in [0, {k}) (a label outside the classes)",
                      elem, whole, safe=0)


def relation(message: str, name: str = "relation") -> Constraint:
    """A rule between arguments, for :attr:`Family.relations`: its value is the boolean
    array ``ok`` itself (``successes <= trials``, ``lower <= y <= upper``). Create it once,
    at module level (the rule is part of a compiled function's cache key)."""
    return Constraint(name, message, _identity, whole=jnp.all, safe=True)


def _identity(ok):
    return ok


# ----------------------------------------------------------------------------------------
# declarations


@dataclasses.dataclass(frozen=True)
class Data:
    """The observations: ``kind`` is ``"float"`` (bool/int promoted) or ``"int"``
    (integer dtype required, e.g. class labels)."""

    name: str
    constraint: Constraint | None = REAL
    kind: str = "float"
    event_ndim: int = 0
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter. For a non-first member of a :class:`OneOf`, ``to_canonical`` maps its
    value to the group's first member and ``from_canonical`` back (NumPy or JAX arrays);
    the test harness uses them to check every parametrisation against one reference."""

    name: str
    constraint: Constraint | None = UNCONSTRAINED
    default: Any = REQUIRED
    keyword_only: bool = False
    event_ndim: int = 0
    to_canonical: Callable[[Any], Any] | None = None
    from_canonical: Callable[[Any], Any] | None = None
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class OneOf:
    """Exactly one of ``members`` (the first is canonical; only it may have a default and
    be positional). With ``positive=True`` the family receives a :class:`Positive` under
    ``name`` whichever member was given; each member's ``kind`` says how it encodes the
    positive quantity: ``"value"``, ``"log"``, ``"square"`` or ``"log_square"``."""

    name: str
    members: tuple[Param, ...]
    default: Any = REQUIRED
    positive: bool = False
    kinds: tuple[str, ...] = ()

    def __post_init__(self):
        if self.positive and len(self.kinds) != len(self.members):
            raise ValueError(f"OneOf {self.name}: one kind per member")


@dataclasses.dataclass(frozen=True)
class Option:
    """A static option (a Python value, never traced), validated against ``choices``."""

    name: str
    default: Any
    choices: tuple | None = None
    doc: str = ""


class Affine(NamedTuple):
    """``mul * core + add`` (see the module docstring)."""

    mul: Any
    core: jax.Array
    add: Any


class Positive:
    """A positive quantity ``x`` given as ``x``, ``log x``, ``x**2`` or ``log x**2``.

    The family asks for what it needs, and each form computes it without leaving the
    stable range: ``standardize(r)`` / ``divide(r)`` = ``r / x`` (finite and exact at
    ``r = 0`` for every ``log x`` down to ``-2 log(max float)``, where ``exp(log x)``
    itself underflows long before), ``log()`` = ``log x``, ``value()`` = ``x``.
    """

    __slots__ = ("kind", "v")

    def __init__(self, kind: str, v: jax.Array):
        self.kind = kind
        self.v = v

    @property
    def ndim(self) -> int:
        return self.v.ndim

    @property
    def dtype(self):
        return self.v.dtype

    def log(self) -> jax.Array:
        k, v = self.kind, self.v
        if k == "value":
            return jnp.log(v)
        if k == "log":
            return v
        if k == "square":
            return 0.5 * jnp.log(v)
        return 0.5 * v

    def value(self) -> jax.Array:
        k, v = self.kind, self.v
        if k == "value":
            return v
        if k == "log":
            return jnp.exp(v)
        if k == "square":
            return jnp.sqrt(v)
        return jnp.exp(0.5 * v)

    def square(self) -> jax.Array:
        k, v = self.kind, self.v
        if k == "value":
            return v * v
        if k == "log":
            return jnp.exp(2 * v)
        if k == "square":
            return v
        return jnp.exp(v)

    def standardize(self, r: jax.Array) -> tuple[jax.Array, Any]:
        """``r / x`` as ``(core, factor)`` with ``r / x = core * factor``, ``factor`` a
        Python 1 or a scalar.

        XLA:CPU fuses a division of every observation by a scalar into the reduction,
        but a multiplication by a computed scalar costs an n-sized buffer (measured
        1.4-1.6x the time), so the per-observation work is one division by a
        representable scalar, and a log-scale so small that ``exp`` of it underflows
        moves into ``factor``, applied once to the reduced sum."""
        k, v = self.kind, self.v
        if k == "value":
            return _divide(r, v), 1
        if k == "square":
            return _divide(r, jnp.sqrt(v)), 1
        log_x = v if k == "log" else 0.5 * v
        if log_x.ndim:
            e = jnp.exp(-0.5 * log_x)
            return (r * e) * e, 1
        floor = float(np.log(np.finfo(log_x.dtype).tiny)) + 1.0
        clipped = jnp.maximum(log_x, floor)
        return _divide_exp(r, clipped), jnp.exp(clipped - log_x)

    def divide(self, r: jax.Array) -> jax.Array:
        """``r / x`` elementwise (for per-observation code, not a fused sum)."""
        core, factor = self.standardize(r)
        return core if isinstance(factor, int) else core * factor

    def inverse(self) -> jax.Array:
        """``1 / x``."""
        k, v = self.kind, self.v
        if k == "value":
            return 1.0 / v
        if k == "log":
            return jnp.exp(-v)
        if k == "square":
            return jax.lax.rsqrt(v)
        return jnp.exp(-0.5 * v)

    def broadcast_to(self, shape) -> "Positive":
        return Positive(self.kind, jnp.broadcast_to(self.v, shape))


@jax.custom_jvp
def _divide(r, d):
    """``r / d`` whose derivative is ``(dr - (r / d) dd) / d``: the default rule,
    ``-r dd / d**2``, is 0 / 0 = NaN at ``r = 0`` once ``d**2`` underflows (a scale of 1e-20
    in float32)."""
    return r / d


@_divide.defjvp
def _divide_jvp(primals, tangents):
    r, d = primals
    dr, dd = tangents
    out = r / d
    return out, (dr - out * dd) / d


@jax.custom_jvp
def _divide_exp(r, log_d):
    """``r / exp(log_d)`` with the derivative ``dr / exp(log_d) - (r / exp(log_d)) dlog_d``
    (the default goes through ``exp(log_d)**2``, which underflows)."""
    return r / jnp.exp(log_d)


@_divide_exp.defjvp
def _divide_exp_jvp(primals, tangents):
    r, log_d = primals
    dr, dlog = tangents
    e = jnp.exp(log_d)
    out = r / e
    return out, dr / e - out * dlog


# ----------------------------------------------------------------------------------------
# the family


FAMILIES: dict[str, Any] = {}  # name -> family module, filled as family modules import
FAMILY_OBJECTS: dict[str, "Family"] = {}


@dataclasses.dataclass(frozen=True, eq=False)
class Family:
    """A declared family (or loss, with ``sign=+1``); see the module docstring.

    ``log_prob(data, **params, **options)`` receives checked arrays in the computation
    dtype: the data with the family's event axes last, each given parameter under its own
    name (a :class:`OneOf` with ``positive=True`` under the group's name, as a
    :class:`Positive`), the options as Python values. It returns the per-observation
    log-density (array or :class:`Affine`) with the data's batch shape.

    A :class:`Param` whose default is ``None`` is optional: when it is not given, the
    family's functions do not receive it (e.g. ``lower=`` / ``upper=`` of a censored
    family).
    """

    name: str
    data: Data
    params: tuple[Param | OneOf, ...]
    log_prob: Callable[..., Any]
    options: tuple[Option, ...] = ()
    log_cdf: Callable[..., Any] | None = None
    log_sf: Callable[..., Any] | None = None
    prepare: Callable[..., Any] | None = None
    fisher: Callable[..., Mapping[str, jax.Array]] | None = None
    # moments(**params) -> (mean, variance) of the data per observation (scalar data):
    # the Pearson residuals of nllax.summary(dispersion="pearson") need them.
    moments: Callable[..., tuple[jax.Array, jax.Array]] | None = None
    smooth: bool = True
    summary: str = ""
    qualname: str = ""  # name in messages, default "nllax.<name>"
    sign: int = -1  # -1: nll = -log_prob (a family); +1: a loss, reduced as it is
    register: bool = True
    default_reduction: str = "sum"
    # relations(data, params, options) -> [(argument, relation constraint, ok array)]:
    # rules between arguments, evaluated after masking (masked observations exempt); the
    # argument is the one named in the message. See :func:`relation`.
    relations: Callable[..., Sequence[tuple[str, Constraint, jax.Array]]] | None = None

    # -- introspection ------------------------------------------------------------------

    @property
    def fn_name(self) -> str:
        return self.qualname or f"nllax.{self.name}"

    @functools.cached_property
    def flat_params(self) -> tuple[Param, ...]:
        out = []
        for p in self.params:
            out.extend(p.members if isinstance(p, OneOf) else (p,))
        return tuple(out)

    @functools.cached_property
    def groups(self) -> tuple[OneOf, ...]:
        return tuple(p for p in self.params if isinstance(p, OneOf))

    @property
    def continuous(self) -> bool:
        return self.log_cdf is not None

    def parametrisations(self) -> list[dict[str, str]]:
        """Every combination of one member per group: ``[{group name: member name}]``."""
        combos: list[dict[str, str]] = [{}]
        for g in self.groups:
            combos = [dict(c, **{g.name: m.name}) for c in combos for m in g.members]
        return combos

    # -- signatures ---------------------------------------------------------------------

    def signature(self, kind: str) -> inspect.Signature:
        P = inspect.Parameter
        params = [P(self.data.name, P.POSITIONAL_OR_KEYWORD)]
        kw = []
        for p in self.params:
            members = p.members if isinstance(p, OneOf) else (p,)
            for i, m in enumerate(members):
                default = m.default
                if isinstance(p, OneOf):
                    default = p.default if i == 0 and p.default is not REQUIRED else None
                    if i == 0 and p.default is REQUIRED and not m.keyword_only:
                        default = REQUIRED
                if m.keyword_only or (isinstance(p, OneOf) and i > 0):
                    kw.append(P(m.name, P.KEYWORD_ONLY, default=default))
                else:
                    params.append(P(m.name, P.POSITIONAL_OR_KEYWORD, default=default))
        for o in self.options:
            kw.append(P(o.name, P.KEYWORD_ONLY, default=o.default))
        if kind == "nll":
            kw += [P("reduction", P.KEYWORD_ONLY, default=self.default_reduction),
                   P("weights", P.KEYWORD_ONLY, default=None),
                   P("where", P.KEYWORD_ONLY, default=None)]
        return inspect.Signature(params + kw)

    # -- the public functions -------------------------------------------------------------

    def functions(self, doc: Mapping[str, str] | None = None) -> dict[str, Callable]:
        """``{"log_prob": ..., "nll": ..., "log_cdf": ..., "log_sf": ...}`` (the last two
        for continuous families) with real signatures."""
        doc = dict(doc or {})
        out = {}
        kinds = ["log_prob", "nll"] + (["log_cdf", "log_sf"] if self.continuous else [])
        for kind in kinds:
            sig = self.signature(kind)
            fn = _make_public(self, kind, sig)
            fn.__doc__ = doc.get(kind) or _default_doc(self, kind)
            # the family's module, so that doctest (which skips functions defined in
            # another module) runs the examples and help() names the right place
            fn.__module__ = self.fn_name
            out[kind] = fn
        return out

    def fisher_information(self, **kwargs) -> dict[str, jax.Array]:
        """Expected (Fisher) information per observation for each parameter given, on the
        scale it was given (``log_rate=``: ``exp(log_rate)``), when the family declares it:
        ``{name: array}``; ``{}`` otherwise. ``kwargs`` are the public keyword arguments
        (``loc=``, ``log_scale=``...), arrays or numbers, already in the fit's dtype."""
        if self.fisher is None:
            return {}
        given = {k: v for k, v in kwargs.items() if any(p.name == k for p in self.flat_params)}
        # defaults for what is not given (scale = 1); a missing required one raises
        values = _resolve_groups(self, given, f"{self.fn_name}.fisher_information")
        params = {k: jnp.asarray(v) for k, v in values.items()}
        # the static options too (defaults filled): the information may depend on them
        # (the negative binomial's variance="nb1" has none in closed form)
        options = _options(self, kwargs, f"{self.fn_name}.fisher_information")
        return dict(self.fisher(**_family_kwargs(self, params), **options))

    def mean_variance(self, **kwargs) -> tuple[jax.Array, jax.Array] | None:
        """``(mean, variance)`` of the data per observation under the parameters given
        (public keyword arguments, defaults filled), when the family declares its
        ``moments``; None otherwise."""
        if self.moments is None:
            return None
        given = {k: v for k, v in kwargs.items() if any(p.name == k for p in self.flat_params)}
        values = _resolve_groups(self, given, f"{self.fn_name}.mean_variance")
        params = {k: jnp.asarray(v) for k, v in values.items() if v is not None}
        return self.moments(**_family_kwargs(self, params))


LOSSES: dict[str, Family] = {}  # qualname -> loss declaration, for the docs' rule table


def loss(family: Family, doc: str) -> Callable:
    """The public function of a loss declared as a :class:`Family` with ``sign=+1``: its
    per-observation ``log_prob`` is the loss itself, reduced as the family NLL is."""
    LOSSES[family.fn_name] = family
    sig = family.signature("nll")
    fn = _make_public(family, "nll", sig)
    fn.__doc__ = doc
    fn.__name__ = fn.__qualname__ = family.name
    fn.__module__ = family.fn_name.rpartition(".")[0]  # nllax.losses: doctests run
    return fn


def register(module_name: str, family: Family) -> None:
    """Adds a family module to :data:`nllax.families` (called at the end of its file)."""
    import sys

    if family.register:
        FAMILIES[family.name] = sys.modules[module_name]
        FAMILY_OBJECTS[family.name] = family


def families_view() -> Mapping[str, Any]:
    return MappingProxyType(FAMILIES)


def _make_public(fam: Family, kind: str, sig: inspect.Signature) -> Callable:
    sign = -1 if (kind == "nll" and fam.sign == -1) else 1

    def fn(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)  # TypeError for a wrong call, as a def would
        given = dict(bound.arguments)
        if _top_level():
            return _eager(fam, kind, sign, given)
        return _call(fam, kind, sign, given)

    fn.__signature__ = sig
    fn.__name__ = kind
    fn.__qualname__ = kind
    return fn


def _default_doc(fam: Family, kind: str) -> str:
    names = ", ".join(p.name for p in fam.flat_params)
    what = {
        "log_prob": "Per-observation log-density (log-probability)",
        "nll": "Negative log-likelihood, reduced",
        "log_cdf": "Per-observation log of the CDF, log P(Y <= y)",
        "log_sf": "Per-observation log of the survival function, log P(Y > y)",
    }[kind]
    text = f"{what} of the {fam.name} family ({names}); see the module docstring."
    if kind == "nll":
        text += ("\n\n``reduction`` in {\"sum\", \"mean\", \"none\"}, ``weights`` and ``where`` "
                 "as in :func:`nllax.gaussian.nll`.")
    return text


# ----------------------------------------------------------------------------------------
# the pipeline


class _Rule(NamedTuple):
    arg: str
    constraint: Constraint
    value: jax.Array


def _resolve_groups(fam: Family, given: dict[str, Any], fn: str) -> dict[str, Any]:
    """Applies defaults and the exactly-one rule; returns ``{member name: value}``."""
    out = {}
    for p in fam.params:
        if isinstance(p, Param):
            if p.name in given:
                out[p.name] = given[p.name]
            elif p.default is not REQUIRED:
                out[p.name] = p.default
            else:
                raise TypeError(f"{fn}: `{p.name}` is required.")
            continue
        names = [m.name for m in p.members]
        chosen = [n for n in names if given.get(n) is not None]
        if len(chosen) > 1:
            listed = ", ".join(f"`{n}=`" for n in chosen)
            raise ValueError(
                f"{fn}: pass exactly one of {_or_list(names)} ({listed} given: one, not both).")
        if not chosen:
            if p.default is REQUIRED:
                raise ValueError(f"{fn}: pass exactly one of {_or_list(names)}.")
            out[names[0]] = p.default
        else:
            out[chosen[0]] = given[chosen[0]]
    return out


def _or_list(names: Sequence[str]) -> str:
    q = [f"`{n}=`" for n in names]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " or " + q[-1]


def _options(fam: Family, given: dict[str, Any], fn: str) -> dict[str, Any]:
    out = {}
    for o in fam.options:
        v = given.get(o.name, o.default)
        if o.choices is not None and v not in o.choices:
            raise ValueError(f"{fn}: `{o.name}` must be one of {o.choices}, got {v!r}.")
        out[o.name] = v
    return out


def _prepare(fam: Family, kind: str, given: dict[str, Any]):
    """Steps 1-3: binding, dtypes, shapes. Returns the data, the parameter values by member
    name, the options, the weights argument and the dtype."""
    fn = f"{fam.fn_name}.{kind}"
    values = _resolve_groups(fam, given, fn)
    options = _options(fam, given, fn)
    weights = given.get("weights")
    data = given.get(fam.data.name)
    if data is None:
        raise TypeError(f"{fn}: `{fam.data.name}` is required.")
    R.check_not_complex(data, fam.data.name, fn)
    floats = [v for v in values.values()] + [weights]
    if fam.data.kind == "float":
        floats.insert(0, data)
    dtype = R.float_dtype(*floats)
    if fam.data.kind == "int":
        data = jnp.asarray(data)
        if not jnp.issubdtype(data.dtype, jnp.integer):
            raise TypeError(
                f"{fn}: `{fam.data.name}` must be integer class indices, got dtype "
                f"{data.dtype}; pass `{fam.data.name}.astype(jnp.int32)`.")
        data_dtype = data.dtype
    else:
        raw = jnp.asarray(data)
        data_dtype = raw.dtype
        data = R.as_data(data, fam.data.name, fn, dtype)
    params = {}
    concrete = {}
    for p in fam.flat_params:
        if p.name in values and not (values[p.name] is None and p.default is None):
            raw = values[p.name]
            params[p.name] = R.as_param(raw, p.name, fn, dtype)
            if _is_constant(raw):
                concrete[p.name] = np.asarray(raw, dtype)
    overrides = {}
    if fam.prepare is not None:
        data, params, overrides = fam.prepare(data, params, options, fn, values)
    dev = fam.data.event_ndim
    batch = tuple(data.shape[: data.ndim - dev]) if dev else tuple(data.shape)
    for p in fam.flat_params:
        if p.name not in params:
            continue
        v = params[p.name]
        if v.ndim < p.event_ndim:
            raise ValueError(
                f"{fn}: `{p.name}` must have {p.event_ndim} event axis(es), got shape {v.shape}.")
        pb = v.shape[: v.ndim - p.event_ndim]
        R.check_fits(jnp.zeros(pb, jnp.bool_) if p.event_ndim else v,
                     p.name if not p.event_ndim else f"{p.name} (without its event axes)",
                     batch, fam.data.name, fn)
    return data, data_dtype, params, concrete, options, weights, batch, dtype, overrides


def check_batch(shape, name, batch, dname, fn) -> None:
    """``shape`` must broadcast to ``batch`` without enlarging it (a parameter's batch
    shape against the data's), naming both in the error."""
    R.check_fits(jnp.zeros(shape, jnp.bool_), name, tuple(batch), dname, fn)


def _is_constant(x) -> bool:
    """Known at trace time: a Python number or a NumPy value (not a traced array)."""
    return isinstance(x, (int, float, np.ndarray, np.generic)) and not isinstance(x, bool)


def _mask_params(fam: Family, params: dict, mask, batch, overrides):
    """Masked slots of per-observation parameters get a safe value (step 4)."""
    out = {}
    for p in fam.flat_params:
        if p.name not in params:
            continue
        v = params[p.name]
        if v.ndim == 0:
            out[p.name] = v
            continue
        shape = batch + v.shape[v.ndim - p.event_ndim:] if p.event_ndim else batch
        v = jnp.broadcast_to(v, shape)
        m = mask.reshape(mask.shape + (1,) * p.event_ndim) if p.event_ndim else mask
        c = overrides.get(p.name, p.constraint)
        safe = c.safe if c is not None else 0.0
        if callable(safe):
            safe = safe(shape[len(batch):])
        out[p.name] = R.select(m, v, safe)
    return out


def _rules(fam: Family, data, data_dtype, params, concrete, overrides) -> list[_Rule]:
    rules = []
    c = overrides.get(fam.data.name, fam.data.constraint)
    if c is not None and c.elem is not None:
        c = _for_dtype(c, data_dtype)
        if c is not None:
            rules.append(_Rule(fam.data.name, c, data))
    for p in fam.flat_params:
        pc = overrides.get(p.name, p.constraint)
        if p.name in params and pc is not None and pc.elem is not None:
            if p.name in concrete and _holds(pc, concrete[p.name]):
                continue
            rules.append(_Rule(p.name, pc, params[p.name]))
    return rules


def _holds(c: Constraint, value) -> bool:
    """A rule on a value known at trace time (a Python number, a NumPy array) is decided
    in Python: a valid constant then adds nothing to the compiled program (XLA folding a
    constant validity factor into the gradient costs an n-sized buffer on XLA:CPU)."""
    with jax.ensure_compile_time_eval():
        return bool(jnp.all(c.elem(jnp.asarray(value))))


def _for_dtype(c: Constraint, dtype) -> Constraint | None:
    """The data rule given the dtype the data came in: bool data are in [0, 1] and are
    counts; integer counts only need a sign check (``min`` is exact for integers)."""
    if dtype == jnp.bool_ and c.name in ("unit", "counts", "real", "nonnegative"):
        return None
    if jnp.issubdtype(dtype, jnp.integer):
        if c.name == "real":
            return None
        if c.name == "counts":
            return COUNTS_INT
    return c


def _family_kwargs(fam: Family, params: dict) -> dict:
    kw = dict(params)
    for g in fam.groups:
        if not g.positive:
            continue
        for m, k in zip(g.members, g.kinds):
            if m.name in kw:
                kw[g.name] = Positive(k, kw.pop(m.name))
                break
    return kw


def _materialise(out, batch, dtype) -> jax.Array:
    if isinstance(out, Affine):
        out = out.mul * out.core + out.add
    return jnp.broadcast_to(jnp.asarray(out, dtype), batch)


def _elem_ok(rules: list[_Rule], batch):
    ok = True
    for r in rules:
        if r.constraint.propagates:
            continue
        e = r.constraint.elem(r.value)
        if e.ndim and e.shape != batch:
            e = jnp.broadcast_to(e, batch)  # a per-column parameter, say
        ok = e if ok is True else ok & e
    return ok


def _emit_checks(fn: str, rules: list[_Rule]) -> None:
    # Only under `checked`: otherwise ``elem`` would still be traced, for every rule of
    # every call, into equations nothing uses.
    if not _checks._enabled():
        return
    for r in rules:
        _checks.check(r.constraint.elem(r.value), fn, f"`{r.arg}` {r.constraint.message}")


def _poison_elem(values: jax.Array, ok) -> jax.Array:
    if ok is True:
        return values
    return values * (1 + _nan_or(ok, values.dtype))


def _top_level() -> bool:
    """Whether no transformation is tracing (an eager call from user code); False where
    this JAX does not say."""
    try:
        from jax._src import core as _core

        return bool(_core.trace_state_clean())
    except Exception:  # noqa: BLE001  (a JAX without it: the call as under a trace)
        return False


def _is_array_value(v) -> bool:
    """A value a jitted call takes as an argument: an array or a number (not a bool, a
    string, a list or None, which stay part of the program's key)."""
    return (isinstance(v, (jax.Array, np.ndarray, np.generic, int, float, complex))
            and not isinstance(v, (bool, np.bool_)))


@functools.lru_cache(maxsize=512)
def _eager_program(fam: Family, kind: str, sign: int, static: tuple, names: tuple):
    fixed = dict(static)

    def run(*values):
        return _call(fam, kind, sign, {**fixed, **dict(zip(names, values))})

    run.__name__ = f"{fam.name}_{kind}"
    return jax.jit(run)


def _eager(fam: Family, kind: str, sign: int, given: dict[str, Any]):
    """An eager call (outside any transformation) runs as one compiled program, cached per
    family, function and static arguments, as `jax.numpy`'s functions do: op by op, each
    primitive of the density would be dispatched (and compiled on first use) on its own.
    The option and reduction arguments are part of the program's key; arrays and numbers
    are its arguments (a Python-number parameter is then a traced scalar: the same
    values; its rule is checked in the program instead of in Python)."""
    option_names = {o.name for o in fam.options} | {"reduction"}
    static, names, values = [], [], []
    for k, v in given.items():
        if k not in option_names and _is_array_value(v):
            names.append(k)
            values.append(v)
        else:
            static.append((k, v))
    try:
        program = _eager_program(fam, kind, sign, tuple(static), tuple(names))
    except TypeError:  # an unhashable static argument (a list): the call as it is
        return _call(fam, kind, sign, given)
    return program(*values)


def _call(fam: Family, kind: str, sign: int, given: dict[str, Any]):
    (data, data_dtype, params, concrete, options, weights, batch, dtype,
     overrides) = _prepare(fam, kind, given)
    fn = fam.fn_name
    reduction = given.get("reduction", "none" if kind != "nll" else fam.default_reduction)
    if reduction not in R.REDUCTIONS:
        raise ValueError(f"{fn}.{kind}: `reduction` must be one of {R.REDUCTIONS}, got "
                         f"{reduction!r}.")
    mask = R.as_mask(given.get("where"), batch, f"{fn}.{kind}")
    w = None
    if weights is not None:
        w = R.as_param(weights, "weights", f"{fn}.{kind}", dtype)
        R.check_fits(w, "weights", batch, fam.data.name, f"{fn}.{kind}")
    if mask is not None:
        dmask = mask.reshape(mask.shape + (1,) * fam.data.event_ndim)
        dc = overrides.get(fam.data.name, fam.data.constraint)
        safe = dc.safe if dc is not None else 0
        data = R.select(dmask, data, safe)
        params = _mask_params(fam, params, mask, batch, overrides)
        if w is not None:
            w = R.select(mask, w, 0)
    rules = _rules(fam, data, data_dtype, params, concrete, overrides)
    if fam.relations is not None:
        for arg, c, ok in fam.relations(data, params, options):
            rules.append(_Rule(arg, c, ok if mask is None else ok | ~mask))
    if w is not None:
        rules.append(_Rule("weights", WEIGHTS, w))
    _emit_checks(fn, rules)
    kw = _family_kwargs(fam, params)
    body = {"log_prob": fam.log_prob, "nll": fam.log_prob, "log_cdf": fam.log_cdf,
            "log_sf": fam.log_sf}[kind]
    out = body(data, **kw, **options)

    if kind != "nll" or reduction == "none":
        values = _materialise(out, batch, dtype)
        if sign == -1:
            values = -values
        values = _poison_elem(values, _elem_ok(rules, batch))
        if kind != "nll":
            return values
        if w is not None:
            values = values * w
        if mask is not None:
            values = R.select(mask, values, 0)
        return values

    poisoning = tuple(r for r in rules if not r.constraint.propagates)
    total, n = _sum(out, batch, dtype, w, mask, poisoning)
    if sign == -1:
        total = -total
    if reduction == "mean":
        total = total / n
    return total


class _Checker(NamedTuple):
    """The poisoning rules of one call (hashable: constraints and names only)."""

    constraints: tuple[Constraint, ...]
    shape: tuple[int, ...]

    def whole(self, values):
        ok = True
        for c, v in zip(self.constraints, values):
            a = c.all_ok(v)
            ok = a if ok is True else ok & a
        return ok

    def elem(self, values):
        ok = True
        for c, v in zip(self.constraints, values):
            e = c.elem(v)
            ok = e if ok is True else ok & e
        return jnp.broadcast_to(ok, self.shape)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _guarded_sum(checker: _Checker, vec, *values):
    """``sum(vec)``, NaN when any rule fails; in the derivative, NaN exactly at the
    invalid observations (the other observations keep their finite gradient).

    The value's validity is one scalar reduction of plain arithmetic (fusable into the
    sum's pass on XLA:CPU); the derivative's is per element, computed inline in the
    gradient's elementwise pass, where a select costs nothing."""
    ok = _concrete(checker.whole(values))
    total = jnp.sum(vec)
    return total if ok is True else total * (1 + _nan_or(ok, vec.dtype))


@_guarded_sum.defjvp
def _guarded_sum_jvp(checker, primals, tangents):
    vec, *values = primals
    dvec = tangents[0]
    out = _guarded_sum(checker, vec, *values)
    return out, jnp.sum(dvec * (1 + _nan_or(checker.elem(values), vec.dtype)))


def _concrete(valid):
    """A validity known before run time (a Python-number or eager parameter) is decided
    here, so that a valid constant adds no operation XLA must fold (a folded constant
    factor in the gradient costs an n-sized buffer on XLA:CPU)."""
    if valid is True:
        return True
    try:
        return True if bool(valid) else valid
    except jax.errors.ConcretizationTypeError:
        return valid


WEIGHTS = Constraint(
    "weights", "must be finite and >= 0 (a negative, infinite or NaN weight)",
    lambda w: (w >= 0) & jnp.isfinite(w),
    # |w| - w > 0 for negative w; w - w is 0 for finite w, NaN for inf/NaN: one sum.
    whole=lambda w: jnp.sum((jnp.abs(w) - w) + (w - w)) == 0 if w.ndim else (w >= 0) & jnp.isfinite(w),
    safe=0.0)


def _count(batch, dtype, w, mask):
    if w is None and mask is None:
        return jnp.asarray(float(np.prod(batch, dtype=np.int64)), dtype)
    if w is not None:
        return jnp.sum(jnp.broadcast_to(w, batch))
    return jnp.sum(mask, dtype=dtype)


def _sum(out, batch, dtype, w, mask, rules=()):
    """``(sum of the terms, count)`` with weights, mask and the poisoning rules; see
    :class:`Affine` and :func:`_guarded_sum`."""
    n = _count(batch, dtype, w, mask)
    if isinstance(out, Affine) and jnp.ndim(out.mul) == 0 and jnp.ndim(out.add) == 0:
        core = jnp.broadcast_to(out.core, batch) if out.core.shape != batch else out.core
        s = _reduce_sum(_weighted(core, w, mask, dtype), rules, batch)
        return jnp.asarray(out.mul * s + out.add * n, dtype), n
    terms = _materialise(out, batch, dtype)
    return _reduce_sum(_weighted(terms, w, mask, dtype), rules, batch), n


def _reduce_sum(vec, rules, batch):
    if not rules:
        return jnp.sum(vec)
    checker = _Checker(tuple(r.constraint for r in rules), tuple(batch))
    return _guarded_sum(checker, vec, *(r.value for r in rules))


def _weighted(terms, w, mask, dtype):
    if w is not None:
        return terms * w  # masked weights are 0 and masked terms finite
    if mask is not None:
        return R.select(mask, terms, 0)
    return terms


def rules_markdown() -> str:
    """The table of validity rules of every registered family and declared loss, one row
    per (argument, rule) with the functions that have it (for docs/checked.md; a test keeps
    the committed table equal to this)."""
    rows: dict[tuple[str, str], list[str]] = {}
    decls = [(f"`{f.name}`", f) for f in FAMILY_OBJECTS.values()]
    decls += [(f"`losses.{f.name}`", f) for f in LOSSES.values()]
    for label, fam in decls:
        c = fam.data.constraint
        entries = []
        if c is not None and c.elem is not None and c.message:
            entries.append((fam.data.name, c.message))
        for p in fam.flat_params:
            if p.constraint is not None and p.constraint.elem is not None and p.constraint.message:
                entries.append((p.name, p.constraint.message))
        for key in entries:
            rows.setdefault(key, []).append(label)
    out = ["| function (name in the message) | argument | rule, as the message says it |",
           "|---|---|---|"]
    for (arg, msg), fns in rows.items():
        out.append(f"| {', '.join(fns)} | `{arg}` | `` `{arg}` {msg} `` |")
    out.append(f"| every `nll` and loss | `weights` | `` `weights` {WEIGHTS.message} `` |")
    return "\n".join(out)


#: The mean of a log-link GLM family, as ``log_mean=`` (canonical) or ``mean=``, exactly
#: one (negative binomial, gamma, inverse Gaussian, Tweedie): the family receives one
#: :class:`Positive` under ``mean``.
MEAN = OneOf("mean", (
    Param("log_mean", keyword_only=True, doc="eta = log(mu), the log link"),
    Param("mean", POSITIVE, keyword_only=True, to_canonical=jnp.log, from_canonical=jnp.exp,
          doc="mu > 0"),
), positive=True, kinds=("log", "value"))
