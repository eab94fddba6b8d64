"""Small numerical building blocks shared by the families (stable forms, safe derivatives)."""

from __future__ import annotations

import decimal
import math

import jax
import jax.numpy as jnp


@jax.custom_jvp
def abs_(x: jax.Array) -> jax.Array:
    """``|x|`` whose derivative is ``sign(x)``: the subgradient 0 at ``x = 0`` (so the
    median of the data is a stationary point of the absolute error), NaN at NaN
    (``jnp.abs``' derivative is -1 there, a finite gradient for a NaN observation) and at
    +-inf."""
    return jnp.abs(x)


@abs_.defjvp
def _abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), dx * (jnp.sign(x) + (x - x))


def xmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a * b`` with ``0 * b = 0`` for every ``b``, ``inf`` included (an impossible
    outcome that was not observed)."""
    return jnp.where(a == 0, jnp.zeros((), b.dtype), a * b)


def log_ndtr(z: jax.Array) -> jax.Array:
    """``log Phi(z)`` accurate in both tails: ``jax.scipy.special.log_ndtr`` below -1
    (its asymptotic series covers the lower tail), ``log1p(-Phi(-z))`` above, where
    ``log(Phi(z))`` of a value near 1 would keep only ``eps / (1 - Phi)`` of the digits
    (measured: relative error 3e-4 at z = 7.6 in float64). The series is taken to 10
    terms: JAX's default of 3 leaves an absolute error up to ``105 / z^8`` below its
    switch at z = -20 (float64; 2e-11 relative at z = -20, 4e-7 relative in the second
    derivative at z = -25), 10 terms leave ``(2 * 10 + 1)!! / z^22 < 1e-17``."""
    upper = jnp.log1p(-0.5 * jax.lax.erfc(jnp.maximum(z, -1.0) * (1.0 / 1.4142135623730951)))
    lower = jax.scipy.special.log_ndtr(jnp.minimum(z, -1.0), series_order=10)
    return jnp.where(z > -1.0, upper, lower)


_LN2 = 0.6931471805599453


def log1mexp(x: jax.Array) -> jax.Array:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate everywhere (Maechler, 2012):
    ``log(-expm1(x))`` for ``x > -log 2``, where ``1 - exp(x)`` is small and ``expm1``
    keeps its digits, ``log1p(-exp(x))`` below, where ``exp(x)`` is small. Each branch
    sees a harmless input where it is not taken, so neither leaks a NaN into the gradient.
    ``x = 0`` gives ``-inf``; ``x > 0`` gives NaN."""
    near = x > -_LN2
    a = jnp.where(near, x, -1.0)
    b = jnp.where(near, -1.0, x)
    return jnp.where(near, jnp.log(-jnp.expm1(a)), jnp.log1p(-jnp.exp(b)))


# ----------------------------------------------------------------------------------------
# Loader's saddle-point form of the count densities (moved here from poisson.py: shared
# by the Poisson, binomial and negative binomial families)

def _stirlerr_table(kmax: int = 15) -> tuple[float, ...]:
    """stirlerr(k) for k = 0..kmax, computed in 40-digit decimal arithmetic so that the
    cancellation in its definition costs nothing (entry 0 is unused)."""
    ctx = decimal.Context(prec=40)
    half_log_2pi = ctx.divide(ctx.ln(ctx.multiply(2, decimal.Decimal(
        "3.141592653589793238462643383279502884197"))), 2)
    out = [0.0]
    for k in range(1, kmax + 1):
        dk = decimal.Decimal(k)
        v = ctx.ln(decimal.Decimal(math.factorial(k))) - (dk + decimal.Decimal("0.5")) * ctx.ln(dk)
        out.append(float(v + dk - half_log_2pi))
    return tuple(out)


_STIRLERR = _stirlerr_table()
# Asymptotic series of stirlerr: 1/12, 1/360, 1/1260, 1/1680, 1/1188 (Bernoulli numbers).
_S = (1.0 / 12.0, 1.0 / 360.0, 1.0 / 1260.0, 1.0 / 1680.0, 1.0 / 1188.0)


