r"""Negative binomial likelihood, mean-parametrised (NB2 and NB1 count regressions).

With mean :math:`\mu` and size :math:`r`,

.. math::

    \log p(k \mid \mu, r) = \log\frac{\Gamma(k + r)}{\Gamma(r)\,k!}
        + r\log\frac{r}{r + \mu} + k\log\frac{\mu}{r + \mu},

and the size set by the dispersion :math:`\alpha > 0` and ``variance``:

* ``variance="nb2"`` (default): :math:`r = 1/\alpha`, variance :math:`\mu + \alpha\mu^2`
  (statsmodels' ``NegativeBinomial(loglike_method="nb2")`` and GLM ``NegativeBinomial``;
  :math:`\alpha = 1` is the geometric distribution);
* ``variance="nb1"``: :math:`r = \mu/\alpha`, variance :math:`\mu(1 + \alpha)`.

In SciPy's terms it is ``nbinom(n=r, p=r/(r+mu))``. The mean is given as ``log_mean``
(:math:`\eta = \log\mu`, the log link) or ``mean``; as :math:`\alpha \to 0` the
distribution tends to Poisson(:math:`\mu`), and the value does too, with no cancellation.
Expected information (``nb2``): :math:`\mu/(1 + \alpha\mu)` for ``log_mean``,
:math:`1/(\mu(1 + \alpha\mu))` for ``mean``.

Numerics: the textbook form subtracts log-gamma terms that grow like :math:`r\log r`
(at :math:`\alpha = 10^{-8}`, :math:`r = 10^8`: terms of 2e9 for an answer of -2, no digit
left in float32) and like :math:`k\log k` for large counts. We use Loader's form as R's
``dnbinom_mu`` does: with :math:`n = k + r`, :math:`p = r/(r+\mu) = 1/(1+x)`,
:math:`q = x/(1+x)`, :math:`x = \mu/r`,

.. math::

    \log p(k) = \mathrm{stirlerr}(n) - \mathrm{stirlerr}(r) - \mathrm{stirlerr}(k)
        - \mathrm{bd0}(r, np) - \mathrm{bd0}(k, nq)
        - \tfrac12\log\big(2\pi k\,(1 + k/r)\big)\qquad(k > 0),

and :math:`\log p(0) = -r\,\mathrm{log1p}(x)`. Every term is bounded by the result (as
:math:`r \to \infty`, :math:`\mathrm{bd0}(r, np) \to 0` and the rest is the Poisson
saddle-point form). ``stirlerr`` of the real size is exact at integers, a series from 16
and ``lgamma``-based below. Derivatives are written out in :math:`(x, r)`:
:math:`\partial_t = kp - rq` (:math:`t = \log x`),
:math:`\partial_r = \psi(k+r) - \psi(r) + \log p`; the chain
rule to :math:`\eta` and :math:`\alpha` is JAX's. The odds :math:`x = \mu/r` enter as
:math:`\alpha\mu` (``nb2``) or :math:`\alpha` (``nb1``) directly, not through
:math:`\log\alpha + \eta`, whose rounding would cost :math:`|\log\alpha|` eps. For ``nb2`` the derivative in
:math:`\eta` is :math:`(k - \mu)/(1 + \alpha\mu)` to rounding; the one in :math:`\alpha`
combines terms of size :math:`|k-\mu|/\alpha` into a result of size :math:`(k-\mu)^2`,
losing about :math:`\log_{10}(1/\alpha)` digits as :math:`\alpha \to 0`.

Counts must be non-negative integers; the mean must be > 0 and the dispersion > 0;
anything else gives NaN (value and gradient) and a named ``nllax.checked`` error.

References:
  C. Loader, "Fast and Accurate Computation of Binomial Probabilities", 2000.
  A. C. Cameron and P. K. Trivedi, "Regression Analysis of Count Data", 2013 (NB1, NB2).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M

__all__ = ["log_prob", "nll"]

_LOG_2PI = math.log(2.0 * math.pi)


def _log_pq(x):
    """``(log p, log q)`` with ``p = 1 / (1 + x)``, ``q = x / (1 + x)``, accurate for small
    and large ``x``."""
    lp = -jnp.log1p(x)
    big = x > 1
    xs = jnp.where(big, x, jnp.ones((), x.dtype))
    xl = jnp.where(big, jnp.ones((), x.dtype), x)
    return lp, jnp.where(big, -jnp.log1p(1.0 / xs), jnp.log(xl) + lp)


@jax.custom_jvp
def _core(k, x, r):
    """log p(k) with size ``r`` and odds ``x = mu / r`` (``q = x / (1 + x)``)."""
    pos = k > 0
    one = jnp.ones((), k.dtype)
    ks = jnp.where(pos, k, one)
    n = ks + r
    log_n = jnp.log(n)
    log_p, log_q = _log_pq(x)
    lp = (M.stirlerr_real(n) - M.stirlerr_real(r) - M.stirlerr(ks)
          - M.bd0(r, n / (1.0 + x), log_n + log_p)
          - M.bd0(ks, n / (1.0 + 1.0 / x), log_n + log_q)
          - 0.5 * (_LOG_2PI + jnp.log(ks) + jnp.log1p(ks / r)))
    return jnp.where(pos, lp, -r * jnp.log1p(x))


@_core.defjvp
def _core_jvp(primals, tangents):
    k, x, r = primals
    dk, dx, dr = tangents
    dg = jax.scipy.special.digamma
    out = _core(k, x, r)
    log_p, log_q = _log_pq(x)
    # d/dx = (k - r x) / (x (1 + x)), with k / x taken as 0 for k = 0
    pos = k > 0
    k_over_x = jnp.where(pos, k / jnp.where(pos, x, jnp.ones((), x.dtype)), 0.0)
    d_x = (k_over_x - r) / (1.0 + x)
    d_r = dg(k + r) - dg(r) + log_p
    d_k = dg(k + r) - dg(k + 1.0) + log_q
    return out, d_x * dx + d_r * dr + d_k * dk


def _log_prob(counts, mean, dispersion, variance="nb2"):
    if variance == "nb2":  # r = 1 / alpha, x = mu / r = alpha mu
        return _core(counts, dispersion * mean.value(), 1.0 / dispersion)
    # nb1: r = mu / alpha, x = alpha
    return _core(counts, jnp.broadcast_to(dispersion, jnp.shape(mean.v)),
                 mean.value() / dispersion)


def _fisher(mean, dispersion, variance="nb2"):
    if variance != "nb2":
        return {}  # no closed form (a series in the trigamma function)
    mu = mean.value()
    info = mu / (1.0 + dispersion * mu)
    return {"log_mean": info} if mean.kind == "log" else {"mean": info / jnp.square(mu)}


family = F.Family(
    name="negative_binomial",
    data=F.Data("counts", F.COUNTS),
    params=(
        F.MEAN,
        F.Param("dispersion", F.POSITIVE, keyword_only=True,
                doc="alpha > 0: variance mu + alpha mu^2 (nb2) or mu (1 + alpha) (nb1)"),
    ),
    options=(F.Option("variance", "nb2", ("nb2", "nb1"),
                      doc="'nb2': size 1/alpha; 'nb1': size mu/alpha"),),
    log_prob=_log_prob,
    fisher=_fisher,
    summary="NegativeBinomial(log_mean, dispersion)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation negative binomial log-probability (mean :math:`\mu`,
    dispersion :math:`\alpha`).

    Args:
      counts: non-negative integer counts (integer or float dtype), any shape.
      log_mean: :math:`\eta = \log\mu`, broadcastable to ``counts.shape``; or
      mean: :math:`\mu > 0`. Exactly one of the two.
      dispersion: :math:`\alpha > 0`, broadcastable to ``counts.shape``.
      variance: ``"nb2"`` (variance :math:`\mu + \alpha\mu^2`, size :math:`1/\alpha`) or
        ``"nb1"`` (variance :math:`\mu(1+\alpha)`, size :math:`\mu/\alpha`); static.

    Returns:
      Array of ``counts.shape``; NaN for invalid counts, a mean or dispersion <= 0 or NaN.

    Example:
      >>> import math, nllax
      >>> # alpha = 1 is the geometric distribution: p(0) = 1 / (1 + mu)
      >>> round(float(nllax.negative_binomial.log_prob(0, mean=3.0, dispersion=1.0)), 6)
      -1.386294
      >>> round(math.log(1 / 4), 6)
      -1.386294
    """,
    "nll": r"""Negative binomial negative log-likelihood, reduced (``reduction``,
    ``weights``, ``where`` as in :func:`nllax.gaussian.nll`, with the shape of ``counts``).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> k = jnp.array([0.0, 2.0, 7.0])
      >>> bool(nllax.negative_binomial.nll(k, log_mean=1.0, dispersion=0.5, variance="nb1") > 0)
      True
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)
