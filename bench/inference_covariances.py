"""Compiled nllax.summary times for the covariances (observed, HC0, HC1, CR1 with 500
clusters), logistic regression k = 20, n = 1e5, float64, CPU; round-robin over 15 rounds,
medians and ratios to HC0; then one Wald test, a score test and 1000 predictions.

Run: python bench/inference_covariances.py (standalone; not part of bench/run.py)."""
import os, statistics, time
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import nllax
n, k = 100_000, 20
rng = np.random.default_rng(0)
x = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
y = (rng.uniform(size=n) < 1 / (1 + np.exp(-x @ (rng.normal(size=k) * 0.3)))).astype(float)
g = rng.integers(0, 500, size=n)
x, y = jax.device_put(x), jax.device_put(y)
ll = lambda b, x, y: nllax.bernoulli.log_prob(y, logits=x @ b)
beta = nllax.fit(lambda b, x, y: -jnp.sum(ll(b, x, y)), jnp.zeros(k), x, y, throw=True).params
cases = {"observed": {}, "HC0": {"covariance": "HC0"}, "HC1": {"covariance": "HC1"},
         "CR1": {"covariance": "CR1", "groups": g}}
first = {}
for name, kw in cases.items():
    t0 = time.perf_counter(); nllax.summary(ll, beta, x, y, **kw); first[name] = time.perf_counter() - t0
times = {name: [] for name in cases}
for _ in range(15):
    for name, kw in cases.items():
        t0 = time.perf_counter(); nllax.summary(ll, beta, x, y, **kw); times[name].append(time.perf_counter() - t0)
s = nllax.summary(ll, beta, x, y, covariance="HC0")
t0 = time.perf_counter(); s.wald_test([f"[{i}]" for i in range(1, 6)]); wt = time.perf_counter() - t0
t0 = time.perf_counter(); st = s.score_test([f"[{i}]" for i in range(1, 3)], covariance="observed"); sc1 = time.perf_counter() - t0
t0 = time.perf_counter(); st = s.score_test([f"[{i}]" for i in range(1, 3)], covariance="observed"); sc2 = time.perf_counter() - t0
xn = x[:1000]
t0 = time.perf_counter(); s.predict(lambda b, xn: jax.nn.sigmoid(xn @ b), xn); pr = time.perf_counter() - t0
base = statistics.median(times["HC0"])
print(f"load: {os.getloadavg()}")
for name in cases:
    m = statistics.median(times[name])
    print(f"{name:>8}: first call {first[name]:.2f} s, compiled median {m*1e3:.1f} ms, ratio to HC0 {m/base:.2f}")
print(f"wald_test (5 rows): {wt*1e3:.1f} ms; score_test first {sc1:.2f} s, again {sc2:.2f} s; predict (1000 means, first call) {pr:.2f} s")
