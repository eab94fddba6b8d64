r"""The loss audit: is a given loss a negative log-likelihood, ``NLL = a * loss + b``?

A loss :math:`\ell(y, \hat y)` is an NLL up to an affine map exactly when, for some
:math:`a > 0`, the normaliser

.. math::

    Z_a(\hat y) = \int_{\mathcal Y} h(y)\, e^{-a\,\ell(y, \hat y)}\, dy
    \qquad(\text{a sum for discrete supports})

is finite and the same for every prediction :math:`\hat y`. Then
:math:`p(y\mid\hat y) = h(y)\,e^{-a\ell(y,\hat y)}/Z_a` is a density and
:math:`-\log p = a\,\ell + b` with :math:`b = \log Z_a` (minus :math:`\log h(y)`, which
does not depend on the prediction, when a base measure :math:`h` is given: e.g.
:math:`h(k) = 1/k!` makes the Poisson loss :math:`e^\eta - k\eta` a likelihood).
If :math:`Z_a` varies, the loss is not an NLL at that scale, and the NLL of the density
it implies is the corrected :math:`a\,\ell(y,\hat y) + \log Z_a(\hat y)`.

:func:`audit` computes :math:`\log Z_a` at each prediction, in float64, and decides.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Audit", "audit"]

_FN = "nllax.audit"

# --------------------------------------------------------------------------- constants

# Decision threshold on the variation of log Z over the predictions (absolute, i.e.
# relative on Z). The quadrature targets a relative error of _QUAD_RTOL on each Z and
# reports its estimate; the loss itself is evaluated in float64, and an integrand
# exp(-a * loss) where a * loss <= 745 (beyond it underflows) carries a relative
# rounding error of at most ~745 * 16 u = 1.3e-12 (16 roundings inside the loss), so
# each log Z is good to ~1e-11 and 1e-8 leaves a factor 1000 for harder losses.
TOLERANCE = 1e-8
_QUAD_RTOL = 1e-12
# An estimated error on log Z above this is reported as "not converged".
_CONVERGED = 1e-10

# Gauss-Kronrod 21-point rule on [-1, 1] (the nodes and weights of QUADPACK's qk21;
# the 10-point Gauss rule uses every other node). Tested for exactness on polynomials
# of degree <= 31 and against numpy's Gauss-Legendre nodes.
_XGK = np.array([
    0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
    0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
    0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
    0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
    0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
    0.0])
_WGK = np.array([
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
    0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
    0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077600525634508, 0.134709217311473325928054001771707,
    0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
    0.149445554002916905664936468389821])
_WG = np.array([
    0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
    0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
    0.295524224714752870173892994651338])
NODES = np.concatenate([-_XGK[:-1], _XGK[::-1]])          # 21 nodes, ascending
KRONROD = np.concatenate([_WGK[:-1], _WGK[::-1]])
GAUSS = np.zeros(21)
GAUSS[1:10:2] = _WG                                          # nodes -xgk[1], -xgk[3], ...
GAUSS[11:20:2] = _WG[::-1]

_CHUNK = 64                  # intervals per compiled evaluation (64 * 23 points)
_MAX_INTERVALS = 4000        # per integral
_LOG_TINY = math.log(1e-300)
_LOG_HUGE = math.log(1e150)  # far end of an infinite ray: |y - origin| <= 1e150, so y**2 is finite
_TAIL_STEP = math.log(10.0)  # spacing of the points that fit a power law at the ends

_COUNT_CHUNK = 1 << 12
_COUNT_MAX = 1 << 22

_SUPPORTS = ("real", "positive", "unit", "binary", "counts")

_DEFAULT_PREDICTIONS = {
    "real": [-10.0, -2.0, -0.5, 0.0, 0.3, 1.0, 4.0],
    "positive": [0.05, 0.3, 1.0, 2.5, 8.0, 40.0],
    "unit": [0.02, 0.2, 0.5, 0.7, 0.97],
    "binary": [-6.0, -2.0, -0.5, 0.0, 1.0, 3.0],          # logits
    "counts": [0.2, 0.5, 1.0, 2.0, 3.5, 5.0],              # valid as rates and as log-rates
}

# Scales tried when a=None: 2**k, k = -2..2, widened to 2**-10 .. 2**10 while the best
# is at an edge; a minimum between grid points is refined by golden-section search.
_GRID = tuple(2.0**k for k in range(-2, 3))
_GRID_LIMIT = 10


# --------------------------------------------------------------------------- result


@dataclasses.dataclass(frozen=True)
class Audit:
    """The verdict of :func:`audit` on one loss.

    Attributes:
      is_likelihood: ``True`` when :math:`\\log Z_a` is finite, converged and the same for
        every prediction (variation ``<= TOLERANCE`` = 1e-8).
      a: the scale of the verdict (given; found by the search; 1.0 when every scale
        works or none does).
      b: :math:`\\log Z_a`, the constant of ``NLL = a * loss + b`` (per observation;
        minus :math:`\\log h(y)` with a base measure), or ``None`` when not a likelihood.
      log_normalizer: :math:`\\log Z_a(\\hat y)` at each prediction, float64 array
        (``inf`` where the normaliser diverges).
      variation: ``max - min`` of ``log_normalizer`` (``inf`` if any is infinite).
      error: the estimated absolute error of each ``log_normalizer`` entry.
      scales: ``"given"`` (``a`` was passed), ``"any"`` (every scale of the search
        works: a location loss), ``"range"`` (some scales work, e.g. every
        :math:`a > 1/2` for the Cauchy loss :math:`\\log(1 + r^2)`), ``"isolated"`` (one
        scale works, refined by the search: BCE's a = 1), or ``"none"``.
      search: the ``(a, variation)`` pairs the search evaluated (empty when ``a`` was
        given).
      reason: the verdict in words.
      support, predictions, loss, base: the inputs.
    """

    is_likelihood: bool
    a: float
    b: float | None
    log_normalizer: np.ndarray
    variation: float
    error: np.ndarray
    scales: str
    search: tuple
    reason: str
    support: Any
    predictions: Any
    loss: Callable[..., Any] = dataclasses.field(repr=False)
    base: Callable[..., Any] | None = dataclasses.field(repr=False, default=None)

    def log_normalizer_at(self, pred: Any) -> float:
        """:math:`\\log Z_a(\\hat y)` at one prediction (computed like the audit's, and
        remembered per prediction)."""
        pred = _as64(pred)
        key = tuple((x.shape, x.tobytes()) for x in jax.tree_util.tree_leaves(pred))
        cache = self.__dict__.setdefault("_log_z_cache", {})
        if key not in cache:
            with jax.enable_x64(True):
                cache[key] = _log_z(self.loss, self.base, self.support, pred, self.a)[0]
        return cache[key]

    def corrected_nll(self, y: Any, pred: Any) -> np.ndarray:
        """The NLL of the implied density,
        :math:`a\\,\\ell(y,\\hat y) + \\log Z_a(\\hat y) - \\log h(y)`, for targets ``y``
        (an array) and one prediction; in loss units it is ``loss + log Z / a``.
        Host-side (float64 NumPy), for diagnosis and plots; not traceable."""
        log_z = self.log_normalizer_at(pred)
        with jax.enable_x64(True):
            y = _targets(y, self.support)
            out = -np.asarray(_log_f_host(self.loss, self.base, y, _as64(pred), self.a))
        return out + log_z

    def log_prob(self, y: Any, pred: Any) -> np.ndarray:
        """The implied log density (or mass), ``-corrected_nll(y, pred)``."""
        return -self.corrected_nll(y, pred)

    def density(self, y: Any, pred: Any) -> np.ndarray:
        """The implied density (or mass) :math:`h(y)\\,e^{-a\\ell(y,\\hat y)}/Z_a(\\hat y)`."""
        return np.exp(self.log_prob(y, pred))


# --------------------------------------------------------------------------- evaluation


def _as64(pred: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), pred)


def _targets(y: Any, support: Any) -> np.ndarray:
    discrete = support in ("binary", "counts") or isinstance(support, tuple)
    return np.asarray(y, np.int64 if discrete else np.float64).reshape(-1)


def _log_f_impl(loss, base, y, pred, a):
    """-a * loss(y_i, pred) + log h(y_i) for a vector of targets, in float64."""
    vals = jax.vmap(lambda yi: jnp.asarray(loss(yi, pred)))(y)
    if vals.shape != y.shape:
        raise ValueError(
            f"{_FN}: `loss(y, pred)` must return a scalar for one target and one "
            f"prediction, got shape {vals.shape[1:]} (the audit vmaps over targets)."
        )
    out = -a * vals.astype(jnp.float64)
    if base is not None:
        h = jax.vmap(lambda yi: jnp.asarray(base(yi)))(y)
        if h.shape != y.shape:
            raise ValueError(f"{_FN}: `base(y)` must return a scalar for one target.")
        out = out + h.astype(jnp.float64)
    # -a * (+inf) is -inf (no mass) and stays; -a * (-inf) is +inf (infinite mass).
    return out


_log_f_jit = jax.jit(_log_f_impl, static_argnums=(0, 1))


def _log_f_host(loss, base, y, pred, a) -> np.ndarray:
    """Evaluates in fixed-size chunks (two sizes: one compilation each per loss and
    prediction shape). The points and ``a`` go in as NumPy values (the same program and
    values as JAX arrays would give): a ``jnp.asarray`` of each would be a dispatch of its
    own, dearer than the evaluation, and the quadrature makes thousands of calls."""
    y = np.asarray(y)
    size = _CHUNK * 23 if len(y) <= _CHUNK * 23 else _COUNT_CHUNK
    a = np.float64(a)
    out = []
    for start in range(0, max(len(y), 1), size):
        part = y[start:start + size]
        pad = np.concatenate([part, np.full(size - len(part), part[0] if len(part) else 0,
                                            part.dtype)])
        out.append(np.asarray(_log_f_jit(loss, base, pad, pred, a))[:len(part)])
    return np.concatenate(out) if out else np.zeros(0)


class _NaN(Exception):
    def __init__(self, y):
        super().__init__(f"the loss is NaN at y = {y!r}")
        self.y = y


def _checked(vals: np.ndarray, y: np.ndarray) -> np.ndarray:
    bad = np.isnan(vals)
    if bad.any():
        raise _NaN(float(y[np.argmax(bad)]))
    return vals


# --------------------------------------------------------------------------- discrete


def _log_sum(logt: np.ndarray) -> float:
    m = np.max(logt)
    if not np.isfinite(m):
        return float(m)
    return float(m + np.log(np.sum(np.exp(logt - m))))


def _discrete(loss, base, support, pred, a) -> tuple[float, float]:
    k_max = 2 if support == "binary" else support[1]
    ys = np.arange(k_max, dtype=np.int64)
    logt = _checked(_log_f_host(loss, base, ys, pred, a), ys)
    # Exact up to rounding: K terms, each with the loss's rounding (see TOLERANCE).
    return _log_sum(logt), 4 * k_max * 2.0**-53


def _counts(loss, base, pred, a) -> tuple[float, float]:
    """log sum_{k >= 0} h(k) exp(-a loss(k, pred)): exact partial sums, then a tail bound.

    Terms are summed exactly for k < N, N doubling from 2^12 up to 2^22 while the last
    term is above 1e-18 of the sum. The tail beyond N is bounded by the ratio test: if
    the last 64 ratios t_{k+1}/t_k are at most r < 1 (terms eventually log-concave, as
    for every exponential-family count model), the tail is at most t_N r / (1 - r). If
    the terms do not decrease geometrically, a power law t_k ~ k^-p is fitted to
    t_{N/4}, t_{N/2}, t_N: p <= 1 diverges; otherwise the tail is t_N N / (p - 1), with
    the difference of the two fitted exponents' tails as its error. Terms still growing
    at N with log-ratios that do not fall (geometric or faster growth) diverge."""
    n = _COUNT_CHUNK
    logt = np.zeros(0)
    while True:
        ks = np.arange(len(logt), n, dtype=np.int64)
        logt = np.concatenate([logt, _checked(_log_f_host(loss, base, ks, pred, a), ks)])
        total = _log_sum(logt)
        if total == math.inf:
            return math.inf, 0.0
        if total == -math.inf:
            return -math.inf, 0.0
        if logt[-1] - total < math.log(1e-18) or n >= _COUNT_MAX:
            break
        # Terms that grow geometrically or faster to the end (log-ratios not falling and
        # not negative, as exp(k eta) with eta >= 0) never converge.
        r = np.diff(logt[-65:])
        if np.all(np.isfinite(r)) and r[-1] >= 0 and r[-1] >= r[0] - 1e-9 * max(1.0, abs(r[0])):
            return math.inf, 0.0
        n *= 2
    last = logt[-65:]
    if np.all(np.isneginf(last)):
        return total, 4 * n * 2.0**-53
    ratios = np.diff(last)
    log_r = np.max(ratios)
    if log_r < math.log(1 - 1e-3):
        tail = math.exp(logt[-1] - total) * math.exp(log_r) / (-math.expm1(log_r))
        return total + math.log1p(tail), tail + 4 * math.log2(n) * 2.0**-53
    # Power law through log t_k = c - p log k, from (N/4, N/2) and (N/2, N).
    i1, i2, i3 = n // 4, n // 2, n - 1
    p1 = -(logt[i2] - logt[i1]) / math.log(i2 / i1)
    p2 = -(logt[i3] - logt[i2]) / math.log(i3 / i2)
    if p2 <= 1.0 + 1e-9:
        return math.inf, 0.0
    rel_tn = math.exp(logt[-1] - total)
    tail = rel_tn * n / (p2 - 1)
    tail_err = abs(tail - rel_tn * n / max(p1 - 1, 1e-300))
    return total + math.log1p(tail), tail_err + tail / n  # + Euler-Maclaurin's t_N / 2


# --------------------------------------------------------------------------- continuous


_RANGE = {"real": (-math.inf, math.inf), "positive": (0.0, math.inf), "unit": (0.0, 1.0)}


def _probe_points(support: str, pred: Any) -> np.ndarray:
    """Where to look for the integrand's peak: a log-spaced grid over 40 decades each
    side of 0 (and of each support end), and of the prediction if it is a scalar."""
    mags = 10.0 ** np.linspace(-25.0, 15.0, 321)
    pts = [mags, -mags, np.zeros(1)]
    if support == "unit":
        pts += [1.0 - mags]
    if isinstance(pred, np.ndarray) and pred.shape == () and np.isfinite(pred):
        pts += [float(pred) + mags, float(pred) - mags, np.array([float(pred)])]
    y = np.concatenate(pts)
    lo, hi = _RANGE[support]
    return np.unique(y[(y > lo) & (y < hi)])


def _rays(support: str, breaks: list[float]) -> list[tuple[float, float, float]]:
    """(origin, direction, length) of each ray: every piece between consecutive
    breakpoints is cut in half, and each half is a ray from its end at the breakpoint."""
    lo, hi = _RANGE[support]
    pts = sorted({p for p in breaks if lo < p < hi})
    edges = [lo, *pts, hi]
    rays = []
    for left, right in zip(edges[:-1], edges[1:]):
        if math.isinf(left) and math.isinf(right):  # pragma: no cover (0 is always a break)
            raise AssertionError
        if math.isinf(left):
            rays.append((right, -1.0, math.inf))
        elif math.isinf(right):
            rays.append((left, 1.0, math.inf))
        else:
            half = (right - left) / 2
            rays.append((left, 1.0, half))
            rays.append((right, -1.0, half))
    return rays


def _ray_y(origin, direction, s):
    return origin + direction * np.exp(s)


def _continuous(loss, base, support, pred, a) -> tuple[float, float]:
    """log of the integral over the support; see :func:`audit` for the method."""
    probe = _probe_points(support, pred)
    lp = _checked(_log_f_host(loss, base, probe, pred, a), probe)
    if np.any(lp == math.inf):
        return math.inf, 0.0
    if np.all(lp == -math.inf):
        return -math.inf, 0.0  # no mass anywhere we can see
    centre = float(probe[np.argmax(lp)])
    breaks = [centre]
    if support == "real":
        breaks.append(0.0)
    if isinstance(pred, np.ndarray) and pred.shape == () and np.isfinite(pred):
        breaks.append(float(pred))
    # Merge breakpoints closer than rounding (they would make empty rays).
    merged: list[float] = []
    for p in sorted(breaks):
        if not merged or abs(p - merged[-1]) > 1e-12 * (1.0 + abs(p)):
            merged.append(p)
    rays = _rays(support, merged)

    # Intervals in s = log|y - origin| for every ray, integrand F(s) = f(y) e^s.
    ray_id, s0, s1 = [], [], []
    for i, (origin, _, length) in enumerate(rays):
        ulp = np.spacing(abs(origin)) if origin != 0 else 0.0
        lo_s = math.log(max(1e-300, 8.0 * ulp))
        hi_s = _LOG_HUGE if math.isinf(length) else math.log(length)
        n0 = 48 if math.isinf(length) else 24
        edges = np.linspace(lo_s, hi_s, n0 + 1)
        ray_id += [i] * n0
        s0 += list(edges[:-1])
        s1 += list(edges[1:])
    ray_id, s0, s1 = np.array(ray_id), np.array(s0), np.array(s1)
    origins = np.array([r[0] for r in rays])
    dirs = np.array([r[1] for r in rays])
    # An integrand that does not fall between |y - o| = 1e75 and 1e150 (in the measure
    # ds = dy / |y - o|) has infinite mass; checked first, so that an integrand growing
    # without bound (exp(+r^2)) never reaches the quadrature. (Every infinite ray's two
    # points in one evaluation, then checked ray by ray, in order.)
    far = np.array([1e75, 1e150])
    far_y = [origin + direction * far for origin, direction, length in rays
             if math.isinf(length)]
    far_lv = _log_f_host(loss, base, np.concatenate(far_y), pred, a) if far_y else None
    for i, yy in enumerate(far_y):
        logF = _checked(far_lv[2 * i:2 * i + 2], yy) + np.log(far)
        if np.isfinite(logF[1]) and logF[1] >= logF[0]:
            return math.inf, 0.0

    shift = float(np.max(lp[np.isfinite(lp)])) + 50.0  # log-scale of the peak (+ room)

    ends_x = np.array([-1.0, 1.0])

    def evaluate(rid, a0, a1):
        mid, half = (a0 + a1) / 2, (a1 - a0) / 2
        s = mid[:, None] + half[:, None] * np.concatenate([NODES, ends_x])[None, :]
        y = _ray_y(origins[rid][:, None], dirs[rid][:, None], s)
        vals = _checked(_log_f_host(loss, base, y.ravel(), pred, a), y.ravel()).reshape(s.shape)
        if np.any(vals == math.inf):
            raise _Infinite
        logF = vals + s - shift
        if np.any(logF > 700):
            raise _Rescale(float(np.max(logF)))
        F = np.exp(logF)
        k = half * (F[:, :21] @ KRONROD)
        g = half * (F[:, :21] @ GAUSS)
        # Mass that could hide between an end of the interval and its outermost node
        # (a jump there is seen by no node): where F changes across that sliver by more
        # than 4 times what its slope between the two outermost nodes predicts, the
        # change times the sliver's width is added to the error (a smooth F never
        # triggers it; a jump always does).
        sliver = half * (1.0 - NODES[-1])
        ratio = (1.0 - NODES[-1]) / (NODES[-1] - NODES[-2])
        edge = np.zeros_like(k)
        for e_, n0, n1 in ((21, 0, 1), (22, 20, 19)):
            jump = np.abs(F[:, e_] - F[:, n0])
            hidden = jump > 4.0 * ratio * np.abs(F[:, n0] - F[:, n1])
            edge = edge + np.where(hidden, jump * sliver, 0.0)
        return k, np.abs(k - g) + edge

    try:
        for _ in range(3):  # the shift may need raising once or twice
            try:
                val, err = evaluate(ray_id, s0, s1)
                break
            except _Rescale as e:
                shift += e.excess
        def refine(pick, ray_id, s0, s1, val, err, verify=False):
            """Bisects the intervals `pick`; with verify, each half pair also carries the
            change |K(whole) - K(halves)| in its error (a check of K - G itself)."""
            nonlocal shift
            mids = (s0[pick] + s1[pick]) / 2
            nr = np.concatenate([ray_id[pick], ray_id[pick]])
            n0_ = np.concatenate([s0[pick], mids])
            n1_ = np.concatenate([mids, s1[pick]])
            nv, ne = [], []
            for start in range(0, len(nr), _CHUNK):
                part = slice(start, start + _CHUNK)
                try:
                    v_, e_ = evaluate(nr[part], n0_[part], n1_[part])
                except _Rescale as exc:
                    factor = math.exp(-exc.excess)
                    shift += exc.excess
                    val, err = val * factor, err * factor
                    nv, ne = [v * factor for v in nv], [e * factor for e in ne]
                    v_, e_ = evaluate(nr[part], n0_[part], n1_[part])
                nv.append(v_)
                ne.append(e_)
            nv, ne = np.concatenate(nv), np.concatenate(ne)
            if verify:
                m = len(pick)
                change = np.abs(val[pick] - (nv[:m] + nv[m:]))
                ne = ne + np.concatenate([change, change]) / 2
            keep = np.ones(len(val), bool)
            keep[pick] = False
            return (np.concatenate([ray_id[keep], nr]), np.concatenate([s0[keep], n0_]),
                    np.concatenate([s1[keep], n1_]), np.concatenate([val[keep], nv]),
                    np.concatenate([err[keep], ne]))

        verified = 0
        for _ in range(400):
            total = np.sum(val)
            if total <= 0:
                break
            budget = _QUAD_RTOL * total
            width = s1 - s0
            can = width > 1e-12 * (1.0 + np.abs(s0))
            if np.sum(err) <= budget or len(val) >= _MAX_INTERVALS:
                # Converged by the Kronrod estimates: verify once (at most three times)
                # by bisecting every interval that holds mass and adding the change.
                if verified >= 3 or len(val) >= _MAX_INTERVALS:
                    break
                verified += 1
                pick = np.where(can)[0]
                before = np.sum(err)
                ray_id, s0, s1, val, err = refine(pick, ray_id, s0, s1, val, err, verify=True)
                if np.sum(err) <= max(budget, before):
                    break
                continue
            cand = np.where(can & (err > budget / 4000))[0]
            if len(cand) == 0:
                break
            pick = cand[np.argsort(err[cand])[::-1][:_CHUNK // 2]]
            ray_id, s0, s1, val, err = refine(pick, ray_id, s0, s1, val, err)

        total = float(np.sum(val))
        quad_err = float(np.sum(err))
        # The ends of each ray: the far end of an infinite ray, and the origin end
        # (a support end such as y -> 0 may carry an integrable singularity).
        tail, tail_err = 0.0, 0.0
        ends = []  # (ray, s at the end, direction inwards), every end's points in one call
        for i, (origin, direction, length) in enumerate(rays):
            ends.append((i, float(s0[ray_id == i].min()), +1.0))  # towards s -> -inf
            if math.isinf(length):
                ends.append((i, float(s1[ray_id == i].max()), -1.0))  # towards s -> +inf
        ends_s = [s_end + inward * _TAIL_STEP * np.array([0.0, 1.0, 2.0])
                  for _, s_end, inward in ends]
        ends_y = [_ray_y(rays[i][0], rays[i][1], ss) for (i, _, _), ss in zip(ends, ends_s)]
        ends_lv = _log_f_host(loss, base, np.concatenate(ends_y), pred, a)
        for j, (ss, yy) in enumerate(zip(ends_s, ends_y)):
            lv = _checked(ends_lv[3 * j:3 * j + 3], yy)
            logF = lv + ss - shift
            if not np.isfinite(logF[0]) or logF[0] - math.log(max(total, 1e-300)) < -745:
                continue
            # slope of log F towards the end: F ~ e^{-kappa |s - s_end|} beyond it
            k1 = (logF[1] - logF[0]) / _TAIL_STEP
            k2 = (logF[2] - logF[1]) / _TAIL_STEP
            if not (k1 > 1e-9):
                raise _Infinite
            t1 = math.exp(logF[0]) / k1
            t2 = math.exp(logF[0]) / k2 if k2 > 1e-9 else math.inf
            tail += t1
            # the disagreement of the two fitted power laws (0 for an exact one)
            tail_err += min(abs(t2 - t1), t1)
    except _Infinite:
        return math.inf, 0.0
    z = total + tail
    if z <= 0:
        return -math.inf, 0.0
    return shift + math.log(z), (quad_err + tail_err) / z


class _Infinite(Exception):
    pass


class _Rescale(Exception):
    def __init__(self, excess):
        super().__init__()
        self.excess = excess


def _log_z(loss, base, support, pred, a) -> tuple[float, float]:
    """(log Z, estimated absolute error of log Z) at one prediction; NaN on a NaN loss."""
    try:
        if support in ("binary",) or isinstance(support, tuple):
            return _discrete(loss, base, support, pred, a)
        if support == "counts":
            return _counts(loss, base, pred, a)
        return _continuous(loss, base, support, pred, a)
    except _NaN:
        return math.nan, math.nan


# --------------------------------------------------------------------------- audit


def _check_support(support: Any) -> Any:
    if isinstance(support, (tuple, list)):
        if (len(support) == 2 and support[0] == "categorical" and isinstance(support[1], int)
                and not isinstance(support[1], bool) and support[1] >= 2):
            return ("categorical", int(support[1]))
        raise ValueError(f"{_FN}: a categorical support is ('categorical', K) with an int K >= 2, "
                         f"got {support!r}.")
    if support not in _SUPPORTS:
        raise ValueError(f"{_FN}: `support` must be one of {_SUPPORTS} or ('categorical', K), "
                         f"got {support!r}.")
    return support


def _default_predictions(support: Any) -> np.ndarray:
    if isinstance(support, tuple):
        k = support[1]
        # A tie (equal logits: margin losses are flat there, which a large a cannot
        # hide) and seeded spreads; no all-zero row (a cosine of it is 0/0).
        rng = np.random.default_rng(0)
        return np.concatenate([np.ones((1, k)), 2.0 * rng.normal(size=(5, k))])
    return np.asarray(_DEFAULT_PREDICTIONS[support], np.float64)


def _split(predictions: Any) -> list:
    leaves = jax.tree_util.tree_leaves(predictions)
    if not leaves:
        raise ValueError(f"{_FN}: `predictions` is empty.")
    n = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if None in n or len(n) != 1:
        raise ValueError(f"{_FN}: every leaf of `predictions` needs the same leading axis "
                         f"(one entry per prediction); got shapes "
                         f"{[np.shape(x) for x in leaves]}.")
    (count,) = n
    if count < 2:
        raise ValueError(f"{_FN}: give at least two predictions to compare, got {count}.")
    return [jax.tree_util.tree_map(lambda x, i=i: np.asarray(x[i], np.float64), predictions)
            for i in range(count)]


def _evaluate(loss, base, support, preds, a):
    out = [_log_z(loss, base, support, p, a) for p in preds]
    logz = np.array([o[0] for o in out])
    err = np.array([o[1] for o in out])
    if np.any(np.isnan(logz)):
        var = math.nan
    elif np.any(np.isinf(logz)):
        var = math.inf
    else:
        var = float(np.max(logz) - np.min(logz))
    return logz, err, var


def _passes(logz, err, var) -> bool:
    return (bool(np.all(np.isfinite(logz))) and var <= TOLERANCE
            and bool(np.all(err <= _CONVERGED)))


def _search(loss, base, support, preds):
    """The search over a: see :func:`audit`."""
    tried: dict[float, tuple] = {}

    def at(a):
        if a not in tried:
            tried[a] = _evaluate(loss, base, support, preds, a)
        return tried[a]

    grid = list(_GRID)
    for a in grid:
        at(a)
    # Widen while the best variation sits at an edge of the grid and keeps falling.
    while True:
        vs = [at(a)[2] for a in grid]
        best = int(np.nanargmin(np.where(np.isnan(vs), np.inf, vs))) if not all(
            np.isnan(vs)) else None
        if best is None or all(_passes(*at(a)) for a in grid):
            break
        if best == 0 and grid[0] > 2.0**-_GRID_LIMIT and vs[0] < math.inf:
            grid.insert(0, grid[0] / 2)
            at(grid[0])
        elif best == len(grid) - 1 and grid[-1] < 2.0**_GRID_LIMIT and vs[-1] < math.inf:
            grid.append(grid[-1] * 2)
            at(grid[-1])
        else:
            break
    ok = [a for a in grid if _passes(*at(a))]
    if ok and len(ok) == len(grid):
        return "any", 1.0, tried
    if ok:
        pick = 1.0 if 1.0 in ok else ok[0]
        if len(ok) > 1 or all(_passes(*at(pick * (1 + d))) for d in (-1e-3, 1e-3)):
            return "range", pick, tried
        return "isolated", pick, tried
    vs = np.array([at(a)[2] for a in grid])
    finite = np.isfinite(vs)
    if not finite.any():
        return "none", 1.0, tried
    i = int(np.argmin(np.where(finite, vs, np.inf)))
    lo = math.log(grid[max(i - 1, 0)])
    hi = math.log(grid[min(i + 1, len(grid) - 1)])
    # Golden-section search of the variation over log a (it is V-shaped around a scale
    # that works); stops at a relative width of 1e-12 in a.
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    v1, v2 = at(math.exp(x1))[2], at(math.exp(x2))[2]
    best = []
    while hi - lo > 1e-12:
        # Near a scale that works the variation falls in proportion to the bracket
        # (a factor 0.618**10 = 0.008 per 10 steps); when 10 steps do not even halve it,
        # its minimum is not 0 and the search stops.
        best.append(min(v1, v2))
        if len(best) > 10 and not best[-1] <= 0.5 * best[-11]:
            break
        if v1 <= v2:
            hi, x2, v2 = x2, x1, v1
            x1 = hi - g * (hi - lo)
            v1 = at(math.exp(x1))[2]
        else:
            lo, x1, v1 = x1, x2, v2
            x2 = lo + g * (hi - lo)
            v2 = at(math.exp(x2))[2]
    a_best = math.exp(x1 if v1 <= v2 else x2)
    # A scale within rounding of a simple number (1, 2, 1/2, ...) is taken as that number.
    for simple in sorted({float(k) / d for k in range(1, 65) for d in range(1, 17)},
                         key=lambda s: abs(math.log(s / a_best))):
        if abs(math.log(simple / a_best)) <= 1e-6:
            if _passes(*at(simple)):
                return "isolated", simple, tried
            break
    if _passes(*at(a_best)):
        return "isolated", a_best, tried
    return "none", 1.0, tried


def audit(
    loss: Callable[..., Any],
    *,
    support: Any,
    predictions: Any = None,
    a: float | None = None,
    base: Callable[..., Any] | None = None,
) -> Audit:
    r"""Decides numerically whether ``loss`` is an NLL up to ``NLL = a * loss + b``.

    Computes, in float64, the log-normaliser

    .. math::

        \log Z_a(\hat y) = \log \int_{\mathcal Y} h(y)\,e^{-a\,\ell(y,\hat y)}\,dy
        \quad\text{or}\quad \log \sum_{y \in \mathcal Y} h(y)\,e^{-a\,\ell(y,\hat y)}

    at every prediction. The loss is a likelihood at scale :math:`a` when
    :math:`\log Z_a` is finite and constant over the predictions: then
    :math:`-\log p(y\mid\hat y) = a\,\ell(y,\hat y) + b` with :math:`b = \log Z_a`
    (minus :math:`\log h(y)` with a base measure), and
    :math:`p = h\,e^{-a\ell}/Z_a` is the implied density. Otherwise the audit reports
    how far :math:`\log Z_a` varies, and ``corrected_nll`` gives the NLL of the density
    the loss implies, :math:`a\,\ell + \log Z_a(\hat y)` (``loss + log Z / a`` in loss
    units).

    **Supports.** ``"real"`` (:math:`\mathbb R`), ``"positive"`` (:math:`(0,\infty)`),
    ``"unit"`` (:math:`(0,1)`), ``"binary"`` (:math:`\{0,1\}`), ``"counts"``
    (:math:`\{0,1,2,\ldots\}`), ``("categorical", K)`` (:math:`\{0,\ldots,K-1\}`).
    ``loss(y, pred)`` is called with **one** target (a float64 scalar; an integer for
    the discrete supports: a class index for categorical, so a loss written for one-hot
    targets is wrapped as ``lambda k, z: my_loss(jax.nn.one_hot(k, K), z)``) and one
    prediction, and returns a scalar; the audit ``vmap``\ s it over targets.

    **Quadrature (continuous supports).** The support is cut at breakpoints (the peak
    of the integrand located on a probe grid of 321 log-spaced points over 40 decades on
    each side of 0, of each support end and of a scalar prediction; the prediction; 0),
    and every piece is cut in half into *rays* from a breakpoint. Along each ray the
    distance is mapped logarithmically, :math:`y = o \pm e^s`, which turns power-law
    tails into exponential ones, resolves every length scale from :math:`10^{-300}` to
    :math:`10^{150}` alike, and puts endpoint singularities at :math:`s\to-\infty`.
    Each ray's :math:`s`-range is integrated by **globally adaptive Gauss–Kronrod
    (21-point Kronrod, 10-point Gauss)**: the interval with the largest error estimate
    :math:`|K_{21} - G_{10}|` (plus, for the slivers between each end of the interval
    and its outermost node, the change of the integrand across them times their width
    where that change is 4 times more than the slope there predicts, so that a jump no
    node sees is still counted) is bisected (32 at a time) until the summed estimate is
    below :math:`10^{-12}` of the integral, or 4000 intervals; then every interval
    holding mass is bisected once more and the change of its value is added to its
    error (a check of the Kronrod estimate itself, which a jump between two nodes can
    fool), and the bisection resumes if that exceeds the target; kinks (Huber, hinge,
    pinball) and jumps (a loss that is ``inf`` on part of the support, which
    contributes 0) are found by the bisection. The integrand is kept in log space
    (``exp(-a * loss - shift)``) so that neither tiny nor huge :math:`Z` overflows.
    **Ends**: beyond the last interval of each ray (:math:`|y - o| > 10^{150}`, and
    below :math:`\max(10^{-300}, 8\,\mathrm{ulp}(o))` at the origin) the integrand is
    extrapolated as a power law fitted at three points a factor 10 apart;
    when it does not decay (a tail :math:`f(y) \gtrsim 1/|y|`, or a non-integrable
    singularity), :math:`Z = \infty`. The reported ``error`` adds the Kronrod estimates
    and the disagreement of the two fitted tails. **Discrete supports**: binary and
    categorical sums are exact (rounding only); counts are summed exactly up to
    :math:`N` (doubling from :math:`2^{12}` to :math:`2^{22}` while terms are above
    :math:`10^{-18}` of the sum) and the tail is bounded by the ratio test
    (:math:`t_N r/(1-r)` when the last ratios are at most :math:`r<1`) or, for
    power-law terms, extrapolated (:math:`p \le 1` diverges).

    Limits: a peak narrower than the probe grid's spacing (0.13 in :math:`\log_{10}`
    distance) that is neither at a breakpoint nor near one can be missed; losses
    evaluated in float32 internally are only as accurate as float32; counts whose mass
    lies beyond :math:`2^{22}` are extrapolated.

    **Decision.** ``is_likelihood`` when every :math:`\log Z_a` is finite, its error
    estimate is at most 1e-10, and its variation over the predictions is at most
    ``TOLERANCE`` = 1e-8 (the quadrature is good to ~1e-11; see the module constant).

    **Search** (``a=None``). The variation is computed for :math:`a = 2^k`,
    :math:`k = -2..2`, the grid widening to :math:`2^{\pm 10}` while its best point is
    at an edge. If every scale passes, the loss is a likelihood for **any** :math:`a`
    (``scales="any"``: a location loss such as SSE, Huber or log-cosh, whose
    :math:`Z_a` does not depend on the prediction at all; ``a`` is reported as 1 and
    :math:`b = \log Z_1`). When some but not all pass (``"range"``: the Cauchy loss
    :math:`\log(1+r^2)` normalises only for :math:`a > 1/2`), ``a`` is 1 if it passes,
    else the smallest passing scale (``"isolated"`` if a relative change of
    :math:`10^{-3}` either way fails); when none passes, the variation is minimised
    over :math:`\log a` by golden-section search around the best grid point (it is
    V-shaped around a scale that works, so it falls in proportion to the bracket; the
    search stops at width :math:`10^{-12}`, or when 10 steps do not halve the best
    variation), a result within
    :math:`10^{-6}` of a simple fraction :math:`k/d` (:math:`k \le 64`,
    :math:`d \le 16`: 1, 2, 1/3, 3/4, ...) is snapped to it, and
    the scale is reported ``"isolated"`` if it passes (BCE: :math:`a = 1` exactly,
    because :math:`\sigma(z)^a + \sigma(-z)^a = 1` only there) or ``"none"`` (then
    ``a = 1``).

    Args:
      loss: ``loss(y, pred) -> scalar`` for one target and one prediction (JAX).
      support: one of the supports above.
      predictions: the predictions to compare, an array (or pytree of arrays) whose
        leading axis lists them, at least two; default a spread of typical values for
        the support (logits for binary and categorical: pass probabilities yourself
        if the loss takes them; for counts 0.2 to 5, valid as rates and as log-rates).
      a: the scale to test; ``None`` searches (above). Must be positive.
      base: optional ``log h(y)`` of a base measure (e.g.
        ``lambda k: -jax.scipy.special.gammaln(k + 1.0)`` for counts).

    Returns:
      An :class:`Audit`.

    Raises:
      ValueError: an unknown support, fewer than two predictions, a non-positive
        ``a``, a loss that does not return a scalar.

    Runs eagerly on the host, inside ``jax.enable_x64`` for its own computations only
    (the setting is restored on return); not traceable.

    Example:
      >>> import jax.numpy as jnp, nllax
      >>> r = nllax.audit(lambda y, p: (y - p) ** 2, support="real")
      >>> r.is_likelihood, r.scales, round(r.b, 12)  # b = log sqrt(pi): a Gaussian
      (True, 'any', 0.572364942925)
      >>> r = nllax.audit(lambda y, z: jnp.logaddexp(0.0, z) - y * z, support="binary")
      >>> r.is_likelihood, r.a  # BCE with logits: Bernoulli, only at a = 1
      (True, 1.0)
    """
    if not callable(loss):
        raise TypeError(f"{_FN}: `loss` must be callable, got {type(loss).__name__}.")
    if base is not None and not callable(base):
        raise TypeError(f"{_FN}: `base` must be callable (log h(y)), got {type(base).__name__}.")
    support = _check_support(support)
    if a is not None:
        a = float(a)
        if not (math.isfinite(a) and a > 0):
            raise ValueError(f"{_FN}: `a` must be a positive finite number, got {a!r}.")
    if predictions is None:
        predictions = _default_predictions(support)
    preds = _split(predictions)
    with jax.enable_x64(True):
        # Shape errors surface here, once, with the audit's message.
        y0 = np.zeros(1, np.int64 if support in ("binary", "counts") or isinstance(
            support, tuple) else np.float64)
        jax.eval_shape(lambda y, p: _log_f_impl(loss, base, y, p, 1.0), y0, preds[0])
        if a is None:
            scales, a_used, tried = _search(loss, base, support, preds)
            logz, err, var = tried[a_used] if a_used in tried else _evaluate(
                loss, base, support, preds, a_used)
            search = tuple(sorted((k, v[2]) for k, v in tried.items()))
        else:
            scales, a_used, search = "given", a, ()
            logz, err, var = _evaluate(loss, base, support, preds, a)
    ok = _passes(logz, err, var)
    b = float(np.mean(logz)) if ok else None
    reason = _reason(ok, scales, a_used, logz, err, var)
    return Audit(ok, float(a_used), b, logz, var, err, scales, search, reason, support,
                 predictions, loss, base)


def _reason(ok, scales, a, logz, err, var) -> str:
    if ok:
        extra = {"any": " for every scale a tried (a location loss)",
                 "range": f" for a range of scales, including a = {a:.12g}",
                 "isolated": f" only at a = {a:.12g}",
                 "given": f" at a = {a:.12g}"}[scales]
        return (f"a likelihood{extra}: log Z = {float(np.mean(logz)):.12g} for every "
                f"prediction (variation {var:.1e})")
    if np.any(np.isnan(logz)):
        return f"the loss is NaN somewhere on the support (a = {a:.6g}); check the support"
    if np.any(logz == math.inf):
        return (f"not a likelihood at a = {a:.6g}: exp(-a * loss) has infinite mass for "
                f"{int(np.sum(logz == math.inf))} of {len(logz)} predictions")
    if np.any(logz == -math.inf):
        return f"not a likelihood at a = {a:.6g}: exp(-a * loss) has no mass for some predictions"
    if var > TOLERANCE:
        what = "no scale a tried works; " if scales == "none" else ""
        return (f"not a likelihood: {what}log Z varies by {var:.3g} over the predictions "
                f"at a = {a:.6g} (corrected NLL: a * loss + log Z(pred))")
    return (f"undecided: the quadrature did not converge (estimated error "
            f"{float(np.nanmax(err)):.1e} on log Z)")
