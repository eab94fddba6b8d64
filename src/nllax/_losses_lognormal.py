r"""The mean squared logarithmic error and its row in :data:`nllax.equivalences`.

.. math::

    \mathrm{MSLE} = \frac{1}{n}\sum_i w_i\,(\mathrm{log1p}(y_i) - \mathrm{log1p}(\hat y_i))^2,
    \qquad y_i > -1,\ \hat y_i > -1,

as ``tf.keras.losses.MeanSquaredLogarithmicError`` and scikit-learn's
``mean_squared_log_error`` define it (Keras clips both arguments below at its epsilon,
1e-7, before ``log(x + 1)``, so it equals this one for arguments >= 1e-7 and silently
changes negative ones; here a value <= -1 is outside the domain: NaN and a named
``nllax.checked`` error). It is the Gaussian NLL of :math:`\mathrm{log1p}(y)`, i.e. the
log-normal NLL of :math:`1 + y` with ``loc`` :math:`= \mathrm{log1p}(\hat y)`, up to an
affine map whose offset carries the Jacobian of :math:`y \mapsto \mathrm{log1p}(y)`:

.. math::

    \mathrm{NLL} = \frac{n}{2\sigma^2}\,\mathrm{MSLE} + \frac{n}{2}\log(2\pi\sigma^2)
        + \sum_i w_i\,\mathrm{log1p}(y_i).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from nllax import _equivalences as E
from nllax import _family as F
from nllax import _reduce as R

__all__ = ["msle"]

_ABOVE_M1 = F.interval(-1.0, math.inf, message="must be > -1 (log1p is defined above -1; "
                                               "a value <= -1 or NaN)")


def _per_obs(y, pred):
    return jnp.square(jnp.log1p(y) - jnp.log1p(pred))


_MSLE = F.Family(
    name="msle", data=F.Data("y", _ABOVE_M1),
    params=(F.Param("pred", _ABOVE_M1, doc="the prediction, > -1"),),
    log_prob=_per_obs, sign=+1, register=False, qualname="nllax.losses.msle",
    default_reduction="mean", summary="mean squared logarithmic error")

msle = F.loss(_MSLE, r"""Mean squared logarithmic error
    :math:`\sum_i w_i (\mathrm{log1p}(y_i) - \mathrm{log1p}(\hat y_i))^2 / \sum_i w_i`
    (``reduction="mean"``).

    ``y`` and ``pred`` must be > -1 (NaN otherwise); Keras' version clips both at 1e-7
    from below instead. Log-normal on :math:`1 + y`: :math:`\mathrm{NLL} =
    n\,\mathrm{MSLE}/(2\sigma^2) + (n/2)\log 2\pi\sigma^2 + \sum_i \mathrm{log1p}(y_i)`.

    Example:
      >>> import math, nllax
      >>> float(nllax.losses.msle(math.e - 1.0, 0.0))  # (1 - 0)^2
      1.0
    """)


def _nll(y, pred, *, scale=1.0, weights=None, where=None):
    from nllax import log_normal

    y = jnp.asarray(y)
    return log_normal.nll(1.0 + y, jnp.log1p(jnp.asarray(pred)), scale, weights=weights,
                          where=where)


def _scale_and_count(y, scale, weights, where):
    s = E.scalar_noise(scale, "scale", "msle")
    dt = R.float_dtype(y, scale, weights)
    return s.astype(dt), E.count(y, weights, where, dt)


def _a(y, *, scale=1.0, weights=None, where=None):
    s, n = _scale_and_count(y, scale, weights, where)
    return n / (2.0 * jnp.square(s))


def _b(y, *, scale=1.0, weights=None, where=None):
    s, n = _scale_and_count(y, scale, weights, where)
    y = jnp.asarray(y).astype(s.dtype)
    jac = R.reduce(jnp.log1p(y), reduction="sum", weights=weights,
                   mask=R.as_mask(where, y.shape, "nllax.equivalences"),
                   fn="nllax.equivalences")
    return n * 0.5 * (math.log(2 * math.pi) + 2 * jnp.log(s)) + jac


E.register(E.Equivalence(
    _nll, msle, _a, _b, "msle", "LogNormal(log1p(pred), sigma) of 1 + y", ("scale",),
    "a = n/(2 sigma^2), b = (n/2) log(2 pi sigma^2) + sum log1p(y)"))
