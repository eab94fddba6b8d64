"""Test cases of wrapped families, built from the base family's case.

A wrapped family's case is its base's case plus the wrapper's own parameters: the sampler
adds them (and makes the data fit the wrapper: zeros for the zero-inflated model, counts
>= 1 for the truncated one, censored observations at their bounds), the reference composes
the base's float64 reference by the wrapper's definition (NumPy / SciPy, independent of
nllax), the invalid values are the base's plus the wrapper's, and the float32 bound is the
base's plus the few roundings the wrapper adds. ``tests/test_wrappers.py`` also checks the
wrapped families against statsmodels' own implementations.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import integrate, special

from . import INF, NAN, FamilyCase

LN2 = math.log(2.0)


def _log1mexp(x):
    """log(1 - exp(x)), x <= 0, in float64 (Maechler's two branches)."""
    x = np.asarray(x, np.float64)
    near = x > -LN2
    with np.errstate(divide="ignore"):
        return np.where(near, np.log(-np.expm1(np.where(near, x, -1.0))),
                        np.log1p(-np.exp(np.where(near, -1.0, x))))


def _split(params):
    own = {k: params[k] for k in ("zero_logits", "lower", "upper") if k in params}
    base = {k: v for k, v in params.items() if k not in own}
    return base, own


def _base_mag(base, data, params):
    if base.magnitude is not None:
        return np.asarray(base.magnitude(data, **params), np.float64)
    return np.abs(base.reference(data, **params)) + 1.0


def _choices(module, own_groups=()):
    """The wrapper's own members, each with the base's canonical members."""
    fam = module.family
    out = [{}]
    for g in fam.groups:
        members = g.members if g.name in own_groups else g.members[:1]
        out = [dict(c, **{g.name: m.name}) for c in out for m in members]
    return out


def _base_invalid(module, base: FamilyCase, choices, own_data_rule=False) -> dict:
    """One invalid value of the base's first parameter rule that the chosen
    parametrisations give, and of its data rule unless the wrapper adds its own (the
    base's case tests every one; here it shows that the base's rules still apply: the
    same code, so one suffices and keeps the suite cheap)."""
    fam = module.family
    given = {p.name for p in fam.params if not hasattr(p, "members")}
    given |= {m for c in choices for m in c.values()}
    out = {k: list(v)[:1] for k, v in base.invalid.items() if k in given}
    out = dict(list(out.items())[:1])
    d = fam.data.name
    if d in base.invalid and not own_data_rule:
        out[d] = list(base.invalid[d])[:1]
    return out


def _zero_logits(rng, n):
    z = rng.normal(size=n) * 1.5
    return z


# ----------------------------------------------------------------------------------------
# zero-inflated and hurdle


def _zero_sample(base, zero_heavy: bool):
    def sample(rng, n):
        data, params = base.sample(rng, n)
        data = np.array(data, np.float64)
        z = _zero_logits(rng, n)
        if zero_heavy:
            # structural zeros where the zero component fires (never at observation 1, the
            # invalid-value slot, nor at the base's own special observations 0 and 2)
            pi = special.expit(z)
            extra = (rng.uniform(size=n) < pi)
            extra[:3] = False
            data[extra] = 0.0
        return data, dict(params, zero_logits=z)
    return sample


def zero_inflated_case(module, base: FamilyCase, **kw) -> FamilyCase:
    def reference(data, **params):
        bp, own = _split(params)
        z = own["zero_logits"]
        lp = base.reference(data, **bp)
        lp0 = base.reference(np.zeros_like(data), **bp)
        at0 = np.logaddexp(special.log_expit(z), special.log_expit(-z) + lp0)
        return np.where(data == 0, at0, special.log_expit(-z) + lp)

    def magnitude(data, **params):
        # the base's terms, log(1 - pi) and logaddexp's two roundings
        bp, own = _split(params)
        z = own["zero_logits"]
        return (_base_mag(base, data, bp) + _base_mag(base, np.zeros_like(data), bp)
                + np.abs(special.log_expit(-z)) + np.abs(special.log_expit(z)) + 1.0)

    return _zero_case(module, base, reference, magnitude, zero_heavy=True, **kw)


def hurdle_case(module, base: FamilyCase, **kw) -> FamilyCase:
    def reference(data, **params):
        bp, own = _split(params)
        z = own["zero_logits"]
        lp = base.reference(data, **bp)
        lp0 = base.reference(np.zeros_like(data), **bp)
        pos = special.log_expit(-z) + lp - _log1mexp(np.where(data == 0, -1.0, lp0))
        return np.where(data == 0, special.log_expit(z), pos)

    def magnitude(data, **params):
        # the base's terms at y and at 0; log1mexp amplifies the absolute error of
        # log f(0) by f(0) / (1 - f(0))
        bp, own = _split(params)
        z = own["zero_logits"]
        lp0 = base.reference(np.zeros_like(data), **bp)
        amp = np.exp(lp0) / np.maximum(-np.expm1(lp0), 1e-300)
        return (_base_mag(base, data, bp) + _base_mag(base, np.zeros_like(data), bp)
                * (1.0 + amp) + np.abs(_log1mexp(lp0)) + np.abs(special.log_expit(-z))
                + np.abs(z) + 1.0)

    return _zero_case(module, base, reference, magnitude, zero_heavy=True, **kw)


def _zero_case(module, base, reference, magnitude, *, zero_heavy, normalisation,
               both_members=True, **kw):
    choices = _choices(module, ("zero_logits",) if both_members else ())
    invalid = _base_invalid(module, base, choices)
    if both_members:
        invalid["zero_probs"] = [1.1]  # the UNIT rule of the core, tested on bernoulli
    fields = dict(
        choices=choices,
        module=module,
        sample=_zero_sample(base, zero_heavy),
        reference=reference,
        invalid=invalid,
        support=base.support,
        normalisation=normalisation,
        magnitude=magnitude,
        rtol64=base.rtol64,
        rtol64_why=base.rtol64_why,
        f32_ulps=base.f32_ulps + 8,
        f32_why=f"the base's bound ({base.f32_why}) and a few roundings of log-sigmoid, "
                "logaddexp / log1mexp and the sum",
        options=base.options,
        grad_exclude=base.grad_exclude,
        grad_order=GRAD_ORDER, grad_order_why=GRAD_ORDER_WHY,
    )
    fields.update(kw)
    return FamilyCase(**fields)


# ----------------------------------------------------------------------------------------
# truncation


def truncated_case(module, base: FamilyCase, lower: int, *, normalisation, k_max: int,
                   **kw) -> FamilyCase:
    def sample(rng, n):
        data, params = base.sample(rng, n)
        data = np.maximum(np.array(data, np.float64), lower)
        return data, params

    def below(params, like):
        terms = [base.reference(np.full_like(like, j, dtype=np.float64), **params)
                 for j in range(lower)]
        return special.logsumexp(np.stack(terms), axis=0)

    def reference(data, **params):
        return base.reference(data, **params) - _log1mexp(below(params, data))

    def magnitude(data, **params):
        lb = below(params, data)
        amp = np.exp(lb) / np.maximum(-np.expm1(lb), 1e-300)
        mag0 = sum(_base_mag(base, np.full_like(data, j, dtype=np.float64), params)
                   for j in range(lower))
        return _base_mag(base, data, params) + mag0 * (1.0 + amp) + np.abs(_log1mexp(lb)) + 1.0

    def support(density, params):
        # sum over lower..k_max; the tail beyond is bounded as for the base family
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):
            ks = jnp.arange(lower, k_max + 1, dtype=jnp.float64)
            kk = {a: jnp.broadcast_to(jnp.asarray(v, jnp.float64), ks.shape)
                  for a, v in params.items()}
            lp = np.asarray(module.log_prob(ks, **kk, **base.options))
        tail = math.exp(lp[-1]) * 10
        assert tail < 1e-13, "raise k_max"
        return float(np.sum(np.exp(lp))), tail + 4 * len(lp) * float(np.finfo(float).eps)

    choices = _choices(module)
    invalid = _base_invalid(module, base, choices, own_data_rule=True)
    invalid[module.family.data.name] = [float(lower - 1)]  # below the truncation point
    fields = dict(
        choices=choices, module=module, sample=sample, reference=reference, invalid=invalid,
        support=support,
        normalisation=normalisation, magnitude=magnitude, rtol64=base.rtol64,
        rtol64_why=base.rtol64_why, f32_ulps=base.f32_ulps + 8,
        f32_why=f"the base's bound ({base.f32_why}) at y and below the truncation point, "
                "and log1mexp's roundings",
        options=base.options, grad_exclude=base.grad_exclude,
        grad_order=GRAD_ORDER, grad_order_why=GRAD_ORDER_WHY)
    fields.update(kw)
    return FamilyCase(**fields)


