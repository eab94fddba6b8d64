"""nllax.verify: gradient_ratio and assert_proportional on objectives with known gradients.

Most objectives here are linear, f(p) = <a, p>, so the gradients are exactly the chosen
vectors and every expected statistic has a closed form computed with NumPy in float64.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    assert float(r.ratio) == pytest.approx(-2.5, rel=1e-15)
    assert float(r.cosine) == pytest.approx(-1.0, rel=1e-15)
    assert float(r.residual) < 1e-15
    # leaf_ratios has the structure of params, one scalar per leaf.
    assert jax.tree_util.tree_structure(r.leaf_ratios) == jax.tree_util.tree_structure(_params(jnp.float64))
    for leaf in jax.tree_util.tree_leaves(r.leaf_ratios):
        assert leaf.shape == () and float(leaf) == pytest.approx(-2.5, rel=1e-15)
    assert float(r.grad_g_norm) == pytest.approx(np.linalg.norm(_flat(a)), rel=1e-14)
    assert float(r.grad_f_norm) == pytest.approx(2.5 * np.linalg.norm(_flat(a)), rel=1e-14)


def test_general_position_matches_closed_form(x64):
    a, b = _vectors(1, jnp.float64), _vectors(2, jnp.float64)
    r = verify.gradient_ratio(_linear(a), _linear(b), _params(jnp.float64))
    u, v = _flat(a), _flat(b)
    ratio = u @ v / (v @ v)
    cosine = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
    residual = np.linalg.norm(u - ratio * v) / np.linalg.norm(u)
    assert float(r.ratio) == pytest.approx(ratio, rel=1e-13)
    assert float(r.cosine) == pytest.approx(cosine, rel=1e-13)
    assert float(r.residual) == pytest.approx(residual, rel=1e-13)
    assert float(r.residual) == pytest.approx(math.sqrt(1 - cosine**2), rel=1e-12)
    # Per-leaf ratios are each leaf's own least-squares ratio.
    for la, lb, lr in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                          jax.tree_util.tree_leaves(r.leaf_ratios)):
        la, lb = np.ravel(np.asarray(la)), np.ravel(np.asarray(lb))
        assert float(lr) == pytest.approx(la @ lb / (lb @ lb), rel=1e-13)


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
    assert float(r.leaf_ratios["w"]) == pytest.approx(2.0, rel=1e-15)
    assert float(r.leaf_ratios["b"]) == pytest.approx(5.0, rel=1e-15)
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
    assert float(r.ratio) == pytest.approx(4.0, rel=1e-6)
    assert float(r.cosine) == pytest.approx(1.0, rel=1e-6)
    assert float(r.residual) < 1e-6
    assert float(r.grad_g_norm) == pytest.approx(math.sqrt(14) * size, rel=1e-6)


def test_jit_and_vmap_agree_with_eager():
    a, b = _vectors(3, jnp.float32), _vectors(4, jnp.float32)
    f, g = _linear(a), _linear(b)
    f2 = lambda p: f(p) + jnp.sum(p["w"] ** 2)  # a gradient that depends on p
    p = _vectors(5, jnp.float32)
    eager = verify.gradient_ratio(f2, g, p)
    jitted = jax.jit(lambda q: verify.gradient_ratio(f2, g, q))(p)
    assert isinstance(jitted, verify.GradientRatio)
    for e, j in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(e, j, rtol=1e-5)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, 2 * x]), p)
    vm = jax.vmap(lambda q: verify.gradient_ratio(f2, g, q))(batch)
    assert vm.ratio.shape == (2,)
    np.testing.assert_allclose(vm.ratio[0], eager.ratio, rtol=1e-5)


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
    assert float(r.ratio) == pytest.approx(2.0, rel=1e-6)
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
