"""The same θ̂ on every device and on data sharded over a "data" mesh axis.

Uses the cases of ``tests/test_same_theta.py`` (every row of ``nllax.equivalences``, n = 240).

* **Every device** in ``jax.devices()`` (4 simulated CPU devices here, see conftest.py; the
  GPU/TPU devices on an accelerator machine, automatically): data placed there with
  ``jax.device_put``; every row's NLL and loss values, gradients and gradient ratio agree
  with the unplaced run, results stay on that device, and ``nllax.fit`` of the NLL and of
  the loss reach the same θ̂ as on the first device.
* **Sharded**: X and y split over 4 devices of one platform with
  ``NamedSharding(mesh, PartitionSpec("data"))``, parameters replicated; every row's values,
  gradients and gradient ratio agree with the unsharded run, ``jax.jit`` with
  ``in_shardings`` / ``out_shardings`` works on every NLL, and the fits reach the same θ̂.

Which fits run: every row's NLL and loss on the first device of each platform (the first
device's fits are the ones test_same_theta.py already compiled), the Gaussian NLL on every
other device (compared with the first device's estimate, equal to the SSE's), the
Gaussian NLL/SSE pair on the mesh. Each device and each sharding compiles its own fit loop (~1-3 s of
CPU per objective); the fit loop does not depend on the row, and every row's objective is
checked on every device and sharded through its values and gradients. Set
``NLLAX_ALL_DEVICE_FITS=1`` to fit every row everywhere.

Tolerances (float64, derived in tests/_tolerances.py): values and gradients to twice the
rounding bound of their n-term sums (any summation order); θ̂ to the reference's Newton
step plus twice the rounding floor for the smooth rows, 1e-3 of the L1 optimum for the
Laplace rows (non-smooth, fit's stated target, as in test_same_theta.py).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import test_same_theta as S
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import _tolerances as tt
import nllax

DEVICES = jax.devices()
_FIRST_OF_PLATFORM = {d.platform: d for d in reversed(DEVICES)}  # first device per platform
ALL_FITS = os.environ.get("NLLAX_ALL_DEVICE_FITS", "") not in ("", "0")


def _device_fit_params():
    """(device, row, objectives): every row's NLL and loss on the first device of each
    platform; the Gaussian NLL on the others (compared with the first device's NLL and
    SSE estimates, which the first case shows equal)."""
    out = []
    for d in DEVICES:
        first = _FIRST_OF_PLATFORM[d.platform] == d
        names, which = (S.NAMES, "nll+loss") if (ALL_FITS or first) else (["sse"], "nll")
        out += [pytest.param(d, n, which, id=f"{d.platform}:{d.id}-{n}-{which}") for n in names]
    return out


def _sharded_fit_names():
    return S.NAMES if ALL_FITS else ["sse"]


def _mesh_params():
    """One 4-device mesh per platform present (the default backend, and the CPU)."""
    out = []
    for platform in dict.fromkeys([DEVICES[0].platform, "cpu"]):
        try:
            devs = jax.devices(platform)
        except RuntimeError:
            continue
        mark = () if len(devs) >= 4 else pytest.mark.skip(
            reason=f"sharding needs 4 {platform} devices, found {len(devs)}; on CPU set "
                   f"NLLAX_TEST_DEVICES=4 (tests/conftest.py)")
        out.append(pytest.param(platform, id=platform, marks=mark))
    return out


def _put(tree, device):
    """NumPy to JAX arrays committed to ``device`` (as S.jnp_tree does for the first)."""
    return jax.device_put(jax.tree_util.tree_map(jnp.asarray, tree), device)


def _data(c: S.Case):
    return jnp.asarray(c.X), jnp.asarray(c.y)


def _probes():
    return {name: S.jnp_tree(c.probe) for name, c in S.CASES.items()}


def _all_values_and_grads(probes, data):
    """Every row at its probe point: NLL and loss values and gradients."""
    out = {}
    for name, c in S.CASES.items():
        X, y = data[name]
        vf, gf = jax.value_and_grad(c.nll)(probes[name], X, y)
        vg, gg = jax.value_and_grad(c.loss)(probes[name], X, y)
        out[name] = {"nll": vf, "loss": vg, "grad_nll": gf, "grad_loss": gg}
    return out


_all_values_and_grads_jit = jax.jit(_all_values_and_grads)


@functools.cache
def _reference_values():
    """The unplaced run (default device, uncommitted arrays), as NumPy; call under x64."""
    data = {name: _data(c) for name, c in S.CASES.items()}
    return jax.tree_util.tree_map(np.asarray, _all_values_and_grads_jit(_probes(), data))


@functools.cache
def _reference_theta(name: str) -> np.ndarray:
    """θ̂ of the default fit of the NLL on the first device (as in test_same_theta.py,
    whose compiled loop this reuses); call under x64."""
    c = S.CASES[name]
    return S.flat(nllax.fit(c.nll, *S.jnp_tree((c.params0, c.X, c.y))).params)


@functools.cache
def _rounding(name: str):
    """Bounds on the rounding of each value and gradient at the probe (sums of n
    per-observation terms, tt.sum_rounding: any order, any device), and the gradient
    ratio's relative rounding; call under x64."""
    c = S.CASES[name]
    X, y, probe = S.jnp_tree((c.X, c.y, c.probe))
    out = {}
    for key, fn in (("nll", c.nll), ("loss", c.loss)):
        vals, grads = tt.row_terms(fn, probe, X, y)
        out[key], out["grad_" + key] = tt.sum_rounding(vals), tt.sum_rounding(grads)
    out["ratio"] = (tt.relative_gradient_rounding(c.nll, probe, X, y)
                    + tt.relative_gradient_rounding(c.loss, probe, X, y))
    return out


