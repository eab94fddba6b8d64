"""The fit programs' structure (issue 13, bench/FIT_COMPILE.md): the rotated loop traces
each evaluation once per compiled fit, for the exact-Hessian solvers too."""

import jax.numpy as jnp
import numpy as np

import nllax


def _counting(f):
    """``f`` and the list that grows by one at each call of it (each trace: the compiled
    loop calls nothing in Python when it runs)."""
    calls = []

    def g(b, *args):
        calls.append(1)
        return f(b, *args)

    return g, calls


def _half_sse(b, x, y):
    return 0.5 * jnp.sum(jnp.square(y - b[0] * jnp.exp(-b[1] * x)))


def _data():
    x = np.linspace(0.0, 4.0, 20)
    return jnp.asarray(x), jnp.asarray(2.0 * np.exp(-0.7 * x) + 0.01 * np.sin(7.0 * x))


def test_newton_traces_value_and_grad_once(x64):
    # one trace for value_and_grad at the trial point (iteration 0: the start), one for
    # jax.hessian in the lax.cond; the non-rotated loop traced value_and_grad in init too
    f, calls = _counting(_half_sse)
    r = nllax.fit(f, jnp.array([1.0, 0.1]), *_data())
    assert bool(r.converged)
    assert len(calls) == 2


def test_exact_hessian_trust_region_traces_each_once(x64):
    # value_and_grad and the Hessian once each; init evaluated both before (4 traces)
    f, calls = _counting(_half_sse)
    r = nllax.fit(f, jnp.array([1.0, 0.1]), *_data(), solver=nllax.solvers.TrustRegion())
    assert bool(r.converged)
    assert len(calls) == 2


def test_budget_and_start_are_decided_after_iteration_zero(x64):
    # the rotated loop's iteration 0 is not a step: max_steps=0 returns the start
    # unchanged, a non-finite start stops NONFINITE after 0 steps, for both solvers
    x, y = _data()
    for solver in (nllax.solvers.Newton(), nllax.solvers.TrustRegion()):
        r = nllax.fit(_half_sse, jnp.array([1.0, 0.1]), x, y, solver=solver, max_steps=0)
        assert int(r.status) == nllax.FitStatus.MAX_STEPS and int(r.steps) == 0
        np.testing.assert_array_equal(np.asarray(r.params), [1.0, 0.1])
        # the same sum of 20 positive squares, compiled in the loop and op by op here:
        # each a few eps relative per term, no cancellation
        np.testing.assert_allclose(float(r.value), float(_half_sse(jnp.array([1.0, 0.1]), x, y)),
                                   rtol=20 * np.finfo(np.float64).eps)
        r = nllax.fit(_half_sse, jnp.array([jnp.nan, 0.1]), x, y, solver=solver)
        assert int(r.status) == nllax.FitStatus.NONFINITE and int(r.steps) == 0
        r = nllax.fit(_half_sse, jnp.array([1.0, 0.1]), x, y, solver=solver, max_steps=2)
        assert int(r.status) == nllax.FitStatus.MAX_STEPS and int(r.steps) == 2


def test_optax_fit_under_jit_has_no_polish_branch(x64):
    # Only the damped solvers polish (an L-BFGS loop after a zero-curvature Newton point);
    # under jit the branch was traced as a lax.cond for every solver, a second while loop
    # in every jitted optax fit (1634 against 403 StableHLO lines for adam).
    import jax
    import optax

    x, y = _data()

    def loops(solver):
        jaxpr = jax.make_jaxpr(lambda b: nllax.fit(_half_sse, b, x, y, solver=solver,
                                                    max_steps=50).params)(jnp.array([1.0, 0.1]))
        return str(jaxpr).count("while[")

    assert loops(optax.adam(1e-2)) == 1
    assert loops(nllax.solvers.Newton()) > 1  # Newton keeps its polish branch (non-smooth)
