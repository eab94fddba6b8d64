r"""Gaussian likelihood in its natural (exponential-family) parameters.

.. math::

    \log p(y \mid \eta_1, \eta_2) = \eta_1 y + \eta_2 y^2 + \frac{\eta_1^2}{4\eta_2}
        + \tfrac12\log(-2\eta_2) - \tfrac12\log 2\pi,
    \qquad \eta_1 = \frac{\mu}{\sigma^2},\quad \eta_2 = -\frac{1}{2\sigma^2} < 0.

The map back to the mean and the variance (:func:`to_mean_var`, and :func:`from_mean_var`
the other way) is

.. math::

    \mu = -\frac{\eta_1}{2\eta_2}, \qquad \sigma^2 = -\frac{1}{2\eta_2},

so this is :math:`N(\mu, \sigma^2)` = ``scipy.stats.norm(mu, sqrt(var))``, the test's
reference. The sufficient statistics are :math:`(y, y^2)` and the log-partition
:math:`A(\eta) = -\eta_1^2/(4\eta_2) - \tfrac12\log(-2\eta_2)` is convex, so the NLL is
convex in :math:`(\eta_1, \eta_2)` jointly (its Hessian per observation is
:math:`\mathrm{Cov}(y, y^2)`, whatever :math:`y`), which is why models predict these
parameters: a linear predictor for both gives a convex fitting problem. The expected
information is :math:`\sigma^2` for ``eta1`` and :math:`\mathrm{Var}(y^2) = 2\sigma^4 +
4\mu^2\sigma^2` for ``eta2``.

Numerics: the natural form adds :math:`\eta_1 y`, :math:`\eta_2 y^2` and
:math:`\eta_1^2/(4\eta_2)`, three terms of size :math:`\mu^2/\sigma^2` that cancel to
:math:`-z^2/2` (a mean of 100 with :math:`\sigma = 1` loses 4 digits). It is computed as
the standardised residual instead, with :math:`t = -2\eta_2 = 1/\sigma^2`:

.. math::

    z = \frac{t y - \eta_1}{\sqrt t} = \frac{y - \mu}{\sigma}, \qquad
    \log p = -\tfrac12 z^2 + \tfrac12\log t - \tfrac12\log 2\pi,

whose only cancellation, :math:`t y - \eta_1`, is the conditioning of :math:`y - \mu`
itself. ``log_cdf`` and ``log_sf`` are :math:`\log\Phi(\pm z)` (``nllax._math.log_ndtr``,
accurate in both tails).

Constraints: ``eta2`` must be < 0 (a value >= 0 or NaN gives NaN, value and gradient,
and ``nllax.checked`` names it); ``eta1`` is any real number.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from nllax import _family as F
from nllax._math import log_ndtr

__all__ = ["log_prob", "nll", "log_cdf", "log_sf", "to_mean_var", "from_mean_var"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _z(y, eta1, eta2):
    t = -2.0 * eta2
    return (t * y - eta1) / jnp.sqrt(t), t


def _log_prob(y, eta1, eta2):
    z, t = _z(y, eta1, eta2)
    return -0.5 * jnp.square(z) + 0.5 * jnp.log(t) - _HALF_LOG_2PI


def _log_cdf(y, eta1, eta2):
    return log_ndtr(_z(y, eta1, eta2)[0])


def _log_sf(y, eta1, eta2):
    return log_ndtr(-_z(y, eta1, eta2)[0])


def _fisher(eta1, eta2):
    t = -2.0 * eta2  # 1 / sigma^2
    return {"eta1": 1.0 / t, "eta2": 2.0 / (t * t) + 4.0 * eta1 * eta1 / (t * t * t)}


NEGATIVE = F.Constraint(
    "negative", "must be < 0 (got a value >= 0 or NaN)", lambda x: x < 0,
    # sum(|x| + x) == 0 rejects positives and NaN, max < 0 rejects 0
    whole=lambda x: F._sum_zero(-x) & (F._max(x) < 0), safe=-0.5)

family = F.Family(
    name="gaussian_natural",
    data=F.Data("y", F.REAL),
    params=(F.Param("eta1", doc="mu / sigma^2"),
            F.Param("eta2", NEGATIVE, doc="-1 / (2 sigma^2) < 0")),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    summary="Normal(natural eta1, eta2)",
)


def to_mean_var(eta1, eta2):
    r"""The mean and variance of the Gaussian with natural parameters ``(eta1, eta2)``.

    Args:
      eta1: :math:`\mu/\sigma^2`.
      eta2: :math:`-1/(2\sigma^2) < 0`.

    Returns:
      ``(mu, var)`` = :math:`(-\eta_1/(2\eta_2), -1/(2\eta_2))` (NaN-free only for
      ``eta2 < 0``; no check here).

    Example:
      >>> import nllax
      >>> [float(v) for v in nllax.gaussian_natural.to_mean_var(2.0, -0.5)]
      [2.0, 1.0]
    """
    eta1 = jnp.asarray(eta1)
    eta2 = jnp.asarray(eta2)
    return -eta1 / (2.0 * eta2), -1.0 / (2.0 * eta2)


def from_mean_var(mu, var):
    r"""The natural parameters of :math:`N(\mu, \sigma^2)`, the inverse of
    :func:`to_mean_var`.

    Args:
      mu: the mean.
      var: the variance :math:`\sigma^2 > 0`.

    Returns:
      ``(eta1, eta2)`` = :math:`(\mu/\sigma^2, -1/(2\sigma^2))`.

    Example:
      >>> import nllax
      >>> [float(v) for v in nllax.gaussian_natural.from_mean_var(2.0, 4.0)]
      [0.5, -0.125]
    """
    mu = jnp.asarray(mu)
    var = jnp.asarray(var)
    return mu / var, -0.5 / var


_fns = family.functions({
    "log_prob": r"""Per-observation Gaussian log-density in natural parameters.

    Args:
      y: observations, any shape.
      eta1: :math:`\mu/\sigma^2`, broadcastable to ``y.shape`` without enlarging it.
      eta2: :math:`-1/(2\sigma^2) < 0`, likewise. :func:`to_mean_var` maps
        ``(eta1, eta2)`` to :math:`(\mu, \sigma^2)`.

    Returns:
      Array of ``y.shape``; NaN where ``eta2`` is >= 0 or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.gaussian_natural.log_prob(0.0, 0.0, -0.5))  # N(0, 1) at 0
      -0.9189385...
      >>> float(nllax.gaussian_natural.log_prob(100.0, 100.0, -0.5))  # N(100, 1) at 100
      -0.9189385...
    """,
    "nll": r"""Negative log-likelihood of the natural-parameter Gaussian, reduced
    (``reduction``, ``weights``, ``where`` as in :func:`nllax.gaussian.nll`). Convex in
    ``(eta1, eta2)``.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([0.5, -1.0, 2.0])
      >>> round(float(nllax.gaussian_natural.nll(y, 0.0, -0.5)), 6)  # = gaussian.nll(y, 0, 1)
      5.381816
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
