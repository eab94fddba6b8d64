r"""Inference from a log-likelihood: covariance, standard errors, tests, AIC/BIC.

Everything here starts from ``log_lik(params, *args)``, a function that returns the
*per-observation* log-likelihoods :math:`\ell_i(\theta)`, shape ``(n,)`` (e.g. built from
``nllax.gaussian.log_prob``), and an estimate ``params_hat`` (any pytree of floating
arrays, normally the maximum likelihood estimate). With :math:`\theta` the raveled
parameters (``jax.flatten_util.ravel_pytree``), :math:`\ell = \sum_i \ell_i`,
:math:`H = \nabla^2\ell(\hat\theta)` (autodiff, not finite differences) and the scores
:math:`S_{ij} = \partial\ell_i/\partial\theta_j` (forward-mode Jacobian):

* ``covariance="observed"``: :math:`\widehat{\mathrm{Cov}} = (-H)^{-1}` (observed information);
* ``"expected"``: :math:`(J^\top\,\mathbb{E}[W]\,J)^{-1}`, the inverse expected (Fisher)
  information of a :class:`nllax.Likelihood` (predictor Jacobian :math:`J`, the
  family's declared information :math:`\mathbb{E}[W]`); equal to "observed" for a
  canonical link;
* ``"opg"``: :math:`(S^\top S)^{-1}` (outer product of gradients, BHHH);
* ``"HC0"`` (alias ``"robust"``): the sandwich :math:`(-H)^{-1}\,S^\top S\,(-H)^{-1}`
  (White / Huber, no small-sample factor);
* ``"HC1"``: the sandwich times :math:`n/(n-p)`, with :math:`n - p` = ``df_resid``
  (default: ``nobs - k``, every free parameter counted; pass ``df_resid`` to count otherwise);
* ``"CR1"`` (alias ``"cluster"``), with ``groups=``: the cluster-robust sandwich
  :math:`(-H)^{-1}\,(\sum_g u_g u_g^\top)\,(-H)^{-1}`, :math:`u_g = \sum_{i\in g} s_i` the
  summed scores of cluster :math:`g`, times :math:`\frac{G}{G-1}\,\frac{n-1}{n-p}` (G
  clusters); ``"CR0"``: the same without the factor.

``freq_weights=`` :math:`w` makes observation :math:`i` count :math:`w_i` times (as if its
row were repeated): :math:`\ell = \sum_i w_i\ell_i`, the meat is :math:`\sum_i w_i s_i
s_i^\top` (clusters: :math:`u_g = \sum_{i\in g} w_i s_i`) and :math:`n = \sum_i w_i`.
``dispersion=`` :math:`\phi` multiplies the observed- or expected-information covariance
(a quasi-likelihood scale); the sandwiches do not depend on it. ``dispersion="pearson"``
estimates it, :math:`\hat\phi = \sum_i w_i (y_i-\mu_i)^2/\mathrm{Var}_i / (n - p)`,
from a :class:`nllax.Likelihood`'s family mean and variance; the tests are then
Student's t and F with :math:`n - p` degrees of freedom (``use_t``), as R's
``summary.glm``.

Standard errors are the square roots of the diagonal; :math:`z = \hat\theta/\mathrm{se}`,
two-sided p-values :math:`2\Phi(-|z|)`, Wald intervals :math:`\hat\theta \pm
\Phi^{-1}(\tfrac{1+\mathrm{level}}{2})\,\mathrm{se}`,
:math:`\mathrm{AIC} = 2k - 2\ell`, :math:`\mathrm{BIC} = k\log n - 2\ell` with :math:`k` the
number of entries of ``params_hat`` (every free parameter counts, a noise scale too).

Tests and predictions (methods of :class:`Summary`)
    Wald test of :math:`R\theta = q` (:math:`m` independent rows):
    :math:`W = (R\hat\theta - q)^\top (R\,\widehat{\mathrm{Cov}}\,R^\top)^{-1}
    (R\hat\theta - q) \sim \chi^2_m`, or :math:`F = W/m \sim F_{m,\,d}` with
    :math:`d` = ``df_resid`` (:math:`G - 1` for the cluster covariances). Score (Lagrange
    multiplier) test: at the restricted maximum :math:`\tilde\theta` with gradient
    :math:`g`, :math:`\mathrm{LM} = g^\top (-\tilde H)^{-1} g` (observed),
    :math:`g^\top (\tilde S^\top \tilde S)^{-1} g` (opg), or for a sandwich
    :math:`\mathrm{LM} = a^\top (R\tilde A^{-1}\tilde B\tilde A^{-1}R^\top)^{-1} a`,
    :math:`a = R\tilde A^{-1} g`, :math:`\tilde A = -\tilde H` and :math:`\tilde B` the meat
    (Boos 1992), each :math:`\sim\chi^2_m`. Delta method for any function :math:`f`:
    :math:`\mathrm{Cov}\,f(\hat\theta) \approx J\,\widehat{\mathrm{Cov}}\,J^\top`,
    :math:`J = \partial f/\partial\theta` at :math:`\hat\theta` (autodiff).

Singular or indefinite information
    The matrix to invert (:math:`-H`, or :math:`S^\top S` for ``"opg"``) is first scaled to
    unit diagonal, :math:`\tilde A = DAD` with :math:`D = \mathrm{diag}(A)^{-1/2}` (so the
    test does not depend on the parameters' units), then eigen-decomposed,
    :math:`\tilde A = V\Lambda V^\top`. An eigen-direction is *bad* when
    :math:`\lambda_j \le \mathrm{rtol}\cdot\max_j|\lambda_j|` (flat, or curving the wrong
    way: not a maximum). A parameter is *affected* when its squared weight on the bad
    directions, :math:`\sum_{j\,\mathrm{bad}} V_{ij}^2`, exceeds :math:`\sqrt{\mathrm{rtol}}`,
    or when its own curvature :math:`A_{ii}` is not positive. Affected parameters get NaN
    standard errors (and NaN rows and columns in ``cov``) and an :class:`InferenceWarning`
    is issued; the others get :math:`D\,V_g\Lambda_g^{-1}V_g^\top D` restricted to the good
    directions, which is their exact covariance when they are orthogonal to the bad
    directions (e.g. the coefficients of the other columns when two columns are
    duplicated). The default ``rtol`` is :math:`10\,\max(k, \sqrt n)\,\epsilon` for the
    dtype's :math:`\epsilon` (about ``7e-13`` in float64 at n = 1e5).

Cost
    The Hessian is dense: :math:`k^2` floats, computed with :math:`k` forward-mode passes
    over one reverse pass (memory of about :math:`k` times the model's intermediates at
    once); the scores ("opg", "robust") are an :math:`n\times k` matrix from :math:`k`
    forward passes; the eigen-decomposition is :math:`O(k^3)`. Up to a few thousand
    parameters this fits in memory (k = 2000: 32 MB for the Hessian in float64, n·k·8
    bytes for the scores).
"""

from __future__ import annotations

import dataclasses
import functools
import html
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.scipy.special import betainc, gammaincc, ndtr, ndtri

from nllax._fit import fit as _fit

__all__ = [
    "InferenceWarning",
    "LRTest",
    "Prediction",
    "ProfileInterval",
    "ScoreTest",
    "Summary",
    "WaldTest",
    "lr_test",
    "profile_ci",
    "score_test",
    "summary",
]

# Accepted names -> canonical name; canonical name -> the computation ("kind") it needs.
COVARIANCES = ("observed", "expected", "opg", "robust", "HC0", "HC1", "cluster", "CR0", "CR1")
_CANONICAL = {"robust": "HC0", "cluster": "CR1"}
_KIND = {"observed": "observed", "expected": "expected", "opg": "opg", "HC0": "sandwich",
         "HC1": "sandwich", "CR0": "sandwich", "CR1": "sandwich"}
_CLUSTER = ("CR0", "CR1")
_DESCRIPTION = {
    "observed": "inverse observed information (-Hessian)",
    "expected": "inverse expected (Fisher) information",
    "opg": "inverse outer product of the scores",
    "HC0": "sandwich H^-1 (S'S) H^-1, no small-sample factor",
    "HC1": "sandwich H^-1 (S'S) H^-1 x n/df_resid",
    "CR0": "cluster sandwich, no small-sample factor",
    "CR1": "cluster sandwich x G/(G-1) (n-1)/df_resid",
}


class InferenceWarning(UserWarning):
    """Standard errors that cannot be trusted: a singular or not negative-definite
    Hessian, non-finite values, or an estimate that is not at a maximum."""


# --------------------------------------------------------------------------------------
# Arguments: array leaves are traced, everything else (Python numbers, strings) is static,
# so a log_lik that uses an int argument as an axis or a shape still works under jit.


def _split_args(args: tuple) -> tuple[list, Any]:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    dyn, static = [], []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
            dyn.append(leaf)
        else:
            static.append((i, leaf))
    static_key = (treedef, tuple(static))
    try:
        hash(static_key)
    except TypeError:
        static_key = None  # unhashable static leaves: run without jit
    return dyn, (static_key, treedef, tuple(static))


def _merge_args(dyn: list, treedef, static: tuple) -> tuple:
    n = len(dyn) + len(static)
    leaves: list = [None] * n
    fixed = dict(static)
    it = iter(dyn)
    for i in range(n):
        leaves[i] = fixed[i] if i in fixed else next(it)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _float_leaves(params: Any, fn: str) -> list:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"{fn}: `params_hat` has no parameters (an empty pytree).")
    out = []
    for leaf in leaves:
        dt = jnp.result_type(leaf)
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(
                f"{fn}: every leaf of `params_hat` must be a floating array, got dtype {dt}; "
                f"pass e.g. jnp.asarray(x, float)."
            )
        out.append(leaf)
    return out


