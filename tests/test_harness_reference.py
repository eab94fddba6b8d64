"""Every registered family against its independent float64 reference (the case's), in
every parametrisation: log_prob, every reduction with weights and masks, log_cdf and
log_sf (deep in both tails), and the normalisation of the density."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import _harness as H
import _tolerances as tt
from cases import CASES, all_parametrisations, pid

PARAMS = all_parametrisations()
CONTINUOUS = [c for c in CASES.values() if c.family.continuous]


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_log_prob_and_reductions_match_reference_float64(x64, cp):
    case, choice = cp
    data, params, kw = H.inputs(case, choice)
    n = len(data)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 3.0, size=n)
    m = rng.uniform(size=n) < 0.7
    d, k = H.to_jax(data), {a: H.to_jax(v) for a, v in kw.items()}

    @jax.jit
    def everything(d, k, w, m):
        out = {"log_prob": H.call(case, "log_prob", d, k)}
        for red in ("sum", "mean", "none"):
            out[red] = H.call(case, "nll", d, k, reduction=red)
            out[red + "_w"] = H.call(case, "nll", d, k, reduction=red, weights=w)
            out[red + "_m"] = H.call(case, "nll", d, k, reduction=red, where=m)
            out[red + "_wm"] = H.call(case, "nll", d, k, reduction=red, weights=w, where=m)
        return out

    got = jax.tree.map(np.asarray, everything(d, k, jnp.asarray(w), jnp.asarray(m)))
    lp = case.reference(data, **params)
    assert got["log_prob"].dtype == np.float64
    rtol = case.rtol64  # case.rtol64_why
    np.testing.assert_allclose(got["log_prob"], lp, rtol=rtol, atol=0)
    # A sum of n terms: rounding <= n eps relative to sum |terms| (reference and ours).
    size = np.sum(np.abs(lp)) * (rtol + 2 * n * H.EPS64)
    want = {
        "sum": -lp.sum(), "mean": -lp.mean(), "none": -lp,
        "sum_w": -(w * lp).sum(), "mean_w": -(w * lp).sum() / w.sum(), "none_w": -w * lp,
        "sum_m": -lp[m].sum(), "mean_m": -lp[m].mean(), "none_m": np.where(m, -lp, 0.0),
        "sum_wm": -(w * lp)[m].sum(), "mean_wm": -(w * lp)[m].sum() / w[m].sum(),
        "none_wm": np.where(m, -w * lp, 0.0),
    }
    for key, value in want.items():
        if key.startswith("none"):
            np.testing.assert_allclose(got[key], value, rtol=rtol, atol=0, err_msg=key)
        else:
            scale = 1.0 if key.startswith("sum") else 1.0 / n
            assert abs(got[key] - value) <= 3 * size * scale + 1e-300, key


@functools.cache
def _canonical_jacobians(name, names):
    """d log_prob / d theta for the parameters ``names`` at canonical inputs, one program a
    case (a ``jax.jit`` of a fresh lambda per test compiled it once per parametrisation)."""
    case = CASES[name]
    return jax.jit(lambda d, c: jax.jacfwd(lambda t: H.call(case, "log_prob", d, {**c, **t}))(
        {n: c[n] for n in names}))


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_parametrisations_round_trip(x64, cp):
    # from_canonical and to_canonical are inverse (the harness relies on both), up to what
    # the density does not see (categorical logits: a constant per row).
    case, choice = cp
    data, params, kw = H.inputs(case, choice)
    back = H.canonical(case, kw)
    # The round trip moves each parameter by its rounding, delta = back - params (known
    # exactly); the log-density moves by at most sum |d lp / d theta| |delta| (first order;
    # the sensitivities by autodiff of nllax's log_prob at the canonical point), and each
    # of the two reference evaluations rounds within the case's declared op count,
    # f32_ulps (case.f32_why) eps64 of the magnitude.
    ref0 = case.reference(data, **params)
    d = H.to_jax(data)
    canon = {a: H.to_jax(v) for a, v in params.items()}
    moved = np.zeros(len(data))
    names = [name for name, v in params.items()
             if np.issubdtype(np.asarray(v).dtype, np.floating) and name not in case.grad_exclude]
    # every Jacobian from one compiled program (op by op, it was ~60 small compiles a case),
    # built once per case: the point is canonical, so every parametrisation shares it
    jacs = _canonical_jacobians(case.name, tuple(names))(d, canon)
    for name in names:
        moved += np.abs(np.asarray(jacs[name]).reshape(len(data), -1)) @ np.abs(
            np.asarray(back[name] - params[name], np.float64)).reshape(-1)
    mag = (case.magnitude(data, **params) if case.magnitude is not None else np.abs(ref0) + 1.0)
    bound = 2 * moved + 2 * case.f32_ulps * H.EPS64 * np.asarray(mag)
    assert np.all(np.abs(case.reference(data, **back) - ref0) <= bound), (bound,)


@functools.cache
def _log_cdf_sf(name):
    """The case's (log_cdf, log_sf), compiled once per case (both CDF tests call it)."""
    case = CASES[name]
    return jax.jit(lambda d, k: (H.call(case, "log_cdf", d, k), H.call(case, "log_sf", d, k)))


