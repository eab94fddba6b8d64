r"""Link functions of generalised linear models, for any mean-parametrised family.

A link :math:`g` maps the mean :math:`\mu` to the linear predictor :math:`\eta = g(\mu)`;
a model computes :math:`\mu = g^{-1}(\eta)` from :math:`\eta = X\beta` and passes it to a
family's mean (or probability, or rate) argument. Each link is a small immutable object
with four functions:

* ``link(mu)``: :math:`\eta = g(\mu)`;
* ``inverse(eta)``: :math:`\mu = g^{-1}(\eta)`;
* ``derivative(mu)``: :math:`d\eta/d\mu = g'(\mu)`;
* ``inverse_derivative(eta)``: :math:`d\mu/d\eta = 1/g'(g^{-1}(\eta))`.

==============  ==============================  =================================
link            :math:`g(\mu)`                  :math:`g^{-1}(\eta)`
==============  ==============================  =================================
``logit``       :math:`\log(\mu/(1-\mu))`       :math:`\sigma(\eta)`
``probit``      :math:`\Phi^{-1}(\mu)`          :math:`\Phi(\eta)`
``cloglog``     :math:`\log(-\log(1-\mu))`      :math:`1 - \exp(-e^\eta)`
``log``         :math:`\log\mu`                 :math:`e^\eta`
``identity``    :math:`\mu`                     :math:`\eta`
``inverse``     :math:`1/\mu`                   :math:`1/\eta`
``sqrt``        :math:`\sqrt\mu`                :math:`\eta^2`
``power(p)``    :math:`\mu^p`                   :math:`\eta^{1/p}` (``power(0)`` is ``log``)
==============  ==============================  =================================

Numerics: every form is the stable one: ``logit`` as :math:`\log\mu - \mathrm{log1p}(-\mu)`
and its inverse as the sigmoid; ``probit``'s inverse ``ndtr`` and its derivative
:math:`\phi(\eta)` (0, not NaN, in the far tails), its link's derivative
:math:`1/\phi(\Phi^{-1}(\mu))` as an exponential of the log-density; ``cloglog``'s link
:math:`\log(-\mathrm{log1p}(-\mu))` and inverse :math:`-\mathrm{expm1}(-e^\eta)` (exact for
small :math:`\mu`, where :math:`1 - \exp(\cdot)` keeps no digit), its inverse's derivative
:math:`\exp(\eta - e^\eta)` (finite, 0 in both tails, with derivatives written out so that
every order stays finite). For a family that takes logits
(``nllax.bernoulli``, ``nllax.binomial``) the canonical ``logit`` link needs no inverse at
all: pass :math:`\eta` as ``logits=``, which also keeps probabilities that round to 0 or
1 exact in the likelihood. The links are plain JAX functions (jit, grad, vmap).

Example:
  >>> import jax.numpy as jnp, nllax
  >>> from nllax import links
  >>> X, b = jnp.array([[1.0, 0.5], [1.0, 2.0]]), jnp.array([0.3, 0.7])
  >>> y = jnp.array([1.0, 2.0])
  >>> v = nllax.poisson.nll(y, rate=links.identity.inverse(X @ b))   # identity link
  >>> w = nllax.binomial.nll(y, 3.0, probs=links.probit.inverse(X @ b))  # probit link
  >>> float(links.logit.inverse(links.logit.link(0.25)))
  0.25
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["Link", "logit", "probit", "cloglog", "log", "identity", "inverse", "sqrt",
           "power"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class Link:
    """A GLM link: ``link(mu) = eta``, ``inverse(eta) = mu``, ``derivative(mu) =
    d eta / d mu``, ``inverse_derivative(eta) = d mu / d eta``; ``name`` for display."""

    name: str
    link: Callable[[jax.Array], jax.Array]
    inverse: Callable[[jax.Array], jax.Array]
    derivative: Callable[[jax.Array], jax.Array]
    inverse_derivative: Callable[[jax.Array], jax.Array]

    def __repr__(self) -> str:
        return f"nllax.links.{self.name}"


def _a(x):
    """A float array (Python numbers and integers become the default float dtype)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _logit_link(mu):
    mu = _a(mu)
    return jnp.log(mu) - jnp.log1p(-mu)


