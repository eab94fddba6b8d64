"""Where the time of a small default fit goes (issue 13: Poisson n=500 p=10, GaussNewton).

    PYTHONPATH=src python bench/fit_loop.py            # profile: python pieces, HLO, timings

Prints: compile seconds per program (XLA backend), the while-loop body's kernel count in
the optimised HLO (fusions and other top-level instructions of the body computation),
the Python overhead of fit() outside the compiled call, and the median time per fit
called back to back (no pause), with the number of steps.
Run with JAX_COMPILATION_CACHE_DIR unset so that every program compiles.
"""
import re
import sys
import time

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import nllax  # noqa: E402
import nllax._fit as F  # noqa: E402

comp = []
jax.monitoring.register_event_duration_secs_listener(
    lambda ev, dur, **kw: comp.append(dur) if ev == "/jax/core/compile/backend_compile_duration" else None)


def problem(n=500, p=10, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.standard_normal((n, p - 1))]
    b = rng.normal(0, 1 / np.sqrt(p), p)
    y = rng.poisson(np.exp(X @ b)).astype(float)
    lik = nllax.Likelihood(nllax.poisson, lambda beta, X: {"log_rate": X @ beta})
    return lik, y, X, p


def body_kernels(text):
    """Top-level instructions of each computation called as a while body, by opcode."""
    comps, cur, name = {}, None, None
    for line in text.splitlines():
        m = re.match(r"^(?:ENTRY\s+)?%?(\S+)\s.*\{\s*$", line)
        if m and not line.startswith(" "):
            name, cur = m.group(1), []
            comps[name] = cur
            continue
        if line.startswith("}"):
            cur = None
            continue
        if cur is not None:
            cur.append(line)
    bodies = set(re.findall(r"body=%?([\w.\-]+)", text))
    out = {}
    skip = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "copy-start", "copy-done"}
    for b in bodies:
        ops = {}
        for line in comps.get(b, []):
            m = re.match(r"^\s*(?:ROOT\s+)?%\S+\s*=\s*.*?\s([\w-]+)\(", line)
            if m and m.group(1) not in skip:
                ops[m.group(1)] = ops.get(m.group(1), 0) + 1
        out[b] = ops
    return out


def main():
    lik, y, X, p = problem()
    beta0 = jnp.zeros(p)
    comp.clear()
    t = time.perf_counter()
    r = nllax.fit(lik, beta0, y, X)
    jax.block_until_ready(r)
    first = time.perf_counter() - t
    print(f"first fit {first:.2f}s, backend compile {sum(comp):.2f}s {[round(c, 2) for c in comp]}")
    print(f"steps {int(r.steps)} status {int(r.status)}")

    # HLO of the loop
    config, params0, options, controls, budget, token = F._setup(lik, beta0, (y, X))
    lowered = F._run.lower(params0, (y, X), options, controls, config=config)
    text = lowered.compile().as_text()
    nfus = len(re.findall(r"^\s*%?fused[\w.\-]* ", text, re.M))
    print(f"fused computations in the program: {len(re.findall(r'^%?fused_computation', text, re.M)) or nfus}")
    for b, ops in body_kernels(text).items():
        print(f"while body {b}: {sum(ops.values())} kernels {dict(sorted(ops.items()))}")

    # Python overhead pieces
    def med(f, k=200):
        ts = []
        for _ in range(k):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return np.median(ts) * 1e3
    yj, Xj = jnp.asarray(y), jnp.asarray(X)
    print(f"_setup: {med(lambda: F._setup(lik, beta0, (y, X))):.3f} ms")
    out = F._run(params0, (y, X), options, controls, config=config)
    jax.block_until_ready(out)
    print(f"_run (dispatch+loop, numpy data): {med(lambda: jax.block_until_ready(F._run(params0, (y, X), options, controls, config=config))):.3f} ms")
    print(f"_run (dispatch+loop, device data): {med(lambda: jax.block_until_ready(F._run(params0, (yj, Xj), options, controls, config=config))):.3f} ms")
    print(f"fit() total, numpy data: {med(lambda: jax.block_until_ready(nllax.fit(lik, beta0, y, X))):.3f} ms")
    print(f"fit() total, device data: {med(lambda: jax.block_until_ready(nllax.fit(lik, beta0, yj, Xj))):.3f} ms")
    one = controls._replace(max_steps=jnp.asarray(1, jnp.int32))
    print(f"_run max_steps=1: {med(lambda: jax.block_until_ready(F._run(params0, (yj, Xj), options, one, config=config))):.3f} ms")


if __name__ == "__main__":
    main()
