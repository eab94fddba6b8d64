"""The registry is complete and every entry is tested: each registered family has a test
case (tests/cases/) and is exported, each equivalence row has a test case and is keyed
by its loss's name, and the family modules have the contract's functions and docs.

Wrapped families (``nllax.zero_inflated(nllax.poisson)``...) are built on demand and not
registered; their cases are the other cases here, each wrapping a registered family, and
every wrapper has at least one."""

from __future__ import annotations

import inspect

import nllax
from cases import CASES, EQUIVALENCE_CASES
from nllax._wrappers import Wrapped

WRAPPERS = ("zero_inflated", "hurdle", "zero_truncated", "censored")


def _is_wrapped(case) -> bool:
    return isinstance(case.module, Wrapped)


def test_every_registered_family_has_a_test_case():
    missing = sorted(set(nllax.families) - set(CASES))
    assert not missing, f"families without a test case in tests/cases/: {missing}"
    unregistered = sorted(n for n, c in CASES.items()
                          if n not in nllax.families and not _is_wrapped(c))
    assert not unregistered, f"cases for unregistered families: {unregistered}"


def test_every_wrapper_has_a_case_over_a_registered_family():
    wrapped = [c for c in CASES.values() if _is_wrapped(c)]
    assert {c.module.wrapper for c in wrapped} >= set(WRAPPERS)
    for c in wrapped:
        mod = c.module
        assert mod.base in nllax.families.values(), c.name
        assert c.name not in nllax.families and not mod.family.register, c.name
        assert getattr(nllax, mod.wrapper)(mod.base) is mod  # cached: one object per base
        for kind in ("log_prob", "nll"):
            f = getattr(mod, kind)
            assert f.__doc__ and list(inspect.signature(f).parameters)[0] == (
                mod.family.data.name)
        assert "math::" in mod.__doc__ and set(mod.__all__) >= {"log_prob", "nll"}


def test_every_family_is_exported_and_has_the_contract():
    for name, mod in nllax.families.items():
        assert getattr(nllax, name) is mod and name in nllax.__all__, name
        assert mod.family.name == name
        kinds = ["log_prob", "nll"] + (["log_cdf", "log_sf"] if mod.family.continuous else [])
        for kind in kinds:
            f = getattr(mod, kind)
            assert callable(f) and f.__doc__, (name, kind)
            params = list(inspect.signature(f).parameters)
            assert params[0] == mod.family.data.name  # data first
        sig = inspect.signature(mod.nll).parameters
        for kw in ("reduction", "weights", "where"):
            assert sig[kw].kind is inspect.Parameter.KEYWORD_ONLY, (name, kw)
        assert "math::" in mod.__doc__, name
        assert set(mod.__all__) >= set(kinds), name


def test_every_equivalence_row_has_a_test_case_and_a_loss_name():
    missing = sorted(set(nllax.equivalences) - set(EQUIVALENCE_CASES))
    assert not missing, f"equivalence rows without a test case: {missing}"
    for name, eq in nllax.equivalences.items():
        assert eq.name == name
        assert getattr(nllax.losses, name) is eq.loss, name  # the key is the loss's name
        assert name in nllax.losses.__all__, name
