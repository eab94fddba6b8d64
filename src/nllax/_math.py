"""Small numerical building blocks shared by the families (stable forms, safe derivatives)."""

from __future__ import annotations

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