@pytest.mark.parametrize("case", CONTINUOUS, ids=[c.name for c in CONTINUOUS])
def test_log_cdf_and_log_sf_float64(x64, case):
    choice = case.parametrisations()[0]
    data, params, kw = H.inputs(case, choice)
    points = [(data, params)] + [(np.asarray(d, np.float64), {k: np.broadcast_to(np.asarray(
        v, np.float64), np.shape(d)) for k, v in p.items()}) for d, p in case.tails]
    f = _log_cdf_sf(case.name)
    for d, p in points:
        cdf, sf = map(np.asarray, f(H.to_jax(d), {a: H.to_jax(v) for a, v in p.items()}))
        np.testing.assert_allclose(cdf, case.ref_log_cdf(d, **p), rtol=case.rtol64 * 10)
        np.testing.assert_allclose(sf, case.ref_log_sf(d, **p), rtol=case.rtol64 * 10)
        # P(Y <= y) + P(Y > y) = 1: each log is within 10 rtol64 relative, so each
        # probability within 10 rtol64 |log P| P; plus the roundings of exp and the sum
        bound = 10 * case.rtol64 * (np.abs(cdf) * np.exp(cdf) + np.abs(sf) * np.exp(sf))
        assert np.all(np.abs(np.exp(cdf) + np.exp(sf) - 1.0) <= bound + 4 * H.EPS64)


@pytest.mark.parametrize("case", CONTINUOUS, ids=[c.name for c in CONTINUOUS])
def test_derivative_of_the_cdf_is_the_density(x64, case):
    # An independent check of log_cdf against log_prob through autodiff: d/dy CDF = pdf.
    choice = case.parametrisations()[0]
    data, params, kw = H.inputs(case, choice)
    k = {a: H.to_jax(v) for a, v in kw.items()}
    cdf = jax.vmap(jax.grad(lambda y, kk: jnp.exp(H.call(case, "log_cdf", y, kk))),
                   in_axes=(0, 0))
    lp_y = jax.vmap(jax.grad(lambda y, kk: H.call(case, "log_prob", y, kk)))
    # both derivatives in one program
    got, dlp = map(np.asarray, jax.jit(lambda y, kk: (cdf(y, kk), lp_y(y, kk)))(
        H.to_jax(data), k))
    ref = case.reference(data, **params)
    want = np.exp(ref)
    # relative to the density: the reference's log within rtol64 relative, i.e. rtol64
    # |log p| after exp; the derivative of exp(log_cdf) by autodiff, a few roundings of
    # exp(log F) (relative eps |log F|) and of the derivative, whose backward error in y
    # (eps |y|) is amplified by |d log p / dy| (its condition number)
    log_f = np.asarray(_log_cdf_sf(case.name)(H.to_jax(data), k)[0])
    rtol = (case.rtol64 * np.abs(ref)
            + H.EPS64 * 8 * (1 + np.abs(log_f) + np.abs(np.asarray(data)) * np.abs(dlp)))
    assert np.all(np.abs(got - want) <= rtol * want), (np.abs(got - want) / want, rtol)


@functools.cache
def _scalar_log_prob(name):
    """The case's log_prob at one scalar observation, compiled once per case (quadrature
    calls it hundreds of times: op by op, each call would dispatch every primitive)."""
    case = CASES[name]
    return jax.jit(lambda y, k: case.module.log_prob(y, **k, **case.options))


