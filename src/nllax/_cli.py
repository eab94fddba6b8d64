r"""``nllax report``: the seed's claim, verified on this machine's devices.

For every entry of :data:`nllax.equivalences` and every selected device, on embedded,
seeded, generated data (a small linear model per family), the report measures:

* **identity miss**: the largest ``EquivalenceCheck.rel_error`` of
  :math:`\mathrm{NLL} = a\cdot\mathrm{loss} + b` over four random inputs (plain, with
  weights, with a mask, with both);
* **gradient ratio**: :func:`nllax.verify.gradient_ratio` of the NLL against the loss,
  as functions of the linear model's coefficients, compared with the predicted constant
  ``a = eq.a(...)``;
* **theta_hat difference**: the coefficients reached by :func:`nllax.fit` on the NLL and
  on the loss, ``max|theta_nll - theta_loss| / max|theta_loss|``.

Each row passes or fails against tolerances keyed by dtype, printed with the report.
The exit status is 0 only when every row passes. Each row names its likelihood
(``Equivalence.family``). The rows are the registry :data:`nllax.equivalences`, nothing
listed here: a row without a hand-made problem gets a generic one from its loss's declared
data support, and a loss declared ``smooth=False`` gets the non-smooth tolerance.

``--plot FILE.png`` draws one panel per row (the NLL and ``a * loss + b`` along a sweep
of the prediction, and the gradient ratio over ``a``); ``--html FILE`` writes the table and
that figure as one self-contained page (both need matplotlib, imported only then). The
command keeps JAX's persistent compilation cache in the user's cache directory
(``$NLLAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nllax/jax``, else ``~/.cache/nllax/jax``;
``--cache-dir`` to move it, ``--no-cache`` to turn it off), for its own run only: the
library never turns it on. In the same folder it keeps its own compiled programs
(measurements and fit loops, keyed by the nllax sources), so that a warm run neither
traces nor lowers them (:mod:`nllax._report_programs`). The report states how long the
first row (which compiles or loads its group's programs) and the compilation took, and how
many programs came from the cache. See :mod:`nllax._report_extras`.

Usage::

    nllax report [--dtype float32|float64] [--n N] [--device all|cpu|cpu:0,...] [--seed S] [--json]
                 [--plot FILE.png] [--html FILE] [--no-cache] [--cache-dir DIR]
    python -m nllax [report] ...
    nllax audit MODULE:FUNCTION --support SUPPORT [--a A] [--predictions LIST] [--swap]
                [--base MODULE:FUNCTION] [--json]     (nllax.audit on any loss)

``--dtype float64`` turns on JAX's 64-bit mode for this command only (inside
``jax.enable_x64``); the library itself never changes global configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import math
import platform
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["NON_SMOOTH", "TOLERANCES", "main", "run_report"]

# Tolerances keyed by dtype. Where they come from: `run_report` on CPU for n in
# {20, 40, 100, 200, 1000} x seeds 0-9 (scratch calibration, 2026-11-25); the worst value
# seen is given so that the margin is visible.
# - identity, relative miss of NLL = a * loss + b: rounding in the sums. Worst seen
#   4.2e-7 (float32), 8.9e-16 (float64).
# - ratio, |measured / predicted - 1| and the residual of the gradient fit: worst seen
#   7.8e-6 (float32, MAE: a = n/beta multiplies the rounding), 2.2e-15 (float64). The
#   float64 bound is nllax.verify's default rtol.
# - theta, max|theta_nll - theta_loss| / max|theta_loss| for smooth objectives: both fits
#   stop at the optimiser's tolerance. Worst seen 7.1e-7 (float32), 9.5e-14 (float64).
# - theta_non_smooth (SAE, MAE): see NON_SMOOTH. Worst seen 1.4e-2 (float32) and 7.9e-4
#   (float64) for n >= 40; 0.12 (float32) at n = 20, which is why n starts at 40.
TOLERANCES: dict[str, dict[str, float]] = {
    "float32": {"identity": 1e-5, "ratio": 1e-4, "theta": 1e-4, "theta_non_smooth": 5e-2},
    "float64": {"identity": 1e-12, "ratio": 1e-10, "theta": 1e-9, "theta_non_smooth": 5e-2},
}

# SAE and MAE are piecewise linear in the coefficients: their minimiser (least absolute
# deviations, a median regression) sits on a kink where the gradient does not vanish,
# and near it the objective is flat to within rounding over a small region. The NLL and
# the loss still have proportional (sub)gradients and the same minimiser, but two
# gradient-based fits stop at slightly different points near it, even in float64. The
# honest tolerance for their theta_hat agreement is therefore loose: 5e-2 relative (the
# worst seen is 1.4e-2), where smooth rows agree to ~1e-7 (float32).
NON_SMOOTH = frozenset({"sae", "mae", "pinball"})


def non_smooth(names: Sequence[str] | None = None) -> frozenset:
    """The rows held to the non-smooth theta tolerance: :data:`NON_SMOOTH` and every loss
    declared with ``smooth=False`` in the family core (a row added on another branch, a
    pinball loss say, is found without being listed here). ``names``: the rows to
    consider (default: every registered equivalence)."""
    import nllax

    names = list(nllax.equivalences) if names is None else list(names)
    return frozenset(n for n in names if n in NON_SMOOTH
                     or getattr(_declaration(n), "smooth", True) is False)


def _declaration(name: str):
    """The family-core declaration of loss ``name`` (``nllax.losses.<name>``), if any."""
    from nllax import _family as F

    return F.LOSSES.get(f"nllax.losses.{name}")

_MIN_N = 40


# ----------------------------------------------------------------------------- problems


@dataclasses.dataclass(frozen=True)
class Problem:
    """One embedded data set: ``pred = model(theta, X)`` predicts ``y``."""

    name: str
    X: np.ndarray
    y: np.ndarray
    noise: dict[str, float]
    theta_shape: tuple[int, ...]
    model: Callable[[Any, Any], Any]
    label_dtype: bool = False  # y holds integer labels (Categorical)


def _linear(theta, X):
    return X @ theta


def _reference_class_logits(theta, X):
    # Class 0 is the reference (logit 0): with K free columns the coefficients would be
    # identified only up to a common shift, and theta_hat would not be unique.
    import jax.numpy as jnp

    eta = X @ theta
    return jnp.concatenate([jnp.zeros(eta.shape[:-1] + (1,), eta.dtype), eta], axis=-1)


def _design(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = rng.normal(size=(n, d))
    X[:, 0] = 1.0  # intercept
    return X


def _exp_linear(theta, X):
    import jax.numpy as jnp

    return jnp.exp(X @ theta)


def make_problem(name: str, n: int, seed: int, eq: Any = None) -> Problem:
    """The embedded data set for equivalence ``name``: seeded by ``seed`` and the name,
    so a row's data do not depend on which other rows are run.

    The rows of the seed table have hand-made problems. Any other row (one added later,
    on another branch) gets a generic problem from its loss's declared data support
    (:func:`_generic_problem`); only a loss with neither raises ``KeyError``."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    d = 3
    X = _design(rng, n, d)
    if name in ("sse", "mse"):
        theta = np.array([1.0, -2.0, 0.5])
        y = X @ theta + 0.5 * rng.normal(size=n)
        return Problem(name, X, y, {"scale": 0.7}, (d,), _linear)
    if name in ("sae", "mae"):
        theta = np.array([1.0, -2.0, 0.5])
        y = X @ theta + rng.laplace(scale=0.5, size=n)
        return Problem(name, X, y, {"scale": 0.8}, (d,), _linear)
    if name == "binary_cross_entropy":
        theta = np.array([0.3, -0.8, 0.5])
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ theta)))).astype(float)
        return Problem(name, X, y, {}, (d,), _linear)
    if name == "cross_entropy":
        k = 3
        theta = np.array([[0.2, -0.3], [0.8, -0.5], [-0.4, 0.6]])
        logits = np.concatenate([np.zeros((n, 1)), X @ theta], axis=1)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = np.array([rng.choice(k, p=row) for row in p])
        return Problem(name, X, y, {}, (d, k - 1), _reference_class_logits, label_dtype=True)
    if name == "poisson":
        theta = np.array([0.5, 0.3, -0.4])
        y = rng.poisson(np.exp(X @ theta)).astype(float)
        return Problem(name, X, y, {}, (d,), _linear)
    if name in ("huber", "smooth_l1"):
        theta = np.array([1.0, -2.0, 0.5])
        y = X @ theta + 0.5 * rng.standard_t(3, size=n)
        return Problem(name, X, y, {"scale": 0.5, "delta": 1.5}, (d,), _linear)
    if name == "log_cosh":
        theta = np.array([1.0, -2.0, 0.5])
        y = X @ theta + rng.logistic(scale=0.6, size=n)
        return Problem(name, X, y, {}, (d,), _linear)
    if name == "msle":  # y > -1; the prediction exp(X theta) > -1 as well
        theta = np.array([0.5, -0.6, 0.3])
        y = np.expm1(np.log1p(np.exp(X @ theta)) + 0.3 * rng.normal(size=n))
        return Problem(name, X, y, {"scale": 0.3}, (d,), _exp_linear)
    if name == "tweedie_deviance":  # zeros and positive values; the prediction is the log-mean
        theta = np.array([0.5, -0.6, 0.3])
        mu = np.exp(X @ theta)
        y = np.where(rng.random(n) < 0.2, 0.0, rng.gamma(2.0, mu / 2.0))
        return Problem(name, X, y, {"dispersion": 1.0, "power": 1.5}, (d,), _linear)
    if name == "pinball":
        theta = np.array([1.0, -2.0, 0.5])
        y = X @ theta + rng.laplace(scale=0.5, size=n)
        return Problem(name, X, y, {"scale": 0.8, "quantile": 0.75}, (d,), _linear)
    if name == "poisson_deviance":
        theta = np.array([0.5, 0.3, -0.4])
        y = rng.poisson(np.exp(X @ theta)).astype(float)
        return Problem(name, X, y, {}, (d,), _linear)
    if name == "binomial_deviance":  # 10 trials each (a scalar, like the noise parameters)
        theta = np.array([0.3, -0.8, 0.5])
        y = rng.binomial(10, 1.0 / (1.0 + np.exp(-(X @ theta)))).astype(float)
        return Problem(name, X, y, {"trials": 10.0}, (d,), _linear)
    return _generic_problem(name, rng, X, eq)