def _assert_rounding_close(got, want, name, key):
    """Both within the rounding bound of the exact value: twice the bound apart."""
    diff = np.abs(np.asarray(S.flat(got), np.float64) - np.asarray(S.flat(want), np.float64))
    bound = 2 * np.asarray(_rounding(name)[key], np.float64).reshape(-1)
    assert np.all(diff <= bound), (name, key, diff, bound)


def _assert_same_values(got, name):
    ref = _reference_values()[name]
    bounds = _rounding(name)
    for key in ("nll", "loss", "grad_nll", "grad_loss"):
        _assert_rounding_close(got[key], ref[key], name, key)
    # The least-squares ratio of the gradients computed there is the table's a.
    u, v = S.flat(got["grad_nll"]), S.flat(got["grad_loss"])
    assert u @ v / (v @ v) == pytest.approx(float(S.CASES[name].scale()), rel=bounds["ratio"]), name


@functools.cache
def _theta_tol(name: str) -> float:
    """A fit on any device reaches the optimum to its rounding floor (test_same_theta
    certifies this with a Newton step); the reference is within its Newton step + floor
    (tt.fit_distance): so q + 2 floor apart at most. Call under x64."""
    c = S.CASES[name]
    X, y, p0 = S.jnp_tree((c.X, c.y, c.params0))
    ref = nllax.fit(c.nll, p0, X, y)
    q, floor = tt.fit_distance(c.nll, ref.params, X, y)
    return q + 2 * floor


def _assert_same_theta(name, theta_nll, theta_loss):
    if name in ("sae", "mae"):
        ref = S.l1_regression(S.CASES[name].X, S.CASES[name].y)
        ref = np.r_[ref[-1], ref[:-1]]
        for th in (theta_nll, theta_loss):
            np.testing.assert_allclose(th, ref, rtol=0, atol=S.LAPLACE_TOL)
    else:
        for th in (theta_nll, theta_loss):
            np.testing.assert_allclose(th, _reference_theta(name), rtol=0, atol=_theta_tol(name))


