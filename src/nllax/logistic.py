r"""Logistic likelihood: a location-scale family with heavier tails than the Gaussian.

.. math::

    \log p(y \mid \mu, s) = -z - 2\log(1 + e^{-z}) - \log s
        = -|z| - 2\,\mathrm{log1p}(e^{-|z|}) - \log s,
    \qquad z = \frac{y - \mu}{s},

(the second form is the stable one: the density is symmetric in :math:`z`). The CDF is
the sigmoid, :math:`\log F(y) = \log\sigma(z)` and :math:`\log(1 - F(y)) = \log\sigma(-z)`,
both exact deep in the tails. The NLL in :math:`\mu` is
:math:`\sum_i 2\log\cosh(z_i/2) + \text{const}`: a smooth robust loss, quadratic near 0 and
linear in the tails. Mean :math:`\mu`, variance :math:`\pi^2 s^2/3`; expected information
:math:`1/(3s^2)` for ``loc``.

The scale: exactly one of ``scale`` (:math:`s > 0`, default 1), ``log_scale``, ``var``
(:math:`s^2`) or ``log_var``, as in :mod:`nllax.gaussian`; shapes and invalid values as
there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax.gaussian import NOISE

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]


def _log_prob(y, loc, scale):
    a = jnp.abs(scale.divide(y - loc))
    return -a - 2.0 * jnp.log1p(jnp.exp(-a)) - scale.log()


family = F.Family(
    name="logistic",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location (mean and median)"), NOISE),
    log_prob=_log_prob,
    log_cdf=lambda y, loc, scale: jax.nn.log_sigmoid(scale.divide(y - loc)),
    log_sf=lambda y, loc, scale: jax.nn.log_sigmoid(scale.divide(loc - y)),
    fisher=lambda loc, scale: {"loc": scale.inverse() ** 2 / 3.0},
    summary="Logistic(loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation logistic log-density.

    Args:
      y: observations, any shape.
      loc: location, broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`s > 0` (default 1); or exactly one of ``log_scale``, ``var``,
        ``log_var``.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` is <= 0 or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.logistic.log_prob(0.0, 0.0, 1.0))  # log(1/4)
      -1.3862943...
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
