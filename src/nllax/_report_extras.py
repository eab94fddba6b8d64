r"""The report's extras: persistent compilation cache, compile timing, figure and HTML page.

Used by :mod:`nllax._cli` only. Nothing here runs on ``import nllax``.

**The persistent compilation cache.** Most of a cold ``nllax report`` is XLA compiling the
fit loops and the measurements (one program per equivalence group and device); the
numbers themselves take well under a second. ``nllax report`` therefore keeps JAX's
persistent compilation cache in the user's cache directory, by default
``$NLLAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nllax/jax``, else ``~/.cache/nllax/jax``,
and a second run loads the compiled programs instead of compiling them. It is on for the
command only: :func:`persistent_cache` sets JAX's cache options for the duration of the
command and restores them afterwards, and importing the library never touches them.
``--no-cache`` turns it off, ``--cache-dir DIR`` moves it. The cache is trusted code
(JAX's warning): keep it in a directory only you can write to. The report's own programs
go one step further (:mod:`nllax._report_programs`): kept compiled in ``DIR/programs``,
they are loaded without being traced or lowered again.

**The figure** (``--plot FILE.png``, matplotlib imported only then): one panel per
equivalence. The predictions of the row's embedded problem (at the loss's fitted
coefficients) are moved along one seeded random direction, ``pred + t d`` for
``t`` in [-2, 2]; the panel draws the NLL and ``a * loss + b`` against ``t`` (one curve on
the other when the identity holds) and, on the right axis, the gradient ratio
``(dNLL/dt) / (dloss/dt)`` divided by the table's ``a`` (1 when the gradients are
proportional with the predicted constant; points where ``dloss/dt`` is within rounding
of 0 are left out, the ratio being 0/0 there).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import pathlib
from typing import Any, Iterator

import numpy as np

SWEEP = 41  # points per curve


# ----------------------------------------------------------------------------- cache


def default_cache_dir() -> pathlib.Path:
    """``$NLLAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nllax/jax``, else ``~/.cache/nllax/jax``."""
    env = os.environ.get("NLLAX_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "nllax" / "jax"


@contextlib.contextmanager
def persistent_cache(path: str | os.PathLike | None) -> Iterator[str | None]:
    """JAX's persistent compilation cache at ``path`` for the ``with`` block (``None``:
    no change); every program is cached, however fast it compiled (JAX's default
    threshold, 1 s, would skip nearly all of the report's). The previous settings are
    restored on exit, and JAX's cache object is reset both ways so that the directory in
    force is the one used."""
    if path is None:
        yield None
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    path = pathlib.Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {k: getattr(jax.config, k) for k in names}
    cc.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    try:
        yield str(path)
    finally:
        for k, v in saved.items():
            jax.config.update(k, v)
        cc.reset_cache()


_COMPILE_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    # XLA's compile, or the load from the persistent cache on a hit
    "/jax/core/compile/backend_compile_duration": "backend_s",
}
_CACHE_EVENTS = {"/jax/compilation_cache/cache_hits": "cache_hits",
                 "/jax/compilation_cache/cache_misses": "cache_misses"}


@contextlib.contextmanager
def compile_timer() -> Iterator[dict[str, float]]:
    """Sums JAX's own compile-time events (``jax.monitoring``) during the block: tracing,
    lowering, backend compilation (or loading from the persistent cache), the number of
    programs compiled and the persistent cache's hits and misses."""
    import jax

    out = {"trace_s": 0.0, "lower_s": 0.0, "backend_s": 0.0, "programs": 0,
           "cache_hits": 0, "cache_misses": 0}

    def on_duration(event, duration, **kw):
        key = _COMPILE_EVENTS.get(event)
        if key is not None:
            out[key] += float(duration)
            if key == "backend_s":
                out["programs"] += 1

    def on_event(event, **kw):
        key = _CACHE_EVENTS.get(event)
        if key is not None:
            out[key] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield out
    finally:
        _unregister(jax.monitoring, on_duration, on_event)


def _unregister(mon, on_duration, on_event) -> None:
    # getattr: a JAX without the unregister functions keeps the (inert) listeners
    for name, listener in (("unregister_event_duration_listener", on_duration),
                           ("unregister_event_listener", on_event)):
        fn = getattr(mon, name, None)
        if fn is not None:
            with contextlib.suppress(Exception):
                fn(listener)


# ----------------------------------------------------------------------------- curves


def sweep_curves(report: dict[str, Any], dtype: str) -> list[dict[str, Any]]:
    """One entry per equivalence of the report (its first device's rows): ``t``, the NLL,
    ``a * loss + b`` and the gradient ratio over ``a`` along a seeded direction; or the
    reason there is nothing to draw."""
    import jax
    import jax.numpy as jnp

    import nllax
    from nllax import _cli

    h = report["header"]
    first = h["devices"][0]["name"] if h["devices"] else None
    rows = [r for r in report["rows"] if r["device"] == first]
    dt = jnp.dtype(dtype)
    out = []
    for r in rows:
        name = r["equivalence"]
        entry = {"equivalence": name, "likelihood": r.get("family", ""),
                 "passed": r["passed"]}
        eq = nllax.equivalences.get(name)
        try:
            prob = _cli.make_problem(name, h["n"], h["seed"], eq)
        except KeyError:
            prob = None
        if eq is None or prob is None or "theta_loss" not in r:
            entry["error"] = r.get("error", "no curves for this row")
            out.append(entry)
            continue
        noise = {k: jnp.asarray(prob.noise[k], dt) for k in eq.noise}
        X = jnp.asarray(prob.X, dt)
        y = jnp.asarray(prob.y, jnp.int32 if prob.label_dtype else dt)
        theta = jnp.asarray(np.asarray(r["theta_loss"]), dt)
        pred0 = prob.model(theta, X)
        rng = np.random.default_rng(h["seed"])
        d = jnp.asarray(rng.normal(size=pred0.shape), dt)
        t = jnp.linspace(-2.0, 2.0, SWEEP, dtype=dt)

        def point(s, pred0=pred0, d=d, y=y, noise=noise, eq=eq):
            nll_t = lambda s: eq.nll(y, pred0 + s * d, **noise)  # noqa: E731
            loss_t = lambda s: eq.loss(y, pred0 + s * d)  # noqa: E731
            a, b = eq.a(y, **noise), eq.b(y, **noise)
            return nll_t(s), a * loss_t(s) + b, jax.grad(nll_t)(s), jax.grad(loss_t)(s), a

        nll_v, affine, g_nll, g_loss, a = (
            np.asarray(v, np.float64) for v in jax.jit(jax.vmap(point))(t))
        a = float(a[0])
        # dloss/dt within rounding of 0: the ratio is 0/0 there
        small = np.abs(g_loss) <= 1e3 * np.finfo(dt).eps * (np.abs(g_loss).max() + 1e-300)
        ratio = np.where(small, np.nan, g_nll / np.where(small, 1.0, g_loss)) / a
        entry.update(t=np.asarray(t, np.float64), nll=nll_v, affine=affine,
                     ratio_over_a=ratio, a=a)
        out.append(entry)
    return out


# ----------------------------------------------------------------------------- figure


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SystemExit(
            "nllax report: --plot and --html need matplotlib, which is not a dependency of "
            "nllax: pip install matplotlib") from None
    return Figure  # used without pyplot: no backend chosen, no global state touched


def figure_png(curves: list[dict[str, Any]], title: str = "") -> bytes:
    """The figure as PNG bytes: one panel per entry of ``curves``. The PNG's ``nllax
    panels`` text field lists the panels' equivalences, in order."""
    Figure = _figure_class()
    k = max(len(curves), 1)
    ncols = min(4, k)
    nrows = -(-k // ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.7 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    for ax, c in zip(axes.flat, curves):
        ax.set_title(f"{c['equivalence']}\n{c['likelihood']}", fontsize=8)
        ax.tick_params(labelsize=6)
        if "t" not in c:
            ax.text(0.5, 0.5, c.get("error", "-")[:60], ha="center", va="center",
                    fontsize=6, wrap=True, transform=ax.transAxes)
            continue
        ax.plot(c["t"], c["nll"], "-", color="C0", lw=1.5, label="NLL")
        ax.plot(c["t"], c["affine"], ".", color="C1", ms=3, label="a*loss+b")
        ax.set_xlabel("t (pred + t d)", fontsize=7)
        rax = ax.twinx()
        rax.plot(c["t"], c["ratio_over_a"], "-", color="C2", lw=0.8)
        rax.set_ylim(0.9, 1.1)
        rax.tick_params(labelsize=6, colors="C2")
        rax.set_ylabel("grad ratio / a", fontsize=7, color="C2")
        ax.legend(fontsize=6, loc="upper center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80,
                metadata={"nllax panels": ",".join(c["equivalence"] for c in curves)})
    return buf.getvalue()


# ----------------------------------------------------------------------------- page


def html_page(report: dict[str, Any], table_text: str, png: bytes) -> str:
    """A self-contained page: the header, the rows as an HTML table, the figure inline."""
    h = report["header"]
    cols = [("equivalence", "equivalence"), ("likelihood", "family"), ("formula", "formula"),
            ("device", "device"), ("identity miss", "identity_rel_error"),
            ("grad ratio", "ratio_measured"), ("predicted a", "ratio_predicted"),
            ("theta_hat diff", "theta_rel_diff"), ("result", "passed")]

    def cell(r, key):
        v = r.get(key)
        if key == "passed":
            return "pass" if v else "FAIL" + (f" ({html.escape(r['error'])})" if "error" in r
                                              else "")
        if isinstance(v, float):
            return f"{v:.6g}" if key.startswith("ratio") else f"{v:.1e}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in cols)
    body = "\n".join(
        "<tr class='{}'>{}</tr>".format(
            "pass" if r["passed"] else "fail",
            "".join(f"<td>{cell(r, k)}</td>" for _, k in cols))
        for r in report["rows"])
    img = base64.b64encode(png).decode("ascii")
    verdict = "ALL PASS" if report["passed"] else "FAILED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nllax report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:90%}} tr.fail{{background:#fdd}}
pre{{background:#f6f6f6;padding:1em;font-size:80%}}</style></head>
<body><h1>nllax report: NLL = a &middot; loss + b ({verdict})</h1>
<p>dtype {html.escape(h['dtype'])}, n = {h['n']}, seed {h['seed']}, backend
{html.escape(h['backend'])}, devices {html.escape(', '.join(d['name'] for d in h['devices']))}</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<h2>NLL against a &middot; loss + b, and the gradient ratio</h2>
<img alt="one panel per equivalence" src="data:image/png;base64,{img}">
<h2>The report as printed</h2>
<pre>{html.escape(table_text)}</pre>
</body></html>
"""


# ----------------------------------------------------------------------------- options


def require_matplotlib(parser) -> None:
    """A usage error (exit 2) before any work when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        parser.error("--plot and --html need matplotlib, which is not a dependency of nllax "
                     "(pip install matplotlib)")


def check_writable(path: str, flag: str, parser) -> None:
    """A usage error (exit 2) before any work when ``path``'s folder does not exist."""
    folder = pathlib.Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        parser.error(f"{flag} {path}: no folder {folder}")
