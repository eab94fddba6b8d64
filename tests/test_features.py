"""``nllax.categorical.nll_from_features`` against the materialised NLL and float64.

The chunked NLL (``_features.py``) must equal ``nllax.categorical.nll(labels,
logits=features @ classifier + bias)`` in value and in the three gradients, to rounding.
Each comparison is made against an exact float64 reference in NumPy (the log-sum-exp of
SciPy and the closed-form gradient ``g_i (softmax - onehot)``), for the chunked and the
materialised implementation alike, with the rounding bound below, evaluated elementwise
from the data; no tolerance is a value once observed.

The bound, for one implementation in unit roundoff u (``gamma(n) = n u / (1 - n u)``),
is the one stated in the docstring of ``nllax._features``, evaluated elementwise:

* each logit is a length-d dot product plus the bias: error dz_ij <= gamma(d + 1) A_ij,
  ``A = |F| |W| + |b|``;
* to first order, z_ij - lse_i is then accurate to ``(1 - p_ij) dz_ij + sum_{k != j}
  p_ik dz_ik`` plus the rounding of the log-sum-exp, ``(gamma(2V + 16) + 5u) min(1, l_i)
  + u l_i + 2u |z_ij - m_i|`` (l_i = lse_i - m_i, m_i the row maximum); the label's
  entry bounds the observation's term (relative for a confident row, whose term is
  ~1e-18 here), the reduction adds gamma(2N + 4) relative;
* each softmax entry is perturbed by the factor ``expm1(2 eps_ij + 8u)``, dz = g (p -
  onehot) by ``|g| rho p + gamma(N + 6)|dz|``, and the gradients are sums over V
  (features) or over the batch (classifier, bias) of dz times the data, each adding
  gamma(V + 2) or gamma(N + 2) times the sum of absolute products.

Against the float64 reference the bound is that of the implementation plus that of the
reference itself (the same formula in float64); between the two implementations, twice
that. The errors measured here are 1-10% of the bound.

Shapes are few and fixed (a (2, 6) batch, d = 16, V = 37 with chunks of 8: four full
chunks and a ragged one of 5), and each implementation is one compiled function per
dtype returning every quantity, so that the module compiles a handful of programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

import nllax
from nllax.categorical import nll_from_features

BATCH, D, V, CHUNK = (2, 6), 16, 37, 8
N = int(np.prod(BATCH))


def _data():
    """Features, classifier, bias, labels, mask, weights (float64 NumPy / ints)."""
    r = np.random.default_rng(15)
    F = r.normal(size=BATCH + (D,))
    W = r.normal(size=(D, V)) / 2
    b = r.normal(size=V)
    b[5] = -np.inf  # an excluded class: exact in both implementations
    y = r.integers(0, V, size=BATCH)
    y[y == 5] = 6  # no unmasked label on the excluded class (its term would be +inf)
    y[0, 0] = 5  # ... and a masked label on it
    # A confident row: features along the label's column, margin ~ 40 nats, so that
    # its term (~1e-16) is only right with the log1p form of the log-sum-exp.
    y[1, 0] = 7
    F[1, 0] = 80.0 * W[:, 7] / np.linalg.norm(W[:, 7]) ** 2  # z_7 = 80, the others <~ 40
    mask = np.ones(BATCH, bool)
    y[0, 3], mask[0, 3] = -4, False  # out of range but masked: ignored exactly
    y[1, 4], mask[1, 4] = V + 2, False
    mask[0, 0] = False
    weights = r.uniform(0.5, 2.0, size=BATCH).astype(np.float32)  # any dtype works
    return F, W, b, y.astype(np.int32), mask, weights


F64, W64, B64, LABELS, MASK, WEIGHTS = _data()


def _quantities(loss):
    """Every compared quantity from ``loss(F, W, b, reduction)``."""

    def run(F, W, b):
        out = {"none": loss(F, W, b, "none")}
        for red in ("sum", "mean"):
            value, (dF, dW, db) = jax.value_and_grad(
                lambda F, W, b, red=red: loss(F, W, b, red), argnums=(0, 1, 2))(F, W, b)
            out.update({red: value, f"{red}_dF": dF, f"{red}_dW": dW, f"{red}_db": db})
        return out

    return jax.jit(run)


def _chunked(F, W, b, reduction):
    return nll_from_features(LABELS, F, W, bias=b, chunk_size=CHUNK, reduction=reduction,
                             weights=WEIGHTS, where=MASK)


def _materialised(F, W, b, reduction):
    return nllax.categorical.nll(LABELS, logits=F @ W + b, reduction=reduction,
                                 weights=WEIGHTS, where=MASK)


CHUNKED = _quantities(_chunked)
MATERIALISED = _quantities(_materialised)


def _gamma(n, u):
    return n * u / (1 - n * u)


U64 = float(np.finfo(np.float64).eps) / 2


def _reference_and_bound(F, W, b, u, labels=LABELS, mask=MASK, weights=WEIGHTS):
    """Exact results for the (rounded) inputs, computed in float64, and the bounds of a
    comparison with them: ``(reference, bound)`` where ``bound`` is the bound of one
    implementation in unit roundoff u plus that of the float64 reference itself."""
    F, W, b = (np.asarray(x, np.float64) for x in (F, W, b))
    f, y, m_ = F.reshape(N, D), np.asarray(labels).reshape(N), np.asarray(mask).reshape(N)
    w = np.broadcast_to(np.asarray(weights, np.float64), BATCH).reshape(N)
    y = np.where(m_, y, 0)
    Z = f @ W + b
    lse = logsumexp(Z, axis=1)
    zy = Z[np.arange(N), y]
    onehot = np.arange(V) == y[:, None]
    # lse - z_y = log1p(sum over j != y of exp(z_j - z_y)): accurate also when tiny
    term = np.where(m_, np.log1p(np.sum(np.where(onehot, 0, np.exp(Z - zy[:, None])), 1)), 0)
    p = np.exp(Z - lse[:, None])
    count = np.sum(w * m_)
    reductions = (("sum", w * m_), ("mean", w * m_ / count))
    ref = {"none": (w * term).reshape(BATCH)}
    for red, g in reductions:
        G = g[:, None] * (p - onehot)
        ref[red] = np.sum(g * term)
        ref[f"{red}_dF"] = (G @ W.T).reshape(BATCH + (D,))
        ref[f"{red}_dW"] = f.T @ G
        ref[f"{red}_db"] = G.sum(axis=0)

    rowmax = Z.max(axis=1)

    def bound(u):
        finite = np.isfinite(b)
        A = np.where(finite, np.abs(f) @ np.abs(W) + np.abs(np.where(finite, b, 0)), 0.0)
        dz = _gamma(D + 1, u) * A  # each logit's error
        # To first order the error of z_ij - lse_i is dz_ij - sum_k p_ik dz_ik, at most
        # (1 - p_ij) dz_ij + sum_{k != j} p_ik dz_ik. Then the rounding: lse = m + l with
        # l = log1p(rest), rest the sum over the V - 1 other terms (and the online
        # merges), accurate to gamma(2V + 16) relative, which moves l by at most that
        # times rest / (1 + rest) <= min(1, l); log1p and the final additions add u l and
        # 2u |z - m|.
        # (sums of non-negative terms, so that the bound of a confident row's tiny term is
        # itself accurate: no 1 - p or S - p dz cancellation)
        others = 1.0 - np.eye(V)
        first = (p @ others) * dz + (p * dz) @ others
        l1p = (lse - rowmax)[:, None]
        rnd = ((_gamma(2 * V + 16, u) + 5 * u) * np.minimum(1, l1p) + u * l1p
               + 2 * u * np.abs(Z - rowmax[:, None]))
        err = np.where(np.isfinite(Z), first + rnd, 0.0)  # -inf logits are exact
        e_term = err[np.arange(N), y]  # the label's term, lse - z_y
        rho = np.expm1(2 * err + 8 * u)  # relative error of each p_ij = exp(z_ij - lse_i)
        out = {"none": (w * np.where(m_, e_term, 0) + 2 * u * np.abs(w * term)).reshape(BATCH)}
        for red, g in reductions:
            G = g[:, None] * (p - onehot)
            dG = np.abs(g)[:, None] * rho * p + _gamma(N + 6, u) * np.abs(G)
            out[red] = (np.sum(np.abs(g) * e_term)
                        + _gamma(2 * N + 4, u) * np.sum(np.abs(g * term)))
            out[f"{red}_dF"] = (dG @ np.abs(W).T + _gamma(V + 2, u) * np.abs(G) @ np.abs(W).T
                                ).reshape(BATCH + (D,))
            out[f"{red}_dW"] = np.abs(f).T @ dG + _gamma(N + 2, u) * np.abs(f).T @ np.abs(G)
            out[f"{red}_db"] = dG.sum(axis=0) + _gamma(N + 2, u) * np.abs(G).sum(axis=0)
        return out

    b_u, b_64 = bound(u), bound(U64)
    return ref, {k: b_u[k] + b_64[k] for k in ref}


def _assert_within(got, ref, bound, what):
    got = np.asarray(got, np.float64)
    err = np.abs(got - ref)
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{what}: {bad.sum()} entries beyond the rounding bound; worst excess "
        f"{np.max(err[bad] / np.maximum(bound[bad], 1e-300)):.3g}x")


@pytest.fixture(scope="module", params=["float64", "float32"])
def case(request):
    """(dtype, reference, bound, chunked results, materialised results)."""
    dtype = np.dtype(request.param)
    with jax.enable_x64(dtype == np.float64):
        args = [jnp.asarray(x, dtype) for x in (F64, W64, B64)]
        u = float(jnp.finfo(dtype).eps) / 2
        ref, bound = _reference_and_bound(*args, u)
        chunked = jax.tree_util.tree_map(np.asarray, CHUNKED(*args))
        materialised = jax.tree_util.tree_map(np.asarray, MATERIALISED(*args))
    return dtype, ref, bound, chunked, materialised


KEYS = ["none", "sum", "mean"] + [f"{r}_{g}" for r in ("sum", "mean") for g in ("dF", "dW", "db")]


@pytest.mark.parametrize("key", KEYS)
def test_equals_materialised_and_float64(case, key):
    dtype, ref, bound, chunked, materialised = case
    assert chunked[key].dtype == dtype
    # Each implementation is within its bound of the exact value (plus the reference's
    # own rounding), so the two are within twice that of each other.
    _assert_within(chunked[key], ref[key], bound[key], f"chunked {key}")
    _assert_within(materialised[key], ref[key], bound[key], f"materialised {key}")
    _assert_within(chunked[key], np.asarray(materialised[key], np.float64), 2 * bound[key],
                   f"chunked vs materialised {key}")


def test_masked_rows_contribute_nothing(case):
    _, _, _, chunked, _ = case
    assert np.all(chunked["none"][~MASK] == 0)
    for red in ("sum", "mean"):
        assert np.all(chunked[f"{red}_dF"][~MASK] == 0)  # also for the out-of-range labels
    assert np.all(np.isfinite(chunked["sum_dW"])) and np.all(np.isfinite(chunked["sum_db"]))


def test_confident_prediction_keeps_its_tiny_loss(case):
    _, ref, bound, chunked, materialised = case
    tiny = ref["none"][1, 0]
    assert 0 < tiny < 1e-12  # the data make it so (margin ~40 nats)
    # The label is the row maximum, so its term is log1p(sum of exp(z_j - m)), and the
    # bound is relative: it certifies 3 digits, where log(sum(exp(z - m))) would be off
    # by ~u, far more than the value itself.
    assert bound["none"][1, 0] <= 1e-3 * tiny
    for out in (chunked, materialised):
        assert abs(out["none"][1, 0] - tiny) <= bound["none"][1, 0]


# ---------------------------------------------------------------------------------------
# Invalid labels, reductions, layouts, chunkings, dtypes, transformations.


_INVALID = LABELS.copy()
_INVALID[0, 1] = V  # unmasked and out of range


@jax.jit
def _invalid_grads(F, W, b):
    def f(F, W, b):
        return nll_from_features(_INVALID, F, W, bias=b, chunk_size=CHUNK, where=MASK)

    def g(F, W, b):
        return nllax.categorical.nll(_INVALID, logits=F @ W + b, where=MASK)

    return jax.value_and_grad(f, argnums=(0, 1, 2))(F, W, b), \
        jax.value_and_grad(g, argnums=(0, 1, 2))(F, W, b)


def test_invalid_label_gives_nan_value_and_gradients(x64):
    (v, (dF, dW, db)), (vm, (dFm, dWm, dbm)) = _invalid_grads(F64, W64, B64)
    assert np.isnan(v) and np.isnan(vm)
    # the same NaN pattern as the materialised NLL: that row of dF, all of dW and db
    assert np.array_equal(np.isnan(dF), np.isnan(dFm))
    assert np.isnan(dF[0, 1]).all() and np.isnan(dW).all() and np.isnan(db).all()
    assert np.isfinite(np.delete(dF.reshape(N, D), 1, axis=0)).all()
    with pytest.raises(Exception, match=r"labels.*\[0, 37\)"):
        nllax.checked(lambda F: nll_from_features(_INVALID, F, W64, where=MASK))(F64)


@jax.jit
def _layouts_and_chunkings(F, W, b):
    """(d, V) with chunks of 8, (V, d), one chunk (1000 > V; also the default at this
    batch), and chunks of 1 (a scan with no ragged chunk)."""
    y = jnp.asarray(np.where(MASK, LABELS, 0))

    def f(F, W, b, **kw):
        return nll_from_features(y, F, W, bias=b, where=MASK, weights=WEIGHTS, **kw)

    out = {}
    for name, kw, WW in (("chunk8", dict(chunk_size=CHUNK), W),
                         ("vd", dict(chunk_size=CHUNK, vocab_axis=0), W.T),
                         ("single", dict(chunk_size=1000), W),
                         ("default", {}, W),
                         ("ones", dict(chunk_size=1), W)):
        v, g = jax.value_and_grad(lambda F, WW, b, kw=kw: f(F, WW, b, **kw),
                                  argnums=(0, 1, 2))(F, WW, b)
        out[name] = (v, g[0], g[1].T if name == "vd" else g[1], g[2])
    return out


def test_layouts_and_chunk_sizes_agree(x64):
    ref, bound = _reference_and_bound(F64, W64, B64, np.finfo(np.float64).eps / 2)
    out = _layouts_and_chunkings(F64, W64, B64)
    for name, (v, dF, dW, db) in out.items():
        _assert_within(v, ref["sum"], bound["sum"], name)
        _assert_within(dF, ref["sum_dF"], bound["sum_dF"], name)
        _assert_within(dW, ref["sum_dW"], bound["sum_dW"], name)
        _assert_within(db, ref["sum_db"], bound["sum_db"], name)


def test_bfloat16_inputs_are_computed_in_float32():
    args = [jnp.asarray(x, jnp.bfloat16) for x in (F64, W64, B64)]
    out = jax.tree_util.tree_map(np.asarray, CHUNKED(*args))
    # The float32 computation on the bfloat16 values (exact in float32), ...
    ref, bound = _reference_and_bound(*(np.asarray(a, np.float32) for a in args),
                                      float(jnp.finfo(jnp.float32).eps) / 2)
    u16 = float(jnp.finfo(jnp.bfloat16).eps) / 2
    for key in KEYS:
        is_grad = key.endswith(("_dF", "_dW", "_db"))
        # ... with the gradients rounded once more, to the inputs' dtype (cotangents
        # keep the primal dtype); the values stay float32.
        assert out[key].dtype == (jnp.bfloat16 if is_grad else jnp.float32), key
        extra = u16 * (np.abs(ref[key]) + bound[key]) if is_grad else 0.0
        _assert_within(out[key], ref[key], bound[key] + extra, f"bfloat16 {key}")


def test_vmap_and_reduction_none_under_jit(x64):
    y = np.where(MASK, LABELS, 0)  # every label valid, no mask, no weights
    F = jnp.asarray(F64)

    def slice_sum(y_row, F_row):  # one leading slice of the batch
        return nll_from_features(y_row, F_row, W64, bias=B64, chunk_size=CHUNK)

    batched = jax.jit(jax.vmap(slice_sum))(jnp.asarray(y), F)
    grads = jax.jit(jax.vmap(jax.grad(slice_sum, argnums=1)))(jnp.asarray(y), F)
    none = jax.jit(lambda F: nll_from_features(y, F, W64, bias=B64, chunk_size=CHUNK,
                                               reduction="none"))(F)
    ref, bound = _reference_and_bound(F64, W64, B64, U64, labels=y,
                                      mask=np.ones(BATCH, bool), weights=1.0)
    _assert_within(none, ref["none"], bound["none"], "reduction none")
    assert none.shape == BATCH
    slice_bound = bound["none"].sum(axis=1) + _gamma(16, U64) * np.abs(ref["none"]).sum(1)
    _assert_within(batched, ref["none"].sum(axis=1), slice_bound, "vmap value")
    # the slices are disjoint: the gradient of each slice's sum is that slice of the
    # gradient of the total
    _assert_within(grads, ref["sum_dF"], bound["sum_dF"], "vmap gradient")


def test_forward_mode_is_refused_clearly():
    f = lambda F: nll_from_features(LABELS.clip(0), F, W64.astype(np.float32))  # noqa: E731
    with pytest.raises(TypeError, match="custom_vjp|forward-mode|jvp"):
        jax.jvp(f, (F64.astype(np.float32),), (F64.astype(np.float32),))


# ---------------------------------------------------------------------------------------
# Bad input: raised at trace time, naming the argument.


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(labels=LABELS.astype(float)), TypeError, "labels"),
    (dict(features=F64.astype(int)), TypeError, "features"),
    (dict(classifier=W64.astype(np.int32)), TypeError, "classifier"),
    (dict(classifier=W64[None]), ValueError, "classifier"),
    (dict(features=F64[..., :5]), ValueError, "features.*d = 16"),
    (dict(features=F64[:1]), ValueError, "batch shape"),
    (dict(classifier=W64.T), ValueError, "vocab_axis=0"),
    (dict(bias=B64[:-1]), ValueError, "bias"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(chunk_size=2.5), ValueError, "chunk_size"),
    (dict(vocab_axis=2), ValueError, "vocab_axis"),
    (dict(where=MASK.astype(int)), TypeError, "where"),
    (dict(where=MASK[..., None]), ValueError, "where"),
    (dict(weights=WEIGHTS[:, :2]), ValueError, "weights"),
    (dict(reduction="max"), ValueError, "reduction"),
])
def test_bad_input_raises_naming_the_argument(kwargs, exc, match):
    args = dict(labels=LABELS.clip(0, V - 1), features=F64.astype(np.float32),
                classifier=W64.astype(np.float32))
    args.update(kwargs)
    labels, features, classifier = args.pop("labels"), args.pop("features"), args.pop("classifier")
    with pytest.raises(exc, match=match):
        jax.eval_shape(lambda f, w: nll_from_features(labels, f, w, **args), features, classifier)


def test_temporaries_do_not_grow_with_the_vocabulary():
    """The point of the function, checked on compiled code (no run): value and gradient
    at batch 256, d 16, V 16384, chunks of 512, need less than 1/16 of the materialised
    version's temporaries (whose logits alone are 16 MiB). ``bench/features.py``
    measures the full-size case."""
    n, d, v = 256, 16, 16384
    S = jax.ShapeDtypeStruct
    args = (S((n,), jnp.int32), S((n, d), jnp.float32), S((d, v), jnp.float32))

    def chunked(y, F, W):
        return nll_from_features(y, F, W, chunk_size=512)

    def materialised(y, F, W):
        return nllax.categorical.nll(y, logits=F @ W)

    temps = []
    for f in (chunked, materialised):
        compiled = jax.jit(jax.value_and_grad(f, argnums=(1, 2))).lower(*args).compile()
        stats = compiled.memory_analysis()
        if stats is None:
            pytest.skip("this backend reports no memory analysis")
        temps.append(stats.temp_size_in_bytes)
    assert temps[1] >= n * v * 4  # the logits are there
    assert temps[0] <= temps[1] / 16


# bench/features.py's smoke run is in tests/test_bench_smoke.py (one process for every
# benchmark's smoke run).
