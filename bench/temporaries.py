"""Value-and-gradient time and XLA temporaries (n-sized float32 buffers) of a few nllax
objectives against their hand-written jnp / optax forms, n = 1e7 on the default device.

Run from the repository root: ``python bench/temporaries.py``. A quick check of the fusion
finding in RESULTS.md (any select before the sum costs an n-buffer on XLA:CPU)."""
import time, numpy as np, jax, jax.numpy as jnp, nllax, optax
n = 10_000_000
r = np.random.default_rng(0)
y = jnp.asarray(r.normal(size=n), jnp.float32); m = jnp.asarray(r.normal(size=n), jnp.float32)
yb = jnp.asarray(r.uniform(size=n) < 0.5, jnp.float32)
fns = {
 "gauss nllax": lambda m: nllax.gaussian.nll(y, m, 1.5),
 "gauss jnp": lambda m: jnp.sum(0.5 * jnp.square((y - m) / 1.5) + jnp.log(1.5) + 0.9189385),
 "sse nllax": lambda m: nllax.losses.sse(y, m),
 "sse jnp": lambda m: jnp.sum(jnp.square(y - m)),
 "optax l2": lambda m: jnp.sum(optax.losses.squared_error(m, y)),
 "mae nllax": lambda m: nllax.losses.mae(y, m),
 "mae jnp": lambda m: jnp.mean(jnp.abs(y - m)),
 "laplace nllax": lambda m: nllax.laplace.nll(y, m, 1.5),
 "bce nllax": lambda z: nllax.losses.binary_cross_entropy(yb, z),
 "bce jnp": lambda z: jnp.sum(jax.nn.softplus(z) - yb * z),
}
res = {}
for name, f in fns.items():
    vg = jax.jit(jax.value_and_grad(f))
    comp = vg.lower(m).compile()
    tmp = comp.memory_analysis().temp_size_in_bytes / (4 * n)
    jax.block_until_ready(vg(m))
    ts = []
    for _ in range(15):
        t = time.perf_counter(); jax.block_until_ready(vg(m)); ts.append(time.perf_counter() - t)
    res[name] = (np.median(ts) * 1e3, tmp)
for k, (t, tmp) in res.items():
    print(f"{k:15s} v&g {t:7.2f} ms  temporaries {tmp:.2f} n-buffers")