def _logit_derivative(mu):
    mu = _a(mu)
    return 1.0 / (mu * (1.0 - mu))


def _logit_inverse_derivative(eta):
    eta = _a(eta)
    return jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta)


logit = Link("logit", _logit_link, lambda eta: jax.nn.sigmoid(_a(eta)), _logit_derivative,
             _logit_inverse_derivative)


def _log_phi(z):
    return -0.5 * jnp.square(z) - _HALF_LOG_2PI


probit = Link(
    "probit",
    lambda mu: jax.scipy.special.ndtri(_a(mu)),
    lambda eta: jax.scipy.special.ndtr(_a(eta)),
    lambda mu: jnp.exp(-_log_phi(jax.scipy.special.ndtri(_a(mu)))),
    lambda eta: jnp.exp(_log_phi(_a(eta))),
)


def _cloglog_derivative(mu):
    # d/dmu log(-log(1 - mu)) = 1 / ((1 - mu) * (-log1p(-mu)))
    mu = _a(mu)
    return 1.0 / ((1.0 - mu) * -jnp.log1p(-mu))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _gompertz(c, eta):
    """``exp(c eta - exp(eta))``, with the derivative ``c f_c - f_(c+1)`` written out: the
    default rule multiplies ``exp(-exp(eta)) = 0`` by ``exp(eta) = inf`` for a large
    ``eta`` (NaN), here each term is 0 there, to every order."""
    return jnp.exp(c * eta - jnp.exp(eta))


@_gompertz.defjvp
def _gompertz_jvp(c, primals, tangents):
    (eta,), (deta,) = primals, tangents
    out = _gompertz(c, eta)
    return out, (c * out - _gompertz(c + 1, eta)) * deta


@jax.custom_jvp
def _cloglog_inverse(eta):
    return -jnp.expm1(-jnp.exp(eta))


@_cloglog_inverse.defjvp
def _cloglog_inverse_jvp(primals, tangents):
    (eta,), (deta,) = primals, tangents
    return _cloglog_inverse(eta), _gompertz(1, eta) * deta


cloglog = Link(
    "cloglog",
    lambda mu: jnp.log(-jnp.log1p(-_a(mu))),
    lambda eta: _cloglog_inverse(_a(eta)),
    _cloglog_derivative,
    lambda eta: _gompertz(1, _a(eta)),
)

log = Link("log", lambda mu: jnp.log(_a(mu)), lambda eta: jnp.exp(_a(eta)),
           lambda mu: 1.0 / _a(mu), lambda eta: jnp.exp(_a(eta)))

identity = Link("identity", _a, _a, lambda mu: jnp.ones_like(_a(mu)),
                lambda eta: jnp.ones_like(_a(eta)))

inverse = Link("inverse", lambda mu: 1.0 / _a(mu), lambda eta: 1.0 / _a(eta),
               lambda mu: -1.0 / jnp.square(_a(mu)), lambda eta: -1.0 / jnp.square(_a(eta)))

sqrt = Link("sqrt", lambda mu: jnp.sqrt(_a(mu)), lambda eta: jnp.square(_a(eta)),
            lambda mu: 0.5 / jnp.sqrt(_a(mu)), lambda eta: 2.0 * _a(eta))


def power(p: float) -> Link:
    """The power link :math:`\\eta = \\mu^p` (``p`` a nonzero Python number; ``power(0)``
    is the log link, its limit in the Box-Cox sense; ``power(1)`` is ``identity``,
    ``power(-1)`` ``inverse``, ``power(0.5)`` ``sqrt``).

    Example:
      >>> from nllax import links
      >>> float(links.power(2.0).inverse(9.0))
      3.0
    """
    p = float(p)
    if p == 0.0:
        return log
    if p == 1.0:
        return identity
    q = 1.0 / p
    return Link(
        f"power({p:g})",
        lambda mu: _a(mu) ** p,
        lambda eta: _a(eta) ** q,
        lambda mu: p * _a(mu) ** (p - 1.0),
        lambda eta: q * _a(eta) ** (q - 1.0),
    )
