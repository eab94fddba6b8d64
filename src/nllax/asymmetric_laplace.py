r"""Asymmetric Laplace likelihood: the likelihood whose NLL is the pinball (quantile) loss.

.. math::

    \log p(y \mid \mu, s, \tau) = \log\tau + \log(1 - \tau) - \log s
        - \rho_\tau\!\left(\frac{y - \mu}{s}\right),
    \qquad \rho_\tau(u) = u\,(\tau - \mathbb{1}[u < 0]),

so the density falls at rate :math:`\tau/s` above :math:`\mu` and :math:`(1-\tau)/s`
below, and :math:`P(Y < \mu) = \tau`: ``loc`` is the :math:`\tau`-quantile. With one
scale and quantile over :math:`n = \sum w` observations (:math:`\rho_\tau` is positively
homogeneous)

.. math::

    \mathrm{NLL} = \frac{1}{s}\,\mathrm{pinball}_\tau(y, \mu)
        + n\log\frac{s}{\tau(1 - \tau)}

(:data:`nllax.equivalences` ``["pinball"]``): quantile regression is maximum likelihood
under asymmetric Laplace noise. ``quantile=0.5`` is the Laplace density of scale
:math:`2s`. In ``scipy.stats.laplace_asymmetric`` terms:
:math:`\kappa = \sqrt{\tau/(1-\tau)}` and scipy's scale :math:`s/\sqrt{\tau(1-\tau)}`.

Parameters: ``loc``; exactly one of ``scale`` (:math:`s > 0`, default 1), ``log_scale``,
``var`` (:math:`s^2`) or ``log_var``, as in :mod:`nllax.gaussian`; ``quantile``
(:math:`0 < \tau < 1`, keyword-only, default 0.5). A quantile outside (0, 1) or NaN gives
NaN (value and gradient) and a ``nllax.checked`` error naming ``quantile``.

Numerics: :math:`\log\tau + \mathrm{log1p}(-\tau)`, and :math:`\rho_\tau` as
:math:`(1-\tau)|u|` below 0 and :math:`\tau|u|` above (never a difference of two large
terms), so :math:`\tau` within a few ulps of 0 or 1 keeps its digits in float32. The
objective is not differentiable at :math:`y = \mu`: the gradient there is the subgradient
0 (as for :mod:`nllax.laplace`, through ``_math.abs_``; NaN at NaN data), and the Hessian
in ``loc`` is 0 almost everywhere. CDF: :math:`\tau e^{(1-\tau)u}` below 0,
:math:`1 - (1-\tau)e^{-\tau u}` above; ``log_cdf``/``log_sf`` take the exponential side
in log space and the other through ``log1mexp``, so both tails keep their digits.
Expected information per observation for ``loc``: :math:`\tau(1-\tau)/s^2`.
"""

from __future__ import annotations

import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M
from nllax.gaussian import NOISE

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]


def check_loss(u, tau):
    """The pinball function :math:`\\rho_\\tau(u)`: ``(1 - tau) |u|`` below 0, ``tau |u|``
    above; its derivative is ``tau - 1[u < 0]`` and the subgradient 0 at ``u = 0``."""
    a = M.abs_(u)
    return jnp.where(u < 0, (1.0 - tau) * a, tau * a)


def _log_norm(tau):
    return jnp.log(tau) + jnp.log1p(-tau)


def _log_prob(y, loc, scale, quantile):
    z, factor = scale.standardize(y - loc)
    return F.Affine(-factor, check_loss(z, quantile), _log_norm(quantile) - scale.log())


def _log_cdf_u(u, tau):
    below = u < 0
    un = jnp.where(below, u, 0.0)
    up = jnp.where(below, 0.0, u)
    # F = tau exp((1 - tau) u) below 0; 1 - (1 - tau) exp(-tau u) above
    return jnp.where(below, jnp.log(tau) + (1.0 - tau) * un,
                     M.log1mexp(jnp.log1p(-tau) - tau * up))


def _log_sf_u(u, tau):
    below = u < 0
    un = jnp.where(below, u, 0.0)
    up = jnp.where(below, 0.0, u)
    # 1 - F = (1 - tau) exp(-tau u) above 0; 1 - tau exp((1 - tau) u) below
    return jnp.where(below, M.log1mexp(jnp.log(tau) + (1.0 - tau) * un),
                     jnp.log1p(-tau) - tau * up)


def _log_cdf(y, loc, scale, quantile):
    return _log_cdf_u(scale.divide(y - loc), quantile)


def _log_sf(y, loc, scale, quantile):
    return _log_sf_u(scale.divide(y - loc), quantile)


def _fisher(loc, scale, quantile):
    return {"loc": quantile * (1.0 - quantile) * scale.inverse() ** 2}


QUANTILE = F.Param("quantile", F.OPEN_UNIT, default=0.5, keyword_only=True,
                   doc="the quantile level tau in (0, 1) that loc is")

family = F.Family(
    name="asymmetric_laplace",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location: the tau-quantile"), NOISE, QUANTILE),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    smooth=False,
    summary="AsymmetricLaplace(loc, scale, quantile)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation asymmetric Laplace log-density
    :math:`\log\tau(1-\tau) - \log s - \rho_\tau((y-\mu)/s)`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: location :math:`\mu` (the :math:`\tau`-quantile), broadcastable to ``y.shape``
        without enlarging it.
      scale: :math:`s > 0` (default 1); or exactly one of ``log_scale``, ``var``
        (:math:`s^2`), ``log_var``.
      quantile: :math:`0 < \tau < 1` (keyword-only, default 0.5), scalar or broadcastable
        to ``y.shape``.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` <= 0, ``quantile`` outside (0, 1), or
      either is NaN.

    Example:
      >>> import nllax
      >>> float(nllax.asymmetric_laplace.log_prob(2.0, 0.0, quantile=0.9))  # log .09 - 1.8
      -4.20794...
      >>> float(nllax.asymmetric_laplace.log_cdf(0.0, 0.0, quantile=0.9))  # log 0.9
      -0.1053605...
    """,
    "nll": r"""Asymmetric Laplace negative log-likelihood, reduced (``reduction``,
    ``weights``, ``where`` as in :func:`nllax.gaussian.nll`).

    :math:`\mathrm{NLL} = \sum_i w_i\left[\rho_\tau(r_i/s) + \log s - \log\tau(1-\tau)\right]
    = \mathrm{pinball}_\tau/s + n\log(s/(\tau(1-\tau)))` for one :math:`s` and
    :math:`\tau`.
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
