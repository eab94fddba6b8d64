r"""Training objectives for a learned variance that are **not** likelihoods.

Training a network head that predicts a mean :math:`\mu_i` and a variance
:math:`\sigma_i^2` on the Gaussian NLL

.. math::

    \ell_i = \frac{(y_i - \mu_i)^2}{2\sigma_i^2} + \tfrac12\log\sigma_i^2
             + \tfrac12\log 2\pi

gives the mean the gradient :math:`(\mu_i - y_i)/\sigma_i^2`: observations the model has
declared noisy are learned slowly, and a poorly fitted region can stay poorly fitted
because its variance grew first (Seitzer et al. 2022; Stirn et al. 2023). Two remedies
change the *objective*, not the model:

* :func:`beta_nll` (Seitzer et al. 2022), each observation's NLL weighted by
  :math:`\mathrm{sg}(\sigma_i^{2\beta})` (``sg`` = ``jax.lax.stop_gradient``):

  .. math::

      \ell^\beta_i = \mathrm{sg}\bigl(\sigma_i^{2\beta}\bigr)\,\ell_i,\qquad
      \frac{\partial \ell^\beta_i}{\partial\mu_i} = (\mu_i - y_i)\,\sigma_i^{2(\beta-1)},
      \qquad
      \frac{\partial \ell^\beta_i}{\partial\sigma_i^2} = \sigma_i^{2\beta}\,
      \frac{\partial \ell_i}{\partial\sigma_i^2}.

  ``beta=0`` is the NLL itself; ``beta=1`` gives the mean the gradient of
  :math:`\tfrac12(y_i-\mu_i)^2`, as if the variance were not there. ``beta=0.5`` is the
  paper's recommendation.

* :func:`faithful` (Stirn et al. 2023): the squared error for the mean, and the NLL for
  the variance with the mean held fixed,

  .. math::

      \ell^{\mathrm{f}}_i = (y_i - \mu_i)^2
          + \frac{(y_i - \mathrm{sg}(\mu_i))^2}{2\sigma_i^2} + \tfrac12\log\sigma_i^2
          + \tfrac12\log 2\pi,

  so the mean is fitted exactly as by the MSE (whatever the variance) and the variance is
  the NLL's maximiser :math:`\sigma_i^2 = (y_i-\mu_i)^2` for that mean.

**These are not likelihoods.** Their value is not a negative log-density of anything (the
stop-gradients make the gradient differ from the gradient of the value), so it must not be
reported, compared across models, or used for likelihood-ratio tests or information
criteria. Train with them; **evaluate the model with the NLL**,
``nllax.gaussian.nll(y, loc, var=var)``.

Both share the family core's pipeline (:mod:`nllax._family`): data first, then ``loc``
and ``var``; ``loc`` and ``var`` broadcast to ``y``'s shape without enlarging it
(``(n,)`` data against an ``(n, 1)`` prediction is a ``ValueError``); ``var <= 0`` or NaN
makes the value *and* the gradient NaN (``nllax.checked`` names ``var``); ``reduction``,
``weights`` and ``where`` mean what they mean in :func:`nllax.gaussian.nll`. A network
head usually predicts ``log_var``: pass ``var=jnp.exp(log_var)``.

References:
  M. Seitzer, A. Tavakoli, D. Antic, G. Martius. On the Pitfalls of Heteroscedastic
  Uncertainty Estimation with Probabilistic Neural Networks. ICLR 2022.

  A. Stirn, H.-H. Wessels, M. Schertzer, L. Pereira, N. Sanjana, D. Knowles. Faithful
  Heteroscedastic Regression with Neural Networks. AISTATS 2023.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax import gaussian as _gaussian

__all__ = ["beta_nll", "faithful"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _nll_terms(y, loc, var):
    """Per-observation Gaussian NLL with variance ``var`` (a checked array): the Gaussian
    family's own terms, so that ``beta=0`` is the NLL to the last bit of its numerics."""
    out = _gaussian._log_prob(y, loc, F.Positive("square", var))
    return -(out.mul * out.core + out.add)


def _beta_nll_terms(y, loc, var, *, beta):
    if beta == 0:  # a Python number: the NLL itself, no weight computed
        return _nll_terms(y, loc, var)
    weight = jax.lax.stop_gradient(var if beta == 1 else jnp.power(var, beta))
    return weight * _nll_terms(y, loc, var)


def _faithful_terms(y, loc, var):
    return jnp.square(y - loc) + _nll_terms(y, jax.lax.stop_gradient(loc), var)


_Y = F.Data("y", F.REAL)
_LOC = F.Param("loc", doc="the predicted mean")
_VAR = F.Param("var", F.POSITIVE, doc="the predicted variance sigma^2 > 0")

_BETA_NLL = F.Family(
    name="beta_nll", data=_Y, params=(_LOC, _VAR), log_prob=_beta_nll_terms,
    options=(F.Option("beta", 0.5, doc="the exponent of the weight var**beta"),),
    sign=+1, register=False, qualname="nllax.objectives.beta_nll",
    summary="beta-NLL (not a likelihood)")
_FAITHFUL = F.Family(
    name="faithful", data=_Y, params=(_LOC, _VAR), log_prob=_faithful_terms,
    sign=+1, register=False, qualname="nllax.objectives.faithful",
    summary="faithful heteroscedastic objective (not a likelihood)")


