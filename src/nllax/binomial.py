r"""Binomial likelihood: successes out of a known number of trials (the GLM with trials).

.. math::

    \log p(k \mid n, p) = \log\binom{n}{k} + k\log p + (n - k)\log(1 - p),
    \qquad z = \log\frac{p}{1-p},

with logits :math:`z` (the canonical link) or probabilities :math:`p`. With :math:`n = 1`
it is the Bernoulli likelihood. :math:`\partial\log p/\partial z = k - np`; the expected
information is :math:`np(1-p)` for ``logits`` and :math:`n/(p(1-p))` for ``probs``.

Numerics: the textbook form cancels catastrophically for many trials (at
:math:`n = 10^9` its terms are ~2e10 and the answer is ~-10: float32 keeps no digit, float64
about six). We use Loader's saddle-point form (Loader, 2000), with :math:`q = 1 - p`,

.. math::

    \log p(k \mid n, p) = \mathrm{stirlerr}(n) - \mathrm{stirlerr}(k)
        - \mathrm{stirlerr}(n-k) - \mathrm{bd0}(k, np) - \mathrm{bd0}(n-k, nq)
        - \tfrac12\log\Big(2\pi k\,\frac{n-k}{n}\Big)\qquad (0 < k < n),

``stirlerr`` and ``bd0`` as in :mod:`nllax.poisson` (``nllax._math``): every term is no
larger than the result, so the error is a few roundings plus the conditioning of the
inputs. The ends are exact: :math:`\log p(0) = n\log q` and :math:`\log p(n) = n\log p`,
with :math:`\log p = \log\sigma(z)`, :math:`\log q = \log\sigma(-z)` from the logits (the
logs of the rates :math:`np, nq` enter ``bd0`` as :math:`\log n + \log\sigma(\pm z)`, so a
probability that underflows costs nothing). Derivatives are written out (:math:`k - np`
in :math:`z`, :math:`k/p - (n-k)/q` in :math:`p`), to all orders; logits of
:math:`\pm\infty` give the exact limits with finite gradients.

``successes`` and ``trials`` must be non-negative integers (integer or float dtype) with
``successes <= trials``; anything else, and probabilities outside [0, 1], give NaN (value
and gradient) and a named ``nllax.checked`` error. ``trials`` is data: it is not
differentiated.

References:
  C. Loader, "Fast and Accurate Computation of Binomial Probabilities", 2000.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M
from nllax.bernoulli import PROBABILITY

__all__ = ["log_prob", "nll"]

_LOG_2PI = math.log(2.0 * math.pi)


def _log_pmf(k, n, p, q, log_p, log_q):
    """Loader's form inside (0 < k < n), the exact ends outside."""
    inner = (k > 0) & (k < n)
    one = jnp.ones((), k.dtype)
    ks = jnp.where(inner, k, one)
    ns = jnp.where(inner, n, 2 * one)
    ms = ns - ks
    log_n = jnp.log(ns)
    lp = (M.stirlerr(ns) - M.stirlerr(ks) - M.stirlerr(ms)
          - M.bd0(ks, ns * p, log_n + log_p) - M.bd0(ms, ns * q, log_n + log_q)
          - 0.5 * (_LOG_2PI + jnp.log(ks) + jnp.log(ms / ns)))
    at0 = M.xmul(n, log_q)  # n log q, and 0 for n = 0 whatever q
    atn = M.xmul(n, log_p)
    return jnp.where(inner, lp, jnp.where(k == 0, at0, atn))


def _dk_dn(k, n, log_p, log_q, dk, dn):
    """The (rarely needed) derivative in the counts: d/dk = psi(n-k+1) - psi(k+1) +
    log(p/q), d/dn = psi(n+1) - psi(n-k+1) + log q (of the continued log C(n, k))."""
    dg = jax.scipy.special.digamma
    return ((dg(n - k + 1) - dg(k + 1) + log_p - log_q) * dk
            + (dg(n + 1) - dg(n - k + 1) + log_q) * dn)


@jax.custom_jvp
def _lp_logits(k, n, z):
    return _log_pmf(k, n, jax.nn.sigmoid(z), jax.nn.sigmoid(-z), jax.nn.log_sigmoid(z),
                    jax.nn.log_sigmoid(-z))


@_lp_logits.defjvp
def _lp_logits_jvp(primals, tangents):
    k, n, z = primals
    dk, dn, dz = tangents
    out = _lp_logits(k, n, z)
    lp, lq = jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z)
    return out, (k - n * jax.nn.sigmoid(z)) * dz + _dk_dn(k, n, lp, lq, dk, dn)


@jax.custom_jvp
def _lp_probs(k, n, p):
    return _log_pmf(k, n, p, 1.0 - p, jnp.log(p), jnp.log1p(-p))


def _ratio(a, b):
    """``a / b`` with ``0 / b = 0`` for every ``b`` (an outcome that was not observed)."""
    zero = a == 0
    return jnp.where(zero, jnp.zeros((), a.dtype), a / jnp.where(zero, jnp.ones((), b.dtype), b))


@_lp_probs.defjvp
def _lp_probs_jvp(primals, tangents):
    k, n, p = primals
    dk, dn, dp = tangents
    out = _lp_probs(k, n, p)
    return out, ((_ratio(k, p) - _ratio(n - k, 1.0 - p)) * dp
                 + _dk_dn(k, n, jnp.log(p), jnp.log1p(-p), dk, dn))


def _log_prob(successes, trials, logits=None, probs=None):
    if probs is None:
        return _lp_logits(successes, trials, logits)
    return _lp_probs(successes, trials, probs)


def _fisher(trials, logits=None, probs=None):
    if probs is None:
        return {"logits": trials * jax.nn.sigmoid(logits) * jax.nn.sigmoid(-logits)}
    return {"probs": trials / (probs * (1.0 - probs))}


_AT_MOST_TRIALS = F.relation("must be <= `trials` (more successes than trials)")


def _relations(data, params, options):
    return [("successes", _AT_MOST_TRIALS, data <= params["trials"])]


family = F.Family(
    name="binomial",
    data=F.Data("successes", F.COUNTS),
    params=(
        F.Param("trials", F.COUNTS, doc="n, the number of trials (a non-negative integer)"),
        PROBABILITY,
    ),
    log_prob=_log_prob,
    fisher=_fisher,
    relations=_relations,
    summary="Binomial(trials, logits)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation binomial log-probability
    :math:`\log\binom{n}{k} + k\log p + (n-k)\log(1-p)`.

    Args:
      successes: :math:`k`, non-negative integer counts (integer or float dtype), any shape.
      trials: :math:`n \ge k`, non-negative integers, broadcastable to ``successes.shape``.
      logits: :math:`z = \log(p/(1-p))`, broadcastable to ``successes.shape``; or
      probs: :math:`p \in [0, 1]`. Exactly one of the two.

    Returns:
      Array of ``successes.shape``; NaN where ``successes`` or ``trials`` is not a
      non-negative integer, ``successes > trials``, or ``probs`` lies outside [0, 1].

    Example:
      >>> import nllax
      >>> round(float(nllax.binomial.log_prob(2.0, 4.0, logits=0.0)), 6)  # log(6 / 16)
      -0.980829
    """,
    "nll": r"""Binomial negative log-likelihood, reduced (``reduction``, ``weights``, ``where``
    as in :func:`nllax.gaussian.nll`, with the shape of ``successes``).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> k, n = jnp.array([0.0, 3.0, 10.0]), jnp.array([10.0, 10.0, 10.0])
      >>> bool(nllax.binomial.nll(k, n, probs=0.3) > 0)
      True
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)
