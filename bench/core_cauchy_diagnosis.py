"""Diagnosis only (issue 10): cauchy.nll with a per-observation scale, value and gradient,
n = 1e6, float32, one process: shipped, against the same terms without the validity
reductions (bare), with the validity poisoned into each term (log s - log s: 0 for finite
s > 0, NaN otherwise), jax.scipy.stats, and the bare textbook log1p(z*z) (overflows z^2).

    PYTHONPATH=src python bench/core_cauchy_diagnosis.py
"""
import sys, time, math, numpy as np, jax, jax.numpy as jnp
sys.path.insert(0, "bench")
import _hlo, nllax
from nllax import cauchy as C
n = 10**6
rng = np.random.default_rng(0)
y = jnp.asarray(rng.standard_cauchy(n), jnp.float32); s = jnp.asarray(np.exp(rng.normal(size=n) * 0.3), jnp.float32)
p = jnp.zeros(n, jnp.float32)
def shipped(p, y, s): return nllax.cauchy.nll(y, p, s)
def bare(p, y, s):
    z = (y - p) / s
    return -jnp.sum(-C._log1p_square(z) - (jnp.log(s) + math.log(math.pi)))
def poisoned(p, y, s):
    z = (y - p) / s
    ls = jnp.log(s)
    return -jnp.sum(-C._log1p_square(z) - (ls + math.log(math.pi)) + (ls - ls))
def jss(p, y, s): return -jnp.sum(jax.scipy.stats.cauchy.logpdf(y, p, s))
def naive(p, y, s):
    z = (y - p) / s
    return jnp.sum(jnp.log1p(z * z) + jnp.log(s) + math.log(math.pi))
cs = {}
for k, f in (("shipped", shipped), ("bare", bare), ("poisoned", poisoned), ("jax.scipy.stats", jss), ("bare log1p(z*z)", naive)):
    cs[k] = jax.jit(jax.value_and_grad(f)).lower(p, y, s).compile()
    print(k, _hlo.fmt(_hlo.summary(cs[k].as_text(), n)))
ts = {k: [] for k in cs}
for _ in range(21):
    for k, c in cs.items():
        t = time.perf_counter(); jax.block_until_ready(c(p, y, s)); ts[k].append(time.perf_counter() - t)
print({k: round(np.median(v) * 1e3, 2) for k, v in ts.items()})
bad = s.at[5].set(-1.0)
for k, c in cs.items():
    v, g = c(p, y, bad)
    print(k, "invalid s: value", float(v), "NaN grad entries", int(jnp.isnan(g).sum()))
