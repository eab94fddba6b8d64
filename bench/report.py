"""The markdown report: machine and versions, the tables, and the targets met or missed."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from typing import Any

import jax

import _libs
from _measure import fmt
from analysis import WHY

# Peak memory bandwidth (bytes/s) of common accelerators, for "fraction of HBM bandwidth".
HBM_PEAK = {
    "H200": 4.8e12,
    "H100 PCIe": 2.0e12,
    "H100": 3.35e12,
    "A100-SXM4-80GB": 2.039e12,
    "A100-SXM4-40GB": 1.555e12,
    "A100-PCIE-40GB": 1.555e12,
    "L4": 0.3e12,
    "T4": 0.32e12,
}

LIBS = ["jax", "jaxlib", "optax", "numpy", "scipy", "statsmodels", "sklearn", "distrax",
        "numpyro", "torch", "threadpoolctl"]


def glm_section() -> list[str]:
    """Section 6: the GLM fits of bench/GLM_quiet.md (written by `bench/glm.py` on a quiet
    machine, a separate run), one line per problem: nllax's default fit against glmax from
    beta = 0 and statsmodels; empty when the file does not exist."""
    import pathlib
    path = pathlib.Path(__file__).resolve().parent / "GLM_quiet.md"
    if not path.exists():
        return []
    text = path.read_text().splitlines()
    first = next((ln for ln in text[1:] if ln.strip()), "")
    out = ["## 6. GLM fits against glmax, glum, scikit-learn, statsmodels", "",
           "Copied from `bench/GLM_quiet.md` (written by `python bench/glm.py`, its own run; "
           "the full tables, every method, the floors and the conditions are there). "
           f"{first}", "",
           "| problem | nllax default fit ms | compile s | steps | glmax (beta = 0) ms | "
           "nllax / glmax | statsmodels ms | statsmodels / nllax | agreement to optimum |",
           "|---|---|---|---|---|---|---|---|---|"]
    problem, rows = None, {}

    def flush():
        me = rows.get("nllax.fit default")
        if problem and me:
            gx, sm = rows.get("glmax IRLS (start beta = 0)"), rows.get("statsmodels GLM (IRLS)")
            ms = float(me[1])
            out.append(" | ".join([
                f"| {problem}", me[1], me[2], me[3], gx[1] if gx else "–",
                f"{ms / float(gx[1]):.2f}x" if gx else "–", sm[1] if sm else "–",
                f"{float(sm[1]) / ms:.1f}x" if sm else "–", me[7]]) + " |")

    for ln in text:
        if ln.startswith("### "):
            flush()
            problem, rows = ln[4:].strip(), {}
        elif ln.startswith("| ") and problem:
            cells = [c.strip() for c in ln.strip("|").split("|")]
            name = cells[0].split(" (GaussNewton)")[0]
            rows[name] = cells
    flush()
    return out + [""]


def core_section() -> list[str]:
    """Section 5: the family-core table of bench/CORE.md (written by `bench/core.py`, a
    separate run: every family and loss at n = 1e6 and 1e7), copied with its machine
    lines, so that RESULTS.md carries it; empty when CORE.md does not exist."""
    import pathlib
    path = pathlib.Path(__file__).resolve().parent / "CORE.md"
    if not path.exists():
        return []
    text = path.read_text().splitlines()
    keep = [ln for ln in text if ln.startswith("- machine") or ln.startswith("- wall")]
    table = []
    for ln in text:
        if ln.startswith("|"):
            table.append(ln)
        elif table:
            break
    return (["## 5. Family core: every family and loss against the fastest JAX implementation",
             "", "Copied from `bench/CORE.md` (written by `python bench/core.py`, its own run; "
             "the HLO evidence and the findings for the rows above 1.10x are there).", ""]
            + keep + [""] + table + [""])


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> str:
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        return f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _blas() -> list[str]:
    tpc = _libs.get("threadpoolctl")
    if tpc is None:
        return ["threadpoolctl not installed"]
    out = []
    for info in tpc.threadpool_info():
        out.append(
            f"{info.get('internal_api')} {info.get('version') or ''} "
            f"({os.path.basename(info.get('filepath', ''))}): kernel "
            f"{info.get('architecture', '–')}, {info.get('num_threads')} threads"
        )
    return out


def environment(argv) -> dict[str, Any]:
    import nllax

    torch = _libs.get("torch")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/run.py " + " ".join(argv),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": _mem_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "devices": ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()),
        "versions": {"nllax": nllax.__version__, **{k: _libs.version(k) for k in LIBS}},
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "load_start": loadavg(),
        "openblas_env": {k: os.environ.get(k, "unset") for k in
                         ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")},
        "xla_flags": os.environ.get("XLA_FLAGS", "unset"),
        "blas": _blas(),
    }


# ---------------------------------------------------------------------------- helpers


def _gbs(nbytes: int, t) -> float | None:
    return nbytes / t.median / 1e9 if t is not None else None


def _nbuf(temp: int | None, n: int) -> str:
    """Temporary memory in units of one n-element float32 buffer (4n bytes)."""
    if temp is None:
        return "–"
    return f"{temp / (4 * n):.2f}"


def _n(n: int) -> str:
    e = len(str(n)) - 1
    return f"1e{e}" if n == 10**e else f"{n:,}"


def _group(rows):
    out: dict[tuple, list] = {}
    for r in rows:
        out.setdefault((r.platform, r.family), []).append(r)
    return out


def _jax_competitors(rows):
    return [r for r in rows if r.library not in ("nllax", "floor", "torch") and not r.error]


def _fastest(rows, attr="vg", pred=lambda r: True):
    cands = [r for r in _jax_competitors(rows) if pred(r) and getattr(r, attr) is not None]
    return min(cands, key=lambda r: getattr(r, attr).median) if cands else None


def _row(rows, name):
    return next((r for r in rows if r.impl == name and not r.error), None)


def _ratio(a, b, attr="vg"):
    if a is None or b is None or getattr(a, attr) is None or getattr(b, attr) is None:
        return None
    return getattr(a, attr).median / getattr(b, attr).median


def _verdict(ratio, limit, strict=False):
    if ratio is None:
        return "not measured"
    ok = ratio < limit if strict else ratio <= limit
    return "**met**" if ok else "**missed**"


# ---------------------------------------------------------------------------- sections


def _eval_tables(eval_rows, hbm=None) -> list[str]:
    out = []
    for (plat, fam), rows in _group(eval_rows).items():
        layout = next(f.layout for f in _families() if f.name == fam)
        shape = "" if layout == "n" else f" (shapes: {layout})"
        out += [f"### {fam} — {plat}{shape}", ""]
        peak = HBM_PEAK_for(plat)
        head = ("| n | implementation | value ms, median [min–max] | GB/s | × floor "
                "| v&g ms, median [min–max] | GB/s | × floor | × fastest JAX v&g "
                "| compile ms value / v&g | temps (n-buffers) value / v&g | grad cos |")
        if peak:
            head = head[:-1] + " v&g % of HBM peak |"
        out += [head, "|" + "---|" * (head.count("|") - 1)]
        by_n: dict[int, list] = {}
        for r in rows:
            by_n.setdefault(r.n, []).append(r)
        for n, rs in by_n.items():
            floor = next((r for r in rs if r.library == "floor"), None)
            fast = _fastest(rs)
            for r in rs:
                if r.error:
                    out.append(f"| {_n(n)} | {r.impl} | failed: {r.error} |" + " |" * 9)
                    continue
                name = r.impl + (f" *({r.note})*" if r.note else "")
                if r.library == "nllax":
                    name = f"**{name}**"
                comp = (f"{r.compile_value_s * 1e3:.0f} / {r.compile_vg_s * 1e3:.0f}"
                        if r.compile_value_s is not None else "eager")
                cells = [
                    _n(n), name, r.value.ms(), fmt(_gbs(r.bytes_read, r.value), 1),
                    fmt(_ratio(r, floor, "value")), r.vg.ms(), fmt(_gbs(r.bytes_read, r.vg), 1),
                    fmt(_ratio(r, floor, "vg")), fmt(_ratio(r, fast, "vg")), comp,
                    f"{_nbuf(r.temp_value, n)} / {_nbuf(r.temp_vg, n)}",
                    fmt(r.grad_cos, 6) if r.grad_cos is not None else "–",
                ]
                if peak:
                    cells.append(fmt(100 * _gbs(r.bytes_read, r.vg) * 1e9 / peak, 1))
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out


def HBM_PEAK_for(plat: str) -> float | None:
    if plat == "cpu":
        return None
    kind = next((d.device_kind for d in jax.devices() if d.platform == plat), "")
    for key, val in HBM_PEAK.items():  # most specific names first in the table
        if key in kind:
            return val
    return None


def _families():
    import evaluation

    return evaluation.FAMILIES


# The hand-written jnp version that computes the same quantity as each nllax function.
HAND = {
    "nllax.gaussian.nll": "hand-written jnp",
    "nllax.laplace.nll": "hand-written jnp",
    "nllax.bernoulli.nll": "hand-written jnp softplus(z) - y z",
    "nllax.categorical.nll": "hand-written jnp logsumexp",
    "nllax.poisson.nll": "hand-written jnp + gammaln(k+1)",
    "nllax.losses.poisson": "hand-written jnp exp(η) - kη",
}


def _overhead(fam_name, rows, name, nmax):
    hand, me = _row(rows, HAND.get(name, "")), _row(rows, name)
    rv, rg = _ratio(me, hand, "value"), _ratio(me, hand, "vg")
    worst = max([x for x in (rv, rg) if x is not None], default=None)
    return (
        f"{fam_name}: `{name}` no overhead vs `{HAND.get(name)}` (weights/where unused; ≤ 1.10×)",
        f"value {fmt(rv)}×, v&g {fmt(rg)}× (temps {_nbuf(me.temp_value if me else None, nmax)}"
        f" / {_nbuf(me.temp_vg if me else None, nmax)} vs "
        f"{_nbuf(hand.temp_value if hand else None, nmax)} / "
        f"{_nbuf(hand.temp_vg if hand else None, nmax)} n-buffers)",
        _verdict(worst, 1.10), f"overhead:{name}",
    )


def targets(eval_rows, fit_rows) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict, why-key) for every target, at the largest n on CPU."""
    out = []
    groups = _group([r for r in eval_rows if r.platform == "cpu"])
    nmax = max((r.n for r in eval_rows), default=None)

    def at_nmax(fam):
        return [r for r in groups.get(("cpu", fam), []) if r.n == nmax]

    for fam in _families():
        if fam.name.startswith("Gaussian with"):
            continue
        rows = at_nmax(fam.name)
        if not rows:
            continue
        cands = [fam.primary] + (["nllax.losses.poisson"] if fam.name.startswith("Poisson") else [])
        for name in cands:
            me = _row(rows, name)
            fast = _fastest(rows)
            r = _ratio(me, fast)
            out.append((
                f"{fam.name}: `{name}` v&g ≤ 1.10× fastest JAX (n = {_n(nmax)})",
                f"{fmt(r)}× (fastest: {fast.impl if fast else '–'})",
                _verdict(r, 1.10), f"vg:{name}",
            ))
            if name == "nllax.poisson.nll":
                full = _fastest(rows, pred=lambda x: "full NLL" in x.note)
                r2 = _ratio(me, full)
                out.append((
                    f"{fam.name}: `{name}` v&g vs fastest full-NLL JAX form (with log k!)",
                    f"{fmt(r2)}× (fastest: {full.impl if full else '–'})",
                    _verdict(r2, 1.10), f"vg:{name}",
                ))
        if fam.name.startswith("Bernoulli"):
            me, opt = _row(rows, fam.primary), _row(rows, "optax sigmoid_binary_cross_entropy")
            r = _ratio(me, opt)
            out.append((f"Bernoulli: `{fam.primary}` v&g clearly faster than optax BCE (< 0.9×)",
                        f"{fmt(r)}×", _verdict(r, 0.9, strict=True), "bce_vs_optax"))
        for name in cands:
            out.append(_overhead(fam.name, rows, name, nmax))
    wrows = at_nmax("Gaussian with weights= and where=")
    if wrows:
        plain, used = _row(wrows, "nllax.gaussian.nll"), _row(wrows, "nllax.gaussian.nll(weights=, where=)")
        hw = next((x for x in wrows if x.library == "jax.numpy"), None)
        out.append((
            "Gaussian: weights= and where= used, vs a hand-written weighted/masked jnp (≤ 1.10×)",
            f"v&g {fmt(_ratio(used, hw))}× (and {fmt(_ratio(used, plain))}× the unweighted nllax call)",
            _verdict(_ratio(used, hw), 1.10), "weights_used",
        ))
    for model in fitting_models(fit_rows):
        rows = [r for r in fit_rows if r.model == model and not r.error]
        me = next((r for r in rows if r.method.startswith("nllax.fit (default")), None)
        sm = next((r for r in rows if r.method.startswith("statsmodels")), None)
        if me is None or sm is None:
            continue
        s_def = sm.time.median / me.time.median
        s_one = (sm.time_1thread.median / me.time_1thread.median
                 if sm.time_1thread and me.time_1thread else None)
        ok = s_def >= 10 and (s_one is None or s_one >= 10) and (me.agreement or 0) <= 1e-5
        out.append((
            f"{model} regression: `nllax.fit` ≥ 10× faster than statsmodels, |Δθ| ≤ 1e-5",
            f"{s_def:.1f}× (default BLAS threads), {fmt(s_one, 1)}× (1 BLAS thread); "
            f"|Δθ| = {me.agreement:.1e}",
            "**met**" if ok else "**missed**", f"fit_speed:{model}",
        ))
        lb = next((r for r in rows if r.method == "nllax.fit(optimizer=optax.lbfgs())"), None)
        if lb is not None and lb.time is not None:
            l_one = (sm.time_1thread.median / lb.time_1thread.median
                     if sm.time_1thread and lb.time_1thread else None)
            out.append((
                f"{model} regression (for comparison): `nllax.fit(optimizer=optax.lbfgs())` "
                "vs statsmodels",
                f"{sm.time.median / lb.time.median:.1f}× (default BLAS threads), "
                f"{fmt(l_one, 1)}× (1 BLAS thread); |Δθ| = {lb.agreement:.1e}",
                "(not a target)", "",
            ))
        out.append((
            f"{model} regression: `nllax.fit` compile < 1 s",
            f"{me.compile_s:.2f} s", _verdict(me.compile_s, 1.0, strict=True),
            f"fit_compile:{model}",
        ))
    return out