def _generic_problem(name: str, rng, X, eq) -> Problem:
    """A linear model for a loss declared in the family core, from its data support:
    real data (``y = X theta + noise``, heavy-tailed so that robust losses see outliers,
    prediction ``X theta``), positive data and counts (prediction ``exp(X theta)``, valid
    for a mean and for a log-mean alike). Noise parameters of the row are set to 1.
    ``KeyError`` when the loss is not declared or its support is none of these."""
    decl = _declaration(name)
    support = getattr(getattr(decl, "data", None), "constraint", None)
    kind = getattr(support, "name", None)
    if eq is None:
        import nllax

        eq = nllax.equivalences.get(name)
    if eq is None or kind not in ("real", "positive", "counts"):
        raise KeyError(name)
    n, d = X.shape
    noise = {k: 1.0 for k in eq.noise}
    theta = np.array([0.5, -0.6, 0.3])
    if kind == "real":
        y = X @ theta + 0.5 * rng.standard_t(5, size=n)
        return Problem(name, X, y, noise, (d,), _linear)
    if kind == "positive":
        y = np.exp(X @ theta + 0.3 * rng.normal(size=n))
        return Problem(name, X, y, noise, (d,), _exp_linear)
    y = rng.poisson(np.exp(X @ theta)).astype(float)
    return Problem(name, X, y, noise, (d,), _exp_linear)


