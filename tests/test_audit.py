"""nllax.audit: quadrature against closed forms and traps, the search over a, the verdicts
on every optax / PyTorch / nllax loss (tests/_audit_cases.py), and docs/audit.md.

Accuracy promised by the audit, and so tested here: when it reports convergence (error
estimate <= 1e-10 on log Z), log Z is within 1e-10 of the truth. The closed forms are
evaluated with math/scipy in float64 (their own error ~1e-15).
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import nllax
from nllax import _audit

from _audit_cases import CASES, huber_log_z, log_cosh_log_z, render_markdown

ACC = 1e-10  # the audit's convergence criterion on log Z (see the module docstring)
DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "audit.md"


def _check_z(r, expected):
    """Every prediction's log Z equals the closed form, and the audit says converged."""
    assert np.all(r.error <= ACC), r.error
    np.testing.assert_allclose(r.log_normalizer, expected, rtol=0, atol=ACC)


# ----------------------------------------------------------------------------- the rule


def test_gauss_kronrod_rule_is_exact_to_degree_31():
    # Kronrod 21 integrates polynomials of degree <= 31 exactly on [-1, 1], Gauss 10
    # those of degree <= 19; x^k integrates to 2/(k+1) for even k, 0 for odd k. The sums
    # have 21 terms of size <= 1: rounding <= 21 u.
    x = _audit.NODES
    for k in range(32):
        exact = 2.0 / (k + 1) if k % 2 == 0 else 0.0
        assert abs(_audit.KRONROD @ x**k - exact) <= 21 * 2.0**-53, k
        if k < 20:
            assert abs(_audit.GAUSS @ x**k - exact) <= 21 * 2.0**-53, k
    gx, gw = np.polynomial.legendre.leggauss(10)
    np.testing.assert_allclose(x[_audit.GAUSS > 0], gx, rtol=0, atol=1e-15)
    np.testing.assert_allclose(_audit.GAUSS[_audit.GAUSS > 0], gw, rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- closed forms

SQ = lambda y, p: (y - p) ** 2  # noqa: E731
ABS = lambda y, p: jnp.abs(y - p)  # noqa: E731


@pytest.mark.parametrize("a", [1e-6, 0.3, 1.0, 1e8])
def test_squared_error_is_gaussian_at_every_scale(a):
    # int exp(-a r^2) dr = sqrt(pi / a): log Z = (1/2) log(2 pi / (2a)); from a very wide
    # density (sd 700) to a very narrow one (sd 7e-5), at predictions up to 1e3.
    preds = np.array([-1e3, -3.0, 0.0, 0.25, 7.5])
    r = nllax.audit(SQ, support="real", predictions=preds, a=a)
    _check_z(r, 0.5 * math.log(2 * math.pi / (2 * a)))
    assert r.is_likelihood and r.scales == "given" and r.b == pytest.approx(
        0.5 * math.log(math.pi / a), abs=ACC)


@pytest.mark.parametrize("a", [0.5, 4.0])
def test_laplace_huber_log_cosh(a):
    _check_z(nllax.audit(ABS, support="real", a=a), math.log(2 / a))
    delta = 0.3
    huber = lambda y, p: jnp.where(jnp.abs(y - p) <= delta, 0.5 * (y - p) ** 2,  # noqa: E731
                                   delta * (jnp.abs(y - p) - 0.5 * delta))
    _check_z(nllax.audit(huber, support="real", a=a), huber_log_z(a, delta))
    log_cosh = lambda y, p: jnp.logaddexp(y - p, p - y) - math.log(2.0)  # noqa: E731
    _check_z(nllax.audit(log_cosh, support="real", a=a), log_cosh_log_z(a))


def test_log_cosh_normaliser_is_pi():
    # exp(-log cosh r) = sech r, whose integral is pi: the hyperbolic secant density.
    r = nllax.audit(lambda y, p: jnp.log(jnp.cosh(y - p)), support="real", a=1.0)
    _check_z(r, math.log(math.pi))


@pytest.mark.parametrize("a", [0.6, 0.55, 3.0])
def test_heavy_tails(a):
    # exp(-a log(1 + r^2)) = (1 + r^2)^-a, a Student-type tail |r|^-2a: at a = 0.55 it
    # decays like |r|^-1.1 and 1.6 % of Z lies beyond |r| = 1e150 (the power-law end
    # correction carries it). Z = sqrt(pi) Gamma(a - 1/2) / Gamma(a).
    r = nllax.audit(lambda y, p: jnp.log1p((y - p) ** 2), support="real", a=a)
    _check_z(r, 0.5 * math.log(math.pi) + math.lgamma(a - 0.5) - math.lgamma(a))


def test_loss_infinite_on_part_of_the_support():
    # An exponential density: loss y - p for y >= p and +inf below (no mass there).
    expo = lambda y, p: jnp.where(y >= p, y - p, jnp.inf)  # noqa: E731
    _check_z(nllax.audit(expo, support="real", a=2.5), math.log(1 / 2.5))
    # A box whose jumps (p - 0.63, p + 1.37) are at no breakpoint: the bisection finds them.
    box = lambda y, p: jnp.where(jnp.abs(y - p - 0.37) < 1.0, 0.0, jnp.inf)  # noqa: E731
    _check_z(nllax.audit(box, support="real", a=1.0), math.log(2.0))


def test_endpoint_singularities():
    # Gamma(1/2, 1) without its constant: y^-1/2 e^-y on (0, inf), Z = Gamma(1/2).
    gam = lambda y, p: 0.5 * jnp.log(y) + y / p  # noqa: E731
    preds = np.array([0.5, 1.0, 3.0])
    _check_z(nllax.audit(gam, support="positive", predictions=preds, a=1.0),
             0.5 * np.log(np.pi * preds))
    # Beta(1/2, 1/2) on (0, 1): Z = B(1/2, 1/2) = pi, singular at both ends (1 - y
    # cannot get closer to 1 than rounding: the power-law end correction covers it).
    arcsine = lambda y, p: 0.5 * jnp.log(y) + 0.5 * jnp.log1p(-y) + 0.0 * p  # noqa: E731
    _check_z(nllax.audit(arcsine, support="unit", a=1.0), math.log(math.pi))


@pytest.mark.parametrize("loss, a, support", [
    (lambda y, p: jnp.log1p(jnp.abs(y - p)), 1.0, "real"),     # tail 1/|r|
    (lambda y, p: jnp.log1p((y - p) ** 2), 0.5, "real"),      # tail 1/|r| exactly
    (lambda y, p: jnp.log(jnp.abs(y - p)), 1.0, "real"),      # 1/|r|: infinite at r = 0
    (lambda y, p: jnp.log(y) + 0.0 * p, 1.0, "positive"),     # 1/y: both ends diverge
    (lambda y, p: -(y - p) ** 2, 1.0, "real"),                 # grows: infinite mass
])
def test_divergent_normalisers_are_infinite(loss, a, support):
    r = nllax.audit(loss, support=support, a=a)
    assert np.all(r.log_normalizer == np.inf)
    assert not r.is_likelihood and r.variation == math.inf and r.b is None
    assert "infinite mass" in r.reason


def test_a_nan_loss_is_reported():
    r = nllax.audit(lambda y, p: jnp.log(y - p), support="real", a=1.0)  # NaN for y < p
    assert np.all(np.isnan(r.log_normalizer)) and not r.is_likelihood
    assert "NaN" in r.reason and "support" in r.reason


def test_no_mass_anywhere():
    r = nllax.audit(lambda y, p: jnp.inf + 0.0 * (y - p), support="real", a=1.0)
    assert np.all(r.log_normalizer == -np.inf) and not r.is_likelihood
    assert "no mass" in r.reason


def test_against_scipy_quad_where_no_closed_form_exists():
    # MSLE on (0, inf): Z(p) = int_0^inf exp(-(log1p y - log1p p)^2) dy, compared with
    # scipy's QUADPACK (substituting u = log1p y, so the integrand is smooth; quad's
    # estimated error is printed into the tolerance).
    msle = lambda y, p: (jnp.log1p(y) - jnp.log1p(p)) ** 2  # noqa: E731
    preds = np.array([0.05, 1.0, 40.0])
    r = nllax.audit(msle, support="positive", predictions=preds, a=1.0)
    for p, lz, err in zip(preds, r.log_normalizer, r.error):
        ref, ref_err = integrate.quad(lambda u: np.exp(-(u - np.log1p(p)) ** 2 + u), 0, np.inf,
                                      epsabs=0, epsrel=1e-13, limit=200)
        assert err <= ACC
        assert abs(lz - math.log(ref)) <= ACC + ref_err / ref
    assert not r.is_likelihood and r.variation > 1.0
    # The corrected NLL is a proper density for every p: it integrates to 1.
    for p in (0.05, 40.0):
        mass, mass_err = integrate.quad(
            lambda y: float(np.exp(-r.corrected_nll(np.array([y]), p))[0]), 0, np.inf,
            epsabs=0, epsrel=1e-10, limit=200)
        assert mass == pytest.approx(1.0, abs=1e-9 + mass_err)


def test_soft_target_bce_is_the_continuous_bernoulli():
    # On y in (0, 1), exp(-BCE(y, z)) = p^y (1 - p)^(1 - y) integrates to
    # (2p - 1) / z with p = sigmoid(z) (the continuous Bernoulli normaliser).
    bce = lambda y, z: jnp.logaddexp(0.0, z) - y * z  # noqa: E731
    z = np.array([-4.0, -0.5, 0.7, 3.0])
    r = nllax.audit(bce, support="unit", predictions=z, a=1.0)
    _check_z(r, np.log((2 * special.expit(z) - 1) / z))
    assert not r.is_likelihood


# ----------------------------------------------------------------------------- discrete


def test_binary_and_categorical_sums():
    # Binary focal-type loss: Z = sum over y of exp(-a loss), exact; the corrected NLL
    # normalises (sum of exp(-corrected) is 1 to rounding: two terms, 4 u).
    def focal(y, z):
        p_true = jnp.where(y == 1, jax.nn.sigmoid(z), jax.nn.sigmoid(-z))
        return -(1 - p_true) ** 2 * jnp.where(y == 1, jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z))

    r = nllax.audit(focal, support="binary", a=1.0)
    for z in (-3.0, 0.0, 2.0):
        s = np.exp(r.log_prob(np.array([0, 1]), z)).sum()
        assert s == pytest.approx(1.0, abs=4 * 2.0**-52)
    # Categorical: sum_k p_k^a for cross entropy at a = 2 (a Renyi-2 normaliser).
    ce = lambda k, z: -jax.nn.log_softmax(z)[k]  # noqa: E731
    logits = np.array([[0.0, 1.0, -2.0], [3.0, 3.0, 3.0]])
    r = nllax.audit(ce, support=("categorical", 3), predictions=logits, a=2.0)
    p = special.softmax(logits, axis=1)
    np.testing.assert_allclose(r.log_normalizer, np.log((p**2).sum(1)), rtol=0, atol=1e-14)


