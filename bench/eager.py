"""Eager family calls: one compiled program (nllax._family._eager) against op by op.

Outside any transformation a family function runs as one jitted program, cached per
family, function and static arguments. Before, an eager call dispatched every primitive
of the density on its own (each compiled on first use, per shape). This compares, in one
process, round-robin (7 rounds of 50 calls, medians), the per-call time of the public
eager call and of the same body called op by op (``nllax._family._call``, which is what
the public function ran before), and, each in a fresh process, the first call (compile
included; the order of the two alternates between two processes per family).

Usage::

    PYTHONPATH=src python bench/eager.py            # prints a Markdown table
    PYTHONPATH=src python bench/eager.py --only verify.gradient_ratio   # some rows
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

N = 1000
CASES = {
    "gaussian": ("gaussian", lambda y, p: dict(y=y, loc=p, scale=np.ones_like(p))),
    "poisson": ("poisson", lambda y, p: dict(y=np.round(np.abs(y) * 3), log_rate=p)),
    "student_t": ("student_t", lambda y, p: dict(y=y, loc=p, scale=np.ones_like(p), df=4.0)),
    "tweedie": ("tweedie", lambda y, p: dict(y=np.abs(y), log_mean=p, dispersion=1.0,
                                             power=1.5)),
}

# public entry points other than the family functions (nllax._eager_calls)
ENTRY_CASES = ("verify.gradient_ratio", "verify.assert_proportional", "Equivalence.check sse",
               "Equivalence.check huber")


def _setup_entry(name):
    """The public entry point (one cached program, nllax._eager_calls) and its body called
    as the entry point called it before (op by op, with the jitted comparison)."""
    import jax.numpy as jnp

    import nllax
    from nllax import _equivalences, verify

    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=N)), jnp.asarray(rng.normal(size=N))
    w = jnp.zeros(2)

    def nll(p, x, y):
        return nllax.gaussian.nll(y, p[0] + p[1] * x, 2.0)

    def sse(p, x, y):
        return nllax.losses.sse(y, p[0] + p[1] * x)

    if name == "verify.gradient_ratio":
        return (lambda: nllax.verify.gradient_ratio(nll, sse, w, x, y).ratio,
                lambda: verify._grads_and_ratio(nll, sse, w, x, y)[2].ratio)
    if name == "verify.assert_proportional":
        return (lambda: nllax.verify.assert_proportional(nll, sse, w, x, y, ratio=0.125).ratio,
                lambda: verify._grads_and_ratio(nll, sse, w, x, y)[2].ratio)
    eq = nllax.equivalences[name.split()[-1]]
    noise = {k: 1.5 for k in eq.noise}
    return (lambda: eq.check(y, x, **noise).nll,
            lambda: _equivalences._check(eq, y, x, None, None, noise)[0])


def _setup(name):
    if name in ENTRY_CASES:
        return _setup_entry(name)
    import jax.numpy as jnp

    from nllax import _family as F

    fam_name, make = CASES[name]
    fam = F.FAMILY_OBJECTS[fam_name]
    rng = np.random.default_rng(0)
    kw = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v)
          for k, v in make(rng.normal(size=N), 0.1 * rng.normal(size=N)).items()}
    data_name = fam.data.name
    kw[data_name] = kw.pop("y")
    sign = -1 if fam.sign == -1 else 1
    module = F.FAMILIES[fam_name]

    def eager():
        return module.nll(**kw)

    def op_by_op():
        return F._call(fam, "nll", sign, dict(kw))

    return eager, op_by_op


def _first(name, which):
    eager, op = _setup(name)
    f = eager if which == "eager" else op
    t = time.perf_counter()
    f().block_until_ready()
    return time.perf_counter() - t


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--first":
        print(_first(sys.argv[2], sys.argv[3]))
        return
    names = [*CASES, *ENTRY_CASES]
    if len(sys.argv) > 2 and sys.argv[1] == "--only":  # --only NAME... (a subset of rows)
        names = sys.argv[2:]
    rows = []
    for name in names:
        eager, op = _setup(name)
        np.testing.assert_allclose(float(eager()), float(op()), rtol=1e-6)
        times = {"eager": [], "op": []}
        for r in range(7):
            order = [("eager", eager), ("op", op)][:: 1 if r % 2 == 0 else -1]
            for key, f in order:
                t = time.perf_counter()
                for _ in range(50):
                    f().block_until_ready()
                times[key].append((time.perf_counter() - t) / 50)
        first = {}
        for which in ("eager", "op"):
            out = subprocess.run([sys.executable, __file__, "--first", name, which],
                                 capture_output=True, text=True, check=True,
                                 env=dict(os.environ, JAX_COMPILATION_CACHE_DIR=""))
            first[which] = float(out.stdout.strip().splitlines()[-1])
        e, o = np.median(times["eager"]), np.median(times["op"])
        rows.append((name, o * 1e6, e * 1e6, o / e, first["op"], first["eager"]))
    load = os.getloadavg()[0]
    print(f"n = {N}, float32, CPU; 1-minute load {load:.1f} at the end\n")
    print("| family (nll) or entry point | op by op, per call (us) | one program, per call (us) | ratio | "
          "first call op by op (s) | first call one program (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.1f}x | {r[4]:.2f} | {r[5]:.2f} |")


if __name__ == "__main__":
    main()