def _check_log_lik(log_lik, params, args, fn: str) -> int:
    """Traces ``log_lik`` once (no computation) to check that it gives ``(n,)`` floats."""
    try:
        out = jax.eval_shape(lambda p, a: log_lik(p, *a), params, args)
    except (ValueError, TypeError) as e:  # name our argument, keep the cause
        cls = TypeError if isinstance(e, TypeError) else ValueError
        raise cls(f"{fn}: calling `log_lik(params_hat, *args)` failed: {e}") from e
    shape = getattr(out, "shape", None)
    if shape is None:
        raise TypeError(f"{fn}: `log_lik` must return one array, got {type(out).__name__}.")
    if len(shape) != 1:
        what = "a scalar" if len(shape) == 0 else f"shape {shape}"
        raise ValueError(
            f"{fn}: `log_lik` must return the per-observation log-likelihoods, shape (n,), "
            f"got {what}. Return the unreduced values (e.g. `nllax.gaussian.log_prob`, not "
            f"`.nll` or a sum); for several values per observation sum them over the "
            f"inner axes, so that row i is observation i."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{fn}: `log_lik` must return floating values, got dtype {out.dtype}.")
    if shape[0] == 0:
        raise ValueError(f"{fn}: `log_lik` returned no observations (shape (0,)).")
    return int(shape[0])


def _param_names(params: Any) -> list[str]:
    """One name per raveled parameter, in `ravel_pytree` order: the pytree path, plus the
    index inside an array leaf, e.g. ``beta[2]``, ``W[1, 0]``, ``sigma``."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        base = jax.tree_util.keystr(path, simple=True, separator=".")
        shape = np.shape(leaf)
        if shape == ():
            names.append(base or "params")
        else:
            names += [f"{base}[{', '.join(map(str, idx))}]" for idx in np.ndindex(shape)]
    return names


def _default_rtol(k: int, n: int, dtype) -> float:
    return 10.0 * max(k, math.sqrt(n)) * float(np.finfo(dtype).eps)


# --------------------------------------------------------------------------------------
# The numerical core, jitted with log_lik and the static arguments as static.


def _pinv_checked(a: jax.Array, rtol):
    """Inverse of a symmetric matrix that should be positive definite, on the directions
    where it is; see the module docstring. Returns (inverse, affected mask, n_bad)."""
    a = 0.5 * (a + a.T)
    diag = jnp.diagonal(a)
    pos = diag > 0
    d = jnp.where(pos, jax.lax.rsqrt(jnp.where(pos, diag, 1.0)), 1.0)
    scaled = a * d[:, None] * d[None, :]
    finite = jnp.all(jnp.isfinite(scaled))
    lam, v = jnp.linalg.eigh(jnp.where(finite, scaled, jnp.eye(a.shape[0], dtype=a.dtype)))
    tol = rtol * jnp.max(jnp.abs(lam))
    good = lam > tol
    bad_weight = jnp.sum(jnp.where(good, 0.0, v * v), axis=1)
    affected = (bad_weight > jnp.sqrt(rtol)) | ~pos | ~finite
    inv_lam = jnp.where(good, 1.0 / jnp.where(good, lam, 1.0), 0.0)
    inv = (v * inv_lam) @ v.T * d[:, None] * d[None, :]
    return inv, affected, jnp.sum(~good) + jnp.where(finite, 0, a.shape[0])


def _derivs_impl(params, dyn, fw, codes, *, log_lik, static, hessian, scores, n_groups=None,
                 batch_size=None):
    """The model-specific part: log-likelihood, gradient, Hessian and/or the meat.

    ``fw``: frequency weights or None; ``codes``: cluster index 0..n_groups-1 of each
    observation, or None (then the meat is the sum of the per-observation outer products).
    ``batch_size`` bounds how many directions (forward-mode passes) are pushed through
    the model at once, hence the peak memory; None does all ``k`` at once."""
    treedef, static_leaves = static
    args = _merge_args(dyn, treedef, static_leaves)
    theta, unravel = ravel_pytree(params)

    def per_obs(t):
        return log_lik(unravel(t), *args)

    def total(t):
        li = per_obs(t)
        return jnp.sum(li if fw is None else fw * li)

    loglik, grad = jax.value_and_grad(total)(theta)
    basis = jnp.eye(theta.size, dtype=theta.dtype)

    def directions(f):  # f(v) for every basis vector v: all at once, or batch_size at a time
        if batch_size is None or batch_size >= theta.size:
            return jax.vmap(f)(basis)
        return jax.lax.map(f, basis, batch_size=batch_size)

    hess = meat = None
    if hessian:  # forward over reverse: row j is the JVP of the gradient along e_j
        hess = directions(lambda v: jax.jvp(jax.grad(total), (theta,), (v,))[1])
    if scores:  # (k, n): k forward passes, never the n x n of a reverse-mode Jacobian
        s = directions(lambda v: jax.jvp(per_obs, (theta,), (v,))[1])
        ws = s if fw is None else s * fw
        if codes is None:  # sum_i w_i s_i s_i' (a repeated row is its own cluster)
            meat = ws @ s.T
        else:  # sum_g u_g u_g', u_g = sum_{i in g} w_i s_i
            u = jax.ops.segment_sum(ws.T, codes, num_segments=n_groups)
            meat = u.T @ u
    return theta, loglik, grad, hess, meat


_derivs = jax.jit(
    _derivs_impl,
    static_argnames=("log_lik", "static", "hessian", "scores", "n_groups", "batch_size"),
)


@functools.partial(jax.jit, static_argnames=("kind",))
def _analyse(loglik, grad, hess, meat, rtol, factor, *, kind):
    """The generic part (compiled once per k, dtype and kind, shared by every model).

    ``factor`` multiplies the covariance: the dispersion for "observed", the small-sample
    factor for "sandwich" (traced, so HC0/HC1/CR0/CR1 share one compilation)."""
    if kind == "opg":
        bread, affected, n_bad = _pinv_checked(meat, rtol)
        cov = bread
    else:
        bread, affected, n_bad = _pinv_checked(-hess, rtol)
        cov = factor * (bread @ meat @ bread if kind == "sandwich" else bread)
    nan_rows = affected[:, None] | affected[None, :]
    cov = jnp.where(nan_rows, jnp.nan, 0.5 * (cov + cov.T))
    # Newton step to the maximum of the quadratic model, measured in standard errors.
    decrement = jnp.sqrt(jnp.maximum(grad @ bread @ grad, 0.0))
    finite = jnp.isfinite(loglik) & jnp.all(jnp.isfinite(grad))
    return {
        "loglik": loglik, "cov": cov, "affected": affected | ~finite, "n_bad": n_bad,
        "decrement": decrement, "finite": finite,
    }


@dataclasses.dataclass(frozen=True)
class _Model:
    """Everything needed to evaluate the model again (restricted fits, score tests)."""

    log_lik: Callable
    args: tuple
    dyn: list
    split: tuple  # (static_key, treedef, static leaves) from _split_args
    fw: Any  # frequency weights (n,) or None
    codes: Any  # cluster index (n,) or None
    n_groups: int | None
    nobs: float  # n, or sum(freq_weights)
    nrows: int  # length of log_lik's output
    rtol: float
    batch_size: int | None
    lik: Any = None  # the nllax.Likelihood behind log_lik, when summary was given one

    def weights(self, dtype):
        """The frequency weights, ones without them (one compilation serves both)."""
        return jnp.ones(self.nrows, dtype) if self.fw is None else self.fw

    def derivs(self, params, *, hessian: bool, scores: bool):
        key, treedef, static = self.split
        derivs = _derivs if key is not None else _derivs_impl
        fw = self.weights(ravel_pytree(params)[0].dtype)
        return derivs(
            params, self.dyn, fw, self.codes, log_lik=self.log_lik,
            static=(treedef, static), hessian=hessian, scores=scores,
            n_groups=self.n_groups, batch_size=self.batch_size,
        )

    def expected(self, params):
        r"""The expected (Fisher) information :math:`J^\top\,\mathbb{E}[W]\,J` of the
        Likelihood, summed with the frequency weights."""
        key, treedef, static = self.split
        impl = _expected if key is not None else _expected_impl
        return impl(params, self.dyn, self.weights(ravel_pytree(params)[0].dtype),
                    lik=self.lik, static=(treedef, static))


def _expected_impl(params, dyn, fw, *, lik, static):
    treedef, static_leaves = static
    args = _merge_args(dyn, treedef, static_leaves)
    return lik.information(params, *args, kind="expected", weights=fw)


_expected = jax.jit(_expected_impl, static_argnames=("lik", "static"))


def _pearson_impl(params, dyn, fw, *, lik, static, nrows):
    """``sum_i w_i sum_j (y_ij - mu_ij)^2 / Var_ij`` (the Pearson statistic)."""
    treedef, static_leaves = static
    y, *covariates = _merge_args(dyn, treedef, static_leaves)
    u = lik.predict(params, *covariates)
    mean, var = lik.family.family.mean_variance(**u)
    y = jnp.asarray(y, mean.dtype)
    r2 = jnp.broadcast_to(jnp.square(y - mean) / var, jnp.shape(y)).reshape(nrows, -1)
    return jnp.sum(fw * jnp.sum(r2, axis=1))


_pearson = jax.jit(_pearson_impl, static_argnames=("lik", "static", "nrows"))


def _information(model: _Model, params_hat, kind: str, factor: float):
    theta, loglik, grad, hess, meat = model.derivs(
        params_hat, hessian=kind not in ("opg", "expected"),
        scores=kind not in ("observed", "expected"))
    dtype = theta.dtype
    if kind == "expected":  # the bread is the Fisher information: (-H) -> I
        hess, kind = -model.expected(params_hat), "observed"
    out = _analyse(loglik, grad, hess, meat, jnp.asarray(model.rtol, dtype),
                   jnp.asarray(factor, dtype), kind=kind)
    out = jax.device_get(out)
    out["theta"] = theta
    return out


# --------------------------------------------------------------------------------------
# Results.


def _fmt(x: float, width: int = 11) -> str:
    if not np.isfinite(x):
        return f"{'nan' if np.isnan(x) else ('inf' if x > 0 else '-inf'):>{width}}"
    ax = abs(x)
    if ax != 0 and (ax >= 1e6 or ax < 1e-4):
        return f"{x:>{width}.3e}"
    return f"{x:>{width}.4f}"


def _fmt_n(x) -> str:
    """A count: exact when integral (no 1e+06), else 6 significant digits."""
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def _chi2_sf(stat, df, dtype):
    """P(chi2_df > stat) = Q(df/2, stat/2) (regularised upper incomplete gamma)."""
    return float(gammaincc(jnp.asarray(df / 2.0, dtype), jnp.asarray(stat / 2.0, dtype)))


def _f_sf(stat, df_num, df_denom, dtype):
    """P(F_{d1,d2} > f) = I_x(d2/2, d1/2) with x = d2 / (d2 + d1 f) (regularised beta)."""
    x = df_denom / (df_denom + df_num * stat) if np.isfinite(stat) else float("nan")
    return float(betainc(jnp.asarray(df_denom / 2.0, dtype), jnp.asarray(df_num / 2.0, dtype),
                         jnp.asarray(x, dtype)))


def _t_two_sided(t, df):
    """P(|T_df| > |t|) = I_x(df/2, 1/2), x = df / (df + t^2) (regularised beta)."""
    t = jnp.asarray(t)
    df = jnp.asarray(df, t.dtype)
    return betainc(0.5 * df, jnp.asarray(0.5, t.dtype), df / (df + jnp.square(t)))


@functools.partial(jax.jit, static_argnames=("dtype",))
def _t_quantile_impl(alpha, df, *, dtype):
    # The t with P(|T| > t) = alpha: I_x(df/2, 1/2) = alpha is increasing in x = df /
    # (df + t^2); bisection on log x over [log tiny, 0], 200 halvings (the bracket ends
    # below the dtype's resolution of log x).
    a, half = 0.5 * df, jnp.asarray(0.5, dtype)
    lo, hi = jnp.log(jnp.finfo(dtype).tiny).astype(dtype), jnp.zeros((), dtype)

    def step(_, b):
        lo, hi = b
        mid = 0.5 * (lo + hi)
        below = betainc(a, half, jnp.exp(mid)) < alpha
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 200, step, (lo, hi))
    x = jnp.exp(0.5 * (lo + hi))
    return jnp.sqrt(df * (1.0 - x) / x)


def _t_quantile(level: float, df: float, dtype) -> jax.Array:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom."""
    return _t_quantile_impl(jnp.asarray(1.0 - level, dtype), jnp.asarray(df, dtype),
                            dtype=jnp.dtype(dtype))


_normal_quantile = jax.jit(ndtri)


@jax.jit
def _interval(theta, se, q):
    return theta - q * se, theta + q * se


def _leaf_index(params: Any) -> dict[str, list[int]]:
    """Pytree path of each leaf (as in the names) -> its raveled indices."""
    out, start = {}, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        size = int(np.size(leaf))
        base = jax.tree_util.keystr(path, simple=True, separator=".") or "params"
        out[base] = list(range(start, start + size))
        start += size
    return out


def _restrictions(R, q, names, leaves, fn: str):
    """``R`` (matrix, row, names, or {name: coefficient} rows) and ``q`` as float64 arrays
    ``(m, k)`` and ``(m,)``, plus one readable label per row."""
    k = len(names)
    index = {n: i for i, n in enumerate(names)}

    def where(name):
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
            if not -k <= int(name) < k:
                raise ValueError(f"{fn}: index {int(name)} is out of range for {k} parameters.")
            return [int(name) % k]
        if isinstance(name, str):
            if name in index:
                return [index[name]]
            if name in leaves:
                return leaves[name]
            raise ValueError(
                f"{fn}: {name!r} is not a parameter name (or the name of a leaf of "
                f"params); the names are {', '.join(names[:20])}"
                f"{' ...' if len(names) > 20 else ''}."
            )
        raise TypeError(f"{fn}: a parameter is named by a str (or, in a dict, an int index), "
                        f"got {type(name).__name__}.")

    def is_symbolic(x):
        return isinstance(x, (str, dict))

    rows, labels = [], []
    items = [R] if is_symbolic(R) else (list(R) if isinstance(R, (list, tuple)) and R
                                         and all(is_symbolic(r) for r in R) else None)
    if items is not None:
        for item in items:
            if isinstance(item, str):  # each selected parameter = its q
                for i in where(item):
                    row = np.zeros(k)
                    row[i] = 1.0
                    rows.append(row)
                    labels.append(names[i])
            else:
                if not item:
                    raise ValueError(f"{fn}: an empty dict is not a restriction.")
                row = np.zeros(k)
                for name, coef in item.items():
                    idx = where(name)
                    if len(idx) != 1:
                        raise ValueError(
                            f"{fn}: in a dict row, {name!r} must name one parameter, not a "
                            f"leaf of {len(idx)}.")
                    row[idx[0]] += float(coef)
                rows.append(row)
                labels.append(" + ".join(f"{float(c):g}*{n}" for n, c in item.items()))
        rm = np.stack(rows)
    else:
        try:
            rm = np.asarray(R, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{fn}: `R` must be a matrix (m, k), a row (k,), parameter names, or "
                f"{{name: coefficient}} dicts; got {type(R).__name__}.") from e
        if rm.ndim == 1:
            rm = rm[None, :]
        if rm.ndim != 2 or rm.shape[1] != k or rm.shape[0] == 0:
            raise ValueError(
                f"{fn}: `R` must have shape (m, k) with k = {k} (the raveled parameters, "
                f"order of `names`), got shape {np.shape(R)}.")
        labels = [f"row {j}" for j in range(rm.shape[0])]
    if not np.all(np.isfinite(rm)):
        raise ValueError(f"{fn}: `R` has non-finite entries.")
    m = rm.shape[0]
    rank = int(np.linalg.matrix_rank(rm))
    if rank < m:
        raise ValueError(
            f"{fn}: the {m} restrictions are linearly dependent (rank {rank}); drop the "
            f"redundant rows.")
    if q is None:
        qv = np.zeros(m)
    else:
        qv = np.asarray(q, dtype=np.float64)
        if qv.ndim == 0:
            qv = np.full(m, float(qv))
        if qv.shape != (m,):
            raise ValueError(f"{fn}: `q` must be a scalar or have shape ({m},), got "
                             f"shape {np.shape(q)}.")
        if not np.all(np.isfinite(qv)):
            raise ValueError(f"{fn}: `q` has non-finite entries.")
    return rm, qv, labels


@dataclasses.dataclass(frozen=True)
class WaldTest:
    """Result of :meth:`Summary.wald_test`.

    Attributes:
      statistic: :math:`W` (``distribution="chi2"``) or :math:`F = W/m` (``"F"``).
      df: number of restrictions :math:`m`; ``df_denom``: the F test's denominator
        degrees of freedom (None for chi2).
      pvalue: upper-tail probability of the statistic.
      distribution: ``"chi2"`` or ``"F"``.
      restrictions: one label per row of ``R``.
    """

    statistic: float
    df: int
    pvalue: float
    distribution: str
    df_denom: float | None
    restrictions: tuple[str, ...]

    def __str__(self) -> str:
        d = f"F({self.df}, {self.df_denom:g})" if self.distribution == "F" else f"chi2({self.df})"
        return f"Wald test: {d} = {self.statistic:.6g}, p = {self.pvalue:.4g}"


@dataclasses.dataclass(frozen=True)
class ScoreTest:
    """Result of :meth:`Summary.score_test` and :func:`score_test`.

    Attributes:
      statistic: the Lagrange multiplier statistic, asymptotically :math:`\\chi^2_{df}`.
      df: number of restrictions; ``pvalue``: :math:`P(\\chi^2_{df} > \\mathrm{LM})`.
      covariance: which information (``"observed"``, ``"opg"``) or sandwich was used.
      params_restricted: the restricted estimate :math:`\\tilde\\theta` (structure of
        ``params``); ``loglik_restricted``: :math:`\\ell(\\tilde\\theta)` (for
        :func:`lr_test`).
      converged: whether the restricted fit converged (True when it was given).
    """

    statistic: float
    df: int
    pvalue: float
    covariance: str
    params_restricted: Any
    loglik_restricted: float
    converged: bool

    def __str__(self) -> str:
        return (f"Score test ({self.covariance}): chi2({self.df}) = {self.statistic:.6g}, "
                f"p = {self.pvalue:.4g}")


@dataclasses.dataclass(frozen=True, eq=False)
class Prediction:
    """Result of :meth:`Summary.predict`: a function of the parameters with delta-method
    standard errors.

    Attributes:
      value: :math:`f(\\hat\\theta)`, the shape of ``fn``'s output.
      stderr: :math:`\\sqrt{\\mathrm{diag}(J\\,\\widehat{\\mathrm{Cov}}\\,J^\\top)}`, same
        shape (NaN where :math:`f` depends on a parameter whose standard error is NaN).
      zvalues, pvalues: :math:`f/\\mathrm{se}` and :math:`2\\Phi(-|z|)` (a Wald test of
        :math:`f(\\theta) = 0`, one per entry).
      jacobian: :math:`J`, shape ``value.shape + (k,)``.
    """

    value: jax.Array
    stderr: jax.Array
    zvalues: jax.Array
    pvalues: jax.Array
    jacobian: jax.Array
    _cov_params: jax.Array = dataclasses.field(repr=False, default=None)

    @property
    def cov(self) -> jax.Array:
        """:math:`J\\,\\widehat{\\mathrm{Cov}}\\,J^\\top`, shape ``(m, m)`` with ``m =
        value.size`` (computed on request: it is dense)."""
        j = self.jacobian.reshape(-1, self.jacobian.shape[-1])
        return j @ self._cov_params @ j.T

    def conf_int(self, level: float = 0.95, *, transform: Callable | None = None):
        """Interval :math:`f \\pm \\Phi^{-1}((1+\\mathrm{level})/2)\\,\\mathrm{se}`, as
        ``(lower, upper)``. With ``transform`` (a monotone function, e.g. ``jnp.exp``)
        the ends of the interval of :math:`f` are mapped through it, and re-ordered if it
        is decreasing: statsmodels' ``"endpoint"`` interval of a GLM mean is the interval
        of the linear predictor through the inverse link."""
        level = float(level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"Prediction.conf_int: `level` must be in (0, 1), got {level}.")
        z = _normal_quantile(jnp.asarray(0.5 + 0.5 * level, self.value.dtype))
        lo, hi = self.value - z * self.stderr, self.value + z * self.stderr
        if transform is not None:
            lo, hi = transform(lo), transform(hi)
            lo, hi = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
        return lo, hi


def _predict_impl(params, dyn, *, fn, static):
    treedef, static_leaves = static
    args = _merge_args(dyn, treedef, static_leaves)
    theta, unravel = ravel_pytree(params)

    def f(t):
        return fn(unravel(t), *args)

    value = f(theta)
    basis = jnp.eye(theta.size, dtype=theta.dtype)
    jac = jax.vmap(lambda v: jax.jvp(f, (theta,), (v,))[1])(basis)  # (k, *out): k passes
    return value, jnp.moveaxis(jac, 0, -1)


_predict = jax.jit(_predict_impl, static_argnames=("fn", "static"))


def _restricted_objective_impl(z, theta0, basis, params, dyn, fw, *, model_key):
    log_lik, treedef, static_leaves = model_key
    args = _merge_args(dyn, treedef, static_leaves)
    _, unravel = ravel_pytree(params)
    li = log_lik(unravel(theta0 + basis @ z), *args)
    return -jnp.sum(li if fw is None else fw * li)


@functools.lru_cache(maxsize=64)
def _restricted_objective(model_key):
    """One objective object per model, so that nllax.fit compiles once per model."""
    return functools.partial(_restricted_objective_impl, model_key=model_key)


def _fit_restricted(model: _Model, params, rm, qv, max_steps: int):
    """Maximise the log-likelihood over {theta : R theta = q}, parametrised as
    theta = theta0 + N z with R theta0 = q and N an orthonormal basis of null(R)."""
    theta_hat, unravel = ravel_pytree(params)
    dtype = theta_hat.dtype
    m = rm.shape[0]
    u, sv, vt = np.linalg.svd(rm)
    theta0 = vt[:m].T @ ((u.T @ qv) / sv)  # minimum-norm solution of R theta = q
    basis = vt[m:].T
    if basis.shape[1] == 0:  # every direction is fixed
        return unravel(jnp.asarray(theta0, dtype)), True
    z0 = basis.T @ (np.asarray(theta_hat, np.float64) - theta0)
    key, treedef, static = model.split
    theta0_j, basis_j = jnp.asarray(theta0, dtype), jnp.asarray(basis, dtype)
    if key is not None:
        objective = _restricted_objective((model.log_lik, treedef, static))
    else:  # unhashable static arguments: a fresh objective (compiles each call)
        objective = functools.partial(_restricted_objective_impl,
                                      model_key=(model.log_lik, treedef, static))
    res = _fit(objective, jnp.asarray(z0, dtype), theta0_j, basis_j, params, model.dyn,
               model.weights(dtype), max_steps=max_steps)
    theta = theta0_j + basis_j @ res.params
    return unravel(theta), bool(res.converged)


_pinv_jit = jax.jit(_pinv_checked)


def _lm_statistic(model: _Model, params_r, kind: str, factor: float, rm, fn: str):
    """The score statistic at the restricted estimate ``params_r``; returns (LM, loglik)."""
    theta, loglik, grad, hess, meat = model.derivs(
        params_r, hessian=kind not in ("opg", "expected"),
        scores=kind not in ("observed", "expected"))
    dtype = theta.dtype
    rtol = jnp.asarray(model.rtol, dtype)
    g = np.asarray(grad, np.float64)
    if kind == "opg":
        inv, affected, _ = _pinv_jit(meat, rtol)
    elif kind == "expected":  # Rao's score test: the Fisher information
        inv, affected, _ = _pinv_jit(model.expected(params_r), rtol)
    else:
        inv, affected, _ = _pinv_jit(-hess, rtol)
    inv, affected = np.asarray(inv, np.float64), np.asarray(affected)
    if affected.any() or not np.all(np.isfinite(g)):
        warnings.warn(
            f"{fn}: the information at the restricted estimate is singular, not positive "
            f"definite or not finite; the statistic is NaN.", InferenceWarning, stacklevel=3)
        return float("nan"), float(loglik)
    if kind != "sandwich":
        return float(g @ inv @ g), float(loglik)
    a = rm @ inv @ g
    middle = factor * rm @ inv @ np.asarray(meat, np.float64) @ inv @ rm.T
    try:
        stat = float(a @ np.linalg.solve(middle, a))
    except np.linalg.LinAlgError:
        stat = float("nan")
    return stat, float(loglik)


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Summary:
    """The result of :func:`summary`. Pytree fields have the structure of ``params_hat``.

    Attributes:
      params, stderr, zvalues, pvalues: estimates, standard errors (NaN where not
        identified), Wald z statistics and two-sided normal p-values.
      cov: ``(k, k)`` covariance of the raveled parameters (``ravel_pytree`` order).
      names: one name per raveled parameter (pytree path plus array index).
      loglik, nobs, k, aic, bic: the maximised log-likelihood, the number of
        observations (length of ``log_lik``'s output, or the sum of ``freq_weights``),
        the number of free parameters, :math:`2k - 2\\ell` and :math:`k\\log n - 2\\ell`.
      covariance: which estimator was used (canonical name: ``"robust"`` is ``"HC0"``,
        ``"cluster"`` is ``"CR1"``).
      df_resid: :math:`n - p` of the small-sample factors and F tests.
      correction: the small-sample factor applied to the sandwich (1 for the others).
      dispersion: the factor applied to the observed- or expected-information
        covariance (1 unless ``dispersion=`` was given; Pearson's estimate with
        ``dispersion="pearson"``).
      dispersion_method: ``"fixed"`` (1 or the number given) or ``"pearson"``.
      use_t: whether ``zvalues`` are t statistics, with ``pvalues`` and ``conf_int`` from
        Student's t with ``df_resid`` degrees of freedom (and ``wald_test`` F by default),
        as R's ``summary.glm`` with an estimated dispersion.
      n_groups: number of clusters (None unless a cluster covariance).
      newton_decrement: :math:`\\sqrt{g^\\top A^{-1} g}`, the length of the Newton step
        from ``params_hat`` to the maximum in standard-error units (near 0 at an MLE).
    """

    params: Any
    stderr: Any
    zvalues: Any
    pvalues: Any
    cov: jax.Array
    names: tuple[str, ...]
    loglik: float
    nobs: int | float
    k: int
    aic: float
    bic: float
    covariance: str
    newton_decrement: float
    df_resid: float = float("nan")
    correction: float = 1.0
    dispersion: float = 1.0
    n_groups: int | None = None
    dispersion_method: str = "fixed"
    use_t: bool = False
    _flat: tuple = dataclasses.field(default=(), compare=False)
    _unravel: Callable = dataclasses.field(default=None, compare=False)
    _model: Any = dataclasses.field(default=None, compare=False)
    _affected: Any = dataclasses.field(default=None, compare=False)

    def conf_int(self, level: float = 0.95) -> tuple[Any, Any]:
        """Wald interval :math:`\\hat\\theta \\pm \\Phi^{-1}((1+\\mathrm{level})/2)\\,
        \\mathrm{se}` (with ``use_t``: the quantile of Student's t with ``df_resid``
        degrees of freedom); returns ``(lower, upper)``, each shaped like ``params``."""
        lo, hi = self._conf_int_flat(level)
        return self._unravel(lo), self._unravel(hi)

    def _conf_int_flat(self, level: float):
        level = float(level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"Summary.conf_int: `level` must be in (0, 1), got {level}.")
        theta, se = self._flat[0], self._flat[1]
        if self.use_t:
            q = _t_quantile(level, self.df_resid, theta.dtype)
        else:  # one compiled program (the normal quantile op by op: ~15 compiles)
            q = _normal_quantile(jnp.asarray(0.5 + 0.5 * level, theta.dtype))
        return _interval(theta, se, q)

    def profile_ci(self, which: str | int, level: float = 0.95, **kwargs) -> ProfileInterval:
        """Profile-likelihood interval for one parameter: :func:`profile_ci` on the model
        this summary was computed from (with its ``freq_weights``)."""
        m = self._model
        return profile_ci(m.log_lik, self.params, *m.args, which=which, level=level,
                          freq_weights=m.fw, **kwargs)

    def _default_use_f(self) -> bool:
        # F when the dispersion is estimated (Pearson), as R's anova.glm and summary.glm.
        return self.use_t

    def _df_denom(self) -> float:
        # statsmodels' default for cluster covariances (df_correction=True) and Stata's
        # regress: G - 1; otherwise the residual degrees of freedom.
        return float(self.n_groups - 1) if self.covariance in _CLUSTER else self.df_resid

    def wald_test(self, R: Any, q: Any = None, *, use_f: bool | None = None) -> WaldTest:
        r"""Wald test of the linear hypothesis :math:`R\theta = q`, with this summary's
        covariance.

        :math:`W = (R\hat\theta - q)^\top (R\,\widehat{\mathrm{Cov}}\,R^\top)^{-1}
        (R\hat\theta - q)`, :math:`\chi^2_m` under the hypothesis (``m`` rows); with
        ``use_f=True`` the statistic is :math:`F = W/m` against :math:`F_{m,d}`, ``d`` =
        ``df_resid`` (:math:`G - 1` for a cluster covariance: statsmodels' and Stata's
        convention).

        Args:
          R: the restrictions, over the raveled parameters (order of ``names``): a
            matrix ``(m, k)`` or one row ``(k,)``; or parameter names: a name (e.g.
            ``"beta[1]"``) or the name of a whole leaf (``"beta"``: every entry), or a
            list of them (each selected parameter equals its ``q``); or ``{name:
            coefficient}`` dicts, one per row (``{"beta[1]": 1, "beta[2]": -1}`` is
            :math:`\beta_1 - \beta_2`), or a list of names and dicts.
          q: right-hand side, scalar or ``(m,)``; default 0.
          use_f: F instead of chi2 (default: chi2; F when the summary uses t, e.g. with
            ``dispersion="pearson"``, as R's ``anova.glm`` for an estimated dispersion).

        Returns:
          A :class:`WaldTest`. The statistic is NaN (with an :class:`InferenceWarning`)
          when :math:`R\,\widehat{\mathrm{Cov}}\,R^\top` is not positive definite, e.g. a
          restriction on a parameter whose standard error is NaN.

        Example:
          >>> import jax.numpy as jnp, nllax
          >>> y = jnp.array([1.0, 2.0, 4.0, 3.0])
          >>> ll = lambda p, y: nllax.gaussian.log_prob(y, p["mu"], p["sigma"])
          >>> s = nllax.summary(ll, {"mu": y.mean(), "sigma": y.std()}, y)
          >>> t = s.wald_test("mu", 2.0)  # W = ((2.5 - 2) / se(mu))^2
          >>> round(t.statistic, 4), t.df
          (0.8, 1)
        """
        fn = "Summary.wald_test"
        rm, qv, labels = _restrictions(R, q, list(self.names), _leaf_index(self.params), fn)
        m = rm.shape[0]
        use_f = self._default_use_f() if use_f is None else bool(use_f)
        theta = np.asarray(self._flat[0], np.float64)
        cov = np.asarray(self.cov, np.float64)
        dtype = self._flat[0].dtype
        diff = rm @ theta - qv
        # Only the columns R uses: a NaN elsewhere in cov does not matter.
        used = np.any(rm != 0, axis=0)
        sub = cov[np.ix_(used, used)]
        v = rm[:, used] @ sub @ rm[:, used].T
        stat = float("nan")
        d = np.sqrt(np.abs(np.diagonal(v)))
        if np.all(np.isfinite(v)) and np.all(d > 0):
            # Positive definite after scaling to unit diagonal (units do not matter), with
            # the summary's flatness threshold.
            lam = np.linalg.eigvalsh(0.5 * (v + v.T) / np.outer(d, d))
            if lam[0] > self._model.rtol * lam[-1]:
                stat = float(diff @ np.linalg.solve(v, diff))
        if not np.isfinite(stat):
            warnings.warn(
                f"{fn}: the covariance of R theta is not positive definite (a restriction "
                f"on parameters with NaN standard errors, or on a flat direction); the "
                f"statistic is NaN.", InferenceWarning, stacklevel=2)
        if use_f:
            d = self._df_denom()
            if not d > 0:
                raise ValueError(f"{fn}: the F test needs df_resid > 0, got {d}.")
            f = stat / m
            return WaldTest(f, m, _f_sf(f, m, d, dtype), "F", d, tuple(labels))
        return WaldTest(stat, m, _chi2_sf(stat, m, dtype), "chi2", None, tuple(labels))

    def score_test(self, R: Any = None, q: Any = None, *, params_restricted: Any = None,
                   df: int | None = None, covariance: str | None = None,
                   max_steps: int = 100) -> ScoreTest:
        r"""Score (Lagrange multiplier) test of :math:`R\theta = q` for this summary's
        model: fits the restricted model, then evaluates the score and the information
        there.

        The restricted maximum :math:`\tilde\theta` is found with :func:`nllax.fit`
        (damped Newton) over :math:`\theta = \theta_0 + N z`, :math:`R\theta_0 = q`,
        :math:`N` an orthonormal basis of the null space of :math:`R`, started from the
        projection of ``params``; or it is given as ``params_restricted`` (your own
        restricted fit, with ``df`` restrictions; ``R`` is then needed only for the
        sandwich forms). The statistic is in the module docstring.

        Args:
          R, q: the restrictions, as in :meth:`wald_test`.
          params_restricted: the restricted estimate (structure of ``params``), instead
            of fitting it.
          df: number of restrictions, when ``R`` is not given.
          covariance: ``"observed"`` (the classical LM, the default when this summary's
            covariance is observed), ``"opg"``, or a sandwich (``"HC0"``, ``"HC1"``,
            ``"CR0"``, ``"CR1"``: the robust LM, which needs ``R``); default: this
            summary's covariance.
          max_steps: Newton steps for the restricted fit.

        Returns:
          A :class:`ScoreTest` (with the restricted estimate and its log-likelihood, for
          :func:`lr_test`).

        Example:
          >>> import jax.numpy as jnp, nllax
          >>> y = jnp.array([1.0, 2.0, 4.0, 3.0])
          >>> ll = lambda mu, y: nllax.gaussian.log_prob(y, mu, 1.0)
          >>> s = nllax.summary(ll, y.mean(), y)
          >>> t = s.score_test(jnp.ones(1), 2.0)  # LM = (sum(y - 2))^2 / n
          >>> round(t.statistic, 4), t.df
          (1.0, 1)
        """
        fn = "Summary.score_test"
        if self.dispersion != 1.0:
            raise NotImplementedError(
                f"{fn}: a score test with a dispersion factor is not implemented yet.")
        cov_name = self.covariance if covariance is None else _CANONICAL.get(covariance,
                                                                             covariance)
        if cov_name not in _KIND:
            raise ValueError(f"{fn}: `covariance` must be one of {COVARIANCES}, got "
                             f"{covariance!r}.")
        if cov_name in _CLUSTER and self.n_groups is None:
            raise ValueError(f"{fn}: a cluster covariance needs a summary computed with "
                             f"groups=.")
        kind = _KIND[cov_name]
        model = self._model
        rm = qv = None
        if R is not None:
            rm, qv, _ = _restrictions(R, q, list(self.names), _leaf_index(self.params), fn)
        elif q is not None:
            raise ValueError(f"{fn}: `q` was given without `R`.")
        if params_restricted is None:
            if rm is None:
                raise ValueError(f"{fn}: give the restrictions `R` (and `q`), or "
                                 f"`params_restricted` with `df`.")
            if df is not None and int(df) != rm.shape[0]:
                raise ValueError(f"{fn}: `df`={df} but R has {rm.shape[0]} rows.")
            params_r, converged = _fit_restricted(model, self.params, rm, qv, max_steps)
            if not converged:
                warnings.warn(f"{fn}: the restricted fit did not converge in {max_steps} "
                              f"steps; the statistic is not that of the restricted MLE.",
                              InferenceWarning, stacklevel=2)
        else:
            _float_leaves(params_restricted, fn)
            if jax.tree_util.tree_structure(params_restricted) != \
                    jax.tree_util.tree_structure(self.params):
                raise ValueError(f"{fn}: `params_restricted` must have the structure of "
                                 f"`params`.")
            params_r, converged = params_restricted, True
            if rm is not None:
                if df is not None and int(df) != rm.shape[0]:
                    raise ValueError(f"{fn}: `df`={df} but R has {rm.shape[0]} rows.")
                gap = rm @ np.asarray(ravel_pytree(params_r)[0], np.float64) - qv
                scale = np.maximum(1.0, np.abs(qv))
                eps = float(np.finfo(ravel_pytree(params_r)[0].dtype).eps)
                if np.any(np.abs(gap) > math.sqrt(eps) * scale * np.abs(rm).sum(1).max()):
                    raise ValueError(f"{fn}: `params_restricted` does not satisfy "
                                     f"R theta = q (largest gap {np.abs(gap).max():.3g}).")
            elif df is None:
                raise ValueError(f"{fn}: with `params_restricted` and no `R`, give `df` "
                                 f"(the number of restrictions).")
        m = rm.shape[0] if rm is not None else int(df)
        if not m > 0:
            raise ValueError(f"{fn}: `df` (number of restrictions) must be > 0, got {m}.")
        if kind == "sandwich" and rm is None:
            raise ValueError(f"{fn}: the robust score test ({cov_name}) needs `R`.")
        factor = self._factor(cov_name) if kind == "sandwich" else 1.0
        stat, loglik = _lm_statistic(model, params_r, kind, factor, rm, fn)
        dtype = ravel_pytree(self.params)[0].dtype
        return ScoreTest(stat, m, _chi2_sf(stat, m, dtype), cov_name, params_r, loglik,
                         converged)

    def _factor(self, cov_name: str) -> float:
        return _small_sample_factor(cov_name, self.nobs, self.df_resid, self.n_groups,
                                    "Summary.score_test")

    def predict(self, fn: Callable[..., jax.Array], *args: Any) -> Prediction:
        r"""Delta-method standard errors and intervals for any function of the parameters.

        ``fn(params, *args)`` returns an array (any shape): predictions, contrasts,
        marginal effects... Its value at :math:`\hat\theta` and the Jacobian :math:`J`
        (autodiff: ``k`` forward passes) give :math:`\mathrm{se} =
        \sqrt{\mathrm{diag}(J\,\widehat{\mathrm{Cov}}\,J^\top)}` with this summary's
        covariance.

        Args:
          fn: ``fn(params, *args) -> array``, differentiable in ``params``.
          *args: data for ``fn`` (arrays are traced, other values static, as in
            :func:`summary`).

        Returns:
          A :class:`Prediction` (``value``, ``stderr``, ``conf_int(level)``, ...).

        Example:
          >>> import jax.numpy as jnp, nllax
          >>> y = jnp.array([0.0, 1.0, 3.0, 2.0])  # Poisson counts, log-rate eta
          >>> ll = lambda eta, y: nllax.poisson.log_prob(y, log_rate=eta * jnp.ones_like(y))
          >>> s = nllax.summary(ll, jnp.log(y.mean()), y)
          >>> p = s.predict(lambda eta: jnp.exp(eta))  # the rate, se = rate / sqrt(sum y)
          >>> round(float(p.value), 4), round(float(p.stderr), 4)
          (1.5, 0.6124)
        """
        name = "Summary.predict"
        if not callable(fn):
            raise TypeError(f"{name}: `fn` must be callable, got {type(fn).__name__}.")
        try:
            out = jax.eval_shape(lambda p, a: fn(p, *a), self.params, args)
        except (ValueError, TypeError) as e:
            cls = TypeError if isinstance(e, TypeError) else ValueError
            raise cls(f"{name}: calling `fn(params, *args)` failed: {e}") from e
        if not hasattr(out, "shape") or not jnp.issubdtype(out.dtype, jnp.floating):
            raise TypeError(f"{name}: `fn` must return one floating array, got {out!r}.")
        dyn, (key, treedef, static) = _split_args(args)
        impl = _predict if key is not None else _predict_impl
        value, jac = impl(self.params, dyn, fn=fn, static=(treedef, static))
        k = self.k
        j = jac.reshape(-1, k)
        affected = jnp.asarray(self._affected)
        cov = jnp.where(jnp.isnan(self.cov), 0.0, self.cov).astype(j.dtype)
        var = jnp.sum((j @ cov) * j, axis=1)
        touches = jnp.any((j != 0) & affected[None, :], axis=1)
        se = jnp.where(touches, jnp.nan, jnp.sqrt(jnp.maximum(var, 0.0))).reshape(value.shape)
        z = value / se
        return Prediction(value, se, z, 2.0 * ndtr(-jnp.abs(z)), jac, cov)

    def _rows(self, level: float):
        theta, se, z, p = (np.asarray(a) for a in self._flat)
        lo, hi = (np.asarray(a) for a in self._conf_int_flat(level))
        return [(self.names[i], theta[i], se[i], z[i], p[i], lo[i], hi[i]) for i in range(self.k)]

    def _details(self) -> str:
        parts = []
        if self.n_groups is not None:
            parts.append(f"clusters: {self.n_groups}")
        if self.correction != 1.0 or self.covariance in ("HC1", "CR1"):
            parts.append(f"small-sample factor: {self.correction:.6g}")
        if self.dispersion_method == "pearson":
            parts.append(f"dispersion (Pearson): {self.dispersion:.6g}")
        elif self.dispersion != 1.0:
            parts.append(f"dispersion: {self.dispersion:.6g}")
        if parts or self.covariance in ("HC1", "CR1") or self.use_t:
            parts.append(f"df_resid: {_fmt_n(self.df_resid)}")
        return "   ".join(parts)

    def table(self, level: float = 0.95) -> str:
        """The summary as a fixed-width text table (what ``print`` shows)."""
        a, b = 0.5 - level / 2, 0.5 + level / 2
        width = max(12, max(len(n) for n in self.names) + 1)
        z = "t" if self.use_t else "z"
        head = (
            f"{'':<{width}}{'estimate':>11}{'std err':>11}{z:>9}{f'P>|{z}|':>9}"
            f"{f'[{a:.3g}':>11}{f'{b:.3g}]':>11}"
        )
        rule = "=" * len(head)
        lines = [
            f"nllax summary   covariance: {self.covariance} ({_DESCRIPTION[self.covariance]})",
            (
                f"nobs: {_fmt_n(self.nobs)}   k: {self.k}   log-likelihood: {self.loglik:.6g}   "
                f"AIC: {self.aic:.6g}   BIC: {self.bic:.6g}"
            ),
        ]
        if self._details():
            lines.append(self._details())
        lines += [rule, head, "-" * len(head)]
        for name, est, se, z, p, lo, hi in self._rows(level):
            zs = f"{z:>9.3f}" if np.isfinite(z) else f"{'nan':>9}"
            ps = f"{p:>9.3f}" if np.isfinite(p) else f"{'nan':>9}"
            lines.append(f"{name:<{width}}{_fmt(est)}{_fmt(se)}{zs}{ps}{_fmt(lo)}{_fmt(hi)}")
        lines.append(rule)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"Summary(k={self.k}, nobs={_fmt_n(self.nobs)}, loglik={self.loglik:.6g}, "
            f"covariance={self.covariance!r})"
        )

    def _repr_html_(self) -> str:
        a, b = 0.025, 0.975
        z = "t" if self.use_t else "z"
        cells = "".join(
            f"<th>{h}</th>" for h in ("", "estimate", "std err", z, f"P&gt;|{z}|", f"[{a}", f"{b}]")
        )
        rows = []
        for name, est, se, z, p, lo, hi in self._rows(0.95):
            vals = "".join(f"<td>{_fmt(v, 0).strip()}</td>" for v in (est, se))
            vals += f"<td>{z:.3f}</td><td>{p:.3f}</td>"
            vals += "".join(f"<td>{_fmt(v, 0).strip()}</td>" for v in (lo, hi))
            rows.append(f"<tr><th>{html.escape(name)}</th>{vals}</tr>")
        extra = f"; {html.escape(self._details())}" if self._details() else ""
        caption = (
            f"nllax summary: covariance {html.escape(self.covariance)}; nobs {_fmt_n(self.nobs)}, "
            f"k {self.k}, log-likelihood {self.loglik:.6g}, AIC {self.aic:.6g}, "
            f"BIC {self.bic:.6g}{extra}"
        )
        return (
            f"<table><caption>{caption}</caption><thead><tr>{cells}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def _small_sample_factor(cov_name, nobs, df_resid, n_groups, fn: str) -> float:
    if cov_name not in ("HC1", "CR1"):
        return 1.0
    if not df_resid > 0:
        raise ValueError(
            f"{fn}: covariance={cov_name!r} divides by df_resid = n - p, which is "
            f"{df_resid:g} here (nobs {nobs:g}); pass df_resid= (> 0).")
    if cov_name == "HC1":
        return nobs / df_resid
    return n_groups / (n_groups - 1.0) * (nobs - 1.0) / df_resid


def _check_freq_weights(freq_weights, n: int, dtype, fn: str):
    if freq_weights is None:
        return None
    w = np.asarray(freq_weights)
    if w.shape != (n,):
        raise ValueError(
            f"{fn}: `freq_weights` must have shape ({n},) (one per observation of "
            f"log_lik), got shape {w.shape}.")
    if not (jnp.issubdtype(w.dtype, jnp.floating) or jnp.issubdtype(w.dtype, jnp.integer)):
        raise TypeError(f"{fn}: `freq_weights` must be numbers, got dtype {w.dtype}.")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"{fn}: `freq_weights` must be finite and >= 0, not all 0.")
    return jnp.asarray(w, dtype)