def _memo(f):
    """``f`` remembering its values by the point: _density_floor's second quadrature of the
    same density (and the case's own support rules) then reuse the first one's points
    where they coincide (21 to 43% of the evaluations, bench/TEST_TIME.md)."""
    seen = {}

    def g(y):
        y = float(y)
        if y not in seen:
            seen[y] = f(y)
        return seen[y]

    return g


# QUADPACK's error estimate (scipy.integrate.quad) is no rigorous bound but is built to be
# pessimistic: it scales the Gauss-Kronrod difference up, as (200 |K - G| / |I|)^1.5 |I|,
# and is never below 50 eps of the integral of |f| (its own rounding). A factor 10 on it
# leaves a false failure only for an integrand the 21-point rules resolve an order of
# magnitude worse than their own comparison says (a feature narrower than the sampling).
QUAD_SAFETY = 10


def _density_error(case, lp):
    """Relative error of exp(log_prob) per point: the case's rtol64 of the log (which
    covers the float64 evaluation, tested against the reference), times |log p|, and a
    few roundings of exp and the product."""
    return case.rtol64 * np.abs(lp) + tt.TERM_ROUNDINGS * H.EPS64


def _sum_floor(case, lp, g=1.0):
    """Error of a sum of ``exp(lp) * g`` over a finite support: each term's error
    (_density_error, and ``g``'s few roundings), plus the sum's (tt.sum_rounding)."""
    terms = np.exp(np.asarray(lp, np.float64)) * np.abs(g)
    return float(np.sum(terms * _density_error(case, lp))
                 + tt.sum_rounding(terms) + tt.TERM_ROUNDINGS * H.EPS64 * np.sum(terms))


def _density_floor(case, density, lo, hi, g=lambda y: 1.0):
    """What quad's error estimate leaves out: the error of the integrand itself, the
    integral of ``p |g| (rtol64 |log p| + c eps)`` (_density_error), by a coarse
    quadrature of its own (its size, not its digits, is wanted: doubled for its error)."""
    def f(y):
        p = density(y)
        return p * abs(g(y)) * (_density_error(case, np.log(p)) if p > 0 else 0.0)

    val, _ = integrate.quad(f, lo, hi, epsabs=0.0, epsrel=1e-3, limit=200)
    return 2 * val + tt.TERM_ROUNDINGS * H.EPS64 * abs(val)


def _integrate(case, params):
    """(total probability, error bound) for the case's support."""
    fam = case.module
    k = {a: jnp.asarray(v, jnp.float64) for a, v in params.items()}
    lp1 = _scalar_log_prob(case.name)

    # the point as a NumPy scalar: jnp.asarray(y) was a dispatch of its own per point,
    # ~6x the cost of the jitted call (measured 440 against 70 us a point)
    @_memo
    def density(y):
        return float(np.exp(lp1(np.float64(y), k)))

    s = case.support
    if callable(s):
        return s(density, params)
    if s in ("real", "positive", "unit"):
        lo, hi = {"real": (-np.inf, np.inf), "positive": (0, np.inf), "unit": (0, 1)}[s]
        total, err = integrate.quad(density, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=500)
        return total, QUAD_SAFETY * err + _density_floor(case, density, lo, hi)
    if s == "binary":
        lp = np.log([density(0.0), density(1.0)])
        return float(np.sum(np.exp(lp))), _sum_floor(case, lp)
    if s == "labels":
        z = np.asarray(params[case.family.params[0].members[0].name])
        lp = np.asarray(fam.log_prob(jnp.arange(z.shape[-1]), **k, **case.options))
        return float(np.sum(np.exp(lp))), _sum_floor(case, lp)
    if isinstance(s, tuple) and s[0] == "counts":
        ks = jnp.arange(s[1] + 1, dtype=jnp.float64)
        kk = {a: jnp.broadcast_to(v, ks.shape) for a, v in k.items()}
        lp = np.asarray(fam.log_prob(ks, **kk, **case.options))
        # the tail beyond k_max is below exp(lp[k_max]) / (1 - ratio); the case picks
        # k_max so that this is negligible, and the test asserts it
        tail = math.exp(lp[-1]) * 10
        assert tail < 1e-13, f"{case.name}: raise k_max"
        return float(np.sum(np.exp(lp))), tail + _sum_floor(case, lp)
    raise ValueError(f"unknown support {s!r}")


NORM = [(c, p) for c in CASES.values() for p in c.normalisation]


