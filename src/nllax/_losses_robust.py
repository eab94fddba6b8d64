r"""The robust and quantile losses and their rows of :data:`nllax.equivalences`.

Re-exported from :mod:`nllax.losses`. Each is a loss of the residual
:math:`r = y - \hat y`, declared with :func:`nllax.losses.residual_loss` (so shapes,
dtypes, masks, weights, reductions and invalid values behave as for every loss), summed
over observations by default (the project's rule: a mean only where the name says so;
optax's ``huber_loss`` and ``log_cosh`` return per-element values, PyTorch's
``HuberLoss``/``SmoothL1Loss`` default to the mean: pass ``reduction="mean"`` for that).

=============  ==============================================================  ==========
loss           per observation                                                  likelihood
=============  ==============================================================  ==========
``huber``      :math:`\rho_\delta(r)`: :math:`r^2/2` if :math:`|r| \le \delta`,    Huber
               else :math:`\delta(|r| - \delta/2)` (optax ``huber_loss``)
``smooth_l1``  :math:`\rho_\beta(r)/\beta`: :math:`r^2/(2\beta)` if                 Huber
               :math:`|r| < \beta`, else :math:`|r| - \beta/2` (PyTorch
               ``SmoothL1Loss``; ``beta=0`` is :math:`|r|`)
``log_cosh``   :math:`\log\cosh r` (optax ``log_cosh``)                           hyperbolic
                                                                                secant
``pinball``    :math:`\rho_\tau(r) = r(\tau - \mathbb{1}[r < 0])`                   asymmetric
                                                                                Laplace
=============  ==============================================================  ==========

The rows (one noise scale :math:`s`, :math:`n = \sum w`): since
:math:`\rho_\delta(r/s) = \rho_{\delta s}(r)/s^2`,

* ``huber``: :math:`\mathrm{NLL}_{\mathrm{Huber}}(s, \delta) =
  \mathrm{huber}_{\delta s}/s^2 + n\log(sZ(\delta))` (the loss at ``delta = delta * s``;
  at :math:`s = 1`, :math:`\mathrm{huber}_\delta + n\log Z(\delta)`);
* ``smooth_l1``: :math:`\mathrm{NLL}_{\mathrm{Huber}}(s, \delta) =
  (\delta/s)\,\mathrm{smooth\_l1}_{\delta s} + n\log(sZ(\delta))` (``beta = delta * s``);
* ``log_cosh``: :math:`\mathrm{NLL}_{\mathrm{sech}}(s = 1) = \mathrm{log\_cosh} + n\log\pi`;
* ``pinball``: :math:`\mathrm{NLL}_{\mathrm{AL}}(s, \tau) = \mathrm{pinball}_\tau/s +
  n\log(s/(\tau(1-\tau)))`.

Each row's noise parameters are the family's (``scale``, ``delta`` / ``quantile``), one
value for all observations; the loss's own keyword (``delta``, ``beta``, ``quantile``)
follows from them (:meth:`nllax.Equivalence.loss_kwargs`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _equivalences as E
from nllax import _family as F
from nllax import _math as M
from nllax import asymmetric_laplace as _al
from nllax import huber as _huber
from nllax import hyperbolic_secant as _hs
from nllax.losses import residual_loss

__all__ = ["huber", "smooth_l1", "log_cosh", "pinball"]

_LOG2 = math.log(2.0)
_LOG_PI = math.log(math.pi)


def _huber_elem(r, delta):
    return _huber.rho(M.abs_(r), delta)


@jax.custom_jvp
def _rho_over(a, b):
    """``rho_b(a) / b`` for ``b > 0``: one select (the division inside its branches, so
    that no constant ``1/b`` is left for the reduction to take as an n-sized operand);
    derivatives ``q / b`` and ``-(q / b)^2 / 2``, ``q = min(a, b)``."""
    return jnp.where(a <= b, (0.5 * (a * a)) / b, a - 0.5 * b)


@_rho_over.defjvp
def _rho_over_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    t = jnp.minimum(a, b) / b
    return _rho_over(a, b), t * da - (0.5 * (t * t)) * db


def _smooth_l1_elem(r, beta):
    a = M.abs_(r)
    pos = beta > 0
    b = jnp.where(pos, beta, 1.0)  # beta = 0 is the absolute error; no 0/0 anywhere
    return jnp.where(pos, _rho_over(a, b), a)


@jax.custom_jvp
def _log_cosh_elem(r):
    # log cosh r = log1p(cosh r - 1), cosh r - 1 = u^2 / (2 (1 - u)), u = 1 - e^-|r|
    # (-expm1: exact relative digits) for |r| < 1, which keeps the relative digits of
    # r^2/2 (the |r| + log1p(e^-2|r|) - log 2 form loses eps / r^2 of them near 0);
    # |r| - log 2 + log1p((1 - u)^2) beyond (1 - u = e^-|r| exact from u >= 1/2; its
    # error there, eps e^|r| relative, enters as 2 eps e^-|r| absolute), no overflow.
    # One expm1 and one log1p (the select before the log1p), and a select last: XLA:CPU's
    # reduction fusion stops at a select, so the whole term is one elementwise loop
    # (with an add last it took the add and split the rest in two buffers). The
    # derivative, tanh r, is given.
    a = jnp.abs(r)
    u = -jnp.expm1(-a)
    w = 1.0 - u
    small = a < 1.0
    lp = jnp.log1p(jnp.where(small, (u * u) / (2.0 * w), w * w))
    return jnp.where(small, lp, (a - _LOG2) + lp)


@_log_cosh_elem.defjvp
def _log_cosh_jvp(primals, tangents):
    # the derivative given (tanh r): differentiating both branches kept five n-sized
    # intermediates of the forward pass for the gradient
    (r,), (dr,) = primals, tangents
    return _log_cosh_elem(r), jnp.tanh(r) * dr


_HUBER = residual_loss(
    "huber", _huber_elem, summary="Huber loss",
    params=(F.Param("delta", F.POSITIVE, default=1.0, keyword_only=True,
                    doc="the threshold delta > 0 between the quadratic and linear pieces"),))
_SMOOTH_L1 = residual_loss(
    "smooth_l1", _smooth_l1_elem, summary="smooth L1 loss",
    params=(F.Param("beta", F.NONNEGATIVE, default=1.0, keyword_only=True,
                    doc="the threshold beta >= 0 (0: the absolute error)"),))
_LOG_COSH = residual_loss("log_cosh", _log_cosh_elem, summary="log-cosh loss")
_PINBALL = residual_loss(
    "pinball", lambda r, quantile: _al.check_loss(r, quantile), smooth=False,
    summary="pinball (quantile) loss",
    params=(F.Param("quantile", F.OPEN_UNIT, keyword_only=True,
                    doc="the quantile level tau in (0, 1)"),))

huber = F.loss(_HUBER, r"""Huber loss :math:`\sum_i w_i \rho_\delta(y_i - \hat y_i)` (``reduction="sum"``).

    :math:`\rho_\delta(r) = r^2/2` for :math:`|r| \le \delta`,
    :math:`\delta(|r| - \delta/2)` otherwise: optax's ``huber_loss``, summed. ``delta > 0``
    (keyword-only, default 1; ``inf`` is half the squared error); ``delta <= 0`` or NaN
    gives NaN. Huber likelihood (:mod:`nllax.huber`) with scale :math:`s` and threshold
    :math:`\delta'` (of the standardised residual): :math:`\mathrm{NLL} =
    \mathrm{huber}_{\delta' s}/s^2 + n\log(s Z(\delta'))`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.losses.huber(jnp.array([0.5, 3.0]), jnp.zeros(2)))  # 0.125 + 2.5
      2.625
    """)
smooth_l1 = F.loss(_SMOOTH_L1, r"""Smooth L1 loss :math:`\sum_i w_i \rho_\beta(r_i)/\beta` (``reduction="sum"``).

    :math:`0.5 r^2/\beta` for :math:`|r| < \beta`, :math:`|r| - \beta/2` otherwise
    (PyTorch's ``SmoothL1Loss``, whose default reduction is the mean: pass
    ``reduction="mean"``); ``beta=0`` is the absolute error. Equal to
    :math:`\mathrm{huber}_\beta/\beta`. Huber likelihood with scale :math:`s` and
    threshold :math:`\delta'`: :math:`\mathrm{NLL} = (\delta'/s)\,
    \mathrm{smooth\_l1}_{\beta = \delta' s} + n\log(s Z(\delta'))`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y, p = jnp.array([0.5, 3.0]), jnp.zeros(2)
      >>> float(nllax.losses.smooth_l1(y, p, beta=2.0))  # 0.25 / 4 + (3 - 1)
      2.0625
    """)
log_cosh = F.loss(_LOG_COSH, r"""Log-cosh loss :math:`\sum_i w_i \log\cosh(y_i - \hat y_i)` (``reduction="sum"``).

    optax's ``log_cosh``, summed; accurate to the last digits for small residuals
    (:math:`\approx r^2/2`) and without overflow for large ones
    (:math:`\approx |r| - \log 2`). Gradient :math:`\tanh(\hat y - y)`. Hyperbolic secant
    likelihood at unit scale: :math:`\mathrm{NLL} = \mathrm{log\_cosh} + n\log\pi`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> v = float(nllax.losses.log_cosh(jnp.array([1e-4]), jnp.zeros(1)))
      >>> round(v / 5e-9, 6)  # r^2/2 to float32's digits
      1.0
    """)
pinball = F.loss(_PINBALL, r"""Pinball (quantile) loss :math:`\sum_i w_i \rho_\tau(y_i - \hat y_i)` (``reduction="sum"``).

    :math:`\rho_\tau(r) = \tau r` for :math:`r \ge 0`, :math:`(\tau - 1) r` for
    :math:`r < 0`; ``quantile`` (:math:`\tau`, keyword-only, required) in (0, 1), else
    NaN. Its minimiser over a constant is the :math:`\tau`-quantile of ``y``; the gradient
    at a zero residual is the subgradient 0. Asymmetric Laplace likelihood:
    :math:`\mathrm{NLL} = \mathrm{pinball}_\tau/s + n\log(s/(\tau(1-\tau)))`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y, p = jnp.array([2.0, -1.0]), jnp.zeros(2)
      >>> round(float(nllax.losses.pinball(y, p, quantile=0.9)), 6)  # 0.9 * 2 + 0.1 * 1
      1.9
    """)


# -- the rows ------------------------------------------------------------------------------


def _scalar(value, name, table):
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(
            f"nllax.equivalences[{table!r}]: `{name}` has shape {value.shape}; the affine "
            f"relation to the loss needs one {name} for all observations (with one per "
            f"observation the NLL is a sum of differently weighted losses, not one loss).")
    return value


def _noise(table, y, weights, where, **params):
    dt = E._dtype(y, weights, *params.values())
    vals = {k: _scalar(v, k, table).astype(dt) for k, v in params.items()}
    return vals, E.count(y, weights, where, dt)


def _huber_row(name, loss_fn, a_of, option):
    def nll(y, loc, *, scale=1.0, delta=1.0, weights=None, where=None):
        return _huber.nll(y, loc, scale, delta=delta, weights=weights, where=where)

    def a(y, *, scale=1.0, delta=1.0, weights=None, where=None):
        v, _ = _noise(name, y, weights, where, scale=scale, delta=delta)
        return a_of(v["scale"], v["delta"])

    def b(y, *, scale=1.0, delta=1.0, weights=None, where=None):
        v, n = _noise(name, y, weights, where, scale=scale, delta=delta)
        return n * (jnp.log(v["scale"]) + _huber.log_normalizer(v["delta"])[0])

    def options(scale=1.0, delta=1.0):
        return {option: delta * scale}

    formula = {"huber": "a = 1/s^2, b = n log(s Z(delta)); loss at delta * s",
               "smooth_l1": "a = delta/s, b = n log(s Z(delta)); loss at beta = delta * s"}
    return E.Equivalence(nll, loss_fn, a, b, name, "Huber(loc, scale, delta)",
                         ("scale", "delta"), formula[name], options)


def _log_cosh_nll(y, loc, *, weights=None, where=None):
    return _hs.nll(y, loc, 1.0, weights=weights, where=where)


def _log_cosh_b(y, *, weights=None, where=None):
    return E.count(y, weights, where, E._dtype(y, weights)) * _LOG_PI


def _pinball_nll(y, loc, *, scale=1.0, quantile=0.5, weights=None, where=None):
    return _al.nll(y, loc, scale, quantile=quantile, weights=weights, where=where)


def _pinball_a(y, *, scale=1.0, quantile=0.5, weights=None, where=None):
    v, _ = _noise("pinball", y, weights, where, scale=scale, quantile=quantile)
    return 1.0 / v["scale"]


def _pinball_b(y, *, scale=1.0, quantile=0.5, weights=None, where=None):
    v, n = _noise("pinball", y, weights, where, scale=scale, quantile=quantile)
    tau = v["quantile"]
    return n * (jnp.log(v["scale"]) - jnp.log(tau) - jnp.log1p(-tau))


E.register(_huber_row("huber", huber, lambda s, d: 1.0 / jnp.square(s), "delta"))
E.register(_huber_row("smooth_l1", smooth_l1, lambda s, d: d / s, "beta"))
E.register(E.Equivalence(_log_cosh_nll, log_cosh, E.one, _log_cosh_b, "log_cosh",
                         "HyperbolicSecant(loc, 1)", (), "a = 1, b = n log(pi)"))
E.register(E.Equivalence(_pinball_nll, pinball, _pinball_a, _pinball_b, "pinball",
                         "AsymmetricLaplace(loc, scale, quantile)", ("scale", "quantile"),
                         "a = 1/s, b = n log(s / (tau (1 - tau)))",
                         lambda scale=1.0, quantile=0.5: {"quantile": quantile}))
