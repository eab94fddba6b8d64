"""What the harness does not cover for gaussian_natural, multivariate_normal and
gaussian_mixture: convexity in the natural parameters, the multivariate paths and their
float32 conditioning, the mixture's degenerate cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import _tolerances as tt
import nllax

C = tt.TERM_ROUNDINGS  # a few roundings of each computed quantity
EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------
# gaussian_natural


def _natural_points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=n) * 5
    sigma = np.exp(rng.normal(size=n))
    y = mu + 3 * sigma * rng.normal(size=n)
    return y, mu / sigma**2, -0.5 / sigma**2, mu, sigma


def test_natural_nll_is_convex_and_its_hessian_is_cov_of_sufficient_statistics(x64):
    y, e1, e2, mu, sigma = _natural_points()

    def nll1(eta, yi):
        return nllax.gaussian_natural.nll(yi, eta[0], eta[1])

    hess = jax.jit(jax.vmap(jax.hessian(nll1)))(jnp.stack([e1, e2], -1), jnp.asarray(y))
    hess = np.asarray(hess)
    norm = np.linalg.norm(hess, axis=(1, 2))
    eig = np.linalg.eigvalsh(hess)
    # the entries are derivatives of z = (t y - eta1)/sqrt(t): relative rounding errors of
    # a few eps times the cancellation |t y| + |eta1| against |t y - eta1| ~ (|y| +
    # |mu|)/sigma, squared for a second derivative: each entry within C eps cond^2 ||H||
    cond = (np.abs(y) + np.abs(mu)) / sigma + 1
    entry = C * EPS64 * cond**2 * norm
    # the eigenvalues move by at most ||dH||_2 <= ||dH||_F <= 2 max|dH_ij| (Weyl), and
    # eigvalsh's own backward error, a few eps ||H||
    tol = 2 * entry + C * EPS64 * norm
    assert np.all(eig >= -tol[:, None]), (eig, tol)
    # the exact Hessian: Cov(y, y^2) under N(mu, sigma^2), whatever y (NumPy's want a
    # few roundings of its own entries, within C eps ||H||)
    v = sigma**2
    want = np.stack([np.stack([v, 2 * mu * v], -1),
                     np.stack([2 * mu * v, 2 * v**2 + 4 * mu**2 * v], -1)], -2)
    err = np.abs(hess - want).max(axis=(1, 2))
    assert np.all(err <= entry + C * EPS64 * norm), (err / norm, cond)


def test_natural_nll_convex_along_random_segments_float32():
    # convexity of the sum, not just per observation: f(midpoint) <= mean of the ends
    y, e1, e2, _, _ = _natural_points(n=30, seed=1)
    rng = np.random.default_rng(2)
    a = (e1, e2)
    b = (e1 + rng.normal(size=e1.shape), e2 * np.exp(rng.normal(size=e2.shape)))
    y32 = jnp.asarray(y, jnp.float32)
    per = jax.jit(lambda p, q: nllax.gaussian_natural.log_prob(y32, p, q))
    f = jax.jit(lambda p, q: nllax.gaussian_natural.nll(y32, p, q))
    a32 = [jnp.asarray(x, jnp.float32) for x in a]
    b32 = [jnp.asarray(x, jnp.float32) for x in b]
    # the midpoint of the float32 ends, rounded to float32 (eps32 / 2 of each entry)
    m64 = [0.5 * (np.asarray(p, np.float64) + np.asarray(q, np.float64)) for p, q in zip(a32, b32)]
    m32 = [jnp.asarray(x, jnp.float32) for x in m64]
    fa, fb, fm = (float(f(*x)) for x in (a32, b32, m32))
    # each of the three sums of 30 terms within (30 + c) eps32 of the sum of its terms'
    # absolute values (tt.sum_rounding), each term a few roundings of the pieces it
    # cancels (eta1 y, eta2 y^2, the log-normaliser); the midpoint's rounding moves f by
    # at most eps32 / 2 sum |df/d eta| |eta| (per-observation gradients: f is separable)
    def pieces(p, q):
        p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
        return (np.abs(p * y) + np.abs(q * y**2) + np.abs(p**2 / (4 * q))
                + np.abs(0.5 * np.log(-2 * q)) + 1)
    sizes = [np.sum(np.abs(np.asarray(per(*x), np.float64))) for x in (a32, b32, m32)]
    term = [C * EPS32 * np.sum(pieces(*x)) for x in (a32, b32, m32)]
    ga, gb = jax.jit(jax.grad(lambda p, q: f(p, q), argnums=(0, 1)))(*m32)
    shift = 0.5 * EPS32 * sum(float(np.sum(np.abs(np.asarray(g, np.float64) * np.asarray(x))))
                              for g, x in ((ga, m32[0]), (gb, m32[1])))
    slack = sum((len(y) + C) * EPS32 * sz + t for sz, t in zip(sizes, term)) + shift
    assert fm <= 0.5 * (fa + fb) + slack, (fm - 0.5 * (fa + fb), slack)


def test_natural_equals_gaussian_through_the_map(x64):
    y, e1, e2, mu, sigma = _natural_points()
    got = nllax.gaussian_natural.log_prob(y, e1, e2)
    # the natural form cancels eta1 y + eta2 y^2 against the log-normaliser eta1^2 /
    # (-4 eta2) (each a few roundings), scipy's adds z^2 / 2, log sigma and log(2 pi) / 2;
    # e1, e2 carry the rounding of mu / sigma^2 (a few eps relative), moving the value by
    # |d lp / d eta1| |e1| = |y - mu| |e1| and |d lp / d eta2| |e2| = |y^2 - mu^2 - v| |e2|
    v = sigma**2
    size = (np.abs(e1 * y) + np.abs(e2 * y**2) + np.abs(e1**2 / (4 * e2))
            + np.abs(0.5 * np.log(-2 * e2)) + 0.5 * ((y - mu) / sigma) ** 2
            + np.abs(np.log(sigma)) + 1)
    cond = np.abs(y - mu) * np.abs(e1) + np.abs(y**2 - mu**2 - v) * np.abs(e2)
    err = np.abs(np.asarray(got) - stats.norm.logpdf(y, mu, sigma))
    assert np.all(err <= C * EPS64 * (2 * size + cond)), np.max(err / (size + cond))
    # the maps: a product and a division or two, each side (here and NumPy's e1, e2):
    # C eps relative in all
    m, vv = nllax.gaussian_natural.to_mean_var(e1, e2)
    np.testing.assert_allclose(np.asarray(m), mu, rtol=C * EPS64)
    np.testing.assert_allclose(np.asarray(vv), v, rtol=C * EPS64)
    b1, b2 = nllax.gaussian_natural.from_mean_var(mu, v)
    np.testing.assert_allclose(np.asarray(b1), e1, rtol=C * EPS64)
    np.testing.assert_allclose(np.asarray(b2), e2, rtol=C * EPS64)


# ---------------------------------------------------------------------------------------
# multivariate_normal

import pytest  # noqa: E402
from scipy import linalg as sla  # noqa: E402

from cases import multivariate_normal as mvn_case  # noqa: E402

MVN = nllax.multivariate_normal


def _mvn_inputs(n=5, seed=0):
    rng = np.random.default_rng([seed, 11])
    return mvn_case._sample(rng, n)


def test_mvn_cov_and_shared_matrix_paths_agree(x64):
    y, p = _mvn_inputs()
    loc, low = p["loc"], p["scale_tril"]
    a = MVN.log_prob(y, loc, scale_tril=low)
    b = MVN.log_prob(y, loc, cov=low @ np.swapaxes(low, -1, -2))
    # each path within the case's condition bound (its f32_ulps roundings of the
    # magnitude, which covers the solve and the Cholesky of the cov path) in float64
    ulps = mvn_case.CASE.f32_ulps * EPS64
    mag = mvn_case._magnitude(y, loc, low)
    assert np.all(np.abs(np.asarray(b) - np.asarray(a)) <= 2 * ulps * mag)
    # one (d, d) matrix and one (d,) mean for every observation: the one-solve path,
    # against the per-observation path on the broadcast inputs
    shared = MVN.log_prob(y, loc[0], scale_tril=low[0])
    each = MVN.log_prob(y, np.broadcast_to(loc[0], y.shape),
                        scale_tril=np.broadcast_to(low[0], low.shape))
    mag0 = mvn_case._magnitude(y, loc[0], low[0])
    assert np.all(np.abs(np.asarray(shared) - np.asarray(each)) <= 2 * ulps * mag0)
    # against the reference: the case's own rtol64 (its rtol64_why)
    ref = mvn_case._reference(y, loc[0], low[0])
    np.testing.assert_allclose(np.asarray(shared), ref, rtol=mvn_case.CASE.rtol64)
    # the shared path reduced (Affine) and masked
    m = np.array([True, False, True, True, False])
    got = MVN.nll(y, loc[0], scale_tril=low[0], where=m)
    terms = mvn_case._reference(y[m], loc[0], low[0])
    want = -np.sum(terms)
    # the terms within rtol64 (as above), and both sides' sums (tt.sum_rounding)
    bound = mvn_case.CASE.rtol64 * np.sum(np.abs(terms)) + 2 * tt.sum_rounding(terms)
    assert abs(float(got) - want) <= bound, (abs(float(got) - want), bound)


def test_mvn_upper_triangle_is_ignored_in_value_and_gradient(x64):
    y, p = _mvn_inputs()
    loc, low = p["loc"], p["scale_tril"]
    junk = low + np.triu(np.full(low.shape, 7.0), 1)
    junk[2, 0, 2] = np.nan  # even NaN
    f = jax.jit(jax.value_and_grad(lambda L: MVN.nll(y, loc, scale_tril=L)))
    v0, g0 = f(jnp.asarray(low))
    v1, g1 = f(jnp.asarray(junk))
    assert float(v0) == float(v1)
    np.testing.assert_array_equal(np.asarray(g0), np.asarray(g1))
    assert np.all(np.triu(np.asarray(g1), 1) == 0)


def test_mvn_shape_errors_name_the_argument():
    y, p = _mvn_inputs()
    with pytest.raises(ValueError, match="`loc`"):
        MVN.log_prob(y, p["loc"][:, :2], scale_tril=p["scale_tril"])
    with pytest.raises(ValueError, match="`scale_tril`"):
        MVN.log_prob(y, p["loc"], scale_tril=p["scale_tril"][:, :2, :2])
    with pytest.raises(ValueError, match="`cov`"):
        MVN.log_prob(y, p["loc"], cov=np.eye(2))
    with pytest.raises(ValueError, match="exactly one"):
        MVN.log_prob(y, p["loc"])
    with pytest.raises(ValueError, match="`y`"):
        MVN.log_prob(1.0, np.zeros(1), scale_tril=np.eye(1))


def ill_conditioned_errors(kappas=(1e1, 1e2, 1e3, 1e4, 1e5), kind="diagonal",
                           path="scale_tril", n=50, seed=0):
    """float32 errors of log_prob for scale_tril of condition number ~kappa, against a
    float64 triangular solve at the same (rounded) inputs. ``kind="diagonal"``: a graded
    diagonal from 1 to 1/kappa (small off-diagonals); ``"offdiag"``: unit diagonal and
    off-diagonal entries ~sqrt(kappa) (|L^-1||L| itself large). ``path="cov"`` passes
    L L^T instead. Rows of (kappa(L), worst |error|, worst |error| / (eps32 * magnitude),
    worst |error| / (eps32 * kappa(L) * (|z|^2 + 1)))."""
    rng = np.random.default_rng(seed)
    d = mvn_case.D
    rows = []
    for kappa in kappas:
        if kind == "diagonal":
            diag = np.geomspace(1.0, 1.0 / kappa, d)
            low = np.tril(rng.normal(size=(n, d, d)) * 0.3, -1) * diag[:, None] + np.diag(diag)
        else:
            off = np.sqrt(kappa) * rng.choice([-1.0, 1.0], size=(n, d, d))
            low = np.tril(off * rng.uniform(0.5, 1.0, size=(n, d, d)), -1) + np.eye(d)
        loc = rng.normal(size=(n, d))
        y = loc + np.einsum("nij,nj->ni", low, rng.normal(size=(n, d)))
        y32, loc32, low32 = (np.asarray(a, np.float32) for a in (y, loc, low))
        if path == "cov":
            c32 = np.asarray(low32.astype(np.float64) @ np.swapaxes(low32, -1, -2), np.float32)
            got = np.asarray(jax.jit(lambda a, b, c: MVN.log_prob(a, b, cov=c))(
                y32, loc32, c32), np.float64)
            low64 = np.linalg.cholesky(c32.astype(np.float64))
        else:
            got = np.asarray(jax.jit(lambda a, b, c: MVN.log_prob(a, b, scale_tril=c))(
                y32, loc32, low32), np.float64)
            low64 = low32.astype(np.float64)
        y64, loc64 = y32.astype(np.float64), loc32.astype(np.float64)
        z = np.stack([sla.solve_triangular(low64[i], y64[i] - loc64[i], lower=True)
                      for i in range(n)])
        want = (-0.5 * np.sum(z**2, -1) - np.sum(np.log(np.diagonal(low64, 0, -2, -1)), -1)
                - 0.5 * d * np.log(2 * np.pi))
        err = np.abs(got - want)
        mag = mvn_case._magnitude(y64, loc64, low64)
        cond = np.array([np.linalg.cond(m) for m in low64])
        rows.append((float(np.max(cond)), float(np.max(err)),
                     float(np.max(err / (EPS32 * mag))),
                     float(np.max(err / (EPS32 * cond * (np.sum(z**2, -1) + 1))))))
    return rows


@pytest.mark.parametrize("kind,path", [("diagonal", "scale_tril"), ("offdiag", "scale_tril"),
                                       ("offdiag", "cov")])
def test_mvn_float32_error_is_bounded_by_the_conditioning(x64, kind, path):
    # the case's condition bound (magnitude) holds for L with condition numbers up to
    # ~1e5 (the cov path up to ~1e3: kappa(cov) = kappa(L)^2 must stay below 1/eps32)
    kappas = (1e1, 1e2, 1e3, 1e4, 1e5) if path == "scale_tril" else (1e1, 1e2, 1e3)
    for kappa, err, ulps, per_kappa in ill_conditioned_errors(kappas, kind, path):
        assert ulps <= mvn_case.CASE.f32_ulps, (kappa, err, ulps)


# ---------------------------------------------------------------------------------------
# docstring examples of the public functions: tests/test_doctests.py runs
# doctest.testmod(module), which skips functions whose __module__ is another module, and
# a family's public functions are made in nllax._family, so their examples are run here.

import doctest  # noqa: E402


@pytest.mark.parametrize("name", ["gaussian_natural", "multivariate_normal",
                                  "gaussian_mixture"])
def test_public_function_examples(name):
    mod = getattr(nllax, name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    n = 0
    for fn_name in mod.__all__:
        for t in finder.find(getattr(mod, fn_name), f"nllax.{name}.{fn_name}", globs={}):
            n += len(t.examples)
            runner.run(t)
    assert n > 0 and runner.summarize(verbose=False).failed == 0


# ---------------------------------------------------------------------------------------
# gaussian_mixture

from cases import gaussian_mixture as mix_case  # noqa: E402

MIX = nllax.gaussian_mixture


def test_mixture_switched_off_component_and_single_component(x64):
    rng = np.random.default_rng(5)
    y, p = mix_case._sample(rng, 8)
    logits = p["logits"].copy()
    logits[:, 2] = -np.inf  # component 2 off: the mixture of the other two, exactly
    f = jax.jit(jax.value_and_grad(
        lambda lo, l, s: MIX.nll(y, logits=lo, loc=l, scale=s), argnums=(0, 1, 2)))
    v, grads = f(logits, p["loc"], p["scale"])
    two = mix_case.CASE.reference(y, logits[:, :2], p["loc"][:, :2], p["scale"][:, :2])
    # the reference within the case's rtol64 per observation, and both sums' rounding
    bound = mix_case.CASE.rtol64 * np.sum(np.abs(two)) + 2 * tt.sum_rounding(two)
    assert abs(float(v) + np.sum(two)) <= bound, (abs(float(v) + np.sum(two)), bound)
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(grads[1])[:, 2] == 0) and np.all(np.asarray(grads[2])[:, 2] == 0)
    # K = 1 is the Gaussian
    one = MIX.log_prob(y, logits=np.zeros((8, 1)), loc=p["loc"][:, :1], scale=p["scale"][:, :1])
    # two implementations of z^2 / 2 + log sigma + log(2 pi) / 2 (the one-component
    # log-sum-exp and log-softmax add exact zeros): C eps of those pieces each side
    z = (y - p["loc"][:, 0]) / p["scale"][:, 0]
    size = 0.5 * z**2 + np.abs(np.log(p["scale"][:, 0])) + 1
    err = np.abs(np.asarray(one) - stats.norm.logpdf(y, p["loc"][:, 0], p["scale"][:, 0]))
    assert np.all(err <= 2 * C * EPS64 * size), np.max(err / size)


def test_mixture_far_from_every_component_and_shared_parameters(x64):
    # every N(y) underflows in float64 (z = 60 / 0.1): the log-density is still exact
    lp = MIX.log_prob(jnp.array([60.0, -60.0]), logits=jnp.array([0.0, 1.0]),
                      loc=jnp.array([-1.0, 1.0]), scale=jnp.array([0.1, 0.1]))
    want = mix_case.CASE.reference(np.array([60.0, -60.0]), np.array([0.0, 1.0]),
                                   np.array([-1.0, 1.0]), np.array([0.1, 0.1]))
    np.testing.assert_allclose(np.asarray(lp), want, rtol=mix_case.CASE.rtol64)  # its why
    assert float(jnp.min(lp)) < -1e5


def test_mixture_component_count_mismatch_names_the_argument():
    with pytest.raises(ValueError, match="`scale`"):
        MIX.log_prob(jnp.zeros(3), logits=jnp.zeros(2), loc=jnp.zeros(2), scale=jnp.ones(3))
    with pytest.raises(ValueError, match="`loc`"):
        MIX.log_prob(jnp.zeros(3), logits=jnp.zeros(2), loc=jnp.zeros(4), scale=jnp.ones(2))


def test_compatibility_table_is_exact_and_in_step():
    # bench/compat.py needs torch (a bench extra): skipped where it is not installed. Run
    # in a subprocess: the script turns on float64 globally, which must not leak here.
    pytest.importorskip("torch")
    pytest.importorskip("optax")
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    r = subprocess.run([sys.executable, str(root / "bench" / "compat.py"), "--check"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
