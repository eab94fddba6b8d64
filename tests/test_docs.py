"""The docs' lists come from the registry and cannot drift from it."""

from __future__ import annotations

import pathlib

import nllax
from nllax import _family

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_checked_md_rules_table_is_the_registry():
    text = (ROOT / "docs" / "checked.md").read_text()
    start = text.index("<!-- rules:")
    table = text[text.index("\n", start) + 1:text.index("<!-- /rules -->")].strip()
    assert table == _family.rules_markdown(), (
        "docs/checked.md's rule table is out of date: paste nllax._family.rules_markdown()")


def test_readme_and_adding_a_family_name_every_family_and_row():
    readme = (ROOT / "README.md").read_text()
    for name in nllax.families:
        assert f"nllax.{name}" in readme, f"README.md does not mention nllax.{name}"
    for name in nllax.equivalences:
        assert f"`{name}`" in readme, f"README.md's table lacks the row {name}"