# ----------------------------------------------------------------------------- checks


_CASES = ((False, False), (True, False), (False, True), (True, True))  # (weights, mask)


# Compiled functions and objectives are built once per equivalence (or group of them) and
# kept: nllax.fit caches its compiled loop on the objective's identity, so a second report
# in the same process (the tests) compiles nothing again.
_PAIRS: dict[Any, Any] = {}
_MEASURES: dict[Any, Any] = {}
_FIT_OBJECTIVES: dict[Any, Any] = {}


def _pair(eq, model):
    """``(nll, loss)`` as functions of the model's coefficients: ``f(theta, X, y, noise)``
    with ``noise`` a dict holding at least the noise parameters ``eq.noise``."""
    key = (eq, model)
    if key not in _PAIRS:

        def nll(theta, X, y, noise):
            return eq.nll(y, model(theta, X), **{k: noise[k] for k in eq.noise})

        def loss(theta, X, y, noise):
            return eq.loss_at(y, model(theta, X), **{k: noise[k] for k in eq.noise})

        _PAIRS[key] = (nll, loss)
    return _PAIRS[key]


def _measure_fn(eq, model):
    """One compiled function returning

    * the relative miss of ``NLL = a * loss + b`` in the four cases plain / weights /
      mask / both, each at its own random coefficients;
    * :func:`nllax.verify.gradient_ratio` of the NLL against the loss at ``theta_r``;
    * the predicted ratio ``a = eq.a(y, **noise)``.

    One compile instead of hundreds of eager operations."""
    key = (eq, model)
    if key not in _MEASURES:
        import jax
        import jax.numpy as jnp

        from nllax import verify

        f_nll, f_loss = _pair(eq, model)

        def measure(thetas, theta_r, X, y, w, m, noise):
            own = {k: noise[k] for k in eq.noise}
            misses = []
            for i, (use_w, use_m) in enumerate(_CASES):
                check = eq.check(y, model(thetas[i], X), weights=w if use_w else None,
                                 where=m if use_m else None, **own)
                misses.append(check.rel_error)
            ratio = verify.gradient_ratio(f_nll, f_loss, theta_r, X, y, noise)
            return jnp.stack(misses), ratio, eq.a(y, **own)

        _MEASURES[key] = jax.jit(measure)
    return _MEASURES[key]


