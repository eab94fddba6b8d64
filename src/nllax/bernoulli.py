r"""Bernoulli likelihood: the likelihood whose NLL is binary cross entropy.

.. math::

    \log p(y \mid z) = y \log\sigma(z) + (1-y)\log\sigma(-z)
        = -\big[\mathrm{softplus}(z) - yz\big],

with logits :math:`z` (or probabilities :math:`p = \sigma(z)`:
:math:`y\log p + (1-y)\log(1-p)`). The NLL *is* the binary cross entropy with logits,
summed: :math:`\mathrm{NLL} = 1\cdot\mathrm{BCE} + 0`, and
:math:`\partial\,\mathrm{NLL}/\partial z = \sigma(z) - y`.

Numerics: with :math:`L = \log(1 + e^{-|z|})`,
:math:`-\log p = L + y\,\max(-z, 0) + (1-y)\max(z, 0)`: no term cancels against another
for 0/1 labels, so :math:`y = 1, z = 20` gives :math:`-2.06\times 10^{-9}` to full float32
precision (the common form :math:`yz - \mathrm{softplus}(z)` returns 0 there). Logits of
:math:`\pm\infty` give the exact limits (0 or :math:`-\infty`) with finite gradients and
Hessians (``0 * inf`` is taken as 0 for an outcome that was not observed).

``y`` may be a soft target in [0, 1] (the cross entropy of two Bernoulli distributions);
targets outside [0, 1] and probabilities outside [0, 1] give NaN. Bool targets need no
check at all. Expected information per observation: :math:`p(1-p)` for ``logits``,
:math:`1/(p(1-p))` for ``probs``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax import _math as M

__all__ = ["log_prob", "nll"]


@jax.custom_jvp
def _bce(y, z):
    """``-log p(y | z) = max(z, 0) - y z + log1p(exp(-|z|))``, with the linear part as
    ``(1 - y) z`` or ``-y z`` (exact for 0/1 labels, and ``0 * inf = 0``)."""
    lin = jnp.where(z > 0, M.xmul(1.0 - y, z), M.xmul(y, -z))
    return lin + jnp.log1p(jnp.exp(-jnp.abs(z)))


@_bce.defjvp
def _bce_jvp(primals, tangents):
    # d/dz = sigmoid(z) - y, d/dy = -z. Written out: autodiff through the stable form
    # costs two extra passes on XLA:CPU (measured 1.4x), and sigmoid is finite at +-inf.
    y, z = primals
    dy, dz = tangents
    return _bce(y, z), (jax.nn.sigmoid(z) - y) * dz - M.xmul(dy, z)


def _log_prob(y, logits=None, probs=None):
    if probs is None:
        return F.Affine(-1.0, _bce(y, logits), 0.0)
    return M.xmul(y, jnp.log(probs)) + M.xmul(1.0 - y, jnp.log1p(-probs))


def _fisher(logits=None, probs=None):
    if probs is None:
        p = jax.nn.sigmoid(logits)
        return {"logits": p * (1.0 - p)}
    return {"probs": 1.0 / (probs * (1.0 - probs))}


def _moments(logits=None, probs=None):
    p = jax.nn.sigmoid(logits) if probs is None else probs
    return p, p * (1.0 - p)


#: The success probability, as ``logits=`` (canonical) or ``probs=``, exactly one; shared
#: with :mod:`nllax.binomial`.
PROBABILITY = F.OneOf("logits", (
    F.Param("logits", keyword_only=True, doc="z = log(p / (1 - p)), the canonical link"),
    F.Param("probs", F.UNIT, keyword_only=True,
            to_canonical=lambda p: jnp.log(p) - jnp.log1p(-p),
            from_canonical=jax.nn.sigmoid, doc="p in [0, 1]"),
))

family = F.Family(
    name="bernoulli",
    data=F.Data("y", F.UNIT),
    params=(PROBABILITY,),
    log_prob=_log_prob,
    fisher=_fisher,
    moments=_moments,
    summary="Bernoulli(logits)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Bernoulli log-probability :math:`y\log p + (1-y)\log(1-p)`.

    Args:
      y: outcomes in [0, 1] (0/1, bool, or soft targets), any shape.
      logits: :math:`z = \log(p/(1-p))`, broadcastable to ``y.shape``; or
      probs: :math:`p \in [0, 1]`. Exactly one of the two.

    Returns:
      Array of ``y.shape``; NaN for ``y`` or ``probs`` outside [0, 1].

    Example:
      >>> import nllax
      >>> float(nllax.bernoulli.log_prob(1.0, logits=0.0))  # log(1/2)
      -0.6931471...
    """,
    "nll": r"""Bernoulli negative log-likelihood (= binary cross entropy), reduced
    (``reduction``, ``weights``, ``where`` as in :func:`nllax.gaussian.nll`).""",
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)
