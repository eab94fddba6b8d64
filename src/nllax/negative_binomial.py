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
and ``lgamma``-based below. The odds :math:`x = \mu/r` enter as
:math:`\alpha\mu` (``nb2``) or :math:`\alpha` (``nb1``) directly, not through
:math:`\log\alpha + \eta`, whose rounding would cost :math:`|\log\alpha|` eps.

Derivatives (``nb2``) are written out in :math:`(\mu, \alpha)`:
:math:`\partial_\mu = (k - \mu)/(\mu(1 + \alpha\mu))` and

.. math::

    \partial_\alpha \log p = r^2\Big[\log\big(1 + \tfrac{\mu}{r}\big)
        + \frac{k - \mu}{r + \mu} - \big(\psi(k + r) - \psi(r)\big)\Big]
        \;\to\; \tfrac12\big((k - \mu)^2 - k\big) \quad (\alpha \to 0),

evaluated for :math:`r \ge 8` from the asymptotic series of :math:`\psi` with every
cancelling pair taken in closed form (``_nb2_dalpha``), so it keeps full precision down
to the Poisson limit (a 150-digit reference in tests/test_negative_binomial_dispersion.py,
:math:`\alpha` from 2 to 1e-30). The chain rule through :math:`(x, r)` combines two
terms of size :math:`|k - \mu|/\alpha` into one of size :math:`(k - \mu)^2` and
subtracts two digammas of size :math:`\log r`: it gave no correct digit from
:math:`\alpha = 10^{-4}` in float32 and :math:`10^{-8}` in float64. ``nb1`` keeps the
derivatives in :math:`(x, r)`: :math:`\partial_t = kp - rq` (:math:`t = \log x`),
:math:`\partial_r = \psi(k+r) - \psi(r) + \log p`, with JAX's chain rule, and so loses
digits like that as :math:`\alpha \to 0`.

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
from jax.custom_derivatives import SymbolicZero

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
    return out, d_x * dx + d_r * dr + _d_counts(k, r, log_q) * dk


def _d_counts(k, r, log_q):
    """``d log p / d k`` (the counts as a real argument): ``psi(k + r) - psi(k + 1) + log q``."""
    dg = jax.scipy.special.digamma
    return dg(k + r) - dg(k + 1.0) + log_q


# psi(z) ~ log z - 1/(2z) - sum_n c_n z^(-2n), c_n = B_2n / (2n) (Bernoulli numbers)
_PSI_C = (1.0 / 12.0, -1.0 / 120.0, 1.0 / 252.0, -1.0 / 240.0, 1.0 / 132.0,
          -691.0 / 32760.0, 1.0 / 12.0, -3617.0 / 8160.0, 43867.0 / 14364.0,
          -174611.0 / 6600.0, 854513.0 / 3036.0, -236364091.0 / 65520.0)
# The size above which the alpha-derivative uses the expansion: its first omitted term,
# c_13 r^-26 against c_1 r^-2 (c_13 = B_26 / 26 = 54827), is 6.6e5 r^-24: 1.4e-16 at
# r = 8 (the series diverges only beyond n ~ pi r). Below, the direct form: r^2 (<= 64)
# times the rounding of psi(k + r) and psi(r).
_R_ASYM = 8.0


def _phi(d):
    """``(d - log1p(d)) / d**2`` for ``d > -1``, accurate near 0 (where it is 1/2):
    with ``v = d / (2 + d)``, ``log1p(d) = 2 atanh(v)``, so
    ``phi = (1 - v) / 2 - (1 - v)**2 v T(v**2) / 2``, ``T(w) = sum_m w**(m-1) / (2m + 1)``
    (no cancellation for ``|v| <= 1/3``, i.e. ``-1/2 <= d <= 1``); the plain quotient
    outside, where ``d - log1p(d)`` does not cancel by more than a factor 3.3."""
    near = (d >= -0.5) & (d <= 1.0)
    dn = jnp.clip(d, -0.5, 1.0)
    v = dn / (2.0 + dn)
    w = v * v
    t = jnp.zeros_like(w)
    for m in range(17, 0, -1):  # w <= 1/9: 17 terms reach 1e-17
        t = t * w + 1.0 / (2 * m + 1)
    series = 0.5 * (1.0 - v) - 0.5 * jnp.square(1.0 - v) * v * t
    df = jnp.where(near, 2.0, d)
    return jnp.where(near, series, (df - jnp.log1p(df)) / (df * df))


