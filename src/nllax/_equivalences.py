r"""The table of exact affine relations ``NLL = a * loss + b``, as data.

``nllax.equivalences`` maps each loss's name (the name of its function in
:mod:`nllax.losses`) to an :class:`Equivalence` whose ``a`` and ``b`` are functions of the
data (its weighted, masked count :math:`n = \sum w`, and for Poisson :math:`\sum \log k!`)
and of the noise parameters:

========================  =============  =====================  ==============================
name                      loss           a                      b
========================  =============  =====================  ==============================
``sse``                   SSE            :math:`1/(2\sigma^2)`  :math:`(n/2)\log 2\pi\sigma^2`
``mse``                   MSE            :math:`n/(2\sigma^2)`  :math:`(n/2)\log 2\pi\sigma^2`
``sae``                   SAE            :math:`1/\beta`        :math:`n\log 2\beta`
``mae``                   MAE            :math:`n/\beta`        :math:`n\log 2\beta`
``binary_cross_entropy``  BCE (sum)      1                      0
``cross_entropy``         CE (sum)       1                      0
``poisson``               Poisson loss   1                      :math:`\sum_i w_i\log k_i!`
``poisson_deviance``      deviance       1/2                    :math:`-\ell_{\rm sat} = \sum_i w_i(k_i - k_i\log k_i + \log k_i!)`
``binomial_deviance``     deviance       1/2                    :math:`-\ell_{\rm sat}`, see :mod:`nllax.losses`
========================  =============  =====================  ==============================

Because ``a`` does not depend on the model's parameters,
:math:`\nabla_\theta\mathrm{NLL} = a\,\nabla_\theta\mathrm{loss}`: both objectives have
the same stationary points and every gradient-based optimiser reaches the same
:math:`\hat\theta`. With one :math:`\sigma_i` per observation the Gaussian NLL is *not*
affine in the SSE (it is a weighted least squares with weights :math:`1/\sigma_i^2`);
``a`` refuses such a :math:`\sigma` with an explanation.

New rows are added with :func:`register` next to their loss (a test checks that every
key is the name of a function in :mod:`nllax.losses`).

Example:
  >>> import jax.numpy as jnp, nllax
  >>> eq = nllax.equivalences["sse"]
  >>> c = eq.check(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 3.0]), scale=2.0)
  >>> bool(c.rel_error < 1e-6)
  True
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from nllax import _eager_calls
from nllax import _reduce as R

__all__ = ["Equivalence", "EquivalenceCheck", "equivalences", "register"]


@dataclasses.dataclass(frozen=True)
class EquivalenceCheck:
    """The two sides of ``NLL = a * loss + b`` evaluated on given inputs."""

    nll: jax.Array
    loss: jax.Array
    a: jax.Array
    b: jax.Array

    @property
    def predicted(self) -> jax.Array:
        """``a * loss + b``."""
        return self.a * self.loss + self.b

    @property
    def abs_error(self) -> jax.Array:
        """``|NLL - (a * loss + b)|``: by how much the identity misses."""
        return jnp.abs(self.nll - self.predicted)

    @property
    def rel_error(self) -> jax.Array:
        """The miss relative to the largest term, ``max(|NLL|, |a * loss|, |b|)`` (the
        size of what was added); ~machine epsilon when the identity holds."""
        size = jnp.maximum(jnp.maximum(jnp.abs(self.nll), jnp.abs(self.a * self.loss)),
                           jnp.abs(self.b))
        return self.abs_error / jnp.where(size > 0, size, 1.0)


@dataclasses.dataclass(frozen=True)
class Equivalence:
    """One row of the table: ``nll(y, pred, **noise) == a(y, **noise) * loss(y, pred)
    + b(y, **noise)``.

    Attributes:
      nll: ``nll(y, pred, *, weights=None, where=None, **noise)``, the summed NLL.
      loss: ``loss(y, pred, *, weights=None, where=None)``, with its default reduction.
      a: ``a(y, *, weights=None, where=None, **noise)``, the factor (> 0).
      b: ``b(y, *, weights=None, where=None, **noise)``, the offset (free of the model).
      name: the table's key: the name of the loss function in :mod:`nllax.losses`.
      family: the likelihood, in words.
      noise: names of the noise keyword arguments (``("scale",)`` or ``()``).
      formula: ``a`` and ``b`` in words.
      loss_options: ``loss_options(**noise) -> {keyword: value}``, the loss's own
        keyword arguments at these noise parameters (pinball's ``quantile``, the Huber
        loss's ``delta``); ``None`` for a loss without any. :meth:`loss_kwargs` applies
        it; :meth:`check` passes them to the loss.
      data: names among the keyword arguments that are data beyond ``y`` (the binomial's
        ``trials``): the loss takes them too, positionally after ``y``
        (``loss(y, trials, pred)``); see :meth:`loss_at`.
    """

    nll: Callable[..., jax.Array]
    loss: Callable[..., jax.Array]
    a: Callable[..., jax.Array]
    b: Callable[..., jax.Array]
    name: str = ""
    family: str = ""
    noise: tuple[str, ...] = ()
    formula: str = ""
    loss_options: Callable[..., Mapping[str, Any]] | None = None
    data: tuple[str, ...] = ()

    def loss_kwargs(self, **noise: Any) -> dict[str, Any]:
        """The keyword arguments the loss takes at these noise parameters (``{}`` for
        most rows): ``eq.loss(y, pred, **eq.loss_kwargs(**noise))`` is the loss of the
        identity."""
        return {} if self.loss_options is None else dict(self.loss_options(**noise))

    def loss_at(self, y: Any, pred: Any, *, weights: Any = None, where: Any = None,
                **noise: Any) -> jax.Array:
        """``loss(y, pred)`` given the row's keyword arguments (``**noise``): those named in
        ``data`` go to the loss, positionally after ``y``; the others are the likelihood's
        alone; the loss's own options (:meth:`loss_kwargs`) are added."""
        extra = tuple(noise[k] for k in self.data)
        return self.loss(y, *extra, pred, weights=weights, where=where,
                         **self.loss_kwargs(**noise))

    def check(self, y: Any, pred: Any, *, weights: Any = None, where: Any = None,
              **noise: Any) -> EquivalenceCheck:
        """Evaluates both sides on ``(y, pred)``; see :class:`EquivalenceCheck`.

        Called eagerly (outside any transformation), the four evaluations run as one
        compiled program, cached per row and argument structure (``nllax._eager_calls``)."""
        return EquivalenceCheck(*_eager_calls.run(_check, (self,), y, pred, weights, where,
                                                  noise))


def _check(eq: Equivalence, y, pred, weights, where, noise) -> tuple:
    """(nll, loss, a, b), the fields of :class:`EquivalenceCheck` in order."""
    kw = dict(weights=weights, where=where)
    return (eq.nll(y, pred, **kw, **noise), eq.loss_at(y, pred, **kw, **noise),
            eq.a(y, **kw, **noise), eq.b(y, **kw, **noise))


_FN = "nllax.equivalences"


def count(y, weights, where, dtype):
    y = jnp.asarray(y)
    mask = R.as_mask(where, y.shape, _FN)
    w = None if weights is None else jnp.asarray(weights, dtype)
    return R.count(y.shape, w, mask, dtype)


def scalar_noise(value, name, table):
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(
            f"nllax.equivalences[{table!r}]: `{name}` has shape {value.shape}; the affine "
            f"relation to the loss needs one {name} for all observations. With one {name} "
            f"per observation the NLL is not proportional to the loss: it is a weighted "
            f"loss with weights 1/{name}**2 (Gaussian) or 1/{name} (Laplace)."
        )
    return value


def _dtype(*xs):
    return R.float_dtype(*xs)


def location_scale_row(name, family, loss_fn, mean, a_per_scale, b_per_obs, family_text, formula):
    """A row whose constants are ``a = (n or 1) * a_per_scale(s)`` and
    ``b = n * b_per_obs(s)`` for one scalar noise scale ``s``."""

    def nll(y, loc, *, scale=1.0, weights=None, where=None):
        return family.nll(y, loc, scale, weights=weights, where=where)

    def _scale_and_count(y, scale, weights, where):
        s = scalar_noise(scale, "scale", name)
        dt = _dtype(y, scale, weights)
        return s.astype(dt), count(y, weights, where, dt)

    def a(y, *, scale=1.0, weights=None, where=None):
        s, n = _scale_and_count(y, scale, weights, where)
        return (n if mean else 1.0) * a_per_scale(s)

    def b(y, *, scale=1.0, weights=None, where=None):
        s, n = _scale_and_count(y, scale, weights, where)
        return n * b_per_obs(s)

    return Equivalence(nll, loss_fn, a, b, name, family_text, ("scale",), formula)


def gaussian_row(name, loss_fn, mean):
    """The SSE / MSE row (``mean``: the loss is divided by n)."""
    from nllax import gaussian

    return location_scale_row(
        name, gaussian, loss_fn, mean,
        lambda s: 1.0 / (2.0 * jnp.square(s)),
        lambda s: 0.5 * (math.log(2 * math.pi) + 2 * jnp.log(s)),
        "Normal(loc, sigma)",
        f"a = {'n/(2 sigma^2)' if mean else '1/(2 sigma^2)'}, b = (n/2) log(2 pi sigma^2)",
    )


def laplace_row(name, loss_fn, mean):
    """The SAE / MAE row."""
    from nllax import laplace

    return location_scale_row(
        name, laplace, loss_fn, mean,
        lambda s: 1.0 / s,
        lambda s: math.log(2.0) + jnp.log(s),
        "Laplace(loc, beta)",
        f"a = {'n/beta' if mean else '1/beta'}, b = n log(2 beta)",
    )


def one(y, *, weights=None, where=None):
    return jnp.ones((), _dtype(y, weights))


def zero(y, *, weights=None, where=None):
    return jnp.zeros((), _dtype(y, weights))


def log_factorials(counts, *, weights=None, where=None):
    dt = _dtype(counts, weights)
    k = jnp.asarray(counts).astype(dt)
    terms = jax.scipy.special.gammaln(k + 1.0)
    return R.reduce(terms, reduction="sum", weights=weights,
                    mask=R.as_mask(where, k.shape, _FN), fn=_FN)


_TABLE: dict[str, Equivalence] = {}
equivalences: Mapping[str, Equivalence] = MappingProxyType(_TABLE)


def register(eq: Equivalence) -> Equivalence:
    """Adds a row to :data:`nllax.equivalences` under ``eq.name`` (the loss's name)."""
    if eq.name in _TABLE:
        raise ValueError(f"nllax.equivalences: a row named {eq.name!r} exists already")
    _TABLE[eq.name] = eq
    return eq