def _fit_objective(members: tuple):
    """One objective for the fits of several equivalences that share a model, the
    data's shapes and smoothness (:func:`_plan`): ``objective(theta, which, X, y, noise)`` is *exactly* the NLL of
    ``members[i]`` for ``which = 2 i`` and exactly its loss for ``which = 2 i + 1``.

    ``lax.switch`` runs only the selected branch, so fitting it with ``which = 2 i``
    is fitting that NLL. The point is speed: compiling nllax.fit's loop is most of the
    report's run time, and one compiled loop then serves every fit of the group
    (measured: half the time of one loop per equivalence)."""
    if members not in _FIT_OBJECTIVES:
        from jax import lax

        branches = tuple(f for eq, model in members for f in _pair(eq, model))

        def objective(theta, which, X, y, noise):
            return lax.switch(which, branches, theta, X, y, noise)

        _FIT_OBJECTIVES[members] = objective
    return _FIT_OBJECTIVES[members]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How one row runs: its data, its fit objective and the branch index of its NLL."""

    prob: Problem
    objective: Callable[..., Any]
    which: int
    noise: dict[str, float]  # the group's noise parameters (placeholder 1.0 if unused)
    members: tuple = ()  # the group's (equivalence, model) pairs: what `objective` is


def _plan(names: Sequence[str], eqs, n: int, seed: int) -> dict[str, _Plan | str]:
    """Builds each row's problem and groups the fits by model and data shapes."""
    probs: dict[str, Any] = {}
    for name in names:
        try:
            probs[name] = make_problem(name, n, seed, eqs[name])
        except KeyError:
            probs[name] = f"no embedded problem for equivalence {name!r}"
    # Non-smooth rows fit in groups of their own: only their fits can end degenerate and
    # need the L-BFGS polish, and that program holds every branch of its group at each of
    # its line search's call sites. With the smooth rows of the linear model in the same
    # group it was the report's largest program (16126 HLO ops, 42.6 CPU s to compile, a
    # third of the cold run's compile CPU); with the three non-smooth rows alone it is 2255
    # ops and 5.5 s, and the smooth group's Newton loop loses their branches too; the rows'
    # numbers are bit for bit the same (bench/TEST_TIME.md, "Report and subprocess tests").
    rough = non_smooth([n for n, p in probs.items() if isinstance(p, Problem)])
    groups: dict[Any, list[str]] = {}
    for name, prob in probs.items():
        if isinstance(prob, Problem):
            key = (prob.model, prob.theta_shape, prob.label_dtype, name in rough)
            groups.setdefault(key, []).append(name)
    plans: dict[str, _Plan | str] = {k: v for k, v in probs.items() if isinstance(v, str)}
    for members in groups.values():
        pairs = tuple((eqs[m], probs[m].model) for m in members)
        objective = _fit_objective(pairs)
        keys = sorted({k for m in members for k in probs[m].noise})
        for i, m in enumerate(members):
            noise = {k: probs[m].noise.get(k, 1.0) for k in keys}
            plans[m] = _Plan(probs[m], objective, 2 * i, noise, pairs)
    return plans


@dataclasses.dataclass(frozen=True)
class _OnDevice:
    """A problem's arrays committed to one device, in the report's dtype."""

    dev: Any
    dtype: Any
    X: Any
    y: Any
    noise: dict[str, Any]

    def put(self, a, dtype=None):
        import jax

        return jax.device_put(np.asarray(a).astype(dtype or self.dtype), self.dev)


def _on_device(plan: _Plan, dev, dtype) -> _OnDevice:
    import jax
    import jax.numpy as jnp

    def put(a, dt):
        return jax.device_put(np.asarray(a).astype(dt), dev)

    prob = plan.prob
    return _OnDevice(dev, dtype, put(prob.X, dtype),
                     put(prob.y, jnp.int32 if prob.label_dtype else dtype),
                     {k: put(v, dtype) for k, v in plan.noise.items()})


def _fit_row(programs, plan: _Plan, theta0, which, data: _OnDevice):
    """``nllax.fit(plan.objective, theta0, which, X, y, noise)`` with the defaults: what
    ``nllax.fit`` does outside jit (``_fit._setup``, then ``_fit._solve_impl``), its two
    compiled steps called through ``programs`` (:mod:`nllax._report_programs`): the same
    programs, kept for the next run."""
    from nllax import _fit

    args = (which, data.X, data.y, data.noise)
    config, params0, options, controls, _, _ = _fit._setup(plan.objective, theta0, args)
    parts = (plan.members, config.solver, config.progress)
    return _fit._solve_impl(
        config, params0, args, options, controls,
        run=lambda *a, **k: programs.call("fit", parts, _fit._run, *a, **k),
        polish=lambda *a, **k: programs.call("polish", parts, _fit._polish, *a, **k))


