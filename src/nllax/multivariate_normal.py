r"""Multivariate normal likelihood, event axis last.

.. math::

    \log p(y \mid \mu, L) = -\tfrac12\,\lVert z\rVert^2 - \sum_{i=1}^{d}\log L_{ii}
        - \tfrac d2\log 2\pi, \qquad L z = y - \mu,

for :math:`y, \mu \in \mathbb{R}^d` and the covariance :math:`\Sigma = L L^\top` given
either by its lower Cholesky factor ``scale_tril`` :math:`= L` or by ``cov``
:math:`= \Sigma` (exactly one). :math:`\tfrac12\log\det\Sigma = \sum_i \log L_{ii}`, from
the factor's diagonal; :math:`z` comes from one triangular solve
(``jax.scipy.linalg.solve_triangular``), never from an inverse.

Shapes: ``y`` is ``(..., d)`` (the batch shape ``...`` is the observations'); ``loc`` is
``(..., d)`` with a batch shape that broadcasts to ``y``'s without enlarging it (a single
``(d,)`` mean is fine); ``scale_tril`` / ``cov`` are ``(..., d, d)`` likewise (one
``(d, d)`` matrix shared by all observations is solved for all of them at once).

Constraints and conventions:

* ``scale_tril``: only its lower triangle is read (the upper triangle is ignored, in the
  value and in the gradient, which is 0 there); its diagonal must be > 0 and its lower
  triangle finite. A diagonal entry <= 0 or NaN, or a NaN/inf below it, gives NaN (value
  and gradient, for that observation) and ``nllax.checked`` names ``scale_tril``.
  To learn :math:`L` unconstrained, pass ``jnp.tril(A, -1) + jnp.diag(jnp.exp(a))``.
* ``cov``: symmetrised as :math:`(\Sigma + \Sigma^\top)/2` (by ``jnp.linalg.cholesky``)
  and factored; it must be positive definite (finite, with a Cholesky factor of positive
  diagonal), otherwise NaN and a checked error naming ``cov``.
* ``y``: a row with a NaN gives NaN for that observation.

Accuracy in float32 (measured in ``tests/test_natural_mvn_mixture.py``): the triangular
solve is backward stable, :math:`(L + \Delta L)\hat z = r` with
:math:`|\Delta L| \le d\,\epsilon\,|L|`, so the error of :math:`\tfrac12\lVert z\rVert^2`
is at most about :math:`d\,\epsilon\,|z|^\top |L^{-1}|\,|L|\,|z|`: it grows with the
conditioning of :math:`L` (:math:`\lVert |L^{-1}||L| \rVert \le \kappa(L)`), not with
that of :math:`\Sigma` (:math:`\kappa(L)^2`), which is why ``scale_tril`` is the
parametrisation to prefer; ``cov`` adds the Cholesky's own error, of the order of
:math:`\epsilon\,\kappa(\Sigma)` relative in :math:`\Sigma^{-1}`.

No ``log_cdf`` / ``log_sf``: the family is multivariate.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from nllax import _family as F

__all__ = ["log_prob", "nll"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _xp(x):
    return np if isinstance(x, (np.ndarray, np.generic, float, int)) else jnp


def _gram(scale_tril):
    """``tril(L) @ tril(L).T`` (NumPy in, NumPy out; JAX otherwise)."""
    xp = _xp(scale_tril)
    low = xp.tril(xp.asarray(scale_tril))
    return low @ xp.swapaxes(low, -1, -2)


def _cholesky(cov):
    xp = _xp(cov)
    c = xp.asarray(cov)
    return xp.linalg.cholesky(0.5 * (c + xp.swapaxes(c, -1, -2)))


@jax.custom_jvp
def _touch(m):
    """0 for each matrix, without reading it; its derivative is ``0 * sum(dm)``."""
    return jnp.zeros(m.shape[:-2], m.dtype)


@_touch.defjvp
def _touch_jvp(primals, tangents):
    # Added to the log-density so that the upper triangle, which the value never reads,
    # still receives 0 * (the observation's cotangent): 0 for a valid observation and NaN
    # for an invalid one (the pipeline's rule: an invalid row has a NaN gradient in every
    # entry; the triangular solve's own derivative zeroes the upper triangle by a select).
    (m,), (dm,) = primals, tangents
    return _touch(m), 0.0 * jnp.sum(dm, axis=(-2, -1))


def _diag(m):
    return jnp.diagonal(m, axis1=-2, axis2=-1)


def _tril_ok(m):
    d = _diag(m)
    return jnp.all(d > 0, axis=-1) & jnp.all(jnp.isfinite(jnp.tril(m)), axis=(-2, -1))


def _cov_ok(c):
    return _tril_ok(jnp.linalg.cholesky(c))


def _eye(event_shape):
    return np.eye(event_shape[-1])


SCALE_TRIL = F.Constraint(
    "scale_tril", "must have a positive diagonal and a finite lower triangle (a diagonal "
    "entry <= 0 or NaN, or NaN/inf below it)", _tril_ok, safe=_eye, event_ndim=2)
# Check-only: a matrix that is not positive definite already gives a NaN factor, hence a
# NaN value and gradient for its observation; applying the rule as well would factor every
# covariance twice (XLA does not merge the two Cholesky decompositions, measured in the
# compiled program), so it is evaluated under `nllax.checked` only.
COV = F.Constraint(
    "cov", "must be symmetric positive definite (its Cholesky factor failed: not positive "
    "definite, or NaN/inf)", _cov_ok, safe=_eye, propagates=True, event_ndim=2)
# Applied, not only checked: a NaN in y reaches every entry of the gradient but the upper
# triangle of `scale_tril` (0 by the triangular solve's derivative), which the pipeline's
# poisoning of the observation then makes NaN too (see `_touch`).
ROWS = F.Constraint("real_rows", "must not be NaN (NaN in the data)",
                    lambda y: ~jnp.any(jnp.isnan(y), axis=-1), event_ndim=1)


def _prepare(y, params, options, fn, raw):
    if y.ndim == 0:
        raise ValueError(f"{fn}: `y` must have the event axis (size d) last, got a scalar.")
    d = y.shape[-1]
    loc = params["loc"]
    if loc.ndim and loc.shape[-1] != d:
        raise ValueError(f"{fn}: `loc` has {loc.shape[-1]} entries on its last (event) axis, "
                         f"`y` has {d}.")
    name = "scale_tril" if "scale_tril" in params else "cov"
    m = params[name]
    if m.ndim >= 2 and m.shape[-2:] != (d, d):
        raise ValueError(f"{fn}: `{name}` must end in ({d}, {d}) (the event size of `y`), "
                         f"got shape {tuple(m.shape)}.")
    return y, params, {}


def _log_prob(y, loc, scale_tril=None, cov=None):
    low = jnp.linalg.cholesky(cov) if scale_tril is None else jnp.tril(scale_tril)
    r = y - loc
    d = y.shape[-1]
    half_logdet = jnp.sum(jnp.log(_diag(low)), axis=-1)
    if low.ndim == 2:
        # one matrix for every observation: one solve with n right-hand sides
        z = solve_triangular(low, r.reshape(-1, d).T, lower=True).T.reshape(r.shape)
        add = -(half_logdet + d * _HALF_LOG_2PI)
        if scale_tril is not None:
            add = add + _touch(scale_tril)
        return F.Affine(-0.5, jnp.sum(jnp.square(z), axis=-1), add)
    batch = jnp.broadcast_shapes(low.shape[:-2], r.shape[:-1])
    low = jnp.broadcast_to(low, batch + (d, d))
    r = jnp.broadcast_to(r, batch + (d,))
    z = solve_triangular(low, r[..., None], lower=True)[..., 0]
    out = -0.5 * jnp.sum(jnp.square(z), axis=-1) - half_logdet - d * _HALF_LOG_2PI
    return out if scale_tril is None else out + _touch(scale_tril)


family = F.Family(
    name="multivariate_normal",
    data=F.Data("y", ROWS, event_ndim=1, doc="observations, event axis last (size d)"),
    params=(
        F.Param("loc", event_ndim=1, doc="mean, (..., d)"),
        F.OneOf("scale_tril", (
            F.Param("scale_tril", SCALE_TRIL, keyword_only=True, event_ndim=2,
                    doc="lower Cholesky factor L of the covariance, (..., d, d)"),
            F.Param("cov", COV, keyword_only=True, event_ndim=2,
                    to_canonical=_cholesky, from_canonical=_gram,
                    doc="covariance L L^T, (..., d, d)"),
        )),
    ),
    log_prob=_log_prob,
    prepare=_prepare,
    summary="MultivariateNormal(loc, scale_tril)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation multivariate normal log-density.

    Args:
      y: observations, ``(..., d)`` (event axis last).
      loc: mean, ``(..., d)``, its batch shape broadcastable to ``y``'s.
      scale_tril: lower Cholesky factor :math:`L` of the covariance, ``(..., d, d)``
        (upper triangle ignored; diagonal > 0). Or
      cov: the covariance :math:`L L^\top`, ``(..., d, d)``, positive definite. Exactly
        one of the two.

    Returns:
      Array of ``y.shape[:-1]``; NaN for an observation whose ``scale_tril`` has a
      diagonal entry <= 0 (or NaN), or whose ``cov`` is not positive definite.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.multivariate_normal.log_prob(jnp.zeros(2), jnp.zeros(2),
      ...                                          scale_tril=jnp.eye(2)))  # -log(2 pi)
      -1.8378770...
      >>> float(nllax.multivariate_normal.log_prob(jnp.array([1.0, 0.0]), jnp.zeros(2),
      ...     cov=jnp.array([[4.0, 0.0], [0.0, 1.0]])))  # -1/8 - log 2 - log(2 pi)
      -2.6560242...
    """,
    "nll": r"""Multivariate normal negative log-likelihood, reduced over observations
    (``reduction``, ``weights``, ``where`` as in :func:`nllax.gaussian.nll`, with the
    batch shape ``y.shape[:-1]``).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([[0.5, -1.0], [2.0, 0.0]])
      >>> round(float(nllax.multivariate_normal.nll(y, jnp.zeros(2), scale_tril=jnp.eye(2))), 6)
      6.300754
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)
