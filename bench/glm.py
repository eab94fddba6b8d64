"""GLM fitting speed: nllax.fit against glmax, glum, scikit-learn and statsmodels.

Problems (float64, seed 0, an intercept column plus standard-normal regressors, true
coefficients N(0, 1/p)): Poisson n=1e4 p=50, logistic n=1e5 p=20, Poisson n=500 p=10,
logistic n=1e6 p=10, Gaussian (identity link, sigma = 1 fixed) n=1e5 p=20, negative
binomial (NB2, log link, dispersion alpha = 0.5 fixed) n=1e4 p=20. Every method starts
from its own default; the JAX fits of nllax also start from beta = 0, and glmax is run
both from its default start and from beta = 0 (``init=``), the like-for-like comparison.

Measured in one process, round-robin (one call of each per round, the order rotated,
7 rounds after a warm-up, a 0.2 s untimed pause before each call so that OpenBLAS's
spinning threads do not steal the next call's CPUs); medians; compile = first call minus
the median.
Agreement: ``max |beta - beta*|`` against the float64 optimum beta* from Newton-Raphson
in NumPy iterated to convergence (60 steps). Floor: the flops of one Newton step
(``2 n p^2`` for X'WX plus ``4 n p`` for the predictor and the score) divided by the
matmul rate measured here (the median of a float64 ``X.T @ X`` on the same data);
"x floor" is the fit's median time over (its steps x that floor).

Usage::

    python bench/glm.py               # writes bench/GLM.md
    python bench/glm.py --quick       # two small problems, no file
    python bench/glm.py --only 1,3 --out /tmp/a.md   # some of the six problems (1-based)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import nllax  # noqa: E402
from _libs import get, version  # noqa: E402
from _measure import block  # noqa: E402

ALPHA = 0.5  # NB2 dispersion, fixed
PROBLEMS = [
    ("poisson", 10_000, 50),
    ("logistic", 100_000, 20),
    ("poisson", 500, 10),
    ("logistic", 1_000_000, 10),
    ("gaussian", 100_000, 20),
    ("negbin", 10_000, 20),
]


# ---------------------------------------------------------------------------- data


def make_data(model: str, n: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.standard_normal((n, p - 1))]
    beta = rng.standard_normal(p) / np.sqrt(p)
    eta = X @ beta
    if model == "poisson":
        y = rng.poisson(np.exp(eta))
    elif model == "logistic":
        y = rng.random(n) < 1 / (1 + np.exp(-eta))
    elif model == "gaussian":
        y = eta + rng.standard_normal(n)
    else:  # NB2 as a gamma-Poisson mixture: mean mu, variance mu + alpha mu^2
        mu = np.exp(eta)
        y = rng.poisson(rng.gamma(1 / ALPHA, ALPHA * mu))
    return X, np.asarray(y, np.float64)


def reference(model: str, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The float64 optimum: Newton-Raphson in NumPy (observed information), 60 steps."""
    beta = np.zeros(X.shape[1])
    if model == "gaussian":
        return np.linalg.lstsq(X, y, rcond=None)[0]
    for _ in range(60):
        eta = X @ beta
        if model == "poisson":
            mu = np.exp(eta)
            g, w = X.T @ (mu - y), mu
        elif model == "logistic":
            mu = 1 / (1 + np.exp(-eta))
            g, w = X.T @ (mu - y), mu * (1 - mu)
        else:
            mu = np.exp(eta)
            g = X.T @ ((mu - y) / (1 + ALPHA * mu))
            w = mu * (1 + ALPHA * y) / (1 + ALPHA * mu) ** 2
        beta = beta - np.linalg.solve(X.T @ (w[:, None] * X), g)
    return beta


# ---------------------------------------------------------------------------- nllax models


class _NegBin:
    """NB2 with a fixed dispersion ALPHA as a family module (log_prob / nll), for the
    benchmark only (the library's own negative binomial is another module's work)."""

    @staticmethod
    def log_prob(y, *, log_mean):
        r = 1.0 / ALPHA
        log1p_am = jnp.logaddexp(0.0, jnp.log(ALPHA) + log_mean)  # log(1 + alpha mu)
        return (jax.scipy.special.gammaln(y + r) - jax.scipy.special.gammaln(r)
                - jax.scipy.special.gammaln(y + 1.0)
                + y * (jnp.log(ALPHA) + log_mean - log1p_am) - r * log1p_am)

    @staticmethod
    def nll(y, *, log_mean, reduction="sum", weights=None, where=None):
        t = -_NegBin.log_prob(y, log_mean=log_mean)
        if weights is not None:
            t = t * weights
        if where is not None:
            t = jnp.where(where, t, 0.0)
        return t if reduction == "none" else jnp.sum(t)


def _linear(key):
    def predictor(beta, X):
        return {key: X @ beta}

    return predictor


FAMILIES = {
    "poisson": (nllax.poisson, "log_rate"),
    "logistic": (nllax.bernoulli, "logits"),
    "gaussian": (nllax.gaussian, "loc"),
    "negbin": (_NegBin, "log_mean"),
}
LIKS = {m: nllax.Likelihood(fam, _linear(key)) for m, (fam, key) in FAMILIES.items()}
LBFGS = optax.lbfgs()


