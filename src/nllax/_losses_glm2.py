r"""The gamma and Tweedie deviances, and their rows in :data:`nllax.equivalences`.

Both take the data first, then the prediction as a **log-mean** :math:`\eta = \log\mu`
(the log link's linear predictor, as :func:`nllax.losses.poisson` takes the log-rate):
every real prediction is valid, and a mean :math:`\mu` is passed as ``jnp.log(mu)``.

.. math::

    D_\Gamma(y, \mu) = 2\sum_i w_i\Bigl(\frac{y_i - \mu_i}{\mu_i}
        - \log\frac{y_i}{\mu_i}\Bigr),

    D_p(y, \mu) = 2\sum_i w_i\Bigl(\frac{y_i^{2-p}}{(1-p)(2-p)}
        - \frac{y_i\mu_i^{1-p}}{1-p} + \frac{\mu_i^{2-p}}{2-p}\Bigr),
    \quad 1 < p < 2.

Each is the NLL of its family with a scalar dispersion :math:`\phi` up to the exact map

.. math::

    \mathrm{NLL} = \frac{1}{2\phi}\,D + b, \qquad
    b = -\sum_i w_i \log p(y_i \mid \mu_i = y_i, \phi),

the negative log-likelihood of the saturated model (the deviance *is*
:math:`2\phi` times the NLL minus its value at :math:`\hat\mu = y`). For the gamma,
:math:`b_i = \log y_i + \tfrac12\log(2\pi\phi) + \mathrm{stirlerr}(1/\phi)
= \log y_i + \log\Gamma(1/\phi) + (1 + \log\phi)/\phi`; for the Tweedie,
:math:`b_i = \log y_i - \log W(y_i, \phi, p) + y_i^{2-p}/((p-1)(2-p)\phi)` at
:math:`y_i > 0` (the series of :mod:`nllax.tweedie`) and 0 at :math:`y_i = 0`.

Numerics: the gamma deviance is :math:`2(x - 1 - \log x)`, :math:`x = y/\mu`, by
Loader's ``bd0`` (no cancellation near :math:`x = 1`). The Tweedie deviance at
:math:`y > 0` is :math:`2y^{2-p} g(\log(\mu/y))` with
:math:`g(u) = [(1-p)\,\mathrm{expm1}((2-p)u) - (2-p)\,\mathrm{expm1}((1-p)u)] /
((1-p)(2-p))`, whose relative error near :math:`\mu = y` is about :math:`\varepsilon/|u|`
(the textbook form's is :math:`\varepsilon/u^2`); at :math:`y = 0` it is
:math:`2\mu^{2-p}/(2-p)`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

import nllax.gamma
import nllax.tweedie
from nllax import _equivalences as E
from nllax import _family as F
from nllax import _reduce as R

__all__ = ["gamma_deviance", "tweedie_deviance"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@jax.custom_jvp
def _gamma_dev(y, log_mean):
    x = y * jnp.exp(-log_mean)
    return nllax.gamma.ratio_deviance(x, jnp.log(y) - log_mean, times=2.0)


@_gamma_dev.defjvp
def _gamma_dev_jvp(primals, tangents):
    # 2 (x - 1 - log x), x = y e^-eta: d/d eta = 2 (1 - x), d/dy = 2 (x - 1) / y. Given,
    # the gradient is one elementwise pass (autodiff of the branches of ratio_deviance
    # kept their intermediates as n-sized buffers)
    y, eta = primals
    dy, deta = tangents
    x = y * jnp.exp(-eta)
    return _gamma_dev(y, eta), 2.0 * (1.0 - x) * deta + 2.0 * (x - 1.0) / y * dy


def _tweedie_dev(y, log_mean, power):
    p = power
    pos = y > 0
    ys = jnp.where(pos, y, jnp.ones((), y.dtype))
    log_y = jnp.log(ys)
    u = log_mean - log_y
    g = ((1.0 - p) * jnp.expm1((2.0 - p) * u) - (2.0 - p) * jnp.expm1((1.0 - p) * u)) / (
        (1.0 - p) * (2.0 - p))
    dev_pos = 2.0 * jnp.exp((2.0 - p) * log_y) * g
    dev_zero = 2.0 * jnp.exp((2.0 - p) * log_mean) / (2.0 - p)
    return jnp.where(pos, dev_pos, dev_zero)


_GAMMA = F.Family(
    name="gamma_deviance", data=F.Data("y", F.POSITIVE),
    params=(F.Param("log_mean", doc="eta = log(mu)"),),
    log_prob=_gamma_dev, sign=+1, register=False, qualname="nllax.losses.gamma_deviance",
    summary="gamma deviance")

_TWEEDIE = F.Family(
    name="tweedie_deviance", data=F.Data("y", F.NONNEGATIVE),
    params=(F.Param("log_mean", doc="eta = log(mu)"), nllax.tweedie.POWER),
    log_prob=_tweedie_dev, sign=+1, register=False,
    qualname="nllax.losses.tweedie_deviance", summary="Tweedie deviance")

gamma_deviance = F.loss(_GAMMA, r"""Gamma deviance
    :math:`2\sum_i w_i\,((y_i - \mu_i)/\mu_i - \log(y_i/\mu_i))` with
    :math:`\mu = e^\eta` (``reduction="sum"``).

    Args:
      y: positive observations (``y <= 0`` or NaN gives NaN).
      log_mean: :math:`\eta = \log\mu`, broadcastable to ``y.shape``.

    Gamma with dispersion :math:`\phi`: :math:`\mathrm{NLL} = D/(2\phi) + b`,
    :math:`b = \sum_i w_i(\log y_i + \log\Gamma(1/\phi) + (1 + \log\phi)/\phi)`.
    Gradient in :math:`\eta`: :math:`2(1 - y/\mu)`.

    Example:
      >>> import nllax
      >>> float(nllax.losses.gamma_deviance(2.0, 0.0))  # 2 (1 - log 2)
      0.6137056...
    """)

tweedie_deviance = F.loss(_TWEEDIE, r"""Tweedie deviance for :math:`1 < p < 2`,
    :math:`2\sum_i w_i\,(y_i^{2-p}/((1-p)(2-p)) - y_i\mu_i^{1-p}/(1-p)
    + \mu_i^{2-p}/(2-p))`, :math:`\mu = e^\eta` (``reduction="sum"``).

    Args:
      y: non-negative observations (``y < 0`` or NaN gives NaN).
      log_mean: :math:`\eta = \log\mu`, broadcastable to ``y.shape``.
      power: :math:`p \in (1, 2)` (keyword-only; outside gives NaN).

    Tweedie with dispersion :math:`\phi`: :math:`\mathrm{NLL} = D/(2\phi) + b`, ``b`` the
    saturated NLL (:mod:`nllax._losses_glm2`). Gradient in :math:`\eta`:
    :math:`2\mu^{1-p}(\mu - y)`.

    Example:
      >>> import nllax
      >>> float(nllax.losses.tweedie_deviance(0.0, 0.0, power=1.5))  # 2 / (2 - p)
      4.0
    """)


def _dispersion(y, dispersion, weights, table):
    phi = E.scalar_noise(dispersion, "dispersion", table)
    return phi.astype(E._dtype(y, dispersion, weights))


def _gamma_a(y, *, dispersion, weights=None, where=None):
    return 0.5 / _dispersion(y, dispersion, weights, "gamma_deviance")


def _gamma_b(y, *, dispersion, weights=None, where=None):
    phi = _dispersion(y, dispersion, weights, "gamma_deviance")
    yy = jnp.asarray(y, phi.dtype)
    n = E.count(y, weights, where, phi.dtype)
    log_y = R.reduce(jnp.log(yy), reduction="sum", weights=weights,
                     mask=R.as_mask(where, yy.shape, E._FN), fn=E._FN)
    return log_y + n * (_HALF_LOG_2PI + 0.5 * jnp.log(phi) + nllax.gamma.stirlerr(1.0 / phi))


def _gamma_nll(y, log_mean, *, dispersion, weights=None, where=None):
    return nllax.gamma.nll(y, log_mean=log_mean, dispersion=dispersion, weights=weights,
                           where=where)


def _tweedie_a(y, *, dispersion, power, weights=None, where=None):
    return 0.5 / _dispersion(y, dispersion, weights, "tweedie_deviance")


def _tweedie_b(y, *, dispersion, power, weights=None, where=None):
    phi = _dispersion(y, dispersion, weights, "tweedie_deviance")
    yy = jnp.asarray(y, phi.dtype)
    pos = yy > 0
    ys = jnp.where(pos, yy, jnp.ones((), yy.dtype))
    w = pos.astype(phi.dtype) if weights is None else jnp.where(pos, weights, 0.0)
    return nllax.tweedie.nll(ys, mean=ys, dispersion=phi, power=power, weights=w, where=where)


def _tweedie_nll(y, log_mean, *, dispersion, power, weights=None, where=None):
    return nllax.tweedie.nll(y, log_mean=log_mean, dispersion=dispersion, power=power,
                             weights=weights, where=where)


E.register(E.Equivalence(
    _gamma_nll, gamma_deviance, _gamma_a, _gamma_b, "gamma_deviance",
    "Gamma(log-mean, dispersion)", ("dispersion",),
    "a = 1/(2 phi), b = sum log y + n (log Gamma(1/phi) + (1 + log phi)/phi)"))
E.register(E.Equivalence(
    _tweedie_nll, tweedie_deviance, _tweedie_a, _tweedie_b, "tweedie_deviance",
    "Tweedie(log-mean, dispersion, power)", ("dispersion", "power"),
    "a = 1/(2 phi), b = -sum log p(y | mean = y, phi, p) (saturated model)",
    loss_options=lambda power, **_: {"power": power}))