def test_counts_sums_and_tails():
    # Geometric: exp(-a c k) sums to 1 / (1 - exp(-a c)).
    geo = lambda k, c: c * k  # noqa: E731
    cs = np.array([0.01, 0.5, 3.0])
    _check_z(nllax.audit(geo, support="counts", predictions=cs, a=1.0),
             -np.log(-np.expm1(-cs)))
    # Zeta: (k + 1)^-s sums to zeta(s); s = 3 converges (tail below 1e-18 by k = 2^20),
    # s = 1 is the harmonic series: infinite.
    zeta = lambda k, s: s * jnp.log1p(k)  # noqa: E731
    _check_z(nllax.audit(zeta, support="counts", predictions=np.array([3.0, 4.0]), a=1.0),
             np.log(special.zeta(np.array([3.0, 4.0]))))
    r = nllax.audit(zeta, support="counts", predictions=np.array([1.0, 0.9]), a=1.0)
    assert np.all(r.log_normalizer == np.inf)
    # Poisson: with the base measure 1/k! the Poisson loss is a likelihood at a = 1.
    pois = lambda k, eta: jnp.exp(eta) - k * eta  # noqa: E731
    base = lambda k: -jax.scipy.special.gammaln(k + 1.0)  # noqa: E731
    r = nllax.audit(pois, support="counts", predictions=np.array([-2.0, 0.0, 4.0, 9.0]),
                    a=1.0, base=base)
    _check_z(r, 0.0)
    assert r.is_likelihood


