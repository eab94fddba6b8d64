"""Timing and compiled-memory helpers shared by the benchmark sections.

All timings are wall-clock (``time.perf_counter``) around a call that blocks until its
result exists. Implementations that are compared with each other are timed round-robin
(one call of each per round, the order rotated every round), so that a change of load on
a shared machine hits every competitor alike and their *ratios* stay meaningful.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Any, Callable, Sequence

import jax


@dataclasses.dataclass
class Timing:
    """Seconds per call over repeated calls after warm-up."""

    median: float
    min: float
    max: float
    repeats: int

    def ms(self) -> str:
        """``median [min–max]`` in milliseconds, three significant digits."""
        return f"{_fmt(self.median * 1e3)} [{_fmt(self.min * 1e3)}–{_fmt(self.max * 1e3)}]"


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def block(out: Any) -> Any:
    """Waits for every JAX array in ``out`` (torch and NumPy results are already there)."""
    return jax.block_until_ready(out)


# Caps on the repeats of every measurement; `--quick` lowers them (smoke run).
LIMITS = {"warmup": 2, "min_repeats": 5, "max_repeats": 40}


def time_round_robin(
    calls: Sequence[Callable[[], Any]],
    *,
    warmup: int | None = None,
    budget_s: float = 0.6,
    min_repeats: int | None = None,
    max_repeats: int | None = None,
) -> list[Timing]:
    """Times each zero-argument call; returns one `Timing` per call, in order.

    Every call is warmed up ``warmup`` times, then timed once to size the run: the
    number of rounds (that first one included) is what fits in ``budget_s``, clipped to
    ``[min_repeats, max_repeats]``.
    """
    warmup = LIMITS["warmup"] if warmup is None else min(warmup, LIMITS["warmup"])
    min_repeats = min(LIMITS["min_repeats"], min_repeats or LIMITS["min_repeats"])
    max_repeats = min(LIMITS["max_repeats"], max_repeats or LIMITS["max_repeats"])
    for call in calls:
        for _ in range(warmup):
            block(call())
    probe = []
    for call in calls:
        t0 = time.perf_counter()
        block(call())
        probe.append(time.perf_counter() - t0)
    per_round = max(sum(probe), 1e-9)
    rounds = int(min(max_repeats, max(min_repeats, math.ceil(budget_s / per_round))))
    samples: list[list[float]] = [[t] for t in probe]  # the probe is a timed call too
    order = list(range(len(calls)))
    for r in range(rounds - 1):
        shift = r % len(order)
        for i in order[shift:] + order[:shift]:
            t0 = time.perf_counter()
            block(calls[i]())
            samples[i].append(time.perf_counter() - t0)
    return [
        Timing(statistics.median(s), min(s), max(s), len(s)) for s in samples
    ]


@dataclasses.dataclass
class Compiled:
    """A jitted function compiled ahead of time, with its compile time and memory."""

    call: Callable[..., Any]
    compile_s: float
    temp_bytes: int | None
    output_bytes: int | None


def compile_jax(fn: Callable[..., Any], *args: Any) -> Compiled:
    """``jit(fn).lower(*args).compile()``, timed; memory from ``memory_analysis()``.

    The compile time includes tracing and lowering (what a user waits for on the first
    call). ``temp_bytes`` is the scratch memory XLA allocates for one call besides the
    arguments and outputs: at large n it is a count of n-sized temporaries.
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    temp = out = None
    try:
        mem = compiled.memory_analysis()
        if mem is not None:
            temp = int(mem.temp_size_in_bytes)
            out = int(mem.output_size_in_bytes)
    except (AttributeError, NotImplementedError):  # backends without the analysis
        pass
    return Compiled(compiled, compile_s, temp, out)
