"""Docstring examples are run, so docs and code stay in step."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import nllax

MODULES = sorted(
    m.name for m in pkgutil.iter_modules(nllax.__path__, "nllax.")
    if m.name not in ("nllax._cli", "nllax.__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} doctest failure(s) in {name}"
