"""Compiles of eager Likelihood calls (issue 15 item 3): ``information``,
``value_grad_curvature`` and ``affine_plan`` outside jit, first and second call.

    python bench/likelihood_eager.py [i]    # only call i (0-3): each in a fresh process
"""
import sys
import jax, jax.numpy as jnp, numpy as np
import jax.monitoring
jax.config.update("jax_enable_x64", True)
import nllax
from jax.flatten_util import ravel_pytree

n = []
jax.monitoring.register_event_duration_secs_listener(
    lambda ev, dur, **kw: n.append(dur) if ev == "/jax/core/compile/backend_compile_duration" else None)
rng = np.random.default_rng(0)
X = np.c_[np.ones(500), rng.standard_normal((500, 9))]
y = rng.poisson(np.exp(X @ rng.normal(0, 0.3, 10))).astype(float)
lik = nllax.Likelihood(nllax.poisson, lambda b, X: {"log_rate": X @ b})
b = jnp.full(10, 0.01)
x, unravel = ravel_pytree(b)
calls = [
    ("information observed", lambda: lik.information(b, y, X)),
    ("information expected", lambda: lik.information(b, y, X, kind="expected")),
    ("affine_plan", lambda: lik.affine_plan(x, unravel, (y, X))),
    ("value_grad_curvature", lambda: lik.value_grad_curvature(x, unravel, (y, X))),
]
for name, f in (calls if len(sys.argv) < 2 else [calls[int(sys.argv[1])]]):
    for k in (1, 2):
        n.clear(); jax.block_until_ready(f())
        print(f"{name} call {k}: {len(n)} compiles, {sum(n):.2f} s backend compile")