# ---------------------------------------------------------------------------- baselines


def _statsmodels(model, X, y):
    sm = get("statsmodels.api")
    fam = {"poisson": sm.families.Poisson(), "logistic": sm.families.Binomial(),
           "gaussian": sm.families.Gaussian(),
           "negbin": sm.families.NegativeBinomial(alpha=ALPHA)}[model]
    res = sm.GLM(y, X, family=fam).fit(tol=1e-12)
    return np.asarray(res.params), res.fit_history["iteration"]


def _sklearn(model, X, y):
    lm = get("sklearn.linear_model")
    if model == "poisson":
        m = lm.PoissonRegressor(alpha=0.0, fit_intercept=False, solver="newton-cholesky",
                                tol=1e-12, max_iter=1000).fit(X, y)
    elif model == "logistic":
        m = lm.LogisticRegression(C=np.inf, fit_intercept=False, solver="newton-cholesky",
                                  tol=1e-12, max_iter=1000).fit(X, y)
    elif model == "gaussian":
        m = lm.LinearRegression(fit_intercept=False).fit(X, y)
        return np.asarray(m.coef_).ravel(), 1
    else:
        return None
    return np.asarray(m.coef_).ravel(), int(np.max(m.n_iter_))


def _glum(model, X, y):
    glum = get("glum")
    fam = {"poisson": "poisson", "logistic": "binomial", "gaussian": "normal"}.get(model)
    if fam is None:
        fam = glum.NegativeBinomialDistribution(theta=ALPHA)
    m = glum.GeneralizedLinearRegressor(family=fam, alpha=0.0, fit_intercept=False,
                                        gradient_tol=1e-12, max_iter=1000).fit(X, y)
    return np.asarray(m.coef_), int(m.n_iter_)


def _glmax_family(model):
    glmax = get("glmax")
    return {"poisson": glmax.Poisson(), "logistic": glmax.Binomial(),
            "gaussian": glmax.Gaussian()}.get(model)


# ---------------------------------------------------------------------------- running


@dataclasses.dataclass
class Row:
    problem: str
    method: str
    median_s: float = float("nan")
    compile_s: float | None = None
    steps: int | None = None
    agreement: float = float("nan")
    status: str = ""
    floor_ratio: float | None = None
    error: str = ""


def round_robin(calls, *, rounds: int, pause: float = 0.2):
    """Median seconds per call, one call of each per round, the order rotated every
    round. A pause (not timed) before each call lets the BLAS threads of the NumPy-based
    baselines go back to sleep: OpenBLAS threads spin for a while after a call, and
    would otherwise take the CPUs from the next (JAX) call on a small machine."""
    import statistics

    for call in calls:  # warm-up
        block(call())
    samples = [[] for _ in calls]
    order = list(range(len(calls)))
    for r in range(rounds):
        shift = r % len(order)
        for i in order[shift:] + order[:shift]:
            time.sleep(pause)
            t0 = time.perf_counter()
            block(calls[i]())
            samples[i].append(time.perf_counter() - t0)
    return [type("T", (), {"median": statistics.median(s)})() for s in samples]


def matmul_rate(X: np.ndarray) -> float:
    """flop/s of a float64 X'X here (median of 5 after a warm-up)."""
    Xj = jnp.asarray(X)
    f = jax.jit(lambda X: X.T @ X)
    block(f(Xj))
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        block(f(Xj))
        ts.append(time.perf_counter() - t0)
    n, p = X.shape
    return 2.0 * n * p * p / float(np.median(ts))


