r"""Inference from a log-likelihood: covariance, standard errors, tests, AIC/BIC.

Everything here starts from ``log_lik(params, *args)``, a function that returns the
*per-observation* log-likelihoods :math:`\ell_i(\theta)`, shape ``(n,)`` (e.g. built from
``nllax.gaussian.log_prob``), and an estimate ``params_hat`` (any pytree of floating
arrays, normally the maximum likelihood estimate). With :math:`\theta` the raveled
parameters (``jax.flatten_util.ravel_pytree``), :math:`\ell = \sum_i \ell_i`,
:math:`H = \nabla^2\ell(\hat\theta)` (autodiff, not finite differences) and the scores
:math:`S_{ij} = \partial\ell_i/\partial\theta_j` (forward-mode Jacobian):

* ``covariance="observed"``: :math:`\widehat{\mathrm{Cov}} = (-H)^{-1}` (observed information);
* ``"opg"``: :math:`(S^\top S)^{-1}` (outer product of gradients, BHHH);
* ``"robust"``: :math:`(-H)^{-1}\,S^\top S\,(-H)^{-1}` (sandwich, White / HC0).

Standard errors are the square roots of the diagonal; :math:`z = \hat\theta/\mathrm{se}`,
two-sided p-values :math:`2\Phi(-|z|)`, Wald intervals :math:`\hat\theta \pm
\Phi^{-1}(\tfrac{1+\mathrm{level}}{2})\,\mathrm{se}`,
:math:`\mathrm{AIC} = 2k - 2\ell`, :math:`\mathrm{BIC} = k\log n - 2\ell` with :math:`k` the
number of entries of ``params_hat`` (every free parameter counts, a noise scale too).

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
from jax.scipy.special import gammaincc, ndtr, ndtri

from nllax._fit import fit as _fit

__all__ = [
    "InferenceWarning",
    "LRTest",
    "ProfileInterval",
    "Summary",
    "lr_test",
    "profile_ci",
    "summary",
]

COVARIANCES = ("observed", "opg", "robust")
_DESCRIPTION = {
    "observed": "inverse observed information (-Hessian)",
    "opg": "inverse outer product of the scores",
    "robust": "sandwich H^-1 (S'S) H^-1 (HC0)",
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


def _derivs_impl(params, dyn, *, log_lik, static, hessian, scores, batch_size=None):
    """The model-specific part: log-likelihood, gradient, Hessian and/or S'S.

    ``batch_size`` bounds how many directions (forward-mode passes) are pushed through
    the model at once, hence the peak memory; None does all ``k`` at once."""
    treedef, static_leaves = static
    args = _merge_args(dyn, treedef, static_leaves)
    theta, unravel = ravel_pytree(params)

    def per_obs(t):
        return log_lik(unravel(t), *args)

    def total(t):
        return jnp.sum(per_obs(t))

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
        meat = s @ s.T
    return theta, loglik, grad, hess, meat


_derivs = jax.jit(
    _derivs_impl, static_argnames=("log_lik", "static", "hessian", "scores", "batch_size")
)


@functools.partial(jax.jit, static_argnames=("covariance",))
def _analyse(loglik, grad, hess, meat, rtol, *, covariance):
    """The generic part (compiled once per k and dtype, shared by every model)."""
    if covariance == "opg":
        bread, affected, n_bad = _pinv_checked(meat, rtol)
        cov = bread
    else:
        bread, affected, n_bad = _pinv_checked(-hess, rtol)
        cov = bread @ meat @ bread if covariance == "robust" else bread
    nan_rows = affected[:, None] | affected[None, :]
    cov = jnp.where(nan_rows, jnp.nan, 0.5 * (cov + cov.T))
    # Newton step to the maximum of the quadratic model, measured in standard errors.
    decrement = jnp.sqrt(jnp.maximum(grad @ bread @ grad, 0.0))
    finite = jnp.isfinite(loglik) & jnp.all(jnp.isfinite(grad))
    return {
        "loglik": loglik, "cov": cov, "affected": affected | ~finite, "n_bad": n_bad,
        "decrement": decrement, "finite": finite,
    }


def _information(log_lik, params_hat, dyn, split, covariance, rtol, batch_size=None):
    key, treedef, static = split
    derivs = _derivs if key is not None else _derivs_impl
    theta, loglik, grad, hess, meat = derivs(
        params_hat, dyn, log_lik=log_lik, static=(treedef, static),
        hessian=covariance != "opg", scores=covariance != "observed", batch_size=batch_size,
    )
    out = _analyse(loglik, grad, hess, meat, jnp.asarray(rtol, theta.dtype), covariance=covariance)
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


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Summary:
    """The result of :func:`summary`. Pytree fields have the structure of ``params_hat``.

    Attributes:
      params, stderr, zvalues, pvalues: estimates, standard errors (NaN where not
        identified), Wald z statistics and two-sided normal p-values.
      cov: ``(k, k)`` covariance of the raveled parameters (``ravel_pytree`` order).
      names: one name per raveled parameter (pytree path plus array index).
      loglik, nobs, k, aic, bic: the maximised log-likelihood, the number of
        observations (length of ``log_lik``'s output), the number of free parameters,
        :math:`2k - 2\\ell` and :math:`k\\log n - 2\\ell`.
      covariance: which estimator was used.
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
    nobs: int
    k: int
    aic: float
    bic: float
    covariance: str
    newton_decrement: float
    _flat: tuple = dataclasses.field(default=(), compare=False)
    _unravel: Callable = dataclasses.field(default=None, compare=False)
    _model: tuple = dataclasses.field(default=(), compare=False)

    def conf_int(self, level: float = 0.95) -> tuple[Any, Any]:
        """Wald interval :math:`\\hat\\theta \\pm \\Phi^{-1}((1+\\mathrm{level})/2)\\,
        \\mathrm{se}`; returns ``(lower, upper)``, each shaped like ``params``."""
        lo, hi = self._conf_int_flat(level)
        return self._unravel(lo), self._unravel(hi)

    def _conf_int_flat(self, level: float):
        level = float(level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"Summary.conf_int: `level` must be in (0, 1), got {level}.")
        theta, se = self._flat[0], self._flat[1]
        q = ndtri(jnp.asarray(0.5 + 0.5 * level, theta.dtype))
        return theta - q * se, theta + q * se

    def profile_ci(self, which: str | int, level: float = 0.95, **kwargs) -> ProfileInterval:
        """Profile-likelihood interval for one parameter: :func:`profile_ci` on the model
        this summary was computed from."""
        log_lik, args = self._model
        return profile_ci(log_lik, self.params, *args, which=which, level=level, **kwargs)

    def _rows(self, level: float):
        theta, se, z, p = (np.asarray(a) for a in self._flat)
        lo, hi = (np.asarray(a) for a in self._conf_int_flat(level))
        return [(self.names[i], theta[i], se[i], z[i], p[i], lo[i], hi[i]) for i in range(self.k)]

    def table(self, level: float = 0.95) -> str:
        """The summary as a fixed-width text table (what ``print`` shows)."""
        a, b = 0.5 - level / 2, 0.5 + level / 2
        width = max(12, max(len(n) for n in self.names) + 1)
        head = (
            f"{'':<{width}}{'estimate':>11}{'std err':>11}{'z':>9}{'P>|z|':>9}"
            f"{f'[{a:.3g}':>11}{f'{b:.3g}]':>11}"
        )
        rule = "=" * len(head)
        lines = [
            f"nllax summary   covariance: {self.covariance} ({_DESCRIPTION[self.covariance]})",
            (
                f"nobs: {self.nobs}   k: {self.k}   log-likelihood: {self.loglik:.6g}   "
                f"AIC: {self.aic:.6g}   BIC: {self.bic:.6g}"
            ),
            rule,
            head,
            "-" * len(head),
        ]
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
            f"Summary(k={self.k}, nobs={self.nobs}, loglik={self.loglik:.6g}, "
            f"covariance={self.covariance!r})"
        )

    def _repr_html_(self) -> str:
        a, b = 0.025, 0.975
        cells = "".join(
            f"<th>{h}</th>" for h in ("", "estimate", "std err", "z", "P&gt;|z|", f"[{a}", f"{b}]")
        )
        rows = []
        for name, est, se, z, p, lo, hi in self._rows(0.95):
            vals = "".join(f"<td>{_fmt(v, 0).strip()}</td>" for v in (est, se))
            vals += f"<td>{z:.3f}</td><td>{p:.3f}</td>"
            vals += "".join(f"<td>{_fmt(v, 0).strip()}</td>" for v in (lo, hi))
            rows.append(f"<tr><th>{html.escape(name)}</th>{vals}</tr>")
        caption = (
            f"nllax summary: covariance {html.escape(self.covariance)}; nobs {self.nobs}, "
            f"k {self.k}, log-likelihood {self.loglik:.6g}, AIC {self.aic:.6g}, "
            f"BIC {self.bic:.6g}"
        )
        return (
            f"<table><caption>{caption}</caption><thead><tr>{cells}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def summary(
    log_lik: Callable[..., jax.Array],
    params_hat: Any,
    *args: Any,
    covariance: str = "observed",
    rtol: float | None = None,
    batch_size: int | None = None,
) -> Summary:
    r"""Standard errors, Wald tests and intervals, AIC and BIC at an estimate.

    See the module docstring for the formulas, the treatment of a singular Hessian and
    the cost (dense :math:`k\times k` Hessian by autodiff).

    Args:
      log_lik: ``log_lik(params, *args)`` returning the per-observation log-likelihoods,
        shape ``(n,)``; it must be differentiable twice in ``params``.
      params_hat: the estimate (any pytree of floating arrays), normally the MLE.
      *args: data and fixed quantities passed to ``log_lik`` (arrays are traced, other
        values are treated as static).
      covariance: ``"observed"`` (default), ``"opg"`` or ``"robust"`` (sandwich, HC0).
      rtol: relative eigenvalue threshold below which a direction counts as flat; default
        :math:`10\max(k,\sqrt n)\,\epsilon`.
      batch_size: how many of the ``k`` forward-mode directions of the Hessian and the
        scores are computed at once (``jax.lax.map``); lower it to bound the peak memory
        (about ``batch_size`` times the model's intermediates) for large ``k``. Default:
        all at once (fastest).

    Returns:
      A :class:`Summary`; ``print`` it for a table.

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
    if not callable(log_lik):
        raise TypeError(f"{fn}: `log_lik` must be callable, got {type(log_lik).__name__}.")
    _float_leaves(params_hat, fn)
    nobs = _check_log_lik(log_lik, params_hat, args, fn)
    theta0, unravel = ravel_pytree(params_hat)
    k = int(theta0.size)
    dtype = theta0.dtype
    rtol = _default_rtol(k, nobs, dtype) if rtol is None else float(rtol)
    if not rtol > 0:
        raise ValueError(f"{fn}: `rtol` must be > 0, got {rtol}.")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"{fn}: `batch_size` must be a positive int, got {batch_size!r}.")
        batch_size = int(min(batch_size, k))

    dyn, split = _split_args(args)
    out = _information(log_lik, params_hat, dyn, split, covariance, rtol, batch_size)

    theta = jnp.asarray(out["theta"])
    cov = jnp.asarray(out["cov"])
    se = jnp.sqrt(jnp.diagonal(cov))  # NaN on affected rows; >= 0 elsewhere
    z = theta / se
    p = 2.0 * ndtr(-jnp.abs(z))
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
        what = "information matrix (S'S)" if covariance == "opg" else "negative Hessian"
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
        covariance=covariance,
        newton_decrement=decrement,
        _flat=(theta, se, z, p),
        _unravel=unravel,
        _model=(log_lik, args),
    )


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
    stat = 2.0 * (lf - lr)
    slack = 2.0 * math.sqrt(float(np.finfo(dtype).eps)) * jnp.maximum(
        1.0, jnp.maximum(jnp.abs(lr), jnp.abs(lf))
    )
    concrete = not any(isinstance(x, jax.core.Tracer) for x in (lr, lf))
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
    bad = (stat < -slack) | ~jnp.isfinite(stat) | ~(dfa > 0)
    stat = jnp.where(bad, jnp.nan, jnp.maximum(stat, 0.0))
    pvalue = gammaincc(dfa / 2.0, stat / 2.0)
    return LRTest(stat, df, pvalue)


# --------------------------------------------------------------------------------------
# Profile likelihood.


def _profile_impl(free0, psi, params, dyn, *, log_lik, static, index, max_steps):
    treedef, static_leaves = static
    args = _merge_args(dyn, treedef, static_leaves)
    _, unravel = ravel_pytree(params)

    def total(free):
        theta = jnp.concatenate([free[:index], psi[None], free[index:]])
        return jnp.sum(log_lik(unravel(theta), *args))

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
    dyn, (key, treedef, static) = _split_args(args)
    st = (treedef, static)
    prof = _profile if key is not None else _profile_impl
    info = _information(log_lik, params_hat, dyn, (key, treedef, static), "observed",
                        _default_rtol(theta.size, nobs, dtype))
    se = float(jnp.sqrt(info["cov"][i, i]))
    if float(info["decrement"]) > 1e-2:
        warnings.warn(
            f"{fn}: `params_hat` is {float(info['decrement']):.3g} standard errors from the "
            f"maximum of the log-likelihood; the interval assumes it is the MLE.",
            InferenceWarning, stacklevel=2,
        )
    psi_hat = float(theta[i])
    step = se if np.isfinite(se) and se > 0 else 0.1 * max(1.0, abs(psi_hat))
    q = float(ndtri(jnp.asarray(0.5 + 0.5 * level, dtype))) ** 2  # chi2_1 quantile
    evaluations = 0

    def evaluate(free0, psi):
        nonlocal evaluations
        evaluations += 1
        free, fx, ok = prof(free0, jnp.asarray(psi, dtype), params_hat, dyn,
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
    z = float(ndtri(jnp.asarray(0.5 + 0.5 * level, dtype)))
    return ProfileInterval(
        name=names[i], index=i, estimate=psi_hat, level=level, lower=float(lower),
        upper=float(upper), lower_status=lo_status, upper_status=up_status,
        wald=(psi_hat - z * se, psi_hat + z * se), loglik_max=l_max,
        evaluations=evaluations,
    )
