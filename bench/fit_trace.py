"""Where a GLM fit's first-call cost goes (issue 13): jaxpr equations (trace), StableHLO
ops (lower), and the seconds of each phase (trace, lower, XLA compile: wall, and the
process CPU time of the compile, all threads), each repeated.

    python bench/fit_trace.py [reps] [--eqns] [--hlo] [--only=1,3] [--opts='{...}'] [--solver=newton]

(default 3 repetitions per phase). ``--hlo``: the optimised program's fusions and copies
(all, and in the while body) and the median run time of 5 calls of the compiled fit.
``--opts``: XLA compiler options for the fit program instead of nllax's
(``nllax._fit._XLA_OPTIONS``). ``--solver=newton``: ``Newton()`` on ``lik.nll`` instead of
the default solver (the exact Hessian in a ``lax.cond``).

For nllax.fit(Likelihood(poisson|bernoulli, X @ beta), zeros(p), y, X), the default solver
(TrustRegion, which runs GaussNewton's damped iteration for an affine predictor). Each
repetition traces a fresh copy of the problem's program (a new predictor lambda, so no
trace or compile cache is hit); run without a persistent compilation cache.
``--eqns`` also prints the equations by primitive and by source line of nllax.
"""
import collections, re, sys, time
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import jax.extend
import nllax, nllax._fit as F

reps = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3
show = "--eqns" in sys.argv
hlo = "--hlo" in sys.argv
flag = lambda k: next((a.split("=", 1)[1] for a in sys.argv if a.startswith(f"--{k}=")), None)
only = flag("only")
if flag("opts") is not None:
    F._XLA_OPTIONS = __import__("json").loads(flag("opts"))
solver = nllax.solvers.Newton() if flag("solver") == "newton" else None


def fusions(text):
    """(fusions, copies) at the top level of every non-fused computation, and in the
    while bodies."""
    comps, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^(?:ENTRY\s+)?%?(\S+)\s.*\{\s*$", line)
        if m and not line.startswith(" "):
            cur = comps.setdefault(m.group(1), [])
            continue
        if line.startswith("}"):
            cur = None
        elif cur is not None:
            cur.append(line)
    bodies = set(re.findall(r"body=%?([\w.\-]+)", text))
    tot, body = collections.Counter(), collections.Counter()
    for name, lines in comps.items():
        if name.startswith("fused") or "fused_computation" in name:
            continue
        for line in lines:
            m = re.match(r"^\s*(?:ROOT\s+)?%\S+\s*=\s*.*?\s(fusion|copy)\(", line)
            if m:
                tot[m.group(1)] += 1
                if name in bodies:
                    body[m.group(1)] += 1
    return tot, body


def count(jaxpr, by_prim, by_line):
    n = 0
    for e in jaxpr.eqns:
        n += 1
        by_prim[e.primitive.name] += 1
        tb = e.source_info.traceback
        if tb is not None and show:
            fr = [f for f in tb.frames if "nllax/" in f.file_name]
            if fr:
                by_line[f"{fr[0].file_name.split('nllax/')[-1]}:{fr[0].line_num}"] += 1
        for sub in jax.extend.core.jaxprs_in_params(e.params):
            n += count(sub, by_prim, by_line)
    return n


def problem(fam, n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.standard_normal((n, p - 1))]
    b = rng.normal(0, 1 / np.sqrt(p), p)
    if fam == "exp":  # a nonlinear predictor (the NIST path: TrustRegion on J'WJ)
        x = np.linspace(0.0, 4.0, n)
        y = 2.0 * np.exp(-0.7 * x) + 0.01 * np.sin(7.0 * x)
        mk = lambda: nllax.Likelihood(nllax.gaussian,
                                      lambda b, x: {"loc": b[0] * jnp.exp(-b[1] * x)})
        return mk, y, x, p
    if fam == "poisson":
        y = rng.poisson(np.exp(X @ b)).astype(float)
        mk = lambda: nllax.Likelihood(nllax.poisson, lambda beta, X: {"log_rate": X @ beta})
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-X @ b))).astype(float)
        mk = lambda: nllax.Likelihood(nllax.bernoulli, lambda beta, X: {"logits": X @ beta})
    return mk, y, X, p


problems = [("poisson", 10_000, 50), ("logistic", 100_000, 20), ("poisson", 500, 10),
            ("exp", 20, 2)]  # the 4th only with --only=4
problems = [problems[int(i) - 1] for i in only.split(",")] if only else problems[:3]
for fam, n, p in problems:
    mk, y, X, p = problem(fam, n, p)
    tt, tl, tc, cc = [], [], [], []
    for r in range(reps):
        lik = mk()
        obj = lik if solver is None else lik.nll
        b0 = jnp.array([1.0, 0.1]) if fam == "exp" else jnp.zeros(p)
        config, params0, options, controls, _, _ = F._setup(obj, b0, (y, X), solver)
        jit = F._run._get(True)
        t0 = time.perf_counter(); traced = jit.trace(params0, (y, X), options, controls, config=config)
        t1 = time.perf_counter(); lowered = traced.lower()
        t2 = time.perf_counter(); c2 = time.process_time(); compiled = lowered.compile()
        t3 = time.perf_counter(); cc.append(time.process_time() - c2)
        tt.append(t1 - t0); tl.append(t2 - t1); tc.append(t3 - t2)
    by_prim, by_line = collections.Counter(), collections.Counter()
    neq = count(traced.jaxpr.jaxpr, by_prim, by_line)
    txt = lowered.as_text()
    nops = len(re.findall(r"^\s*(%\S+ = )?\"?(stablehlo|chlo|func|mhlo)\.", txt, re.M))
    res = compiled(params0, (y, X), options, controls)[0]
    med = lambda v: f"{np.median(v):.2f}"
    print(f"{fam} {n}x{p}: eqns {neq} stablehlo_ops {nops} | trace {med(tt)} s lower {med(tl)} s "
          f"compile {med(tc)} s, CPU {med(cc)} s (medians of {reps}: {[round(v, 2) for v in tt]} "
          f"{[round(v, 2) for v in tl]} {[round(v, 2) for v in tc]}) | steps {int(res.steps)} "
          f"status {int(res.status)} value {float(res.value)!r}", flush=True)
    if hlo:
        tot, body = fusions(compiled.as_text())
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(params0, (y, X), options, controls))
            ts.append(time.perf_counter() - t0)
        print(f"  HLO: fusions {tot['fusion']} copies {tot['copy']} | while body: fusions "
              f"{body['fusion']} copies {body['copy']} | run median {np.median(ts) * 1e3:.2f} ms",
              flush=True)
    if show:
        print("  by primitive:", dict(by_prim.most_common(15)))
        print("  by line:", dict(by_line.most_common(40)))