# --- every device -----------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES, ids=lambda d: f"{d.platform}:{d.id}")
def test_values_and_gradients_on_device(x64, device):
    put = functools.partial(_put, device=device)
    data = {name: put((c.X, c.y)) for name, c in S.CASES.items()}
    got = _all_values_and_grads_jit(put({n: c.probe for n, c in S.CASES.items()}), data)
    for leaf in jax.tree_util.tree_leaves(got):
        assert leaf.devices() == {device}
    for name in S.NAMES:
        _assert_same_values(got[name], name)


@pytest.mark.parametrize("device, name, which", _device_fit_params())
def test_same_theta_on_device(x64, device, name, which):
    c = S.CASES[name]
    X, y, p0 = _put((c.X, c.y, c.params0), device)
    rf = nllax.fit(c.nll, p0, X, y)
    rg = nllax.fit(c.loss, p0, X, y) if which == "nll+loss" else rf
    for r in (rf, rg):
        assert all(leaf.devices() == {device} for leaf in jax.tree_util.tree_leaves(r.params))
        if name not in ("sae", "mae"):
            assert bool(r.converged), r.message
    _assert_same_theta(name, S.flat(rf.params), S.flat(rg.params))


# --- sharded over a "data" mesh axis ---------------------------------------------------


@functools.cache
def _mesh(platform: str) -> Mesh:
    return Mesh(np.array(jax.devices(platform)[:4]), ("data",))


def _shard(mesh, c: S.Case):
    """Observations split over the mesh's "data" axis (rows of X, entries of y)."""
    X, y = _data(c)
    return (jax.device_put(X, NamedSharding(mesh, P("data", None))),
            jax.device_put(y, NamedSharding(mesh, P("data"))))


def _replicate(mesh, tree):
    return jax.device_put(tree, NamedSharding(mesh, P()))