def _group_codes(groups, n: int, fn: str):
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(
            f"{fn}: `groups` must have shape ({n},) (one cluster label per observation), "
            f"got shape {g.shape}.")
    labels, codes = np.unique(g, return_inverse=True)
    if len(labels) < 2:
        raise ValueError(f"{fn}: a cluster covariance needs at least 2 clusters, got "
                         f"{len(labels)}.")
    return jnp.asarray(codes.reshape(-1).astype(np.int32)), int(len(labels))


def summary(
    log_lik: Callable[..., jax.Array],
    params_hat: Any,
    *args: Any,
    covariance: str = "observed",
    groups: Any = None,
    freq_weights: Any = None,
    df_resid: float | None = None,
    dispersion: float | str | None = None,
    use_t: bool | None = None,
    rtol: float | None = None,
    batch_size: int | None = None,
) -> Summary:
    r"""Standard errors, Wald tests and intervals, AIC and BIC at an estimate.

    See the module docstring for the formulas, the treatment of a singular Hessian and
    the cost (dense :math:`k\times k` Hessian by autodiff), and ``docs/inference.md``
    for which statsmodels, R and Stata options each choice reproduces.

    Args:
      log_lik: ``log_lik(params, *args)`` returning the per-observation log-likelihoods,
        shape ``(n,)``; it must be differentiable twice in ``params``. Or a
        :class:`nllax.Likelihood` (a family of a predictor; then ``*args`` are ``y,
        *covariates``), whose structure ``covariance="expected"`` and
        ``dispersion="pearson"`` need: the family's expected information and its mean
        and variance.
      params_hat: the estimate (any pytree of floating arrays), normally the MLE.
      *args: data and fixed quantities passed to ``log_lik`` (arrays are traced, other
        values are treated as static).
      covariance: ``"observed"`` (default), ``"expected"`` (the inverse expected (Fisher)
        information :math:`(J^\top\,\mathbb{E}[W]\,J)^{-1}`, R's ``summary.glm`` and
        statsmodels' GLM (IRLS) for any link; equal to ``"observed"`` for a canonical
        link; needs a :class:`nllax.Likelihood` with one predicted parameter whose
        family declares its Fisher information), ``"opg"``, ``"HC0"`` (sandwich; alias
        ``"robust"``), ``"HC1"`` (sandwich times ``nobs / df_resid``), ``"CR1"``
        (cluster-robust with ``groups``, times :math:`\frac{G}{G-1}\frac{n-1}{n-p}`;
        alias ``"cluster"``) or ``"CR0"`` (cluster-robust, no factor).
      groups: cluster label of each observation, shape ``(n,)`` (any values
        ``numpy.unique`` can sort), for ``"CR0"``/``"CR1"`` only.
      freq_weights: frequency weights, shape ``(n,)``, >= 0: observation ``i`` counts
        ``w_i`` times, exactly as if its row were repeated (log-likelihood, meat, ``nobs =
        sum(w)``). ``log_lik`` returns the unweighted values. Analytic or probability
        weights are not this: put them in ``log_lik`` (see ``docs/inference.md``).
      df_resid: the :math:`n - p` of ``"HC1"``, ``"CR1"`` and F tests; default ``nobs -
        k`` (every free parameter counted, a noise scale too). statsmodels and Stata's
        ``regress`` do not count a Gaussian scale (pass ``nobs - k + 1``); Stata's
        maximum-likelihood commands use :math:`n - 1` (pass ``nobs - 1``).
      dispersion: a factor :math:`\phi > 0` for the ``"observed"`` or ``"expected"``
        covariance, :math:`\phi\,(-H)^{-1}` (a known or separately estimated
        quasi-likelihood dispersion, as R's ``summary.glm(dispersion=)``); default 1. Or
        ``"pearson"``: :math:`\hat\phi = \sum_i w_i (y_i - \mu_i)^2/\mathrm{Var}_i
        \,/\,` ``df_resid``, with the mean and variance of the family at ``params_hat``
        (needs a :class:`nllax.Likelihood`; R's ``summary.glm`` and statsmodels' GLM
        ``scale="X2"``, quasi-likelihood standard errors when the variance is
        :math:`\phi` times the model's).
      use_t: t statistics with ``df_resid`` degrees of freedom for ``pvalues`` and
        ``conf_int``, and F for ``wald_test``; default: True exactly when the
        dispersion is estimated (``"pearson"``), as R's ``summary.glm``.
      rtol: relative eigenvalue threshold below which a direction counts as flat; default
        :math:`10\max(k,\sqrt n)\,\epsilon`.
      batch_size: how many of the ``k`` forward-mode directions of the Hessian and the
        scores are computed at once (``jax.lax.map``); lower it to bound the peak memory
        (about ``batch_size`` times the model's intermediates) for large ``k``. Default:
        all at once (fastest).

    Returns:
      A :class:`Summary`; ``print`` it for a table; its methods ``wald_test``,
      ``score_test``, ``predict`` and ``profile_ci`` use the same model.

    Warns:
      InferenceWarning: when some standard errors are NaN (singular or not
        negative-definite Hessian, non-finite log-likelihood) or when ``params_hat`` is
        more than 0.01 standard errors from the maximum (a Newton step away).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([1.0, 2.0, 4.0])
      >>> ll = lambda p, y: nllax.gaussian.log_prob(y, p["mu"], p["sigma"])
      >>> s = nllax.summary(ll, {"mu": y.mean(), "sigma": y.std()}, y)
      >>> round(float(s.stderr["mu"]), 4)  # sigma_hat / sqrt(n)
      0.7201
    """
    fn = "nllax.summary"
    if covariance not in COVARIANCES:
        raise ValueError(f"{fn}: `covariance` must be one of {COVARIANCES}, got {covariance!r}.")
    cov_name = _CANONICAL.get(covariance, covariance)
    kind = _KIND[cov_name]
    lik = _likelihood_of(log_lik)
    if lik is not None:
        log_lik = lik.log_lik
    pearson = isinstance(dispersion, str)
    if pearson and dispersion != "pearson":
        raise ValueError(f"{fn}: `dispersion` must be a number > 0 or 'pearson', got "
                         f"{dispersion!r}.")
    for what, needed in (("covariance='expected'", kind == "expected"),
                         ("dispersion='pearson'", pearson)):
        if needed and lik is None:
            raise ValueError(
                f"{fn}: {what} needs the model's structure (the family's expected "
                f"information, mean and variance): pass a nllax.Likelihood(family, "
                f"predictor) as `log_lik`, with args (y, *covariates).")
    if not callable(log_lik):
        raise TypeError(f"{fn}: `log_lik` must be callable, got {type(log_lik).__name__}.")
    _float_leaves(params_hat, fn)
    nrows = _check_log_lik(log_lik, params_hat, args, fn)
    theta0, unravel = ravel_pytree(params_hat)
    k = int(theta0.size)
    dtype = theta0.dtype
    rtol = _default_rtol(k, nrows, dtype) if rtol is None else float(rtol)
    if not rtol > 0:
        raise ValueError(f"{fn}: `rtol` must be > 0, got {rtol}.")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"{fn}: `batch_size` must be a positive int, got {batch_size!r}.")
        batch_size = int(min(batch_size, k))
    fw = _check_freq_weights(freq_weights, nrows, dtype, fn)
    if fw is None:
        nobs: int | float = nrows
    else:
        total_w = float(np.sum(np.asarray(freq_weights, np.float64)))
        nobs = int(total_w) if total_w.is_integer() else total_w
    codes, n_groups = None, None
    if cov_name in _CLUSTER:
        if groups is None:
            raise ValueError(f"{fn}: covariance={covariance!r} needs groups= (the cluster "
                             f"of each observation).")
        codes, n_groups = _group_codes(groups, nrows, fn)
    elif groups is not None:
        raise ValueError(f"{fn}: groups= is used only by the cluster covariances "
                         f"('cluster', 'CR1', 'CR0'), not by {covariance!r}.")
    if df_resid is None:
        df_resid = nobs - k
    else:
        df_resid = float(df_resid)
        if not (np.isfinite(df_resid) and df_resid > 0):
            raise ValueError(f"{fn}: `df_resid` must be finite and > 0, got {df_resid}.")
    if dispersion is not None and kind not in ("observed", "expected"):
        raise ValueError(
            f"{fn}: dispersion= scales the observed- or expected-information covariance; "
            f"the sandwiches do not depend on it and 'opg' does not use it (got "
            f"covariance={covariance!r}).")
    if dispersion is None or pearson:
        phi = 1.0
    else:
        phi = float(dispersion)
        if not (np.isfinite(phi) and phi > 0):
            raise ValueError(f"{fn}: `dispersion` must be finite and > 0, got {dispersion}.")
    if kind == "expected" or pearson:
        _check_structure(lik, params_hat, args, fn, expected=kind == "expected",
                         moments=pearson)
    correction = _small_sample_factor(cov_name, nobs, df_resid, n_groups, fn)

    dyn, split = _split_args(args)
    model = _Model(log_lik=log_lik, args=args, dyn=dyn, split=split, fw=fw, codes=codes,
                   n_groups=n_groups, nobs=nobs, nrows=nrows, rtol=rtol, batch_size=batch_size,
                   lik=lik)
    if pearson:
        if not df_resid > 0:
            raise ValueError(f"{fn}: dispersion='pearson' divides by df_resid = n - p, "
                             f"which is {df_resid:g} here; pass df_resid= (> 0).")
        key, treedef, static = split
        impl = _pearson if key is not None else _pearson_impl
        chi2 = impl(params_hat, dyn, model.weights(dtype), lik=lik, static=(treedef, static),
                    nrows=nrows)
        phi = float(chi2) / df_resid
    factor = phi if kind in ("observed", "expected") else correction
    use_t = pearson if use_t is None else bool(use_t)
    if use_t and not df_resid > 0:
        raise ValueError(f"{fn}: use_t needs df_resid > 0, got {df_resid:g}.")
    out = _information(model, params_hat, kind, factor)

    theta = jnp.asarray(out["theta"])
    cov = jnp.asarray(out["cov"])
    se, z, p = _se_z_p(theta, cov, df_resid, use_t=use_t)
    loglik = float(out["loglik"])
    names = tuple(_param_names(params_hat))

    affected = np.asarray(out["affected"])
    if not bool(out["finite"]):
        warnings.warn(
            f"{fn}: the log-likelihood or its gradient is not finite at `params_hat`; "
            f"every standard error is NaN.", InferenceWarning, stacklevel=2,
        )
    elif affected.any():
        which = ", ".join(n for n, a in zip(names, affected) if a)
        what = {"opg": "information matrix (S'S)", "expected": "expected information"}.get(
            kind, "negative Hessian")
        warnings.warn(
            f"{fn}: the {what} is singular or not positive definite ({int(out['n_bad'])} "
            f"flat or wrong-way direction(s)); standard errors are NaN for: {which}. "
            f"Look for duplicated or collinear inputs, parameters that enter only "
            f"together, or an estimate that is not a maximum.",
            InferenceWarning, stacklevel=2,
        )
    decrement = float(out["decrement"])
    if np.isfinite(decrement) and decrement > 1e-2:
        warnings.warn(
            f"{fn}: `params_hat` is {decrement:.3g} standard errors (a Newton step) from "
            f"the maximum of the log-likelihood; it does not look like a converged MLE, so "
            f"the standard errors are not those of the MLE.", InferenceWarning, stacklevel=2,
        )
    return Summary(
        params=params_hat,
        stderr=unravel(se),
        zvalues=unravel(z),
        pvalues=unravel(p),
        cov=cov,
        names=names,
        loglik=loglik,
        nobs=nobs,
        k=k,
        aic=2.0 * k - 2.0 * loglik,
        bic=k * math.log(nobs) - 2.0 * loglik,
        covariance=cov_name,
        newton_decrement=decrement,
        df_resid=df_resid,
        correction=correction,
        dispersion=phi,
        n_groups=n_groups,
        dispersion_method="pearson" if pearson else "fixed",
        use_t=use_t,
        _flat=(theta, se, z, p),
        _unravel=unravel,
        _model=model,
        _affected=affected,
    )


