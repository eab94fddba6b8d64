"""Section 1: evaluation throughput of each family's NLL, value and value-and-gradient.

Every implementation computes the family's summed NLL (or the classical loss that differs
from it by a positive factor and a constant) of float32 data, differentiated with respect
to the model parameter (``loc``, logits or log-rate), so that all gradients are parallel;
the benchmark checks that they are (cosine with nllax's gradient).

The memory-bandwidth floor is a jitted pass that reads exactly the same input bytes and
does nothing else (``sum(data) + sum(param)``); the value-and-gradient floor also writes
one n-sized gradient (``value_and_grad`` of ``sum(param**2)/2 + sum(data)``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import nllax
import optax
from _libs import get
from _measure import compile_jax, time_round_robin

F32 = np.float32
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclasses.dataclass
class Impl:
    name: str  # shown in the tables
    library: str  # "nllax", "jax.numpy", "optax", "jax.scipy.stats", "distrax", "numpyro", "torch"
    fn: Callable[[dict, Any], Any]  # (data dict, param) -> scalar
    note: str = ""

    @property
    def is_jax(self) -> bool:
        return self.library != "torch"

    @property
    def is_nllax(self) -> bool:
        return self.library == "nllax"


@dataclasses.dataclass
class Family:
    name: str
    data: Callable[[int, np.random.Generator], tuple[dict, np.ndarray]]
    impls: Callable[[], list[Impl]]
    primary: str  # the nllax implementation whose targets are reported
    layout: str  # how n maps to shapes, for the report


# ---------------------------------------------------------------------------- data


def _gaussian_data(n, rng):
    y = rng.standard_normal(n).astype(F32)
    loc = (y + 0.5 * rng.standard_normal(n)).astype(F32)
    return {"y": y, "s": F32(1.3)}, loc


def _gaussian_weighted_data(n, rng):
    d, loc = _gaussian_data(n, rng)
    d["w"] = np.ones(n, F32)
    d["m"] = np.ones(n, bool)
    return d, loc


def _bernoulli_data(n, rng):
    z = (2.0 * rng.standard_normal(n)).astype(F32)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(F32)
    return {"y": y}, z


def _categorical_data(n, rng):
    m, k = max(n // 10, 1), 10
    z = rng.standard_normal((m, k)).astype(F32)
    labels = rng.integers(0, k, m).astype(np.int32)
    return {"y": labels}, z


def _poisson_data(n, rng):
    eta = (1.0 + 0.5 * rng.standard_normal(n)).astype(F32)
    k = rng.poisson(np.exp(eta)).astype(F32)
    return {"y": k}, eta


# ---------------------------------------------------------------------------- impls


def _t():
    return get("torch")


def _location_scale_competitors(dist: str, torch_loss: str):
    """distrax / numpyro / torch rows for a location-scale family named ``dist`` (the class
    name in all three), plus torch's loss form ``torch_loss`` (summed)."""
    out = []
    if (dx := get("distrax")) is not None:
        out.append(Impl(f"distrax.{dist}", "distrax",
                        lambda d, p: -jnp.sum(getattr(dx, dist)(p, d["s"]).log_prob(d["y"]))))
    if (nd := get("numpyro.distributions")) is not None:
        out.append(Impl(f"numpyro {dist}", "numpyro",
                        lambda d, p: -jnp.sum(getattr(nd, dist)(p, d["s"]).log_prob(d["y"]))))
    if (t := _t()) is not None:
        loss = getattr(t.nn.functional, torch_loss)
        out += [
            Impl(f"torch F.{torch_loss}", "torch",
                 lambda d, p: loss(p, d["y"], reduction="sum"), "loss form"),
            Impl(f"torch.distributions.{dist}", "torch",
                 lambda d, p: -getattr(t.distributions, dist)(p, d["s"], validate_args=False)
                 .log_prob(d["y"]).sum()),
        ]
    return out


def _gaussian_impls():
    out = [
        Impl("nllax.gaussian.nll", "nllax", lambda d, p: nllax.gaussian.nll(d["y"], p, d["s"])),
        Impl("nllax.losses.sse", "nllax", lambda d, p: nllax.losses.sse(d["y"], p), "loss form"),
        Impl(
            "hand-written jnp",
            "jax.numpy",
            lambda d, p: jnp.sum(
                0.5 * jnp.square((d["y"] - p) / d["s"]) + jnp.log(d["s"]) + _HALF_LOG_2PI
            ),
        ),
        Impl(
            "optax.losses.squared_error", "optax",
            lambda d, p: jnp.sum(optax.losses.squared_error(p, d["y"])), "loss form",
        ),
        Impl(
            "jax.scipy.stats.norm.logpdf", "jax.scipy.stats",
            lambda d, p: -jnp.sum(jax.scipy.stats.norm.logpdf(d["y"], p, d["s"])),
        ),
    ]
    return out + _location_scale_competitors("Normal", "mse_loss")