# ----------------------------------------------------------------------------- the search


def test_search_any_isolated_range_none():
    r = nllax.audit(SQ, support="real")
    assert (r.is_likelihood, r.scales, r.a) == (True, "any", 1.0)
    assert [a for a, _ in r.search] == [0.25, 0.5, 1.0, 2.0, 4.0]
    bce = lambda y, z: jnp.logaddexp(0.0, z) - y * z  # noqa: E731
    # 3 * BCE works only at a = 1/3 (between grid points: golden section, then snapped).
    r = nllax.audit(lambda y, z: 3.0 * bce(y, z), support="binary")
    assert (r.is_likelihood, r.scales) == (True, "isolated") and r.a == 1 / 3
    assert r.b == pytest.approx(0.0, abs=ACC)
    # The Cauchy loss log(1 + r^2) normalises for every a > 1/2 only.
    r = nllax.audit(lambda y, p: jnp.log1p((y - p) ** 2), support="real")
    assert (r.is_likelihood, r.scales, r.a) == (True, "range", 1.0)
    assert dict(r.search)[0.25] == math.inf and dict(r.search)[0.5] == math.inf
    # Hinge: no a.
    r = nllax.audit(lambda y, z: jnp.maximum(0.0, 1.0 - (2 * y - 1) * z), support="binary")
    assert (r.is_likelihood, r.scales) == (False, "none") and r.variation > 0.1


