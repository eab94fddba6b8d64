"""The tutorial notebook runs from top to bottom, with its figures, in a fresh kernel.

Executed with nbclient on the installed `python3` kernel (`make test` installs it into
the virtualenv with `python -m ipykernel install --sys-prefix`), with `MPLBACKEND=Agg`
so that no display is needed. The committed notebook keeps its outputs (so it renders
on a repository host); this test checks that they can be reproduced without error.
"""

import pathlib

import pytest

import _notebooks

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "tutorial.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return _notebooks.execute(nbformat, nbclient, NOTEBOOK, tmp_path_factory.mktemp("nb"))


@pytest.mark.slow
def test_notebook_executes_without_errors(executed):
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors, "\n".join(f"{e.ename}: {e.evalue}" for e in errors)


@pytest.mark.slow
def test_notebook_has_its_figures_and_code(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    pngs = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(code) >= 10
    assert len(pngs) >= 4


@pytest.mark.slow
def test_notebook_reaches_the_claims(executed):
    text = "\n".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                     for o in c.outputs if o.output_type == "stream")
    # the fits by NLL and by SSE agree (float64), and sigma_hat^2 = SSE/n to 12 digits
    (diff,) = [ln for ln in text.splitlines() if ln.startswith("max |theta_NLL - theta_SSE|")]
    assert float(diff.split("=")[1]) < 1e-10
    lines = {ln.split("=")[0].strip(): ln.split("=")[1].strip() for ln in text.splitlines()
             if ln.startswith(("sigma_hat^2", "SSE/n"))}
    assert lines["sigma_hat^2"] == lines["SSE/n"]
    for name in ("sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson"):
        assert f"\n{name} " in text
    # the learned-variance section: both fits judged by the held-out Gaussian NLL
    het = [ln for ln in text.splitlines() if "held-out mean NLL" in ln]
    assert [ln.split("(")[0].strip() for ln in het] == ["Gaussian NLL", "beta-NLL, beta = 0.5"]


def test_committed_notebook_has_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "commit the notebook executed"
    assert sum("image/png" in o.get("data", {}) for c in code for o in c.outputs) >= 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