def _nb2_dalpha(k, mu, r):
    r"""``d log p / d alpha`` of NB2 (``r = 1 / alpha``) without the cancellation of the
    chain rule through ``(x, r)``, which combines two terms of size ``|k - mu| / alpha``
    into one of size ``(k - mu)**2`` and takes ``psi(k + r) - psi(r)`` as a difference of
    two numbers of size ``log r`` (garbage from alpha = 1e-4 in float32, 1e-8 in float64).

    Exactly ``r**2 [log1p(mu/r) + (k - mu)/(r + mu) - (psi(k + r) - psi(r))]``. For
    ``r >= 8``, with the asymptotic series of psi and ``d = (k - mu)/(r + mu)``:
    ``(r d)**2 phi(d) - k r / (2 (r + k)) - u sum_n c_n r**(2 - 2n) P_n(t)``,
    ``u = k / (r + k)``, ``t = r / (r + k)``, ``P_n(t) = sum_{j < 2n} t**j`` (from
    ``r**(-2n) - (r + k)**(-2n) = r**(-2n) u P_n(t)``): every term without cancellation,
    tending to ``((k - mu)**2 - k) / 2`` as ``r -> inf``, and no intermediate that
    overflows or underflows for tiny alpha. Below ``r = 8`` the direct form."""
    big = r >= _R_ASYM
    ra = jnp.where(big, r, _R_ASYM)
    rk = ra + k
    u = k / rk
    t = ra / rk
    d = (k - mu) / (ra + mu)
    rd = (k - mu) * (ra / (ra + mu))
    tail = jnp.zeros_like(t)
    inv2 = 1.0 / (ra * ra)
    p = 1.0 + t  # P_1
    tp = t * t  # t^(2n)
    scale = jnp.ones_like(inv2)  # r^(2 - 2n)
    for c in _PSI_C:
        tail = tail + c * scale * p
        p = p + tp * (1.0 + t)
        tp = tp * t * t
        scale = scale * inv2
    asym = jnp.square(rd) * _phi(d) - k * (ra / (2.0 * rk)) - u * tail
    dg = jax.scipy.special.digamma
    rs = jnp.where(big, 1.0, r)  # the direct form's r, safe where it is not selected
    direct = jnp.square(rs) * (jnp.log1p(mu / rs) + (k - mu) / (rs + mu)
                               - (dg(k + rs) - dg(rs)))
    return jnp.where(big, asym, direct)


@jax.custom_jvp
def _nb2(k, mu, alpha):
    """NB2 log p(k) in ``(mu, alpha)``, the derivatives written out (see
    :func:`_nb2_dalpha`); ``d/d mu = (k - mu) / (mu (1 + alpha mu))``."""
    return _core(k, alpha * mu, 1.0 / alpha)


def _nb2_jvp(primals, tangents):
    # Symbolic zeros: only the derivatives a call asks for are computed (a gradient in the
    # mean alone pays neither the alpha series nor the two digammas of the counts).
    k, mu, alpha = primals
    dk, dmu, dalpha = tangents
    out = _nb2(k, mu, alpha)
    tan = jnp.zeros_like(out)
    if type(dmu) is not SymbolicZero:
        tan = tan + (k - mu) / (mu * (1.0 + alpha * mu)) * dmu
    if type(dalpha) is not SymbolicZero:
        tan = tan + _nb2_dalpha(k, mu, 1.0 / alpha) * dalpha
    if type(dk) is not SymbolicZero:
        tan = tan + _d_counts(k, 1.0 / alpha, _log_pq(alpha * mu)[1]) * dk
    return out, tan


_nb2.defjvp(_nb2_jvp, symbolic_zeros=True)


def _log_prob(counts, mean, dispersion, variance="nb2"):
    if variance == "nb2":  # r = 1 / alpha, x = mu / r = alpha mu
        mu = mean.value()
        shape = jnp.broadcast_shapes(jnp.shape(counts), jnp.shape(mu), jnp.shape(dispersion))
        return _nb2(*(jnp.broadcast_to(a, shape) for a in (counts, mu, dispersion)))
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
