r"""Poisson likelihood: the likelihood whose NLL is the Poisson loss.

.. math::

    \log p(k \mid \lambda) = k\log\lambda - \lambda - \log k!,
    \qquad \eta = \log\lambda .

The NLL is the Poisson loss :math:`\sum_i (e^{\eta_i} - k_i\eta_i)` plus a constant of
the data: :math:`\mathrm{NLL} = 1\cdot\mathrm{loss} + \sum_i \log k_i!`, and
:math:`\partial\,\mathrm{NLL}/\partial\eta = e^\eta - k`.

Numerics: the textbook form cancels catastrophically for large counts (at
:math:`k = \lambda = 10^7` its three terms are ~1e8 and the answer is -8.98, so float32
keeps no digit). We use the saddle-point form (Loader, 2000)

.. math::

    \log p(k \mid \lambda) = -\mathrm{stirlerr}(k) - \tfrac12\log(2\pi k)
        - \mathrm{bd0}(k, \lambda),\qquad
    \mathrm{bd0}(k,\lambda) = k\log\frac{k}{\lambda} + \lambda - k \ge 0,

with :math:`\mathrm{stirlerr}(k) = \log k! - (k+\tfrac12)\log k + k - \tfrac12\log 2\pi`
(an exact table for :math:`k \le 15`, its asymptotic series above) and ``bd0`` by the
series :math:`(k-\lambda)v + 2k\sum_{j\ge1} v^{2j+1}/(2j+1)`,
:math:`v = (k-\lambda)/(k+\lambda)`, when :math:`|v| < 0.1`. :math:`\log k!` is exact, not a
Stirling approximation. For :math:`k = 0`, :math:`\log p = -\lambda` (exactly 0 at
:math:`\lambda = 0`); for :math:`k \ge 1` and :math:`\lambda = 0` it is :math:`-\infty`.
Derivatives are given analytically (:math:`k - e^\eta` in :math:`\eta`,
:math:`k/\lambda - 1` in :math:`\lambda`), to all orders.

Counts must be non-negative integers (given as integers or floats); anything else, and a
negative or NaN rate, gives NaN.

References:
  C. Loader, "Fast and Accurate Computation of Binomial Probabilities", 2000.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M

__all__ = ["log_prob", "nll"]
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_pmf(k, lam, log_lam):
    k_pos = jnp.where(k > 0, k, jnp.ones((), k.dtype))
    lp_pos = -M.stirlerr(k_pos) - (0.5 * jnp.log(k_pos) + _HALF_LOG_2PI) - M.bd0(k_pos, lam, log_lam)
    return jnp.where(k > 0, lp_pos, 0.0 - lam)  # +0.0, not -0.0, at k = lam = 0


@jax.custom_jvp
def _lp_log_rate(k, eta):
    return _log_pmf(k, jnp.exp(eta), eta)


@_lp_log_rate.defjvp
def _lp_log_rate_jvp(primals, tangents):
    k, eta = primals
    dk, deta = tangents
    out = _lp_log_rate(k, eta)
    return out, (k - jnp.exp(eta)) * deta + (eta - jax.scipy.special.digamma(k + 1)) * dk


@jax.custom_jvp
def _lp_rate(k, lam):
    return _log_pmf(k, lam, jnp.log(lam))


@_lp_rate.defjvp
def _lp_rate_jvp(primals, tangents):
    k, lam = primals
    dk, dlam = tangents
    out = _lp_rate(k, lam)
    lam_pos = jnp.where(lam > 0, lam, jnp.ones((), lam.dtype))
    k_over = jnp.where(k == 0, jnp.zeros((), k.dtype), k / jnp.where(lam > 0, lam, 0.0))
    dlog = jnp.log(lam_pos) - jax.scipy.special.digamma(k + 1)
    return out, (k_over - 1.0) * dlam + dlog * dk



def _log_prob(counts, rate):
    if rate.kind == "log":
        return _lp_log_rate(counts, rate.v)
    return _lp_rate(counts, rate.v)


def _fisher(rate):
    return {"log_rate": jnp.exp(rate.v)} if rate.kind == "log" else {"rate": 1.0 / rate.v}


def _moments(rate):
    lam = rate.value()
    return lam, lam


family = F.Family(
    name="poisson",
    data=F.Data("counts", F.COUNTS),
    params=(
        F.OneOf("rate", (
            F.Param("log_rate", keyword_only=True, doc="eta = log(lambda), the canonical link"),
            F.Param("rate", F.NONNEGATIVE, keyword_only=True, to_canonical=jnp.log,
                    from_canonical=jnp.exp, doc="lambda >= 0"),
        ), positive=True, kinds=("log", "value")),
    ),
    log_prob=_log_prob,
    fisher=_fisher,
    moments=_moments,
    summary="Poisson(log_rate)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Poisson log-probability :math:`k\log\lambda - \lambda - \log k!`.

    Args:
      counts: non-negative integer counts (integer or float dtype), any shape.
      log_rate: :math:`\eta = \log\lambda` (the canonical link), broadcastable to
        ``counts.shape``; or
      rate: :math:`\lambda \ge 0`. Exactly one of the two.

    Returns:
      Array of ``counts.shape``; NaN for invalid counts or a negative/NaN rate.

    Example:
      >>> import nllax
      >>> float(nllax.poisson.log_prob(0, rate=2.0))  # -2
      -2.0
    """,
    "nll": r"""Poisson negative log-likelihood, reduced (``reduction``, ``weights``, ``where`` as
    in :func:`nllax.gaussian.nll`, with the shape of ``counts``).""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)
