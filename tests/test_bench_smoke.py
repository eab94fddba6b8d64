"""Smoke runs of the benchmarks, so that they never rot: `bench/run.py --quick` (nllax
against the libraries users would pick instead), `bench/core.py --quick` on three rows and
again with `--update` (the family-core table: registry-driven rows, HLO evidence, the
merge), and `bench/features.py --quick` (the chunked cross-entropy, bench/FEATURES.md).

Tiny sizes, a few repeats; no timing is asserted anywhere. Competitor libraries that are
not installed (torch, distrax, numpyro are only in the `bench` extra) are skipped by the
benchmarks themselves, and their rows are only required when importable.

The four runs share one child process (`_DRIVER`: each script's `main(argv)` in turn, the
call `python bench/<script>.py ARGS` makes): every process pays Python's and JAX's
start-up (about 3 CPU s here, 6 with SciPy, statsmodels and scikit-learn), and a
script's code path is the same whichever process runs it. A run that fails fails only
its own tests, with its traceback. The child gets the real devices, not the tests' four
simulated ones, and no LLVM optimisation (`--xla_backend_optimization_level=0`, besides
the suite's cheap-compile flags, tests/_children.py): the smoke runs check that
everything runs, their timings mean nothing, and compiling is their cost.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

import _children

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CORE_ROWS = "categorical.nll,cauchy.nll,losses.poisson"

_DRIVER = r"""
import json, runpy, shutil, sys, traceback
status = {}
for name, script, argv, keep in json.loads(sys.argv[1]):
    try:
        code = runpy.run_path(script)["main"](argv)
        status[name] = None if code in (0, None) else f"exit status {code}"
    except BaseException:
        status[name] = traceback.format_exc()
    if keep and status[name] is None:
        shutil.copy(*keep)
    print(f"--- {name}: {'ok' if status[name] is None else 'FAILED'}", flush=True)
with open(sys.argv[2], "w") as f:
    json.dump(status, f)
"""


def _has(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The outputs of the four runs, by name, and each run's failure (``None`` if it
    succeeded) under ``status``."""
    out = tmp_path_factory.mktemp("bench")
    files = {"run": out / "RESULTS.md", "core": out / "CORE.md",
             "core_first": out / "CORE-first.md", "features": out / "FEATURES.md"}
    core = [str(BENCH / "core.py"), ["--quick", "--sizes", "200", "--only", CORE_ROWS,
                                      "--out", str(files["core"])]]
    calls = [
        ["run", str(BENCH / "run.py"), ["--quick", "--out", str(files["run"])], None],
        # the table as written by a first run, kept before --update rewrites it
        ["core", *core, [str(files["core"]), str(files["core_first"])]],
        ["core_update", core[0], [*core[1], "--update"], None],
        ["features", str(BENCH / "features.py"), ["--quick", "--out", str(files["features"])],
         None],
    ]
    status_file = out / "status.json"
    env = _children.env("--xla_backend_optimization_level=0",
                        PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(calls), str(status_file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0 and status_file.exists(), (
        proc.stdout[-3000:] + proc.stderr[-3000:])
    return {"status": json.loads(status_file.read_text()), "files": files,
            "log": proc.stdout[-3000:] + proc.stderr[-3000:]}


def _ok(runs, *names):
    for name in names:
        assert runs["status"][name] is None, f"{name}:\n{runs['status'][name]}\n{runs['log']}"


@pytest.fixture(scope="module")
def report(runs) -> str:
    _ok(runs, "run")
    return runs["files"]["run"].read_text()


# ----------------------------------------------------------------------------- bench/run.py


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


# ----------------------------------------------------------------------------- bench/core.py


def test_core_table_rows_and_update(runs):
    _ok(runs, "core", "core_update")
    text = runs["files"]["core_first"].read_text()
    for name in CORE_ROWS.split(","):
        assert f"| {name} | 2e+02 |" in text, name
    assert "## HLO evidence" in text
    results = json.loads(runs["files"]["core"].with_suffix(".json").read_text())["results"]
    assert sorted(r["row"] for r in results) == sorted(CORE_ROWS.split(","))
    # every competitor computes the same quantity: gradients in the same direction
    for r in results:
        assert all(c > 0.999 for c in r["cosines"].values()), r["row"]


# ------------------------------------------------------------------------- bench/features.py


def test_features_benchmark(runs):
    """The benchmark quoted in bench/FEATURES.md (tiny sizes; no number is asserted)."""
    _ok(runs, "features")
    text = runs["files"]["features"].read_text()
    assert "## Compiled temporaries" in text and "## Time for value and gradient" in text
