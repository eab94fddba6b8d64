"""nllax benchmarks against the libraries users would pick instead; writes bench/RESULTS.md.

    python bench/run.py             # default sizes: n = 1e6 and 1e7, fits at n = 1e5, d = 20
    python bench/run.py --quick     # tiny sizes (the test suite's smoke run)
    python bench/run.py --sizes 1e5,1e6 --fit-n 20000 --out /tmp/results.md

Everything runs in one process: timings are medians with min–max over repeated calls after
warm-up, competitors timed round-robin so that their ratios survive a busy machine.
Libraries that are not installed are skipped and listed in the report.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import jax  # noqa: E402

import _libs  # noqa: E402
import _measure  # noqa: E402
import diagnose  # noqa: E402
import evaluation  # noqa: E402
import fitting  # noqa: E402
import report  # noqa: E402


def _sizes(text: str) -> list[int]:
    try:
        out = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--sizes: {e}") from None
    if not out or min(out) < 10:
        raise argparse.ArgumentTypeError("--sizes: give sizes >= 10, e.g. 1e6,1e7")
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and short timing budgets (smoke run, seconds)")
    p.add_argument("--sizes", type=_sizes, default=None,
                   help="comma-separated n for the evaluation section (default 1e6,1e7)")
    p.add_argument("--fit-n", type=int, default=None, help="observations for the fits (1e5)")
    p.add_argument("--fit-d", type=int, default=20, help="regressors besides the intercept")
    p.add_argument("--only", choices=("eval", "fit", "diag"), default=None, help="run one section")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="where to write the markdown report (default bench/RESULTS.md; with "
                        "--quick a file in the temporary directory, so the committed results "
                        "are not overwritten by a smoke run)")
    a = p.parse_args(argv)
    if a.out is None:
        a.out = (pathlib.Path(tempfile.gettempdir()) / "nllax-bench-quick.md" if a.quick
                 else HERE / "RESULTS.md")
    if a.sizes is None:
        a.sizes = [1000] if a.quick else [1_000_000, 10_000_000]
    if a.fit_n is None:
        a.fit_n = 300 if a.quick else 100_000
    a.budget = 0.02 if a.quick else 0.6
    return a


def devices() -> list:
    """The CPU, and the first accelerator if there is one (its own rows)."""
    out = [jax.devices("cpu")[0]]
    accel = [d for d in jax.devices() if d.platform != "cpu"]
    return out + accel[:1]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        _measure.LIMITS.update(warmup=1, min_repeats=2, max_repeats=3)
    started = time.time()
    env = report.environment(argv if argv is not None else sys.argv[1:])
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    log(f"nllax bench: {env['cpu']} ({env['cores']} cores), devices {env['devices']}, "
        f"load {env['load_start']}")
    eval_rows, fit_rows, diag_rows = [], [], []
    if args.only in (None, "eval"):
        log("evaluation throughput")
        eval_rows = evaluation.run(args.sizes, devices(), budget_s=args.budget, log=log)
    if args.only in (None, "fit"):
        log("fitting")
        fit_rows, _ = fitting.run(args.fit_n, args.fit_d, budget_s=3 * args.budget,
                                  quick=args.quick, log=log)
    if args.only in (None, "diag"):
        log(f"diagnosis: the per-observation poison, n = {max(args.sizes):.0e}")
        diag_rows = diagnose.run(max(args.sizes), budget_s=args.budget, quick=args.quick,
                                 log=log)
    env["load_end"] = report.loadavg()
    env["elapsed_s"] = time.time() - started
    env["missing"] = dict(_libs.missing)
    text = report.render(env, args, eval_rows, fit_rows, diag_rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log(f"wrote {args.out} in {env['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
