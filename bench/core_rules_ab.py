"""Same process, round-robin: the rows of the speed table (bench/core.py) with the code of
main at 3d76396 ("before") and the working tree's ("after"), next to their competitors;
float32, value and gradient in the model's parameter, with the HLO pass counts.

What "before" swaps in while its program is traced (each swap reproduces the old graph):

* the count rule's reduction ``sum((k - floor k) + (|k| - k)) == 0`` (now ``ceil(k) - k``:
  the per-element rule of the gradient's pass also takes ``floor(k)``, XLA's CSE merged the
  two, and the shared floor was written out as an n-sized buffer);
* the gamma ``ratio_deviance`` with ``where(mid, x, 1)`` for the series' input, and the
  deviance's factor 2 (``losses.gamma_deviance``) and the rest of the log-density
  (``gamma.nll``) after the final select;
* Loader's ``bd0`` with the branch conditions computed from the quotients ``v`` and
  ``k / lam`` (each divide then had several users and was written out as a buffer).

    PYTHONPATH=src python bench/core_rules_ab.py [n=1e6] [rows, comma-separated] [budget_s=4]
    NLLAX_AB_SWAPS=bd0 PYTHONPATH=src python bench/core_rules_ab.py ...   # one change only
"""
from __future__ import annotations

import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import _hlo  # noqa: E402
import _measure  # noqa: E402
import core  # noqa: E402
import nllax.gamma as G  # noqa: E402
from nllax import _family as F  # noqa: E402
from nllax import _math as M  # noqa: E402

_NEW_RD = G.ratio_deviance


def _old_count_whole(k):
    return jnp.sum((k - jnp.floor(k)) + (jnp.abs(k) - k)) == 0


def _old_ratio_deviance(x, log_x, times=1.0, finish=None):
    mid = (x >= 0.5) & (x <= 2.0)
    xs = jnp.where(mid, x, jnp.ones((), x.dtype))
    d = 1.0 - xs
    v = d / (1.0 + xs)
    v2 = v * v
    poly = jnp.zeros((), x.dtype)
    for j in range(G._RATIO_TERMS[jnp.dtype(x.dtype).itemsize], 0, -1):
        poly = poly * v2 + 1.0 / (2 * j + 1)
    series = d * v + 2.0 * v * v2 * poly
    out = jnp.where(mid, series, (x - 1.0) - log_x)
    out = out if times == 1.0 else times * out
    return out if finish is None else finish(out)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))  # normwise: 1 - x cancels


def _old_bd0(k, lam, log_lam, times=1.0):
    d = k - lam
    total = k + lam
    v = d / jnp.where(total > 0, total, jnp.ones((), k.dtype))
    near = jnp.abs(v) < 0.1
    vs = jnp.where(near, v, jnp.zeros((), v.dtype))
    v2 = vs * vs
    poly = jnp.zeros((), v.dtype)
    for j in range(9, 0, -1):
        poly = poly * v2 + 1.0 / (2 * j + 1)
    series = d * vs + 2.0 * k * vs * v2 * poly
    k_pos = jnp.where(k > 0, k, jnp.ones((), k.dtype))
    ratio = k_pos / jnp.where(lam > 0, lam, jnp.ones((), lam.dtype))
    tiny = jnp.finfo(k.dtype).tiny
    log_ratio = jnp.where((lam > 0) & (ratio > tiny) & jnp.isfinite(ratio),
                          jnp.log(jnp.clip(ratio, tiny)), jnp.log(k_pos) - log_lam)
    direct = jnp.where(k > 0, k * log_ratio, 0.0) + lam - k
    if times != 1.0:
        series, direct = times * series, times * direct
    return jnp.where(near, series, direct)


# which of the three changes "before" undoes (NLLAX_AB_SWAPS=count,bd0 for two of them)
_SWAPS = set(os.environ.get("NLLAX_AB_SWAPS", "count,gamma,bd0").split(","))


@contextlib.contextmanager
def before():
    new_whole, new_bd0 = F.COUNTS.whole, M.bd0
    if "count" in _SWAPS:
        object.__setattr__(F.COUNTS, "whole", _old_count_whole)
    if "gamma" in _SWAPS:
        G.ratio_deviance = _old_ratio_deviance
    if "bd0" in _SWAPS:
        M.bd0 = _old_bd0
    try:
        yield
    finally:
        object.__setattr__(F.COUNTS, "whole", new_whole)
        G.ratio_deviance = _NEW_RD
        M.bd0 = new_bd0


def main():
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10**6
    names = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0
    _measure.LIMITS.update(warmup=1, min_repeats=7, max_repeats=60)
    print(f"n = {n:.0e}; {core._machine()}", flush=True)
    for row in core.load_rows(names):
        d = {k: jax.device_put(v) for k, v in row.make(n, np.random.default_rng(0)).items()}
        p, rest = d["p"], {k: v for k, v in d.items() if k != "p"}
        compiled = {"after": _measure.compile_jax(core._vg(row.nllax), p, rest)}
        with before():
            compiled["before"] = _measure.compile_jax(core._vg(row.nllax), p, rest)
        for k, fn in row.competitors.items():
            compiled[k] = _measure.compile_jax(core._vg(fn), p, rest)
        vals = {k: c.call(p, rest) for k, c in compiled.items()}
        v0, v1 = float(vals["before"][0]), float(vals["after"][0])
        eps = float(jnp.finfo(p.dtype).eps)
        grad = _rel(vals["before"][1], vals["after"][1])
        same = (f"value rel. diff {abs(v1 - v0) / abs(v0):.1e} (the sum's order), gradient "
                f"max |diff| / max |grad| {grad:.1e} (eps {eps:.1e}: the fusion decides "
                f"where an FMA contracts)")
        ts = _measure.time_round_robin([lambda c=c: c.call(p, rest) for c in compiled.values()],
                                       budget_s=budget)
        t = {k: x.median * 1e3 for k, x in zip(compiled, ts)}
        fast = min((k for k in t if k not in ("before", "after")), key=t.get, default=None)
        print(f"== {row.name}: before/after {same}; {ts[0].repeats} rounds")
        for k, c in compiled.items():
            s = _hlo.summary(c.call.as_text(), n)
            mine = fast and k in ("before", "after")
            ratio = f"  {t[k] / t[fast]:.2f}x of {fast}" if mine else ""
            print(f"   {k:34s} {t[k]:9.2f} ms  {s['passes']:2d} passes ({s['writes']} n-writes), "
                  f"temps {(c.temp_bytes or 0) / (4 * n):.2f} n{ratio}", flush=True)
    print(f"end: {core._machine()}")


if __name__ == "__main__":
    main()
