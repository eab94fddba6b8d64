"""Section 2: fitting linear, logistic and Poisson regressions, nllax.fit vs the usual tools.

Data: ``n`` observations, ``d`` standard-normal regressors plus an intercept, seed 0,
float64 everywhere (statsmodels, scikit-learn and SciPy work in float64; the JAX fits run
under ``jax.enable_x64``). The objective is the *mean* NLL, whose minimiser is the MLE.

Every method is timed after compilation (JAX methods are called once first; the compile
time is the first call minus the median of the timed ones, or the AOT compile time for
the hand-written loop). Agreement is ``max |θ̂ - θ̂_statsmodels|`` over the d + 1
coefficients. The NumPy/SciPy-based baselines are timed twice: with the BLAS threads they
start with, and limited to one BLAS thread (``threadpoolctl``, the in-process equivalent of
``OPENBLAS_NUM_THREADS=1``), which changes them a lot on small machines.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import nllax
from _libs import get
from _measure import Timing, block, compile_jax, time_round_robin

MODELS = ("linear", "logistic", "poisson")


# ---------------------------------------------------------------------------- data


def make_data(model: str, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` with X of shape (n, d) (no intercept column) and y of shape (n,)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = rng.standard_normal(d) / np.sqrt(d)
    if model == "linear":
        y = 0.5 + X @ beta + rng.standard_normal(n)
    elif model == "logistic":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(0.3 + X @ beta)))).astype(np.float64)
    elif model == "poisson":
        y = rng.poisson(np.exp(0.5 + 0.5 * X @ beta)).astype(np.float64)
    else:
        raise ValueError(model)
    return X, y


def with_intercept(X: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((X.shape[0], 1)), X])


# ---------------------------------------------------------------------------- JAX objectives
# Module-level functions: nllax.fit caches its compiled loop on the objective's identity.


def _eta(theta, X):
    return theta["b"] + X @ theta["w"]


def nll_linear(theta, X, y):
    return nllax.gaussian.nll(y, _eta(theta, X), reduction="mean")


def nll_logistic(theta, X, y):
    return nllax.bernoulli.nll(y, logits=_eta(theta, X), reduction="mean")


def nll_poisson(theta, X, y):
    return nllax.poisson.nll(y, log_rate=_eta(theta, X), reduction="mean")


OBJECTIVES = {"linear": nll_linear, "logistic": nll_logistic, "poisson": nll_poisson}
# One object each: nllax.fit reuses its compiled loop only for the same optimizer object.
ADAM = optax.adam(1e-2)
LBFGS = optax.lbfgs()


def _theta0(d):
    return {"b": jnp.zeros((), jnp.float64), "w": jnp.zeros(d, jnp.float64)}


def _flat(theta) -> np.ndarray:
    return np.concatenate([np.atleast_1d(np.asarray(theta["b"])), np.asarray(theta["w"])])


def optax_lbfgs_loop(objective: Callable, max_steps: int = 500, tol: float = 1e-10):
    """A hand-written jitted optax L-BFGS loop (the documented optax pattern): a
    ``lax.while_loop`` until ``||grad|| <= tol`` or ``max_steps``."""
    opt = optax.lbfgs()

    def solve(theta, X, y):
        def fn(p):
            return objective(p, X, y)

        value_and_grad = optax.value_and_grad_from_state(fn)

        def step(carry):
            p, state, _ = carry
            value, grad = value_and_grad(p, state=state)
            updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=fn)
            return optax.apply_updates(p, updates), state, optax.tree.norm(grad)

        def cond(carry):
            _, state, gnorm = carry
            it = optax.tree.get(state, "count")
            return (it == 0) | ((it < max_steps) & (gnorm > tol))

        p, state, _ = jax.lax.while_loop(
            cond, step, (theta, opt.init(theta), jnp.asarray(jnp.inf, jnp.float64))
        )
        return p, optax.tree.get(state, "count")

    return solve


# ---------------------------------------------------------------------------- baselines


def _statsmodels(model, Xc, y):
    sm = get("statsmodels.api")
    if model == "linear":
        res = sm.OLS(y, Xc).fit()
    else:
        fam = sm.families.Binomial() if model == "logistic" else sm.families.Poisson()
        res = sm.GLM(y, Xc, family=fam).fit()
    return np.asarray(res.params), getattr(res, "fit_history", {}).get("iteration", 1)


def _sklearn(model, X, y):
    lm = get("sklearn.linear_model")
    sk = get("sklearn")
    if model == "linear":
        m = lm.LinearRegression().fit(X, y)
        return np.concatenate([[m.intercept_], m.coef_]), 1
    if model == "logistic":
        # Unpenalised: C=inf from scikit-learn 1.8 on (penalty=None is deprecated there).
        major, minor = (int(v) for v in sk.__version__.split(".")[:2])
        kw = {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}
        m = lm.LogisticRegression(tol=1e-10, max_iter=10_000, **kw).fit(X, y)
        return np.concatenate([m.intercept_, m.coef_[0]]), int(m.n_iter_[0])
    m = lm.PoissonRegressor(alpha=0.0, tol=1e-10, max_iter=10_000).fit(X, y)
    return np.concatenate([[m.intercept_], m.coef_]), int(m.n_iter_)


def _np_objective(model, Xc, y):
    n = len(y)

    def fg(theta):
        eta = Xc @ theta
        if model == "linear":
            r = eta - y
            return 0.5 * (r @ r) / n, Xc.T @ r / n
        if model == "logistic":
            f = np.sum(np.logaddexp(0.0, eta) - y * eta) / n
            return f, Xc.T @ (0.5 * (1.0 + np.tanh(0.5 * eta)) - y) / n
        mu = np.exp(eta)
        return np.sum(mu - y * eta) / n, Xc.T @ (mu - y) / n

    return fg


def _scipy_lbfgsb(model, Xc, y):
    opt = get("scipy.optimize")
    res = opt.minimize(
        _np_objective(model, Xc, y), np.zeros(Xc.shape[1]), jac=True, method="L-BFGS-B",
        options={"maxiter": 10_000, "gtol": 1e-10, "ftol": 1e-15},
    )
    return res.x, int(res.nit)


# ---------------------------------------------------------------------------- running


@dataclasses.dataclass
class FitRow:
    model: str
    method: str
    time: Timing | None = None  # default BLAS threads
    time_1thread: Timing | None = None  # BLAS limited to one thread
    compile_s: float | None = None
    iterations: Any = None
    agreement: float | None = None  # max |theta - theta_statsmodels|
    status: str = ""
    error: str = ""


def run(n: int, d: int, *, budget_s: float, quick: bool = False, log=print
        ) -> tuple[list[FitRow], str]:
    """All methods on the three models; returns the rows and the BLAS note. ``quick``
    (the smoke run) leaves out the slowest-compiling extras: `nllax.fit` with
    `optax.lbfgs()` and the Newton building blocks."""
    tpc = get("threadpoolctl")
    rows: list[FitRow] = []
    with jax.enable_x64(True), warnings.catch_warnings():
        # Convergence chatter of the baselines is not the benchmark's business.
        warnings.simplefilter("ignore")
        for model in MODELS:
            log(f"  {model} regression, n = {n}, d = {d} + intercept")
            rows += _run_model(model, n, d, budget_s=budget_s, tpc=tpc, quick=quick, log=log)
    return rows, ""


def _run_model(model, n, d, *, budget_s, tpc, quick, log):
    X, y = make_data(model, n, d)
    Xc = with_intercept(X)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    objective = OBJECTIVES[model]
    theta0 = _theta0(d)

    methods: list[tuple[str, Callable[[], tuple[np.ndarray, Any, str]], bool]] = []
    compile_s: dict[str, float] = {}

    if hasattr(nllax, "fit"):
        def nllax_default():
            r = nllax.fit(objective, theta0, Xj, yj)
            return r.params, r.steps, r

        def nllax_adam():
            r = nllax.fit(objective, theta0, Xj, yj, optimizer=ADAM, max_steps=3000)
            return r.params, r.steps, r

        def nllax_lbfgs():
            r = nllax.fit(objective, theta0, Xj, yj, optimizer=LBFGS)
            return r.params, r.steps, r

        methods += [("nllax.fit (default: damped Newton)", nllax_default, True),
                    ("nllax.fit(optimizer=optax.adam(1e-2), max_steps=3000)", nllax_adam, True)]
        if not quick:
            methods.append(("nllax.fit(optimizer=optax.lbfgs())", nllax_lbfgs, True))

    loop = compile_jax(optax_lbfgs_loop(objective), theta0, Xj, yj)
    compile_s["hand-written jitted optax L-BFGS loop"] = loop.compile_s
    methods.append(("hand-written jitted optax L-BFGS loop",
                    lambda: (*loop.call(theta0, Xj, yj), None), True))
    if get("statsmodels.api") is not None:
        methods.append(("statsmodels " + ("OLS" if model == "linear" else "GLM (IRLS)"),
                        lambda: (*_statsmodels(model, Xc, y), None), False))
    if get("sklearn.linear_model") is not None:
        name = {"linear": "LinearRegression", "logistic": "LogisticRegression(C=inf, tol=1e-10)",
                "poisson": "PoissonRegressor(alpha=0, tol=1e-10)"}[model]
        methods.append((f"scikit-learn {name}", lambda: (*_sklearn(model, X, y), None), False))
    if get("scipy.optimize") is not None:
        methods.append(("scipy L-BFGS-B, analytic gradient",
                        lambda: (*_scipy_lbfgsb(model, Xc, y), None), False))

    # The building blocks of one Newton step, to explain the fit's time and compile time.
    x0, unravel = ravel_pytree(theta0)

    def flat_objective(x, X, y):
        return objective(unravel(x), X, y)

    blocks = (("one value_and_grad of the objective", jax.value_and_grad(flat_objective)),
              ("one jax.hessian of the objective", jax.hessian(flat_objective)))
    for label, fn in () if quick else blocks:
        c = compile_jax(fn, x0, Xj, yj)
        compile_s[label] = c.compile_s
        methods.append((label, (lambda c=c: (c.call(x0, Xj, yj), None, None)), True))

    rows = []
    calls = []
    for name, call, is_jax in methods:
        row = FitRow(model, name)
        try:
            t0 = time.perf_counter()
            theta, its, res = block(call())
            first = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - a failing method is reported, not fatal
            row.error = f"{type(e).__name__}: {e}"[:200]
            rows.append(row)
            log(f"    {name}: FAILED {row.error}")
            continue
        row.iterations = int(np.asarray(its)) if its is not None else None
        row.compile_s = compile_s.get(name, first if is_jax else None)
        if res is not None:
            row.status = f"{nllax.FitStatus(int(res.status)).name}" if hasattr(nllax, "FitStatus") \
                else ("converged" if bool(res.converged) else "not converged")
        if name.startswith("one "):
            row._theta = None  # type: ignore[attr-defined]
        else:
            row._theta = _flat(theta) if isinstance(theta, dict) else np.asarray(theta)  # type: ignore[attr-defined]
        rows.append(row)
        calls.append((row, call))

    ref = next((r for r in rows if r.method.startswith("statsmodels") and not r.error), None)
    for r in rows:
        if ref is not None and not r.error and r._theta is not None:  # type: ignore[attr-defined]
            r.agreement = float(np.max(np.abs(r._theta - ref._theta)))  # type: ignore[attr-defined]

    fns = [lambda c=c: c()[:2] for _, c in calls]
    for (row, _), tm in zip(calls, time_round_robin(fns, warmup=0, budget_s=budget_s,
                                                     min_repeats=3, max_repeats=15)):
        row.time = tm
    if tpc is not None:
        with tpc.threadpool_limits(limits=1, user_api="blas"):
            for (row, _), tm in zip(calls, time_round_robin(fns, warmup=0, budget_s=budget_s,
                                                             min_repeats=3, max_repeats=15)):
                row.time_1thread = tm
    for row, _ in calls:
        if row.compile_s is not None and row.method in compile_s:
            pass
        elif row.compile_s is not None and row.time is not None:
            row.compile_s = max(row.compile_s - row.time.median, 0.0)  # first call minus a call
        log(f"    {row.method:58s} {row.time.ms():>24s} ms  iters {row.iterations}  "
            f"|Δθ| {row.agreement if row.agreement is not None else float('nan'):.1e}")
    return rows
