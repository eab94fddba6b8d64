"""Test case: the multivariate normal (d = 3 in the harness; the normalisation in d = 2 by
a whitened product trapezoid rule with a stated error bound)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats

import nllax

from . import INF, NAN, FamilyCase

D = 3


def _sample(rng, n):
    low = np.tril(rng.normal(size=(n, D, D)) * 0.5, -1)
    # diagonal >= 0.6: |log det| stays moderate and log p away from 0 (the reference is
    # compared relatively)
    low = low + np.eye(D) * rng.uniform(0.6, 2.5, size=(n, D, 1))
    loc = rng.normal(size=(n, D))
    y = loc + np.einsum("nij,nj->ni", low, rng.normal(size=(n, D)))
    return y, {"loc": loc, "scale_tril": low}


def _reference(y, loc, scale_tril):
    y = np.asarray(y, np.float64)
    lead = y.shape[:-1]
    loc = np.broadcast_to(np.asarray(loc, np.float64), y.shape)
    low = np.tril(np.broadcast_to(np.asarray(scale_tril, np.float64), lead + (D, D)))
    out = np.empty(lead)
    for i in np.ndindex(lead):
        cov = low[i] @ low[i].T
        out[i] = stats.multivariate_normal.logpdf(y[i], loc[i], cov)
    return out


def _magnitude(y, loc, scale_tril):
    """The float32 condition bound per observation (see f32_why)."""
    y = np.asarray(y, np.float64)
    low = np.tril(np.broadcast_to(np.asarray(scale_tril, np.float64), y.shape + (D,)))
    r = y - np.broadcast_to(loc, y.shape)
    inv = np.linalg.inv(low)
    z = np.einsum("nij,nj->ni", inv, r)
    a_inv, a_low = np.abs(inv), np.abs(low)
    az = np.abs(z)
    # triangular solve: (L + dL) z = r, |dL| <= d eps |L|; and r = y - loc, eps |r|
    solve = np.einsum("ni,nij,njk,nk->n", az, a_inv, a_low, az) + np.einsum(
        "ni,nij,nj->n", az, a_inv, np.abs(r))
    # the cov path: Cholesky backward error |dC| <= (d+1) eps |L||L^T|, which moves
    # z^T z / 2 by w^T |L||L^T| w / 2 (w = |L^-T z|) and log det / 2 by
    # sum |C^-1| * |L||L^T| / 2
    w = np.abs(np.einsum("nji,nj->ni", inv, z))
    llt = a_low @ np.swapaxes(a_low, -1, -2)
    cinv = np.swapaxes(inv, -1, -2) @ inv
    chol = 0.5 * np.einsum("ni,nij,nj->n", w, llt, w) + 0.5 * np.sum(np.abs(cinv) * llt,
                                                                      axis=(-2, -1))
    logs = np.sum(np.abs(np.log(np.diagonal(low, axis1=-2, axis2=-1))), -1)
    return solve + chol + 0.5 * np.sum(z**2, -1) + logs + 1.0


# The normalisation: y = loc + L x maps the density to |det L| p(loc + L x), which for a
# correct density is the standard normal density in x. The product trapezoid rule with
# step H on [-R, R]^2 integrates it with (Poisson summation) an aliasing error of
# 2 (2 exp(-2 pi^2 / H^2)) in 2-D and a truncation error below 2 (2 Phi(-R)); a density that
# is not the claimed Gaussian is integrated to within its own smoothness, far from 1.
_H, _R = 0.25, 9.0


def _integrate_2d(density, params):
    loc = np.asarray(params["loc"], np.float64)
    low = np.tril(np.asarray(params["scale_tril"], np.float64))
    x = np.arange(-_R, _R + _H / 2, _H)
    grid = np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2)
    y = loc + grid @ low.T
    with jax.enable_x64(True):
        lp = np.asarray(nllax.multivariate_normal.log_prob(
            jnp.asarray(y), jnp.asarray(loc), scale_tril=jnp.asarray(low)))
    jac = float(np.prod(np.diag(low)))
    total = float(np.sum(np.exp(lp))) * _H**2 * jac
    aliasing = 4 * math.exp(-2 * math.pi**2 / _H**2)
    truncation = 4 * special.ndtr(-_R)
    # each term: exp of a log-density within ~8 eps (|lp| + 1) relative; summation of
    # len(grid) terms: len(grid) eps relative
    eps = float(np.finfo(np.float64).eps)
    rounding = eps * (8 * (np.max(np.abs(lp)) + 1) + len(grid)) * 1.01
    return total, aliasing + truncation + rounding


CASE = FamilyCase(
    module=nllax.multivariate_normal,
    sample=_sample,
    reference=_reference,
    invalid={
        "scale_tril": [np.diag([1.0, -1.0, 1.0]), np.diag([1.0, 0.0, 1.0]),
                       np.diag([1.0, NAN, 1.0]),
                       np.array([[1.0, 0.0, 0.0], [INF, 1.0, 0.0], [0.0, 0.0, 1.0]])],
        "cov": [np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
                np.diag([1.0, 1.0, NAN]), np.zeros((D, D))],
        "y": [NAN],
    },
    support=_integrate_2d,
    normalisation=({"loc": np.array([0.3, -1.0]),
                    "scale_tril": np.array([[1.5, 0.0], [-0.8, 0.3]])},
                   {"loc": np.array([20.0, 5.0]),
                    "scale_tril": np.array([[0.01, 0.0], [3.0, 2.0]])}),
    # scipy factors the covariance by eigh (pseudo-inverse): a relative error of a few
    # eps * cond(C) in z^T C^-1 z; cond(C) <= ~1e2 for the sampler (diagonal of L in
    # [0.6, 2.5], off-diagonal N(0, 0.25)), so 1e-12 leaves a factor ~20
    rtol64=1e-12,
    rtol64_why="scipy's eigh-based pseudo-inverse: a few eps * cond(cov), cond <= ~1e2",
    magnitude=_magnitude,
    f32_ulps=4 * (D + 1),
    f32_why="backward-stable triangular solve (|dL| <= d eps |L|) and Cholesky "
            "(|dC| <= (d+1) eps |L||L^T|) propagated to log p (the magnitude is that "
            "condition bound), plus sums of d squares and d logs",
)