@pytest.mark.parametrize("cp", NORM, ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(NORM)])
def test_density_integrates_to_one(x64, cp):
    case, params = cp
    total, bound = _integrate(case, params)
    assert abs(total - 1.0) <= bound, (total, bound)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_eager_equals_reference(x64, case):
    # Eager (op-by-op) and jitted code are different programs; both match the reference.
    choice = case.parametrisations()[0]
    data, params, kw = H.inputs(case, choice)
    got = H.call(case, "log_prob", H.to_jax(data), {a: H.to_jax(v) for a, v in kw.items()})
    np.testing.assert_allclose(np.asarray(got), case.reference(data, **params),
                               rtol=case.rtol64)


FISHER = [(c, p, ch) for c in CASES.values() if c.family.fisher is not None
          for p in c.normalisation[:1] for ch in c.parametrisations()]


@pytest.mark.parametrize("cpc", FISHER, ids=[f"{c.name}-{pid((c, ch))}" for c, _, ch in FISHER])
def test_fisher_information_is_the_expected_squared_score(x64, cpc):
    # E[(d log p / d theta)^2] over the data, by the normalisation test's integration,
    # against the family's declared expected information, for each parameter it declares.
    case, params, choice = cpc
    kw = case.convert({k: np.asarray(v, np.float64) for k, v in params.items()}, choice)
    declared = case.family.fisher_information(**{k: jnp.asarray(v) for k, v in kw.items()})
    assert declared
    for name, info in declared.items():
        if np.ndim(kw[name]):  # an event parameter (logits): the diagonal of the information
            continue
        total, bound = _integrate_fn(case, kw, name)
        # the quadrature's own error bound (10x its estimate, _integrate_fn), and a few
        # roundings of the declared closed form
        np.testing.assert_allclose(total, float(np.asarray(info).reshape(-1)[0]),
                                   rtol=8 * H.EPS64, atol=bound, err_msg=name)


@functools.cache
def _log_prob_and_squared_score(case_name, name, batched):
    """``(y, kw) -> (log p(y), (d log p(y) / d kw[name])^2)``, one program a case and
    parameter (the density's value is the primal of the score's); ``batched``: over a
    vector of points (a finite support, one call instead of one a point)."""
    case = CASES[case_name]

    def f(y, kw):
        return jax.value_and_grad(lambda t: jnp.sum(case.module.log_prob(
            y, **{**kw, name: t}, **case.options)))(kw[name])

    def g(y, kw):
        lp, score = f(y, kw)
        return lp, score ** 2

    return jax.jit(jax.vmap(g, in_axes=(0, None)) if batched else g)


def _integrate_fn(case, kw, name):
    """sum/integral of density(y) * g(y) over the support, with an error bound; g(y) the
    squared score of parameter ``name``."""
    k = {a: jnp.asarray(v, jnp.float64) for a, v in kw.items()}
    s = case.support
    # the score's square g carries a few roundings of its own (in _density_error's c eps)
    if s in ("real", "positive", "unit"):
        lo, hi = {"real": (-np.inf, np.inf), "positive": (0, np.inf), "unit": (0, 1)}[s]
        prog = _log_prob_and_squared_score(case.name, name, False)
        # both quadratures (and the density and g at a point) share one call a point
        at = _memo(lambda y: tuple(float(v) for v in prog(np.float64(y), k)))
        dens = lambda y: math.exp(at(y)[0])  # noqa: E731
        g = lambda y: at(y)[1]  # noqa: E731
        f = lambda y: dens(y) * g(y)  # noqa: E731
        total, err = integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=500)
        return total, QUAD_SAFETY * err + _density_floor(case, dens, lo, hi, g)
    if s == "binary":
        ys = np.array([0.0, 1.0])
    elif isinstance(s, tuple) and s[0] == "counts":
        ys = np.arange(s[1] + 1, dtype=np.float64)
    else:
        pytest.skip(f"no integration for support {s!r}")
    lps, gs = map(np.asarray, _log_prob_and_squared_score(case.name, name, True)(ys, k))
    total = float(np.sum(np.exp(lps) * gs))
    # beyond k_max: the normalisation test's geometric tail (10 times the last term),
    # here of p g
    tail = 10 * math.exp(lps[-1]) * abs(gs[-1]) if len(ys) > 2 else 0.0
    return total, tail + _sum_floor(case, lps, gs)
