r"""Tweedie likelihood for :math:`1 < p < 2` (compound Poisson-gamma), GLM
parametrisation: mean :math:`\mu`, dispersion :math:`\phi`, power :math:`p`
(:math:`\mathrm{Var}[y] = \phi\mu^p`).

:math:`y = \sum_{i=1}^N G_i` with :math:`N \sim \mathrm{Poisson}(\lambda)`,
:math:`\lambda = \mu^{2-p}/(\phi(2-p))`, and :math:`G_i` gamma with shape
:math:`a = (2-p)/(p-1)` and scale :math:`\phi(p-1)\mu^{p-1}`. So
:math:`P(y = 0) = e^{-\lambda}` (a point mass) and for :math:`y > 0` (Dunn and Smyth, 2005)

.. math::

    \log p(y) = -\log y + \log W(y, \phi, p)
        + \frac1\phi\Bigl(\frac{y\mu^{1-p}}{1-p} - \frac{\mu^{2-p}}{2-p}\Bigr),
    \qquad W = \sum_{j\ge1} W_j,

    \log W_j = j\Bigl(a\log\frac{y}{p-1} - \frac{\log\phi}{p-1} - \log(2-p)\Bigr)
        - \log j! - \log\Gamma(ja).

The density is with respect to the counting measure at 0 plus Lebesgue measure on
:math:`y > 0`: the point mass plus the integral over :math:`y > 0` is 1.

**Parameters**: exactly one of ``log_mean`` (:math:`\log\mu`, the usual log link) or
``mean`` (:math:`\mu > 0`); ``dispersion`` :math:`\phi > 0` and ``power``
:math:`p \in (1, 2)` (keyword-only, required; scalars or per observation). ``y < 0``,
a NaN, ``mean <= 0``, ``dispersion <= 0`` or a power outside (1, 2) give NaN (value and
gradient) and a named error under :func:`nllax.checked`.

**The series, with static shapes.** As a function of :math:`j` the terms
:math:`\log W_j` are concave with their maximum near
:math:`j_{\max} = y^{2-p}/(\phi(2-p))` and a width
:math:`\sigma \approx \sqrt{(p-1)\,j_{\max}}`. Every observation evaluates exactly
:data:`TERMS` = 128 terms, summed in log space (``logsumexp``):

* :math:`12\sigma \le 63`: the 128 consecutive integers from
  :math:`\max(1, \lfloor j_{\max}\rfloor - 63)` — the series itself, every neglected term
  more than 12 sigma (or, on the left, all terms below :math:`j = 1`) away;
* wider (:math:`\sigma > 5.25`, e.g. a small dispersion): the sum over integers equals the
  integral of the (analytic, bell-shaped) summand up to a relative
  :math:`\approx 2e^{-2\pi^2\sigma^2} < 10^{-200}` (Poisson summation), and the integral
  is taken by the trapezoidal rule on 128 equally spaced real :math:`j` over
  :math:`[\max(1, j_{\max} - 12\sigma), j_{\max} + 12\sigma]` (step
  :math:`s = 24\sigma/127`, error :math:`\approx 2e^{-2\pi^2(\sigma/s)^2} = 2e^{-55}`).
  The nodes are quadrature nodes, not functions of the parameters (``stop_gradient``);
  derivatives are the same quadrature of the derivative.

Measured against the full series in float64 (every term from 1 to
:math:`j_{\max} + 60\sqrt{j_{\max}/(p-1)} + 200`), at 3000 random points with
:math:`p \in (1.001, 1.999)`, :math:`j_{\max}` from 0.01 to :math:`3\cdot10^4` and
:math:`y \in (e^{-5}, e^5)`: the difference is at the level of the rounding of the terms
(:math:`\le 60\,\varepsilon` relative to the largest :math:`|j \log W_j|`-sized term),
no truncation error visible. There is no upper limit on :math:`j_{\max}` in the method;
what grows with it is the **cancellation** between :math:`\log W` and the exponent, both
of size about :math:`j_{\max}\log j_{\max}` while the result is of order
:math:`\log j_{\max}`: at :math:`\phi = 10^{-6}` float64 keeps about 6 digits of
:math:`\log p` and float32 none (the same holds for the float64 reference; a saddle-point
form would be needed for such dispersions).

``log_cdf`` / ``log_sf`` are not provided: the distribution function of this mixed
distribution has no series with the same static structure (it is not needed by
censoring with a point mass at 0).

Expected (Fisher) information per observation: :math:`\mu^{2-p}/\phi` for ``log_mean``,
:math:`1/(\phi\mu^p)` for ``mean``.

References:
  P. K. Dunn and G. K. Smyth, "Series evaluation of Tweedie exponential dispersion model
  densities", *Statistics and Computing* 15, 2005.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from nllax import _family as F
from nllax.gamma import DISPERSION, MEAN

__all__ = ["log_prob", "nll", "TERMS"]

TERMS = 128
_HALF = TERMS // 2
_WIDTH = 12.0  # sigmas on each side of j_max


def _nodes(log_jm, p):
    """The ``(..., TERMS)`` quadrature nodes and their log weights (no gradient)."""
    jm = jnp.maximum(jnp.exp(log_jm), 1.0)
    sigma = jnp.sqrt(jm * (p - 1.0))
    i = jnp.arange(TERMS, dtype=jm.dtype)
    integer = _WIDTH * sigma <= _HALF - 1
    j0 = jnp.maximum(1.0, jnp.floor(jm) - (_HALF - 1))
    lo = jnp.maximum(1.0, jm - _WIDTH * sigma)
    step = jnp.where(integer, 1.0, (jm + _WIDTH * sigma - lo) / (TERMS - 1))
    start = jnp.where(integer, j0, lo)
    j = start[..., None] + step[..., None] * i
    ends = (i == 0) | (i == TERMS - 1)
    log_w = jnp.where(integer[..., None] | ~ends, 0.0, jnp.log(0.5)) + jnp.log(step)[..., None]
    return jax.lax.stop_gradient(j), jax.lax.stop_gradient(log_w)


def log_series(y, dispersion, power):
    r""":math:`\log W(y, \phi, p)` for :math:`y > 0` (see the module docstring)."""
    p = power
    a = (2.0 - p) / (p - 1.0)
    log_y = jnp.log(y)
    log_2mp = jnp.log(2.0 - p)
    log_phi = jnp.log(dispersion)
    z = a * (log_y - jnp.log(p - 1.0)) - log_phi / (p - 1.0) - log_2mp
    j, log_w = _nodes((2.0 - p) * log_y - log_phi - log_2mp, p)
    terms = (j * z[..., None] - gammaln(j + 1.0) - gammaln(j * a[..., None]) + log_w)
    return jax.nn.logsumexp(terms, axis=-1)


def _log_prob(y, mean, dispersion, power):
    dt = y.dtype
    p = jnp.broadcast_to(power, jnp.broadcast_shapes(y.shape, jnp.shape(power),
                                                     jnp.shape(dispersion)))
    phi = jnp.broadcast_to(dispersion, p.shape)
    log_mu = mean.log()
    kappa = jnp.exp((2.0 - p) * log_mu) / (2.0 - p)  # mu^(2-p) / (2-p)
    pos = y > 0
    ys = jnp.where(pos, y, jnp.ones((), dt))
    theta_y = ys * jnp.exp((1.0 - p) * log_mu) / (1.0 - p)
    lp_pos = -jnp.log(ys) + log_series(jnp.broadcast_to(ys, p.shape), phi, p) + (
        theta_y - kappa) / phi
    return jnp.where(pos, lp_pos, -kappa / phi)


def _fisher(mean, dispersion, power):
    if mean.kind == "log":
        return {"log_mean": jnp.exp((2.0 - power) * mean.v) / dispersion}
    return {"mean": 1.0 / (dispersion * mean.v ** power)}


POWER = F.Param("power", F.interval(1.0, 2.0, message="must lie in (1, 2) (the compound "
                                                       "Poisson-gamma range; got a value "
                                                       "outside or NaN)"),
                keyword_only=True, doc="p in (1, 2)")

family = F.Family(
    name="tweedie",
    data=F.Data("y", F.NONNEGATIVE),
    params=(MEAN, DISPERSION, POWER),
    log_prob=_log_prob,
    fisher=_fisher,
    summary="Tweedie(mean, dispersion, power)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Tweedie log-density (:math:`1 < p < 2`): the log of
    the point mass :math:`P(y = 0) = e^{-\lambda}` at 0, the log-density for :math:`y > 0`.

    Args:
      y: non-negative observations, any shape.
      log_mean: :math:`\log\mu`, broadcastable to ``y.shape``; or
      mean: :math:`\mu > 0`. Exactly one of the two.
      dispersion: :math:`\phi > 0`, scalar or broadcastable to ``y.shape``.
      power: :math:`p \in (1, 2)`, scalar or broadcastable to ``y.shape``.

    Returns:
      Array of ``y.shape``; NaN where ``y < 0``, ``mean <= 0``, ``dispersion <= 0`` or
      ``power`` is outside (1, 2).

    Example:
      >>> import nllax
      >>> float(nllax.tweedie.log_prob(0.0, mean=1.0, dispersion=1.0, power=1.5))  # -2
      -2.0
    """,
    "nll": r"""Tweedie negative log-likelihood, reduced (``reduction``, ``weights``, ``where``
    as in :func:`nllax.gaussian.nll`).""",
})
log_prob, nll = _fns["log_prob"], _fns["nll"]
F.register(__name__, family)
