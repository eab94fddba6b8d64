"""The fit loop's fast paths (issue 13, bench/FIT_LOOP.md): the call outside any
transformation (no custom_jvp wrapper, host-scalar controls, XLA's classic CPU emitters)
gives the same fit as the call under ``jax.jit`` (the wrapper, the plain program traced
into the caller's), to the bit where the two programs are the same arithmetic."""

import jax
import jax.numpy as jnp
import numpy as np

import nllax
from nllax import _fit

_LIK = nllax.Likelihood(nllax.poisson, lambda beta, X: {"log_rate": X @ beta})


def _poisson(n=40, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.standard_normal((n, p - 1))]
    y = rng.poisson(np.exp(X @ rng.normal(0, 0.3, p))).astype(float)
    return jnp.asarray(y), jnp.asarray(X)


def _newton_optimum(y, X, steps=40):
    """The float64 optimum by undamped Newton in NumPy (Poisson, log link, from 0)."""
    y, X = np.asarray(y, np.float64), np.asarray(X, np.float64)
    b = np.zeros(X.shape[1])
    for _ in range(steps):
        mu = np.exp(X @ b)
        b = b + np.linalg.solve(X.T @ (mu[:, None] * X), X.T @ (y - mu))
    return b


def test_outside_and_under_jit_agree():
    with jax.enable_x64(True):
        y, X = _poisson()
        b0 = jnp.zeros(3)
        eager = nllax.fit(_LIK, b0, y, X)
        jitted = jax.jit(lambda y, X: nllax.fit(_LIK, b0, y, X))(y, X)
        assert int(eager.status) == int(jitted.status) == nllax.FitStatus.CONVERGED
        assert int(eager.steps) == int(jitted.steps)
        # same iteration; the two programs may round exp/log differently (other emitters),
        # so allow a few ulps of the estimate (|beta| ~ 1: 1e-14 is ~50 eps)
        np.testing.assert_allclose(eager.params, jitted.params, rtol=0, atol=1e-14)
        # agreement with the float64 optimum (tol^2 ~ 1e-21 after the final Newton step:
        # the rounding of the estimate, a few eps times its conditioning, decides)
        np.testing.assert_allclose(eager.params, _newton_optimum(y, X), rtol=0, atol=1e-12)


def test_controls_are_host_scalars_and_a_traced_tol_is_kept():
    with jax.enable_x64(True):
        y, X = _poisson()
        cfg, p0, options, controls, budget, token = _fit._setup(_LIK, jnp.zeros(3), (y, X))
        assert all(isinstance(c, np.ndarray) for c in controls)
        assert controls.tol.dtype == np.float64 and controls.max_steps.dtype == np.int32

        def with_tol(tol):
            return nllax.fit(_LIK, jnp.zeros(3), y, X, tol=tol).params

        np.testing.assert_allclose(jax.jit(with_tol)(1e-10), nllax.fit(_LIK, jnp.zeros(3), y, X,
                                   tol=1e-10).params, rtol=0, atol=1e-14)


def test_budget_zero_and_nonfinite_start_keep_their_status():
    with jax.enable_x64(True):
        y, X = _poisson()
        r = nllax.fit(_LIK, jnp.zeros(3), y, X, max_steps=0)
        assert int(r.status) == nllax.FitStatus.MAX_STEPS and int(r.steps) == 0
        r = nllax.fit(_LIK, jnp.array([jnp.nan, 0.0, 0.0]), y, X)
        assert int(r.status) == nllax.FitStatus.NONFINITE and int(r.steps) == 0
        assert np.isnan(np.asarray(r.params)[0])


def test_compiler_options_only_where_known():
    opts = _fit._compiler_options()
    if jax.default_backend() == "cpu":
        assert opts in (None, _fit._XLA_OPTIONS)  # None: an XLA without the option
    else:
        assert opts is None
