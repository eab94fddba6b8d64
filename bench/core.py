"""The family core's speed table: every family's NLL and every loss, value and gradient,
against the fastest JAX implementation of the same quantity (hand-written jnp, optax,
jax.scipy.stats, distrax, numpyro), in one process, round-robin, float32, on the default
device. Writes bench/CORE.md.

    python bench/core.py                 # n = 1e6 and 1e7 (the issue's sizes)
    python bench/core.py --sizes 1e5 --only gaussian,bernoulli
    python bench/core.py --quick         # smoke run (tiny n, short budget)
    python bench/core.py --warmup 1 --min-repeats 3   # what CORE.md was made with (~20 min
                                         # at load 15 on 2 cores; the slow rows at 1e7
                                         # take seconds per call)
    python bench/core.py --only cauchy.nll --update   # re-measure rows, keep the others

A row is a ``Row`` in a module of ``bench/core_rows/`` (one module per group of families,
so that adding a family adds a file). Every implementation receives the data as
*arguments* (a closed-over array is a compile-time constant that XLA folds, which makes a
benchmark meaningless) and is differentiated with respect to ``d["p"]``, the model's
parameter (the prediction, logits, log-rate...). The table gives, per row and n: the
nllax time, the fastest competitor and its time, their ratio, and the compiled temporary
memory of each in n-sized float32 buffers (``memory_analysis().temp_size_in_bytes / 4n``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import pathlib
import pkgutil
import platform
import sys
import time
from typing import Any, Callable

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import _hlo  # noqa: E402
import _measure  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Row:
    """One quantity: ``make(n, rng) -> dict`` of NumPy arrays (``"p"`` differentiated),
    the nllax implementation and the competitors, each ``fn(d) -> scalar``."""

    name: str
    make: Callable[[int, np.random.Generator], dict[str, Any]]
    nllax: Callable[[dict], Any]
    competitors: dict[str, Callable[[dict], Any]]
    note: str = ""
    max_n: int | None = None  # larger sizes are measured at max_n (a slow row), and say so


def load_rows(only: set[str] | None = None) -> list[Row]:
    rows = []
    for info in sorted(pkgutil.iter_modules([str(HERE / "core_rows")]), key=lambda m: m.name):
        mod = importlib.import_module(f"core_rows.{info.name}")
        rows.extend(getattr(mod, "ROWS", []))
    if only:
        rows = [r for r in rows if r.name in only or r.name.split("[")[0] in only]
    return rows


def _vg(fn):
    return jax.value_and_grad(lambda p, rest: fn(dict(rest, p=p)))


def measure(row: Row, n: int, budget_s: float) -> dict[str, Any]:
    asked = n
    if row.max_n is not None and n > row.max_n:
        n = row.max_n
    rng = np.random.default_rng(0)
    d = {k: jax.device_put(v) for k, v in row.make(n, rng).items()}
    p, rest = d["p"], {k: v for k, v in d.items() if k != "p"}
    impls = {"nllax": row.nllax, **row.competitors}
    compiled, values = {}, {}
    for name, fn in impls.items():
        c = _measure.compile_jax(_vg(fn), p, rest)
        compiled[name] = c
        values[name] = c.call(p, rest)
    # the gradients must agree in direction (a loss form differs by a positive factor)
    g0 = np.asarray(values["nllax"][1], np.float64).ravel()
    cosines, rel = {}, {}
    v0 = float(values["nllax"][0])
    for name, (v, g) in values.items():
        rel[name] = abs(float(v) - v0) / (abs(v0) + 1e-30)
        g = np.asarray(g, np.float64).ravel()
        cosines[name] = float(g @ g0 / (np.linalg.norm(g) * np.linalg.norm(g0) + 1e-300))
    names = list(impls)
    timings = _measure.time_round_robin([lambda c=compiled[k]: c.call(p, rest) for k in names],
                                        budget_s=budget_s)
    t = dict(zip(names, timings))
    # a competitor whose value or gradient is not finite on these valid data (overflow in
    # float32) does not compute the same quantity: listed, never the "fastest"
    finite = {k: bool(np.isfinite(float(values[k][0]))
                      and np.all(np.isfinite(np.asarray(values[k][1])))) for k in names}
    others = [k for k in names if k != "nllax" and finite[k]]
    fastest = min(others, key=lambda k: t[k].median) if others else None
    per_buf = 4 * max(n, 1)
    return {
        "row": row.name, "n": n, "nllax_ms": t["nllax"].median * 1e3,
        "fastest": fastest, "fastest_ms": t[fastest].median * 1e3 if fastest else None,
        "ratio": t["nllax"].median / t[fastest].median if fastest else None,
        "temps_nllax": (compiled["nllax"].temp_bytes or 0) / per_buf,
        "temps_fastest": (compiled[fastest].temp_bytes or 0) / per_buf if fastest else None,
        "cosines": cosines, "rel": rel, "finite": finite, "all_ms": {k: v.median * 1e3 for k, v in t.items()},
        "note": row.note + (f" (measured at n = {n:.0e}, not {asked:.0e})" if n != asked else ""),
        "asked": asked,
        "hlo_nllax": _hlo.summary(compiled["nllax"].call.as_text(), n),
        "hlo_fastest": _hlo.summary(compiled[fastest].call.as_text(), n) if fastest else None,
    }


def _machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"jax {jax.__version__} ({jax.default_backend()}), load average "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


def write(results: list[dict], path: pathlib.Path, started: str, ended: str, wall: float,
          command: str = ""):
    lines = [
        "# Family core speed: nllax against the fastest JAX implementation",
        "",
        "Written by `python bench/core.py` (see its docstring). Value and gradient with",
        "respect to the model's parameter, float32, medians of round-robin calls in one",
        "process after warm-up; temporaries in n-sized float32 buffers from",
        "`memory_analysis()`. The ratio is nllax's time over the fastest competitor's.",
        "",
        f"- machine at start: {started}",
        f"- machine at end: {ended}",
        f"- wall time: {wall:.0f} s",
        f"- command: `{command}`",
        "",
        "| quantity | n | nllax ms | fastest competitor | its ms | ratio | nllax temps | "
        "its temps | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f = (lambda x: "–" if x is None else f"{x:.2f}")
        lines.append(
            f"| {r['row']} | {r['n']:.0e} | {r['nllax_ms']:.2f} | {r['fastest'] or '–'} | "
            f"{f(r['fastest_ms'])} | {f(r['ratio'])} | {r['temps_nllax']:.2f} | "
            f"{f(r['temps_fastest'])} | {r['note']} |")
    lines += ["", "## Every implementation", "",
              "Median ms (gradient cosine with nllax's; relative difference of the value from",
              "nllax's: a loss form such as optax's squared error differs by a factor).", ""]
    for r in results:
        cells = ", ".join(f"{k} {v:.2f} ({r['cosines'][k]:.4f}; {r['rel'][k]:.1e}"
                          f"{'' if r['finite'][k] else '; NOT FINITE'})"
                          for k, v in r["all_ms"].items())
        lines.append(f"- {r['row']}, n = {r['n']:.0e}: {cells}")
    lines += ["", "## HLO evidence of the rows above 1.10x", "",
              "Static counts from the optimised HLO (`bench/_hlo.py`): top-level passes that",
              "touch n-sized buffers (n-sized buffers written / read), and per-element",
              "transcendental ops, divides, selects/compares inside the fused computations.", ""]
    for r in results:
        if r["ratio"] is None or r["ratio"] <= 1.10:
            continue
        lines.append(f"- {r['row']}, n = {r['n']:.0e} ({r['ratio']:.2f}x): nllax "
                     f"{_hlo.fmt(r['hlo_nllax'])}; {r['fastest']} {_hlo.fmt(r['hlo_fastest'])}")
    findings = HERE / "core_findings.md"
    if findings.exists():
        lines += ["", findings.read_text().rstrip()]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--sizes", default=None, help="comma-separated n (default 1e6,1e7)")
    a.add_argument("--only", default=None, help="comma-separated row names")
    a.add_argument("--quick", action="store_true")
    a.add_argument("--min-repeats", type=int, default=None,
                   help="fewest timed rounds per row (default 5; slow rows at n = 1e7 take "
                        "minutes each)")
    a.add_argument("--warmup", type=int, default=None)
    a.add_argument("--budget", type=float, default=1.5,
                   help="seconds of timed rounds per row and size (default 1.5)")
    a.add_argument("--out", type=pathlib.Path, default=None)
    a.add_argument("--update", action="store_true",
                   help="replace only the rows measured now in the table (kept as JSON beside "
                        "it); the other rows keep their earlier numbers")
    args = a.parse_args(argv)
    sizes = [int(float(s)) for s in (args.sizes or ("1e3" if args.quick else "1e6,1e7")).split(",")]
    if args.quick:
        _measure.LIMITS.update(warmup=1, min_repeats=2, max_repeats=3)
    if args.min_repeats is not None:
        _measure.LIMITS.update(min_repeats=args.min_repeats)
    if args.warmup is not None:
        _measure.LIMITS.update(warmup=args.warmup)
    out = args.out or (pathlib.Path("/tmp/nllax-core-quick.md") if args.quick else HERE / "CORE.md")
    rows = load_rows(set(args.only.split(",")) if args.only else None)
    started, t0 = _machine(), time.perf_counter()
    results = []
    for n in sizes:
        for row in rows:
            if row.max_n is not None and n > row.max_n and any(
                    r["row"] == row.name and r["n"] == row.max_n for r in results):
                continue
            r = measure(row, n, budget_s=0.1 if args.quick else args.budget)
            if r["fastest"] is None:
                print(f"{r['row']:34s} n={n:.0e} nllax {r['nllax_ms']:8.2f} ms  (no competitor)  "
                      f"temps {r['temps_nllax']:.2f}", flush=True)
            else:
                print(f"{r['row']:34s} n={n:.0e} nllax {r['nllax_ms']:8.2f} ms  "
                      f"{r['fastest']:28s} {r['fastest_ms']:8.2f} ms  ratio {r['ratio']:.2f}  "
                      f"temps {r['temps_nllax']:.2f} vs {r['temps_fastest']:.2f}", flush=True)
            if args.quick:
                print("    cos/rel:", {k: (round(r["cosines"][k], 4), f"{r['rel'][k]:.1e}")
                                       for k in r["all_ms"]})
            results.append(r)
    ended, wall = _machine(), time.perf_counter() - t0
    store = out.with_suffix(".json")
    if args.update and store.exists():
        old = json.loads(store.read_text())
        new = {(r["row"], r["asked"]): r for r in results}
        merged = [new.pop((r["row"], r["asked"]), r) for r in old["results"]]
        results = merged + list(new.values())
        started = old["started"] + f"; updated rows ({args.only}) from {started}"
        ended = old["ended"] + f"; update ended {ended}"
        wall = old["wall"] + wall
    command = "PYTHONPATH=src python bench/core.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:])
    if args.update and store.exists():
        command = old.get("command", "") + f"; then `{command}`"
    store.write_text(json.dumps({"started": started, "ended": ended, "wall": wall,
                                 "command": command, "results": results}, indent=1))
    write(results, out, started, ended, wall, command)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