def _check_row(name: str, eq, plan: _Plan | str, dev, dtype_name: str,
               seed: int, programs=None) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import nllax

    dtype = jnp.dtype(dtype_name)
    tol = TOLERANCES[dtype_name]
    row: dict[str, Any] = {"equivalence": name, "device": _device_name(dev),
                           "family": eq.family, "formula": eq.formula}
    if isinstance(plan, str):
        row.update(passed=False, error=plan)
        return row
    prob = plan.prob
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])
    data = _on_device(plan, dev, dtype)
    # Random inputs: coefficients for the four identity cases, weights in [0.5, 2), a
    # mask dropping about a quarter, and a generic point for the gradient ratio (at the
    # optimum both gradients vanish and their ratio means nothing).
    n = prob.y.shape[0]
    thetas = data.put(rng.normal(size=(len(_CASES),) + prob.theta_shape))
    w = data.put(rng.uniform(0.5, 2.0, size=n))
    m = data.put(rng.random(n) > 0.25, jnp.bool_)
    theta_r = data.put(rng.normal(size=prob.theta_shape))
    if programs is None:
        from nllax._report_programs import Programs

        programs = Programs(None)
    misses, gr, predicted = jax.device_get(programs.call(
        "measure", (eq, prob.model), _measure_fn(eq, prob.model),
        thetas, theta_r, data.X, data.y, w, m, data.noise))
    misses = np.asarray(misses, np.float64)
    # A NaN miss must fail the row, not vanish in max().
    row["identity_rel_error"] = float(np.max(misses)) if np.all(np.isfinite(misses)) else math.inf
    measured, predicted = float(gr.ratio), float(predicted)
    row.update(ratio_measured=measured, ratio_predicted=predicted,
               ratio_rel_error=abs(measured / predicted - 1.0), cosine=float(gr.cosine),
               residual=float(gr.residual))

    # theta_hat from fitting the NLL and the loss, from the same start (zeros).
    theta0 = data.put(np.zeros(prob.theta_shape))
    fits = [_fit_row(programs, plan, theta0, data.put(which, jnp.int32), data)
            for which in (plan.which, plan.which + 1)]
    t_nll, t_loss = (np.asarray(jax.device_get(r.params), np.float64) for r in fits)
    size = float(np.max(np.abs(t_loss)))
    row.update(
        theta_nll=t_nll.tolist(), theta_loss=t_loss.tolist(),
        theta_rel_diff=float(np.max(np.abs(t_nll - t_loss)) / (size if size > 0 else 1.0)),
        steps=[int(r.steps) for r in fits],
        converged=[bool(r.converged) for r in fits],
        status=[nllax.FitStatus(int(r.status)).name for r in fits],
        ran_on=sorted({_device_name(d) for r in fits for d in r.params.devices()}),
    )

    rough = name in non_smooth([name])
    theta_tol = tol["theta_non_smooth"] if rough else tol["theta"]
    checks = {
        "identity": row["identity_rel_error"] <= tol["identity"],
        # proportional (residual ~ 0) and with the table's constant
        "ratio": row["ratio_rel_error"] <= tol["ratio"] and row["residual"] <= tol["ratio"],
        "theta": row["theta_rel_diff"] <= theta_tol,
        # A smooth fit must meet its convergence test. A non-smooth one may legitimately
        # stop on its step budget near the kink; it must still end on finite values.
        "converged": all(row["converged"]) if not rough
        else "NONFINITE" not in row["status"],
        # the fits ran where the data were put
        "device": row["ran_on"] == [row["device"]],
    }
    row.update(theta_tolerance=theta_tol, checks=checks, passed=all(checks.values()))
    return row


# ----------------------------------------------------------------------------- devices


def _device_name(dev) -> str:
    return f"{dev.platform}:{dev.id}"


def select_devices(spec: str) -> list:
    """Devices from ``spec``: ``all`` (every local device of the default backend), a
    platform (``cpu``, ``gpu``, ``tpu``: all its local devices), or ``platform:index``;
    several separated by commas. Raises ``ValueError`` naming what was not found."""
    import jax

    chosen: list = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":
            found = jax.local_devices()
        else:
            plat, _, idx = part.partition(":")
            try:
                devs = jax.local_devices(backend=plat)
            except RuntimeError as e:
                raise ValueError(f"no {plat!r} devices here ({e})") from None
            if idx == "":
                found = devs
            else:
                if not idx.isdigit():
                    raise ValueError(f"device {part!r}: the index must be an integer")
                found = [d for d in devs if d.id == int(idx)]
                if not found:
                    have = ", ".join(_device_name(d) for d in devs)
                    raise ValueError(f"no device {part!r}; this machine has {have}")
        chosen.extend(d for d in found if d not in chosen)
    if not chosen:
        raise ValueError("no device selected")
    return chosen


# ----------------------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    import nllax

    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "optax"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    out["nllax"] = nllax.__version__
    return out


