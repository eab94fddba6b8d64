"""The XLA settings of the processes the tests start (notebook kernels, bench scripts, the
multi-process workers).

They inherit this process's environment, which conftest set up: the persistent
compilation cache, ``JAX_DISABLE_MOST_OPTIMIZATIONS`` and, in ``XLA_FLAGS``, the suite's
cheap-compile flags and its simulated device count. A child keeps the compile flags (its
programs cost what the suite's cost: about a fifth less XLA compile time with one LLVM
module per program, docs/testing.md) but gets its own device count: a notebook or a
benchmark runs on the devices a reader has, not on the tests' four simulated ones.
"""

from __future__ import annotations

import os
import re

_DEVICES = re.compile(r"--xla_force_host_platform_device_count=\S+")


def xla_flags(*extra: str, devices: int | None = None) -> str:
    """This process's ``XLA_FLAGS`` without its simulated device count, plus ``extra``;
    with ``devices``, that many simulated host devices instead of the real ones."""
    flags = _DEVICES.sub("", os.environ.get("XLA_FLAGS", "")).split()
    flags += list(extra)
    if devices is not None:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    return " ".join(flags)


def env(*extra: str, devices: int | None = None, **variables: str) -> dict[str, str]:
    """``os.environ`` with :func:`xla_flags` and ``variables`` (``XLA_FLAGS`` left out
    when empty)."""
    out = dict(os.environ, **variables)
    flags = xla_flags(*extra, devices=devices)
    if flags:
        out["XLA_FLAGS"] = flags
    else:
        out.pop("XLA_FLAGS", None)
    return out
