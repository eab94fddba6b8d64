"""float32 worst errors of gamma, inverse_gaussian and tweedie against their float64 references,
in units of eps32 times the case magnitude (the harness bound) and relative to |log p| + 1.
Run: PYTHONPATH=src:tests python bench/glm2_float32_errors.py"""
import jax, jax.numpy as jnp, numpy as np
import _harness as H
from cases import CASES
for name in ["gamma", "inverse_gaussian", "tweedie"]:
    case = CASES[name]
    for choice in case.parametrisations():
        data, _, kw = H.inputs(case, choice, n=64)
        d32 = H.to_jax(data, jnp.float32)
        k32 = {a: H.to_jax(v, jnp.float32) for a, v in kw.items()}
        got = np.asarray(jax.jit(lambda d, k: H.call(case, "log_prob", d, k))(d32, k32))
        d64 = np.asarray(d32).astype(np.float64)
        with jax.enable_x64(True):
            canon = H.canonical(case, {a: np.asarray(v).astype(np.float64) for a, v in k32.items()})
        want = case.reference(d64, **canon)
        mag = case.magnitude(d64, **canon)
        err = np.abs(got.astype(np.float64) - want)
        u = err / (H.EPS32 * mag)
        i = np.argmax(u)
        print(f"{name}{choice}: worst {u.max():.2f} eps32*magnitude (bound {case.f32_ulps}); "
              f"abs err {err[i]:.2e} at |lp|={abs(want[i]):.3g}, magnitude {mag[i]:.3g}; "
              f"max rel to |lp|+1: {np.max(err/(np.abs(want)+1))/H.EPS32:.1f} eps32")
