r"""The GLM deviances as losses, each with its exact equivalence row (re-exported by
:mod:`nllax.losses`).

The deviance of a GLM is twice the log-likelihood ratio of the saturated model (each
mean equal to its observation) to the fitted one, so with unit dispersion

.. math::

    \mathrm{NLL} = \tfrac12\,D + b,\qquad b = -\ell_{\rm sat} = -\sum_i w_i\log p(y_i \mid
    \hat\mu_i = y_i),

an exact affine relation with :math:`a = 1/2` and :math:`b` free of the model:

* Poisson: :math:`D = 2\sum_i w_i\,[k_i\log(k_i/\mu_i) - (k_i - \mu_i)]`,
  :math:`b = \sum_i w_i\,(k_i - k_i\log k_i + \log k_i!)`;
* binomial: :math:`D = 2\sum_i w_i\,[k_i\log\frac{k_i}{n_i p_i} + (n_i - k_i)
  \log\frac{n_i - k_i}{n_i (1 - p_i)}]`,
  :math:`b = -\sum_i w_i\,[\log\binom{n_i}{k_i} + k_i\log\frac{k_i}{n_i} + (n_i - k_i)
  \log\frac{n_i - k_i}{n_i}]`.

Argument convention (as :func:`nllax.losses.poisson`): data first, then the prediction on
the scale of the canonical link: ``poisson_deviance(counts, log_rate)`` with
:math:`\eta = \log\mu`, ``binomial_deviance(successes, trials, logits)`` with
:math:`z = \log(p/(1-p))` (for a mean or a probability from another link, pass
``jnp.log(mu)`` or ``nllax.links.logit.link(p)``). The scikit-learn functions
``mean_poisson_deviance(y_true, y_pred)`` take the mean itself and average.

Numerics: each observation's term is Loader's :math:`\mathrm{bd0}(k, \mu) = k\log(k/\mu)
+ \mu - k \ge 0` (:mod:`nllax._math`): :math:`D_i = 2\,\mathrm{bd0}(k_i, \mu_i)` for
Poisson, :math:`2\,[\mathrm{bd0}(k, np) + \mathrm{bd0}(n-k, nq)]` for the binomial (the
linear terms cancel exactly), so a good fit (:math:`k \approx \mu`) gives a small deviance
with all its digits, where the textbook difference cancels. The saturated log-likelihoods
in :math:`b` are Loader's forms with the ``bd0`` terms 0. Derivatives are written out:
:math:`2(\mu - k)` in :math:`\eta`, :math:`2(np - k)` in :math:`z`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

import nllax.binomial
import nllax.poisson
from nllax import _equivalences as E
from nllax import _family as F
from nllax import _math as M
from nllax import _reduce as R

__all__ = ["poisson_deviance", "binomial_deviance"]

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------
# Poisson


@jax.custom_jvp
def _poisson_dev(k, eta):
    return M.bd0(k, jnp.exp(eta), eta, times=2.0)


@_poisson_dev.defjvp
def _poisson_dev_jvp(primals, tangents):
    k, eta = primals
    dk, deta = tangents
    pos = k > 0
    log_k = jnp.log(jnp.where(pos, k, jnp.ones((), k.dtype)))
    return _poisson_dev(k, eta), (2.0 * (jnp.exp(eta) - k) * deta
                                  + 2.0 * jnp.where(pos, log_k - eta, 0.0) * dk)


_POISSON_DEV = F.Family(
    name="poisson_deviance", data=F.Data("counts", F.COUNTS),
    params=(F.Param("log_rate", doc="eta = log(mu)"),),
    log_prob=lambda counts, log_rate: _poisson_dev(counts, log_rate), sign=+1,
    register=False, qualname="nllax.losses.poisson_deviance", summary="Poisson deviance")

poisson_deviance = F.loss(_POISSON_DEV, r"""Poisson deviance :math:`2\sum_i w_i\,[k_i\log(k_i/\mu_i) - (k_i - \mu_i)]`, :math:`\mu = e^\eta`.

    Args:
      counts: non-negative integer counts (integer or float dtype).
      log_rate: :math:`\eta = \log\mu` (the canonical link), broadcastable to
        ``counts.shape``.
      reduction, weights, where: as in :func:`nllax.gaussian.nll` (default ``"sum"``).

    Returns:
      The deviance (``reduction="none"``: per observation, :math:`2\,\mathrm{bd0}(k, \mu)
      \ge 0`). Poisson: :math:`\mathrm{NLL} = D/2 + \sum_i w_i(k_i - k_i\log k_i + \log
      k_i!)`. Gradient in :math:`\eta`: :math:`2(\mu - k)`. Counts must be non-negative
      integers (NaN otherwise).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.losses.poisson_deviance(jnp.array([2.0, 0.0]), jnp.log(jnp.array([2.0, 1.0]))))
      2.0
    """)


def _log_factorial_terms(k):
    """log k! - k log k + k = stirlerr(k) + log(2 pi k) / 2 (k > 0; 0 at k = 0): the
    negated saturated Poisson log-likelihood, each term positive, no cancellation."""
    pos = k > 0
    ks = jnp.where(pos, k, jnp.ones((), k.dtype))
    return jnp.where(pos, M.stirlerr(ks) + 0.5 * (_LOG_2PI + jnp.log(ks)), 0.0)


def _half(y, *, weights=None, where=None, **_):
    return 0.5 * E.one(y, weights=weights, where=where)


def _poisson_b(counts, *, weights=None, where=None):
    dt = E._dtype(counts, weights)
    k = jnp.asarray(counts).astype(dt)
    return R.reduce(_log_factorial_terms(k), reduction="sum", weights=weights,
                    mask=R.as_mask(where, k.shape, E._FN), fn=E._FN)


E.register(E.Equivalence(
    lambda counts, log_rate, *, weights=None, where=None: nllax.poisson.nll(
        counts, log_rate=log_rate, weights=weights, where=where),
    poisson_deviance, _half, _poisson_b, "poisson_deviance", "Poisson(log-rate)", (),
    "a = 1/2, b = sum(k - k log k + log k!)"))


# ----------------------------------------------------------------------------------------
# binomial


def _binomial_dev_value(k, n, z):
    log_n = jnp.log(n)
    return (M.bd0(k, n * jax.nn.sigmoid(z), log_n + jax.nn.log_sigmoid(z), times=2.0)
            + M.bd0(n - k, n * jax.nn.sigmoid(-z), log_n + jax.nn.log_sigmoid(-z), times=2.0))


@jax.custom_jvp
def _binomial_dev(k, n, z):
    return _binomial_dev_value(k, n, z)


@_binomial_dev.defjvp
def _binomial_dev_jvp(primals, tangents):
    k, n, z = primals
    dk, dn, dz = tangents
    # in the counts (rarely wanted): d/dk = 2 (log(k/(n-k)) - z), d/dn = 2 log((n-k)/(n q))
    one = jnp.ones((), k.dtype)
    lk = jnp.log(jnp.where(k > 0, k, one))
    m = n - k
    lm = jnp.log(jnp.where(m > 0, m, one))
    ln = jnp.log(jnp.where(n > 0, n, one))
    d_k = jnp.where((k > 0) & (m > 0), 2.0 * (lk - lm - z), 0.0)
    d_n = jnp.where(m > 0, 2.0 * (lm - ln - jax.nn.log_sigmoid(-z)), 0.0)
    return (_binomial_dev(k, n, z),
            2.0 * (n * jax.nn.sigmoid(z) - k) * dz + d_k * dk + d_n * dn)


_AT_MOST_TRIALS = F.relation("must be <= `trials` (more successes than trials)")

_BINOMIAL_DEV = F.Family(
    name="binomial_deviance", data=F.Data("successes", F.COUNTS),
    params=(F.Param("trials", F.COUNTS, doc="n, the number of trials"),
            F.Param("logits", doc="z = log(p / (1 - p))")),
    log_prob=lambda successes, trials, logits: _binomial_dev(successes, trials, logits),
    relations=lambda data, params, options: [
        ("successes", _AT_MOST_TRIALS, data <= params["trials"])],
    sign=+1, register=False, qualname="nllax.losses.binomial_deviance",
    summary="binomial deviance")

binomial_deviance = F.loss(_BINOMIAL_DEV, r"""Binomial deviance :math:`2\sum_i w_i\,[k_i\log\frac{k_i}{n_i p_i} + (n_i-k_i)\log\frac{n_i-k_i}{n_i(1-p_i)}]`, :math:`p = \sigma(z)`.

    Args:
      successes: :math:`k`, non-negative integers.
      trials: :math:`n \ge k`, non-negative integers, broadcastable to ``successes.shape``.
      logits: :math:`z = \log(p/(1-p))` (the canonical link), broadcastable likewise.
      reduction, weights, where: as in :func:`nllax.gaussian.nll` (default ``"sum"``).

    Returns:
      The deviance; binomial: :math:`\mathrm{NLL} = D/2 - \ell_{\rm sat}`. Gradient in
      :math:`z`: :math:`2(np - k)`. Invalid counts or ``successes > trials`` give NaN.

    Example:
      >>> import nllax
      >>> float(nllax.losses.binomial_deviance(2.0, 4.0, 0.0))  # p = k / n: a perfect fit
      0.0
    """)


def _binomial_saturated(k, n):
    """-log p(k | n, p = k / n): Loader's form with the bd0 terms 0 (0 at k = 0, n)."""
    inner = (k > 0) & (k < n)
    one = jnp.ones((), k.dtype)
    ks = jnp.where(inner, k, one)
    ns = jnp.where(inner, n, 2 * one)
    ms = ns - ks
    lp = (M.stirlerr(ns) - M.stirlerr(ks) - M.stirlerr(ms)
          - 0.5 * (_LOG_2PI + jnp.log(ks) + jnp.log(ms / ns)))
    return jnp.where(inner, -lp, 0.0)


def _binomial_b(successes, *, trials, weights=None, where=None):
    dt = E._dtype(successes, trials, weights)
    k = jnp.asarray(successes).astype(dt)
    n = jnp.broadcast_to(jnp.asarray(trials).astype(dt), k.shape)
    return R.reduce(_binomial_saturated(k, n), reduction="sum", weights=weights,
                    mask=R.as_mask(where, k.shape, E._FN), fn=E._FN)


E.register(E.Equivalence(
    lambda successes, logits, *, trials, weights=None, where=None: nllax.binomial.nll(
        successes, trials, logits=logits, weights=weights, where=where),
    binomial_deviance, _half, _binomial_b, "binomial_deviance", "Binomial(trials, logits)",
    ("trials",), "a = 1/2, b = -(saturated log-likelihood)", data=("trials",)))
