"""`nllax audit MODULE:FUNCTION --support ...`: the command-line face of nllax.audit.

In-process `main([...])` calls (cheap: the audits are small), one subprocess run of
`python -m nllax audit` for the entry point, and a loss module written to tmp_path to
check that the current directory is importable.
"""

import json
import math
import subprocess
import sys

import pytest

from nllax import _cli as cli


def _run(capsys, *argv):
    code = cli.main(["audit", *argv])
    return code, capsys.readouterr().out


def test_a_location_loss_is_a_likelihood_for_every_a(capsys):
    code, out = _run(capsys, "optax.losses:huber_loss", "--swap", "--support", "real")
    assert code == 0
    assert "a likelihood for every scale a tried" in out and "(any)" in out
    assert "b = log Z  1.07305859071" in out  # closed form: tests/_audit_cases.huber_log_z(1, 1)


def test_json_document_and_exit_status_of_a_non_likelihood(capsys):
    code, out = _run(capsys, "optax.losses:sigmoid_focal_loss", "--swap", "--support", "binary",
                     "--a", "1", "--predictions=-2,0,3", "--json")  # '=': a leading minus
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert code == 1 and doc["is_likelihood"] is False and doc["b"] is None
    assert doc["scales"] == "given" and doc["a"] == 1.0
    assert doc["predictions"] == [-2.0, 0.0, 3.0] and len(doc["log_normalizer"]) == 3
    assert doc["variation"] > 0.1


def test_categorical_support_and_json_predictions(capsys):
    code, out = _run(capsys, "nllax.losses:cross_entropy", "--support", "categorical:3",
                     "--predictions", "[[0, 1, 2], [1, 1, 1], [-3, 0, 5]]", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["a"] == 1.0 and doc["scales"] == "isolated"
    assert doc["support"] == ["categorical", 3] and abs(doc["b"]) < 1e-12


def test_a_local_module_and_a_base_measure(tmp_path, monkeypatch, capsys):
    (tmp_path / "mylosses.py").write_text(
        "import jax.numpy as jnp\n"
        "from jax.scipy.special import gammaln\n"
        "def poisson(k, eta):\n    return jnp.exp(eta) - k * eta\n"
        "def log_base(k):\n    return -gammaln(k + 1.0)\n"
        "def mape(y, p):\n    return jnp.abs(y - p) / jnp.abs(y)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command adds the cwd; undo after
    code, out = _run(capsys, "mylosses:poisson", "--support", "counts", "--a", "1",
                     "--base", "mylosses:log_base")
    assert code == 0 and "a likelihood at a = 1" in out
    code, out = _run(capsys, "mylosses:mape", "--support", "positive", "--a", "1", "--json")
    doc = json.loads(out)
    # exp(-a * MAPE) -> exp(-a) as y grows: infinite mass, written as null in JSON.
    assert code == 1 and all(v is None for v in doc["log_normalizer"])
    assert doc["variation"] is None and "infinite mass" in doc["reason"]


@pytest.mark.parametrize("argv, message", [
    (["nllax.losses", "--support", "real"], "give MODULE:FUNCTION"),
    (["no_such_module_xyz:f", "--support", "real"], "cannot import 'no_such_module_xyz'"),
    (["nllax.losses:nope", "--support", "real"], "has no attribute 'nope'"),
    (["nllax:__version__", "--support", "real"], "is not callable"),
    (["nllax.losses:sse", "--support", "integers"], "use real, positive"),
    (["nllax.losses:sse", "--support", "categorical:1"], "integer K >= 2"),
    (["nllax.losses:sse", "--support", "real", "--a", "-1"], "`a` must be a positive"),
    (["nllax.losses:sse", "--support", "real", "--predictions", "1,x"], "--predictions"),
    (["nllax.losses:sse"], "required: --support"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["audit", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_runs_an_audit():
    # log-cosh at a = 1: Z = pi (the hyperbolic secant distribution).
    out = subprocess.run(
        [sys.executable, "-m", "nllax", "audit", "optax.losses:log_cosh", "--swap",
         "--support", "real", "--a", "1", "--json"],
        capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["b"] == pytest.approx(math.log(math.pi), abs=1e-10)