def run_report(*, dtype: str = "float32", n: int = 200, device: str = "all",
               seed: int = 0, names: Sequence[str] | None = None,
               cache_dir: str | None = None) -> dict[str, Any]:
    """Runs every check and returns the report as a JSON-ready dict.

    The caller must have enabled 64-bit mode for ``dtype="float64"``. ``cache_dir`` is
    only recorded (the caller sets up the persistent compilation cache); ``timing``
    holds the wall times and JAX's compile times (see :mod:`nllax._report_extras`)."""
    import jax

    import nllax
    from nllax import _report_extras as X
    from nllax._report_programs import Programs

    start = time.perf_counter()
    programs = Programs(cache_dir)
    devices = select_devices(device)
    eqs = nllax.equivalences  # every registered row: nothing here is listed by hand
    names = list(eqs) if names is None else list(names)
    rows = []
    first_row_s = None
    with X.compile_timer() as compiled:
        plans = _plan(names, eqs, n, seed)
        for dev in devices:
            with jax.default_device(dev):
                for name in names:
                    t0 = time.perf_counter()
                    try:
                        row = _check_row(name, eqs[name], plans[name], dev, dtype, seed,
                                         programs)
                    except Exception as e:  # noqa: BLE001  (a crash is a failed row, not a traceback)
                        row = {"equivalence": name, "device": _device_name(dev),
                               "family": getattr(eqs[name], "family", ""),
                               "passed": False, "error": f"{type(e).__name__}: {e}"}
                    row["elapsed_s"] = round(time.perf_counter() - t0, 3)
                    rows.append(row)
                    if first_row_s is None:
                        first_row_s = round(time.perf_counter() - start, 3)
    elapsed = round(time.perf_counter() - start, 3)
    timing = {"total_s": elapsed, "first_row_s": first_row_s,
              "compile_s": round(compiled["trace_s"] + compiled["lower_s"]
                                 + compiled["backend_s"], 3),
              **{k: round(v, 3) if isinstance(v, float) else v for k, v in compiled.items()},
              "cache_dir": cache_dir,
              "programs_stored": {k: round(v, 3) if isinstance(v, float) else v
                                  for k, v in programs.counts.items()}}
    return {
        "header": {
            "backend": jax.default_backend(),
            "devices": [{"name": _device_name(d), "kind": d.device_kind} for d in devices],
            "dtype": dtype, "n": n, "seed": seed,
            "versions": _versions(),
            "platform": f"{platform.system()} {platform.machine()}",
        },
        "tolerances": {"dtype": dtype, **TOLERANCES[dtype],
                       "non_smooth": sorted(non_smooth())},
        "rows": rows,
        "passed": bool(rows) and all(r["passed"] for r in rows),
        "elapsed_s": elapsed,
        "timing": timing,
    }


def _fmt(x: Any, spec: str = ".1e") -> str:
    return "-" if x is None else format(x, spec)


