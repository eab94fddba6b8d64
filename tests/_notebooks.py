"""Executes a notebook the way the notebook tests do: nbclient on the `python3` kernel
(`make test` installs it into the virtualenv with `python -m ipykernel install
--sys-prefix`), `MPLBACKEND=Agg` so that no display is needed."""

from __future__ import annotations

import os
import pathlib

import nllax

import _children


def execute(nbformat, nbclient, notebook: pathlib.Path, workdir: pathlib.Path):
    """The executed notebook (``nbformat`` / ``nbclient``: the modules, imported by the
    caller with ``pytest.importorskip``)."""
    nb = nbformat.read(notebook, as_version=4)
    # The kernel imports the nllax this test process imported (a worktree's src/ under
    # PYTHONPATH=src, which is relative, would otherwise resolve in the kernel's folder).
    here = str(pathlib.Path(nllax.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    # The kernel gets its own device setting (the tests' 4 simulated CPU devices are not
    # what a reader of the notebook has) but keeps the suite's cheap-compile flags.
    env = _children.env(MPLBACKEND="Agg", PYTHONPATH=path)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=600,  # per cell; generous for a loaded CI machine (no timing assertion)
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)  # passed on to the kernel manager's start_kernel
    return nb
