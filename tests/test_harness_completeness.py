"""The registry is complete and every entry is tested: each registered family has a test
case (tests/cases/) and is exported, each equivalence row has a test case and is keyed
by its loss's name, and the family modules have the contract's functions and docs."""

from __future__ import annotations

import inspect

import nllax
from cases import CASES, EQUIVALENCE_CASES


def test_every_registered_family_has_a_test_case():
    missing = sorted(set(nllax.families) - set(CASES))
    assert not missing, f"families without a test case in tests/cases/: {missing}"
    assert not sorted(set(CASES) - set(nllax.families)), "a case for an unregistered family"


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
