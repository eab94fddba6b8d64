"""Worst float32 errors of the student_t, cauchy and log_normal families (robust1).

For each family: the float32 log_prob against the float64 reference evaluated at the
same float32-rounded inputs, as ``max |err| / (eps32 * magnitude)`` (the unit of the
case's ``f32_ulps`` bound), over the harness's samples (n = 64, every parametrisation)
and over extreme points (student_t: df in {1e-3, 1, 30, 1e4, 1e8} x scales 1e-30..1e30).
Also the float64 relative error against the reference at the same extremes.

Run: PYTHONPATH=src:tests python bench/float32_robust1.py
"""

from __future__ import annotations

import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, "tests")
import _harness as H  # noqa: E402
from cases import CASES  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)


def _units(case, choice, data, kw):
    d32 = jnp.asarray(data, jnp.float32)
    k32 = {a: jnp.asarray(v, jnp.float32) for a, v in kw.items()}
    got = np.asarray(H.call(case, "log_prob", d32, k32), np.float64)
    d64 = np.asarray(d32, np.float64)
    with jax.enable_x64(True):
        canon = H.canonical(case, {a: np.asarray(v, np.float64) for a, v in k32.items()})
    want = case.reference(d64, **canon)
    mag = case.magnitude(d64, **canon)
    ok = np.isfinite(want)
    return np.max(np.abs(got - want)[ok] / (EPS32 * mag[ok])), np.sum(~ok)


def _extremes(name):
    """(data, canonical params) at extreme points, float64."""
    if name == "student_t":
        dfs, scales, zs = [1e-3, 1.0, 30.0, 1e4, 1e8], [1e-30, 1.0, 1e30], [-1e3, -3.0, 0.0,
                                                                           0.5, 40.0]
    else:
        dfs, scales, zs = [None], [1e-30, 1e-3, 1.0, 1e3, 1e30], [-1e8, -3.0, 0.0, 0.5, 40.0]
    rows = list(itertools.product(dfs, scales, zs))
    loc = np.full(len(rows), 0.25)
    scale = np.array([r[1] for r in rows])
    z = np.array([r[2] for r in rows])
    params = {"loc": loc, "scale": scale}
    if name == "student_t":
        params["df"] = np.array([r[0] for r in rows])
    if name == "log_normal":
        # log y within float32's range: loc + 5 tanh(z); scales of log y 1e-3..1e3
        params["scale"] = np.clip(scale, 1e-3, 1e3)
        return np.exp(loc + 5 * np.tanh(z)), params
    return loc + scale * z, params


def main():
    for name in ("student_t", "cauchy", "log_normal"):
        case = CASES[name]
        worst = 0.0
        for choice in case.parametrisations():
            data, _, kw = H.inputs(case, choice, n=64)
            u, _ = _units(case, choice, data, kw)
            worst = max(worst, u)
        y, p = _extremes(name)
        worst_x = 0.0
        # var = scale^2 of 1e-60 or 1e60 is no float32: the extremes in scale / log_scale
        for choice in case.parametrisations():
            if choice["scale"] not in ("scale", "log_scale"):
                continue
            kw = case.convert(p, choice)
            u, nonfinite = _units(case, choice, y, kw)
            worst_x = max(worst_x, u)
        with jax.enable_x64(True):
            got = np.asarray(case.module.log_prob(jnp.asarray(y), **{k: jnp.asarray(v)
                                                                    for k, v in p.items()}))
        want = case.reference(y, **p)
        rel64 = np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0))
        print(f"{name:10s} float32 worst (eps32 * magnitude): samples {worst:6.2f}, "
              f"extremes {worst_x:6.2f} (bound {case.f32_ulps}); "
              f"float64 extremes max |err| / max(|ref|, 1): {rel64:.2e}")


if __name__ == "__main__":
    main()
