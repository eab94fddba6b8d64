r"""Ordinal (cumulative-link) likelihood: ordered labels from a latent location and cut-points.

Labels :math:`y \in \{0, \dots, K-1\}` come from a latent :math:`Y^* = \eta + \varepsilon`
cut at increasing cut-points :math:`c_0 < c_1 < \dots < c_{K-2}`; with :math:`F` the CDF of
:math:`\varepsilon` (``link="logit"``: logistic, the proportional-odds model;
``link="probit"``: standard normal),

.. math::

    P(Y \le k \mid \eta, c) = F(c_k - \eta), \qquad
    \log p(y = k) = \log\big(F(c_k - \eta) - F(c_{k-1} - \eta)\big),

with :math:`c_{-1} = -\infty` and :math:`c_{K-1} = +\infty`. This is the parametrisation
of R's ``MASS::polr`` and statsmodels' ``OrderedModel`` (no intercept in :math:`\eta`: the
cut-points play its role). ``location`` is :math:`\eta` per observation (e.g. ``x @ beta``);
``cutpoints`` has the :math:`K - 1` cut-points on its last axis, shared (shape ``(K-1,)``)
or per observation (``labels.shape + (K-1,)``, or anything broadcasting to it), and fixes
:math:`K`.

Numerics: the naive difference of two CDFs cancels when both are close to 1 (or to each
other), and :math:`\log` of it then keeps no digit. With :math:`a = c_{k-1} - \eta`,
:math:`b = c_k - \eta` and the gap :math:`d = c_k - c_{k-1}` (taken from the cut-points,
not from :math:`b - a`):

* logit: :math:`\sigma(b) - \sigma(a) = \sigma(b)\,\sigma(-a)\,(1 - e^{-d})`, so

  .. math::

      \log p = \log\sigma(b) + \log\sigma(-a) + \mathrm{log1mexp}(-d),

  a sum of three non-positive terms (the first absent for the last label, the second for
  the first, the third for both): nothing cancels, in either tail, for a nearly certain
  label (each term tiny) or a narrow interval (:math:`\log(1 - e^{-d}) \approx \log d`).
* probit: the end labels are :math:`\log\Phi(b)` and :math:`\log\Phi(-a)` (a two-tailed
  ``log_ndtr``); an inner interval is reflected into the lower half
  (:math:`\Phi(b) - \Phi(a) = \Phi(-a) - \Phi(-b)` when :math:`a + b > 0`), then
  :math:`\log\Phi(b) + \mathrm{log1mexp}(\log\Phi(a) - \log\Phi(b))` if it lies below 0;
  across 0 it is :math:`\mathrm{log1p}(-(\Phi(a) + \Phi(-b)))` when that outside mass is
  below 1/2 (a nearly certain label), else :math:`\log\tfrac12(\mathrm{erf}(b/\sqrt2) +
  \mathrm{erf}(-a/\sqrt2))` (two positive terms). The same two ``log_ndtr`` evaluations
  serve the end labels and the tails.

The error is then a few eps times the conditioning of the inputs: the rounding
:math:`\epsilon|x|` of :math:`a` or :math:`b` moves :math:`\log p` by
:math:`\epsilon|x|\,f(x)/p`; :math:`d` comes from the cut-points, so a narrow logit
interval costs only :math:`\epsilon|c|/d`. The probit's tail form subtracts two log-CDFs,
so a narrow interval away from 0 costs in addition
:math:`\epsilon|\log\Phi(b)|\,\Phi(b)/(d\,\phi(b))` relative in :math:`p` (1e-9 for
:math:`d = 10^{-7}`; nothing for the gaps of fitted models). Every branch sees harmless
inputs where it is not taken, so gradients and Hessians are finite wherever the value is.
The probit's derivative is written out, :math:`(\phi(b)\,db - \phi(a)\,da)/p`, each ratio as
:math:`\exp(\log\phi(x) - \log p)` (finite in both tails).

Cut-points must be finite and strictly increasing along their last axis, and labels
integers in :math:`[0, K)`; anything else gives NaN (value and gradient) and
``nllax.checked`` names the argument. For unconstrained fitting, parametrise the
cut-points by the first and the logs of the increments (as statsmodels does):
``cutpoints = jnp.cumsum(jnp.concatenate([c0[None], jnp.exp(log_steps)]))``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _family as F
from nllax import _math as M

__all__ = ["log_prob", "nll"]

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


_SELECT_MAX = 16  # up to this many cut-points, a chain of selects instead of a gather


def _take(c, idx):
    """``c[..., idx]`` per observation. For a few cut-points, a chain of selects: it fuses
    into the elementwise pass, where XLA:CPU's gather from a small table does not (the
    gathers made the whole NLL and gradient 1.26x slower with K = 4, measured)."""
    k = c.shape[-1]
    if k > _SELECT_MAX:
        if c.ndim == 1:
            return c[idx]
        c = jnp.broadcast_to(c, idx.shape + (k,))
        return jnp.take_along_axis(c, idx[..., None], axis=-1)[..., 0]
    out = c[..., 0]
    for j in range(1, k):
        out = jnp.where(idx == j, c[..., j], out)
    return jnp.broadcast_to(out, idx.shape)


def _log_prob(labels, location, cutpoints, link="logit"):
    k1 = cutpoints.shape[-1]  # K - 1
    c_hi = _take(cutpoints, jnp.clip(labels, 0, k1 - 1))
    c_lo = _take(cutpoints, jnp.clip(labels - 1, 0, k1 - 1))
    first = labels <= 0
    last = labels >= k1
    a = c_lo - location
    b = c_hi - location
    if link == "logit":
        out = _logit_ends(a, b, first, last, _logit_gap(cutpoints, labels, c_hi - c_lo,
                                                        first, last))
    else:
        out = _probit_interval(a, b, first, last)
    if cutpoints.ndim > 1:
        # `+ 0 * sum(c)`: the whole row enters, so an invalid row has a NaN gradient in
        # every entry, not only in the two the label uses.
        out = out + 0.0 * jnp.sum(cutpoints, axis=-1)
    return out


def _logit_gap(cutpoints, labels, d, first, last):
    """log1mexp(-d) for an inner label, 0 for the end ones: one value per label from a
    table of K when the cut-points are shared, per observation otherwise."""
    if cutpoints.ndim == 1:
        zero = jnp.zeros((1,), cutpoints.dtype)
        table = jnp.concatenate([zero, M.log1mexp(cutpoints[:-1] - cutpoints[1:]), zero])
        return _take(table, labels)
    inner = ~(first | last)
    g = M.log1mexp(-jnp.where(inner, d, 1.0))
    return jnp.where(inner, g, jnp.zeros((), g.dtype))


@jax.custom_jvp
def _logit_ends(a, b, first, last, gap):
    """``log sigmoid(b) + log sigmoid(-a) + gap``, without the first term for the last
    label and the second for the first (``gap`` is 0 for both);
    ``log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))``. A select last: XLA:CPU's reduction
    fusion stops at it, so the term is one elementwise loop (with an add of the two
    selected halves and the gap last, it took the adds and wrote each operand as an
    n-sized buffer)."""
    up = jnp.minimum(b, 0.0) - jnp.log1p(jnp.exp(-jnp.abs(b)))
    down = jnp.minimum(-a, 0.0) - jnp.log1p(jnp.exp(-jnp.abs(a)))
    return jnp.where(first, up, jnp.where(last, down, (up + down) + gap))


@_logit_ends.defjvp
def _logit_ends_jvp(primals, tangents):
    # d/db log sigmoid(b) = sigmoid(-b), d/da log sigmoid(-a) = -sigmoid(a): written out
    # (one pass; autodiff through |x| would also give a wrong Hessian at x = 0), and
    # smooth, so the Hessian is the derivative of these.
    a, b, first, last, gap = primals
    da, db, dgap = tangents[0], tangents[1], tangents[4]
    zero = jnp.zeros((), a.dtype)
    wb = jnp.where(last, zero, jax.nn.sigmoid(-b))
    wa = jnp.where(first, zero, jax.nn.sigmoid(a))
    return _logit_ends(a, b, first, last, gap), wb * db - wa * da + dgap


def _log_phi(x):
    return -0.5 * jnp.square(x) - _HALF_LOG_2PI


@jax.custom_jvp
def _probit_interval(a, b, first, last):
    """log(Phi(b) - Phi(a)), with Phi(a) = 0 for the first label and Phi(b) = 1 for the
    last (see the module docstring)."""
    inner = ~(first | last)
    flip = inner & ((a + b) > 0)  # Phi(b) - Phi(a) = Phi(-a) - Phi(-b): into the lower half
    a2 = jnp.where(flip, -b, a)
    b2 = jnp.where(flip, -a, b)
    tail = inner & (b2 <= 0)
    # one pair of log-CDFs for every label: log Phi(b) (first), log Phi(-a) (last), and
    # log Phi(b2), log Phi(a2) (an inner interval below 0)
    x1 = jnp.where(last, -a, jnp.where(inner, jnp.where(tail, b2, -1.0), b))
    x2 = jnp.where(tail, a2, -2.0)
    l1 = M.log_ndtr(x1)
    l2 = M.log_ndtr(x2)
    tail_v = l1 + M.log1mexp(l2 - l1)
    # across 0 (a2 < 0 < b2): the outside mass q, or the erf form when q >= 1/2
    across = inner & ~tail
    sa = jnp.where(across, a2, -1.0)
    sb = jnp.where(across, b2, 1.0)
    q = jax.scipy.special.ndtr(sa) + jax.scipy.special.ndtr(-sb)
    erf = jax.scipy.special.erf
    big = jnp.log1p(-jnp.minimum(q, 0.5))
    small = jnp.log(0.5 * (erf(sb * _SQRT1_2) + erf(-sa * _SQRT1_2)))
    mid = jnp.where(q < 0.5, big, small)
    return jnp.where(inner, jnp.where(tail, tail_v, mid), l1)


@_probit_interval.defjvp
def _probit_interval_jvp(primals, tangents):
    # d log p = (phi(b) db - phi(a) da) / p, each ratio as exp(log phi(x) - log p): finite
    # in both tails (the hazard there), one elementwise pass, and itself differentiable
    # (the Hessian). Autodiff through the branches above differentiates every branch: the
    # probit Hessian then compiled 2x slower (7.4 s against 3.7 s, 6 observations).
    a, b, first, last = primals
    da, db = tangents[0], tangents[1]
    out = _probit_interval(a, b, first, last)
    zero = jnp.zeros((), out.dtype)
    wb = jnp.where(last, zero, jnp.exp(_log_phi(jnp.where(last, 0.0, b)) - out))
    wa = jnp.where(first, zero, jnp.exp(_log_phi(jnp.where(first, 0.0, a)) - out))
    return out, wb * db - wa * da


def _cutpoints_ok(c):
    ok = jnp.all(jnp.isfinite(c), axis=-1)
    if c.shape[-1] > 1:
        ok = ok & jnp.all(c[..., 1:] > c[..., :-1], axis=-1)
    return ok


def _safe_cutpoints(event_shape):
    k1 = event_shape[-1]
    return np.arange(k1, dtype=np.float64) - 0.5 * (k1 - 1)


CUTPOINTS = F.Constraint(
    "cutpoints", "must be finite and strictly increasing along the last axis (a cut-point "
    "<= the one before it, or NaN/inf)", _cutpoints_ok, safe=_safe_cutpoints, event_ndim=1)


def _prepare(labels, params, options, fn, raw):
    c = params["cutpoints"]
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"{fn}: `cutpoints` must have the K - 1 >= 1 cut-points on its last "
                         f"axis, got shape {tuple(c.shape)}.")
    return labels, params, {"labels": F.labels(c.shape[-1] + 1)}


family = F.Family(
    name="ordinal",
    data=F.Data("labels", F.labels(2), kind="int"),
    params=(
        F.Param("location", doc="eta, the latent location (x @ beta)"),
        F.Param("cutpoints", CUTPOINTS, keyword_only=True, event_ndim=1,
                doc="the K - 1 increasing cut-points, last axis"),
    ),
    options=(F.Option("link", "logit", ("logit", "probit"),
                      doc="logit (proportional odds) or probit"),),
    log_prob=_log_prob,
    prepare=_prepare,
    summary="Ordinal(location, cutpoints)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation ordinal log-probability
    :math:`\log(F(c_y - \eta) - F(c_{y-1} - \eta))`.

    Args:
      labels: integer labels in ``[0, K)``, any shape.
      location: :math:`\eta`, broadcastable to ``labels.shape`` without enlarging it.
      cutpoints: the :math:`K-1` finite, strictly increasing cut-points on the last axis;
        the other axes broadcast to ``labels.shape``.
      link: ``"logit"`` (proportional odds, default) or ``"probit"``.

    Returns:
      Array of ``labels.shape``; NaN for a label outside ``[0, K)`` or cut-points that
      are not finite and increasing.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> c = jnp.array([-1.0, 1.0])
      >>> float(nllax.ordinal.log_prob(1, 0.0, cutpoints=c))  # log(sigmoid(1) - sigmoid(-1))
      -0.7719368...
      >>> float(nllax.ordinal.log_prob(0, 40.0, cutpoints=c))  # log sigmoid(-41), no underflow
      -41.0
    """,
    "nll": r"""Ordinal negative log-likelihood, reduced over observations (``reduction``,
    ``weights``, ``where`` as in :func:`nllax.gaussian.nll`, with the shape of ``labels``).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> y = jnp.array([0, 2, 1])
      >>> eta = jnp.array([-0.5, 1.0, 0.2])
      >>> round(float(nllax.ordinal.nll(y, eta, cutpoints=jnp.array([-1.0, 1.0]),
      ...                               link="probit")), 6)
      2.264958
    """,
})
log_prob = _fns["log_prob"]
nll = _fns["nll"]
F.register(__name__, family)
