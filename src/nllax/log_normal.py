r"""Log-normal likelihood: :math:`\log y` is Gaussian; the support is :math:`y > 0`.

.. math::

    \log p(y \mid \mu, s) = -\frac{(\log y - \mu)^2}{2s^2} - \log s - \tfrac12\log(2\pi)
        - \log y,

``loc`` :math:`\mu` and the scale :math:`s` are the mean and standard deviation of
:math:`\log y` (scipy: ``lognorm(s=scale, scale=exp(loc))``); the last term is the Jacobian
of :math:`y \mapsto \log y`. The NLL in :math:`\mu` is the squared error of the logs, the
NLL of ``msle`` up to an affine map (:func:`nllax.losses.msle`, on :math:`1 + y`).

The scale: exactly one of ``scale`` (:math:`s > 0`, default 1), ``log_scale``, ``var``
(:math:`s^2`) or ``log_var``, as in :mod:`nllax.gaussian`. ``y <= 0`` or NaN is outside
the support: NaN (value and gradient) and, in :func:`nllax.checked`, the message "`y` must
be > 0 (negative y for the log-normal ...)". ``log_cdf`` and ``log_sf`` are
:math:`\log\Phi(\pm(\log y - \mu)/s)` (:func:`nllax._math.log_ndtr`), accurate deep in
both tails. Expected information per observation as for the Gaussian of :math:`\log y`:
:math:`1/s^2` for ``loc``, :math:`2/s^2` for ``scale`` (2 for ``log_scale``,
:math:`1/(2s^4)` for ``var``, 1/2 for ``log_var``).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from nllax import _family as F
from nllax._math import log_ndtr
from nllax.gaussian import NOISE
from nllax.gaussian import _fisher as _gaussian_fisher

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

POSITIVE_Y = dataclasses.replace(
    F.POSITIVE,
    message="must be > 0 (negative y for the log-normal: its support is y > 0; got a value "
            "<= 0 or NaN)")


def _log_prob(y, loc, scale):
    log_y = jnp.log(y)
    z, factor = scale.standardize(log_y - loc)
    return F.Affine(-0.5 * factor * factor, jnp.square(z),
                    -(scale.log() + _HALF_LOG_2PI) - log_y)


def _log_cdf(y, loc, scale):
    return log_ndtr(scale.divide(jnp.log(y) - loc))


def _log_sf(y, loc, scale):
    return log_ndtr(scale.divide(loc - jnp.log(y)))


family = F.Family(
    name="log_normal",
    data=F.Data("y", POSITIVE_Y),
    params=(F.Param("loc", doc="mean of log y"), NOISE),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_gaussian_fisher,
    summary="LogNormal(loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation log-normal log-density.

    Args:
      y: observations, ``y > 0``, any shape.
      loc: mean of :math:`\log y`, broadcastable to ``y.shape`` without enlarging it.
      scale: standard deviation of :math:`\log y`, :math:`s > 0` (default 1); or exactly
        one of ``log_scale``, ``var``, ``log_var``.

    Returns:
      Array of ``y.shape``; NaN where ``y <= 0``, or ``scale`` is <= 0, or either is NaN.

    Example:
      >>> import nllax
      >>> float(nllax.log_normal.log_prob(1.0, 0.0, 1.0))  # -log(2 pi) / 2
      -0.9189385...
    """,
    "nll": r"""Log-normal negative log-likelihood, reduced (``reduction``, ``weights``,
    ``where`` as in :func:`nllax.gaussian.nll`); arguments as in :func:`log_prob`.
    """,
    "log_cdf": r"""Per-observation :math:`\log P(Y \le y) = \log\Phi((\log y - \mu)/s)`.

    Example:
      >>> import math, nllax
      >>> float(nllax.log_normal.log_cdf(math.e, 1.0))  # the median: log(1/2)
      -0.6931471...
    """,
    "log_sf": r"""Per-observation :math:`\log P(Y > y) = \log\Phi((\mu - \log y)/s)`.""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
