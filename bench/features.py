"""Vocabulary-sized cross entropy: ``nllax.categorical.nll_from_features`` (chunked over
the vocabulary, no logit matrix) against the materialised
``nllax.categorical.nll(labels, logits=features @ classifier + bias)``; writes
``bench/FEATURES.md``.

    python bench/features.py                # memory at 8192 x 512 x 131072, times below
    python bench/features.py --time 2048x512x32768,4096x512x65536 --out /tmp/FEATURES.md
    python bench/features.py --quick        # tiny sizes, a smoke run (numbers mean nothing)

* **Memory**: ``jax.jit(f).lower(...).compile().memory_analysis()`` of the value and of
  ``jax.value_and_grad`` with respect to features, classifier and bias, float32, at
  batch 8192, d 512, V 131072 (compiled only, nothing is allocated): temporaries, i.e.
  XLA's scratch besides arguments and outputs. Target: the chunked value and gradient
  need at most 1/16 of the materialised version's temporaries.
* **Time**: value and gradient, both implementations in this one process, timed
  round-robin (``bench/_measure.py``) at sizes where the materialised version fits in
  memory beside the other jobs of a shared 24 GiB machine. Target: chunked / materialised
  <= 1.3. A check that both computed the same thing (value and gradients) comes with it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import pathlib
import platform
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _measure  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import nllax  # noqa: E402

MEMORY_SIZE = (8192, 512, 131072)
TIME_SIZES = [(2048, 512, 32768), (4096, 512, 65536)]
CHUNKS = [None, 1024, 4096, 8192]  # None: the default (2048 at batch 8192)


def _sizes(text: str) -> list[tuple[int, int, int]]:
    try:
        out = [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]
    except ValueError:
        out = []
    if not out or any(len(s) != 3 or min(s) < 1 for s in out):
        raise argparse.ArgumentTypeError("give BATCHxDxV[,BATCHxDxV...], e.g. 2048x512x32768")
    return out


def materialised(labels, features, classifier, bias):
    return nllax.categorical.nll(labels, logits=features @ classifier + bias)


def chunked(chunk_size=None, vocab_axis=-1):
    def f(labels, features, classifier, bias):
        return nllax.categorical.nll_from_features(
            labels, features, classifier, bias=bias, chunk_size=chunk_size,
            vocab_axis=vocab_axis)
    return f


def _vg(f):
    return jax.value_and_grad(lambda F, W, b, y: f(y, F, W, b), argnums=(0, 1, 2))


def _value(f):
    return lambda F, W, b, y: f(y, F, W, b)


def _specs(n, d, v, layout="dv"):
    S = jax.ShapeDtypeStruct
    w = (d, v) if layout == "dv" else (v, d)
    return (S((n, d), jnp.float32), S(w, jnp.float32), S((v,), jnp.float32),
            S((n,), jnp.int32))


def _mib(x):
    return "–" if x is None else f"{x / 2**20:,.0f}"


def memory(size, chunks=CHUNKS, layouts=True):
    n, d, v = size
    rows = []
    cases = [("materialised `nll(logits=F @ W + b)`", materialised, None, "dv")]
    cases += [("`nll_from_features`", chunked(c), c, "dv") for c in chunks]
    if layouts:
        cases += [("`nll_from_features`, (V, d), `vocab_axis=0`", chunked(None, 0), None, "vd")]
    for name, f, chunk, layout in cases:
        specs = _specs(n, d, v, layout)
        val = _measure.compile_jax(_value(f), *specs)
        vg = _measure.compile_jax(_vg(f), *specs)
        shown = chunk or (nllax._features._default_chunk(n, v) if f is not materialised else None)
        rows.append((name, shown, val.temp_bytes, vg.temp_bytes, vg.compile_s))
        print(f"memory {name} chunk={shown}: value {_mib(val.temp_bytes)} MiB, "
              f"v&g {_mib(vg.temp_bytes)} MiB", flush=True)
    return rows


def _data(n, d, v, seed=0):
    k = jax.random.split(jax.random.key(seed), 4)
    F = jax.random.normal(k[0], (n, d), jnp.float32)
    W = jax.random.normal(k[1], (d, v), jnp.float32) / np.sqrt(d)
    b = 0.1 * jax.random.normal(k[2], (v,), jnp.float32)
    y = jax.random.randint(k[3], (n,), 0, v)
    return F, W, b, y


def timing(size, budget_s):
    n, d, v = size
    F, W, b, y = _data(n, d, v)
    mat_vg, chk_vg = (jax.jit(_vg(f)) for f in (materialised, chunked()))
    mat_v, chk_v = (jax.jit(_value(f)) for f in (materialised, chunked()))
    # the same numbers? (value: relative difference; gradients: worst relative entry
    # difference, scaled by each gradient's largest entry)
    (vm, gm), (vc, gc) = mat_vg(F, W, b, y), chk_vg(F, W, b, y)
    value_rel = abs(float(vc) - float(vm)) / abs(float(vm))
    grad_rel = max(float(jnp.max(jnp.abs(a - c)) / jnp.max(jnp.abs(a)))
                   for a, c in zip(gm, gc, strict=True))
    del gm, gc
    t_vg = _measure.time_round_robin(
        [lambda: mat_vg(F, W, b, y), lambda: chk_vg(F, W, b, y)], budget_s=budget_s)
    t_v = _measure.time_round_robin(
        [lambda: mat_v(F, W, b, y), lambda: chk_v(F, W, b, y)], budget_s=budget_s)
    print(f"time {size}: v&g {t_vg[0].ms()} vs {t_vg[1].ms()} ms, "
          f"ratio {t_vg[1].median / t_vg[0].median:.2f}", flush=True)
    return dict(size=size, t_vg=t_vg, t_v=t_v, value_rel=value_rel, grad_rel=grad_rel,
                chunk=nllax._features._default_chunk(n, v))


def render(env, mem_rows, mem_size, time_rows) -> str:
    n, d, v = mem_size
    mat = mem_rows[0]
    out = [
        "# Vocabulary-sized cross entropy: `nllax.categorical.nll_from_features`",
        "",
        "Generated by `bench/features.py`; do not edit by hand. The chunked NLL computes "
        "each vocabulary chunk's logits, folds them into an online log-sum-exp and drops "
        "them; its custom VJP recomputes them chunk by chunk (see `src/nllax/_features.py`). "
        "The materialised version is `nllax.categorical.nll(labels, logits=features @ "
        "classifier + bias)`. float32 throughout.",
        "",
        "## Machine",
        "",
        f"- date: {env['date']}; command: `{env['command']}`; total {env['total_s']:.0f} s",
        f"- CPU: {env['cpu']}, {env['cores']} cores, {env['memory']} RAM; {env['os']}",
        f"- JAX devices: {env['devices']}; XLA_FLAGS: `{env['xla_flags']}`",
        f"- load average at start: {env['load_start']}; at end: {env['load_end']}",
        f"- Python {env['python']}; nllax {nllax.__version__}, jax {jax.__version__}, "
        f"numpy {np.__version__}",
        "",
        f"## Compiled temporaries at batch {n}, d {d}, V {v}",
        "",
        "`jax.jit(f).lower(...).compile().memory_analysis().temp_size_in_bytes`, MiB "
        "(compiled only). v&g: `jax.value_and_grad` with respect to features, classifier "
        f"and bias. For scale: the logits alone are {n * v * 4 / 2**20:,.0f} MiB; the "
        f"gradient outputs (same size as the inputs) are "
        f"{(n * d + d * v + v) * 4 / 2**20:,.0f} MiB and are not temporaries.",
        "",
        "| implementation | chunk | value temps | v&g temps | v&g temps / materialised "
        "| v&g compile s |",
        "|---|---|---|---|---|---|",
    ]
    for i, (name, chunk, tv, tg, cs) in enumerate(mem_rows):
        frac = "1" if i == 0 else (
            "–" if tg is None or not mat[3] else f"1/{mat[3] / max(tg, 1):.0f}")
        out.append(f"| {name} | {chunk or '–'} | {_mib(tv)} | {_mib(tg)} | {frac} | {cs:.1f} |")
    default = mem_rows[1]
    ok = None if default[3] is None or mat[3] is None else default[3] * 16 <= mat[3]
    out += ["", f"**Target** (v&g temporaries of the default chunking at most 1/16 of the "
            f"materialised version's): "
            f"{'met' if ok else 'MISSED' if ok is not None else 'not measured'} "
            f"({_mib(default[3])} MiB against {_mib(mat[3])} MiB)."]
    out += [
        "",
        "## Time for value and gradient",
        "",
        "Median [min–max] ms over repeated calls after warm-up, the two implementations "
        "timed round-robin in this process (`bench/_measure.py`). Sizes where the "
        "materialised version fits beside the other jobs of the shared machine. "
        "**ratio** = chunked / materialised median. **same numbers**: relative "
        "difference of the values, and the largest entry difference of the three "
        "gradients relative to each gradient's largest entry.",
        "",
        "| batch × d × V | chunk | materialised v&g | chunked v&g | ratio | materialised "
        "value | chunked value | ratio | same numbers (value, grads) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for r in time_rows:
        n_, d_, v_ = r["size"]
        rv = r["t_vg"][1].median / r["t_vg"][0].median
        rval = r["t_v"][1].median / r["t_v"][0].median
        worst = max(worst, rv)
        out.append(
            f"| {n_} × {d_} × {v_} | {r['chunk']} | {r['t_vg'][0].ms()} | {r['t_vg'][1].ms()} "
            f"| {rv:.2f} | {r['t_v'][0].ms()} | {r['t_v'][1].ms()} | {rval:.2f} "
            f"| {r['value_rel']:.1e}, {r['grad_rel']:.1e} |")
    if time_rows:
        out += ["", f"**Target** (chunked value and gradient within 1.3× of the materialised "
                f"version): {'met' if worst <= 1.3 else 'MISSED'} (worst ratio {worst:.2f})."]
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--time", type=_sizes, default=TIME_SIZES, help="BATCHxDxV,...")
    p.add_argument("--memory", type=_sizes, default=[MEMORY_SIZE], help="BATCHxDxV")
    p.add_argument("--budget", type=float, default=30.0, help="seconds per timing")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    p.add_argument("--out", type=pathlib.Path, default=HERE / "FEATURES.md")
    args = p.parse_args(argv)
    if args.quick:
        args.time, args.memory, args.budget = [(64, 16, 1000)], [(256, 16, 4096)], 0.2
        _measure.LIMITS.update(warmup=1, min_repeats=2, max_repeats=3)
    t0 = time.perf_counter()
    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/features.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:]),
        "cpu": _cpu(), "cores": os.cpu_count(), "memory": _mem(), "os": platform.platform(),
        "devices": ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()),
        "xla_flags": os.environ.get("XLA_FLAGS", "unset"),
        "python": sys.version.split()[0], "load_start": _load(),
    }
    mem_rows = memory(args.memory[0], [None], False) if args.quick else memory(args.memory[0])
    time_rows = [timing(s, args.budget) for s in args.time]
    env["load_end"], env["total_s"] = _load(), time.perf_counter() - t0
    args.out.write_text(render(env, mem_rows, args.memory[0], time_rows))
    print(f"wrote {args.out}")


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem() -> str:
    try:
        with open("/proc/meminfo") as f:
            return f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


if __name__ == "__main__":
    main()
