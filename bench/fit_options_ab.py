"""A/B of XLA compiler options for the fit programs, in one process: the same _run compiled
with and without the options, then called alternately (medians); same parameters checked.

    PYTHONPATH=src python bench/fit_options_ab.py '{"xla_cpu_use_fusion_emitters": false}' [rounds] [default|newton|lbfgs] [problems, e.g. 0,1]
"""
import sys, time, json
sys.path.insert(0, "bench")
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import nllax, nllax._fit as F
opts = json.loads(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
import optax
solver = {"default": None, "newton": nllax.solvers.Newton(), "lbfgs": optax.lbfgs()}[sys.argv[3] if len(sys.argv) > 3 else "default"]
runs = {"plain": jax.jit(F._run_impl, static_argnames=("config",)),
        "opts": jax.jit(F._run_impl, static_argnames=("config",), compiler_options=opts)}
rng = np.random.default_rng(0)
PROBLEMS = [("poisson", 500, 10), ("poisson", 10000, 50), ("bernoulli", 100000, 20)]
pick = [int(i) for i in sys.argv[4].split(",")] if len(sys.argv) > 4 else range(len(PROBLEMS))
for i_prob, (fam, n, p) in enumerate(PROBLEMS):
    if i_prob not in pick:
        continue
    rng = np.random.default_rng(0)
    X = np.c_[np.ones(n), rng.standard_normal((n, p - 1))]; b = rng.normal(0, 1 / np.sqrt(p), p)
    if fam == "poisson":
        y = rng.poisson(np.exp(X @ b)).astype(float); lik = nllax.Likelihood(nllax.poisson, lambda beta, X: {"log_rate": X @ beta})
    else:
        y = (rng.random(n) < 1 / (1 + np.exp(-X @ b))).astype(float); lik = nllax.Likelihood(nllax.bernoulli, lambda beta, X: {"logits": X @ beta})
    config, params0, options, controls, budget, token = F._setup(lik, jnp.zeros(p), (y, X), solver=solver)
    args = (jnp.asarray(y), jnp.asarray(X))
    comp, ts, res, cpu = {}, {k: [] for k in runs}, {}, {k: [] for k in runs}
    for k, r in runs.items():
        lo = r.lower(params0, args, options, controls, config=config)
        c0 = time.process_time(); t0 = time.perf_counter(); c = lo.compile(); comp[k] = (time.process_time() - c0, time.perf_counter() - t0)
        runs_c = c
        res[k] = c(params0, args, options, controls)[0]
        ts[k] = (c, [])
    reps = rounds if n <= 10000 else max(3, rounds // 2)
    for i in range(reps):
        for k in (list(runs) if i % 2 == 0 else list(runs)[::-1]):
            c = ts[k][0]
            t0 = time.perf_counter(); c0 = time.process_time(); jax.block_until_ready(c(params0, args, options, controls)); ts[k][1].append(time.perf_counter() - t0); cpu[k].append(time.process_time() - c0)
    diff = float(jnp.max(jnp.abs(res["plain"].params - res["opts"].params)))
    print(f"{fam} n={n} p={p}: " + "; ".join(f"{k} compile cpu {comp[k][0]:.2f}s wall {comp[k][1]:.2f}s, run median {np.median(ts[k][1])*1e3:.2f} ms (cpu {np.median(cpu[k])*1e3:.2f} ms)" for k in runs) + f"; ratio {np.median(ts['opts'][1])/np.median(ts['plain'][1]):.2f} (cpu {np.median(cpu['opts'])/np.median(cpu['plain']):.2f}); max|dparams| {diff:.1e}; steps {int(res['plain'].steps)}/{int(res['opts'].steps)}", flush=True)
