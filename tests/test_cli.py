"""The `nllax report` command: exit status, table, JSON, device selection, bad options.

Runs `main([...])` in-process on small problems (the compiled fit loops are cached
between calls, so only the first full report pays the compile). Subsets of the table are
injected by monkeypatching `nllax.equivalences` where a test needs only one row.
"""

import dataclasses
import json
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import pytest

import nllax
from nllax import _cli as cli

N = "40"  # the smallest problem size the report accepts (fast; tolerances hold)


def _only(monkeypatch, **entries):
    monkeypatch.setattr(nllax, "equivalences", types.MappingProxyType(entries))


@pytest.fixture(scope="module")
def full_json():
    """One full float32 report on cpu:0, as the JSON document and the exit status."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json"])
    return code, buf.getvalue()


def test_json_report_passes_and_has_the_expected_keys(full_json):
    code, text = full_json
    doc = json.loads(text)  # one parseable document, nothing else on stdout
    assert code == 0, text
    assert doc["passed"] is True
    assert set(doc) >= {"header", "tolerances", "rows", "passed", "elapsed_s"}
    header = doc["header"]
    assert header["dtype"] == "float32" and header["n"] == int(N)
    assert header["devices"] == [{"name": "cpu:0", "kind": jax.devices("cpu")[0].device_kind}]
    assert set(header["versions"]) == {"python", "jax", "jaxlib", "optax", "nllax"}
    assert header["versions"]["nllax"] == nllax.__version__
    assert doc["tolerances"]["identity"] == cli.TOLERANCES["float32"]["identity"]
    assert [r["equivalence"] for r in doc["rows"]] == list(nllax.equivalences)
    for r in doc["rows"]:
        assert r["device"] == "cpu:0" and r["ran_on"] == ["cpu:0"]
        assert set(r["checks"]) == {"identity", "ratio", "theta", "converged", "device"}
        assert all(r["checks"].values()) and r["passed"]
        # the measured gradient ratio is the table's a (e.g. n/(2 sigma^2) for MSE)
        assert r["ratio_measured"] == pytest.approx(r["ratio_predicted"], rel=1e-4)
        assert r["cosine"] == pytest.approx(1.0, abs=1e-5)


def test_table_lists_every_equivalence_and_exits_zero(capsys, full_json):
    # Same problems as the JSON run: the compiled code is reused.
    code = cli.main(["report", "--n", N, "--device", "cpu:0"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    for name in nllax.equivalences:
        row = [ln for ln in lines if ln.startswith(name + " ")]
        assert len(row) == 1 and row[0].rstrip().endswith("pass"), out
    assert "jax " + jax.__version__ in out and "dtype float32" in out
    assert "ALL PASS" in out
    # aligned: every table row has the header's width up to the result column
    table = lines[lines.index(next(ln for ln in lines if ln.startswith("equivalence"))):]
    assert len({ln.index("cpu:0") for ln in table if ln[:1].isalpha() and "cpu:0" in ln}) == 1


def test_a_broken_equivalence_fails_with_nonzero_exit(monkeypatch, capsys):
    # a = 1/sigma^2 instead of 1/(2 sigma^2): both the identity and the gradient ratio
    # must be flagged. theta_hat still agrees (the gradients remain proportional).
    good = nllax.equivalences["sse"]
    broken = dataclasses.replace(good, a=lambda y, **kw: 2.0 * good.a(y, **kw))
    _only(monkeypatch, sse=broken)
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["passed"] is False
    (row,) = doc["rows"]
    assert row["checks"]["identity"] is False and row["checks"]["ratio"] is False
    assert row["checks"]["theta"] is True
    assert row["ratio_measured"] == pytest.approx(row["ratio_predicted"] / 2, rel=1e-4)


def test_a_tightened_tolerance_fails_the_table(monkeypatch, capsys, full_json):
    # The full report again (compiled already), with a theta_hat tolerance that only the
    # non-smooth rows miss: they, and only they, must fail, and the exit status with them.
    tight = {k: dict(v) for k, v in cli.TOLERANCES.items()}
    tight["float32"]["theta_non_smooth"] = 1e-12
    monkeypatch.setattr(cli, "TOLERANCES", tight)
    code = cli.main(["report", "--n", N, "--device", "cpu:0"])
    out = capsys.readouterr().out
    assert code == 1
    failed = {ln.split()[0] for ln in out.splitlines() if ln.endswith("FAIL (theta)")}
    assert failed == set(cli.NON_SMOOTH), out
    assert f"{len(cli.NON_SMOOTH)} FAILED" in out


def test_an_equivalence_without_embedded_data_fails(monkeypatch, capsys):
    _only(monkeypatch, new_loss=nllax.equivalences["binary_cross_entropy"])
    assert cli.main(["report", "--n", N, "--device", "cpu:0"]) == 1
    assert "no embedded problem for equivalence 'new_loss'" in capsys.readouterr().out


def test_every_selected_device_gets_its_rows(monkeypatch, capsys):
    _only(monkeypatch, binary_cross_entropy=nllax.equivalences["binary_cross_entropy"])
    code = cli.main(["report", "--n", N, "--device", "cpu:0,cpu:1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d["name"] for d in doc["header"]["devices"]] == ["cpu:0", "cpu:1"]
    assert [(r["device"], r["ran_on"]) for r in doc["rows"]] == [
        ("cpu:0", ["cpu:0"]), ("cpu:1", ["cpu:1"])]


def test_float64_is_scoped_to_the_command(monkeypatch, capsys):
    _only(monkeypatch, mse=nllax.equivalences["mse"])
    before = jax.config.jax_enable_x64
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--dtype", "float64", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["header"]["dtype"] == "float64"
    assert doc["rows"][0]["identity_rel_error"] <= cli.TOLERANCES["float64"]["identity"]
    assert jax.config.jax_enable_x64 == before  # the setting did not leak


def test_default_command_is_report(monkeypatch, capsys):
    _only(monkeypatch, binary_cross_entropy=nllax.equivalences["binary_cross_entropy"])
    assert cli.main(["--n", N, "--device", "cpu:0"]) == 0  # `nllax --n 40` = `nllax report --n 40`
    assert "binary_cross_entropy" in capsys.readouterr().out


def test_select_devices():
    cpus = jax.devices("cpu")
    assert cli.select_devices("cpu") == cpus
    assert cli.select_devices("cpu:1,cpu:0,cpu:1") == [cpus[1], cpus[0]]
    assert cli.select_devices("all") == jax.local_devices()
    for bad, msg in [("cpu:99", "no device 'cpu:99'"), ("cpu:x", "integer"),
                     ("nosuch", "no 'nosuch' devices"), (",", "no device selected")]:
        with pytest.raises(ValueError, match=msg):
            cli.select_devices(bad)


@pytest.mark.parametrize("argv, message", [
    (["report", "--dtype", "float16"], "invalid choice"),
    (["report", "--n", "39"], "must be >= 40"),
    (["report", "--n", "many"], "not an integer"),
    (["report", "--seed", "x"], "invalid int value"),
    (["report", "--device", "cpu:99"], "no device 'cpu:99'"),
    (["report", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_options_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_entry_point():
    # `python -m nllax` reaches the same parser (help only: a full run is tested above).
    for argv in (["--help"], ["report", "--help"]):
        out = subprocess.run([sys.executable, "-m", "nllax", *argv], capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        assert "--dtype" in out.stdout or "report" in out.stdout


def test_json_is_strict_when_a_measurement_is_nan(monkeypatch, capsys):
    # An equivalence whose NLL is NaN: the row fails, and the document stays valid JSON
    # (null, not the non-standard NaN/Infinity tokens).
    good = nllax.equivalences["sse"]
    nan_nll = dataclasses.replace(good, nll=lambda y, loc, **kw: good.nll(y, loc, **kw) * jnp.nan)
    _only(monkeypatch, sse=nan_nll)
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json"])
    text = capsys.readouterr().out
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert code == 1 and doc["rows"][0]["passed"] is False
    assert doc["rows"][0]["identity_rel_error"] is None
