r"""Gamma likelihood in the GLM parametrisation: mean :math:`\mu`, dispersion :math:`\phi`.

.. math::

    \log p(y \mid \mu, \phi) = (k - 1)\log y - \frac{y}{\mu\phi} - k\log(\mu\phi)
        - \log\Gamma(k), \qquad k = \frac1\phi,\ y > 0,

i.e. shape :math:`k = 1/\phi` and scale :math:`\mu\phi`
(``scipy.stats.gamma(a=1/phi, scale=mu*phi)``): :math:`E[y] = \mu`,
:math:`\mathrm{Var}[y] = \phi\mu^2`. The NLL is the gamma deviance over :math:`2\phi`
plus a term of the data and :math:`\phi` (:func:`nllax.losses.gamma_deviance`).

**Parameters**: exactly one of ``log_mean`` (:math:`\eta = \log\mu`, the usual link) or
``mean`` (:math:`\mu > 0`; ``mean = 1 / (X b)`` is the canonical inverse link), and
``dispersion`` :math:`\phi > 0` (keyword-only, required; scalar or per observation).
``y <= 0``, a NaN, ``mean <= 0`` or ``dispersion <= 0`` give NaN (value and gradient) and
a named error under :func:`nllax.checked`.

**Numerics**: the textbook form adds terms of size :math:`k\log k` to get a result of
order 1, so at :math:`\phi = 10^{-6}` float64 keeps only 9 digits and float32 none. We use
Loader's saddle-point decomposition (the same building blocks as
:mod:`nllax.poisson`):

.. math::

    \log p = -\log y + \tfrac12\log\frac{k}{2\pi} - \mathrm{stirlerr}(k)
        - k\,\bigl(x - 1 - \log x\bigr), \qquad x = y/\mu,

where :math:`\mathrm{stirlerr}(k) = \log\Gamma(k+1) - (k + \tfrac12)\log k + k -
\tfrac12\log 2\pi` (its asymptotic series from :mod:`nllax.poisson` for :math:`k > 15`,
:math:`\log\Gamma` directly below, where the terms are at most 40) and
:math:`x - 1 - \log x = \mathrm{bd0}(1, x) \ge 0` is Loader's deviance term (his series
in :math:`v = (1-x)/(1+x)` for :math:`x \in [1/2, 2]`, :math:`x - 1 - \log x` directly
beyond, where it cancels at most 3.6-fold: :func:`ratio_deviance`). Every term is no larger
than the result's own conditioning.

``log_cdf`` / ``log_sf`` are :math:`\log P(k, kx)` and :math:`\log Q(k, kx)`
(``jax.scipy.special.gammainc`` / ``gammaincc``), each taken as ``log1p(-other)`` where it
is above 1/2. They are differentiable in ``y`` (the derivative is the density) and in the
mean; JAX differentiates ``gammainc`` in its shape argument too (so in ``dispersion``),
but less accurately than the density (a series in the shape), and XLA's incomplete gamma
is slow and less accurate for shapes above ~1e4 (dispersion below 1e-4).

Expected (Fisher) information per observation: :math:`1/\phi` for ``log_mean``,
:math:`1/(\phi\mu^2)` for ``mean``.

References:
  C. Loader, "Fast and Accurate Computation of Binomial Probabilities", 2000.
  P. McCullagh and J. A. Nelder, *Generalized Linear Models*, 2nd ed., 1989, ch. 8.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaincc

from nllax import _family as F
from nllax import _math as M

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# Loader's stirlerr(k) = log Gamma(k+1) - (k + 1/2) log k + k - log(2 pi)/2, real k > 0
stirlerr = M.stirlerr_real


# terms of Loader's series sum_j v^(2j+1) / (2j+1) kept for |v| <= 1/3 (x in [1/2, 2]):
# the first neglected one is below (1/9)^J of the leading term: J = 9 gives 2.6e-9
# (float32, eps 1.2e-7), J = 18 gives 6.6e-18 (float64, eps 2.2e-16)
_RATIO_TERMS = {2: 9, 4: 9, 8: 18}


def ratio_deviance(x, log_x, times=1.0, finish=None):
    r""":math:`x - 1 - \log x \ge 0` without cancellation near :math:`x = 1`: Loader's
    ``bd0(1, x)`` series, :math:`(1 - x)v + 2\sum_{j\ge1} v^{2j+1}/(2j+1)`,
    :math:`v = (1-x)/(1+x)`, for :math:`x \in [1/2, 2]` (:math:`|v| \le 1/3`; ``1 - x``
    exact there, every term positive but the sum's, which is at most 1/9 of the first);
    :math:`x - 1 - \log x` with the given ``log_x`` beyond (cancellation at most 3.6x at
    the ends). Two branches and a select last: one elementwise loop on XLA:CPU (the
    three-branch form, with ``u - log1p(u)`` between, split into several buffers).
    ``times`` (a Python number: 2 for the deviance) multiplies both branches before that
    select, and ``finish`` (a function, elementwise) is applied to both, for the same
    reason: arithmetic after the select is left to XLA:CPU's reduction fusion, which wrote
    each constant it met (the 2 of ``2 * ratio_deviance(...)``, the 1/2 and log(2 pi)/2
    of the log-density) out as an n-sized buffer, and took every operand of the sum from
    a buffer of its own. Both give the same value, element by element, as applying them
    after the select."""
    mid = (x >= 0.5) & (x <= 2.0)
    # x where the series is used (strictly inside the clamp: derivative 1 there), a
    # harmless value elsewhere. Not where(mid, x, 1): the compare then had two users and
    # XLA:CPU wrote it out as an n-sized buffer of its own
    xs = jax.lax.clamp(jnp.asarray(0.25, x.dtype), x, jnp.asarray(4.0, x.dtype))
    d = 1.0 - xs
    v = d / (1.0 + xs)
    v2 = v * v
    poly = jnp.zeros((), x.dtype)
    for j in range(_RATIO_TERMS[jnp.dtype(x.dtype).itemsize], 0, -1):
        poly = poly * v2 + 1.0 / (2 * j + 1)
    series = d * v + 2.0 * v * v2 * poly
    direct = (x - 1.0) - log_x
    if times != 1.0:
        series, direct = times * series, times * direct
    if finish is not None:
        series, direct = finish(series), finish(direct)
    return jnp.where(mid, series, direct)


def _ratio(y, mean):
    """``x = y / mu`` and ``log x``."""
    return mean.divide(y), jnp.log(y) - mean.log()


def _log_prob(y, mean, dispersion):
    x, log_x = _ratio(y, mean)
    k = 1.0 / dispersion
    rest = -jnp.log(y) - 0.5 * jnp.log(dispersion) - _HALF_LOG_2PI - stirlerr(k)
    # the whole term inside the deviance's final select (see ratio_deviance): 17 -> 14
    # passes over n, 9.0 -> 6.0 n of temporaries (value and gradient, n = 1e5)
    return ratio_deviance(x, log_x, finish=lambda rd: rest - rd / dispersion)


def _cdf_parts(y, mean, dispersion):
    x, _ = _ratio(y, mean)
    k = 1.0 / dispersion
    z = x / dispersion
    return gammainc(k, z), gammaincc(k, z)


def _log_cdf(y, mean, dispersion):
    p, q = _cdf_parts(y, mean, dispersion)
    low = p < 0.5
    return jnp.where(low, jnp.log(jnp.where(low, p, 1.0)), jnp.log1p(-jnp.where(low, 0.0, q)))


def _log_sf(y, mean, dispersion):
    p, q = _cdf_parts(y, mean, dispersion)
    low = q < 0.5
    return jnp.where(low, jnp.log(jnp.where(low, q, 1.0)), jnp.log1p(-jnp.where(low, 0.0, p)))


def _fisher(mean, dispersion):
    if mean.kind == "log":
        return {"log_mean": jnp.broadcast_to(1.0 / dispersion, jnp.shape(mean.v))}
    return {"mean": 1.0 / (dispersion * jnp.square(mean.v))}


MEAN = F.MEAN
"""The mean group of the positive GLM families (gamma, inverse Gaussian, Tweedie)."""

DISPERSION = F.Param("dispersion", F.POSITIVE, keyword_only=True, doc="phi > 0")

family = F.Family(
    name="gamma",
    data=F.Data("y", F.POSITIVE),
    params=(MEAN, DISPERSION),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    summary="Gamma(mean, dispersion)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation gamma log-density with mean :math:`\mu` and dispersion
    :math:`\phi` (shape :math:`1/\phi`, scale :math:`\mu\phi`).

    Args:
      y: positive observations, any shape.
      log_mean: :math:`\log\mu`, broadcastable to ``y.shape``; or
      mean: :math:`\mu > 0`. Exactly one of the two.
      dispersion: :math:`\phi > 0`, scalar or broadcastable to ``y.shape``.

    Returns:
      Array of ``y.shape``; NaN where ``y <= 0``, ``mean <= 0`` or ``dispersion <= 0``.

    Example:
      >>> import nllax
      >>> float(nllax.gamma.log_prob(1.0, mean=1.0, dispersion=1.0))  # Exp(1): -1
      -1.0...
    """,
    "nll": r"""Gamma negative log-likelihood, reduced (``reduction``, ``weights``, ``where`` as
    in :func:`nllax.gaussian.nll`).""",
    "log_cdf": r""":math:`\log P(Y \le y)` (regularized lower incomplete gamma), accurate in
    both tails; differentiable in ``y`` and the mean (see the module docstring).""",
    "log_sf": r""":math:`\log P(Y > y)` (regularized upper incomplete gamma).""",
})
log_prob, nll, log_cdf, log_sf = (_fns[k] for k in ("log_prob", "nll", "log_cdf", "log_sf"))
F.register(__name__, family)
