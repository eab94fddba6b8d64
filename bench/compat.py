"""Which nllax NLL each optax / PyTorch / Keras loss equals, with the exact a and b of
``NLL = a * loss + b``, measured; and where a loss deviates from its likelihood.

For each row the script computes, on the same float64 data, the library's loss ``L``
(its default reduction) and its gradient with respect to the prediction, and the nllax
NLL ``N`` (sum) and its gradient, then reports

* ``a`` measured = <grad N, grad L> / |grad L|^2 (least squares over the prediction's
  coordinates) against the formula, and the gradient residual |grad N - a grad L| / |grad N|
  (0 to rounding when the loss *is* the NLL up to a and b);
* ``b`` measured = N - a L against the formula (relative to |N|).

Then the deviations: GaussianNLLLoss's variance clamp (value and gradient below ``eps``),
PoissonNLLLoss(full=True)'s Stirling term against the exact log k!, PoissonNLLLoss's
``eps`` with ``log_input=False``, and Keras' documented clipping.

Keras is not installed: its rows re-express the formulas of its documentation
(tensorflow.org/api_docs/python/tf/keras/losses/<name>) in JAX and are marked so. The
families huber, hyperbolic_secant (log-cosh) and log_normal are written in parallel on
other branches: their NLLs here are this script's own float64 formulas, marked "(own)".

Run (torch is a bench extra; any environment with torch, jax, optax, scipy)::

    PYTHONPATH=src python bench/compat.py              # print the markdown
    PYTHONPATH=src python bench/compat.py --write      # and write docs/compatibility.md
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)  # a benchmark script, not library code

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
from scipy import special, stats  # noqa: E402

import nllax  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compatibility.md"
BEGIN, END = "<!-- compat: begin -->\n", "<!-- compat: end -->\n"

N = 64
K = 4
RNG = np.random.default_rng(20261207)
Y = RNG.normal(size=N) * 2
PRED = RNG.normal(size=N)
BITS = (RNG.uniform(size=N) < 0.4).astype(np.float64)
LOGITS = RNG.normal(size=N) * 2
LABELS = RNG.integers(0, K, size=N)
CLOGITS = RNG.normal(size=(N, K)) * 2
SOFT = special.softmax(RNG.normal(size=(N, K)), axis=-1)
COUNTS = RNG.poisson(3.0, size=N).astype(np.float64)
ETA = RNG.normal(size=N) * 0.5 + 1.0
YPOS = np.exp(RNG.normal(size=N))  # for MSLE: y >= 0
PPOS = np.exp(RNG.normal(size=N) * 0.5)
VAR = np.exp(RNG.normal(size=N))
SIGMA = 0.7
DELTA = 1.3
BETA = 0.8


# ----------------------------------------------------------------------------------------
# value and gradient with respect to the prediction


def torch_vg(fn, pred):
    p = torch.tensor(np.asarray(pred), dtype=torch.float64, requires_grad=True)
    out = fn(p)
    out.backward()
    return float(out.detach()), p.grad.numpy().copy()


def jax_vg(fn, pred):
    v, g = jax.value_and_grad(lambda p: jnp.sum(fn(p)))(jnp.asarray(pred, jnp.float64))
    return float(v), np.asarray(g)


def T(x):
    return torch.tensor(np.asarray(x), dtype=torch.float64)


def onehot(k):
    return np.eye(K)[k]


# ----------------------------------------------------------------------------------------
# own float64 NLLs of the families being written on other branches


def huber_log_z(delta):
    """log of the normaliser of exp(-huber_delta(r)) (scale 1): the Gaussian core
    sqrt(2 pi) (2 Phi(delta) - 1) plus the two exponential tails 2 exp(-delta^2/2)/delta."""
    return math.log(math.sqrt(2 * math.pi) * (2 * special.ndtr(delta) - 1)
                    + 2 * math.exp(-0.5 * delta * delta) / delta)


def huber_rho(r, delta):
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * a - 0.5 * delta * delta)


def huber_nll(y, pred, delta):
    return jnp.sum(huber_rho(y - pred, delta)) + y.shape[0] * huber_log_z(delta)


def logcosh(r):
    a = jnp.abs(r)
    return a + jnp.log1p(jnp.exp(-2 * a)) - math.log(2.0)


def sech_nll(y, pred):
    """p(r) = 1 / (pi cosh r): the density whose NLL is log-cosh (+ log pi)."""
    return jnp.sum(logcosh(y - pred)) + y.shape[0] * math.log(math.pi)


def msle_nll(y, pred, sigma):
    """1 + Y ~ LogNormal(log(1 + pred), sigma): the NLL of y, Jacobian 1/(1 + y)
    included (checked against scipy.stats.lognorm below)."""
    z = (jnp.log1p(y) - jnp.log1p(pred)) / sigma
    return jnp.sum(0.5 * z * z + math.log(sigma) + 0.5 * math.log(2 * math.pi) + jnp.log1p(y))


def expected_categorical_nll(soft, logits):
    """sum_i sum_k p_ik (-log q_ik): the categorical NLL averaged over soft labels,
    through nllax.categorical (every label k against the row's logits)."""
    k = jnp.broadcast_to(jnp.arange(K), soft.shape)
    lp = nllax.categorical.log_prob(k, logits=logits[:, None, :])
    return -jnp.sum(soft * lp)


def entropy(p):
    return float(-np.sum(special.xlogy(p, p)))


LOG_FACT = float(np.sum(special.gammaln(COUNTS + 1)))


# ----------------------------------------------------------------------------------------
# the rows: (library, loss, nllax NLL, a formula, a value, b formula, b value, loss vg,
# nll vg, note)


def rows():
    n = N
    s2 = SIGMA**2
    gauss_b = 0.5 * n * math.log(2 * math.pi * s2)
    out = []

    def add(lib, loss, nll_name, a_txt, a_val, b_txt, b_val, loss_vg, nll_vg, note=""):
        out.append(dict(lib=lib, loss=loss, nll=nll_name, a_txt=a_txt, a=a_val, b_txt=b_txt,
                        b=b_val, loss_vg=loss_vg, nll_vg=nll_vg, note=note))

    gauss = lambda: jax_vg(lambda p: nllax.gaussian.nll(Y, p, SIGMA), PRED)  # noqa: E731
    lap = lambda: jax_vg(lambda p: nllax.laplace.nll(Y, p, BETA), PRED)  # noqa: E731
    bern = lambda: jax_vg(lambda z: nllax.bernoulli.nll(BITS, logits=z), LOGITS)  # noqa: E731
    cat = lambda: jax_vg(lambda z: nllax.categorical.nll(LABELS, logits=z), CLOGITS)  # noqa: E731
    pois = lambda: jax_vg(lambda e: nllax.poisson.nll(COUNTS, log_rate=e), ETA)  # noqa: E731
    hub = lambda: jax_vg(lambda p: huber_nll(jnp.asarray(Y), p, DELTA), PRED)  # noqa: E731
    hub_b = lambda: jax_vg(lambda p: huber_nll(jnp.asarray(Y), p, BETA), PRED)  # noqa: E731
    sech = lambda: jax_vg(lambda p: sech_nll(jnp.asarray(Y), p), PRED)  # noqa: E731
    soft = lambda: jax_vg(lambda z: expected_categorical_nll(SOFT, z), CLOGITS)  # noqa: E731
    h_soft = sum(entropy(p) for p in SOFT)

    # --- PyTorch (default reduction "mean"; input first, target second) ---
    add("torch", "MSELoss", "gaussian.nll(y, pred, σ)", "n/(2σ²)", n / (2 * s2),
        "(n/2) log 2πσ²", gauss_b,
        lambda: torch_vg(lambda p: torch.nn.MSELoss()(p, T(Y)), PRED), gauss)
    add("torch", "L1Loss", "laplace.nll(y, pred, β)", "n/β", n / BETA, "n log 2β",
        n * math.log(2 * BETA),
        lambda: torch_vg(lambda p: torch.nn.L1Loss()(p, T(Y)), PRED), lap)
    add("torch", f"HuberLoss(delta={DELTA})", f"huber(δ={DELTA}) (own)", "n",
        float(n), "n log Z_δ", n * huber_log_z(DELTA),
        lambda: torch_vg(lambda p: torch.nn.HuberLoss(delta=DELTA)(p, T(Y)), PRED), hub,
        "Z_δ = √(2π)(2Φ(δ)−1) + 2e^{−δ²/2}/δ")
    add("torch", f"SmoothL1Loss(beta={BETA})", f"huber(δ={BETA}) (own)", "n β", n * BETA,
        "n log Z_β", n * huber_log_z(BETA),
        lambda: torch_vg(lambda p: torch.nn.SmoothL1Loss(beta=BETA)(p, T(Y)), PRED), hub_b,
        "SmoothL1(β) = Huber(δ=β)/β")
    add("torch", "BCEWithLogitsLoss", "bernoulli.nll(y, logits=z)", "n", float(n), "0", 0.0,
        lambda: torch_vg(lambda z: torch.nn.BCEWithLogitsLoss()(z, T(BITS)), LOGITS), bern)
    add("torch", "CrossEntropyLoss", "categorical.nll(k, logits=z)", "n", float(n), "0", 0.0,
        lambda: torch_vg(lambda z: torch.nn.CrossEntropyLoss()(
            z, torch.tensor(LABELS)), CLOGITS), cat)
    add("torch", "CrossEntropyLoss (probability targets)", "E_p categorical.nll (soft labels)",
        "n", float(n), "0", 0.0,
        lambda: torch_vg(lambda z: torch.nn.CrossEntropyLoss()(z, T(SOFT)), CLOGITS), soft)
    add("torch", "NLLLoss(log_softmax(z))", "categorical.nll(k, logits=z)", "n", float(n),
        "0", 0.0,
        lambda: torch_vg(lambda z: torch.nn.NLLLoss()(
            torch.log_softmax(z, -1), torch.tensor(LABELS)), CLOGITS), cat,
        "NLLLoss of unnormalised scores is no likelihood")
    add("torch", "KLDivLoss(batchmean)(log_softmax(z), p)", "E_p categorical.nll (soft labels)",
        "n", float(n), "Σ H(p_i)", h_soft,
        lambda: torch_vg(lambda z: torch.nn.KLDivLoss(reduction="batchmean")(
            torch.log_softmax(z, -1), T(SOFT)), CLOGITS), soft,
        "KL = cross entropy − H(p)")
    add("torch", "PoissonNLLLoss(log_input=True, full=False)", "poisson.nll(k, log_rate=η)",
        "n", float(n), "Σ log k!", LOG_FACT,
        lambda: torch_vg(lambda e: torch.nn.PoissonNLLLoss(log_input=True, full=False)(
            e, T(COUNTS)), ETA), pois)
    add("torch", "PoissonNLLLoss(log_input=False, full=False)", "poisson.nll(k, rate=λ)",
        "n", float(n), "Σ log k!", LOG_FACT,
        lambda: torch_vg(lambda lam: torch.nn.PoissonNLLLoss(log_input=False, full=False)(
            lam, T(COUNTS)), np.exp(ETA)),
        lambda: jax_vg(lambda lam: nllax.poisson.nll(COUNTS, rate=lam), np.exp(ETA)),
        "log(λ + 1e-8): exact to ~1e-8/λ (see below)")
    stirling = np.where(COUNTS > 1, COUNTS * np.log(np.maximum(COUNTS, 1)) - COUNTS
                        + 0.5 * np.log(2 * np.pi * np.maximum(COUNTS, 1)), 0.0)
    add("torch", "PoissonNLLLoss(log_input=True, full=True)", "poisson.nll(k, log_rate=η)",
        "n", float(n), "Σ (log k! − S(k))", LOG_FACT - float(np.sum(stirling)),
        lambda: torch_vg(lambda e: torch.nn.PoissonNLLLoss(log_input=True, full=True)(
            e, T(COUNTS)), ETA), pois,
        "S(k) = k log k − k + ½ log 2πk for k > 1 only (see below)")
    add("torch", "GaussianNLLLoss(full=False)", "gaussian.nll(y, pred, var=v)", "n", float(n),
        "(n/2) log 2π", 0.5 * n * math.log(2 * math.pi),
        lambda: torch_vg(lambda p: torch.nn.GaussianNLLLoss(full=False)(p, T(Y), T(VAR)),
                         PRED),
        lambda: jax_vg(lambda p: nllax.gaussian.nll(Y, p, var=VAR), PRED),
        "var clamped at eps=1e-6 (see below)")
    add("torch", "GaussianNLLLoss(full=True)", "gaussian.nll(y, pred, var=v)", "n", float(n),
        "0", 0.0,
        lambda: torch_vg(lambda p: torch.nn.GaussianNLLLoss(full=True)(p, T(Y), T(VAR)),
                         PRED),
        lambda: jax_vg(lambda p: nllax.gaussian.nll(Y, p, var=VAR), PRED))

    # --- optax (elementwise / per example; summed here) ---
    add("optax", "l2_loss", "gaussian.nll(y, pred, σ)", "1/σ²", 1 / s2, "(n/2) log 2πσ²",
        gauss_b, lambda: jax_vg(lambda p: optax.losses.l2_loss(p, Y), PRED), gauss,
        "l2_loss = ½ r²")
    add("optax", "squared_error", "gaussian.nll(y, pred, σ)", "1/(2σ²)", 1 / (2 * s2),
        "(n/2) log 2πσ²", gauss_b,
        lambda: jax_vg(lambda p: optax.losses.squared_error(p, Y), PRED), gauss)
    add("optax", f"huber_loss(delta={DELTA})", f"huber(δ={DELTA}) (own)", "1", 1.0,
        "n log Z_δ", n * huber_log_z(DELTA),
        lambda: jax_vg(lambda p: optax.losses.huber_loss(p, Y, delta=DELTA), PRED), hub)
    add("optax", "log_cosh", "hyperbolic secant, p = 1/(π cosh r) (own)", "1", 1.0, "n log π",
        n * math.log(math.pi), lambda: jax_vg(lambda p: optax.losses.log_cosh(p, Y), PRED),
        sech)
    add("optax", "sigmoid_binary_cross_entropy", "bernoulli.nll(y, logits=z)", "1", 1.0, "0",
        0.0, lambda: jax_vg(lambda z: optax.losses.sigmoid_binary_cross_entropy(z, BITS),
                            LOGITS), bern)
    add("optax", "softmax_cross_entropy (one-hot)", "categorical.nll(k, logits=z)", "1", 1.0,
        "0", 0.0, lambda: jax_vg(lambda z: optax.losses.softmax_cross_entropy(
            z, onehot(LABELS)), CLOGITS), cat)
    add("optax", "softmax_cross_entropy (soft labels)", "E_p categorical.nll (soft labels)",
        "1", 1.0, "0", 0.0, lambda: jax_vg(lambda z: optax.losses.softmax_cross_entropy(
            z, SOFT), CLOGITS), soft)
    add("optax", "softmax_cross_entropy_with_integer_labels", "categorical.nll(k, logits=z)",
        "1", 1.0, "0", 0.0,
        lambda: jax_vg(lambda z: optax.losses.softmax_cross_entropy_with_integer_labels(
            z, LABELS), CLOGITS), cat)
    add("optax", "kl_divergence(log_softmax(z), p)", "E_p categorical.nll (soft labels)", "1",
        1.0, "Σ H(p_i)", h_soft,
        lambda: jax_vg(lambda z: optax.losses.kl_divergence(jax.nn.log_softmax(z), SOFT),
                       CLOGITS), soft)

    # --- Keras (documented formulas, re-expressed; mean over the last axis = per example
    # here, then the default "sum_over_batch_size" = mean over the batch) ---
    add("Keras (doc)", "mean_squared_error", "gaussian.nll(y, pred, σ)", "n/(2σ²)",
        n / (2 * s2), "(n/2) log 2πσ²", gauss_b,
        lambda: jax_vg(lambda p: jnp.mean(jnp.square(Y - p)), PRED), gauss)
    add("Keras (doc)", "mean_absolute_error", "laplace.nll(y, pred, β)", "n/β", n / BETA,
        "n log 2β", n * math.log(2 * BETA),
        lambda: jax_vg(lambda p: jnp.mean(jnp.abs(Y - p)), PRED), lap)
    add("Keras (doc)", f"huber(delta={DELTA})", f"huber(δ={DELTA}) (own)", "n", float(n),
        "n log Z_δ", n * huber_log_z(DELTA),
        lambda: jax_vg(lambda p: jnp.mean(huber_rho(Y - p, DELTA)), PRED), hub)
    add("Keras (doc)", "log_cosh", "hyperbolic secant (own)", "n", float(n), "n log π",
        n * math.log(math.pi), lambda: jax_vg(lambda p: jnp.mean(logcosh(p - Y)), PRED), sech)
    add("Keras (doc)", "mean_squared_logarithmic_error", "1+y ~ LogNormal(log(1+pred), σ) (own)",
        "n/(2σ²)", n / (2 * s2), "(n/2) log 2πσ² + Σ log(1+y)",
        gauss_b + float(np.sum(np.log1p(YPOS))),
        lambda: jax_vg(lambda p: jnp.mean(jnp.square(jnp.log1p(YPOS) - jnp.log1p(p))), PPOS),
        lambda: jax_vg(lambda p: msle_nll(jnp.asarray(YPOS), p, SIGMA), PPOS),
        "a likelihood of y (not of log y): the Jacobian enters b")
    add("Keras (doc)", "binary_crossentropy(from_logits=True)", "bernoulli.nll(y, logits=z)",
        "n", float(n), "0", 0.0,
        lambda: jax_vg(lambda z: jnp.mean(optax.losses.sigmoid_binary_cross_entropy(z, BITS)),
                       LOGITS), bern, "from_logits=False clips p to [ε, 1 − ε], ε = 1e-7 (source)")
    add("Keras (doc)", "sparse_categorical_crossentropy(from_logits=True)",
        "categorical.nll(k, logits=z)", "n", float(n), "0", 0.0,
        lambda: jax_vg(lambda z: jnp.mean(-jnp.take_along_axis(
            jax.nn.log_softmax(z), LABELS[:, None], -1)), CLOGITS), cat)
    add("Keras (doc)", "poisson", "poisson.nll(k, rate=λ)", "n", float(n), "Σ log k!", LOG_FACT,
        lambda: jax_vg(lambda lam: jnp.mean(lam - COUNTS * jnp.log(lam)), np.exp(ETA)),
        lambda: jax_vg(lambda lam: nllax.poisson.nll(COUNTS, rate=lam), np.exp(ETA)),
        "documented without eps; the implementation adds 1e-7 inside the log")
    return out


def measure(row):
    lv, lg = row["loss_vg"]()
    nv, ng = row["nll_vg"]()
    lg, ng = lg.ravel(), ng.ravel()
    a = float(np.dot(ng, lg) / np.dot(lg, lg))
    resid = float(np.linalg.norm(ng - a * lg) / np.linalg.norm(ng))
    b = nv - a * lv
    return dict(a_meas=a, a_err=abs(a - row["a"]) / abs(row["a"]), b_meas=b,
                b_err=abs(b - row["b"]) / abs(nv), grad_resid=resid)


def fmt(x):
    return f"{x:.6g}"


def table():
    lines = ["| library | loss | nllax NLL | a | a (formula) | a measured | b | b (formula) "
             "| b measured | \\|Δa\\|/a | \\|Δb\\|/\\|NLL\\| | gradient residual | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    worst = []
    for r in rows():
        m = measure(r)
        worst.append((max(m["a_err"], m["b_err"], m["grad_resid"]), f"{r['lib']} {r['loss']}"))
        lines.append(
            f"| {r['lib']} | `{r['loss']}` | `{r['nll']}` | {r['a_txt']} | {fmt(r['a'])} | "
            f"{fmt(m['a_meas'])} | {r['b_txt']} | {fmt(r['b'])} | {fmt(m['b_meas'])} | "
            f"{m['a_err']:.1e} | {m['b_err']:.1e} | {m['grad_resid']:.1e} | {r['note']} |")
    worst.sort(reverse=True)
    return "\n".join(lines), worst


# ----------------------------------------------------------------------------------------
# deviations


def gaussian_clamp():
    """torch.nn.GaussianNLLLoss clamps var at eps under no_grad: below eps the value uses
    eps and the gradient passes straight through (computed at eps, as if d clamp/d var = 1)."""
    y, mu, eps = 0.5, 0.0, 1e-6
    lines = ["| var | torch loss | nllax NLL − ½log 2π | torch d/dvar | exact d/dvar |",
             "|---|---|---|---|---|"]
    for v in (1e-3, 1e-6, 1e-7, 1e-9):
        vt = torch.tensor([v], dtype=torch.float64, requires_grad=True)
        loss = torch.nn.GaussianNLLLoss(full=False, eps=eps, reduction="sum")(
            torch.tensor([mu], dtype=torch.float64), torch.tensor([y], dtype=torch.float64), vt)
        loss.backward()
        nv, ng = jax.value_and_grad(lambda var: nllax.gaussian.nll(y, mu, var=var))(
            jnp.float64(v))
        lines.append(f"| {v:g} | {float(loss.detach()):.6g} | {float(nv) - 0.5 * math.log(2 * math.pi):.6g}"
                     f" | {float(vt.grad[0]):.6g} | {float(ng):.6g} |")
    return "\n".join(lines)


def poisson_stirling():
    """PoissonNLLLoss(full=True) adds k log k − k + ½ log(2πk) for k > 1 (0 for k <= 1) in
    place of log k!: measured from torch as full − not full, against lgamma(k + 1)."""
    ks = np.array([0, 1, 2, 3, 4, 5, 10, 20, 100, 1000], np.float64)
    eta = torch.zeros(len(ks), dtype=torch.float64)
    kt = torch.tensor(ks, dtype=torch.float64)
    full = torch.nn.PoissonNLLLoss(log_input=True, full=True, reduction="none")(eta, kt)
    part = torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="none")(eta, kt)
    term = (full - part).numpy()
    exact = special.gammaln(ks + 1)
    lines = ["| k | torch's term | log k! | error (term − log k!) | relative |",
             "|---|---|---|---|---|"]
    for k, t, e in zip(ks, term, exact):
        rel = abs(t - e) / e if e else float("nan")
        lines.append(f"| {int(k)} | {t:.6g} | {e:.6g} | {t - e:.3g} | {rel:.2g} |")
    return "\n".join(lines)


def poisson_eps():
    """PoissonNLLLoss(log_input=False) computes rate − k log(rate + eps), eps = 1e-8."""
    lines = ["| rate λ | k | torch loss | exact λ − k log λ | difference |", "|---|---|---|---|---|"]
    for lam in (1.0, 1e-4, 1e-8, 1e-10):
        k = 2.0
        t = torch.nn.PoissonNLLLoss(log_input=False, full=False, reduction="sum")(
            torch.tensor([lam], dtype=torch.float64), torch.tensor([k], dtype=torch.float64))
        exact = lam - k * math.log(lam)
        lines.append(f"| {lam:g} | {k:g} | {float(t):.6g} | {exact:.6g} | {float(t) - exact:.3g} |")
    return "\n".join(lines)


def msle_check():
    """The MSLE likelihood (own formula) against scipy.stats.lognorm, the independent
    reference of the row above."""
    own = float(msle_nll(jnp.asarray(YPOS), jnp.asarray(PPOS), SIGMA))
    ref = -float(np.sum(stats.lognorm.logpdf(1 + YPOS, s=SIGMA, scale=1 + PPOS)))
    return abs(own - ref) / abs(ref)


def huber_z_check():
    """The Huber normaliser against numerical integration of exp(-huber)."""
    from scipy import integrate
    z, _ = integrate.quad(lambda r: math.exp(-float(huber_rho(r, DELTA))), -np.inf, np.inf,
                          epsabs=1e-14, epsrel=1e-13)
    return abs(math.log(z) - huber_log_z(DELTA))


def report():
    tab, worst = table()
    parts = [
        f"Data: n = {N} float64 observations (seed 20261207); σ = {SIGMA}, β = {BETA}, "
        f"δ = {DELTA}, K = {K} classes. a measured = ⟨∇NLL, ∇loss⟩/|∇loss|² over the "
        "prediction; b measured = NLL − a·loss. Largest relative deviations in the table "
        f"(a, b or gradient residual): {worst[0][0]:.1e} ({worst[0][1]}), then "
        f"{worst[1][0]:.1e} ({worst[1][1]}).",
        "",
        tab,
        "",
        f"Own formulas checked: the MSLE log-normal NLL against scipy.stats.lognorm "
        f"(relative difference {msle_check():.1e}); log Z_δ of the Huber density against "
        f"numerical integration (absolute difference {huber_z_check():.1e}).",
        "",
        "### torch.nn.GaussianNLLLoss: the variance clamp (y = 0.5, μ = 0, eps = 1e-6, "
        "full=False)",
        "",
        gaussian_clamp(),
        "",
        "### torch.nn.PoissonNLLLoss(full=True): the Stirling term against log k!",
        "",
        poisson_stirling(),
        "",
        "### torch.nn.PoissonNLLLoss(log_input=False): eps = 1e-8 inside the log",
        "",
        poisson_eps(),
    ]
    return "\n".join(parts) + "\n"


# rows whose loss is known to differ from the likelihood by more than rounding
_INEXACT = ("torch PoissonNLLLoss(log_input=False, full=False)",)


def check(text):
    """Every other row agrees to 64 float64 eps (a few roundings of sums of n = 64 terms,
    relative), and the committed document holds ``text``."""
    _, worst = table()
    bad = [(w, name) for w, name in worst if name not in _INEXACT and w > 64 * 2.0**-52]
    doc = DOC.read_text()
    stale = doc[doc.index(BEGIN) + len(BEGIN):doc.index(END)] != text
    for w, name in bad:
        print(f"deviation {w:.2e} in {name}")
    if stale:
        print("docs/compatibility.md is stale: run bench/compat.py --write")
    return 1 if bad or stale else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write docs/compatibility.md")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every exact row agrees to 64 eps and "
                         "docs/compatibility.md holds this output")
    args = ap.parse_args(argv)
    text = report()
    if args.check:
        return check(text)
    sys.stdout.write(text)
    if args.write:
        doc = DOC.read_text()
        start, stop = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:start] + text + doc[stop:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
