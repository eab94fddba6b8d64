r"""Huber likelihood: the density whose NLL is the Huber loss, normalised exactly.

.. math::

    \log p(y \mid \mu, s, \delta) = -\rho_\delta(z) - \log s - \log Z(\delta),
    \qquad z = \frac{y - \mu}{s},

    \rho_\delta(z) = \begin{cases} z^2/2 & |z| \le \delta \\
        \delta\,(|z| - \delta/2) & |z| > \delta \end{cases},
    \qquad
    Z(\delta) = \sqrt{2\pi}\,\bigl(2\Phi(\delta) - 1\bigr) + \frac{2}{\delta}e^{-\delta^2/2}.

:math:`\rho_\delta` is optax's ``huber_loss`` (quadratic inside :math:`\pm\delta`, linear
with slope :math:`\delta` outside, continuous with a continuous first derivative); the
normaliser is the Gaussian integral over :math:`[-\delta, \delta]` plus two exponential
tails. A Gaussian core with Laplace tails: :math:`\delta \to \infty` is the standard
normal (``delta=inf`` gives it exactly), :math:`\delta \to 0` a Laplace density of scale
:math:`s/\delta`. With one scale :math:`s` and :math:`\delta` over :math:`n = \sum w`
observations, since :math:`\rho_\delta(r/s) = \rho_{\delta s}(r)/s^2`,

.. math::

    \mathrm{NLL} = \frac{1}{s^2}\,\mathrm{huber}_{\delta s}(y, \mu) + n\log\bigl(s\,Z(\delta)\bigr)

(:data:`nllax.equivalences` ``["huber"]`` and ``["smooth_l1"]``).

Parameters: ``loc``; exactly one of ``scale`` (:math:`s > 0`, default 1), ``log_scale``,
``var`` (:math:`s^2`) or ``log_var``, as in :mod:`nllax.gaussian`; ``delta``
(:math:`\delta > 0`, keyword-only, default 1; ``+inf`` allowed). ``delta <= 0`` or NaN
gives NaN (value and gradient) and a ``nllax.checked`` error naming ``delta``.

Numerics. :math:`\rho_\delta(z) = q(|z| - q/2)` with :math:`q = \min(|z|, \delta)`: one
formula for both pieces, exact products, no branch whose derivative could leak a NaN.
:math:`\log Z` keeps its digits at both ends: for :math:`\delta < 1`,
:math:`\log(\delta Z) = \log 2 + \mathrm{log1p}\bigl(\mathrm{expm1}(-\delta^2/2) +
\delta\sqrt{\pi/2}\,\mathrm{erf}(\delta/\sqrt2)\bigr)` (the Laplace limit
:math:`\log(2/\delta)` comes out with no cancellation, also in the CDF's tail where
:math:`\log\delta` and :math:`\log Z` would cancel); for :math:`\delta \ge 1`,
:math:`\log Z = \tfrac12\log 2\pi + \mathrm{log1p}\bigl(\sqrt{2/\pi}\,e^{-\delta^2/2}/\delta
- \mathrm{erfc}(\delta/\sqrt2)\bigr)` (the Gaussian limit, small terms added to 1).
The CDF is closed form: below :math:`-\delta`,
:math:`F = e^{\delta z + \delta^2/2}/(\delta Z)`; inside,
:math:`F = [e^{-\delta^2/2}/\delta + \sqrt{2\pi}(\Phi(z) - \Phi(-\delta))]/Z`, the
difference of normal CDFs taken as a difference of ``erf`` near the centre and through
``log_ndtr`` further out (where both underflow in float32), and for :math:`\delta < 1` as
:math:`\log(\delta F Z) - \log(\delta Z)` (two small logs, where
:math:`\log(FZ) - \log Z` would cancel two logs of :math:`1/\delta`); the upper half by
symmetry, ``log1mexp`` of the lower half's log (:math:`F \le 1/2` there, so no digit is lost).
Expected information per observation for ``loc``:
:math:`\sqrt{2\pi}\,\mathrm{erf}(\delta/\sqrt2)/(Z s^2)` (the probability of the
quadratic zone over :math:`s^2`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M
from nllax.gaussian import NOISE

__all__ = ["log_prob", "nll", "log_cdf", "log_sf"]

_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_HALF_PI = 0.5 * math.log(0.5 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_RSQRT2 = 1.0 / math.sqrt(2.0)


@jax.custom_jvp
def rho(a, delta):
    """The Huber function of ``a = |z| >= 0``: ``a^2/2`` inside, ``delta (a - delta/2)``
    outside (``q (a - q/2)``, ``q = min(a, delta)``); derivatives ``q`` and ``a - q``.

    Written as one select with the derivatives given (``custom_jvp``): the program is then
    one elementwise loop feeding the sum, where ``q (a - q/2)`` split it in two buffers
    around the ``min`` (which XLA:CPU's reduction fusion does not absorb) and
    differentiating ``min`` added its tie-breaking compares and a divide."""
    return jnp.where(a <= delta, 0.5 * (a * a), delta * (a - 0.5 * delta))


@rho.defjvp
def _rho_jvp(primals, tangents):
    a, delta = primals
    da, dd = tangents
    q = jnp.minimum(a, delta)
    return rho(a, delta), q * da + (a - q) * dd


def log_normalizer(delta):
    """``(log Z(delta), log(delta Z(delta)))``, each accurate for tiny and huge delta."""
    small = delta < 1.0
    ds = jnp.where(small, delta, 0.5)  # each branch sees a harmless input where not taken
    dl = jnp.where(small, 1.0, delta)
    # delta < 1: delta Z = 2 [exp(-d^2/2) + d sqrt(pi/2) erf(d/sqrt2)]
    ldz_s = _LOG2 + jnp.log1p(jnp.expm1(-0.5 * jnp.square(ds))
                              + ds * _SQRT_HALF_PI * jax.lax.erf(ds * _RSQRT2))
    # delta >= 1: Z = sqrt(2 pi) [1 - erfc(d/sqrt2) + sqrt(2/pi) exp(-d^2/2) / d]
    lz_l = _HALF_LOG_2PI + jnp.log1p(_SQRT_2_OVER_PI * jnp.exp(-0.5 * jnp.square(dl)) / dl
                                     - jax.lax.erfc(dl * _RSQRT2))
    lz = jnp.where(small, ldz_s - jnp.log(ds), lz_l)
    ldz = jnp.where(small, ldz_s, lz_l + jnp.log(dl))
    return lz, ldz


def _log_prob(y, loc, scale, delta):
    z = scale.divide(y - loc)
    lz, _ = log_normalizer(delta)
    return F.Affine(-1.0, rho(M.abs_(z), delta), -(scale.log() + lz))


def _log_lower(w, delta):
    """``log F(w)`` for ``w <= 0`` (standardised), ``<= log(1/2)``."""
    lz, ldz = log_normalizer(delta)
    dt = w.dtype
    tiny = jnp.finfo(dt).tiny
    tail = w <= -delta
    # below -delta: F = exp(delta w + delta^2/2) / (delta Z)
    wt = jnp.where(tail, w, -delta)
    lt = delta * (wt + 0.5 * delta) - ldz
    # inside: F Z = exp(-delta^2/2)/delta + sqrt(2 pi) (Phi(w) - Phi(-delta))
    near = w >= -1.0
    wn = jnp.where(near & ~tail, w, 0.0)
    diff = jax.lax.erf(delta * _RSQRT2) - jax.lax.erf(-wn * _RSQRT2)  # 2 (Phi(w) - Phi(-d))
    t2_near = _LOG_SQRT_HALF_PI + jnp.log(jnp.maximum(diff, tiny))
    wf = jnp.where(near | tail, -1.0, w)
    lw = M.log_ndtr(wf)
    # Phi(-delta) / Phi(w) <= exp(-800) once delta >= 2|w| + 40: capping delta there
    # changes no digit, and keeps log_ndtr's derivative finite for a delta whose square
    # overflows (1e30 in float32)
    ld = M.log_ndtr(-jnp.minimum(delta, 2.0 * jnp.abs(wf) + 40.0))
    t2_far = _HALF_LOG_2PI + lw + M.log1mexp(jnp.minimum(ld - lw, -tiny))
    t1 = -0.5 * jnp.square(delta) - jnp.log(delta)
    lm = jnp.logaddexp(t1, jnp.where(near, t2_near, t2_far)) - lz
    # delta < 1 (then -delta < w <= 0 is near): log(delta F Z) - log(delta Z), both
    # small, where log(F Z) - log Z would cancel two logs of 1/delta
    small = delta < 1.0
    ds = jnp.where(small, delta, 0.5)
    ws = jnp.where(small & ~tail, w, 0.0)
    diff_s = jax.lax.erf(ds * _RSQRT2) - jax.lax.erf(-ws * _RSQRT2)
    ls = jnp.log1p(jnp.expm1(-0.5 * jnp.square(ds))
                   + ds * _SQRT_HALF_PI * jnp.maximum(diff_s, 0.0)) - ldz
    return jnp.where(tail, lt, jnp.where(small, ls, lm))


def _log_cdf_z(z, delta):
    # one evaluation at w = -|z| (written with `where`, so the derivative at z = 0 is the
    # lower half's), the upper half by symmetry: log(1 - F(-z))
    g = _log_lower(jnp.where(z <= 0, z, -z), delta)
    return jnp.where(z <= 0, g, M.log1mexp(g))


def _log_cdf(y, loc, scale, delta):
    return _log_cdf_z(scale.divide(y - loc), delta)


def _log_sf(y, loc, scale, delta):
    return _log_cdf_z(scale.divide(loc - y), delta)


def _fisher(loc, scale, delta):
    lz, _ = log_normalizer(delta)
    p_inside = jnp.exp(_HALF_LOG_2PI + jnp.log(jax.lax.erf(delta * _RSQRT2)) - lz)
    return {"loc": p_inside * scale.inverse() ** 2}


DELTA = F.Param("delta", F.POSITIVE, default=1.0, keyword_only=True,
                doc="the Huber threshold delta > 0 (in units of the scale)")

family = F.Family(
    name="huber",
    data=F.Data("y", F.REAL),
    params=(F.Param("loc", doc="location (mean, median and mode)"), NOISE, DELTA),
    log_prob=_log_prob,
    log_cdf=_log_cdf,
    log_sf=_log_sf,
    fisher=_fisher,
    summary="Huber(loc, scale, delta)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Huber log-density
    :math:`-\rho_\delta((y-\mu)/s) - \log s - \log Z(\delta)`.

    Args:
      y: observations, any shape; integer or bool data are promoted to float.
      loc: location :math:`\mu`, broadcastable to ``y.shape`` without enlarging it.
      scale: :math:`s > 0` (default 1); or exactly one of ``log_scale``, ``var``
        (:math:`s^2`), ``log_var``.
      delta: the threshold :math:`\delta > 0` of the standardised residual (keyword-only,
        default 1; ``inf`` is the Gaussian), scalar or broadcastable to ``y.shape``.

    Returns:
      Array of ``y.shape``; NaN where ``scale`` or ``delta`` is <= 0 or NaN.

    Example:
      >>> import math, nllax
      >>> z1 = math.sqrt(2 * math.pi) * math.erf(1 / math.sqrt(2)) + 2 * math.exp(-0.5)
      >>> abs(float(nllax.huber.log_prob(0.0, 0.0)) + math.log(z1)) < 1e-6  # at the mode: -log Z(1)
      True
      >>> float(nllax.huber.log_prob(3.0, 0.0, delta=1.0))  # -(3 - 1/2) - log Z(1)
      -3.5730...
    """,
    "nll": r"""Huber negative log-likelihood, reduced (``reduction``, ``weights``, ``where`` as
    in :func:`nllax.gaussian.nll`).

    :math:`\mathrm{NLL} = \sum_i w_i\left[\rho_\delta(r_i/s) + \log s + \log Z(\delta)\right]`;
    with one scale this is :math:`\mathrm{huber}_{\delta s}(y, \mu)/s^2 + n\log(sZ(\delta))`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y, mu = jnp.array([0.5, 4.0]), jnp.zeros(2)
      >>> lhs = nllax.huber.nll(y, mu, 2.0, delta=0.5)
      >>> rhs = nllax.equivalences["huber"].check(y, mu, scale=2.0, delta=0.5)
      >>> bool(abs(lhs - rhs.predicted) < 1e-5)
      True
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
log_cdf = _fns["log_cdf"]
log_sf = _fns["log_sf"]
F.register(__name__, family)
