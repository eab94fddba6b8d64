r"""The classical losses, with the same argument order and keywords as the likelihoods.

Data first, then the prediction; ``reduction``, ``weights`` and ``where`` as in
:func:`nllax.gaussian.nll`. Each is the NLL of a family up to an exact affine map
(:data:`nllax.equivalences`):

========================  ======================================  =====================
loss                      definition (per observation)            default reduction
========================  ======================================  =====================
``sse`` / ``mse``         :math:`(y - \hat y)^2`                  sum / mean
``sae`` / ``mae``         :math:`|y - \hat y|`                    sum / mean
``binary_cross_entropy``  :math:`\mathrm{softplus}(z) - yz`       sum
``cross_entropy``         :math:`\log\sum_j e^{z_j} - z_y`        sum
``poisson``               :math:`e^\eta - k\eta`                  sum
========================  ======================================  =====================

``binary_cross_entropy``, ``cross_entropy`` and ``poisson`` are computed by the Bernoulli,
Categorical and Poisson families' stable code (BCE and CE *are* those NLLs; the Poisson loss
is the NLL minus :math:`\log k!`), so they share their numerics and invalid-value rules:
soft targets in [0, 1] are allowed in BCE (anything else is NaN), labels outside
``[0, K)`` are NaN, counts must be non-negative integers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from nllax import _reduce as R
from nllax import bernoulli, categorical
from nllax import poisson as _poisson_family

__all__ = [
    "sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson",
]


def _residual_loss(fn, elementwise, y, pred, reduction, weights, where):
    dtype = R.float_dtype(y, pred, weights)
    y = R.as_data(y, "y", fn, dtype)
    pred = R.as_param(pred, "pred", fn, dtype)
    R.check_fits(pred, "pred", y.shape, "y", fn)

    def neg_terms(y, pred):
        return -elementwise(y - pred), ()

    return R.finish_nll(
        fn, neg_terms, y, (pred,), safe=0.0, reduction=reduction, weights=weights, where=where,
        check_nan=True,
    )


def sse(y: Any, pred: Any, *, reduction: str = "sum", weights: Any = None, where: Any = None) -> jax.Array:
    r"""Sum of squared errors :math:`\sum_i w_i (y_i - \hat y_i)^2` (``reduction="sum"``).

    ``pred`` must broadcast to ``y.shape`` without enlarging it (``(n,)`` vs ``(n, 1)`` is
    a ``ValueError``). Gaussian: :math:`\mathrm{NLL} = \mathrm{SSE}/(2\sigma^2) +
    (n/2)\log 2\pi\sigma^2`.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> float(nllax.losses.sse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])))
      5.0
    """
    return _residual_loss("nllax.losses.sse", jnp.square, y, pred, reduction, weights, where)


def mse(y: Any, pred: Any, *, reduction: str = "mean", weights: Any = None, where: Any = None) -> jax.Array:
    r"""Mean squared error :math:`\sum_i w_i r_i^2 / \sum_i w_i` (``reduction="mean"``).

    Gaussian: :math:`\mathrm{NLL} = n\,\mathrm{MSE}/(2\sigma^2) + (n/2)\log 2\pi\sigma^2`.
    """
    return _residual_loss("nllax.losses.mse", jnp.square, y, pred, reduction, weights, where)


def sae(y: Any, pred: Any, *, reduction: str = "sum", weights: Any = None, where: Any = None) -> jax.Array:
    r"""Sum of absolute errors :math:`\sum_i w_i |y_i - \hat y_i|`.

    Laplace: :math:`\mathrm{NLL} = \mathrm{SAE}/\beta + n\log 2\beta`.
    """
    return _residual_loss("nllax.losses.sae", R.abs_, y, pred, reduction, weights, where)


def mae(y: Any, pred: Any, *, reduction: str = "mean", weights: Any = None, where: Any = None) -> jax.Array:
    r"""Mean absolute error :math:`\sum_i w_i |r_i| / \sum_i w_i`.

    Laplace: :math:`\mathrm{NLL} = n\,\mathrm{MAE}/\beta + n\log 2\beta`.
    """
    return _residual_loss("nllax.losses.mae", R.abs_, y, pred, reduction, weights, where)


def binary_cross_entropy(
    y: Any, logits: Any, *, reduction: str = "sum", weights: Any = None, where: Any = None
) -> jax.Array:
    r"""Binary cross entropy with logits,
    :math:`-[y\log\sigma(z) + (1-y)\log\sigma(-z)] = \mathrm{softplus}(z) - yz`.

    ``y`` are targets in [0, 1]: hard 0/1 labels or soft targets (then the value is the
    cross entropy between Bernoulli(y) and Bernoulli(sigmoid(z)), whose minimum over
    ``z`` is the entropy of ``y``, not 0). Targets outside [0, 1] give NaN. Gradient:
    :math:`\sigma(z) - y`. Equal to ``nllax.bernoulli.nll(y, logits=logits)``.

    Example:
      >>> import nllax
      >>> float(nllax.losses.binary_cross_entropy(1.0, 0.0))  # log 2
      0.6931471...
    """
    return bernoulli.nll(y, logits=logits, reduction=reduction, weights=weights, where=where)


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
    return categorical.nll(
        labels, logits=logits, axis=axis, reduction=reduction, weights=weights, where=where
    )


def poisson(
    counts: Any, log_rate: Any, *, reduction: str = "sum", weights: Any = None, where: Any = None
) -> jax.Array:
    r"""Poisson loss :math:`e^{\eta} - k\eta` with log-rate :math:`\eta` (the canonical link).

    Equal to the Poisson NLL minus :math:`\log k!`. Counts must be non-negative
    integers (NaN otherwise). Gradient: :math:`e^\eta - k`.
    """
    fn = "nllax.losses.poisson"
    dtype = R.float_dtype(counts, log_rate, weights)
    k = R.as_data(counts, "counts", fn, dtype)
    eta = R.as_param(log_rate, "log_rate", fn, dtype)
    R.check_fits(eta, "log_rate", k.shape, "counts", fn)
    return R.finish_nll(
        "nllax.losses.poisson", _neg_poisson_terms, k, (eta,),
        safe=0.0, reduction=reduction, weights=weights, where=where,
    )


def _neg_poisson_terms(k, eta):
    # -(e^eta - k*eta), with 0 * (-inf) = 0 for a zero count at zero rate.
    valid, k = _poisson_family._count_rule(k)
    k_eta = jnp.where(k == 0, jnp.zeros((), eta.dtype), k * eta)
    return k_eta - jnp.exp(eta), ((valid, _poisson_family._K_RULE),)
