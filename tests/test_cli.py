"""The `nllax report` command: exit status, table, JSON, device selection, bad options.

Runs `main([...])` in-process on small problems (the compiled fit loops are cached
between calls, so only the first full report pays the compile). Subsets of the table are
injected by monkeypatching `nllax.equivalences` where a test needs only one row.
"""

import dataclasses
import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import pytest

import nllax
from nllax import _cli as cli

N = "40"  # the smallest problem size the report accepts (fast; tolerances hold)


@pytest.fixture(scope="module", autouse=True)
def _cache_in_a_temp_dir(tmp_path_factory):
    """The report's persistent compilation cache (on by default) goes to a temporary
    folder, never to the user's home."""
    import os

    old = os.environ.get("NLLAX_CACHE_DIR")
    os.environ["NLLAX_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    yield os.environ["NLLAX_CACHE_DIR"]
    if old is None:
        del os.environ["NLLAX_CACHE_DIR"]
    else:
        os.environ["NLLAX_CACHE_DIR"] = old


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
    assert failed == set(cli.non_smooth()) >= cli.NON_SMOOTH, out
    assert f"{len(cli.non_smooth())} FAILED" in out


def test_non_smooth_rows_fit_in_groups_of_their_own():
    # Only a non-smooth row's fit can need the L-BFGS polish, whose program holds every
    # branch of its group: grouped with the smooth rows it was the report's largest program.
    # Smooth rows of one model still share one fit objective (one compiled loop).
    eqs = nllax.equivalences
    plans = cli._plan(list(eqs), eqs, int(N), 0)
    name_of = {id(eq): name for name, eq in eqs.items()}
    rough = cli.non_smooth()
    assert rough and set(plans) == set(eqs)
    for name, plan in plans.items():
        members = [name_of[id(eq)] for eq, _ in plan.members]
        assert name in members and all((m in rough) == (name in rough) for m in members)
    assert plans["sse"].objective is plans["mse"].objective is plans["huber"].objective
    assert plans["sae"].objective is plans["mae"].objective is plans["pinball"].objective


def test_an_equivalence_without_embedded_data_fails(monkeypatch, capsys):
    _only(monkeypatch, new_loss=nllax.equivalences["binary_cross_entropy"])
    assert cli.main(["report", "--n", N, "--device", "cpu:0"]) == 1
    assert "no embedded problem for equivalence 'new_loss'" in capsys.readouterr().out


# Two CPU devices exist under the default test configuration (NLLAX_TEST_DEVICES=4,
# tests/conftest.py), not under the second CI one (NLLAX_TEST_DEVICES=1).
TWO_CPUS = pytest.mark.skipif(
    len(jax.devices("cpu")) < 2,
    reason="needs 2 CPU devices; set NLLAX_TEST_DEVICES >= 2 (tests/conftest.py)")


@TWO_CPUS
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
    assert cli.select_devices("cpu:0,cpu:0") == [cpus[0]]
    if len(cpus) >= 2:  # order kept, repeats dropped (two devices: see TWO_CPUS)
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


def test_python_dash_m_entry_point(capsys):
    # `python -m nllax` reaches the same parser (help only: a full run is tested above).
    # One process (each pays Python's and JAX's start-up); the top-level help in-process.
    out = subprocess.run([sys.executable, "-m", "nllax", "report", "--help"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "--dtype" in out.stdout
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "report" in capsys.readouterr().out


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


# ----------------------------------------------------------------------------- likelihoods,
# figure, page, compilation cache


def test_report_rows_name_the_likelihood_of_every_registered_equivalence(capsys, full_json):
    code, text = full_json
    doc = json.loads(text)
    assert [r["family"] for r in doc["rows"]] == [eq.family for eq in nllax.equivalences.values()]
    assert all(r["family"] for r in doc["rows"])
    cli.main(["report", "--n", N, "--device", "cpu:0"])
    out = capsys.readouterr().out
    assert "likelihood" in out.splitlines()[next(
        i for i, ln in enumerate(out.splitlines()) if ln.startswith("equivalence"))]
    for name, eq in nllax.equivalences.items():
        (row,) = [ln for ln in out.splitlines() if ln.startswith(name + " ")]
        assert eq.family in row


def test_report_states_its_compile_time(full_json, _cache_in_a_temp_dir):
    doc = json.loads(full_json[1])
    t = doc["timing"]
    assert t["total_s"] >= t["first_row_s"] > 0 and t["compile_s"] >= 0
    assert t["cache_dir"] == _cache_in_a_temp_dir  # on by default, here in a temp dir
    assert "timing    first row" in cli.format_table(doc) and "compilation" in cli.format_table(doc)


def test_plot_and_html_have_one_panel_per_row(monkeypatch, capsys, tmp_path):
    from PIL import Image

    eqs = nllax.equivalences
    _only(monkeypatch, sse=eqs["sse"], binary_cross_entropy=eqs["binary_cross_entropy"])
    png, page, cache = tmp_path / "r.png", tmp_path / "r.html", tmp_path / "cache"
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--plot", str(png),
                     "--html", str(page), "--cache-dir", str(cache)])
    out = capsys.readouterr().out
    assert code == 0, out
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100
        assert im.text["nllax panels"] == "sse,binary_cross_entropy"
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "data:image/png;base64," in text
    assert "http" not in text  # self-contained: nothing to fetch
    for name in ("sse", "binary_cross_entropy"):
        assert f"<td>{name}</td>" in text
        assert f"<td>{eqs[name].family}</td>" in text
    # the curves' programs were new: compiled and written to the cache folder given
    assert any(cache.iterdir())
    assert f"persistent cache {cache}" in out


def test_no_cache_leaves_jax_configuration_alone(monkeypatch, capsys, tmp_path,
                                                 _cache_in_a_temp_dir):
    import os

    _only(monkeypatch, binary_cross_entropy=nllax.equivalences["binary_cross_entropy"])
    before = jax.config.jax_compilation_cache_dir
    # importing the library never turns the cache on
    assert before == os.environ.get("JAX_COMPILATION_CACHE_DIR")
    fresh = tmp_path / "unused"
    monkeypatch.setenv("NLLAX_CACHE_DIR", str(fresh))
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json", "--no-cache"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["timing"]["cache_dir"] is None
    assert not fresh.exists()
    assert cli.main(["report", "--n", N, "--device", "cpu:0", "--no-cache"]) == 0
    assert "persistent cache off" in capsys.readouterr().out
    # with the cache on, the setting is the command's only
    assert cli.main(["report", "--n", N, "--device", "cpu:0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["timing"]["cache_dir"] == str(fresh)
    assert jax.config.jax_compilation_cache_dir == before


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from nllax import _report_extras as X

    monkeypatch.setenv("NLLAX_CACHE_DIR", str(tmp_path / "a"))
    assert X.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("NLLAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert X.default_cache_dir() == tmp_path / "xdg" / "nllax" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert X.default_cache_dir() == tmp_path / "home" / ".cache" / "nllax" / "jax"


def test_plot_without_matplotlib_is_a_clear_usage_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    for flag in ("--plot", "--html"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["report", "--n", N, flag, str(tmp_path / "x")])
        assert exc.value.code == 2
        assert "need matplotlib" in capsys.readouterr().err


def test_plot_into_a_missing_folder_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "--n", N, "--plot", str(tmp_path / "no" / "r.png")])
    assert exc.value.code == 2 and "--plot" in capsys.readouterr().err


def test_report_runs_a_row_added_elsewhere_without_listing_it(monkeypatch, capsys):
    # A loss declared in the family core as another branch would (non-smooth), with its
    # row: the report builds its problem from the declared data support and finds it
    # non-smooth by its declaration. Nothing is listed by hand. (One row: one compile.)
    from nllax import _equivalences as E
    from nllax import _family as F
    from nllax import _math as M
    from nllax import losses

    decl = losses.residual_loss("my_l1", M.abs_, smooth=False)
    monkeypatch.setitem(F.LOSSES, decl.fn_name, decl)
    fn = F._make_public(decl, "nll", decl.signature("nll"))
    _only(monkeypatch, my_l1=E.laplace_row("my_l1", fn, mean=False))
    assert cli.non_smooth() == {"my_l1"}
    assert cli.make_problem("my_l1", 40, 0).model is cli._linear  # real data: linear model
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json", "--no-cache"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    (row,) = doc["rows"]
    assert (row["equivalence"], row["family"]) == ("my_l1", "Laplace(loc, beta)")
    assert doc["tolerances"]["non_smooth"] == ["my_l1"]
    assert row["theta_tolerance"] == cli.TOLERANCES["float32"]["theta_non_smooth"]
    with pytest.raises(KeyError):  # neither hand-made nor declared: no problem
        cli.make_problem("not_a_loss", 40, 0)


# ----------------------------------------------------------------------------- stored programs


def _bce_report(monkeypatch, capsys, cache):
    """One row (one measurement program, one fit loop), a fresh process's memory."""
    from nllax import _report_programs as P

    _only(monkeypatch, binary_cross_entropy=nllax.equivalences["binary_cross_entropy"])
    P.clear_memory()
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json", "--cache-dir", str(cache)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    for r in doc["rows"]:
        r.pop("elapsed_s")
    return doc


def test_a_second_run_loads_the_programs_instead_of_tracing(monkeypatch, capsys, tmp_path):
    old = tmp_path / "programs" / "0123456789abcdef-of-an-older-nllax.xla"
    old.parent.mkdir()
    old.write_bytes(b"old")
    first = _bce_report(monkeypatch, capsys, tmp_path)
    assert not old.exists()  # another library version's programs are removed
    stored = first["timing"]["programs_stored"]
    assert stored["stored"] == 2 and stored["loaded"] == 0  # measurement + fit loop
    assert len(list((tmp_path / "programs").iterdir())) == 2
    second = _bce_report(monkeypatch, capsys, tmp_path)
    t = second["timing"]
    assert t["programs_stored"]["loaded"] == 2
    assert t["programs_stored"]["stored"] == t["programs_stored"]["traced"] == 0
    assert second["rows"] == first["rows"]  # the same programs: the same numbers, bit for bit
    assert "report programs 2 loaded" in cli.format_table(second)


def test_a_corrupt_or_stale_program_is_compiled_again(monkeypatch, capsys, tmp_path):
    first = _bce_report(monkeypatch, capsys, tmp_path)
    files = sorted((tmp_path / "programs").iterdir())
    files[0].write_bytes(b"not a program")
    other = files[1].read_bytes()
    files[1].write_bytes(other[: len(other) // 2])  # truncated
    again = _bce_report(monkeypatch, capsys, tmp_path)
    assert again["timing"]["programs_stored"]["replaced"] == 2
    assert again["timing"]["programs_stored"]["stored"] == 2
    assert again["rows"] == first["rows"] and again["passed"]
    # overwritten with good entries: the next run loads them
    assert _bce_report(monkeypatch, capsys, tmp_path)["timing"]["programs_stored"]["loaded"] == 2


def test_the_key_follows_the_sources_the_row_and_the_shapes(monkeypatch, tmp_path):
    from nllax import _report_programs as P

    src = tmp_path / "pkg"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n")
    before = P.source_digest(src)
    (src / "a.py").write_text("x = 2\n")  # an edited library never runs a stale program
    assert P.source_digest(src) != before

    progs = P.Programs(tmp_path)
    eq = nllax.equivalences["sse"]
    cpu0 = jax.devices("cpu")[0]
    x = jax.device_put(jnp.ones(3), cpu0)
    key = progs.key("measure", (eq, cli._linear), (x,))[0]
    assert progs.key("measure", (eq, cli._linear), (x,))[0] == key  # stable
    assert progs.key("measure", (eq, cli._exp_linear), (x,))[0] != key
    assert progs.key("measure", (eq, cli._linear), (jax.device_put(jnp.ones(4), cpu0),))[0] != key
    # a row replaced at run time (same name, other code) is another program
    broken = dataclasses.replace(eq, a=lambda y, **kw: 2.0 * eq.a(y, **kw))
    assert progs.key("measure", (broken, cli._linear), (x,))[0] != key
    monkeypatch.setattr(P, "_TAG", "another nllax source")
    assert progs.key("measure", (eq, cli._linear), (x,))[0] != key
    # machine code for this CPU and these compiler flags: another CPU (a cache folder on a
    # shared home) or other XLA flags is another tag
    def fresh_tag():
        monkeypatch.setattr(P, "_TAG", None)
        return P.source_tag()

    tag, cpu = fresh_tag(), P._cpu_identity
    monkeypatch.setattr(P, "_cpu_identity", lambda: "another CPU")
    assert fresh_tag() != tag
    monkeypatch.setattr(P, "_cpu_identity", cpu)
    assert fresh_tag() == tag
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", "") + " --xla_cpu_max_isa=AVX")
    assert fresh_tag() != tag
    monkeypatch.setattr(P, "_TAG", None)
    # an object without a stable fingerprint, or data on no device, are not stored
    assert progs.key("measure", (object(),), (x,)) is None
    assert progs.key("measure", (eq, cli._linear), (jnp.ones(3),)) is None


def test_no_cache_stores_no_programs(monkeypatch, capsys, tmp_path):
    _only(monkeypatch, binary_cross_entropy=nllax.equivalences["binary_cross_entropy"])
    code = cli.main(["report", "--n", N, "--device", "cpu:0", "--json", "--no-cache",
                     "--cache-dir", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["timing"]["programs_stored"]["traced"] == 3  # measurement, two fits
    assert not (tmp_path / "programs").exists()


@pytest.mark.slow
def test_programs_stored_by_one_process_run_in_the_next(tmp_path):
    # Loading an executable that was never lowered in the process has traps that show only
    # across processes (a CPU fit loop calls LAPACK through a table JAX fills in while
    # lowering: a segfault without it). Two fresh processes, one row (Newton: Cholesky).
    code = ("import sys, types, nllax\n"
            "from nllax import _cli as cli\n"
            "nllax.equivalences = types.MappingProxyType({'sse': nllax.equivalences['sse']})\n"
            "sys.exit(cli.main(['report', '--n', '40', '--device', 'cpu:0', '--json',\n"
            "                   '--cache-dir', sys.argv[1]]))\n")
    docs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, timeout=600, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        doc = json.loads(out.stdout)
        for r in doc["rows"]:
            r.pop("elapsed_s")
        docs.append(doc)
    assert docs[0]["timing"]["programs_stored"]["stored"] == 2
    assert docs[1]["timing"]["programs_stored"]["loaded"] == 2
    assert docs[1]["timing"]["trace_s"] < docs[0]["timing"]["trace_s"]
    assert docs[1]["rows"] == docs[0]["rows"]


SCALE = 2.0  # read by the row below: editing it must change the program's key


def test_the_key_follows_the_globals_of_a_row_defined_outside_nllax(monkeypatch, tmp_path):
    from nllax import _report_programs as P

    good = nllax.equivalences["sse"]
    scaled = dataclasses.replace(good, a=lambda y, **kw: SCALE * good.a(y, **kw))
    x = jax.device_put(jnp.ones(3), jax.devices("cpu")[0])
    key = P.Programs(tmp_path).key("measure", (scaled, cli._linear), (x,))[0]
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 3.0)
    assert P.Programs(tmp_path).key("measure", (scaled, cli._linear), (x,))[0] != key
