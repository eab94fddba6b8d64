"""Where the test suite's time goes, per module: aggregates the per-test lines that
``NLLAX_TEST_TIMES=<dir>`` (tests/conftest.py) writes, one file per xdist worker.

    NLLAX_TEST_TIMES=/tmp/times NLLAX_TEST_JAX_CACHE=/tmp/empty-cache \\
        PYTHONPATH=src python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider
    python bench/test_time.py /tmp/times            # markdown table, costliest first
    python bench/test_time.py /tmp/times --tests 20  # and the 20 costliest tests
    python bench/test_time.py /tmp/after --before /tmp/before  # per module, two runs

CPU is the pytest worker's own process time (all its threads: XLA compiles on several)
plus that of the child processes it waited for (CLI, notebook kernels, multi-process
workers); it depends far less on the machine's load than wall time, but still grows
somewhat under load (shared caches, hyper-threads). Compiles are XLA backend compiles
(``/jax/core/compile/backend_compile_duration``), counting those whose executable came
from the persistent cache (then "hits", and their seconds are a load, not a compile).
"""

from __future__ import annotations

import argparse
import collections
import pathlib

FIELDS = ("cpu", "child", "wall", "compiles", "compile_s", "hits")


def read(folder: pathlib.Path):
    """``{worker: [(nodeid, {field: value})]}`` in the order the tests ran."""
    out = {}
    for f in sorted(folder.glob("times-*.tsv")):
        rows = []
        for line in f.read_text().splitlines():
            node, *vals = line.split("\t")
            rows.append((node, dict(zip(FIELDS, map(float, vals)))))
        out[f.stem.removeprefix("times-")] = rows
    return out


def table(runs, n_tests: int = 0) -> str:
    mods = collections.defaultdict(collections.Counter)
    worker_of = {}
    per_worker = collections.defaultdict(collections.Counter)
    tests = []
    for worker, rows in runs.items():
        for node, v in rows:
            mod = node.split("::")[0]
            worker_of[mod] = worker
            mods[mod]["tests"] += 1
            mods[mod].update(v)
            per_worker[worker].update(v)
            per_worker[worker]["tests"] += 1
            tests.append((v["cpu"] + v["child"], v["wall"], node))
    total = collections.Counter()
    for m in mods.values():
        total.update(m)
    lines = [
        "| module | tests | CPU s (own + children) | % of CPU | wall s | compiles | compile s | cache hits | worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    cpu_total = total["cpu"] + total["child"]
    for mod, m in sorted(mods.items(), key=lambda kv: -(kv[1]["cpu"] + kv[1]["child"])):
        cpu = m["cpu"] + m["child"]
        lines.append(f"| {mod} | {m['tests']} | {m['cpu']:.1f} + {m['child']:.1f} = {cpu:.1f} | "
                     f"{100 * cpu / cpu_total:.1f} | {m['wall']:.1f} | {int(m['compiles'])} | "
                     f"{m['compile_s']:.1f} | {int(m['hits'])} | {worker_of[mod]} |")
    lines.append(f"| **total** | {total['tests']} | {total['cpu']:.1f} + {total['child']:.1f} = "
                 f"{cpu_total:.1f} | 100 | {total['wall']:.1f} | {int(total['compiles'])} | "
                 f"{total['compile_s']:.1f} | {int(total['hits'])} | |")
    lines.append("")
    lines.append("| worker | tests | CPU s | wall s (sum of its tests) |")
    lines.append("|---|---:|---:|---:|")
    for w, m in sorted(per_worker.items()):
        lines.append(f"| {w} | {m['tests']} | {m['cpu'] + m['child']:.1f} | {m['wall']:.1f} |")
    if n_tests:
        lines += ["", f"The {n_tests} costliest tests (a module fixture counts in the test that "
                  "first needs it):", "", "| CPU s | wall s | test |", "|---:|---:|---|"]
        for cpu, wall, node in sorted(tests, reverse=True)[:n_tests]:
            lines.append(f"| {cpu:.1f} | {wall:.1f} | {node} |")
    return "\n".join(lines)


def per_module(runs):
    mods = collections.defaultdict(collections.Counter)
    for rows in runs.values():
        for node, v in rows:
            m = mods[node.split("::")[0]]
            m["tests"] += 1
            m.update(v)
    return mods


def compare(before, after) -> str:
    """Per module, CPU seconds and compiles before and after, over the tests that ran in
    both (a run stopped early, or tests added or removed, compare like for like)."""
    ids_b = {node for rows in before.values() for node, _ in rows}
    ids_a = {node for rows in after.values() for node, _ in rows}
    common = ids_a & ids_b
    keep = lambda runs: {w: [(n, v) for n, v in rows if n in common]  # noqa: E731
                         for w, rows in runs.items()}
    b, a = per_module(keep(before)), per_module(keep(after))
    lines = ["| module | tests in both | CPU s before | CPU s after | compiles before | "
             "compiles after |", "|---|---:|---:|---:|---:|---:|"]
    for mod in sorted(b.keys() & a.keys(), key=lambda m: -(b[m]["cpu"] + b[m]["child"])):
        x, y = b[mod], a[mod]
        n = f"{int(y['tests'])}"
        lines.append(f"| {mod} | {n} | {x['cpu'] + x['child']:.1f} | {y['cpu'] + y['child']:.1f} | "
                     f"{int(x['compiles'])} | {int(y['compiles'])} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=pathlib.Path)
    ap.add_argument("--tests", type=int, default=0, help="also list the N costliest tests")
    ap.add_argument("--before", type=pathlib.Path,
                    help="another run's folder: compare the modules of both, CPU and compiles")
    args = ap.parse_args(argv)
    if args.before is not None:
        print(compare(read(args.before), read(args.folder)))
    else:
        print(table(read(args.folder), args.tests))


if __name__ == "__main__":
    main()