# ----------------------------------------------------------------------------- every loss

RESULTS: dict[str, nllax.Audit] = {}


@pytest.fixture(scope="module")
def results():
    return RESULTS


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict(case, results):
    r = nllax.audit(case.loss, support=case.support, predictions=case.predictions,
                    base=case.base)
    results[case.name] = r
    assert (r.is_likelihood, r.scales, r.a) == (case.is_likelihood, case.scales, case.a), r.reason
    if case.is_likelihood:
        assert r.b == pytest.approx(case.b(r.a), abs=ACC)
    else:
        assert r.b is None and r.variation > 1e3 * _audit.TOLERANCE


def test_docs_table_is_in_step(results):
    if len(results) != len(CASES):
        pytest.skip("needs every test_verdict case in the same run")
    text = DOC.read_text()
    assert render_markdown(results) in text, (
        "docs/audit.md is out of date: regenerate with `python bench/audit_torch.py --markdown`")


# ----------------------------------------------------------------------------- API


def test_bad_arguments():
    with pytest.raises(ValueError, match="`support` must be one of"):
        nllax.audit(SQ, support="integers")
    with pytest.raises(ValueError, match="categorical support is"):
        nllax.audit(SQ, support=("categorical", 1))
    with pytest.raises(ValueError, match="at least two predictions"):
        nllax.audit(SQ, support="real", predictions=np.array([1.0]))
    with pytest.raises(ValueError, match="`a` must be a positive finite number"):
        nllax.audit(SQ, support="real", a=0.0)
    with pytest.raises(ValueError, match="must return a scalar"):
        nllax.audit(lambda y, p: jnp.stack([y, p]), support="real", a=1.0)
    with pytest.raises(TypeError, match="`loss` must be callable"):
        nllax.audit(1.0, support="real")


def test_x64_does_not_leak_and_the_result_reads_well():
    before = jax.config.jax_enable_x64
    r = nllax.audit(SQ, support="real", a=1.0)
    assert jax.config.jax_enable_x64 == before
    assert r.log_normalizer.dtype == np.float64 and r.log_normalizer.shape == (7,)
    assert "a likelihood at a = 1" in r.reason
    assert r.log_normalizer_at(123.0) == pytest.approx(0.5 * math.log(math.pi), abs=ACC)
    np.testing.assert_allclose(r.corrected_nll(np.array([0.0, 1.0]), 0.0),
                               [0.5 * math.log(math.pi), 1 + 0.5 * math.log(math.pi)],
                               rtol=0, atol=ACC)
    assert "audit" in nllax.__all__ and "Audit" in nllax.__all__ and nllax.Audit is _audit.Audit