# ----------------------------------------------------------------------------------------
# censoring


def censored_case(module, base: FamilyCase, *, normalisation, **kw) -> FamilyCase:
    def sample(rng, n):
        y, params = base.sample(rng, n)
        y = np.array(y, np.float64)
        lower = np.full(n, -np.inf)
        upper = np.full(n, np.inf)
        kind = np.arange(n) % 4  # 0: left-censored, 1: inside finite bounds,
        #                          2: right-censored, 3: uncensored, no bounds
        lower[kind == 0] = y[kind == 0]
        upper[kind == 0] = y[kind == 0] + 1.0
        lower[kind == 1] = y[kind == 1] - 0.5
        upper[kind == 1] = y[kind == 1] + 0.5
        upper[kind == 2] = y[kind == 2]
        return y, dict(params, lower=lower, upper=upper)

    def parts(y, params):
        bp, own = _split(params)
        lo = np.broadcast_to(own.get("lower", -np.inf), np.shape(y))
        hi = np.broadcast_to(own.get("upper", np.inf), np.shape(y))
        left, right = y <= lo, y >= hi
        return bp, lo, hi, left, right

    def reference(y, **params):
        y = np.asarray(y, np.float64)
        bp, lo, hi, left, right = parts(y, params)
        inner = base.reference(y, **bp)
        lcdf = base.ref_log_cdf(np.where(left, lo, y), **bp)
        lsf = base.ref_log_sf(np.where(right, hi, y), **bp)
        return np.where(left, lcdf, np.where(right, lsf, inner))

    def magnitude(y, **params):
        # the base's terms at the point evaluated, and the log-CDF's own size there
        y = np.asarray(y, np.float64)
        bp, lo, hi, left, right = parts(y, params)
        point = np.where(left, lo, np.where(right, hi, y))
        return _base_mag(base, point, bp) + np.abs(reference(y, **params)) + 1.0

    def support(density, params):
        # P(Y <= lower) + integral over (lower, upper) + P(Y >= upper) = 1
        lo, hi = float(params["lower"]), float(params["upper"])
        mass, err = integrate.quad(density, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=500)
        return density(lo) + mass + density(hi), 10 * err + 1e-11

    choices = _choices(module)
    invalid = _base_invalid(module, base, choices, own_data_rule=True)
    # an observation outside its own bounds (observation 1 has finite bounds y +- 0.5)
    invalid[module.family.data.name] = [1e6]
    invalid.update({"lower": [NAN], "upper": [-INF]})
    fields = dict(
        choices=choices, module=module, sample=sample, reference=reference, invalid=invalid,
        support=support,
        normalisation=normalisation, magnitude=magnitude, rtol64=base.rtol64,
        rtol64_why=base.rtol64_why, f32_ulps=base.f32_ulps + 8,
        f32_why=f"the base's bound ({base.f32_why}) at the point evaluated, and the "
                "log-CDF's roundings",
        options=base.options,
        # the bounds are data: a finite step across y changes which term applies
        grad_exclude=tuple(base.grad_exclude) + ("lower", "upper"),
        grad_order=GRAD_ORDER, grad_order_why=GRAD_ORDER_WHY)
    fields.update(kw)
    return FamilyCase(**fields)


# The wrapped cases check first derivatives against finite differences (the wrapper's
# written-out JVPs included) and the Hessian for finiteness and symmetry; their second
# derivatives are autodiff of those first-order rules over the base's, whose own second
# order the base's case checks. A second-order check per wrapped case compiles 4-5x longer
# (measured 25 s against 5 s per case at load 7) for no new code covered.
GRAD_ORDER = None  # the written-out check is cheap enough for second order
GRAD_ORDER_WHY = ("")  # (was: second order skipped for cost; no longer needed)
_OLD_WHY = ("second derivatives: autodiff of the checked first-order rules over the "
                  "base's (second order checked by the base's case)")


def replace(case: FamilyCase, **kw) -> FamilyCase:
    return dataclasses.replace(case, **kw)
