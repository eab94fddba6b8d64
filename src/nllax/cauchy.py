r"""Cauchy likelihood: the Student-t with one degree of freedom; no mean, no variance.

.. math::

    \log p(y \mid \mu, s) = -\log\pi - \log s - \log(1 + z^2),
    \qquad z = \frac{y - \mu}{s}.

The NLL in :math:`\mu` is :math:`\sum_i \log(1 + z_i^2)`: a robust loss that grows only
logarithmically (an outlier's pull on :math:`\mu` vanishes like :math:`1/z`); it is not
convex, and its minimiser is not unique in general.

The scale: exactly one of ``scale`` (:math:`s > 0`, default 1), ``log_scale``, ``var``
(:math:`s^2`) or ``log_var``, as in :mod:`nllax.gaussian`; shapes and invalid values as
there.

**Numerics.** :math:`\log(1 + z^2)` is ``log1p(z^2)`` for :math:`|z| \le 1` and
:math:`2\log|z| + \mathrm{log1p}(z^{-2})` above, so that :math:`z^2` may overflow (a
scale of 1e-30 in float32) without the result doing so. The CDF is
:math:`F(z) = \tfrac12 + \arctan(z)/\pi = \mathrm{atan2}(1, -z)/\pi`; the second form is
exact in the lower tail (:math:`\arctan(-1/z)/\pi` for :math:`z < 0`, where
:math:`\tfrac12 + \arctan(z)/\pi` would be a difference of two nearly equal numbers:
relative error 1e-6 at :math:`z = -10^{10}`). ``log_cdf`` is :math:`\log` of it for
:math:`z \le 0` and ``log1p`` of minus the other tail above; ``log_sf`` mirrors it.

Expected information per observation: :math:`1/(2s^2)` for ``loc``; :math:`1/(2s^2)` for
``scale`` (``log_scale``: 1/2; ``var``: :math:`1/(8s^4)`; ``log_var``: 1/8).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax.gaussian import NOISE, noise_information

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_LOG_PI = math.log(math.pi)


@jax.custom_jvp
def _log1p_square(z):
    """``log(1 + z^2)`` without overflowing ``z^2``, with no branch: with
    ``a = |z|`` and ``q = min(a, 1) / max(a, 1)`` (``= min(a, 1/a)``, in [0, 1]),
    ``log(1 + z^2) = 2 log max(a, 1) + log1p(q^2)``: ``log1p(z^2)`` for ``|z| <= 1``
    (``log 1 = 0`` exactly) and ``2 log|z| + log1p(1/z^2)`` above, finite for every finite
    z (one select last, between two equal values, see below). The derivative
    ``2z / (1 + z^2)`` is written out without overflow (see the JVP; itself
    differentiable: the Hessian ``2 (1 - z^2) / (1 + z^2)^2``, at ``|z| = 1`` too). The
    two-branch form with guarded
    inputs computed three transcendentals and four selects, which XLA:CPU cannot fuse into
    the reduction: 2.6x jax.scipy.stats' value-and-grad at n = 1e6 (bench/CORE.md)."""
    a = jnp.abs(z)
    big = jnp.maximum(a, 1.0)
    q = jnp.minimum(a, 1.0) / big
    lb = jnp.log(big)
    lp = jnp.log1p(q * q)
    # a select last (the same value: lb = 0 where a <= 1): XLA:CPU's reduction fusion
    # stops at it and the whole term is one elementwise loop (with the add last, it took
    # the add and wrote max, q and q^2 as separate n-sized buffers)
    return jnp.where(a <= 1.0, lp, lp + (lb + lb))  # not 2 * lb: an n-sized constant 2


@_log1p_square.defjvp
def _log1p_square_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    # 2z / (1 + z^2), with numerator and denominator divided by b = max(|z|, 1):
    # 2 (z / b) / (b + s^2 / b), s = min(|z|, 1). Neither part overflows, so beyond
    # |z| = sqrt(max float) (1.8e19 in float32, 1.3e154 in float64) the derivative is
    # 2 / z, not 0: the chain rule multiplies it by z for the scale (d/d scale of the NLL
    # is (1 - z g(z)) / scale, -1 / scale in the tail; z^2 overflowing made it +1 / scale).
    # Autodiff of this form gives the exact Hessian (at z = 0 and at |z| = 1, where max
    # and min split their derivative, too). It uses 1 / b, not the value's min(|z|, 1) / b,
    # so that the gradient's loop shares only z and |z| with the value's (a shared divide
    # is written out as an n-sized buffer on XLA:CPU).
    a = jnp.abs(z)
    b = jnp.maximum(a, 1.0)
    ib = 1.0 / b
    s = jnp.minimum(a, 1.0)
    return _log1p_square(z), 2.0 * (z * ib) / (b + (s * s) * ib) * dz


def _log_prob(y, loc, scale):
    z = scale.divide(y - loc)
    return -_log1p_square(z) - (scale.log() + _LOG_PI)


def _log_cdf_z(z):
    # F(z) = atan2(1, -z) / pi, exact in the lower tail; above 0, log1p(-P(Z > z)) with
    # P(Z > z) = atan2(1, z) / pi exact in the upper tail. atan2(1, .) is smooth and
    # finite everywhere: neither branch needs a guard.
    lower = jnp.log(jnp.arctan2(1.0, -z) / math.pi)
    upper = jnp.log1p(-jnp.arctan2(1.0, z) / math.pi)
    return jnp.where(z <= 0, lower, upper)


def _log_cdf(y, loc, scale):
    return _log_cdf_z(scale.divide(y - loc))


def _log_sf(y, loc, scale):
    return _log_cdf_z(scale.divide(loc - y))


def _fisher(loc, scale):
    return {"loc": 0.5 * scale.inverse() ** 2, **noise_information(scale, 0.5)}


family = F.Family(
    name="cauchy",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location (the median)"), NOISE),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    summary="Cauchy(loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Cauchy log-density :math:`-\log(\pi s (1 + z^2))`.

    Args:
      y: observations, any shape.
      loc: location (median), broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`s > 0` (default 1); or exactly one of ``log_scale``, ``var``,
        ``log_var``.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` is <= 0 or NaN.

    Example:
      >>> import nllax
      >>> float(nllax.cauchy.log_prob(1.0, 0.0, 1.0))  # -log(2 pi)
      -1.8378770...
    """,
    "nll": r"""Cauchy negative log-likelihood, reduced (``reduction``, ``weights``,
    ``where`` as in :func:`nllax.gaussian.nll`); arguments as in :func:`log_prob`.
    """,
    "log_cdf": r"""Per-observation :math:`\log P(Y \le y)`, accurate deep in both tails.

    Example:
      >>> import nllax
      >>> float(nllax.cauchy.log_cdf(-1e10, 0.0))  # log(1 / (pi 1e10))
      -24.1705...
    """,
    "log_sf": r"""Per-observation :math:`\log P(Y > y)`; see :func:`log_cdf`.""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
