"""nllax.links: every link's inverse undoes it, its derivatives agree with autodiff and
with their closed forms, the two derivatives are reciprocal, and the extremes are finite
(float64 and float32)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import nllax
from nllax import links

EPS64 = float(np.finfo(np.float64).eps)
UNIT = ("logit", "probit", "cloglog")  # mean in (0, 1)
LINKS = {name: getattr(links, name) for name in
         ("logit", "probit", "cloglog", "log", "identity", "inverse", "sqrt")}
LINKS.update({"power(2)": links.power(2.0), "power(-0.5)": links.power(-0.5),
              "power(1.5)": links.power(1.5)})


def _mu(name):
    """Means inside the link's domain, from the edges to the middle."""
    if name in UNIT:
        return np.array([1e-12, 1e-6, 0.01, 0.2, 0.5, 0.77, 0.99, 1 - 1e-6])
    if name == "identity":
        return np.array([-30.0, -1.0, 0.0, 0.4, 7.0, 1e6])
    return np.array([1e-10, 1e-3, 0.4, 1.0, 7.0, 1e6])


# closed forms in float64 NumPy/SciPy: (g, g^-1, g', d g^-1 / d eta)
REF = {
    "logit": (special.logit, special.expit, lambda m: 1 / (m * (1 - m)),
              lambda e: special.expit(e) * special.expit(-e)),
    "probit": (special.ndtri, special.ndtr, lambda m: 1 / stats.norm.pdf(special.ndtri(m)),
               stats.norm.pdf),
    "cloglog": (lambda m: np.log(-np.log1p(-m)), lambda e: -np.expm1(-np.exp(e)),
                lambda m: -1 / ((1 - m) * np.log1p(-m)), lambda e: np.exp(e - np.exp(e))),
    "log": (np.log, np.exp, lambda m: 1 / m, np.exp),
    "identity": (lambda m: m, lambda e: e, np.ones_like, np.ones_like),
    "inverse": (lambda m: 1 / m, lambda e: 1 / e, lambda m: -1 / m**2, lambda e: -1 / e**2),
    "sqrt": (np.sqrt, np.square, lambda m: 0.5 / np.sqrt(m), lambda e: 2 * e),
    "power(2)": (np.square, np.sqrt, lambda m: 2 * m, lambda e: 0.5 / np.sqrt(e)),
    "power(-0.5)": (lambda m: m**-0.5, lambda e: e**-2.0, lambda m: -0.5 * m**-1.5,
                    lambda e: -2 * e**-3.0),
    "power(1.5)": (lambda m: m**1.5, lambda e: e**(2 / 3), lambda m: 1.5 * m**0.5,
                   lambda e: (2 / 3) * e**(-1 / 3)),
}


@pytest.mark.parametrize("name", list(LINKS))
def test_link_inverse_derivatives(x64, name):
    lk = LINKS[name]
    mu = _mu(name)

    @jax.jit
    def run(mu):
        eta = lk.link(mu)
        return {
            "eta": eta,
            "back": lk.inverse(eta),
            "d": lk.derivative(mu),
            "di": lk.inverse_derivative(eta),
            "grad_d": jax.vmap(jax.grad(lk.link))(mu),
            "grad_di": jax.vmap(jax.grad(lk.inverse))(eta),
        }

    r = jax.tree.map(np.asarray, run(jnp.asarray(mu)))
    g, gi, dg, dgi = REF[name]
    # inverse(link(mu)) = mu: a few roundings of each, amplified by the conditioning of
    # the round trip (for cloglog near mu = 1: -log1p(-mu) keeps eps / (1 - mu))
    cond = 1.0 / (1.0 - mu) if name in UNIT else 1.0
    np.testing.assert_allclose(r["back"], mu, rtol=0, atol=0, err_msg=name) if name == "identity" \
        else np.testing.assert_array_less(np.abs(r["back"] - mu), 64 * EPS64 * np.abs(mu) * cond
                                          + 1e-300)
    # against the closed forms (SciPy / NumPy), a few eps each
    np.testing.assert_allclose(r["eta"], g(mu), rtol=1e-13, err_msg=name)
    np.testing.assert_allclose(r["d"], dg(mu), rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(r["di"], dgi(r["eta"]), rtol=1e-12, err_msg=name)
    # against autodiff of link and inverse
    np.testing.assert_allclose(r["d"], r["grad_d"], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(r["di"], r["grad_di"], rtol=1e-12, err_msg=name)
    # d eta / d mu * d mu / d eta = 1 (rounding and the round trip's conditioning)
    np.testing.assert_allclose(r["d"] * r["di"], 1.0, rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("name", UNIT + ("log",))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extremes_are_finite(x64, name, dtype):
    lk = LINKS[name]
    big = 80.0 if name == "log" and dtype == jnp.float32 else (700.0 if name == "log" else 1e4)
    eta = jnp.asarray([-big, -40.0, -5.0, 0.0, 5.0, 40.0, big], dtype)
    f = jax.jit(lambda e: (lk.inverse(e), lk.inverse_derivative(e),
                           jax.vmap(jax.grad(lk.inverse))(e),
                           jax.vmap(jax.grad(jax.grad(lk.inverse)))(e)))
    for out in f(eta):
        assert out.dtype == dtype
        assert np.all(np.isfinite(np.asarray(out))), (name, out)
    mu = np.asarray(f(eta)[0])
    if name in UNIT:
        assert np.all((mu >= 0) & (mu <= 1))
    if name == "cloglog":  # -expm1(-exp(eta)) keeps the digits of tiny means
        np.testing.assert_allclose(float(lk.inverse(jnp.asarray(-40.0, dtype))),
                                   math.exp(-40.0), rtol=4 * float(jnp.finfo(dtype).eps))


def test_links_with_families(x64):
    # the docstring's uses: a Poisson with identity link, a binomial with a probit link;
    # the logit link's inverse gives the same binomial likelihood as logits= directly
    y = jnp.array([1.0, 2.0, 0.0, 3.0])
    eta = jnp.array([0.4, 1.2, -0.3, 0.9])
    v = nllax.poisson.nll(y, rate=links.identity.inverse(jnp.abs(eta)))
    np.testing.assert_allclose(float(v), -np.sum(stats.poisson.logpmf(y, np.abs(eta))),
                               rtol=1e-13)
    n = jnp.full(4, 3.0)
    w = nllax.binomial.nll(y, n, probs=links.probit.inverse(eta))
    np.testing.assert_allclose(float(w), -np.sum(stats.binom.logpmf(y, 3, special.ndtr(eta))),
                               rtol=1e-13)
    a = nllax.binomial.nll(y, n, probs=links.logit.inverse(eta))
    b = nllax.binomial.nll(y, n, logits=eta)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-14)


def test_power_special_cases_and_repr():
    assert links.power(0) is links.log and links.power(1) is links.identity
    assert repr(links.probit) == "nllax.links.probit"
    assert links.power(-1.0).name == "power(-1)"
    assert "links" in nllax.__all__ and nllax.links is links
