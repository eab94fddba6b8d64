"""The Tweedie series window (src/nllax/tweedie.py): the static node count suffices on a
grid of powers and modes, and the windowed sum matches the whole series where the window
is hardest (reaching j = 1 and long: powers near 2 with c j_m ~ D), in float64 and
float32, value and gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammaln

import _refs_glm2 as R
import nllax
from nllax import tweedie as T

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_static_node_count_covers_every_window(x64, dtype):
    # powers from 1.001 to 2 - 1e-7, modes j_m from 1e-3 to 1e5: a window that reaches
    # j = 1 (terms there not negligible) must fit in TERMS consecutive integers, and a
    # trapezoidal window must be smooth on the scale of its step (sigma / step >= 1.5
    # gives an aliasing error 2 exp(-2 pi^2 1.5^2) = 1e-19 relative; sigma >= 1.5 the
    # same for the sum against the integral)
    k = T.TERMS[dtype]
    p = np.concatenate([np.linspace(1.001, 1.999, 60), 2.0 - np.logspace(-7, -3, 9)])
    jm = np.logspace(-3, 5, 400)
    pp, jj = (v.ravel() for v in np.meshgrid(p, jm))
    lo, hi = (np.asarray(v, np.float64) for v in jax.jit(T._bounds, static_argnums=2)(
        jnp.log(jnp.asarray(jj, dtype)), jnp.asarray(pp, dtype), jnp.dtype(dtype)))
    long = hi - lo > k - 2
    assert not np.any(long & (lo <= 1.0)), "a window clipped at j = 1 longer than TERMS"
    sigma = np.sqrt(jj * (pp - 1.0))
    step = (hi - lo) / (k - 1)
    assert np.all(sigma[long] >= 1.5) and np.all(sigma[long] / step[long] >= 1.5)


def _points():
    # the hard windows: p near 2 and c j_m around D (clipped at 1 and long), both sides
    pts = []
    for p in (1.99, 1.99999):
        for jm in (5.0, 20.0, 24.0, 30.0, 45.0, 60.0, 200.0):
            pts.append((1.3, 1.3 ** (2 - p) / (jm * (2 - p)), p))
    for p in (1.001, 1.5):
        for jm in (0.01, 30.0, 3e4):
            pts.append((0.4, 0.4 ** (2 - p) / (jm * (2 - p)), p))
    return map(np.array, zip(*pts))


def _size(y, phi, p):
    a = (2 - p) / (p - 1)
    jm = np.maximum(y ** (2 - p) / (phi * (2 - p)), 1.0)
    z = a * (np.log(y) - np.log(p - 1)) - np.log(phi) / (p - 1) - np.log(2 - p)
    return 1 + jm * np.abs(z) + gammaln(jm + 1) + np.abs(gammaln(jm * a))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hard_windows_match_the_whole_series(x64, dtype):
    y, phi, p = (np.asarray(np.asarray(v, dtype), np.float64) for v in _points())
    want = np.array([R.tweedie_log_series_full(*t) for t in zip(y, phi, p)])
    got = np.asarray(jax.jit(T.log_series)(*(jnp.asarray(v, dtype) for v in (y, phi, p))),
                     np.float64)
    # each term of log W is computed to a few eps of its size (see _size); the windows'
    # truncation is below eps / 10 by construction
    err = np.abs(got - want) / (EPS[dtype] * _size(y, phi, p))
    assert np.all(err <= 32), err


def test_hard_windows_gradient_against_the_whole_series(x64):
    # d log W / d y and d log W / d p (through z and a, the custom_jvp) against central
    # differences of the float64 whole series; h = 1e-6 relative: truncation ~h^2, the
    # reference's rounding ~ eps size / h
    y, phi, p = _points()
    g = jax.jit(jax.vmap(jax.grad(T.log_series, argnums=(0, 2))))(y, phi, p)
    for arg, got in ((0, g[0]), (2, g[1])):
        want = []
        for t in zip(y, phi, p):
            t = list(t)
            h = 1e-6 * (t[arg] if arg == 0 else min(t[2] - 1, 2 - t[2]))
            up, dn = list(t), list(t)
            up[arg] += h
            dn[arg] -= h
            want.append((R.tweedie_log_series_full(*up) - R.tweedie_log_series_full(*dn))
                        / (2 * h))
        want = np.array(want)
        size = _size(y, phi, p)
        scale = np.array([(t[arg] if arg == 0 else min(t[2] - 1, 2 - t[2])) for t in
                          zip(y, phi, p)])
        tol = 1e-6 * np.abs(want) + 16 * EPS["float64"] * size / (1e-6 * scale)
        assert np.all(np.abs(np.asarray(got) - want) <= tol), (arg, got, want)
