"""The registry's test cases: one module per family (``tests/cases/<family>.py``), each
defining ``CASE = FamilyCase(...)`` and, for each equivalence row built on the family,
``EQUIVALENCES = {loss name: EquivalenceCase(...)}``.

A case is data: a sampler of valid inputs, an independent float64 reference, the invalid
values, the support for the normalisation test, the float32 accuracy bound and its reason.
Every concern test (``tests/test_harness_*.py``) enumerates ``CASES``; a completeness test
fails when a registered family or equivalence row has none. Adding a family is its source
file, one line in ``nllax/__init__.py``, and one module here (see docs/adding-a-family.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

NAN = float("nan")
INF = float("inf")


@dataclasses.dataclass(frozen=True)
class FamilyCase:
    """How to test one family.

    Attributes:
      module: the family module (``nllax.gaussian``).
      sample: ``sample(rng, n) -> (data, params)``: valid float64 inputs for ``n``
        observations; ``params`` maps each group's *first* member (and every plain
        parameter) to a NumPy array of the batch shape (plus event axes) or a scalar.
      reference: ``reference(data, **params) -> log-density``, float64, independent of
        nllax (scipy.stats, a closed form, high-precision decimal).
      invalid: ``{argument: [bad values]}``; each bad value replaces observation 1 of that
        argument (a row for an event argument). The argument may be any member of a group.
      ref_log_cdf, ref_log_sf: references for the continuous families.
      support: for the normalisation test: ``"real"``, ``"positive"``, ``"unit"``,
        ``"binary"`` (y in {0, 1}), ``("counts", k_max)``, ``"labels"``, or a callable
        ``integrate(log_density_fn, params) -> (total, error bound)``.
      normalisation: scalar parameter points (canonical) at which the density must
        integrate (or sum) to 1.
      rtol64: relative tolerance against the reference in float64, with ``rtol64_why``.
      f32_ulps: float32 error bound in units of eps32 times ``magnitude`` (the size of the
        largest term that is added, i.e. the conditioning of the sum), with ``f32_why``.
      magnitude: ``magnitude(data, **params)`` (default ``|reference|`` + 1).
      options: keyword options passed to every call (e.g. ``{"axis": -1}``).
      tails: extra ``(data, params)`` points for log_cdf / log_sf deep in both tails.
      grad_exclude: parameters not to differentiate (e.g. a discrete one).
      choices: the parametrisations to test (``[{group: member}]``; default every one of
        the family's). A wrapped family's case tests the wrapper's own members with the
        base's canonical ones: the base's case covers the base's members, through the same
        code.
      grad_order: the order of the finite-difference check (default 2 for a smooth
        family, 1 otherwise), with ``grad_order_why`` when lowered.
    """

    module: Any
    sample: Callable[[np.random.Generator, int], tuple[Any, dict[str, Any]]]
    reference: Callable[..., np.ndarray]
    invalid: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    ref_log_cdf: Callable[..., np.ndarray] | None = None
    ref_log_sf: Callable[..., np.ndarray] | None = None
    support: Any = "real"
    normalisation: Sequence[Mapping[str, float]] = ()
    rtol64: float = 1e-12
    rtol64_why: str = "agreement to rounding of both float64 formulas"
    f32_ulps: float = 16.0
    f32_why: str = "a handful of roundings, each at most eps relative to the largest term"
    magnitude: Callable[..., np.ndarray] | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tails: Sequence[tuple[Any, Mapping[str, Any]]] = ()
    grad_exclude: tuple[str, ...] = ()
    choices: Sequence[Mapping[str, str]] | None = None
    grad_order: int | None = None
    grad_order_why: str = ""
    # How many pieces of the harness's modelled size (|term| + 1, see
    # test_harness_gradients) a per-observation derivative adds or cancels: 1 for a closed
    # form; a series summed over K nodes whose second derivatives are differences of its
    # moments (E[x^2] - E[x]^2) carries K such pieces' rounding.
    derivative_pieces: float = 1.0
    derivative_pieces_why: str = "closed-form derivatives"

    @property
    def family(self):
        return self.module.family

    @property
    def name(self) -> str:
        return self.family.name

    def parametrisations(self) -> list[dict[str, str]]:
        if self.choices is not None:
            return [dict(c) for c in self.choices]
        return self.family.parametrisations()

    def convert(self, params: Mapping[str, Any], choice: Mapping[str, str]) -> dict[str, Any]:
        """Canonical ``params`` -> the keyword arguments of parametrisation ``choice``."""
        out = dict(params)
        for g in self.family.groups:
            canon = g.members[0]
            member = next(m for m in g.members if m.name == choice[g.name])
            if member is canon or canon.name not in out:
                continue
            v = out.pop(canon.name)
            out[member.name] = np.asarray(member.from_canonical(np.asarray(v)), np.float64)
        return out

    def float_params(self, kwargs: Mapping[str, Any]) -> list[str]:
        """The arguments a gradient test differentiates."""
        return [k for k, v in kwargs.items()
                if k not in self.grad_exclude and np.issubdtype(np.asarray(v).dtype, np.floating)]


@dataclasses.dataclass(frozen=True)
class EquivalenceCase:
    """Inputs for one row of ``nllax.equivalences``: ``sample(rng, n) -> (y, pred,
    noise)`` with ``noise`` the row's noise keyword arguments (scalars)."""

    sample: Callable[[np.random.Generator, int], tuple[Any, Any, dict[str, float]]]
    smooth: bool = True


def _load() -> tuple[dict[str, FamilyCase], dict[str, EquivalenceCase]]:
    cases, eqs = {}, {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        case = getattr(mod, "CASE", None)
        if case is not None:
            cases[case.name] = case
        eqs.update(getattr(mod, "EQUIVALENCES", {}))
    return cases, eqs


CASES, EQUIVALENCE_CASES = _load()


def all_parametrisations() -> list[tuple[FamilyCase, dict[str, str]]]:
    """Every (case, parametrisation) pair, for parametrised tests."""
    return [(c, p) for c in CASES.values() for p in c.parametrisations()]


def pid(case_and_choice) -> str:
    """``gaussian[log_scale]``: the family and the members given."""
    case, choice = case_and_choice
    suffix = "-".join(choice[g.name] for g in case.family.groups)
    return f"{case.name}[{suffix}]" if suffix else case.name


def invalid_items() -> list[tuple[FamilyCase, str, Any]]:
    out = []
    for c in CASES.values():
        for arg, values in c.invalid.items():
            out.extend((c, arg, v) for v in values)
    return out


def choice_for(case: FamilyCase, arg: str) -> dict[str, str]:
    """A parametrisation in which ``arg`` is given (the first one otherwise)."""
    for choice in case.parametrisations():
        given = {m.name for g in case.family.groups for m in g.members if m.name == choice[g.name]}
        plain = {p.name for p in case.family.params if not hasattr(p, "members")}
        if arg in given | plain | {case.family.data.name}:
            return choice
    raise KeyError(f"{case.name}: no parametrisation gives `{arg}`")