@functools.partial(jax.jit, static_argnames=("use_t",))
def _se_z_p(theta, cov, df_resid, *, use_t):
    """Standard errors, z (or t) values and two-sided p-values: one compiled program (op by
    op, each primitive of erfc / the incomplete beta function would compile on its own)."""
    se = jnp.sqrt(jnp.diagonal(cov))  # NaN on affected rows; >= 0 elsewhere
    z = theta / se
    p = _t_two_sided(z, df_resid) if use_t else 2.0 * ndtr(-jnp.abs(z))
    return se, z, p


def _likelihood_of(log_lik):
    """The nllax.Likelihood given as ``log_lik`` (the object or its bound ``log_lik``)."""
    from nllax._likelihood import Likelihood

    if isinstance(log_lik, Likelihood):
        return log_lik
    owner = getattr(log_lik, "__self__", None)
    if isinstance(owner, Likelihood) and getattr(log_lik, "__func__", None) is Likelihood.log_lik:
        return owner
    return None


def _check_structure(lik, params, args, fn: str, *, expected: bool, moments: bool) -> None:
    """Trace-time checks (no computation) that the Likelihood offers what is asked."""
    from nllax._likelihood import _expected_curvature

    fam = lik.family
    name = getattr(fam, "__name__", repr(fam))
    decl = getattr(fam, "family", None)
    if not args:
        raise TypeError(f"{fn}: with a nllax.Likelihood, args are (y, *covariates).")
    u = jax.eval_shape(lambda p, a: lik.predict(p, *a), params, tuple(args[1:]))
    if expected:
        ok = len(u) == 1 and jax.eval_shape(
            lambda p, a: _expected_curvature(fam, lik.predict(p, *a)), params,
            tuple(args[1:])) is not None
        if not ok:
            raise ValueError(
                f"{fn}: covariance='expected' needs one predicted parameter whose expected "
                f"information the family declares; {name} with {sorted(u)} has none (use "
                f"covariance='observed').")
    if moments and (decl is None or getattr(decl, "moments", None) is None):
        raise ValueError(
            f"{fn}: dispersion='pearson' needs the family's mean and variance "
            f"(Family.moments); {name} does not declare them.")


