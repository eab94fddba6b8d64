r"""Gaussian mixture likelihood: the head of a mixture density network.

.. math::

    \log p(y \mid z, \mu, \sigma) = \log\sum_{k=1}^{K} \pi_k\, N(y \mid \mu_k, \sigma_k^2)
        = \operatorname{logsumexp}_k\Big(\log\pi_k - \tfrac12 z_k^2 - \log\sigma_k
          - \tfrac12\log 2\pi\Big),
    \qquad \log\pi = \mathrm{log\_softmax}(z),\quad z_k = \frac{y - \mu_k}{\sigma_k},

with the K components on the last axis of ``logits`` (:math:`z`), ``loc`` (:math:`\mu`)
and ``scale`` (:math:`\sigma > 0`); ``y`` has the batch shape only. The CDF and survival
function are the weighted sums of the components' ones,
:math:`\log F(y) = \operatorname{logsumexp}_k(\log\pi_k + \log\Phi(z_k))` and
:math:`\log(1 - F(y)) = \operatorname{logsumexp}_k(\log\pi_k + \log\Phi(-z_k))`, each
accurate in both tails (``nllax._math.log_ndtr``); where one of the two is above
:math:`\log\tfrac12` it is computed as :math:`\mathrm{log1mexp}` of the other, since a sum
of terms near 1 keeps only an absolute rounding error.

Numerics: everything stays in log space. The logsumexp subtracts its largest term, so
a point far from every component (each :math:`N(y)` underflowing to 0) keeps its exact
log-density, and the gradient is the responsibility-weighted sum of the components'
gradients (the responsibilities :math:`\mathrm{softmax}_k` of the terms above). A
logit of :math:`-\infty` switches a component off exactly. The error of the result is a
few eps times the responsibility-weighted size of the terms (:math:`z_k^2/2`,
:math:`|\log\sigma_k|`, the logits), not of the components that do not matter.

Constraints: ``scale`` > 0 in every component, and ``logits`` < :math:`+\infty`, not
NaN, not all :math:`-\infty`; anything else gives NaN (value and gradient) and
``nllax.checked`` names the argument. The mixture's likelihood is unbounded (a component
collapsing on one observation, :math:`\sigma_k \to 0`): bound the scale from below in the
model (``scale = softplus(s) + min_scale``) when fitting.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax._math import log1mexp, log_ndtr

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LN2 = math.log(2.0)


def _z(y, loc, scale):
    return (y[..., None] - loc) / scale


def _log_prob(y, logits, loc, scale):
    z = _z(y, loc, scale)
    comp = -0.5 * jnp.square(z) - jnp.log(scale) - _HALF_LOG_2PI
    return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + comp, axis=-1)


def _cdf_sf(y, logits, loc, scale, upper):
    """``log F`` (``upper=False``) or ``log(1 - F)``: the weighted sum of the components',
    or, where that is above log(1/2), ``log1mexp`` of the other one (a sum of terms near
    1 keeps only an absolute eps: 4e-11 relative at log F = -2e-6, measured)."""
    lw = jax.nn.log_softmax(logits, axis=-1)
    z = _z(y, loc, scale)
    lc = jax.nn.logsumexp(lw + log_ndtr(z), axis=-1)
    ls = jax.nn.logsumexp(lw + log_ndtr(-z), axis=-1)
    want, other = (ls, lc) if upper else (lc, ls)
    small = other < -_LN2
    return jnp.where(small, log1mexp(jnp.where(small, other, -1.0)), want)


def _log_cdf(y, logits, loc, scale):
    return _cdf_sf(y, logits, loc, scale, upper=False)


def _log_sf(y, logits, loc, scale):
    return _cdf_sf(y, logits, loc, scale, upper=True)


def _logits_ok(z):
    return jnp.all(z < jnp.inf, axis=-1) & jnp.any(z > -jnp.inf, axis=-1)


# Check-only (the NaN propagates by itself through log_softmax to the whole row).
LOGITS = F.Constraint(
    "logits", "must be < +inf and not all -inf (a +inf or NaN logit, or a row of -inf)",
    _logits_ok, propagates=True, event_ndim=1)
SCALES = dataclasses.replace(
    F.POSITIVE, name="positive_rows",
    message="must be > 0 in every component (got a value <= 0 or NaN)",
    elem=lambda x: jnp.all(x > 0, axis=-1), event_ndim=1)


def _prepare(y, params, options, fn, raw):
    k = params["logits"].shape[-1]
    for name in ("loc", "scale"):
        kk = params[name].shape[-1]
        if kk != k:
            raise ValueError(f"{fn}: `{name}` has {kk} components on its last axis, `logits` "
                             f"has {k}.")
    return y, params, {}


family = F.Family(
    name="gaussian_mixture",
    data=F.Data("y", F.REAL),
    params=(
        F.Param("logits", LOGITS, keyword_only=True, event_ndim=1,
                doc="unnormalised log mixture weights, components last"),
        F.Param("loc", keyword_only=True, event_ndim=1, doc="component means"),
        F.Param("scale", SCALES, keyword_only=True, event_ndim=1,
                doc="component standard deviations > 0"),
    ),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    prepare=_prepare,
    summary="GaussianMixture(logits, loc, scale)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation log-density of a mixture of K Gaussians.

    Args:
      y: observations, shape ``batch``.
      logits: unnormalised log mixture weights, ``batch + (K,)`` (the batch part
        broadcastable to ``y.shape``); NaN / +inf invalid.
      loc: component means, ``batch + (K,)`` likewise.
      scale: component standard deviations > 0, ``batch + (K,)`` likewise.

    Returns:
      Array of ``y.shape``; NaN where a ``scale`` is <= 0 or a logit is NaN or +inf.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> lp = nllax.gaussian_mixture.log_prob(
      ...     0.0, logits=jnp.zeros(2), loc=jnp.array([0.0, 0.0]), scale=jnp.ones(2))
      >>> float(lp)  # two identical components: N(0, 1) at 0
      -0.9189385...
      >>> float(nllax.gaussian_mixture.log_prob(  # far from both components, no underflow
      ...     100.0, logits=jnp.zeros(2), loc=jnp.array([-1.0, 1.0]), scale=jnp.ones(2)))
      -4902.1123...
    """,
    "nll": r"""Gaussian mixture negative log-likelihood, reduced over observations
    (``reduction``, ``weights``, ``where`` as in :func:`nllax.gaussian.nll`, with the
    shape of ``y``).""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
