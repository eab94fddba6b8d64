"""The fit cases whose results a change of the solvers' loop structure must not move
(issue 13; bench/FIT_COMPILE.md section 2 and "Stop 21"): run them, save every result, and
compare two saved runs bitwise.

    python bench/fit_cases.py run OUT.npz [--nist]       # the cases (+ the 54 NIST starts x 3 forms)
    python bench/fit_cases.py cmp A.npz B.npz            # bitwise: params, value, grad_norm, steps, status
    PYTHONPATH=/tmp/base/src python bench/fit_cases.py run /tmp/base.npz   # the code before

Cases: the six bench/glm.py problems (logistic 1e6 cut to 2e5) with the default solver and
``GaussNewton()``; for Poisson 500x10 and logistic 2000x5 also expected curvature,
``optimistic=False``, ``max_steps`` 0, 1, 3, a NaN start, a far start and float32;
nonlinear Gauss-Newton and trust region (exponential decay), a two-parameter Gaussian,
``Newton`` on callables (exponential-decay 0.5 * SSE, Rosenbrock; ``max_steps`` 0-3, a NaN
start, float32), ``TrustRegion()`` on a callable (exact Hessian), MAE and a Laplace
location (the L-BFGS polish). ``--nist``: every NIST StRD start in the three forms of
bench/nist.py (likelihood: TrustRegion with J'WJ; sse: Newton; sse_trust: TrustRegion on
the exact Hessian).
"""
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

jax.config.update("jax_enable_x64", True)
import nllax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from glm import make_data as glm_data  # noqa: E402  (bench/glm.py's problems)

S = nllax.solvers


FAM = {"poisson": (nllax.poisson, "log_rate"), "logistic": (nllax.bernoulli, "logits"),
       "gaussian": (nllax.gaussian, "loc"), "negbin": (nllax.poisson, "log_rate")}


def lin(key):
    return lambda b, X: {key: X @ b}