def score_test(
    log_lik: Callable[..., jax.Array],
    params_restricted: Any,
    *args: Any,
    df: int,
    covariance: str = "observed",
    freq_weights: Any = None,
    rtol: float | None = None,
) -> ScoreTest:
    r"""Score (Lagrange multiplier) test from a restricted fit alone.

    :math:`\mathrm{LM} = g^\top A^{-1} g` at the restricted estimate :math:`\tilde\theta`
    (the maximum of the log-likelihood under the ``df`` restrictions), with :math:`g` the
    gradient of the *full* model's log-likelihood there and :math:`A` its observed
    information :math:`-\tilde H` (``covariance="observed"``) or :math:`\tilde S^\top
    \tilde S` (``"opg"``); asymptotically :math:`\chi^2_{df}`. Only the restricted model
    is fitted: write ``log_lik`` for the full model and pass the restricted estimate in
    its parametrisation (e.g. with the tested coefficients at 0). For the robust
    (sandwich) forms, which need the restriction matrix, use :meth:`Summary.score_test`.

    Args:
      log_lik, *args: the full model, as in :func:`summary`.
      params_restricted: the restricted MLE, in the full model's parameters.
      df: number of restrictions.
      covariance: ``"observed"`` or ``"opg"``.
      freq_weights, rtol: as in :func:`summary`.

    Returns:
      A :class:`ScoreTest`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([1.0, 2.0, 4.0, 3.0])
      >>> ll = lambda mu, y: nllax.gaussian.log_prob(y, mu, 1.0)
      >>> t = nllax.score_test(ll, jnp.asarray(2.0), y, df=1)  # H0: mu = 2; LM = (sum(y - 2))^2 / n
      >>> round(t.statistic, 4)
      1.0
    """
    fn = "nllax.score_test"
    if covariance not in ("observed", "opg"):
        raise ValueError(f"{fn}: `covariance` must be 'observed' or 'opg' (the robust forms "
                         f"need R: use Summary.score_test), got {covariance!r}.")
    if not callable(log_lik):
        raise TypeError(f"{fn}: `log_lik` must be callable, got {type(log_lik).__name__}.")
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"{fn}: `df` (number of restrictions) must be an int >= 1, got {df!r}.")
    _float_leaves(params_restricted, fn)
    nrows = _check_log_lik(log_lik, params_restricted, args, fn)
    theta, _ = ravel_pytree(params_restricted)
    dtype = theta.dtype
    rtol = _default_rtol(theta.size, nrows, dtype) if rtol is None else float(rtol)
    fw = _check_freq_weights(freq_weights, nrows, dtype, fn)
    dyn, split = _split_args(args)
    model = _Model(log_lik=log_lik, args=args, dyn=dyn, split=split, fw=fw, codes=None,
                   n_groups=None, nobs=float(nrows), nrows=nrows, rtol=rtol, batch_size=None)
    stat, loglik = _lm_statistic(model, params_restricted, covariance, 1.0, None, fn)
    return ScoreTest(stat, int(df), _chi2_sf(stat, int(df), dtype), covariance,
                     params_restricted, loglik, True)


