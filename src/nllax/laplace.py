r"""Laplace likelihood: the likelihood whose NLL is the sum of absolute errors.

.. math::

    \log p(y \mid \mu, \beta) = -\frac{|y - \mu|}{\beta} - \log(2\beta)

With a scalar :math:`\beta` over :math:`n = \sum w` observations

.. math::

    \mathrm{NLL} = \frac{1}{\beta}\,\mathrm{SAE} + n\log(2\beta)
               = \frac{n}{\beta}\,\mathrm{MAE} + n\log(2\beta),

so minimising the MAE is maximum likelihood under Laplace noise, whose location MLE is
the (weighted) median. The objective is not differentiable where a residual is 0: the
gradient uses the subgradient 0 there (``sign(0) = 0``; so ``jax.grad`` is exactly 0 at
the median of an odd number of observations), and the Hessian in ``loc`` is 0 almost
everywhere.

The scale: exactly one of ``scale`` (:math:`\beta > 0`, default 1), ``log_scale``,
``var`` (:math:`\beta^2`) or ``log_var``, as in :mod:`nllax.gaussian`. Shapes and invalid
values as there. CDF: :math:`\tfrac12 e^{z}` for :math:`z = (y-\mu)/\beta < 0`,
:math:`1 - \tfrac12 e^{-z}` above; ``log_cdf``/``log_sf`` use ``log1p`` so both tails
keep their digits. Expected information per observation: :math:`1/\beta^2` for ``loc``
(the NLL's observed curvature in ``loc`` is 0).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M
from nllax.gaussian import NOISE

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_LOG2 = math.log(2.0)


def _log_prob(y, loc, scale):
    z, factor = scale.standardize(y - loc)
    return F.Affine(-factor, M.abs_(z), -(scale.log() + _LOG2))


def _log_cdf_z(z):
    # log(e^z / 2) below 0, log(1 - e^-z / 2) above; the untaken branch stays finite.
    neg = jnp.minimum(z, 0.0)
    pos = jnp.maximum(z, 0.0)
    return jnp.where(z < 0, neg - _LOG2, jnp.log1p(-0.5 * jnp.exp(-pos)))


def _log_cdf(y, loc, scale):
    return _log_cdf_z(scale.divide(y - loc))


def _log_sf(y, loc, scale):
    return _log_cdf_z(scale.divide(loc - y))


def _fisher(loc, scale):
    return {"loc": scale.inverse() ** 2}


family = F.Family(
    name="laplace",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location mu (the median)"), NOISE),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    smooth=False,
    summary="Laplace(loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Laplace log-density :math:`-|y-\mu|/\beta - \log 2\beta`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: location :math:`\mu`, broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`\beta > 0` (default 1); or exactly one of ``log_scale``, ``var``
        (:math:`\beta^2`), ``log_var``.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` is <= 0 or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.laplace.log_prob(1.0, 0.0, 1.0))  # -1 - log 2
      -1.6931471...
    """,
    "nll": r"""Laplace negative log-likelihood, reduced (``reduction``, ``weights``, ``where`` as
    in :func:`nllax.gaussian.nll`).

    :math:`\mathrm{NLL} = \sum_i w_i \left[|y_i-\mu_i|/\beta_i + \log 2\beta_i\right]`.
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