def fitting_models(fit_rows):
    seen = []
    for r in fit_rows:
        if r.model not in seen:
            seen.append(r.model)
    return seen


def _fit_tables(fit_rows, n, d) -> list[str]:
    out = []
    for model in fitting_models(fit_rows):
        rows = [r for r in fit_rows if r.model == model]
        me = next((r for r in rows if r.method.startswith("nllax.fit (default") and not r.error), None)
        out += [f"### {model} regression (n = {n:,}, d = {d} + intercept, float64)", "",
                "| method | time ms, default BLAS threads | time ms, 1 BLAS thread "
                "| compile s | iterations | status | max abs Δθ vs statsmodels "
                "| nllax.fit speed-up (default / 1 thread) |",
                "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r.error:
                out.append(f"| {r.method} | failed: {r.error} | | | | | | |")
                continue
            sp = "–"
            if me is not None and r is not me and r.time and me.time:
                s1 = (r.time_1thread.median / me.time_1thread.median
                      if r.time_1thread and me.time_1thread else None)
                sp = f"{r.time.median / me.time.median:.2f}× / {fmt(s1)}×"
            out.append(
                f"| {r.method} | {r.time.ms() if r.time else '–'} "
                f"| {r.time_1thread.ms() if r.time_1thread else '–'} "
                f"| {fmt(r.compile_s)} | {r.iterations if r.iterations is not None else '–'} "
                f"| {r.status or '–'} "
                f"| {'%.1e' % r.agreement if r.agreement is not None else '–'} | {sp} |"
            )
        out.append("")
    return out


def _diag_tables(diag_rows) -> list[str]:
    import diagnose

    out = [_doc_body(diagnose.__doc__), "",
           "| implementation | mode | variant | ms, median [min–max] | × shipped "
           "| temps (n-buffers) | same result |",
           "|---|---|---|---|---|---|---|"]
    base = {}
    for r in diag_rows:
        if r.variant == "shipped":
            base[(r.impl, r.mode)] = r
        b = base.get((r.impl, r.mode))
        ratio = r.time.median / b.time.median if b is not None else None
        out.append(f"| {r.impl} | {r.mode} | {r.variant} | {r.time.ms()} | {fmt(ratio)} "
                   f"| {_nbuf(r.temp, r.n)} | {'yes' if r.same_value else '**no**'} |")
    out.append("")
    return out


def render(env, args, eval_rows, fit_rows, diag_rows=()) -> str:
    v = env["versions"]
    L = [
        "# nllax benchmarks",
        "",
        "Generated by `bench/run.py` (`make bench`); do not edit by hand — the closing note's",
        "explanations live in `bench/analysis.py`. Timings: medians with [min–max] over repeated",
        "calls after warm-up, all in one process, competitors timed round-robin (one call each",
        "per round), so that the *ratios* hold up on a busy machine even when absolute times do not.",
        "",
        "## Machine",
        "",
        f"- date: {env['date']}; command: `{env['command']}`; total {env.get('elapsed_s', 0):.0f} s",
        f"- CPU: {env['cpu']}, {env['cores']} cores, {env['memory']} RAM; {env['os']}",
        f"- JAX devices: {env['devices']}",
        f"- load average at start: {env['load_start']}; at end: {env.get('load_end', '?')}",
        f"- Python {env['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- torch intra-op threads: {env['torch_threads']}; XLA_FLAGS: `{env['xla_flags']}`",
        "- OpenBLAS environment: " + ", ".join(f"{k}={val}" for k, val in env["openblas_env"].items()),
        "- BLAS/OpenMP libraries loaded (threadpoolctl): " + "; ".join(env["blas"]),
    ]
    if env.get("missing"):
        L.append("- skipped (not installed or failed to import): " + "; ".join(
            f"`{k}` ({val})" for k, val in env["missing"].items()))
    L += [
        "",
        "## 1. Evaluation throughput",
        "",
        "Summed NLL (or the equivalent loss) of float32 data; v&g = `jax.value_and_grad` with",
        "respect to the model parameter (loc / logits / log-rate), torch = forward + `autograd.grad`",
        "(eager, `validate_args=False`). GB/s = bytes of input read (data + parameter) / median",
        "time. **× floor** = time / time of a jitted pass that only reads the same bytes",
        "(`sum(data) + sum(param)`; its own v&g row also writes the n-sized gradient).",
        "**temps** = `compiled.memory_analysis().temp_size_in_bytes` in units of one n-element",
        "float32 buffer (4n bytes; for Categorical n counts logits): every extra n-buffer is a",
        "write and a read of 4n bytes. **grad cos** = cosine between this gradient and nllax's",
        "(1 = the same direction: every row computes the same NLL up to a positive factor).",
        "",
    ]
    L += _eval_tables(eval_rows) if eval_rows else ["(not run: `--only fit`)", ""]
    L += ["## 2. Fitting", "", _fit_doc(), ""]
    L += _fit_tables(fit_rows, args.fit_n, args.fit_d) if fit_rows else ["(not run: `--only eval`)", ""]
    plats = sorted({r.platform for r in eval_rows})
    L += ["## 3. GPU", ""]
    if any(p != "cpu" for p in plats):
        L += ["The evaluation tables above include the accelerator's rows (same code, data on the",
              "device; the last column is the fraction of the device's peak HBM bandwidth).", ""]
    else:
        L += [f"No GPU row exists yet: this run saw only {env['devices']}. On a machine with a",
              "GPU, `bench/run.py` adds the evaluation tables for it (same code, data placed on",
              "the device) with the fraction of HBM peak bandwidth reached.", ""]
    if diag_rows:
        L += [f"## 4. Diagnosis: the per-observation validity poison (n = {_n(diag_rows[0].n)}, CPU)",
              ""] + _diag_tables(diag_rows)
    L += core_section()
    L += glm_section()
    L += ["## Targets (at the largest n, on CPU)", "",
          "| target | measured | verdict |", "|---|---|---|"]
    tg = targets(eval_rows, fit_rows)
    for t, m, verdict, _ in tg:
        L.append(f"| {t} | {m} | {verdict} |")
    L += ["", "## Closing note: why each missed target is missed", ""]
    missed = [(t, m, k) for t, m, verdict, k in tg if "missed" in verdict]
    if not missed:
        L.append("Every target was met in this run.")
    said: dict[str, str] = {}  # explanation -> the first target that gave it
    for t, m, key in missed:
        why = WHY.get(key) or WHY.get(key.split(":")[0]) or "no explanation recorded yet"
        if why in said:
            L.append(f"- **{t}** ({m}): same cause as *{said[why]}* above.")
            continue
        said[why] = t
        L.append(f"- **{t}** ({m}): {why}")
    L += ["", "## Reproduce", "",
          "```bash",
          "make bench                      # installs the `bench` extra into .venv, runs everything",
          "python bench/run.py --quick     # seconds: the smoke run of the test suite",
          "python bench/run.py --sizes 1e5,1e6 --fit-n 20000 --out /tmp/r.md",
          "```", ""]
    return "\n".join(L)


def _doc_body(doc: str) -> str:
    """A module docstring without its summary line, as markdown paragraphs."""
    paras = doc.strip().split("\n\n")[1:]
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paras)


def _fit_doc() -> str:
    import fitting

    return _doc_body(fitting.__doc__)