# --------------------------------------------------------------------------------------
# Likelihood-ratio test.


class LRTest(tuple):
    """Result of :func:`lr_test`: ``statistic``, ``df``, ``pvalue`` (a named tuple)."""

    __slots__ = ()
    _fields = ("statistic", "df", "pvalue")

    def __new__(cls, statistic, df, pvalue):
        return tuple.__new__(cls, (statistic, df, pvalue))

    statistic = property(lambda self: self[0])
    df = property(lambda self: self[1])
    pvalue = property(lambda self: self[2])

    def __repr__(self) -> str:
        return f"LRTest(statistic={self[0]}, df={self[1]}, pvalue={self[2]})"


jax.tree_util.register_pytree_node(
    LRTest, lambda t: (tuple(t), None), lambda _, c: LRTest(*c)
)


def lr_test(loglik_restricted: Any, loglik_full: Any, df: Any) -> LRTest:
    r"""Likelihood-ratio test of a restricted model nested in a full one.

    :math:`\mathrm{LR} = 2(\ell_\mathrm{full} - \ell_\mathrm{restricted})`, asymptotically
    :math:`\chi^2_\mathrm{df}` under the restriction, with ``df`` the number of
    restrictions; the p-value is
    :math:`P(\chi^2_\mathrm{df} > \mathrm{LR}) = Q(\mathrm{df}/2, \mathrm{LR}/2)` (regularised
    upper incomplete gamma function).

    A statistic that is negative by no more than rounding
    (:math:`\sqrt\epsilon\,\max(1, |\ell_r|, |\ell_f|)` in the inputs' dtype) is set to 0
    (p-value 1); a more negative one means that the full model's fit is worse than the
    restricted one (arguments swapped, or a fit that did not converge) and raises
    ``ValueError`` (NaN under ``jit``, where values cannot be checked).

    Args:
      loglik_restricted: maximised log-likelihood of the restricted model (scalar).
      loglik_full: maximised log-likelihood of the full model (scalar).
      df: number of restrictions, > 0.

    Returns:
      ``LRTest(statistic, df, pvalue)``, a named tuple (and a pytree).

    Example:
      >>> import nllax
      >>> t = nllax.lr_test(-105.2, -101.4, df=2)
      >>> round(float(t.statistic), 2), round(float(t.pvalue), 4)
      (7.6, 0.0224)
    """
    fn = "nllax.lr_test"
    lr = jnp.asarray(loglik_restricted)
    lf = jnp.asarray(loglik_full)
    if lr.shape != () or lf.shape != ():
        raise ValueError(
            f"{fn}: the log-likelihoods must be scalars (the summed log-likelihoods), got "
            f"shapes {lr.shape} and {lf.shape}."
        )
    dtype = jnp.result_type(lr, lf, float)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.zeros((), float).dtype
    lr, lf = lr.astype(dtype), lf.astype(dtype)
    df_is_concrete = not isinstance(df, jax.core.Tracer)
    if df_is_concrete:
        dfv = float(np.asarray(df))
        if not np.isfinite(dfv) or dfv <= 0:
            raise ValueError(f"{fn}: `df` (number of restrictions) must be > 0, got {df}.")
    dfa = jnp.asarray(df, dtype)
    concrete = not any(isinstance(x, jax.core.Tracer) for x in (lr, lf))
    # eagerly one compiled program (op by op, each primitive of the incomplete gamma
    # function would compile on its own); under a transformation the same body, traced
    core = _lr_core_jit if concrete and df_is_concrete else _lr_core
    stat, slack, clipped, pvalue = core(lr, lf, dfa)
    if concrete:
        s, sl = float(stat), float(slack)
        if not (np.isfinite(float(lr)) and np.isfinite(float(lf))):
            raise ValueError(
                f"{fn}: the log-likelihoods must be finite, got {float(lr)} and {float(lf)}."
            )
        if s < -sl:
            raise ValueError(
                f"{fn}: loglik_full ({float(lf)}) is below loglik_restricted ({float(lr)}) by "
                f"more than rounding: the arguments may be swapped (restricted first), or "
                f"the full model's fit did not reach its maximum."
            )
    return LRTest(clipped, df, pvalue)


