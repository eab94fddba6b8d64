"""Every registered family's gradients (and, for smooth families, Hessians) against
central finite differences in float64, in every parametrisation (differentiated through
the member's ``from_canonical``, so that finite steps stay in the support), forward and
reverse mode, through ``nll`` (the sum) and ``log_prob`` (per observation)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.test_util import check_grads

import _harness as H
from cases import all_parametrisations, pid

PARAMS = all_parametrisations()


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_gradients_match_finite_differences(x64, cp):
    case, choice = cp
    data, params, _ = H.inputs(case, choice, n=6)
    names = H.float_args(case, params)
    d = H.to_jax(data)
    values = [H.to_jax(params[k]) for k in names]
    order = 2 if case.family.smooth else 1
    for kind in ("nll", "log_prob"):
        f = jax.jit(H.canonical_grad_fn(case, d, choice, {k: H.to_jax(v) for k, v in
                                                           params.items()}, names, kind))
        # check_grads' float64 tolerances (1e-5 relative) bound the central-difference
        # error at its default step: truncation O(step^2 f''') and rounding O(eps / step).
        check_grads(f, values, order=order, modes=("fwd", "rev"), eps=1e-5)


@pytest.mark.parametrize("cp", PARAMS, ids=[pid(x) for x in PARAMS])
def test_hessian_is_finite_and_symmetric(x64, cp):
    # Standard errors come from Hessians: they must exist wherever the value does.
    case, choice = cp
    if not case.family.smooth:
        pytest.skip(f"{case.name} is not twice differentiable (its Hessian is 0 a.e.)")
    data, params, _ = H.inputs(case, choice, n=4)
    names = H.float_args(case, params)
    f = H.canonical_grad_fn(case, H.to_jax(data), choice,
                            {k: H.to_jax(v) for k, v in params.items()}, names)
    values = tuple(H.to_jax(params[k]) for k in names)
    hess = jax.jit(jax.hessian(f, argnums=tuple(range(len(names)))))(*values)
    flat = np.block([[np.asarray(hess[i][j]).reshape(values[i].size, values[j].size)
                      for j in range(len(names))] for i in range(len(names))])
    assert np.all(np.isfinite(flat))
    np.testing.assert_allclose(flat, flat.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(flat)))
