"""The table NLL = a * loss + b holds to rounding for every pair, with weights and masks."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import _tolerances as tt
import nllax

R = np.random.default_rng(42)
N = 60


def _inputs(name):
    if name in ("sse", "mse", "sae", "mae"):
        return R.normal(size=N) * 2, R.normal(size=N), {"scale": 0.7}
    if name == "binary_cross_entropy":
        return R.uniform(size=N), R.normal(size=N) * 3, {}
    if name == "cross_entropy":
        return R.integers(0, 4, size=N), R.normal(size=(N, 4)), {}
    return R.poisson(5.0, size=N).astype(np.float64), R.normal(size=N), {}


NAMES = ["sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson"]


def test_table_has_every_row_of_the_design():
    # the design's wave-1 rows (wave-2 rows are checked from their cases by
    # tests/test_harness_equivalences.py)
    assert set(NAMES) <= set(nllax.equivalences)
    for name, eq in nllax.equivalences.items():
        assert isinstance(eq, nllax.Equivalence) and eq.name == name
        assert callable(eq.nll) and callable(eq.loss) and callable(eq.a) and callable(eq.b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", ["plain", "weights", "where", "both"])
def test_identity_holds_float64(x64, name, variant):
    y, pred, noise = _inputs(name)
    kw = {}
    if variant in ("weights", "both"):
        kw["weights"] = jnp.asarray(R.uniform(0.1, 3.0, size=N))
    if variant in ("where", "both"):
        kw["where"] = jnp.asarray(R.uniform(size=N) < 0.6)
    c = nllax.equivalences[name].check(jnp.asarray(y), jnp.asarray(pred), **kw, **noise)
    assert c.nll.dtype == jnp.float64
    # the rounding of three sums of N terms, (N + c) eps of the per-observation pieces
    # (tt.equivalence_rounding; any summation order)
    bound = tt.equivalence_rounding(nllax.equivalences[name], jnp.asarray(y), jnp.asarray(pred),
                                    **kw, **noise)
    assert float(c.abs_error) <= bound, (name, variant, c, bound)


@pytest.mark.parametrize("name", NAMES)
def test_identity_holds_float32(name):
    y, pred, noise = _inputs(name)
    yj = jnp.asarray(y, jnp.float32 if name != "cross_entropy" else None)
    c = nllax.equivalences[name].check(yj, jnp.asarray(pred, jnp.float32), **noise)
    # sums of 60 float32 terms: (N + c) eps32 of the per-observation pieces
    bound = tt.equivalence_rounding(nllax.equivalences[name], yj, jnp.asarray(pred, jnp.float32),
                                    eps=tt.EPS32, **noise)
    assert float(c.abs_error) <= bound, (c, bound)


def test_constants_match_the_design_formulas(x64):
    y = jnp.asarray(R.normal(size=N))
    w = jnp.asarray(R.uniform(0.5, 2, size=N))
    n = float(jnp.sum(w))
    s = 1.7
    eqs = nllax.equivalences
    # closed forms, a few roundings each side; n = sum(w) adds its N-term sum's rounding
    # (positive terms, so relative), log(2 pi s^2) its argument's (relative 1 / |log|)
    few = tt.TERM_ROUNDINGS * tt.EPS64
    n_sum = (N + tt.TERM_ROUNDINGS) * tt.EPS64
    np.testing.assert_allclose(eqs["sse"].a(y, scale=s, weights=w), 1 / (2 * s**2), rtol=few)
    np.testing.assert_allclose(eqs["mse"].a(y, scale=s, weights=w), n / (2 * s**2), rtol=few + n_sum)
    np.testing.assert_allclose(eqs["sse"].b(y, scale=s, weights=w), n / 2 * np.log(2 * np.pi * s**2),
                               rtol=n_sum + few * (1 + 1 / abs(np.log(2 * np.pi * s**2))))
    np.testing.assert_allclose(eqs["sae"].a(y, scale=s), 1 / s, rtol=few)
    np.testing.assert_allclose(eqs["mae"].a(y, scale=s), N / s, rtol=few)
    np.testing.assert_allclose(eqs["mae"].b(y, scale=s), N * np.log(2 * s),
                               rtol=few * (1 + 1 / abs(np.log(2 * s))))
    k = jnp.array([0.0, 1.0, 4.0, 10.0])
    # sum of lgamma(k + 1): XLA's lgamma is not correctly rounded; a few eps of each term
    # (absolute: log Gamma is a sum of terms of about its own size here)
    np.testing.assert_allclose(eqs["poisson"].b(k), np.log(1 * 1 * 24 * 3628800.0), rtol=few)
    assert float(eqs["binary_cross_entropy"].a(y)) == 1.0 and float(eqs["binary_cross_entropy"].b(y)) == 0.0


def test_heteroscedastic_gaussian_is_not_affine_in_sse():
    y = jnp.ones(4)
    with pytest.raises(ValueError, match="weighted loss with weights 1/scale"):
        nllax.equivalences["sse"].a(y, scale=jnp.array([1.0, 2.0, 1.0, 1.0]))


def test_check_reports_the_miss_of_a_wrong_identity(x64):
    """A deliberately wrong constant is caught: the check can fail."""
    y, pred, noise = _inputs("sse")
    eq = nllax.equivalences["sse"]
    wrong = nllax.Equivalence(eq.nll, eq.loss, lambda y, **kw: eq.a(y, **kw) * 1.001, eq.b)
    c = wrong.check(jnp.asarray(y), jnp.asarray(pred), **noise)
    # the miss is 1e-3 a loss, to the rounding the passing check allows (plus the
    # product's few eps), and far above that rounding
    rounding = tt.equivalence_rounding(eq, jnp.asarray(y), jnp.asarray(pred), **noise)
    miss = 1e-3 * float(eq.a(jnp.asarray(y), **noise) * c.loss)
    assert abs(float(c.abs_error) - miss) <= rounding + tt.TERM_ROUNDINGS * tt.EPS64 * miss
    assert miss > 100 * rounding


def test_constants_check_the_mask_like_every_nll():
    y = jnp.ones(4)
    with pytest.raises(TypeError, match="boolean mask"):
        nllax.equivalences["mse"].a(y, scale=1.0, where=jnp.ones(4))
    with pytest.raises(ValueError, match="where"):
        nllax.equivalences["poisson"].b(y, where=jnp.ones((4, 1), bool))