def _lr_core(lr, lf, dfa):
    """(statistic, its rounding slack, the statistic clipped at 0 / NaN, p-value)."""
    stat = 2.0 * (lf - lr)
    slack = 2.0 * math.sqrt(float(np.finfo(lr.dtype).eps)) * jnp.maximum(
        1.0, jnp.maximum(jnp.abs(lr), jnp.abs(lf))
    )
    bad = (stat < -slack) | ~jnp.isfinite(stat) | ~(dfa > 0)
    clipped = jnp.where(bad, jnp.nan, jnp.maximum(stat, 0.0))
    return stat, slack, clipped, gammaincc(dfa / 2.0, clipped / 2.0)


_lr_core_jit = jax.jit(_lr_core)


# --------------------------------------------------------------------------------------
# Profile likelihood.


def _profile_impl(free0, psi, params, dyn, fw, *, log_lik, static, index, max_steps):
    treedef, static_leaves = static
    args = _merge_args(dyn, treedef, static_leaves)
    _, unravel = ravel_pytree(params)

    def total(free):
        theta = jnp.concatenate([free[:index], psi[None], free[index:]])
        li = log_lik(unravel(theta), *args)
        return jnp.sum(li if fw is None else fw * li)

    if free0.size == 0:  # one parameter: the profile is the log-likelihood itself
        fx = total(free0)
        return free0, fx, jnp.isfinite(fx)
    # nllax.fit's default damped Newton: quadratic convergence, so l_p(psi) is exact to
    # rounding; it runs inside this jit, so one compilation serves every psi.
    res = _fit(lambda free: -total(free), free0, max_steps=max_steps)
    return res.params, -res.value, res.converged


