r"""A likelihood with its structure visible: a family's NLL of a predictor.

``nllax.Likelihood(family, predictor)`` is the model
:math:`y_i \sim \mathrm{family}(u_i(\theta, x_i))`: ``family`` is a family module
(``nllax.poisson``, ``nllax.gaussian``, ...) and ``predictor(params, *covariates)``
returns the family's keyword arguments (``{"log_rate": X @ beta + offset}``), each an
array broadcastable to the observations' shape. Data come first in every call, as
everywhere in nllax: ``lik.nll(params, y, *covariates)``.

Because the structure is visible, :func:`nllax.fit` can use Gauss–Newton / Fisher
scoring (:class:`nllax.solvers.GaussNewton`): with
:math:`\ell_i(u_i) = -\log p(y_i \mid u_i)` and :math:`J = \partial u/\partial\theta`,

.. math::

    \nabla_\theta \mathrm{NLL} = J^\top \nabla_u \ell, \qquad
    B = J^\top W J, \quad W_i = \nabla_u^2 \ell_i(u_i)\ (k\times k \text{ per observation}),

and :math:`\nabla^2_\theta \mathrm{NLL} = B + \sum_i \nabla_u\ell_i \cdot
\nabla^2_\theta u_i`, so :math:`B` is the exact Hessian when the predictor is affine in
:math:`\theta` (a GLM with any link written as the family's natural keyword, e.g.
``log_rate``, ``logits``, ``loc``), and the Gauss–Newton matrix otherwise. With the
*expected* curvature :math:`\mathbb{E}[W_i]` (the family's Fisher information, where the
family exposes it) :math:`B` is the expected information and the iteration is Fisher
scoring.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jex_core
from jax.flatten_util import ravel_pytree

from nllax import _eager_calls

__all__ = ["Likelihood", "likelihood_of"]

KINDS = ("observed", "expected")


def _expected_curvature(family: Any, u: dict[str, jax.Array]) -> dict[str, jax.Array] | None:
    """Per-observation expected information of the family's NLL for its one predicted
    parameter, or None where the family does not give it (then callers use the observed
    curvature). The single place that knows how a family exposes it:
    ``family.family.fisher_information(**kwargs)`` or ``family.family.fisher(**kwargs)``,
    ``-> {name: information}`` with the keyword names of the family's public functions. A
    hook that does not accept those keywords (or returns nothing for the name) counts as
    absent."""
    decl = getattr(family, "family", None)
    fisher = getattr(decl, "fisher_information", None) or getattr(decl, "fisher", None)
    if fisher is None or len(u) != 1:
        return None
    try:
        info = fisher(**u)
    except (TypeError, ValueError, AttributeError):
        return None
    (name,) = u
    if not isinstance(info, dict) or name not in info:
        return None
    return {name: jnp.asarray(info[name])}


def _derivatives(vg, u, names, info=None):
    """``(NLL, gradient in u, W)`` from ``vg = value_and_grad`` of the summed NLL terms at
    the predicted parameters ``u``: ``W = {a: {b: d2/du_a du_b}}`` per observation, the
    expected information ``info`` of the one predicted parameter where given, else the
    observed curvature by one JVP of ``vg`` per predicted parameter (value, gradient and
    W's columns from one trace of the NLL)."""
    if info is not None:
        f, grad_u = vg(u)
        (name,) = names
        return f, grad_u, {name: {name: info}}
    w = {}
    for b in names:
        ones = {k: (jnp.ones_like(v) if k == b else jnp.zeros_like(v)) for k, v in u.items()}
        (f, grad_u), (_, col) = jax.jvp(vg, (u,), (ones,))
        for a in names:
            w.setdefault(a, {})[b] = col[a]
    return f, grad_u, w


def _weighted_information(info, shape, dtype, weights=None, where=None):
    """Per-observation expected information broadcast to ``shape``, times the weights,
    and exactly 0 where ``where`` is False (also for a non-finite value there)."""
    info = jnp.broadcast_to(info, shape).astype(dtype)
    if weights is not None:
        info = info * jnp.broadcast_to(jnp.asarray(weights, dtype), shape)
    if where is not None:
        info = jnp.where(jnp.broadcast_to(where, shape), info, 0.0)
    return info


def _is_affine(fn: Callable, x: jax.Array, rest: tuple) -> bool:
    """Whether ``fn(x, *rest)`` is affine in ``x``: its JVP's tangent output does not
    depend on ``x`` (a liveness walk over the jaxpr; an equation counts as using all of
    its inputs when any output is used, so the answer errs towards "not affine")."""
    spec = lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a))  # noqa: E731
    rest_spec = jax.tree_util.tree_map(spec, rest)

    def tangent(x, t, rest):
        return jax.jvp(lambda x: fn(x, *rest), (x,), (t,))[1]

    try:
        closed = jax.make_jaxpr(tangent)(spec(x), spec(x), rest_spec)
    except Exception:  # noqa: BLE001 - anything unusual: treat as not affine
        return False
    jaxpr = closed.jaxpr
    live = {v for v in jaxpr.outvars if isinstance(v, jex_core.Var)}
    for eqn in reversed(jaxpr.eqns):
        if any(v in live for v in eqn.outvars) or eqn.effects:
            live.update(v for v in eqn.invars if isinstance(v, jex_core.Var))
    return jaxpr.invars[0] not in live