def format_table(report: dict[str, Any]) -> str:
    """The report as aligned text for a terminal."""
    h, tol = report["header"], report["tolerances"]
    v = h["versions"]
    lines = [
        "nllax report: NLL = a * loss + b, checked on this machine",
        (f"  versions  python {v['python']}, jax {v['jax']}, jaxlib {v['jaxlib']}, "
         f"optax {v['optax']}, nllax {v['nllax']}"),
        f"  backend   {h['backend']} ({h['platform']}); devices: "
        + ", ".join(f"{d['name']} ({d['kind']})" for d in h["devices"]),
        f"  data      dtype {h['dtype']}, n = {h['n']} observations, seed {h['seed']}",
        (f"  pass if   identity miss <= {tol['identity']:.0e}, "
         f"|ratio/predicted - 1| <= {tol['ratio']:.0e}, "
         f"theta_hat diff <= {tol['theta']:.0e} "
         f"({', '.join(tol['non_smooth'])}: <= {tol['theta_non_smooth']:.0e}, non-smooth)"),
    ]
    t = report.get("timing")
    if t:
        p = t.get("programs_stored") or {}
        cache = (f"persistent cache {t['cache_dir']}: report programs {p.get('loaded', 0)} "
                 f"loaded ({p.get('load_s', 0.0):.1f} s), {p.get('stored', 0)} compiled and "
                 f"stored; other programs "
                 f"{t['cache_hits']} loaded, {t['cache_misses']} compiled and stored"
                 if t["cache_dir"] else "persistent cache off")
        lines.append(
            f"  timing    first row {t['first_row_s'] or 0:.1f} s (compiles or loads its group's "
            f"programs), all rows {t['total_s']:.1f} s; compilation {t['compile_s']:.1f} s for "
            f"{t['programs']} programs (trace {t['trace_s']:.1f}, lower {t['lower_s']:.1f}, "
            f"XLA or cache load {t['backend_s']:.1f}); {cache}")
    lines.append("")
    head = ["equivalence", "likelihood", "device", "identity miss", "grad ratio", "predicted a",
            "ratio miss", "theta_hat diff", "fit steps", "result"]
    table = [head]
    for r in report["rows"]:
        if "error" in r and "ratio_measured" not in r:
            table.append([r["equivalence"], r.get("family", ""), r["device"],
                          "-", "-", "-", "-", "-", "-", "FAIL"])
            continue
        failed = [k for k, ok in r["checks"].items() if not ok]
        table.append([
            r["equivalence"], r.get("family", ""), r["device"], _fmt(r["identity_rel_error"]),
            _fmt(r["ratio_measured"], ".6g"), _fmt(r["ratio_predicted"], ".6g"),
            _fmt(r["ratio_rel_error"]), _fmt(r["theta_rel_diff"]),
            "/".join(str(s) for s in r["steps"]),
            "pass" if r["passed"] else "FAIL (" + ", ".join(failed) + ")",
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    numeric = {3, 4, 5, 6, 7, 8}
    for j, row in enumerate(table):
        cells = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"error in {r['equivalence']} on {r['device']}: {r['error']}")
    n_fail = sum(not r["passed"] for r in report["rows"])
    lines += ["", f"{len(report['rows']) - n_fail} of {len(report['rows'])} rows pass "
              f"({report['elapsed_s']:.1f} s): "
              + ("ALL PASS" if report["passed"] else f"{n_fail} FAILED")]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def _positive_n(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < _MIN_N:
        raise argparse.ArgumentTypeError(f"must be >= {_MIN_N} (got {n})")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nllax",
        description="nllax: losses as negative log-likelihoods, checked on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"nllax {_nllax_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rep = sub.add_parser(
        "report", help="verify NLL = a * loss + b, gradients and fits on every device",
        description="For every equivalence and device: the identity's miss, the gradient "
                    "ratio against its prediction, and the theta_hat of fitting the NLL vs "
                    "the loss, with pass/fail. Exit status 0 only when all pass.",
    )
    rep.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="computation dtype (float64 enables JAX's 64-bit mode for this "
                          "command only); default float32")
    rep.add_argument("--n", type=_positive_n, default=200, metavar="N",
                     help=f"observations per problem (>= {_MIN_N}); default 200")
    rep.add_argument("--device", default="all", metavar="SPEC",
                     help="'all' (default: every local device of the default backend), a "
                          "platform ('cpu', 'gpu', 'tpu'), or 'cpu:0'; comma-separated")
    rep.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    rep.add_argument("--json", action="store_true", help="print one JSON document")
    rep.add_argument("--plot", default=None, metavar="FILE.png",
                     help="also draw one panel per equivalence (NLL and a * loss + b along a "
                          "sweep of the prediction, and the gradient ratio); needs matplotlib")
    rep.add_argument("--html", default=None, metavar="FILE",
                     help="also write the report as a self-contained HTML page (table and "
                          "the figure inline); needs matplotlib")
    rep.add_argument("--no-cache", action="store_true",
                     help="do not use the persistent compilation cache")
    rep.add_argument("--cache-dir", default=None, metavar="DIR",
                     help="where the persistent compilation cache lives (default "
                          "$NLLAX_CACHE_DIR, else $XDG_CACHE_HOME/nllax/jax, else "
                          "~/.cache/nllax/jax)")
    aud = sub.add_parser(
        "audit", help="is a loss an NLL up to a * loss + b? (nllax.audit)",
        description="Runs nllax.audit on LOSS, a function loss(y, pred) -> scalar for one "
                    "target and one prediction, given as MODULE:FUNCTION (the current "
                    "directory is importable). Exit status 0 when it is a likelihood, 1 when "
                    "not, 2 on a usage error.",
    )
    aud.add_argument("loss", metavar="MODULE:FUNCTION",
                     help="e.g. optax.losses:huber_loss or mylosses:my_loss")
    aud.add_argument("--support", required=True, type=_audit_support, metavar="SUPPORT",
                     help="real, positive, unit, binary, counts, or categorical:K")
    aud.add_argument("--a", type=float, default=None, metavar="A",
                     help="the scale to test (default: search for the scales that work)")
    aud.add_argument("--predictions", default=None, metavar="LIST",
                     help="predictions to compare: comma-separated numbers, or a JSON list "
                          "(one list of K logits per prediction for categorical); write "
                          "--predictions=-1,0,2 when the list starts with a minus")
    aud.add_argument("--swap", action="store_true",
                     help="the function takes (prediction, target), as optax's losses do")
    aud.add_argument("--base", default=None, metavar="MODULE:FUNCTION",
                     help="log h(y) of a base measure, e.g. for counts -log(k!)")
    aud.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def _audit_support(text: str) -> Any:
    if text.startswith("categorical:"):
        k = text.partition(":")[2]
        if not k.isdigit() or int(k) < 2:
            raise argparse.ArgumentTypeError(f"categorical:K needs an integer K >= 2, got {text!r}")
        return ("categorical", int(k))
    if text not in ("real", "positive", "unit", "binary", "counts"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use real, positive, unit, binary, counts or categorical:K")
    return text


def _audit_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``nllax audit``: resolves the functions, runs nllax.audit, prints the verdict."""
    import importlib
    import os

    import nllax

    if os.getcwd() not in sys.path:  # `nllax audit mylosses:f` finds ./mylosses.py
        sys.path.insert(0, os.getcwd())

    def resolve(spec: str, what: str):
        module, sep, attr = spec.partition(":")
        if not sep or not module or not attr:
            parser.error(f"{what} {spec!r}: give MODULE:FUNCTION, e.g. optax.losses:huber_loss")
        try:
            obj = importlib.import_module(module)
        except ImportError as e:
            parser.error(f"{what} {spec!r}: cannot import {module!r} ({e})")
        for part in attr.split("."):
            if not hasattr(obj, part):
                parser.error(f"{what} {spec!r}: {module!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            parser.error(f"{what} {spec!r} is not callable")
        return obj

    fn = resolve(args.loss, "loss")
    loss = (lambda y, p: fn(p, y)) if args.swap else fn
    base = resolve(args.base, "--base") if args.base else None
    preds = None
    if args.predictions is not None:
        text = args.predictions.strip()
        try:
            preds = np.asarray(json.loads(text) if text.startswith("[") else
                               [float(v) for v in text.split(",") if v.strip()], np.float64)
        except ValueError as e:
            parser.error(f"--predictions {args.predictions!r}: {e}")
    try:
        r = nllax.audit(loss, support=args.support, predictions=preds, a=args.a, base=base)
    except (TypeError, ValueError) as e:
        parser.error(f"audit {args.loss}: {e}")
    shown = r.predictions if preds is None else preds
    doc = {
        "loss": args.loss, "support": list(r.support) if isinstance(r.support, tuple)
        else r.support, "is_likelihood": r.is_likelihood, "a": r.a, "b": r.b,
        "scales": r.scales, "variation": r.variation, "reason": r.reason,
        "predictions": np.asarray(shown).tolist(),
        "log_normalizer": r.log_normalizer.tolist(), "error": r.error.tolist(),
        "search": [list(pair) for pair in r.search],
    }
    if args.json:
        print(json.dumps(_finite_or_null(doc), indent=2, allow_nan=False))
    else:
        support = (args.support if isinstance(args.support, str)
                   else f"categorical:{args.support[1]}")
        lines = [f"nllax audit {args.loss} (support {support})",
                 f"  verdict    {r.reason}",
                 f"  a          {r.a:.12g} ({r.scales})",
                 f"  b = log Z  {'-' if r.b is None else format(r.b, '.12g')}"]
        for p, lz, err in zip(np.asarray(shown).tolist(), r.log_normalizer, r.error):
            lines.append(f"  log Z at {p}: {lz:.12g} (error {err:.1e})")
        if r.search:
            pairs = ", ".join(f"a={a:.6g}: {v:.2g}" for a, v in r.search[:12])
            lines.append(f"  search     {pairs}{' ...' if len(r.search) > 12 else ''}")
        print("\n".join(lines))
    return 0 if r.is_likelihood else 1


def _finite_or_null(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    return x


def _nllax_version() -> str:
    import nllax

    return nllax.__version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nllax`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `nllax` and `nllax --json` mean `nllax report ...`.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["report", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "audit":
        return _audit_command(args, parser)

    import jax

    try:
        select_devices(args.device)
    except ValueError as e:
        parser.error(f"--device {args.device}: {e}")
    from nllax import _report_extras as X

    for flag, path in (("--plot", args.plot), ("--html", args.html)):
        if path is not None:
            X.check_writable(path, flag, parser)
    if args.plot is not None or args.html is not None:
        X.require_matplotlib(parser)
    cache = None if args.no_cache else (args.cache_dir or str(X.default_cache_dir()))
    # 64-bit mode is the user's choice, made here by a flag, for this command only; the
    # persistent compilation cache is the command's too (restored on exit).
    with jax.enable_x64(args.dtype == "float64"), X.persistent_cache(cache) as used:
        report = run_report(dtype=args.dtype, n=args.n, device=args.device, seed=args.seed,
                            cache_dir=used)
        png = None
        if args.plot is not None or args.html is not None:
            curves = X.sweep_curves(report, args.dtype)
            png = X.figure_png(curves, title=f"nllax report ({args.dtype}, n = {args.n})")
    table = format_table(report)
    if args.plot is not None:
        with open(args.plot, "wb") as f:
            f.write(png)
    if args.html is not None:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(X.html_page(report, table, png))
    if args.json:
        # Strict JSON: a NaN or infinite measurement (a failed row) is written as null.
        print(json.dumps(_finite_or_null(report), indent=2, allow_nan=False))
    else:
        print(table)
    return 0 if report["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