def run_problem(model, n, p, *, rounds, log=print):
    X, y = make_data(model, n, p)
    ref = reference(model, X, y)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    lik = LIKS[model]
    b0 = jnp.zeros(p)
    name = f"{model} n={n:g} p={p}"

    methods = []  # (label, call, is_jax)
    methods.append(("nllax.fit default (GaussNewton)", lambda: nllax.fit(lik, b0, yj, Xj), True))
    methods.append(("nllax.fit solver=Newton() (exact Hessian)",
                    lambda: nllax.fit(lik.nll, b0, yj, Xj, solver=nllax.solvers.Newton()), True))
    methods.append(("nllax.fit solver=optax.lbfgs()",
                    lambda: nllax.fit(lik.nll, b0, yj, Xj, solver=LBFGS), True))
    glmax = get("glmax")
    fam = _glmax_family(model) if glmax is not None else None
    if fam is not None:
        methods.append(("glmax IRLS (its default start)", lambda: glmax.fit(fam, Xj, yj), True))
        init = glmax.Params(beta=b0, disp=jnp.asarray(1.0), aux=None)
        methods.append(("glmax IRLS (start beta = 0)",
                        lambda: glmax.fit(fam, Xj, yj, init=init), True))
    if get("glum") is not None:
        methods.append(("glum (irls-cd)", lambda: _glum(model, X, y), False))
    if get("sklearn.linear_model") is not None and model != "negbin":
        methods.append(("scikit-learn newton-cholesky" if model != "gaussian"
                        else "scikit-learn LinearRegression", lambda: _sklearn(model, X, y), False))
    if get("statsmodels.api") is not None:
        methods.append(("statsmodels GLM (IRLS)", lambda: _statsmodels(model, X, y), False))

    def unpack(label, out):
        if isinstance(out, nllax.FitResult):
            return np.asarray(out.params), int(out.steps), nllax.FitStatus(int(out.status)).name
        if hasattr(out, "beta"):  # glmax FittedGLM
            return np.asarray(out.beta), int(out.num_iters), "converged" if bool(out.converged) else "not converged"
        beta, its = out
        return np.asarray(beta), its, ""

    rows, calls = [], []
    for label, call, is_jax in methods:
        row = Row(name, label)
        try:
            t0 = time.perf_counter()
            out = block(call())
            first = time.perf_counter() - t0
            beta, steps, status = unpack(label, out)
        except Exception as e:  # noqa: BLE001 - a failing method is reported, not fatal
            row.error = f"{type(e).__name__}: {e}"[:160]
            rows.append(row)
            log(f"    {label}: FAILED {row.error}")
            continue
        row.steps, row.status = steps, status
        row.agreement = float(np.max(np.abs(beta - ref)))
        row._first = first if is_jax else None  # type: ignore[attr-defined]
        rows.append(row)
        calls.append((row, call))
    timings = round_robin([c for _, c in calls], rounds=rounds)
    rate = matmul_rate(X)
    step_floor = (2.0 * n * p * p + 4.0 * n * p) / rate
    for (row, _), tm in zip(calls, timings):
        row.median_s = tm.median
        if row._first is not None:  # type: ignore[attr-defined]
            row.compile_s = max(row._first - tm.median, 0.0)  # type: ignore[attr-defined]
        if row.steps:
            row.floor_ratio = tm.median / (row.steps * step_floor)
    for row in rows:
        log(f"    {row.method:45s} {row.median_s * 1e3:9.2f} ms  compile "
            f"{row.compile_s if row.compile_s is not None else float('nan'):5.2f} s  steps "
            f"{row.steps}  agree {row.agreement:.1e}  {row.status} {row.error}")
    return rows, rate, step_floor


def table(problem_rows) -> str:
    out = []
    for (name, rate, floor), rows in problem_rows:
        sm = next((r for r in rows if r.method.startswith("statsmodels") and not r.error), None)
        gl = next((r for r in rows if r.method == "glmax IRLS (start beta = 0)" and not r.error), None)
        out.append(f"\n### {name}\n\nmatmul rate {rate / 1e9:.2f} GFLOP/s; one Newton step's "
                   f"floor {floor * 1e3:.3f} ms\n")
        out.append("| method | median (ms) | compile (s) | steps | x floor | vs glmax (beta=0) "
                   "| vs statsmodels | max abs diff to optimum | status |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r.error:
                out.append(f"| {r.method} | failed: {r.error} | | | | | | | |")
                continue
            vs_gl = f"{r.median_s / gl.median_s:.2f}x" if gl else "–"
            vs_sm = f"{sm.median_s / r.median_s:.1f}x faster" if sm else "–"
            comp = f"{r.compile_s:.2f}" if r.compile_s is not None else "–"
            fr = f"{r.floor_ratio:.1f}" if r.floor_ratio is not None else "–"
            out.append(f"| {r.method} | {r.median_s * 1e3:.2f} | {comp} | {r.steps} | {fr} "
                       f"| {vs_gl} | {vs_sm} | {r.agreement:.1e} | {r.status} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "GLM.md"))
    ap.add_argument("--only", default=None,
                    help="comma-separated 1-based indices of the problems to run")
    opts = ap.parse_args(argv)
    problems = [("poisson", 500, 10), ("logistic", 2000, 5)] if opts.quick else PROBLEMS
    if opts.only:
        problems = [problems[int(i) - 1] for i in opts.only.split(",")]
    load0 = os.getloadavg()
    results = []

    def report():  # written after every problem: a long run that dies keeps its part
        load1 = os.getloadavg()
        return (
            "# GLM fits: nllax.fit against glmax, glum, scikit-learn, statsmodels\n\n"
            f"{__doc__.split('Usage::')[0].split(chr(10), 1)[1].strip()}\n\n"
            f"Load average (1 min) {load0[0]:.1f} at the start, {load1[0]:.1f} at the end, on "
            f"{os.cpu_count()} CPUs. Versions: nllax {nllax.__version__}, jax {jax.__version__}, "
            f"glmax {version('glmax')}, glum {version('glum')}, scikit-learn {version('sklearn')}, "
            f"statsmodels {version('statsmodels')}.\n" + table(results)
        )

    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the baselines' convergence chatter
        for model, n, p in problems:
            print(f"{model} n={n} p={p}", flush=True)
            rows, rate, floor = run_problem(model, n, p, rounds=3 if opts.quick else 7)
            results.append(((f"{model} n={n:g} p={p}", rate, floor), rows))
            if not opts.quick:
                pathlib.Path(opts.out).write_text(report())
    text = report()
    print(text)
    if not opts.quick:
        pathlib.Path(opts.out).write_text(text)
        print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