def _gaussian_weighted_impls():
    # The reduction machinery when it is used: all-ones weights and an all-True mask
    # (reads 5 more bytes per observation than the others: GB/s counts y and loc only).
    return [
        Impl("nllax.gaussian.nll", "nllax", lambda d, p: nllax.gaussian.nll(d["y"], p, d["s"])),
        Impl(
            "nllax.gaussian.nll(weights=, where=)", "nllax",
            lambda d, p: nllax.gaussian.nll(d["y"], p, d["s"], weights=d["w"], where=d["m"]),
        ),
        Impl(
            "hand-written jnp (weights, where)", "jax.numpy",
            lambda d, p: jnp.sum(jnp.where(
                d["m"],
                d["w"] * (0.5 * jnp.square((d["y"] - p) / d["s"]) + jnp.log(d["s"]) + _HALF_LOG_2PI),
                0.0,
            )),
        ),
    ]


def _laplace_impls():
    out = [
        Impl("nllax.laplace.nll", "nllax", lambda d, p: nllax.laplace.nll(d["y"], p, d["s"])),
        Impl("nllax.losses.sae", "nllax", lambda d, p: nllax.losses.sae(d["y"], p), "loss form"),
        Impl(
            "hand-written jnp", "jax.numpy",
            lambda d, p: jnp.sum(jnp.abs(d["y"] - p) / d["s"] + jnp.log(2.0 * d["s"])),
        ),
        Impl("jax.scipy.stats.laplace.logpdf", "jax.scipy.stats",
             lambda d, p: -jnp.sum(jax.scipy.stats.laplace.logpdf(d["y"], p, d["s"]))),
    ]
    return out + _location_scale_competitors("Laplace", "l1_loss")


def _bernoulli_impls():
    out = [
        Impl("nllax.bernoulli.nll", "nllax", lambda d, p: nllax.bernoulli.nll(d["y"], logits=p)),
        Impl("hand-written jnp softplus(z) - y z", "jax.numpy",
             lambda d, p: jnp.sum(jax.nn.softplus(p) - d["y"] * p)),
        Impl("optax sigmoid_binary_cross_entropy", "optax",
             lambda d, p: jnp.sum(optax.losses.sigmoid_binary_cross_entropy(p, d["y"]))),
        Impl("jax.scipy.stats.bernoulli.logpmf", "jax.scipy.stats",
             lambda d, p: -jnp.sum(jax.scipy.stats.bernoulli.logpmf(d["y"], jax.nn.sigmoid(p))),
             "probs = sigmoid(z): no logits form"),
    ]
    if (dx := get("distrax")) is not None:
        out.append(Impl("distrax.Bernoulli(logits)", "distrax",
                        lambda d, p: -jnp.sum(dx.Bernoulli(logits=p).log_prob(d["y"]))))
    if (nd := get("numpyro.distributions")) is not None:
        out.append(Impl("numpyro BernoulliLogits", "numpyro",
                        lambda d, p: -jnp.sum(nd.BernoulliLogits(p).log_prob(d["y"]))))
    if (t := _t()) is not None:
        F = t.nn.functional
        out += [
            Impl("torch F.binary_cross_entropy_with_logits", "torch",
                 lambda d, p: F.binary_cross_entropy_with_logits(p, d["y"], reduction="sum")),
            Impl("torch.distributions.Bernoulli(logits)", "torch",
                 lambda d, p: -t.distributions.Bernoulli(logits=p, validate_args=False)
                 .log_prob(d["y"]).sum()),
        ]
    return out