_profile = jax.jit(_profile_impl, static_argnames=("log_lik", "static", "index", "max_steps"))


@dataclasses.dataclass(frozen=True)
class ProfileInterval:
    """Result of :func:`profile_ci` for one scalar parameter.

    Attributes:
      name, index: the parameter's name (as in the summary table) and raveled index.
      estimate: the estimate :math:`\\hat\\psi`; ``loglik_max``: :math:`\\hat\\ell`.
      level: the confidence level; ``lower``, ``upper``: the interval (``-inf``/``inf``
        where the profile never falls below the cutoff: the data do not bound it).
      lower_status, upper_status: ``"ok"``, ``"unbounded"`` (no crossing within
        ``2**max_expand`` standard errors), ``"domain"`` (the log-likelihood becomes
        non-finite, or the re-fit of the others fails, before the cutoff, e.g. outside
        the parameter's domain: the bound is the last good point, within ``xtol``
        standard errors of the edge).
      wald: the Wald interval ``(lower, upper)`` from the observed information.
      evaluations: number of re-fits.
    """

    name: str
    index: int
    estimate: float
    level: float
    lower: float
    upper: float
    lower_status: str
    upper_status: str
    wald: tuple[float, float]
    loglik_max: float
    evaluations: int

    def __str__(self) -> str:
        return (
            f"{self.name}: estimate {self.estimate:.6g}, {100 * self.level:g}% profile "
            f"interval [{self.lower:.6g}, {self.upper:.6g}] "
            f"(Wald [{self.wald[0]:.6g}, {self.wald[1]:.6g}])"
        )


def _resolve(which: str | int, names: list[str], fn: str) -> int:
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        i = int(which)
        if not -len(names) <= i < len(names):
            raise ValueError(f"{fn}: `which`={i} is out of range for {len(names)} parameters.")
        return i % len(names)
    if isinstance(which, str):
        if which in names:
            return names.index(which)
        raise ValueError(
            f"{fn}: `which`={which!r} is not a parameter name; the names are "
            f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}."
        )
    raise TypeError(f"{fn}: `which` must be a parameter name (str) or a raveled index (int).")


def profile_ci(
    log_lik: Callable[..., jax.Array],
    params_hat: Any,
    *args: Any,
    which: str | int,
    level: float = 0.95,
    xtol: float = 1e-8,
    max_expand: int = 30,
    max_steps: int = 100,
    freq_weights: Any = None,
) -> ProfileInterval:
    r"""Profile-likelihood confidence interval for one scalar parameter.

    With :math:`\psi` the chosen parameter and :math:`\lambda` all the others, the profile
    log-likelihood is :math:`\ell_p(\psi) = \max_\lambda \ell(\psi, \lambda)` and the
    interval is :math:`\{\psi : 2(\hat\ell - \ell_p(\psi)) \le \chi^2_{1}(\mathrm{level})\}`
    (likelihood-ratio test inversion). Unlike the Wald interval it is invariant to
    reparametrisation and follows the shape of the likelihood, so it stays honest in small
    samples and near a boundary (e.g. a Poisson rate with few counts).

    Each side is found by walking out from :math:`\hat\psi` in steps of 1, 2, 4, ...
    standard errors until :math:`\ell_p` falls below the cutoff (bracketing), then by
    the Illinois variant of regula falsi (bisection where the outer value is not
    finite) until the bracket is narrower than ``xtol * stderr``. Every evaluation
    re-maximises over :math:`\lambda` with :func:`nllax.fit` (damped Newton; compiled
    once per call, warm-started from the nearest solution inside the interval). If the
    profile crosses the cutoff more than once, the first crossing on the walk is found.
    :math:`\hat\ell` is re-maximised too (at :math:`\hat\psi`), so ``params_hat`` must
    be the MLE up to rounding.

    Args:
      log_lik, params_hat, *args: as in :func:`summary`.
      which: the parameter, by its name in the summary table (e.g. ``"beta[1]"``) or
        its index in the raveled parameters.
      level: confidence level in (0, 1).
      xtol: width of the final bracket, relative to the Wald standard error.
      max_expand: the walk stops after ``2**max_expand`` standard errors (bound ``inf``).
      max_steps: Newton steps per re-fit.
      freq_weights: frequency weights, as in :func:`summary`.

    Returns:
      A :class:`ProfileInterval`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([0.0, 1.0, 0.0, 2.0, 0.0])  # Poisson counts, log-rate eta
      >>> ll = lambda eta, y: nllax.poisson.log_prob(y, log_rate=eta * jnp.ones_like(y))
      >>> ci = nllax.profile_ci(ll, jnp.log(y.mean()), y, which=0)
      >>> ci.lower < ci.wald[0]  # the profile interval is longer on the low side
      True
    """
    fn = "nllax.profile_ci"
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"{fn}: `level` must be in (0, 1), got {level}.")
    _float_leaves(params_hat, fn)
    nobs = _check_log_lik(log_lik, params_hat, args, fn)
    names = _param_names(params_hat)
    i = _resolve(which, names, fn)
    theta, _ = ravel_pytree(params_hat)
    dtype = theta.dtype
    fw = _check_freq_weights(freq_weights, nobs, dtype, fn)
    fw = jnp.ones(nobs, dtype) if fw is None else fw  # one compilation with or without
    dyn, (key, treedef, static) = _split_args(args)
    st = (treedef, static)
    prof = _profile if key is not None else _profile_impl
    model = _Model(log_lik=log_lik, args=args, dyn=dyn, split=(key, treedef, static), fw=fw,
                   codes=None, n_groups=None, nobs=float(nobs), nrows=nobs,
                   rtol=_default_rtol(theta.size, nobs, dtype), batch_size=None)
    info = _information(model, params_hat, "observed", 1.0)
    se = float(jnp.sqrt(info["cov"][i, i]))
    if float(info["decrement"]) > 1e-2:
        warnings.warn(
            f"{fn}: `params_hat` is {float(info['decrement']):.3g} standard errors from the "
            f"maximum of the log-likelihood; the interval assumes it is the MLE.",
            InferenceWarning, stacklevel=2,
        )
    psi_hat = float(theta[i])
    step = se if np.isfinite(se) and se > 0 else 0.1 * max(1.0, abs(psi_hat))
    q = float(_normal_quantile(jnp.asarray(0.5 + 0.5 * level, dtype))) ** 2  # chi2_1 quantile
    evaluations = 0

    def evaluate(free0, psi):
        nonlocal evaluations
        evaluations += 1
        free, fx, ok = prof(free0, jnp.asarray(psi, dtype), params_hat, dyn, fw,
                            log_lik=log_lik, static=st, index=i, max_steps=max_steps)
        fx = float(fx)
        return free, (fx if bool(ok) else float("nan"))

    free_hat = jnp.concatenate([theta[:i], theta[i + 1:]])
    free_hat, l_max = evaluate(free_hat, psi_hat)
    if not np.isfinite(l_max):
        raise ValueError(f"{fn}: the log-likelihood is not finite at `params_hat`.")

    def g(value):  # < 0 inside the interval, >= 0 outside; NaN where the refit fails
        return 2.0 * (l_max - value) - q

    def search(side: float):
        x_in, g_in, free_in = psi_hat, -q, free_hat
        x_out = g_out = None
        for m in range(max_expand + 1):
            x = psi_hat + side * step * 2.0**m
            free, val = evaluate(free_in, x)
            gx = g(val)
            if np.isfinite(gx) and gx < 0:
                x_in, g_in, free_in = x, gx, free
            else:
                x_out, g_out = x, gx
                break
        if x_out is None:
            return side * math.inf, "unbounded"
        # Illinois (regula falsi that halves the weight of an end kept twice in a row, so
        # convergence is superlinear); bisection while the outer value is not finite.
        w_in, w_out, last = g_in, g_out, None
        while abs(x_out - x_in) > xtol * step:
            x = 0.5 * (x_in + x_out)
            if np.isfinite(w_out) and w_out != w_in:
                sec = x_in - w_in * (x_out - x_in) / (w_out - w_in)
                if min(x_in, x_out) < sec < max(x_in, x_out):
                    x = sec
            if x in (x_in, x_out):  # the bracket is at the float resolution
                break
            free, val = evaluate(free_in, x)
            gx = g(val)
            if gx == 0:
                return x, "ok"
            if np.isfinite(gx) and gx < 0:
                x_in, g_in, free_in, w_in = x, gx, free, gx
                w_out = w_out * 0.5 if last == "in" else w_out
                last = "in"
            else:
                x_out, g_out, w_out = x, gx, gx
                w_in = w_in * 0.5 if last == "out" else w_in
                last = "out"
        if np.isfinite(g_out):
            # Linear interpolation in the final (tiny) bracket.
            return x_in - g_in * (x_out - x_in) / (g_out - g_in), "ok"
        # The log-likelihood is not finite beyond x_out: the interval ends at the edge of
        # the region where it is, x_in being the last point known to be inside.
        return x_in, "domain"

    lower, lo_status = search(-1.0)
    upper, up_status = search(+1.0)
    z = float(_normal_quantile(jnp.asarray(0.5 + 0.5 * level, dtype)))
    return ProfileInterval(
        name=names[i], index=i, estimate=psi_hat, level=level, lower=float(lower),
        upper=float(upper), lower_status=lo_status, upper_status=up_status,
        wald=(psi_hat - z * se, psi_hat + z * se), loglik_max=l_max,
        evaluations=evaluations,
    )
