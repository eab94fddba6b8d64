"""The public surface: every name of the DESIGN.md contract exists, with data first."""

from __future__ import annotations

import inspect

import nllax

FAMILIES = ["gaussian", "laplace", "bernoulli", "categorical", "poisson"]
LOSSES = ["sse", "mse", "sae", "mae", "binary_cross_entropy", "cross_entropy", "poisson"]
CONTRACT = FAMILIES + [
    "losses", "equivalences", "Equivalence", "checked", "verify", "fit", "FitResult",
    "FitStatus", "summary", "lr_test",
]


def test_contract_names_exist():
    for name in CONTRACT:
        assert hasattr(nllax, name), name
        assert name in nllax.__all__, name
    for fam in FAMILIES:
        mod = getattr(nllax, fam)
        assert callable(mod.log_prob) and callable(mod.nll)
    for loss in LOSSES:
        assert callable(getattr(nllax.losses, loss))


def test_all_lists_only_existing_names():
    for name in nllax.__all__:
        assert hasattr(nllax, name), name


def test_signatures_follow_the_contract():
    def params(f):
        return inspect.signature(f).parameters

    for fam in ("gaussian", "laplace"):
        p = params(getattr(nllax, fam).log_prob)
        assert list(p)[:3] == ["y", "loc", "scale"] and p["scale"].default == 1.0
        p = params(getattr(nllax, fam).nll)
        assert p["reduction"].default == "sum"
        assert p["reduction"].kind is inspect.Parameter.KEYWORD_ONLY
        assert p["weights"].default is None and p["where"].default is None
    p = params(nllax.bernoulli.log_prob)
    assert list(p) == ["y", "logits", "probs"] and p["logits"].kind is inspect.Parameter.KEYWORD_ONLY
    p = params(nllax.categorical.log_prob)
    assert list(p) == ["labels", "logits", "probs", "axis"] and p["axis"].default == -1
    p = params(nllax.poisson.log_prob)
    assert list(p) == ["counts", "log_rate", "rate"]
    for fam in FAMILIES:
        p = params(getattr(nllax, fam).nll)
        assert {"reduction", "weights", "where"} <= set(p)


def test_every_public_function_has_a_docstring_with_math():
    for fam in FAMILIES:
        mod = getattr(nllax, fam)
        assert "math::" in mod.__doc__, fam
        assert mod.log_prob.__doc__ and mod.nll.__doc__
    for loss in LOSSES:
        assert getattr(nllax.losses, loss).__doc__


def test_fit_verify_and_inference_contract():
    import jax.numpy as jnp

    assert callable(nllax.verify.gradient_ratio) and callable(nllax.verify.assert_proportional)
    p = inspect.signature(nllax.fit).parameters
    assert list(p)[:3] == ["objective", "params0", "args"]
    assert {"optimizer", "max_steps", "tol"} <= set(p)
    r = nllax.fit(lambda t, y: nllax.gaussian.nll(y, t), jnp.float32(0.0), jnp.arange(4.0))
    for field in ("params", "value", "steps", "converged"):
        assert hasattr(r, field), field
    p = inspect.signature(nllax.summary).parameters
    assert list(p)[:3] == ["log_lik", "params_hat", "args"] and p["covariance"].default == "observed"
    assert list(inspect.signature(nllax.lr_test).parameters)[:3] == [
        "loglik_restricted", "loglik_full", "df"]