def _categorical_impls():
    def hand(d, p):
        picked = jnp.take_along_axis(p, d["y"][:, None], axis=-1)[:, 0]
        return jnp.sum(jax.nn.logsumexp(p, axis=-1) - picked)

    out = [
        Impl("nllax.categorical.nll", "nllax",
             lambda d, p: nllax.categorical.nll(d["y"], logits=p)),
        Impl("hand-written jnp logsumexp", "jax.numpy", hand),
        Impl("optax softmax_cross_entropy_with_integer_labels", "optax",
             lambda d, p: jnp.sum(optax.losses.softmax_cross_entropy_with_integer_labels(p, d["y"]))),
    ]
    if (dx := get("distrax")) is not None:
        out.append(Impl("distrax.Categorical(logits)", "distrax",
                        lambda d, p: -jnp.sum(dx.Categorical(logits=p).log_prob(d["y"]))))
    if (nd := get("numpyro.distributions")) is not None:
        out.append(Impl("numpyro CategoricalLogits", "numpyro",
                        lambda d, p: -jnp.sum(nd.CategoricalLogits(p).log_prob(d["y"]))))
    if (t := _t()) is not None:
        F = t.nn.functional
        out += [
            Impl("torch F.cross_entropy", "torch",
                 lambda d, p: F.cross_entropy(p, d["y"], reduction="sum")),
            Impl("torch.distributions.Categorical(logits)", "torch",
                 lambda d, p: -t.distributions.Categorical(logits=p, validate_args=False)
                 .log_prob(d["y"]).sum()),
        ]
    return out


def _poisson_impls():
    out = [
        Impl("nllax.poisson.nll", "nllax",
             lambda d, p: nllax.poisson.nll(d["y"], log_rate=p), "saddle-point form, full NLL"),
        Impl("nllax.losses.poisson", "nllax",
             lambda d, p: nllax.losses.poisson(d["y"], p), "simple form, loss"),
        Impl("hand-written jnp exp(η) - kη", "jax.numpy",
             lambda d, p: jnp.sum(jnp.exp(p) - d["y"] * p), "loss"),
        Impl("hand-written jnp + gammaln(k+1)", "jax.numpy",
             lambda d, p: jnp.sum(jnp.exp(p) - d["y"] * p + jax.scipy.special.gammaln(d["y"] + 1)),
             "full NLL"),
        Impl("jax.scipy.stats.poisson.logpmf", "jax.scipy.stats",
             lambda d, p: -jnp.sum(jax.scipy.stats.poisson.logpmf(d["y"], jnp.exp(p))),
             "full NLL, rate = exp(η)"),
    ]
    if (nd := get("numpyro.distributions")) is not None:
        out.append(Impl("numpyro Poisson", "numpyro",
                        lambda d, p: -jnp.sum(nd.Poisson(jnp.exp(p)).log_prob(d["y"])),
                        "full NLL, rate = exp(η)"))
    if (t := _t()) is not None:
        F = t.nn.functional
        out += [
            Impl("torch F.poisson_nll_loss", "torch",
                 lambda d, p: F.poisson_nll_loss(p, d["y"], log_input=True, full=False,
                                                 reduction="sum"), "loss"),
            Impl("torch.distributions.Poisson", "torch",
                 lambda d, p: -t.distributions.Poisson(t.exp(p), validate_args=False)
                 .log_prob(d["y"]).sum(), "full NLL"),
        ]
    return out


FAMILIES = [
    Family("Gaussian", _gaussian_data, _gaussian_impls, "nllax.gaussian.nll", "n"),
    Family("Laplace", lambda n, r: _gaussian_data(n, r), _laplace_impls, "nllax.laplace.nll", "n"),
    Family("Bernoulli (logits)", _bernoulli_data, _bernoulli_impls, "nllax.bernoulli.nll", "n"),
    Family("Categorical (integer labels)", _categorical_data, _categorical_impls,
           "nllax.categorical.nll", "n/10 × 10"),
    Family("Poisson (log-rate)", _poisson_data, _poisson_impls, "nllax.poisson.nll", "n"),
    Family("Gaussian with weights= and where=", _gaussian_weighted_data, _gaussian_weighted_impls,
           "nllax.gaussian.nll(weights=, where=)", "n"),
]


# ---------------------------------------------------------------------------- running


def _floor_value(d, p):
    return jnp.sum(d["y"].astype(jnp.float32)) + jnp.sum(p)


def _floor_vg(p, d):
    return 0.5 * jnp.sum(jnp.square(p)) + jnp.sum(d["y"].astype(jnp.float32))


def _flip(fn):
    return lambda p, d: fn(d, p)


@dataclasses.dataclass
class Row:
    family: str
    n: int
    platform: str
    impl: str
    library: str
    note: str
    bytes_read: int
    value: Any = None  # Timing
    vg: Any = None  # Timing
    compile_value_s: float | None = None
    compile_vg_s: float | None = None
    temp_value: int | None = None
    temp_vg: int | None = None
    grad_cos: float | None = None
    error: str = ""


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else float("nan")


