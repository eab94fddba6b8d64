"""Smoke run of the benchmark (`bench/run.py --quick`) so that it never rots.

Tiny sizes, a few repeats; no timing is asserted anywhere. Competitor libraries that are
not installed (torch, distrax, numpyro, scikit-learn are only in the `bench` extra) are
skipped by the benchmark itself, and their rows are only required when importable.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN = ROOT / "bench" / "run.py"


def _has(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    env = dict(os.environ)
    # The real devices, not 4 simulated ones; and no LLVM optimisation: the smoke run
    # checks that everything runs, its timings mean nothing, and compiling is its cost.
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out.read_text()


def test_report_has_every_section(report):
    for heading in ("## Machine", "## 1. Evaluation throughput", "## 2. Fitting", "## 3. GPU",
                    "## Targets", "## Closing note"):
        assert heading in report
    assert "load average at start" in report


@pytest.mark.parametrize("name", [
    "nllax.gaussian.nll", "nllax.laplace.nll", "nllax.bernoulli.nll", "nllax.categorical.nll",
    "nllax.poisson.nll", "nllax.losses.poisson", "nllax.gaussian.nll(weights=, where=)",
])
def test_every_nllax_row_measured(report, name):
    rows = [line for line in report.splitlines() if line.startswith(f"| 1e3 | **{name}")]
    assert rows, name
    assert all("failed" not in r for r in rows)


def test_competitor_rows_present_when_installed(report):
    expected = ["hand-written jnp", "optax sigmoid_binary_cross_entropy",
                "jax.scipy.stats.norm.logpdf", "floor: read the same bytes"]
    if _has("distrax"):
        expected.append("distrax.Normal")
    if _has("numpyro"):
        expected.append("numpyro Poisson")
    if _has("torch"):
        expected.append("torch F.cross_entropy")
    for name in expected:
        assert f"| {name}" in report, name
    # Every measured gradient points the way nllax's does (same NLL up to a factor).
    for line in report.splitlines():
        if line.startswith("| 1e3 |") and "floor" not in line:
            cos = float(line.rstrip(" |").rsplit("|", 1)[1])
            assert cos > 0.9999, line


def test_fit_rows(report):
    for model in ("linear", "logistic", "poisson"):
        assert f"### {model} regression" in report
    assert "| hand-written jitted optax L-BFGS loop |" in report
    if _has("statsmodels"):
        assert "| statsmodels OLS |" in report
        assert "| statsmodels GLM (IRLS) |" in report
    assert "failed:" not in report.split("## 2. Fitting")[1].split("## 3. GPU")[0]
