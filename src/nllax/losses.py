r"""The classical losses, with the same argument order and keywords as the likelihoods.

Data first, then the prediction; ``reduction``, ``weights`` and ``where`` as in
:func:`nllax.gaussian.nll`. Each is the NLL of a family up to an exact affine map
(:data:`nllax.equivalences`, whose keys are these functions' names):

========================  ======================================  =====================
loss                      definition (per observation)            default reduction
========================  ======================================  =====================
``sse`` / ``mse``         :math:`(y - \hat y)^2`                  sum / mean
``sae`` / ``mae``         :math:`|y - \hat y|`                    sum / mean
``binary_cross_entropy``  :math:`\mathrm{softplus}(z) - yz`       sum
``cross_entropy``         :math:`\log\sum_j e^{z_j} - z_y`        sum
``poisson``               :math:`e^\eta - k\eta`                  sum
``huber``                 :math:`\rho_\delta(r)` (optax)          sum
``smooth_l1``             :math:`\rho_\beta(r)/\beta` (PyTorch)   sum
``log_cosh``              :math:`\log\cosh r`                     sum
``pinball``               :math:`r(\tau - 1[r < 0])`              sum
``poisson_deviance``      :math:`2[k\log(k/\mu) - (k - \mu)]`     sum
``binomial_deviance``     :math:`2[k\log\frac{k}{np} +            sum
                          (n-k)\log\frac{n-k}{nq}]`
``msle``                  :math:`(\log(1+y) - \log(1+\hat y))^2`  mean
``gamma_deviance``        :math:`2(x - 1 - \log x)`, `x = y/\mu`  sum
``tweedie_deviance``      Tweedie deviance (power 1 < p < 2)      sum
========================  ======================================  =====================

``binary_cross_entropy`` and ``cross_entropy`` *are* the Bernoulli and Categorical NLLs
(they call them, and share their numerics and invalid-value rules: soft targets in [0, 1]
in BCE, anything else NaN; labels outside ``[0, K)`` NaN). The Poisson loss is the Poisson
NLL minus :math:`\log k!`; counts must be non-negative integers. The gamma and Tweedie deviances
take the log-mean :math:`\eta = \log\mu` (:mod:`nllax._losses_glm2`). Every loss is declared
like a family (:mod:`nllax._family`) and goes through the same pipeline: shapes,
dtypes, masks, validity and reductions mean the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

import nllax.bernoulli
import nllax.categorical
import nllax.poisson
from nllax import _equivalences as E
from nllax import _family as F
from nllax import _math as M

__all__ = [
    "sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson",
    "huber", "smooth_l1", "log_cosh", "pinball",
    "poisson_deviance", "binomial_deviance",
    "msle",
    "gamma_deviance", "tweedie_deviance",
]


def residual_loss(name: str, elementwise, *, reduction: str = "sum", smooth: bool = True,
                  options: tuple = (), summary: str = "", params: tuple = ()) -> F.Family:
    """A loss of the residual ``y - pred``: ``elementwise(r, **options)`` per observation.

    ``params``: keyword-only :class:`nllax._family.Param` s of the loss (Huber's
    ``delta``, pinball's ``quantile``), passed to ``elementwise`` as keywords and checked
    like a family's parameters (an invalid value gives NaN and a ``nllax.checked`` error
    naming it)."""

    def per_obs(y, pred, **opts):
        return elementwise(y - pred, **opts)

    return F.Family(
        name=name, data=F.Data("y", F.REAL),
        params=(F.Param("pred", doc="the prediction"),) + tuple(params),
        log_prob=per_obs, options=options, sign=+1, register=False, smooth=smooth,
        qualname=f"nllax.losses.{name}", default_reduction=reduction, summary=summary)


_SSE = residual_loss("sse", jnp.square, summary="sum of squared errors")
_MSE = residual_loss("mse", jnp.square, reduction="mean", summary="mean squared error")
_SAE = residual_loss("sae", M.abs_, smooth=False, summary="sum of absolute errors")
_MAE = residual_loss("mae", M.abs_, reduction="mean", smooth=False,
                     summary="mean absolute error")

sse = F.loss(_SSE, r"""Sum of squared errors :math:`\sum_i w_i (y_i - \hat y_i)^2` (``reduction="sum"``).

    ``pred`` must broadcast to ``y.shape`` without enlarging it (``(n,)`` vs ``(n, 1)`` is
    a ``ValueError``). Gaussian: :math:`\mathrm{NLL} = \mathrm{SSE}/(2\sigma^2) +
    (n/2)\log 2\pi\sigma^2`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.losses.sse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])))
      5.0
    """)
mse = F.loss(_MSE, r"""Mean squared error :math:`\sum_i w_i r_i^2 / \sum_i w_i` (``reduction="mean"``).

    Gaussian: :math:`\mathrm{NLL} = n\,\mathrm{MSE}/(2\sigma^2) + (n/2)\log 2\pi\sigma^2`.
    """)
sae = F.loss(_SAE, r"""Sum of absolute errors :math:`\sum_i w_i |y_i - \hat y_i|`.

    Laplace: :math:`\mathrm{NLL} = \mathrm{SAE}/\beta + n\log 2\beta`. The gradient at a
    zero residual is the subgradient 0.
    """)
mae = F.loss(_MAE, r"""Mean absolute error :math:`\sum_i w_i |r_i| / \sum_i w_i`.

    Laplace: :math:`\mathrm{NLL} = n\,\mathrm{MAE}/\beta + n\log 2\beta`.
    """)


def binary_cross_entropy(
    y: Any, logits: Any, *, reduction: str = "sum", weights: Any = None, where: Any = None
) -> jax.Array:
    r"""Binary cross entropy with logits,
    :math:`-[y\log\sigma(z) + (1-y)\log\sigma(-z)] = \mathrm{softplus}(z) - yz`.

    ``y`` are targets in [0, 1]: hard 0/1 labels (bool is cheapest: nothing to check) or
    soft targets (then the value is the cross entropy between Bernoulli(y) and
    Bernoulli(sigmoid(z)), whose minimum over ``z`` is the entropy of ``y``, not 0).
    Targets outside [0, 1] give NaN. Gradient: :math:`\sigma(z) - y`. Equal to
    ``nllax.bernoulli.nll(y, logits=logits)``.

    Example:
      >>> import nllax
      >>> float(nllax.losses.binary_cross_entropy(1.0, 0.0))  # log 2
      0.6931471...
    """
    return nllax.bernoulli.nll(y, logits=logits, reduction=reduction, weights=weights,
                               where=where)


def cross_entropy(
    labels: Any,
    logits: Any,
    *,
    axis: int = -1,
    reduction: str = "sum",
    weights: Any = None,
    where: Any = None,
) -> jax.Array:
    r"""Cross entropy with integer labels and logits,
    :math:`\log\sum_j e^{z_j} - z_{y}`, summed over observations by default.

    ``labels`` are integer class indices (shape of ``logits`` without ``axis``); a label
    outside ``[0, K)`` gives NaN. Gradient: :math:`\mathrm{softmax}(z) - \mathrm{onehot}(y)`.
    Equal to ``nllax.categorical.nll(labels, logits=logits, axis=axis)``.
    """
    return nllax.categorical.nll(
        labels, logits=logits, axis=axis, reduction=reduction, weights=weights, where=where
    )


@jax.custom_jvp
def _poisson_loss(k, eta):
    # e^eta - k eta, with 0 * (-inf) = 0 for a zero count at zero rate.
    return jnp.exp(eta) - M.xmul(k, eta)


@_poisson_loss.defjvp
def _poisson_loss_jvp(primals, tangents):
    k, eta = primals
    dk, deta = tangents
    return _poisson_loss(k, eta), (jnp.exp(eta) - k) * deta - M.xmul(dk, eta)


_POISSON = F.Family(
    name="poisson", data=F.Data("counts", F.COUNTS),
    params=(F.Param("log_rate", doc="eta = log(lambda)"),),
    log_prob=lambda counts, log_rate: _poisson_loss(counts, log_rate), sign=+1, register=False,
    qualname="nllax.losses.poisson",
    summary="Poisson loss")

poisson = F.loss(_POISSON, r"""Poisson loss :math:`e^{\eta} - k\eta` with log-rate :math:`\eta` (the canonical link).

    Equal to the Poisson NLL minus :math:`\log k!`. Counts must be non-negative
    integers (NaN otherwise). Gradient: :math:`e^\eta - k`.
    """)


# The rows of nllax.equivalences for these losses (new losses register theirs beside them).
E.register(E.gaussian_row("sse", sse, mean=False))
E.register(E.gaussian_row("mse", mse, mean=True))
E.register(E.laplace_row("sae", sae, mean=False))
E.register(E.laplace_row("mae", mae, mean=True))
E.register(E.Equivalence(
    lambda y, logits, *, weights=None, where=None: nllax.bernoulli.nll(
        y, logits=logits, weights=weights, where=where),
    binary_cross_entropy, E.one, E.zero, "binary_cross_entropy", "Bernoulli(logits)", (),
    "a = 1, b = 0"))
E.register(E.Equivalence(
    lambda labels, logits, *, weights=None, where=None: nllax.categorical.nll(
        labels, logits=logits, weights=weights, where=where),
    cross_entropy, E.one, E.zero, "cross_entropy", "Categorical(logits)", (),
    "a = 1, b = 0"))
E.register(E.Equivalence(
    lambda counts, log_rate, *, weights=None, where=None: nllax.poisson.nll(
        counts, log_rate=log_rate, weights=weights, where=where),
    poisson, E.one, E.log_factorials, "poisson", "Poisson(log-rate)", (),
    "a = 1, b = sum log(k!)"))

# The robust and quantile losses (huber, smooth_l1, log_cosh, pinball) and their rows.
from nllax._losses_robust import huber, log_cosh, pinball, smooth_l1  # noqa: E402,F401
# GLM deviances (NLL = deviance / 2 - saturated log-likelihood), with their rows
from nllax._losses_glm1 import binomial_deviance, poisson_deviance  # noqa: E402
from nllax._losses_lognormal import msle as msle  # noqa: E402  (registers its row)
from nllax._losses_glm2 import gamma_deviance, tweedie_deviance  # noqa: E402,F401