@pytest.mark.parametrize("platform", _mesh_params())
def test_sharded_values_and_gradients(x64, platform):
    mesh = _mesh(platform)
    data = {name: _shard(mesh, c) for name, c in S.CASES.items()}
    assert len(data["sse"][0].sharding.device_set) == 4
    assert data["sse"][0].addressable_shards[0].data.shape == (S.N // 4, S.D)
    got = _all_values_and_grads_jit(_replicate(mesh, _probes()), data)
    for name in S.NAMES:
        _assert_same_values(got[name], name)


@pytest.mark.parametrize("name", _sharded_fit_names())
@pytest.mark.parametrize("platform", _mesh_params())
def test_sharded_same_theta(x64, platform, name):
    mesh = _mesh(platform)
    c = S.CASES[name]
    X, y = _shard(mesh, c)
    p0 = _replicate(mesh, S.jnp_tree(c.params0))
    rf = nllax.fit(c.nll, p0, X, y)
    rg = nllax.fit(c.loss, p0, X, y)
    for r in (rf, rg):
        assert r.params[next(iter(r.params))].sharding.device_set == set(mesh.devices.flat)
        if name not in ("sae", "mae"):
            assert bool(r.converged), r.message
    _assert_same_theta(name, S.flat(rf.params), S.flat(rg.params))


@pytest.mark.parametrize("platform", _mesh_params())
def test_jit_with_in_and_out_shardings(x64, platform):
    mesh = _mesh(platform)
    rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    X_rows = NamedSharding(mesh, P("data", None))
    for name in S.NAMES:
        c = S.CASES[name]
        X, y = _data(c)
        probe = jax.tree_util.tree_map(jnp.asarray, c.probe)  # uncommitted: jit places it
        # The summed NLL and its gradient: data in split by rows, scalar and grads out replicated.
        f = jax.jit(jax.value_and_grad(c.nll), in_shardings=(replicated, X_rows, rows),
                    out_shardings=replicated)
        value, grad = f(probe, X, y)
        assert value.sharding.is_equivalent_to(replicated, 0)
        _assert_rounding_close(float(value), _reference_values()[name]["nll"], name, "nll")
        _assert_rounding_close(grad, _reference_values()[name]["grad_nll"], name, "grad_nll")
        # Per-observation NLL (reduction="none") stays split by rows.
        pred = c.predict(probe, X)
        pred_rows = NamedSharding(mesh, P("data", *([None] * (pred.ndim - 1))))
        per_obs = jax.jit(functools.partial(_per_observation, name=name, noise=c.noise),
                          in_shardings=(rows, pred_rows), out_shardings=rows)(y, pred)
        assert per_obs.sharding.is_equivalent_to(rows, 1)
        _assert_rounding_close(float(jnp.sum(per_obs)), _reference_values()[name]["nll"], name, "nll")


def _per_observation(y, pred, *, name, noise):
    """The row's NLL per observation (reduction="none")."""
    family = {"sse": nllax.gaussian, "mse": nllax.gaussian, "sae": nllax.laplace,
              "mae": nllax.laplace}
    if name in family:
        return family[name].nll(y, pred, noise["scale"], reduction="none")
    if name == "binary_cross_entropy":
        return nllax.bernoulli.nll(y, logits=pred, reduction="none")
    if name == "cross_entropy":
        return nllax.categorical.nll(y, logits=pred, reduction="none")
    if name == "msle":  # the log-normal of 1 + y at log1p(pred) (the row's NLL)
        return nllax.log_normal.nll(1.0 + y, jnp.log1p(pred), noise["scale"], reduction="none")
    assert name == "poisson", name
    return nllax.poisson.nll(y, log_rate=pred, reduction="none")


def _masked_values_and_grads(probes, data):
    """Every row's NLL and loss, with ``where=mask``, and their gradients."""
    out = {}
    for name, c in S.CASES.items():
        X, y, mask = data[name]

        def nll(p, X, y, mask, c=c):
            return c.eq.nll(y, c.predict(p, X), where=mask, **c.noise)

        def loss(p, X, y, mask, c=c):
            return c.eq.loss(y, c.predict(p, X), where=mask)

        out[name] = {}
        out[name]["nll"], out[name]["grad_nll"] = jax.value_and_grad(nll)(probes[name], X, y, mask)
        out[name]["loss"], out[name]["grad_loss"] = jax.value_and_grad(loss)(probes[name], X, y, mask)
    return out


@pytest.mark.parametrize("platform", _mesh_params())
def test_padding_with_where_shards_any_n(x64, platform):
    # n = 238 does not split over 4 devices: pad to 240 with zeros, mask the padding out.
    # The masked NLL, loss and gradients on the sharded padded data equal the unpadded ones.
    mesh = _mesh(platform)
    keep, pad = S.N - 2, 2
    data, ref = {}, {}
    for name, c in S.CASES.items():
        X, y = c.X[:keep], c.y[:keep]
        Xp = np.concatenate([X, np.zeros((pad, S.D))])
        yp = np.concatenate([y, np.zeros(pad, y.dtype)])
        mask = np.arange(S.N) < keep
        data[name] = (jax.device_put(jnp.asarray(Xp), NamedSharding(mesh, P("data", None))),
                      jax.device_put(jnp.asarray(yp), NamedSharding(mesh, P("data"))),
                      jax.device_put(jnp.asarray(mask), NamedSharding(mesh, P("data"))))
        ref[name] = (jnp.asarray(X), jnp.asarray(y), jnp.ones(keep, bool))
    probes = {name: jax.tree_util.tree_map(jnp.asarray, c.probe) for name, c in S.CASES.items()}
    got = jax.jit(_masked_values_and_grads)(_replicate(mesh, probes), data)
    want = jax.jit(_masked_values_and_grads)(probes, ref)
    for name in S.NAMES:
        for key in ("nll", "loss", "grad_nll", "grad_loss"):
            # a subset of the rows: the full data's bound is an upper bound on its rounding
            _assert_rounding_close(got[name][key], want[name][key], name, key)
