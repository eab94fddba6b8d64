"""Loader's ``bd0(k, lam) = k log(k / lam) + lam - k`` (src/nllax/_math.py) against a
40-digit reference, in float32 and float64, on a grid that crosses both of its switches:
the series / direct switch at ``|k - lam| = 0.1 (k + lam)`` and the one-rounding
``log(k / lam)`` / two-rounding ``log k - log lam`` switch at ``k / lam = 2^+-s``
(s = 100 in float32, 900 in float64), which is decided from k and lam, not from the
quotient."""

from __future__ import annotations

import decimal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nllax import _math as M

_CTX = decimal.Context(prec=40)


def _ref(k: float, lam: float) -> float:
    dk, dl = decimal.Decimal(k), decimal.Decimal(lam)
    if k == 0:
        return float(dl)
    return float(_CTX.add(_CTX.multiply(dk, _CTX.ln(_CTX.divide(dk, dl))), dl - dk))


def _points(dtype):
    s = 100 if dtype == np.float32 else 900
    tiny = float(np.finfo(dtype).tiny)
    big = float(np.finfo(dtype).max)
    ks = [0.0, 1.0, 3.0, 17.0, 1e3, 1e6, 0.5, 1e-20, 1e20]
    rel = [1.0, 1 + 1e-6, 1 - 1e-3, 1.05, 0.95, 1.0999, 0.9, 1.23, 0.8, 10.0, 0.1, 1e10, 1e-10]
    pts = []
    for k in ks:
        kk = k if k > 0 else 1.0
        lams = [kk * r for r in rel]
        # the log switch: k / lam = 2^+-s, on both sides
        lams += [kk * 2.0 ** e for e in (s - 1, s + 1, -(s - 1), -(s + 1))]
        lams += [tiny * 4, 1e-30, big / 4]
        for lam in lams:
            if 2 * tiny < lam < big / 2:
                pts.append((float(dtype(k)), float(dtype(lam))))
    return pts


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_bd0_against_40_digits_across_both_switches(x64, name):
    dtype = np.dtype(name).type
    eps = float(np.finfo(dtype).eps)
    pts = _points(dtype)
    k = np.array([p[0] for p in pts], dtype)
    lam = np.array([p[1] for p in pts], dtype)
    log_lam = np.log(lam.astype(np.float64)).astype(dtype)  # correctly rounded to dtype
    got = np.asarray(jax.jit(M.bd0)(jnp.asarray(k), jnp.asarray(lam), jnp.asarray(log_lam)),
                     np.float64)
    for (kf, lf), g, ll in zip(pts, got, log_lam.astype(np.float64)):
        want = _ref(kf, lf)
        v = abs(kf - lf) / (kf + lf)
        if v < 0.09:
            # series: every term but a <= 1 % correction of one sign, d = k - lam exact
            # (Sterbenz), about 8 roundings: 16 eps relative to bd0 itself
            bound = 16 * eps * want
        else:
            # direct: the sum of k log(k / lam), lam and -k, each with a few roundings, and
            # log(k / lam) within 1.4 eps (relative) in the two-rounding branch, plus the
            # rounding of the given log(lam): 8 eps of the terms' sizes
            lk = abs(np.log(kf)) if kf > 0 else 0.0
            bound = 8 * eps * (kf * (lk + abs(ll)) + lf + kf)
        assert np.isfinite(g) and abs(g - want) <= bound, (kf, lf, g, want, bound)


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_bd0_gradient_is_right_on_both_sides_of_the_series_switch(x64, name):
    # d bd0 / d lam = 1 - k / lam, through whichever branch is taken (autodiff: the
    # families that need it at extreme ratios give their own derivatives; that of
    # log(k / lam) overflows in lam^2 beyond the normal range, as it did before)
    dtype = np.dtype(name).type
    eps = float(np.finfo(dtype).eps)
    k = dtype(3.0)
    for lam in [3.0 * 1.0999, 3.0 * 1.1001, 3.0 / 1.0999, 3.0 / 1.1001, 3.0 * 2.0 ** 20,
                3.0 * 2.0 ** -20]:
        lam = dtype(lam)
        g = float(jax.grad(lambda t: M.bd0(jnp.asarray(k), t, jnp.log(t)))(jnp.asarray(lam)))
        want = 1.0 - float(k) / float(lam)
        # a few roundings of terms of size 1 and k / lam
        assert abs(g - want) <= 16 * eps * (1.0 + float(k) / float(lam)), (lam, g, want)
