r"""Tweedie likelihood for :math:`1 < p < 2` (compound Poisson-gamma), GLM
parametrisation: mean :math:`\mu`, dispersion :math:`\phi`, power :math:`p`
(:math:`\mathrm{Var}[y] = \phi\mu^p`).

:math:`y = \sum_{i=1}^N G_i` with :math:`N \sim \mathrm{Poisson}(\lambda)`,
:math:`\lambda = \mu^{2-p}/(\phi(2-p))`, and :math:`G_i` gamma with shape
:math:`a = (2-p)/(p-1)` and scale :math:`\phi(p-1)\mu^{p-1}`. So
:math:`P(y = 0) = e^{-\lambda}` (a point mass) and for :math:`y > 0` (Dunn and Smyth, 2005)

.. math::

    \log p(y) = -\log y + \log W(y, \phi, p)
        + \frac1\phi\Bigl(\frac{y\mu^{1-p}}{1-p} - \frac{\mu^{2-p}}{2-p}\Bigr),
    \qquad W = \sum_{j\ge1} W_j,

    \log W_j = j\Bigl(a\log\frac{y}{p-1} - \frac{\log\phi}{p-1} - \log(2-p)\Bigr)
        - \log j! - \log\Gamma(ja).

The density is with respect to the counting measure at 0 plus Lebesgue measure on
:math:`y > 0`: the point mass plus the integral over :math:`y > 0` is 1.

**Parameters**: exactly one of ``log_mean`` (:math:`\log\mu`, the usual log link) or
``mean`` (:math:`\mu > 0`); ``dispersion`` :math:`\phi > 0` and ``power``
:math:`p \in (1, 2)` (keyword-only, required; scalars or per observation). ``y < 0``,
a NaN, ``mean <= 0``, ``dispersion <= 0`` or a power outside (1, 2) give NaN (value and
gradient) and a named error under :func:`nllax.checked`.

**The series, with static shapes.** With :math:`c = 1/(p-1)` the log-terms are
concave in :math:`j`, maximal near :math:`j_m = y^{2-p}/(\phi(2-p))`, and (Stirling: the
:math:`\tfrac12\log j` terms of :math:`\log j!` and :math:`\log\Gamma(ja)` cancel) fall off
from there as :math:`c\,j_m\,h(j/j_m)`, :math:`h(x) = x\log x - x + 1`, a width
:math:`\sigma \approx \sqrt{(p-1)\,j_m}`. The **window** is where that fall-off is at most
:math:`D` = 20 (float32) or 40 (float64), i.e. every neglected term is below
:math:`e^{-18}` resp. :math:`e^{-38}` (about eps/10) of the largest, with 2 to spare for
the Stirling-level model: :math:`h(x) = D/(c j_m)` is solved on both sides by three
Newton steps from above (convex: the window only grows), and clipped at :math:`j = 1`.
Every observation then evaluates exactly :data:`TERMS` = 64 (float32) or 120 (float64)
nodes:

* the consecutive integers from :math:`\lfloor j_{lo}\rfloor` where that many cover the
  window: the series itself;
* otherwise :data:`TERMS` equally spaced real :math:`j` over the window, trapezoidal rule:
  the sum over integers of the (entire, bell-shaped) summand equals its integral up to a
  relative :math:`\approx 2e^{-2\pi^2\sigma^2}` (Poisson summation), and the trapezoidal
  rule's error is :math:`\approx 2e^{-2\pi^2(\sigma/s)^2}` for a step :math:`s`. Over a
  grid of :math:`p \in (1.001, 2 - 10^{-7})` and :math:`j_m \in (10^{-3}, 10^4)`, this
  regime has :math:`\sigma \ge 4.8` and :math:`\sigma/s \ge 3.9` (float32), resp.
  :math:`\sigma \ge 6.5` and :math:`\sigma/s \ge 6.6` (float64): both errors below
  :math:`10^{-100}`. A window clipped at :math:`j = 1` (the terms there not negligible)
  is at most 60.4 (float32) resp. 115.8 (float64) long on that grid (at :math:`p \to 2`,
  :math:`c j_m \approx 1.1`-:math:`1.2 D`), which is what sets :data:`TERMS`: such a window is always
  summed over integers.

The nodes are quadrature nodes, not functions of the parameters (``stop_gradient``);
derivatives are the same quadrature of the derivative: :math:`\partial\log W/\partial z =
E[j]`, :math:`\partial\log W/\partial a = -E[j\,\psi(ja)]` under the terms' weights, from
a ``custom_jvp``. The sum runs as one loop over the nodes (``fori_loop``) carrying the
running sums, scaled by the term at the node nearest :math:`j_m` (so nothing overflows),
with no (n, TERMS) buffer; :math:`\log j!` and :math:`\log\Gamma(ja)` (and
:math:`\psi(ja)`) are the Stirling series after shifting the argument above 6 (float32)
or 12 (float64) by a product: 64 terms of two log-gammas took 180 ms at n = 1e5
against 1416 ms with XLA:CPU's ``lgamma`` (same process).

Measured against the full series in float64 (every term from 1 to
:math:`j_{\max} + 60\sqrt{j_{\max}/(p-1)} + 200`, ``tests/_refs_glm2.py``), at 800 random
points with :math:`p \in (1.001, 1.999)` (a quarter above 1.9), :math:`j_m` from 0.01 to
:math:`3\cdot10^4` and :math:`y \in (e^{-5}, e^5)`, and on a grid of
:math:`p \in \{1.001, \dots, 1.99999\}` by :math:`j_m \in (10^{-3}, 3\cdot 10^4)`: the
difference is at most 10 eps relative to the size of the terms
(:math:`1 + j_m|z| + \log\Gamma(j_m + 1) + |\log\Gamma(j_m a)|`), in float32 and float64,
no truncation error visible. There is no upper limit on :math:`j_m` in the method;
what grows with it is the **cancellation** between :math:`\log W` and the exponent, both
of size about :math:`j_m\log j_m` while the result is of order :math:`\log j_m`: at
:math:`\phi = 10^{-6}` float64 keeps about 6 digits of :math:`\log p` and float32 none
(the same holds for the float64 reference; a saddle-point form would be needed for such
dispersions).

``log_cdf`` / ``log_sf`` are not provided: the distribution function of this mixed
distribution has no series with the same static structure (it is not needed by
censoring with a point mass at 0).

Expected (Fisher) information per observation: :math:`\mu^{2-p}/\phi` for ``log_mean``,
:math:`1/(\phi\mu^p)` for ``mean``.

References:
  P. K. Dunn and G. K. Smyth, "Series evaluation of Tweedie exponential dispersion model
  densities", *Statistics and Computing* 15, 2005.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nllax import _family as F
from nllax.gamma import DISPERSION, MEAN

__all__ = ["log_prob", "nll", "TERMS"]

# ----------------------------------------------------------------------------------------
# the series: a window of terms chosen per dtype, summed in one loop (no (n, K) buffer)

# Drop D (in log units) below the largest term at which the window ends, per dtype: the
# neglected terms are then below e^-D ~ eps / 10 of the sum (f32: e^-18 = 1.5e-8, f64:
# e^-38 = 3e-17), plus 2 for the Stirling-level model of the terms' shape (below).
_DROP = {4: 18.0 + 2.0, 8: 38.0 + 2.0}
# Terms (nodes) per observation: the longest window, 2.72 D (p - 1) consecutive integers
# when the window reaches j = 1 (see the module docstring), plus margin.
TERMS = {"float32": 64, "float64": 120}
# Fast log-gamma / digamma: shift arguments below _SHIFT by _SHIFT (a product of _SHIFT
# factors and its logarithmic derivative), then the Stirling series (terms per dtype: the
# next neglected term is below 1e-12 (f32) / 1e-19 (f64) at the smallest argument).
_SHIFT = {4: 6, 8: 12}
_LG = (1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680, 1.0 / 1188, -691.0 / 360360,
       1.0 / 156, -3617.0 / 122400)
_DG = (1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132, -691.0 / 32760, 1.0 / 12,
       -3617.0 / 8160)
_NSER = {4: 5, 8: 8}
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _lgamma(x, with_digamma=False):
    """``lgamma(x)`` (and ``digamma(x)``) for ``x > 0`` by the shifted Stirling series:
    ~10 flops and one log against XLA:CPU's ~30 ns ``lgamma``. Absolute error a few eps
    of ``(x + m) log(x + m)`` (m the shift), the size of the terms it enters."""
    size = jnp.dtype(x.dtype).itemsize
    m, nser = _SHIFT[size], _NSER[size]
    small = x < m
    xs = jnp.where(small, x, jnp.ones((), x.dtype))
    prod, dprod = jnp.ones_like(xs), jnp.zeros_like(xs)
    for i in range(m):  # prod = x (x + 1) ... (x + m - 1), dprod its derivative
        dprod = dprod * (xs + i) + prod
        prod = prod * (xs + i)
    u = jnp.where(small, x + m, x)
    r = 1.0 / u
    r2 = r * r
    ser = _LG[nser - 1]
    for c in _LG[nser - 2::-1]:
        ser = ser * r2 + c
    log_u = jnp.log(u)
    lg = (u - 0.5) * log_u - u + _HALF_LOG_2PI + ser * r - jnp.where(
        small, jnp.log(prod), 0.0)
    if not with_digamma:
        return lg
    dser = _DG[nser - 1]
    for c in _DG[nser - 2::-1]:
        dser = dser * r2 + c
    dg = log_u - 0.5 * r - dser * r2 - jnp.where(small, dprod / prod, 0.0)
    return lg, dg


def _bounds(log_jm, p, dt):
    """The window ``[lo, hi]`` of real ``j >= 1`` outside which the terms are negligible.

    With :math:`c = 1/(p-1)` the log-terms fall off from their maximum at :math:`j_m` as
    :math:`c\\,j_m h(j/j_m)`, :math:`h(x) = x\\log x - x + 1` (Stirling; the
    :math:`\\tfrac12\\log j` terms cancel). The window is where that is at most D:
    :math:`h(x) = r = D/(c j_m)` solved on both sides by Newton's method from above
    (convex, increasing away from 1: the iterates stay outside the root, i.e. the window
    only grows)."""
    drop = _DROP[jnp.dtype(dt).itemsize]
    log_r = jnp.minimum(math.log(drop) + jnp.log(p - 1.0) - log_jm, 30.0)
    r = jnp.exp(log_r)
    jm = jnp.exp(jnp.minimum(log_jm, 60.0))
    # right: x log x - x + 1 = r, from the Bernstein bound h(1 + t) >= t^2 / (2 (1 + t/3))
    x = 1.0 + r / 3.0 + jnp.sqrt(r * r / 9.0 + 2.0 * r)
    for _ in range(3):
        lx = jnp.log(x)
        x = x - (x * lx - x + 1.0 - r) / lx
    # left: h(1 - u) = r for r < 0.98 (h(0) = 1: beyond, the window starts at j = 1),
    # from u = sqrt(2 r) >= the root (h(1 - u) >= u^2 / 2)
    near = r < 0.98
    rs = jnp.where(near, r, 0.5)
    u = jnp.minimum(jnp.sqrt(2.0 * rs), 0.999)
    for _ in range(3):
        l1 = jnp.log1p(-u)
        u = u - ((1.0 - u) * l1 + u - rs) / (-l1)
    lo = jnp.maximum(1.0, jnp.where(near, jm * (1.0 - u), 1.0))
    hi = jnp.maximum(jm * x, lo)
    return lo, hi


def _window(log_jm, p, dt):
    """The nodes of each observation's window: ``(start, step, trapezoid)``: the
    consecutive integers from ``floor(lo)`` where K of them cover the window, else K
    trapezoidal nodes over it (the sum equals the integral, see the module docstring)."""
    k = TERMS[jnp.dtype(dt).name]
    lo, hi = _bounds(log_jm, p, dt)
    integer = hi - lo <= k - 2
    start = jnp.where(integer, jnp.floor(lo), lo)
    step = jnp.where(integer, 1.0, (hi - lo) / (k - 1))
    return (jax.lax.stop_gradient(start), jax.lax.stop_gradient(step),
            jax.lax.stop_gradient(~integer))


def _sums(z, a, start, step, trap, jm, grad):
    """``(M, S0[, S1, S2])``: S0 = sum_i w_i e^(t_i - M), S1 (times j), S2 (times
    j digamma(j a)) over the window's nodes, in one loop over the K nodes (no (n, K)
    buffer). M is the log-term at the node nearest the mode (no overflow: the terms are
    concave, every node is within one step of that node's term or below it)."""
    dt = z.dtype
    k = TERMS[jnp.dtype(dt).name]
    log_step = jnp.log(step)
    ic = jnp.clip(jnp.round((jm - start) / step), 0, k - 1)
    jc = start + step * ic
    m = jax.lax.stop_gradient(jc * z - _lgamma(jc + 1.0) - _lgamma(jc * a) + log_step)
    half = jnp.log(jnp.asarray(0.5, dt))

    def body(i, acc):
        j = start + step * i.astype(dt)
        lw = log_step + jnp.where(trap & ((i == 0) | (i == k - 1)), half, 0.0)
        if grad:
            lg2, dg2 = _lgamma(j * a, with_digamma=True)
        else:
            lg2 = _lgamma(j * a)
        e = jnp.exp(j * z - _lgamma(j + 1.0) - lg2 + lw - m)
        if not grad:
            return acc + e
        s0, s1, s2 = acc
        ej = e * j
        return s0 + e, s1 + ej, s2 + ej * dg2

    zero = jnp.zeros_like(z)
    init = (zero, zero, zero) if grad else zero
    return m, jax.lax.fori_loop(0, k, body, init)


@jax.custom_jvp
def _log_w(z, a, start, step, trap, jm):
    m, s0 = _sums(z, a, start, step, trap, jm, grad=False)
    return m + jnp.log(s0)


@_log_w.defjvp
def _log_w_jvp(primals, tangents):
    z, a, start, step, trap, jm = primals
    dz, da = tangents[0], tangents[1]
    m, (s0, s1, s2) = _sums(z, a, start, step, trap, jm, grad=True)
    # d log W / dz = E[j], d log W / da = -E[j digamma(j a)] (the nodes are quadrature
    # nodes: no derivative through them)
    return m + jnp.log(s0), (s1 / s0) * dz - (s2 / s0) * da


@jax.jit
def log_series(y, dispersion, power):
    r""":math:`\log W(y, \phi, p)` for :math:`y > 0` (see the module docstring).

    Jitted (inlined in a caller's jit): called eagerly, the loop over the nodes would be
    traced and compiled again at every call (~0.3 s)."""
    p = power
    a = (2.0 - p) / (p - 1.0)
    log_y = jnp.log(y)
    log_2mp = jnp.log(2.0 - p)
    log_phi = jnp.log(dispersion)
    z = a * (log_y - jnp.log(p - 1.0)) - log_phi / (p - 1.0) - log_2mp
    log_jm = jax.lax.stop_gradient((2.0 - p) * log_y - log_phi - log_2mp)
    start, step, trap = _window(log_jm, jax.lax.stop_gradient(p), y.dtype)
    jm = jnp.exp(jnp.minimum(log_jm, 60.0))
    return _log_w(z, a, start, step, trap, jm)


def _log_prob(y, mean, dispersion, power):
    dt = y.dtype
    p = jnp.broadcast_to(power, jnp.broadcast_shapes(y.shape, jnp.shape(power),
                                                     jnp.shape(dispersion)))
    phi = jnp.broadcast_to(dispersion, p.shape)
    log_mu = mean.log()
    kappa = jnp.exp((2.0 - p) * log_mu) / (2.0 - p)  # mu^(2-p) / (2-p)
    pos = y > 0
    ys = jnp.where(pos, y, jnp.ones((), dt))
    theta_y = ys * jnp.exp((1.0 - p) * log_mu) / (1.0 - p)
    lp_pos = -jnp.log(ys) + log_series(jnp.broadcast_to(ys, p.shape), phi, p) + (
        theta_y - kappa) / phi
    return jnp.where(pos, lp_pos, -kappa / phi)


def _fisher(mean, dispersion, power):
    if mean.kind == "log":
        return {"log_mean": jnp.exp((2.0 - power) * mean.v) / dispersion}
    return {"mean": 1.0 / (dispersion * mean.v ** power)}


POWER = F.Param("power", F.interval(1.0, 2.0, message="must lie in (1, 2) (the compound "
                                                       "Poisson-gamma range; got a value "
                                                       "outside or NaN)"),
                keyword_only=True, doc="p in (1, 2)")

family = F.Family(
    name="tweedie",
    data=F.Data("y", F.NONNEGATIVE),
    params=(MEAN, DISPERSION, POWER),
    log_prob=_log_prob,
    fisher=_fisher,
    summary="Tweedie(mean, dispersion, power)",
)

_fns = family.functions({
    "log_prob": r"""Per-observation Tweedie log-density (:math:`1 < p < 2`): the log of
    the point mass :math:`P(y = 0) = e^{-\lambda}` at 0, the log-density for :math:`y > 0`.

    Args:
      y: non-negative observations, any shape.
      log_mean: :math:`\log\mu`, broadcastable to ``y.shape``; or
      mean: :math:`\mu > 0`. Exactly one of the two.
      dispersion: :math:`\phi > 0`, scalar or broadcastable to ``y.shape``.
      power: :math:`p \in (1, 2)`, scalar or broadcastable to ``y.shape``.

    Returns:
      Array of ``y.shape``; NaN where ``y < 0``, ``mean <= 0``, ``dispersion <= 0`` or
      ``power`` is outside (1, 2).

    Example:
      >>> import nllax
      >>> float(nllax.tweedie.log_prob(0.0, mean=1.0, dispersion=1.0, power=1.5))  # -2
      -2.0
    """,
    "nll": r"""Tweedie negative log-likelihood, reduced (``reduction``, ``weights``, ``where``
    as in :func:`nllax.gaussian.nll`).""",
})
log_prob, nll = _fns["log_prob"], _fns["nll"]
F.register(__name__, family)
