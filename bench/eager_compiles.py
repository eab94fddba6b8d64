"""XLA compiles and wall time of the first three eager calls of public entry points.

One fresh process (no compilation cache): the first call compiles, the later ones should
not. Run it on two checkouts to compare (the count of compiles is load-independent; the
times are not)::

    JAX_COMPILATION_CACHE_DIR= PYTHONPATH=src python bench/eager_compiles.py [NAME...]
    JAX_COMPILATION_CACHE_DIR= PYTHONPATH=src python bench/eager_compiles.py --old ...
        # gradient_ratio / Equivalence.check: their bodies called as before (op by op);
        # on a checkout before branch tteager, leave out --old (the public call is the old)
"""

from __future__ import annotations

import sys
import time
import warnings

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np

_count = [0]


def _on_duration(event, duration, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        _count[0] += 1


def main():
    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    import nllax

    rng = np.random.default_rng(0)
    n = 200
    x = jnp.asarray(rng.normal(size=n))
    y = 1.0 + 2.0 * x + jnp.asarray(rng.normal(size=n))
    w = jnp.array([0.9, 1.9])
    p3 = jnp.array([1.0, 2.0, 0.0])
    eq = nllax.equivalences["sse"]

    def nll(p, x, y):
        return nllax.gaussian.nll(y, p[0] + p[1] * x, 2.0)

    def sse(p, x, y):
        return nllax.losses.sse(y, p[0] + p[1] * x)

    def ll(p, x, y):
        return nllax.gaussian.log_prob(y, p[0] + p[1] * x, jnp.exp(p[2]))

    summary = []

    def fitted():
        if not summary:
            with warnings.catch_warnings():  # p3 is not the MLE; the numbers do not matter
                warnings.simplefilter("ignore")
                summary.append(nllax.summary(ll, p3, x, y))
        return summary[0]

    old = "--old" in sys.argv
    if old:
        from nllax import _equivalences, verify

        grad_ratio = lambda: verify._grads_and_ratio(nll, sse, w, x, y)[2]  # noqa: E731
        check = lambda: _equivalences._check(eq, y, x, None, None, {"scale": 1.5})  # noqa: E731
    else:
        grad_ratio = lambda: nllax.verify.gradient_ratio(nll, sse, w, x, y)  # noqa: E731
        check = lambda: eq.check(y, x, scale=1.5)  # noqa: E731

    def run_summary():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nllax.summary(ll, p3, x, y).stderr

    cases = {
        "gradient_ratio": grad_ratio,
        "Equivalence.check": check,
        "lr_test": lambda: nllax.lr_test(-10.0, -8.0, 1).pvalue,
        "summary": run_summary,
        "Summary.conf_int": lambda: fitted().conf_int(0.9),
        "Summary.wald_test": lambda: fitted().wald_test(np.eye(3)[:1]).statistic,
    }
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(cases)
    for name in names:
        out = []
        for _ in range(3):
            c0, t = _count[0], time.perf_counter()
            jax.block_until_ready(cases[name]())
            out.append((_count[0] - c0, time.perf_counter() - t))
        print(f"{name:18s} " + "  ".join(f"call {k + 1}: {c:3d} compiles {t * 1e3:8.1f} ms"
                                         for k, (c, t) in enumerate(out)), flush=True)


if __name__ == "__main__":
    main()