def stirlerr(k: jax.Array) -> jax.Array:
    """``log k! - (k + 1/2) log k + k - log(2 pi) / 2`` for integer-valued ``k >= 1``
    (float): an exact table (40-digit decimal) for ``k <= 15``, the asymptotic series
    (5 terms, error below 1e-17 relative from k = 16) above. The Stirling remainder of
    Loader's saddle-point form (Poisson, binomial, negative binomial)."""
    small = k <= 15
    table = jnp.asarray(_STIRLERR, k.dtype)[jnp.clip(k, 0, 15).astype(jnp.int32)]
    n = jnp.where(small, jnp.full((), 16.0, k.dtype), k)
    nn = n * n
    series = (_S[0] - (_S[1] - (_S[2] - (_S[3] - _S[4] / nn) / nn) / nn) / nn) / n
    return jnp.where(small, table, series)


def bd0(k: jax.Array, lam: jax.Array, log_lam: jax.Array, times: float = 1.0) -> jax.Array:
    """``k log(k / lam) + lam - k >= 0`` (the deviance term of Loader's form) without
    cancellation: the series ``(k - lam) v + 2 k sum_j v^(2j+1) / (2j+1)``,
    ``v = (k - lam) / (k + lam)``, when ``|v| < 0.1``; directly otherwise. ``log_lam`` is
    ``log(lam)``, passed so that a caller holding it exactly (a log-rate) loses nothing
    when ``lam`` under- or overflows. ``times`` (a Python number, e.g. 2 for a deviance)
    multiplies both branches before the final select: XLA:CPU's reduction fusion stops at
    that select, so the whole term stays one elementwise loop (``2 * bd0(...)`` left the
    multiply to the reduction, with an n-sized buffer of the constant 2)."""
    d = k - lam
    total = k + lam
    v = d / jnp.where(total > 0, total, jnp.ones((), k.dtype))
    near = jnp.abs(v) < 0.1
    vs = jnp.where(near, v, jnp.zeros((), v.dtype))
    v2 = vs * vs
    # 2 * sum_{j>=1} v^(2j+1)/(2j+1), to v^19: the next term is < 1e-18 of the first.
    poly = jnp.zeros((), v.dtype)
    for j in range(9, 0, -1):
        poly = poly * v2 + 1.0 / (2 * j + 1)
    series = d * vs + 2.0 * k * vs * v2 * poly
    one = jnp.ones((), k.dtype)
    k_pos = jnp.where(k > 0, k, one)
    # log(k / lam) with one rounding where the ratio is surely a normal number, within
    # 2^+-s of 1 (s = 100 in float32, 900 in float64: inside the normal range); log k -
    # log lam (two roundings, no overflow; there |log(k / lam)| >= s log 2, so the error
    # relative to it is at most 1.4 eps) elsewhere. The switch is decided from k and lam,
    # not from the quotient: XLA:CPU does not fuse a divide into a consumer that reads it
    # more than once, and wrote k / lam out as an n-sized buffer when the compares took it
    # too (poisson.nll 9 -> 7 passes, losses.poisson_deviance 8 -> 7). Where a product
    # with 2^-s underflows the test is looser, and the ratio still normal: k < 2^(s - 126)
    # (float32) gives k / lam < 2^s for every normal lam, and symmetrically.
    scale = 2.0 ** (-100 if jnp.dtype(k.dtype).itemsize <= 4 else -900)
    inside = (lam > 0) & (lam * scale < k_pos) & (k_pos * scale < lam)
    tiny = jnp.finfo(k.dtype).tiny
    log_ratio = jnp.where(
        inside, jnp.log(jnp.maximum(k_pos / jnp.where(inside, lam, one), tiny)),
        jnp.log(k_pos) - log_lam)
    direct = jnp.where(k > 0, k * log_ratio, 0.0) + lam - k
    if times != 1.0:
        series, direct = times * series, times * direct
    return jnp.where(near, series, direct)


def stirlerr_real(x: jax.Array) -> jax.Array:
    """:func:`stirlerr` for any real ``x > 0`` (the size of a negative binomial): the exact
    table at integers up to 15, the series from 16, and below 16 at non-integers
    ``lgamma(x + 1) - (x + 1/2) log x + x - log(2 pi) / 2`` directly (terms below 30 in
    size there: an absolute error of ~30 eps, no worse than the terms the families add)."""
    small = x < 16
    integer = small & (x == jnp.floor(x)) & (x >= 1)
    xs = jnp.where(small & ~integer & (x > 0), x, jnp.ones((), x.dtype))
    direct = (jax.lax.lgamma(xs + 1.0) - (xs + 0.5) * jnp.log(xs) + xs
              - 0.5 * math.log(2.0 * math.pi))
    return jnp.where(integer | ~small, stirlerr(jnp.where(small & ~integer,
                                                          jnp.full((), 16.0, x.dtype), x)),
                     direct)
