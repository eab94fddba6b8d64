"""First-call cost of a GLM fit: XLA backend compile seconds per program and the median fit
time, optionally with per-program XLA compiler options (diagnosis of issue 13's compile goal).

    python bench/fit_compile.py                                          # defaults
    python bench/fit_compile.py '{"xla_backend_optimization_level": 0}'  # compiler options

Run with JAX_COMPILATION_CACHE_DIR unset (no persistent cache) so that every program compiles.
"cpu" is the process CPU time of the first call (all threads): on a loaded machine it moves
far less than the wall time.
"""
import sys, time, collections, jax, jax.numpy as jnp, numpy as np
import jax.monitoring
jax.config.update("jax_enable_x64", True)
import nllax, nllax._fit as F
opts = __import__("json").loads(sys.argv[1]) if len(sys.argv) > 1 else None
if opts is not None:
    F._run = jax.jit(F._run_impl, static_argnames=("config",), compiler_options=opts)
    F._polish = jax.jit(F._polish_impl, static_argnames=("config",), compiler_options=opts)
d=[]
jax.monitoring.register_event_duration_secs_listener(lambda ev, dur, **kw: d.append(dur) if ev=="/jax/core/compile/backend_compile_duration" else None)
rng=np.random.default_rng(0)
for fam, n, p in [("poisson", 10000, 50), ("bernoulli", 100000, 20)]:
    X=np.c_[np.ones(n), rng.standard_normal((n,p-1))]; b=rng.normal(0,1/np.sqrt(p),p)
    if fam=="poisson":
        y=rng.poisson(np.exp(X@b)).astype(float); lik=nllax.Likelihood(nllax.poisson, lambda beta, X: {"log_rate": X@beta})
    else:
        y=(rng.random(n) < 1/(1+np.exp(-X@b))).astype(float); lik=nllax.Likelihood(nllax.bernoulli, lambda beta, X: {"logits": X@beta})
    d.clear()
    c=time.process_time(); t=time.perf_counter(); r=nllax.fit(lik, jnp.zeros(p), y, X); jax.block_until_ready(r.params); t1=time.perf_counter()-t; c1=time.process_time()-c
    ts=[]
    for _ in range(7):
        t=time.perf_counter(); r=nllax.fit(lik, jnp.zeros(p), y, X); jax.block_until_ready(r.params); ts.append(time.perf_counter()-t)
    print(f"{fam} first {t1:.2f}s (cpu {c1:.2f}s) backend {sum(d):.2f}s {[round(x,2) for x in d]} median {np.median(ts)*1e3:.1f}ms steps {int(r.steps)}")