def cases(nist_too):
    out = {}

    def run(name, objective, b0, *args, **kw):
        r = nllax.fit(objective, b0, *args, **kw)
        out[name] = r
        print(f"{name}: steps {int(r.steps)} status {int(r.status)} value {float(r.value)!r}",
              flush=True)

    for model, n, p in [("poisson", 10_000, 50), ("logistic", 100_000, 20), ("poisson", 500, 10),
                        ("logistic", 200_000, 10), ("gaussian", 100_000, 20), ("negbin", 10_000, 20)]:
        X, y = glm_data(model, n, p)
        fam, key = FAM[model]
        lik = nllax.Likelihood(fam, lin(key))
        tag = f"{model}{n}x{p}"
        run(f"{tag}/default", lik, jnp.zeros(p), y, X)
        run(f"{tag}/gn", lik, jnp.zeros(p), y, X, solver=S.GaussNewton())
    for model, n, p in [("poisson", 500, 10), ("logistic", 2000, 5)]:
        X, y = glm_data(model, n, p)
        fam, key = FAM[model]
        lik = nllax.Likelihood(fam, lin(key))
        tag = f"{model}{n}x{p}"
        run(f"{tag}/expected", lik, jnp.zeros(p), y, X, solver=S.GaussNewton(curvature="expected"))
        run(f"{tag}/pessimistic", lik, jnp.zeros(p), y, X, solver=S.GaussNewton(optimistic=False))
        for m in (0, 1, 3):
            run(f"{tag}/max{m}", lik, jnp.zeros(p), y, X, max_steps=m)
        run(f"{tag}/nan", lik, jnp.full(p, jnp.nan), y, X)
        run(f"{tag}/far", lik, jnp.full(p, 2.0), y, X)
        run(f"{tag}/f32", lik, jnp.zeros(p, jnp.float32), y.astype(np.float32),
            X.astype(np.float32))
        run(f"{tag}/newton", lik.nll, jnp.zeros(p), y, X, solver=S.Newton())

    # nonlinear predictor: exponential decay with residuals
    x = np.linspace(0.0, 4.0, 20)
    yd = 2.0 * np.exp(-0.7 * x) + 0.01 * np.sin(7.0 * x)
    exp_lik = nllax.Likelihood(nllax.gaussian, lambda b, x: {"loc": b[0] * jnp.exp(-b[1] * x)})
    b0 = jnp.array([1.0, 0.1])
    run("exp/default", exp_lik, b0, yd, x)
    run("exp/gn", exp_lik, b0, yd, x, solver=S.GaussNewton())
    run("exp/trust_max3", exp_lik, b0, yd, x, max_steps=3)
    run("exp/trust_nan", exp_lik, jnp.array([jnp.nan, 0.1]), yd, x)
    two = nllax.Likelihood(nllax.gaussian,
                           lambda b, x: {"loc": b[0] + b[1] * x, "log_scale": b[2]})
    run("gauss2/default", two, jnp.zeros(3), yd, x)
    log_lik = nllax.Likelihood(nllax.gaussian, lambda b, x: {"loc": jnp.log(b[1]) + b[0] * x})
    run("log/nonfinite_trials", log_lik, jnp.array([0.0, 0.05]),
        np.log(3.0) + 2.0 * np.linspace(0, 1, 10), np.linspace(0, 1, 10))

    def half_sse(b, x, y):
        return 0.5 * jnp.sum(jnp.square(y - b[0] * jnp.exp(-b[1] * x)))

    def rosen(b):
        return jnp.sum(100.0 * (b[1:] - b[:-1] ** 2) ** 2 + (1 - b[:-1]) ** 2)

    run("sse/newton", half_sse, b0, x, yd)
    for m in (0, 1, 2, 3):
        run(f"sse/newton_max{m}", half_sse, b0, x, yd, max_steps=m)
    run("sse/newton_nan", half_sse, jnp.array([jnp.nan, 0.1]), x, yd)
    run("sse/newton_f32", half_sse, b0.astype(jnp.float32), x.astype(np.float32),
        yd.astype(np.float32))
    run("sse/trust", half_sse, b0, x, yd, solver=S.TrustRegion())
    run("sse/trust_max2", half_sse, b0, x, yd, solver=S.TrustRegion(), max_steps=2)
    run("rosen/newton", rosen, jnp.array([-1.2, 1.0, -0.5, 0.3]))
    run("rosen/trust", rosen, jnp.array([-1.2, 1.0, -0.5, 0.3]), solver=S.TrustRegion())
    run("rosen/newton_pytree", lambda p: rosen(jnp.concatenate([p["a"], p["b"]])),
        {"a": jnp.array([-1.2, 1.0]), "b": jnp.array([-0.5, 0.3])})
    run("saddle/trust", lambda b: b[0] ** 4 / 4 - b[0] ** 2 / 2 + b[1] ** 2 / 2,
        jnp.array([0.0, 1.0]), solver=S.TrustRegion())
    # non-smooth: the L-BFGS polish
    rng = np.random.default_rng(1)
    xm = rng.standard_normal(200)
    ym = 1.0 + 2.0 * xm + rng.laplace(size=200)
    run("mae/newton", lambda b, x, y: jnp.mean(jnp.abs(y - b[0] - b[1] * x)), jnp.zeros(2), xm, ym)
    lap = nllax.Likelihood(nllax.laplace, lambda b, x: {"loc": b[0] + b[1] * x})
    run("laplace/default", lap, jnp.zeros(2), ym, xm)
    run("laplace/newton", lap.nll, jnp.zeros(2), ym, xm, solver=S.Newton())

    if nist_too:
        import nist

        for name in nist.NAMES:
            prob = nist.load(name)
            for start in (1, 2):
                for form in ("likelihood", "sse", "sse_trust"):
                    o = nist.run_problem(prob, start, form)
                    key = f"nist/{name}/{start}/{form}"
                    out[key] = o
                    print(f"{key}: steps {o.steps} {o.status} lre {o.lre_params:.1f}", flush=True)
    return out


def save(path, res):
    arrays = {}
    for k, r in res.items():
        if hasattr(r, "grad_norm"):
            arrays[k + ":params"] = np.asarray(ravel_pytree(r.params)[0])
            for f in ("value", "grad_norm", "steps", "status"):
                arrays[k + ":" + f] = np.asarray(getattr(r, f))
        else:  # a NIST outcome
            arrays[k + ":params"] = np.asarray(r.params)
            arrays[k + ":steps"] = np.asarray(r.steps)
            arrays[k + ":status"] = np.asarray(r.status)
    np.savez(path, **arrays)


def compare(a, b):
    a, b = np.load(a), np.load(b)
    keys = sorted(set(a.files) | set(b.files))
    bad = 0
    for k in keys:
        if k not in a.files or k not in b.files:
            print("MISSING", k)
            bad += 1
            continue
        x, y = a[k], b[k]
        same = x.dtype == y.dtype and x.shape == y.shape and np.array_equal(
            np.atleast_1d(x).view(np.uint8) if x.dtype.kind == "f" else x,
            np.atleast_1d(y).view(np.uint8) if y.dtype.kind == "f" else y)
        if not same:
            bad += 1
            extra = ""
            if x.dtype.kind == "f" and x.shape == y.shape:
                extra = f" max rel diff {np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)):.3g}"
            print(f"DIFF {k}: {x!r} vs {y!r}{extra}")
    n = len({k.split(":")[0] for k in keys})
    print(f"{n} cases, {len(keys)} arrays, {bad} differ")
    return bad


if __name__ == "__main__":
    if sys.argv[1] == "run":
        save(sys.argv[2], cases("--nist" in sys.argv))
    else:
        sys.exit(1 if compare(sys.argv[2], sys.argv[3]) else 0)
