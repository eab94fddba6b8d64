r"""Wrappers: new families made from a family, declared with the same family core.

Each wrapper takes a family (its module, e.g. ``nllax.poisson``) and returns a *wrapped
family*: an object with the interface of a family module (``log_prob``, ``nll``,
``family``) whose :class:`~nllax.Family` has the base family's data and parameters plus
the wrapper's own, and whose log-density calls the base family's declared ``log_prob``
(and ``log_cdf`` / ``log_sf``) on the already checked arguments. The whole pipeline
therefore applies unchanged: shapes, exactly-one groups, dtypes, masks, weights,
reductions, invalid values (the base's rules and the wrapper's) and ``nllax.checked``
messages, which name the wrapped family (``nllax.zero_inflated(nllax.poisson): `zero_probs`
...``).

Over a count family (non-negative integer data, no CDF declared):

.. math::

    \text{zero\_inflated:}\quad p(y) = \pi\,[y = 0] + (1 - \pi)\,f(y), \qquad
    \text{hurdle:}\quad p(0) = \pi,\ \ p(y) = (1 - \pi)\frac{f(y)}{1 - f(0)}\ (y > 0),

    \text{truncated (lower } L\text{):}\quad p(y) = \frac{f(y)}{P_f(Y \ge L)}
        = \frac{f(y)}{1 - \sum_{j<L} f(j)}\quad (y \ge L),

with :math:`\pi` given as ``zero_logits`` (:math:`\operatorname{logit}\pi`) or ``zero_probs``
(exactly one; :math:`\pi` is the probability of a zero from the zero component, for both
the zero-inflated and the hurdle model). ``zero_truncated`` is ``truncated(lower=1)``.
Over a continuous family (``log_cdf`` and ``log_sf`` declared), per observation:

.. math::

    \text{censored:}\quad \log p(y) = \begin{cases}
      \log F(\ell) & y \le \ell \ \text{(left-censored: } Y^* \le \ell)\\
      \log(1 - F(u)) & y \ge u \ \text{(right-censored: } Y^* \ge u)\\
      \log f(y) & \ell < y < u,\end{cases}

the Tobit model (``lower=0``) and right-censored survival (``upper = t`` where the event
was not observed, ``+inf`` where it was).

Numerics: the zero-inflated zero is :math:`\operatorname{logaddexp}(\log\pi, \log(1-\pi) +
\log f(0))`, exact whichever term dominates (with ``zero_probs`` its derivative is written
out, so that :math:`\pi = 0` or 1 has a finite gradient); the truncation's
:math:`\log(1 - f(0))` is ``log1mexp`` of :math:`\log f(0)`, accurate both when
:math:`f(0)` is tiny and when it is close to 1 (a small rate); the censored terms are the
base family's own ``log_cdf`` / ``log_sf``, exact deep in the tails where a family
declares them so. Where a branch is not taken it is evaluated at a harmless point, so no
NaN reaches the gradient.

Bad input: ``zero_probs`` outside [0, 1], a count below the truncation point, bounds that
are NaN (``lower = +inf``, ``upper = -inf``), ``lower >= upper``, or an observation outside
its own ``[lower, upper]`` give NaN (value and gradient) and a named ``checked`` error, as
do the base family's rules.

Design notes: a wrapped family is built on demand and cached (``nllax.zero_inflated(
nllax.poisson)`` is the same object every time, so nothing retraces), and it is *not*
listed in :data:`nllax.families`: the registry lists the named family modules of the
package, while the wrapped families are open-ended combinations (every wrapper times every
count or continuous family, new ones included as soon as they are registered), and a
registry filled by whatever has been constructed so far would depend on call history.
Truncation takes a static Python ``lower`` (a count family declares no CDF, so
:math:`P(Y < L)` is a sum of :math:`L` evaluations of the base density); ``zero_truncated``
is the common case and the one statsmodels' ``TruncatedLFPoisson`` and the hurdle model
use. A wrapped family cannot be wrapped again.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _family as F
from nllax import _math as M

__all__ = ["zero_inflated", "hurdle", "truncated", "zero_truncated", "censored"]


class Wrapped:
    """A wrapped family: the interface of a family module (``family``, ``log_prob``,
    ``nll``), plus ``base`` (the wrapped module) and ``wrapper`` (the wrapper's name)."""

    def __init__(self, family: F.Family, base: Any, wrapper: str, doc: str,
                 fn_docs: dict[str, str]):
        self.family = family
        self.base = base
        self.wrapper = wrapper
        self.__doc__ = doc
        self.__name__ = family.fn_name
        fns = family.functions(fn_docs)
        self.__all__ = sorted(fns)
        for k, f in fns.items():
            f.__qualname__ = f"{family.fn_name}.{k}"
            setattr(self, k, f)

    def __repr__(self) -> str:
        return f"<nllax wrapped family {self.__name__}>"


# ----------------------------------------------------------------------------------------
# the base family


def _base(family: Any, fn: str) -> tuple[Any, F.Family]:
    if isinstance(family, Wrapped):
        raise TypeError(f"{fn}: {family.__name__} is already a wrapped family; wrap the "
                        f"base family instead.")
    fam = family if isinstance(family, F.Family) else getattr(family, "family", None)
    if not isinstance(fam, F.Family) or fam.sign != -1:
        raise TypeError(f"{fn}: expected a family module such as nllax.poisson, got "
                        f"{family!r}.")
    if isinstance(family, F.Family) and F.FAMILY_OBJECTS.get(fam.name) is fam:
        family = F.FAMILIES[fam.name]  # the registered module, so the cache sees one base
    return family, fam


def _is_count(fam: F.Family) -> bool:
    """Discrete, scalar float data whose rule accepts 0, 1, 2 and refuses -1 and 0.5."""
    c = fam.data.constraint
    if fam.continuous or fam.data.kind != "float" or fam.data.event_ndim or c is None:
        return False
    if c.elem is None:
        return False
    with jax.ensure_compile_time_eval():
        ok = np.asarray(c.elem(jnp.asarray([0.0, 1.0, 2.0, -1.0, 0.5])))
    return bool(np.all(ok == [True, True, True, False, False]))


def _require_count(fam: F.Family, fn: str) -> None:
    if not _is_count(fam):
        raise TypeError(f"{fn}: {fam.fn_name} is not a count family (non-negative integer "
                        f"data, no log_cdf); the zero wrappers and truncation need one.")


def _require_continuous(fam: F.Family, fn: str) -> None:
    if fam.log_cdf is None or fam.log_sf is None or fam.data.event_ndim:
        raise TypeError(f"{fn}: {fam.fn_name} declares no log_cdf / log_sf (a continuous "
                        f"family with scalar observations is needed).")


def _check_names(fam: F.Family, own: tuple[str, ...], fn: str) -> None:
    taken = {p.name for p in fam.flat_params} | {o.name for o in fam.options} | {
        fam.data.name}
    clash = sorted(taken & set(own))
    if clash:
        raise TypeError(f"{fn}: {fam.fn_name} already has argument(s) {clash}.")


def _materialise(out, like):
    if isinstance(out, F.Affine):
        out = out.mul * out.core + out.add
    return jnp.broadcast_to(out, jnp.shape(like))


def _wrap(base_mod, fam: F.Family, *, wrapper: str, name: str, qualname: str,
          own: tuple, body: Callable, relations: Callable | None, summary: str,
          doc: str, fn_docs: dict[str, str]) -> Wrapped:
    own_names = tuple(m.name for p in own for m in (p.members if isinstance(p, F.OneOf)
                                                     else (p,)))
    base_names = {p.name for p in fam.flat_params}

    def base_call(kind):
        f = {"log_prob": fam.log_prob, "log_cdf": fam.log_cdf, "log_sf": fam.log_sf}[kind]

        def call(x, kw):
            return _materialise(f(x, **kw), x)

        return call

    def log_prob(data, **kw):
        mine = {k: kw.pop(k) for k in own_names if k in kw}
        return body(data, kw, base_call, **mine)

    def prepare(data, params, options, fn, raw):
        overrides = {}
        if fam.prepare is not None:
            sub = {k: v for k, v in params.items() if k in base_names}
            data, sub, overrides = fam.prepare(data, sub, options, fn, raw)
            params = dict(params, **sub)
        return data, params, overrides

    def all_relations(data, params, options):
        out = []
        if fam.relations is not None:
            out += list(fam.relations(
                data, {k: v for k, v in params.items() if k in base_names}, options))
        if relations is not None:
            out += list(relations(data, params, options))
        return out

    wrapped = F.Family(
        name=name,
        data=fam.data,
        params=tuple(fam.params) + tuple(own),
        log_prob=log_prob,
        options=fam.options,
        prepare=prepare if fam.prepare is not None else None,
        smooth=fam.smooth,
        summary=summary,
        qualname=qualname,
        register=False,
        relations=all_relations if (relations is not None or fam.relations is not None)
        else None,
    )
    return Wrapped(wrapped, base_mod, wrapper, doc, fn_docs)


# ----------------------------------------------------------------------------------------
# the zero component


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


ZERO = F.OneOf("zero_logits", (
    F.Param("zero_logits", keyword_only=True,
            doc="log(pi / (1 - pi)), pi the probability of a zero from the zero component"),
    F.Param("zero_probs", F.UNIT, keyword_only=True, to_canonical=_logit,
            from_canonical=jax.nn.sigmoid, doc="pi in [0, 1]"),
))


def _log_pi(zero, zero_logits=None, zero_probs=None):
    """``(log pi, log(1 - pi))``, the first for the zeros and the second for the positive
    counts: with ``zero_probs`` each is computed at a harmless 1/2 where it is not used, so
    that ``pi = 0`` (or 1) at an observation that does not use ``log pi`` (or
    ``log(1 - pi)``) leaks no ``0 * inf`` into the gradient."""
    if zero_probs is None:
        return jax.nn.log_sigmoid(zero_logits), jax.nn.log_sigmoid(-zero_logits)
    half = jnp.asarray(0.5, zero_probs.dtype)
    return (jnp.log(jnp.where(zero, zero_probs, half)),
            jnp.log1p(-jnp.where(zero, half, zero_probs)))


@jax.custom_jvp
def _log_mix(pi, lf):
    """``log(pi + (1 - pi) exp(lf))`` for ``pi`` in [0, 1], ``lf <= 0``."""
    return jnp.logaddexp(jnp.log(pi), jnp.log1p(-pi) + lf)


@_log_mix.defjvp
def _log_mix_jvp(primals, tangents):
    # d/dpi = (1 - f) / m and d/dlf = (1 - pi) f / m, m = pi + (1 - pi) f: finite at
    # pi = 0 and pi = 1, where the chain rule through log(pi) / log1p(-pi) is 0 * inf.
    pi, lf = primals
    dpi, dlf = tangents
    out = _log_mix(pi, lf)
    return out, (-jnp.expm1(lf) * jnp.exp(-out)) * dpi + (1.0 - pi) * jnp.exp(lf - out) * dlf


def _zero_doc() -> str:
    return (f"zero_logits: :math:`\\operatorname{{logit}}\\pi`, the log-odds of a zero from "
            f"the zero component; or\n      zero_probs: :math:`\\pi \\in [0, 1]`. Exactly "
            f"one of the two, broadcastable to the data's shape.")


def _base_args_doc(fam: F.Family) -> str:
    names = ", ".join(f"``{p.name}``" for p in fam.flat_params)
    return (f"{fam.data.name}, {names}: as in :func:`{fam.fn_name}.log_prob` (the base "
            f"family's arguments and rules)")


_NLL_DOC = """{what}, reduced (``reduction``, ``weights``, ``where`` as in
    :func:`nllax.gaussian.nll`, with the shape of ``{data}``)."""


@functools.lru_cache(maxsize=None)
def _zero_inflated(fam: F.Family, base_mod) -> Wrapped:
    def body(y, kw, base, zero_logits=None, zero_probs=None):
        lp = base("log_prob")(y, kw)
        zero = y == 0
        log_pi, log_1m = _log_pi(zero, zero_logits, zero_probs)
        pos = log_1m + lp
        if zero_probs is None:
            at0 = jnp.logaddexp(log_pi, pos)
        else:
            # a harmless log f = -1 where y > 0 (not taken): there exp(-log f) may overflow
            at0 = _log_mix(jnp.broadcast_to(zero_probs, lp.shape), jnp.where(zero, lp, -1.0))
        return jnp.where(zero, at0, pos)

    name = f"nllax.zero_inflated({fam.fn_name})"
    d = fam.data.name
    doc = (f"Zero-inflated {fam.fn_name}: :math:`p(y) = \\pi[y=0] + (1-\\pi)f(y)`.\n\n"
           ".. math::\n\n    \\log p(0) = \\operatorname{logaddexp}(\\log\\pi, \\log(1-\\pi) "
           "+ \\log f(0)),\\qquad \\log p(y) = \\log(1-\\pi) + \\log f(y)\\ (y > 0)\n\n"
           f"with :math:`f` the {fam.fn_name} density. See :func:`nllax.zero_inflated`.")
    fn_docs = {
        "log_prob": f"""Per-observation zero-inflated log-probability.

    Args:
      {_base_args_doc(fam)}.
      {_zero_doc()}

    Returns:
      Array of ``{d}.shape``; NaN where an argument breaks its rule.
    """,
        "nll": _NLL_DOC.format(what="Zero-inflated negative log-likelihood", data=d),
    }
    return _wrap(base_mod, fam, wrapper="zero_inflated", name=f"zero_inflated_{fam.name}",
                 qualname=name, own=(ZERO,), body=body, relations=None,
                 summary=f"ZeroInflated({fam.summary or fam.name})", doc=doc, fn_docs=fn_docs)


def zero_inflated(family: Any) -> Wrapped:
    r"""The zero-inflated version of a count family.

    .. math::

        p(y) = \pi\,[y = 0] + (1 - \pi)\,f(y \mid \theta),

    :math:`f` the base family's density with its own parameters :math:`\theta`, and
    :math:`\pi` the probability of a structural zero, given as ``zero_logits`` or
    ``zero_probs`` (exactly one; broadcastable to the data). statsmodels'
    ``ZeroInflatedPoisson`` / ``ZeroInflatedNegativeBinomialP`` with
    ``inflation="logit"`` are ``zero_inflated(nllax.poisson)`` /
    ``zero_inflated(nllax.negative_binomial)`` with ``zero_logits = exog_infl @ gamma``.

    Args:
      family: a count family module (``nllax.poisson``, ``nllax.negative_binomial``,
        ``nllax.binomial``...): discrete, non-negative integer data.

    Returns:
      A wrapped family with ``log_prob`` and ``nll``: the base's arguments plus
      ``zero_logits=`` / ``zero_probs=`` (keyword-only). The same object for the same
      base (cached).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> zip_ = nllax.zero_inflated(nllax.poisson)
      >>> lp = zip_.log_prob(jnp.array([0.0, 3.0]), rate=2.0, zero_probs=0.25)
      >>> [round(float(v), 6) for v in lp]  # log(0.25 + 0.75 e^-2), log(0.75 * 8 e^-2 / 6)
      [-1.045541, -2.0]
    """
    fn = "nllax.zero_inflated"
    mod, fam = _base(family, fn)
    _require_count(fam, fn)
    _check_names(fam, ("zero_logits", "zero_probs"), fn)
    return _zero_inflated(fam, mod)


@functools.lru_cache(maxsize=None)
def _hurdle(fam: F.Family, base_mod) -> Wrapped:
    def body(y, kw, base, zero_logits=None, zero_probs=None):
        lp = base("log_prob")(y, kw)
        lp0 = base("log_prob")(jnp.zeros_like(y), kw)
        zero = y == 0
        log_pi, log_1m = _log_pi(zero, zero_logits, zero_probs)
        # log(1 - f(0)) where y > 0; a harmless -1 where y = 0 (not taken)
        tail = M.log1mexp(jnp.where(zero, -1.0, lp0))
        return jnp.where(zero, jnp.broadcast_to(log_pi, lp.shape), log_1m + lp - tail)

    name = f"nllax.hurdle({fam.fn_name})"
    d = fam.data.name
    doc = (f"Hurdle {fam.fn_name}: a zero with probability :math:`\\pi`, otherwise a "
           f"zero-truncated {fam.fn_name} count.\n\n"
           ".. math::\n\n    \\log p(0) = \\log\\pi,\\qquad \\log p(y) = \\log(1-\\pi) + "
           "\\log f(y) - \\mathrm{log1mexp}(\\log f(0))\\ (y > 0)\n\n"
           "See :func:`nllax.hurdle`.")
    fn_docs = {
        "log_prob": f"""Per-observation hurdle log-probability.

    Args:
      {_base_args_doc(fam)}.
      {_zero_doc()}

    Returns:
      Array of ``{d}.shape``; NaN where an argument breaks its rule, and for a positive
      count where the base gives :math:`f(0) = 1` (0 / 0).
    """,
        "nll": _NLL_DOC.format(what="Hurdle negative log-likelihood", data=d),
    }
    return _wrap(base_mod, fam, wrapper="hurdle", name=f"hurdle_{fam.name}", qualname=name,
                 own=(ZERO,), body=body, relations=None,
                 summary=f"Hurdle({fam.summary or fam.name})", doc=doc, fn_docs=fn_docs)


def hurdle(family: Any) -> Wrapped:
    r"""The hurdle version of a count family: zeros from a binary model, positive counts
    from the zero-truncated base.

    .. math::

        p(0) = \pi, \qquad p(y) = (1 - \pi)\,\frac{f(y \mid \theta)}{1 - f(0 \mid \theta)}
        \quad (y > 0),

    with :math:`\pi` given as ``zero_logits`` or ``zero_probs`` (the probability of a
    zero: note that R's ``pscl::hurdle`` models the probability of crossing the hurdle,
    :math:`1 - \pi`, so its zero-model coefficients have the opposite sign). statsmodels'
    ``HurdleCountModel(zerodist="poisson")`` is ``zero_probs = exp(-exp(x_zero @ gamma))``.
    The two parts are separable: the fit of the positive counts alone is the
    ``zero_truncated`` fit.

    Args:
      family: a count family module (see :func:`zero_inflated`).

    Returns:
      A wrapped family with ``log_prob`` and ``nll`` (cached).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> h = nllax.hurdle(nllax.poisson)
      >>> lp = h.log_prob(jnp.array([0.0, 1.0]), rate=2.0, zero_probs=0.25)
      >>> [round(float(v), 6) for v in lp]  # log 0.25, log(0.75 * 2 e^-2 / (1 - e^-2))
      [-1.386294, -1.449121]
    """
    fn = "nllax.hurdle"
    mod, fam = _base(family, fn)
    _require_count(fam, fn)
    _check_names(fam, ("zero_logits", "zero_probs"), fn)
    return _hurdle(fam, mod)


@functools.lru_cache(maxsize=None)
def _truncation_rule(lower: int) -> F.Constraint:
    return F.relation(f"must be >= {lower} (a count below the truncation point)",
                      name=f"truncated>={lower}")


@functools.lru_cache(maxsize=None)
def _truncated(fam: F.Family, base_mod, lower: int) -> Wrapped:
    rule = _truncation_rule(lower)

    def body(y, kw, base):
        lp = base("log_prob")(y, kw)
        if lower == 1:
            below = base("log_prob")(jnp.zeros_like(y), kw)
        else:
            below = jax.nn.logsumexp(jnp.stack(
                [base("log_prob")(jnp.full_like(y, j), kw) for j in range(lower)]), axis=0)
        return lp - M.log1mexp(below)

    def relations(data, params, options):
        return [(fam.data.name, rule, data >= lower)]

    if lower == 1:
        wname, name = "zero_truncated", f"zero_truncated_{fam.name}"
        qual = f"nllax.zero_truncated({fam.fn_name})"
        below = "f(0)"
    else:
        wname, name = "truncated", f"truncated_{fam.name}_lower{lower}"
        qual = f"nllax.truncated({fam.fn_name}, lower={lower})"
        below = f"\\sum_{{j<{lower}}} f(j)"
    d = fam.data.name
    doc = (f"{fam.fn_name} truncated below {lower}: counts :math:`y \\ge {lower}`.\n\n"
           f".. math::\n\n    \\log p(y) = \\log f(y) - \\mathrm{{log1mexp}}(\\log {below})"
           f"\n\nSee :func:`nllax.truncated`.")
    fn_docs = {
        "log_prob": f"""Per-observation log-probability of the count truncated below {lower}.

    Args:
      {_base_args_doc(fam)}; ``{d}`` must be >= {lower}.

    Returns:
      Array of ``{d}.shape``; NaN where an argument breaks its rule (a count below {lower}
      included).
    """,
        "nll": _NLL_DOC.format(what="Truncated negative log-likelihood", data=d),
    }
    return _wrap(base_mod, fam, wrapper=wname, name=name, qualname=qual, own=(), body=body,
                 relations=relations, summary=f"Truncated({fam.summary or fam.name}, "
                 f">= {lower})", doc=doc, fn_docs=fn_docs)


def truncated(family: Any, *, lower: int) -> Wrapped:
    r"""A count family truncated below ``lower``: only counts :math:`y \ge L` are observed.

    .. math::

        p(y) = \frac{f(y \mid \theta)}{1 - \sum_{j < L} f(j \mid \theta)}, \qquad
        \log p(y) = \log f(y) - \mathrm{log1mexp}\Big(\operatorname{logsumexp}_{j<L}
        \log f(j)\Big),

    statsmodels' ``TruncatedLFPoisson(truncation=L - 1)``. A count below ``L`` is invalid
    (NaN, and a ``checked`` error naming the data).

    Args:
      family: a count family module (see :func:`zero_inflated`).
      lower: the smallest observable count, a Python int >= 1 (static: the denominator
        costs ``lower`` evaluations of the base density).

    Returns:
      A wrapped family with ``log_prob`` and ``nll`` and the base's arguments (cached).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> t = nllax.truncated(nllax.poisson, lower=2)
      >>> round(float(t.log_prob(2.0, rate=1.0)), 6)  # log((e^-1 / 2) / (1 - 2 e^-1))
      -0.362254
    """
    fn = "nllax.truncated"
    if isinstance(lower, bool) or not isinstance(lower, (int, np.integer)) or lower < 1:
        raise ValueError(f"{fn}: `lower` must be a Python int >= 1, got {lower!r}.")
    mod, fam = _base(family, fn)
    _require_count(fam, fn)
    return _truncated(fam, mod, int(lower))


def zero_truncated(family: Any) -> Wrapped:
    r"""A zero-truncated count family: ``truncated(family, lower=1)``.

    .. math::

        p(y) = \frac{f(y \mid \theta)}{1 - f(0 \mid \theta)}\quad (y \ge 1), \qquad
        \log p(y) = \log f(y) - \mathrm{log1mexp}(\log f(0)),

    accurate also for a small rate, where :math:`1 - f(0)` is tiny (``log1mexp`` uses
    ``expm1`` there): the error is a few eps times :math:`|\log f(y)|`, the size of the
    two terms. statsmodels' ``TruncatedLFPoisson(truncation=0)``; the count part of a
    hurdle model.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> ztp = nllax.zero_truncated(nllax.poisson)
      >>> round(float(ztp.log_prob(1.0, rate=1e-3)), 4)  # log(lambda / (e^lambda - 1))
      -0.0005
    """
    return truncated(family, lower=1)


# ----------------------------------------------------------------------------------------
# censoring


def _lower_ok(x):
    return x < jnp.inf  # NaN and +inf fail


def _upper_ok(x):
    return x > -jnp.inf


LOWER = F.Constraint("lower", "must not be NaN or +inf (a NaN or +inf censoring bound)",
                     _lower_ok, safe=-math.inf)
UPPER = F.Constraint("upper", "must not be NaN or -inf (a NaN or -inf censoring bound)",
                     _upper_ok, safe=math.inf)
_ORDER = F.relation("must be > `lower` (an empty censoring interval)", name="lower<upper")


_INSIDE = F.relation("must lie in [`lower`, `upper`] (an observation outside its own "
                     "censoring bounds)", name="inside_bounds")


@functools.lru_cache(maxsize=None)
def _censored(fam: F.Family, base_mod) -> Wrapped:
    d = fam.data.name

    def body(y, kw, base, lower=None, upper=None):
        out = base("log_prob")(y, kw)
        if upper is not None:
            right = y >= upper
            out = jnp.where(right, base("log_sf")(jnp.where(right, upper, y), kw), out)
        if lower is not None:
            left = y <= lower
            out = jnp.where(left, base("log_cdf")(jnp.where(left, lower, y), kw), out)
        return out

    def relations(data, params, options):
        lo, hi = params.get("lower"), params.get("upper")
        out = []
        if lo is not None and hi is not None:
            out.append(("upper", _ORDER, lo < hi))
        ok = None
        if lo is not None:
            ok = data >= lo
        if hi is not None:
            ok = data <= hi if ok is None else ok & (data <= hi)
        if ok is not None:
            out.append((d, _INSIDE, ok))
        return out

    own = (F.Param("lower", LOWER, default=None, keyword_only=True,
                   doc="left-censoring bound per observation (-inf: none)"),
           F.Param("upper", UPPER, default=None, keyword_only=True,
                   doc="right-censoring bound per observation (+inf: none)"))
    name = f"nllax.censored({fam.fn_name})"
    doc = (f"Censored {fam.fn_name}: observations at or beyond their bounds are "
           "censored.\n\n"
           ".. math::\n\n    \\log p(y) = \\log F(\\ell)\\ (y \\le \\ell),\\quad "
           "\\log(1 - F(u))\\ (y \\ge u),\\quad \\log f(y)\\ \\text{otherwise}\n\n"
           "See :func:`nllax.censored`.")
    fn_docs = {
        "log_prob": f"""Per-observation censored log-likelihood.

    Args:
      {_base_args_doc(fam)}.
      lower: left-censoring bound :math:`\\ell` (``None``: no left censoring), not NaN or
        +inf, broadcastable to ``{d}.shape``; ``{d} <= lower`` means :math:`Y^* \\le \\ell`.
      upper: right-censoring bound :math:`u` (``None``: no right censoring), not NaN or
        -inf; ``{d} >= upper`` means :math:`Y^* \\ge u`.

    Returns:
      Array of ``{d}.shape``; NaN where an argument breaks its rule, where ``lower >=
      upper`` and where ``{d}`` lies outside ``[lower, upper]``.
    """,
        "nll": _NLL_DOC.format(what="Censored negative log-likelihood", data=d),
    }
    return _wrap(base_mod, fam, wrapper="censored", name=f"censored_{fam.name}",
                 qualname=name, own=own, body=body, relations=relations,
                 summary=f"Censored({fam.summary or fam.name})", doc=doc, fn_docs=fn_docs)


def censored(family: Any) -> Wrapped:
    r"""The censored version of a continuous family (Tobit, right-censored survival).

    .. math::

        \log p(y \mid \theta) = \begin{cases}
          \log F(\ell \mid \theta) & y \le \ell\\
          \log\big(1 - F(u \mid \theta)\big) & y \ge u\\
          \log f(y \mid \theta) & \ell < y < u,\end{cases}

    per observation, with bounds ``lower`` :math:`\ell` and ``upper`` :math:`u`
    (keyword-only, optional, per observation or shared). The data of a censored
    observation is its bound (``y = clip(y_star, lower, upper)``); an observation outside
    its own bounds is invalid. The censored terms are the base family's ``log_cdf`` and
    ``log_sf``, so they keep the base's accuracy deep in the tails.

    * Tobit (left-censored at 0): ``censored(nllax.gaussian).nll(y, x @ beta, sigma,
      lower=0.0)``; AER's ``tobit(left=0, right=4)`` is ``lower=0.0, upper=4.0``.
    * Right-censored survival: ``upper = jnp.where(event, jnp.inf, t)`` with a positive
      family (``weibull``, ``log_normal``), or ``censored(nllax.gaussian)`` on
      :math:`\log t` for a log-normal accelerated failure time model (its log-likelihood
      differs from the log-normal one by :math:`\sum_{\text{events}}\log t_i`, a constant).

    Args:
      family: a continuous family module (``log_cdf`` and ``log_sf`` declared).

    Returns:
      A wrapped family with ``log_prob`` and ``nll``: the base's arguments plus ``lower=``
      / ``upper=`` (cached).

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> tobit = nllax.censored(nllax.gaussian)
      >>> lp = tobit.log_prob(jnp.array([0.0, 1.5]), 0.5, 1.0, lower=0.0)
      >>> [round(float(v), 6) for v in lp]  # log Phi(-0.5), log phi(1)
      [-1.175912, -1.418939]
    """
    fn = "nllax.censored"
    mod, fam = _base(family, fn)
    _require_continuous(fam, fn)
    _check_names(fam, ("lower", "upper"), fn)
    return _censored(fam, mod)