def _torch_device(platform: str) -> str:
    return "cuda" if platform == "gpu" else "cpu"


def run_family(fam: Family, n: int, device: Any, *, budget_s: float, log=print) -> list[Row]:
    """Measures every available implementation of one family at one size on one device."""
    platform = device.platform
    rng = np.random.default_rng(0)
    d_np, p_np = fam.data(n, rng)
    d = {k: jax.device_put(v, device) for k, v in d_np.items()}
    p = jax.device_put(p_np, device)
    bytes_read = int(d_np["y"].nbytes + p_np.nbytes)
    impls = fam.impls()
    t = get("torch")
    tdev = _torch_device(platform)
    use_torch = t is not None and (tdev == "cpu" or t.cuda.is_available())
    if use_torch:
        d_t = {k: t.as_tensor(np.asarray(v)).to(tdev) for k, v in d_np.items()}
        if d_np["y"].dtype == np.int32:
            d_t["y"] = d_t["y"].long()  # torch's losses index with int64 labels
        p_t = t.as_tensor(p_np).to(tdev)
        p_tg = p_t.clone().requires_grad_(True)
    sync = (lambda: t.cuda.synchronize()) if (use_torch and tdev == "cuda") else (lambda: None)

    rows: list[Row] = []
    value_calls, vg_calls = [], []

    def add(row, vcall, gcall):
        rows.append(row)
        value_calls.append(vcall)
        vg_calls.append(gcall)

    # Floors first: same bytes, no work.
    fv = compile_jax(_floor_value, d, p)
    fg = compile_jax(jax.value_and_grad(_floor_vg), p, d)
    add(
        Row(fam.name, n, platform, "floor: read the same bytes", "floor", "", bytes_read,
            compile_value_s=fv.compile_s, compile_vg_s=fg.compile_s,
            temp_value=fv.temp_bytes, temp_vg=fg.temp_bytes),
        (lambda c=fv.call: c(d, p)), (lambda c=fg.call: c(p, d)),
    )
    ref_grad = None
    for im in impls:
        row = Row(fam.name, n, platform, im.name, im.library, im.note, bytes_read)
        try:
            if im.is_jax:
                cv = compile_jax(im.fn, d, p)
                cg = compile_jax(jax.value_and_grad(_flip(im.fn)), p, d)
                row.compile_value_s, row.compile_vg_s = cv.compile_s, cg.compile_s
                row.temp_value, row.temp_vg = cv.temp_bytes, cg.temp_bytes
                vcall = lambda c=cv.call: c(d, p)  # noqa: E731
                gcall = lambda c=cg.call: c(p, d)  # noqa: E731
                grad = np.asarray(gcall()[1])
            else:
                if not use_torch:
                    continue

                def vcall(fn=im.fn):
                    with t.no_grad():
                        out = fn(d_t, p_t)
                    sync()
                    return out

                def gcall(fn=im.fn):
                    out = fn(d_t, p_tg)
                    (g,) = t.autograd.grad(out, p_tg)
                    sync()
                    return out, g

                grad = gcall()[1].detach().cpu().numpy()
            if ref_grad is None and im.is_nllax:
                ref_grad = grad
            row.grad_cos = _cos(grad, ref_grad) if ref_grad is not None else None
            del grad
        except Exception as e:  # noqa: BLE001 - a competitor that fails is reported, not fatal
            row.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
            rows.append(row)
            log(f"    {im.name}: FAILED {row.error}")
            continue
        add(row, vcall, gcall)

    timed = [r for r in rows if not r.error]
    for r, tm in zip(timed, time_round_robin(value_calls, budget_s=budget_s)):
        r.value = tm
    for r, tm in zip(timed, time_round_robin(vg_calls, budget_s=budget_s)):
        r.vg = tm
    for r in timed:
        log(f"    {r.impl:48s} value {r.value.ms():>24s} ms   v&g {r.vg.ms():>24s} ms")
    return rows


def run(sizes, devices, *, budget_s: float, log=print) -> list[Row]:
    rows: list[Row] = []
    for device in devices:
        for n in sizes:
            for fam in FAMILIES:
                log(f"  [{device.platform}] {fam.name}, n = {n:.0e}")
                rows += run_family(fam, n, device, budget_s=budget_s, log=log)
    return rows