# -- the Jacobian of an affine predictor, without multiplying by the identity
#
# jax.jacfwd of ``X @ beta`` pushes the d basis vectors through the predictor: an
# (n, d) x (d, d) product with the identity, as costly as one X'WX. The linearised
# predictor is walked here instead: the tangent is an index map (a value that is
# ``t[idx]`` for a constant integer array ``idx``) through the structural primitives
# (slices, reshapes, broadcasts), ``dot_general(C, t[idx])`` contracted over ``idx``
# gives C's columns placed at ``idx`` (for ``X @ beta``: X itself), and anything else is
# evaluated on the one-hot basis, batched over the last axis (what jacfwd does).

_STRUCTURAL = {"split", "slice", "reshape", "squeeze", "expand_dims", "broadcast_in_dim",
               "transpose", "copy", "copy_p", "rev"}


def _onehot(idx, d, dtype):
    return jnp.asarray(np.asarray(idx)[..., None] == np.arange(d), dtype)


def _linear_jacobian(lin, x):
    """``[J or None]`` for the flat outputs of the linear map ``lin(t)`` (t like ``x``,
    1-d): ``(*out.shape, d)`` each, None where the output does not depend on ``t``."""
    d, dtype = x.size, x.dtype
    closed = jax.make_jaxpr(lin)(x)
    jaxpr = closed.jaxpr
    env = {}

    def read(v):
        if isinstance(v, jex_core.Literal):
            return ("c", v.val)
        return env[v]

    for v, c in zip(jaxpr.constvars, closed.consts):
        env[v] = ("c", c)
    (t,) = jaxpr.invars
    env[t] = ("idx", np.arange(d))

    def as_jac(kind, val):
        return _onehot(val, d, dtype) if kind == "idx" else val

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        kinds = [k for k, _ in ins]
        prim, params = eqn.primitive, eqn.params
        outs = None
        if all(k == "c" for k in kinds):
            res = prim.bind(*[v for _, v in ins], **params)
            outs = [("c", r) for r in (res if prim.multiple_results else [res])]
        elif kinds == ["idx"] and prim.name in _STRUCTURAL:
            try:
                with jax.ensure_compile_time_eval():
                    res = prim.bind(jnp.asarray(ins[0][1], jnp.int32), **params)
                res = res if prim.multiple_results else [res]
                outs = [("idx", np.asarray(r)) for r in res]
            except Exception:  # noqa: BLE001 - evaluate it on the basis instead
                outs = None
        elif (prim.name == "dot_general" and sorted(kinds) == ["c", "idx"]
              and not params["dimension_numbers"][1][0]):
            (lc, rc), _ = params["dimension_numbers"]
            ic = 0 if kinds[0] == "idx" else 1
            idx, c = ins[ic][1], ins[1 - ic][1]
            cc = (lc, rc)[1 - ic]
            if np.ndim(idx) == 1 and len(cc) == 1 and (lc, rc)[ic] == (0,):
                cols = jnp.moveaxis(jnp.asarray(c), cc[0], -1).astype(dtype)
                if np.array_equal(idx, np.arange(d)):
                    jac = cols
                else:  # columns added at their parameters' places
                    jac = cols @ _onehot(idx, d, dtype)
                outs = [("jac", jac)]
        if outs is None:  # on the basis: batched over the last axis
            axes = [None if k == "c" else -1 for k in kinds]
            vals = [v if k == "c" else as_jac(k, v) for k, v in ins]

            def apply(*a, prim=prim, params=params):
                return prim.bind(*a, **params)

            res = jax.vmap(apply, in_axes=axes, out_axes=-1)(*vals)
            outs = [("jac", r) for r in (res if prim.multiple_results else [res])]
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    result = []
    for v in jaxpr.outvars:
        kind, val = read(v)
        result.append(None if kind == "c" else as_jac(kind, val))
    return result