def _public(fam: F.Family, doc: str, validate=None):
    # The pipeline's public function (bind, dtypes, shapes, mask, validity, reduction),
    # without listing the objective among the classical losses (F.loss does that).
    sig = fam.signature("nll")
    inner = F._make_public(fam, "nll", sig)

    def fn(*args, **kwargs):
        if validate is not None:
            validate(sig.bind(*args, **kwargs).arguments)
        return inner(*args, **kwargs)

    fn.__signature__ = sig
    fn.__name__ = fn.__qualname__ = fam.name
    fn.__module__ = __name__
    fn.__doc__ = doc
    return fn


def _check_beta(arguments) -> None:
    beta = arguments.get("beta", 0.5)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise TypeError(
            f"nllax.objectives.beta_nll: `beta` must be a Python number (a static "
            f"hyperparameter), got {type(beta).__name__}.")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"nllax.objectives.beta_nll: `beta` must lie in [0, 1], got {beta!r}.")


beta_nll = _public(_BETA_NLL, r"""The beta-NLL of Seitzer et al. (2022): the Gaussian NLL of each observation
    weighted by :math:`\mathrm{sg}(\sigma_i^{2\beta})`. **Not a likelihood.**

    .. math::

        \sum_i w_i\,\mathrm{sg}\bigl(\sigma_i^{2\beta}\bigr)\left[
        \frac{(y_i-\mu_i)^2}{2\sigma_i^2} + \tfrac12\log\sigma_i^2 + \tfrac12\log 2\pi\right]

    The gradient for the mean is :math:`(\mu_i - y_i)\,\sigma_i^{2(\beta-1)}` per
    observation, for the variance :math:`\sigma_i^{2\beta}` times the NLL's. ``beta=0``
    is exactly ``nllax.gaussian.nll(y, loc, var=var)`` (value and gradient); ``beta=1``
    gives the mean the squared error's gradient :math:`\mu_i - y_i`. Use it to *train*
    a mean-and-variance head; report and compare models with the NLL, never with this
    value (the weight changes from model to model, so the values are not comparable).

    Args:
      y: observations, any shape.
      loc: predicted mean, broadcastable to ``y.shape`` without enlarging it.
      var: predicted variance :math:`\sigma^2 > 0`, broadcastable likewise (from a
        ``log_var`` head: ``jnp.exp(log_var)``). ``var <= 0`` or NaN: NaN value and
        gradient.
      beta: the exponent, a Python number in [0, 1] (default 0.5, the paper's choice).
      reduction: ``"sum"`` (default), ``"mean"`` (divided by ``sum(weights)``, the
        weights being ``where`` and ``weights``, not the stopped ``var**beta``) or
        ``"none"``.
      weights, where: as in :func:`nllax.gaussian.nll`.

    Returns:
      A scalar (``y.shape`` for ``reduction="none"``).

    Example:
      >>> import jax, jax.numpy as jnp, nllax
      >>> y, loc, var = jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]), jnp.array([4.0, 4.0])
      >>> g = jax.grad(nllax.objectives.beta_nll, argnums=1)(y, loc, var, beta=0.5)
      >>> g.tolist()  # (loc - y) * var**(beta - 1)
      [-0.5, -1.0]
      >>> bool(nllax.objectives.beta_nll(y, loc, var, beta=0.0)
      ...      == nllax.gaussian.nll(y, loc, var=var))
      True
    """, _check_beta)

faithful = _public(_FAITHFUL, r"""The faithful heteroscedastic objective of Stirn et al. (2023): the squared error for
    the mean, the Gaussian NLL with the mean stopped for the variance. **Not a likelihood.**

    .. math::

        \sum_i w_i\left[(y_i-\mu_i)^2 + \frac{(y_i-\mathrm{sg}(\mu_i))^2}{2\sigma_i^2}
        + \tfrac12\log\sigma_i^2 + \tfrac12\log 2\pi\right]

    The gradient for ``loc`` is the squared error's, :math:`2(\mu_i - y_i)` per
    observation (that of :func:`nllax.losses.sse`, or of :func:`nllax.losses.mse` with
    ``reduction="mean"``), whatever the variance; the gradient for ``var`` is the NLL's.

    **The shared features.** In the paper the variance head reads the network's shared
    features through a stop-gradient, so that the variance never pulls on the trunk that
    the mean uses. A function of ``loc`` and ``var`` cannot see the network, so this
    objective stops only ``loc`` inside the variance term; stopping the trunk is the
    model's job, one line where the heads are applied::

        h = trunk(params["trunk"], x)
        loc = mean_head(params["mean"], h)
        var = jnp.exp(var_head(params["var"], jax.lax.stop_gradient(h)))
        objective = nllax.objectives.faithful(y, loc, var)

    Without that stop-gradient the trunk receives the variance term's gradient too.
    Evaluate the trained model with ``nllax.gaussian.nll(y, loc, var=var)``.

    Args:
      y: observations, any shape.
      loc: predicted mean, broadcastable to ``y.shape`` without enlarging it.
      var: predicted variance :math:`\sigma^2 > 0` (``var <= 0`` or NaN: NaN value and
        gradient).
      reduction, weights, where: as in :func:`nllax.gaussian.nll`.

    Returns:
      A scalar (``y.shape`` for ``reduction="none"``).

    Example:
      >>> import jax, jax.numpy as jnp, nllax
      >>> y, loc, var = jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]), jnp.array([4.0, 4.0])
      >>> jax.grad(nllax.objectives.faithful, argnums=1)(y, loc, var).tolist()  # 2 (loc - y)
      [-2.0, -4.0]
    """)
