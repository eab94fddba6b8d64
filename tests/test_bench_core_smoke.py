"""Smoke run of the family-core speed table (`bench/core.py --quick`) on three rows, so that
the registry-driven rows, the HLO evidence and the --update merge never rot. No timing is
asserted; competitors that are not installed (distrax, numpyro) are skipped by the bench."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROWS = "categorical.nll,cauchy.nll,losses.poisson"


def _run(out, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"),
               XLA_FLAGS="--xla_backend_optimization_level=0")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "core.py"), "--quick", "--sizes", "200",
         "--only", ROWS, "--out", str(out), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_core_table_rows_and_update(tmp_path):
    out = tmp_path / "CORE.md"
    _run(out)
    text = out.read_text()
    for name in ROWS.split(","):
        assert f"| {name} | 2e+02 |" in text, name
    assert "## HLO evidence" in text
    _run(out, "--update")
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    assert sorted(r["row"] for r in results) == sorted(ROWS.split(","))
    # every competitor computes the same quantity: gradients in the same direction
    for r in results:
        assert all(c > 0.999 for c in r["cosines"].values()), r["row"]