def _affine_jacobian(flat, x):
    """``{name: (m, d) or None}`` for the affine ``flat(x) -> {name: (m,)}``."""
    out, lin = jax.linearize(flat, x)
    tree = jax.tree_util.tree_structure(out)
    jacs = _linear_jacobian(lambda t: jax.tree_util.tree_leaves(lin(t)), x)
    return jax.tree_util.tree_unflatten(tree, jacs), out


def _chunk_rows(m: int, d: int) -> int:
    """Rows per block of the one-pass evaluation. One block while the (m, d+1) products
    fit in a last-level cache (8 MiB of float64; one product over all rows is then the
    fastest); else blocks of about 2^16 float64 (512 KiB), which stay in cache between
    the block's uses (measured on the shared 2-core CPU at load 9-15: logistic
    n = 1e5, d = 20: 22-36 ms per evaluation in blocks against 45-54 ms in one
    product; logistic n = 1e6, d = 10: 130-235 ms against 290-420 ms)."""
    if m * (d + 1) <= 2**20:
        return m
    rows = 2 ** int(round(math.log2(2.0**16 / (d + 1))))
    return min(max(rows, 1024), 8192)


def _eager(method):
    """Called outside any transformation, the method runs as one compiled program
    (:func:`nllax._eager_calls.run`: cached per Likelihood, method, pytree structure of
    its arguments and their non-array leaves, such as ``kind``, ``None``s, an ``unravel``
    function by identity; the arrays are the program's arguments). Op by op, each call
    would dispatch (and on first use compile) every primitive of the NLL and its
    derivatives: ~70 programs a call. Under a transformation the method runs as written."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not _eager_calls.top_level():
            return method(self, *args, **kwargs)
        return _eager_calls.run(_call_method, (self,), method.__name__, args, kwargs)

    return wrapper


def _call_method(lik, name: str, args: tuple, kwargs: dict):
    return getattr(type(lik), name).__wrapped__(lik, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class Likelihood:
    r"""A family's likelihood of a predictor: :math:`y_i \sim
    \mathrm{family}(\mathrm{predictor}(\theta, x_i))`.

    Args:
      family: a family module with ``log_prob`` and ``nll`` (``nllax.poisson``, ...).
      predictor: ``predictor(params, *covariates) -> dict`` of the family's keyword
        arguments (its model parameters: ``loc``/``scale``/``log_scale``, ``logits``,
        ``log_rate``, ...), each broadcastable to the observations' shape.

    ``lik.nll`` is a plain scalar objective (for every solver, for :mod:`nllax.verify`);
    :func:`nllax.fit` recognises ``fit(lik, ...)`` and ``fit(lik.nll, ...)`` and then
    uses :class:`nllax.solvers.GaussNewton` by default. Two ``Likelihood`` objects with
    the same family and the same predictor object are equal and share compiled fits.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> lik = nllax.Likelihood(nllax.poisson, lambda b, x: {"log_rate": b[0] + b[1] * x})
      >>> y, x = jnp.array([1.0, 0.0, 3.0, 5.0]), jnp.array([0.0, 1.0, 2.0, 3.0])
      >>> r = nllax.fit(lik, jnp.zeros(2), y, x)
      >>> bool(r.converged), [round(float(v), 4) for v in r.params]
      (True, [-0.696, 0.7736])
    """

    family: ModuleType | Any
    predictor: Callable[..., dict[str, jax.Array]]

    def __post_init__(self):
        for name in ("log_prob", "nll"):
            if not callable(getattr(self.family, name, None)):
                raise TypeError(
                    f"nllax.Likelihood: `family` must be a family module with log_prob and "
                    f"nll (e.g. nllax.poisson), got {self.family!r}"
                )
        if not callable(self.predictor):
            raise TypeError("nllax.Likelihood: `predictor` must be callable")

    # -- the three public calls
    def predict(self, params: Any, *covariates: Any) -> dict[str, jax.Array]:
        """The family's keyword arguments at ``params`` (the predictor's output)."""
        u = self.predictor(params, *covariates)
        if not isinstance(u, dict) or not u:
            raise TypeError(
                "nllax.Likelihood: `predictor` must return a non-empty dict of the family's "
                f"keyword arguments, got {type(u).__name__}"
            )
        return u

    def nll(self, params: Any, y: Any, *covariates: Any, weights=None, where=None) -> jax.Array:
        """The NLL, summed over observations: ``family.nll(y, **predictor(params,
        *covariates), weights=weights, where=where)``."""
        return self.family.nll(y, **self.predict(params, *covariates), weights=weights,
                               where=where)

    def log_lik(self, params: Any, y: Any, *covariates: Any) -> jax.Array:
        """Per-observation log-likelihoods ``family.log_prob(y, **predictor(...))`` (for
        :func:`nllax.summary`)."""
        return self.family.log_prob(y, **self.predict(params, *covariates))

    @_eager
    def information(self, params: Any, y: Any, *covariates: Any, kind: str = "observed",
                    weights=None, where=None) -> jax.Array:
        r"""The :math:`d\times d` information summed over observations, with :math:`d`
        the number of entries of ``params`` (raveled with ``jax.flatten_util.ravel_pytree``).

        ``kind="observed"``: the Hessian of the NLL (exact; :math:`J^\top W J` in one
        pass when the predictor is affine, ``jax.hessian`` otherwise).
        ``kind="expected"``: :math:`J^\top\,\mathbb{E}[W]\,J`, the Fisher information;
        it needs the family's expected information (``family.family.fisher``) for a
        single predicted parameter, and raises ``ValueError`` otherwise.
        """
        if kind not in KINDS:
            raise ValueError(f"nllax.Likelihood.information: kind must be one of {KINDS}, got {kind!r}")
        x, unravel = ravel_pytree(params)
        args = (y, *covariates)
        rw = {"weights": weights, "where": where}
        if kind == "expected":
            u = self._predict_flat(x, unravel, covariates, self._obs_shape(x, unravel, args))
            if u is None or _expected_curvature(self.family, u) is None:
                raise ValueError(
                    "nllax.Likelihood.information(kind='expected') needs the family's "
                    "expected information (family.family.fisher) and one predicted "
                    f"parameter; {getattr(self.family, '__name__', self.family)!r} with "
                    f"{sorted(self.predict(params, *covariates))} has none"
                )
            return self.gn_matrix(x, unravel, args, kind="expected", **rw)
        jac = self.constant_jacobian(x, unravel, args)
        if jac is None:  # not affine (or not elementwise): the exact Hessian
            return jax.hessian(lambda x: self.nll(unravel(x), *args, **rw))(x)
        return self.gn_matrix(x, unravel, args, jac=jac, **rw)

    # -- the structure, for GaussNewton (flat parameters x, args = (y, *covariates))
    def _obs_shape(self, x, unravel, args):
        y, *covariates = args
        out = jax.eval_shape(lambda x: self.family.log_prob(y, **self.predict(unravel(x), *covariates)), x)
        return out.shape

    def _predict_flat(self, x, unravel, covariates, shape):
        """Predicted parameters broadcast to the observations' shape and raveled to
        ``(m,)``; None when one of them has more dimensions (an event axis: the NLL is
        then not elementwise in it, e.g. categorical logits)."""
        u = self.predict(unravel(x), *covariates)
        out = {}
        for k, v in u.items():
            v = jnp.asarray(v)
            if jnp.ndim(v) > len(shape):
                return None
            try:
                out[k] = jnp.broadcast_to(v, shape).reshape(-1)
            except ValueError:
                return None
        return out

    def _elementwise(self, x, unravel, args, shape=None) -> bool:
        shape = self._obs_shape(x, unravel, args) if shape is None else shape
        return jax.eval_shape(lambda x: self._predict_flat(x, unravel, args[1:], shape), x) is not None

    def constant_jacobian(self, x, unravel, args):
        """``{name: (m, d)}``: the predictor's Jacobian when it is affine in the parameters
        (then it is computed once per fit), else None."""
        affine = self._affine(x, unravel, args)
        if affine is None:
            return None
        _, jac, u = affine
        return {k: (jnp.zeros(u[k].shape + x.shape, x.dtype) if j is None else j)
                for k, j in jac.items()}

    def _affine(self, x, unravel, args):
        """``(observation shape, Jacobian blocks, predicted parameters at x)`` when the NLL
        is elementwise in the predicted parameters and the predictor is affine in the
        parameters (a block is None for a parameter that does not depend on them), else
        None."""
        y, *covariates = args
        shape = self._obs_shape(x, unravel, args)
        if not self._elementwise(x, unravel, args, shape):
            return None
        flat = lambda x, *cov: self._predict_flat(x, unravel, cov, shape)  # noqa: E731
        if not _is_affine(flat, x, tuple(covariates)):
            return None
        jac, u = _affine_jacobian(lambda x: flat(x, *covariates), x)
        return shape, jac, u

    @_eager
    def affine_plan(self, x, unravel, args, *, weights=None, where=None):
        """The loop invariants of the one-pass evaluation (:meth:`value_grad_curvature`
        with ``plan=``) when the predictor is affine in the parameters and the NLL is
        elementwise in the predicted parameters, else None: the predicted parameters
        ``u0`` at ``x0 = x`` and the Jacobian blocks of those that depend on the
        parameters (then ``u = u0 + J (x - x0)`` exactly), with the observations, weights
        and mask, raveled and cut into blocks of rows (the last one padded with copies
        of the last observation, masked out)."""
        affine = self._affine(x, unravel, args)
        if affine is None:
            return None
        shape, jac, u0 = affine
        y = args[0]
        if all(j is None for j in jac.values()):
            return None
        try:
            data = {"y": jnp.broadcast_to(jnp.asarray(y), shape).reshape(-1)}
            if weights is not None:
                data["weights"] = jnp.broadcast_to(jnp.asarray(weights), shape).reshape(-1)
            if where is not None:
                data["where"] = jnp.broadcast_to(jnp.asarray(where), shape).reshape(-1)
        except ValueError:  # y has an event axis: not one value per observation
            return None
        m, d = math.prod(shape), x.size
        rows = _chunk_rows(m, d)
        blocks = -(-m // rows)
        pad = blocks * rows - m

        def cut(a):
            if pad:
                a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1), mode="edge")
            return a.reshape(blocks, rows, *a.shape[1:])

        return {
            "x0": x,
            "u0": {k: cut(v) for k, v in u0.items()},
            "jac": {k: cut(j) for k, j in jac.items() if j is not None},
            "data": {k: cut(v) for k, v in data.items()},
            "mask": (jnp.arange(blocks * rows) < m).reshape(blocks, rows) if pad else None,
        }

    def _value_grad_curvature_plan(self, x, plan, kind):
        """The one-pass evaluation: per block of rows, ``u = u0 + J (x - x0)``, the
        NLL terms, their derivatives in u, and ``J'[WJ, g]``, accumulated."""
        dx = x - plan["x0"]
        names = list(plan["jac"])
        d = x.size

        def block(blk):
            u0, jac, data, mask = blk
            const = {k: v for k, v in u0.items() if k not in jac}
            y = data["y"]
            rw = {k: v for k, v in data.items() if k != "y"}

            def total(u):
                terms = self.family.nll(y, **u, **const, reduction="none", **rw)
                if mask is not None:
                    terms = jnp.where(mask, terms, 0.0)
                return jnp.sum(terms)

            u = {k: u0[k] + jac[k] @ dx for k in names}
            e = _expected_curvature(self.family, {**u, **const}) if kind == "expected" else None
            info = None
            if e is not None and names == list(e):
                info = _weighted_information(e[names[0]], y.shape, x.dtype,
                                             rw.get("weights"), rw.get("where"))
                if mask is not None:
                    info = jnp.where(mask, info, 0.0)
            f, grad_u, w = _derivatives(jax.value_and_grad(total), u, names, info)
            # J'[WJ, g]: one (d, d+1) product per predicted parameter, on a block that
            # is still in cache
            gh = sum(
                jac[a].T @ jnp.concatenate(
                    [sum(w[a][b][:, None] * jac[b] for b in names), grad_u[a][:, None]],
                    axis=1)
                for a in names
            )
            return f.astype(x.dtype), gh

        blocks = (plan["u0"], plan["jac"], plan["data"], plan["mask"])
        nblocks = plan["data"]["y"].shape[0]
        if nblocks == 1:
            f, gh = block(jax.tree_util.tree_map(lambda a: a[0], blocks))
        else:
            def body(carry, blk):
                f, gh = block(blk)
                return (carry[0] + f, carry[1] + gh), None

            zero = (jnp.zeros((), x.dtype), jnp.zeros((d, d + 1), x.dtype))
            (f, gh), _ = lax.scan(body, zero, blocks)
        return f, gh[:, -1], gh[:, :-1]

    def gn_matrix(self, x, unravel, args, *, jac=None, kind="observed", weights=None,
                  where=None):
        r""":math:`J^\top W J` at the flat parameters ``x`` (``args = (y, *covariates)``);
        the exact Hessian when the NLL is not elementwise in the predicted parameters."""
        return self.value_grad_curvature(x, unravel, args, jac=jac, kind=kind,
                                         weights=weights, where=where)[2]

    @_eager
    def value_grad_curvature(self, x, unravel, args, *, jac=None, kind="observed",
                             weights=None, where=None, plan=None):
        r"""``(NLL, gradient, J'WJ)`` at the flat parameters ``x`` in one pass over the
        observations: :math:`u` once, the per-observation derivatives of the NLL terms
        with respect to :math:`u` (autodiff, elementwise), then
        :math:`g = J^\top\nabla_u\ell` and :math:`J^\top W J` as products over the
        stacked observations. Falls back to ``value_and_grad`` and ``jax.hessian`` when
        the NLL is not elementwise in the predicted parameters.

        With ``plan`` (from :meth:`affine_plan` at these ``args``, ``weights`` and
        ``where``, which are then not read again) the predictor is not called: ``u = u0
        + J (x - x0)`` per block of rows, one pass over the Jacobian for everything."""
        if plan is not None:
            return self._value_grad_curvature_plan(x, plan, kind)
        y, *covariates = args
        shape = self._obs_shape(x, unravel, args)
        rw = {"weights": weights, "where": where}
        if not self._elementwise(x, unravel, args, shape):
            total = lambda x: self.nll(unravel(x), *args, **rw)  # noqa: E731
            f, g = jax.value_and_grad(total)(x)
            return f, g, jax.hessian(total)(x)
        flat = lambda x: self._predict_flat(x, unravel, covariates, shape)  # noqa: E731
        u = flat(x)
        names = list(u)

        def total(u):  # the NLL from the weighted, masked per-observation terms
            uu = {k: v.reshape(shape) for k, v in u.items()}
            return jnp.sum(self.family.nll(y, **uu, reduction="none", **rw))

        e = None
        if kind == "expected":
            e = _expected_curvature(self.family, {k: v.reshape(shape) for k, v in u.items()})
        info = None
        if e is not None:
            info = _weighted_information(e[names[0]], shape, x.dtype, weights,
                                         where).reshape(-1)
        f, grad_u, w = _derivatives(jax.value_and_grad(total), u, names, info)
        if jac is None:
            jac = jax.jacfwd(flat)(x)
        # g = sum_a J_a' grad_a and B = sum_ab J_a' diag(W_ab) J_b, each one product over
        # the stacked observations (for a linear predictor: X'r and X'WX)
        # (for a linear predictor X'[WX, r]: one product, one pass over X for both)
        j = jnp.concatenate([jac[a] for a in names], axis=0)  # (k m, d)
        gu = jnp.concatenate([grad_u[a] for a in names])
        wj = jnp.concatenate(
            [sum(w[a][b][:, None] * jac[b] for b in names) for a in names], axis=0
        )
        gh = j.T @ jnp.concatenate([wj, gu[:, None]], axis=1)
        return f, gh[:, -1], gh[:, :-1]


def likelihood_of(objective: Any) -> Likelihood | None:
    """The :class:`Likelihood` behind ``objective`` (the object itself or its bound
    ``nll``), else None."""
    if isinstance(objective, Likelihood):
        return objective
    owner = getattr(objective, "__self__", None)
    if isinstance(owner, Likelihood) and getattr(objective, "__func__", None) is Likelihood.nll:
        return owner
    return None
