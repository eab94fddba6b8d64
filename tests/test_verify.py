"""nllax.verify: gradient_ratio and assert_proportional on objectives with known gradients.

Most objectives here are linear, f(p) = <a, p>, so the gradients are exactly the chosen
vectors and every expected statistic has a closed form computed with NumPy in float64.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _tolerances as tt
import nllax
from nllax import verify


def _linear(vectors):
    """f(params) = sum over leaves of <vectors[leaf], params[leaf]>: grad f == vectors."""

    def f(params):
        return sum(jnp.vdot(v, p) for v, p in zip(jax.tree_util.tree_leaves(vectors),
                                                   jax.tree_util.tree_leaves(params)))

    return f


def _params(dtype, zeros=jnp.zeros):
    return {"w": zeros((3, 2), dtype), "b": (zeros((), dtype), zeros((4,), dtype))}


def _vectors(seed, dtype):
    rng = np.random.default_rng(seed)
    tree = _params(np.float64, np.zeros)
    return jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape), dtype), tree)


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree_util.tree_leaves(tree)])


def test_exactly_proportional_pytree(x64):
    a = _vectors(0, jnp.float64)
    g = _linear(a)
    f = lambda p: -2.5 * g(p) + 7.0
    r = verify.gradient_ratio(f, g, _params(jnp.float64))
    assert isinstance(r, verify.GradientRatio)
    # grad f = -2.5 a to one rounding per entry (eps relative, which moves the ratio by
    # eps relative); the statistics' own rounding from tt.gradient_ratio_rounding
    v = _flat(a)
    b = tt.gradient_ratio_rounding(-2.5 * v, v)
    assert float(r.ratio) == pytest.approx(-2.5, rel=b["ratio"] + tt.EPS64)
    assert float(r.cosine) == pytest.approx(-1.0, rel=0, abs=b["cosine"] + tt.EPS64)
    assert float(r.residual) <= b["residual"] + tt.EPS64
    # leaf_ratios has the structure of params, one scalar per leaf.
    assert jax.tree_util.tree_structure(r.leaf_ratios) == jax.tree_util.tree_structure(_params(jnp.float64))
    for leaf, la in zip(jax.tree_util.tree_leaves(r.leaf_ratios), jax.tree_util.tree_leaves(a)):
        la = np.ravel(np.asarray(la))
        bl = tt.gradient_ratio_rounding(-2.5 * la, la)
        assert leaf.shape == () and float(leaf) == pytest.approx(-2.5, rel=bl["ratio"] + tt.EPS64)
    # both norms (here and NumPy's) within the norm's rounding; f's entries one more
    assert float(r.grad_g_norm) == pytest.approx(np.linalg.norm(v), rel=2 * b["norm"])
    assert float(r.grad_f_norm) == pytest.approx(2.5 * np.linalg.norm(v),
                                                 rel=2 * b["norm"] + 2 * tt.EPS64)


def test_general_position_matches_closed_form(x64):
    a, b = _vectors(1, jnp.float64), _vectors(2, jnp.float64)
    r = verify.gradient_ratio(_linear(a), _linear(b), _params(jnp.float64))
    u, v = _flat(a), _flat(b)
    ratio = u @ v / (v @ v)
    cosine = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
    residual = np.linalg.norm(u - ratio * v) / np.linalg.norm(u)
    # both sides (nllax's and NumPy's) within tt.gradient_ratio_rounding of the exact values
    bd = tt.gradient_ratio_rounding(u, v)
    assert float(r.ratio) == pytest.approx(ratio, rel=2 * bd["ratio"])
    assert float(r.cosine) == pytest.approx(cosine, rel=0, abs=2 * bd["cosine"])
    assert float(r.residual) == pytest.approx(residual, rel=0, abs=2 * bd["residual"])
    # sqrt(1 - c^2) moves by |c| / sqrt(1 - c^2) times the cosine's error
    via_cos = abs(cosine) / math.sqrt(1 - cosine**2) * 2 * bd["cosine"] + bd["residual"]
    assert float(r.residual) == pytest.approx(math.sqrt(1 - cosine**2), rel=0, abs=via_cos)
    # Per-leaf ratios are each leaf's own least-squares ratio.
    for la, lb, lr in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                          jax.tree_util.tree_leaves(r.leaf_ratios)):
        la, lb = np.ravel(np.asarray(la)), np.ravel(np.asarray(lb))
        bl = tt.gradient_ratio_rounding(la, lb)
        assert float(lr) == pytest.approx(la @ lb / (lb @ lb), rel=2 * bl["ratio"])


def test_orthogonal_gradients():
    f = lambda p: p[0]
    g = lambda p: p[1]
    r = verify.gradient_ratio(f, g, jnp.zeros(2))
    assert float(r.ratio) == 0.0 and float(r.cosine) == 0.0 and float(r.residual) == 1.0


def test_per_leaf_ratios_show_which_leaf_differs(x64):
    # f = 2 * g on "w" but 5 * g on "b": globally not proportional, per leaf exactly.
    def g(p, x):
        return jnp.sum(jnp.sin(p["w"] * x)) + jnp.sum(jnp.cos(p["b"]) * x[:2])

    def f(p, x):
        return 2.0 * jnp.sum(jnp.sin(p["w"] * x)) + 5.0 * jnp.sum(jnp.cos(p["b"]) * x[:2])

    p = {"w": jnp.array([0.1, 0.2, 0.3]), "b": jnp.array([0.4, -0.7])}
    x = jnp.array([1.0, 2.0, 3.0])
    r = verify.gradient_ratio(f, g, p, x)
    # each leaf's gradients within their rounding (tt.derivative_rounding: backward error
    # of sin / cos and the products); the ratio moves by the two relative errors, plus the
    # statistics' own rounding
    flat = lambda fn: lambda q, x: fn({"w": q[:3], "b": q[3:]}, x)  # noqa: E731
    q = jnp.concatenate([p["w"], p["b"]])
    (gf, df), (gg, dg) = (tt.derivative_rounding(flat(fn), q, x) for fn in (f, g))
    for leaf, sl, want in (("w", slice(0, 3), 2.0), ("b", slice(3, 5), 5.0)):
        rel = (np.linalg.norm(df[sl]) / np.linalg.norm(gf[sl])
               + np.linalg.norm(dg[sl]) / np.linalg.norm(gg[sl])
               + tt.gradient_ratio_rounding(gf[sl], gg[sl])["ratio"])
        assert float(r.leaf_ratios[leaf]) == pytest.approx(want, rel=rel), leaf
    assert 2.0 < float(r.ratio) < 5.0
    assert float(r.residual) > 0.01
    with pytest.raises(AssertionError, match=r"worst leaf +: \['b'\]"):
        verify.assert_proportional(f, g, p, x, ratio=2.0)


def test_zero_grad_g_is_nan():
    f = lambda p: jnp.sum(p**2)
    g = lambda p: jnp.zeros(()) * jnp.sum(p)
    r = verify.gradient_ratio(f, g, jnp.array([1.0, 2.0]))
    assert np.isnan(r.ratio) and np.isnan(r.cosine) and np.isnan(r.residual)
    assert np.isnan(r.leaf_ratios)
    assert float(r.grad_g_norm) == 0.0 and float(r.grad_f_norm) > 0
    with pytest.raises(AssertionError, match="grad g is exactly 0"):
        verify.assert_proportional(f, g, jnp.array([1.0, 2.0]))


def test_zero_grad_f_gives_ratio_zero_and_nan_cosine():
    # grad f = 0 * grad g holds exactly, so the ratio is 0; the cosine and the residual
    # divide by |grad f| = 0 and are NaN. The assertion fails either way.
    f = lambda p: jnp.zeros(()) * jnp.sum(p)
    g = lambda p: jnp.sum(p**2)
    r = verify.gradient_ratio(f, g, jnp.array([1.0, 2.0]))
    assert float(r.ratio) == 0.0
    assert np.isnan(r.cosine) and np.isnan(r.residual)
    with pytest.raises(AssertionError, match="grad f is exactly 0"):
        verify.assert_proportional(f, g, jnp.array([1.0, 2.0]), ratio=0.0)


def test_both_zero_is_nan():
    z = lambda p: jnp.zeros(()) * jnp.sum(p)
    r = verify.gradient_ratio(z, z, jnp.ones(3))
    assert np.isnan(r.ratio) and np.isnan(r.cosine) and np.isnan(r.residual)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
@pytest.mark.parametrize("side", ["f", "g"])
def test_non_finite_gradient_is_nan_everywhere(bad, side):
    good = lambda p: jnp.sum(3.0 * p)
    worse = lambda p: jnp.sum(3.0 * p) + bad * p[0]
    f, g = (worse, good) if side == "f" else (good, worse)
    r = verify.gradient_ratio(f, g, jnp.ones(3))
    for stat in (r.ratio, r.cosine, r.residual, r.leaf_ratios):
        assert np.isnan(stat), stat
    assert np.isnan(r.grad_f_norm if side == "f" else r.grad_g_norm)
    with pytest.raises(AssertionError, match="non-finite"):
        verify.assert_proportional(f, g, jnp.ones(3))


def test_non_finite_leaf_only_poisons_that_leaf_ratio():
    f = lambda p: jnp.sum(2.0 * p["a"]) + jnp.sqrt(p["b"])
    g = lambda p: jnp.sum(p["a"]) + p["b"]
    r = verify.gradient_ratio(f, g, {"a": jnp.ones(2), "b": jnp.zeros(())})  # d sqrt(0) = inf
    assert float(r.leaf_ratios["a"]) == 2.0
    assert np.isnan(r.leaf_ratios["b"]) and np.isnan(r.ratio)


@pytest.mark.parametrize("size", [1e25, 1e-25])
def test_float32_no_overflow_or_underflow(size):
    # <g, g> of entries 1e25 is 1e50 (inf in float32), of 1e-25 is 1e-50 (0 in float32).
    v = jnp.array([1.0, -2.0, 3.0], jnp.float32) * jnp.float32(size)
    f = lambda p: 4.0 * jnp.vdot(v, p)
    g = lambda p: jnp.vdot(v, p)
    r = verify.gradient_ratio(f, g, jnp.zeros(3, jnp.float32))
    assert r.ratio.dtype == jnp.float32
    # grad f = 4 v exactly (a power of 2); the statistics' float32 rounding, and v's own
    # (each entry eps32 / 2 relative from its exact value) in the norm
    vv = np.asarray(v, np.float64)
    b = tt.gradient_ratio_rounding(4 * vv, vv, tt.EPS32)
    assert float(r.ratio) == pytest.approx(4.0, rel=b["ratio"])
    assert float(r.cosine) == pytest.approx(1.0, rel=0, abs=b["cosine"])
    assert float(r.residual) <= b["residual"]
    assert float(r.grad_g_norm) == pytest.approx(math.sqrt(14) * size, rel=b["norm"] + tt.EPS32)


def test_jit_and_vmap_agree_with_eager():
    a, b = _vectors(3, jnp.float32), _vectors(4, jnp.float32)
    f, g = _linear(a), _linear(b)
    f2 = lambda p: f(p) + jnp.sum(p["w"] ** 2)  # a gradient that depends on p
    p = _vectors(5, jnp.float32)
    eager = verify.gradient_ratio(f2, g, p)
    jitted = jax.jit(lambda q: verify.gradient_ratio(f2, g, q))(p)
    assert isinstance(jitted, verify.GradientRatio)
    # both programs within the float32 rounding of the exact statistics (a fused program
    # may round each gradient entry once more or less: in gamma's c); the exact gradients
    # in float64
    u = _flat(jax.grad(f2)(p))
    v = _flat(b)
    bd = tt.gradient_ratio_rounding(u, v, tt.EPS32)
    tol = {"ratio": ("rel", bd["ratio"]), "cosine": ("abs", bd["cosine"]),
           "residual": ("abs", bd["residual"]), "grad_f_norm": ("rel", bd["norm"]),
           "grad_g_norm": ("rel", bd["norm"])}
    for field, (kind, t) in tol.items():
        e, j = float(getattr(eager, field)), float(getattr(jitted, field))
        assert abs(e - j) <= 2 * t * (abs(e) if kind == "rel" else 1.0), (field, e, j)
    for le, lj, la, lb in zip(*(jax.tree_util.tree_leaves(t) for t in
                                (eager.leaf_ratios, jitted.leaf_ratios,
                                 jax.grad(f2)(p), b))):
        t = tt.gradient_ratio_rounding(la, lb, tt.EPS32)["ratio"]
        assert abs(float(le) - float(lj)) <= 2 * t * abs(float(le))
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, 2 * x]), p)
    vm = jax.vmap(lambda q: verify.gradient_ratio(f2, g, q))(batch)
    assert vm.ratio.shape == (2,)
    np.testing.assert_allclose(vm.ratio[0], eager.ratio, rtol=2 * bd["ratio"])


def test_half_precision_params_are_compared_in_float32():
    f = lambda p: 2.0 * jnp.sum(p.astype(jnp.float32) ** 2)
    g = lambda p: jnp.sum(p.astype(jnp.float32) ** 2)
    r = verify.assert_proportional(f, g, jnp.array([1.0, -3.0], jnp.bfloat16), ratio=2.0)
    assert r.ratio.dtype == jnp.float32


def test_argument_errors():
    p = jnp.ones(3)
    ok = lambda p: jnp.sum(p)
    with pytest.raises(ValueError, match="`f` must return a scalar"):
        verify.gradient_ratio(lambda p: p, ok, p)
    with pytest.raises(ValueError, match="`g` must return a scalar"):
        verify.gradient_ratio(ok, lambda p: p[None], p)
    with pytest.raises(TypeError, match=r"leaf \['n'\] has dtype int32"):
        verify.gradient_ratio(ok, ok, {"n": jnp.ones(2, jnp.int32)})
    with pytest.raises(ValueError, match="no leaves"):
        verify.gradient_ratio(ok, ok, {})
    with pytest.raises(TypeError, match="cannot run inside jit"):
        jax.jit(lambda q: verify.assert_proportional(ok, ok, q))(p)


def test_assert_proportional_passes_and_returns_result():
    x = jnp.linspace(-1.0, 2.0, 11)
    y = 1.0 + 0.5 * x + jnp.sin(7.0 * x)
    nll = lambda w, x, y: nllax.gaussian.nll(y, w[0] + w[1] * x, 0.5)
    sse = lambda w, x, y: nllax.losses.sse(y, w[0] + w[1] * x)
    r = verify.assert_proportional(nll, sse, jnp.array([0.3, -0.2]), x, y, ratio=2.0)
    # float32: each gradient within its rounding (tt.derivative_rounding: the residuals'
    # cancellation is in |dg/dy| |y|), the ratio off by the two relative errors and its own
    w0 = jnp.array([0.3, -0.2])
    (gf, df), (gg, dg) = (tt.derivative_rounding(lambda q, yy: fn(q, x, yy), w0, y, tt.EPS32)
                          for fn in (nll, sse))
    rel = (np.linalg.norm(df) / np.linalg.norm(gf) + np.linalg.norm(dg) / np.linalg.norm(gg)
           + tt.gradient_ratio_rounding(gf, gg, tt.EPS32)["ratio"])
    assert float(r.ratio) == pytest.approx(2.0, rel=rel)
    verify.assert_proportional(nll, sse, jnp.array([0.3, -0.2]), x, y)  # any ratio
    verify.assert_proportional(nll, sse, jnp.array([0.3, -0.2]), x, y, ratio=jnp.asarray(2.0))


def test_assert_proportional_message_is_readable():
    x = jnp.linspace(-1.0, 2.0, 11)
    y = 1.0 + 0.5 * x
    nll = lambda w, x, y: nllax.gaussian.nll(y, w["b"] + w["slope"] * x, 0.5)
    sse = lambda w, x, y: nllax.losses.sse(y, w["b"] + w["slope"] * x)
    w = {"b": jnp.zeros(()), "slope": jnp.zeros(())}
    with pytest.raises(AssertionError) as err:
        verify.assert_proportional(nll, sse, w, x, y, ratio=0.5)  # the truth is 1/(2 * 0.25)
    msg = str(err.value)
    assert "rtol=1.0e-04, float32" in msg
    assert "ratio differs from the expected one (relative error 3.000e+00" in msg
    assert "expected ratio : 0.5" in msg
    assert "measured ratio : 2" in msg
    assert "cosine" in msg and "residual" in msg
    assert "worst leaf" in msg and ("['b']" in msg or "['slope']" in msg)
    # Not parallel: a heteroscedastic Gaussian against SSE.
    het = lambda w, x, y: nllax.gaussian.nll(y, w["b"] + w["slope"] * x, 1.0 + x**2)
    with pytest.raises(AssertionError, match=r"not parallel \(residual"):
        verify.assert_proportional(het, sse, w, x, y)


@pytest.mark.parametrize("dtype, passes", [(jnp.float32, True), (jnp.float64, False)])
def test_default_rtol_is_keyed_on_dtype(x64, dtype, passes):
    # Gradients that differ in direction by ~1e-6: float32 noise, a real difference in float64.
    rng = np.random.default_rng(6)
    b = rng.normal(size=5)
    a = 3.0 * b + 1e-6 * rng.normal(size=5)
    f, g = (lambda p: jnp.vdot(jnp.asarray(a, dtype), p)), (lambda p: jnp.vdot(jnp.asarray(b, dtype), p))
    p = jnp.zeros(5, dtype)
    if passes:
        verify.assert_proportional(f, g, p, ratio=3.0)
    else:
        with pytest.raises(AssertionError, match="rtol=1.0e-10, float64"):
            verify.assert_proportional(f, g, p, ratio=3.0)
        verify.assert_proportional(f, g, p, ratio=3.0, rtol=1e-4)  # an explicit rtol wins
    assert verify.default_rtol(jnp.float64) == 1e-10
    assert verify.default_rtol(jnp.float32) == 1e-4
    assert verify.default_rtol(jnp.bfloat16) == 1e-2


def test_public_surface():
    assert nllax.verify is verify
    assert "verify" in nllax.__all__
    for name in verify.__all__:
        assert hasattr(verify, name)
