"""The loss audit's data: every optax and PyTorch loss that compares a prediction with a
target, the nllax losses, and two common Keras-style ones, with the verdict each must get.

Each case is a per-observation loss ``loss(y, pred)`` for :func:`nllax.audit`. optax
losses are called as they are; PyTorch losses are re-expressed in ``jax.numpy`` (the
tests may not import torch), and ``bench/audit_torch.py`` checks every re-expression
against the torch function. ``docs/audit.md`` is generated from this table
(``python bench/audit_torch.py --markdown``) and a test keeps it in step.

``b`` is the closed form of log Z_a where one exists (``None`` where the loss is not a
likelihood); the audit's b must match it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import gammaln

import nllax

K = 4  # classes of the categorical cases


def onehot(k):
    return jax.nn.one_hot(k, K, dtype=jnp.float64)


def pm1(y):
    """{0, 1} labels as the {-1, +1} targets of margin losses."""
    return 2.0 * y - 1.0


def huber_log_z(a, delta):
    """log of int exp(-a huber_delta(r)) dr = 2 [sqrt(pi/2a) erf(delta sqrt(a/2)) +
    exp(-a delta^2/2) / (a delta)] (the quadratic core plus the two exponential tails)."""
    core = math.sqrt(math.pi / (2 * a)) * math.erf(delta * math.sqrt(a / 2))
    tail = math.exp(-a * delta**2 / 2) / (a * delta)
    return math.log(2 * (core + tail))


def log_cosh_log_z(a):
    """log of int cosh(r)^-a dr = B(a/2, 1/2) = sqrt(pi) Gamma(a/2) / Gamma((a+1)/2)
    (pi at a = 1: the hyperbolic secant distribution)."""
    return 0.5 * math.log(math.pi) + math.lgamma(a / 2) - math.lgamma((a + 1) / 2)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    source: str                  # "optax", "torch", "nllax", "other"
    support: Any
    loss: Callable[..., Any]
    is_likelihood: bool
    scales: str                  # expected Audit.scales
    a: float                     # expected Audit.a
    likelihood: str = ""         # the implied density, in words
    b: Callable[[float], float] | None = None  # closed-form log Z_a
    predictions: Any = None
    base: Callable[..., Any] | None = None
    base_text: str = ""
    note: str = ""


PROB = np.array([0.02, 0.2, 0.5, 0.7, 0.97])               # probabilities (BCELoss takes them)
GAUSS_PRED = (np.array([-1.0, 0.0, 2.0, 0.5, 3.0]),        # (mean, variance) pairs
              np.array([0.25, 1.0, 4.0, 0.01, 100.0]))
DIST = np.array([0.0, 0.3, 1.0, 2.0, 5.0])                 # distances >= 0 (HingeEmbeddingLoss)
def LOG_FACTORIAL(k):  # noqa: N802  (a constant of the table) log h(k) for h(k) = 1/k!
    return -gammaln(k + 1.0)


def _stirling(k):
    # torch's full=True term: k log k - k + log(2 pi k)/2, for k > 1 only
    kf = jnp.maximum(k, 1.0)
    s = kf * jnp.log(kf) - kf + 0.5 * jnp.log(2 * jnp.pi * kf)
    return jnp.where(k > 1, s, 0.0)


def _log_softmax(z):
    return jax.nn.log_softmax(z)


CASES: list[Case] = [
    # ------------------------------------------------------------------ optax
    Case("optax.losses.squared_error", "optax", "real",
         lambda y, p: optax.losses.squared_error(p, y), True, "any", 1.0,
         "Normal(pred, sigma^2 = 1/(2a))", lambda a: 0.5 * math.log(math.pi / a)),
    Case("optax.losses.l2_loss", "optax", "real",
         lambda y, p: optax.losses.l2_loss(p, y), True, "any", 1.0,
         "Normal(pred, sigma^2 = 1/a)", lambda a: 0.5 * math.log(2 * math.pi / a)),
    Case("optax.losses.huber_loss (delta=1)", "optax", "real",
         lambda y, p: optax.losses.huber_loss(p, y, delta=1.0), True, "any", 1.0,
         "Huber density exp(-a huber(r)) / Z", lambda a: huber_log_z(a, 1.0)),
    Case("optax.losses.log_cosh", "optax", "real",
         lambda y, p: optax.losses.log_cosh(p, y), True, "any", 1.0,
         "hyperbolic secant at a = 1 (Z = pi); cosh^-a / B(a/2, 1/2)", log_cosh_log_z),
    Case("optax.losses.sigmoid_binary_cross_entropy", "optax", "binary",
         lambda y, z: optax.losses.sigmoid_binary_cross_entropy(z, y), True, "isolated", 1.0,
         "Bernoulli(sigmoid(logit))", lambda a: 0.0),
    Case("optax.losses.sigmoid_binary_cross_entropy, soft targets y in (0, 1)", "optax",
         "unit", lambda y, z: optax.losses.sigmoid_binary_cross_entropy(z, y), False, "none",
         1.0, note="at a = 1 the continuous-Bernoulli normaliser Z = (2 sigmoid(z) - 1) / z "
                   "varies with the logit z"),
    Case("optax.losses.sigmoid_focal_loss (gamma=2)", "optax", "binary",
         lambda y, z: optax.losses.sigmoid_focal_loss(z, y, gamma=2.0), False, "none", 1.0),
    Case("optax.losses.sigmoid_focal_loss (alpha=0.25, gamma=2)", "optax", "binary",
         lambda y, z: optax.losses.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0), False,
         "none", 1.0),
    Case("optax.losses.hinge_loss", "optax", "binary",
         lambda y, z: optax.losses.hinge_loss(z, pm1(y)), False, "none", 1.0),
    Case("optax.losses.perceptron_loss", "optax", "binary",
         lambda y, z: optax.losses.perceptron_loss(z, pm1(y)), False, "none", 1.0),
    Case("optax.losses.binary_dice_loss (one element)", "optax", "binary",
         lambda y, z: optax.losses.binary_dice_loss(z[None, None], y[None, None].astype(
             jnp.float64))[0], False, "none", 1.0),
    Case("optax.losses.sparsemax_loss (binary)", "optax", "binary",
         lambda y, z: optax.losses.sparsemax_loss(z, y), False, "none", 1.0),
    Case("optax.losses.softmax_cross_entropy_with_integer_labels", "optax", ("categorical", K),
         lambda k, z: optax.losses.softmax_cross_entropy_with_integer_labels(z, k), True,
         "isolated", 1.0, "Categorical(softmax(logits))", lambda a: 0.0),
    Case("optax.losses.softmax_cross_entropy, smooth_labels(alpha=0.1)", "optax",
         ("categorical", K),
         lambda k, z: optax.losses.softmax_cross_entropy(z, optax.losses.smooth_labels(
             onehot(k), 0.1)), False, "none", 1.0),
    Case("optax.losses.poly_loss_cross_entropy (epsilon=2)", "optax", ("categorical", K),
         lambda k, z: optax.losses.poly_loss_cross_entropy(z, onehot(k), epsilon=2.0), False,
         "none", 1.0),
    Case("optax.losses.kl_divergence (one-hot targets)", "optax", ("categorical", K),
         lambda k, z: optax.losses.kl_divergence(_log_softmax(z), onehot(k)), True,
         "isolated", 1.0, "Categorical(softmax(logits))", lambda a: 0.0),
    Case("optax.losses.safe_softmax_cross_entropy (one-hot targets)", "optax",
         ("categorical", K),
         lambda k, z: optax.losses.safe_softmax_cross_entropy(z, onehot(k)), True,
         "isolated", 1.0, "Categorical(softmax(logits))", lambda a: 0.0),
    Case("optax.losses.generalized_kl_divergence (one-hot targets)", "optax", ("categorical", K),
         lambda k, z: optax.losses.generalized_kl_divergence(_log_softmax(z), onehot(k)),
         True,
         "isolated", 1.0, "Categorical(softmax(logits)) (the extra sum(p) - sum(t) is 0)",
         lambda a: 0.0),
    Case("optax.losses.multiclass_hinge_loss", "optax", ("categorical", K),
         lambda k, z: optax.losses.multiclass_hinge_loss(z, k), False, "none", 1.0),
    Case("optax.losses.multiclass_perceptron_loss", "optax", ("categorical", K),
         lambda k, z: optax.losses.multiclass_perceptron_loss(z, k), False, "none", 1.0),
    Case("optax.losses.multiclass_sparsemax_loss", "optax", ("categorical", K),
         lambda k, z: optax.losses.multiclass_sparsemax_loss(z[None], k[None])[0], False,
         "none", 1.0),
    Case("optax.losses.cosine_distance (one-hot targets)", "optax", ("categorical", K),
         lambda k, z: optax.losses.cosine_distance(z, onehot(k)), False, "none", 1.0),
    Case("optax.losses.dice_loss (one element)", "optax", ("categorical", K),
         lambda k, z: optax.losses.dice_loss(z[None, None], onehot(k)[None, None])[0], False,
         "none", 1.0),
    # ------------------------------------------------------------------ PyTorch
    Case("torch.nn.L1Loss", "torch", "real", lambda y, p: jnp.abs(p - y), True, "any", 1.0,
         "Laplace(pred, 1/a)", lambda a: math.log(2 / a)),
    Case("torch.nn.MSELoss", "torch", "real", lambda y, p: (p - y) ** 2, True, "any", 1.0,
         "Normal(pred, sigma^2 = 1/(2a))", lambda a: 0.5 * math.log(math.pi / a)),
    Case("torch.nn.HuberLoss (delta=1)", "torch", "real",
         lambda y, p: jnp.where(jnp.abs(p - y) < 1.0, 0.5 * (p - y) ** 2,
                                1.0 * (jnp.abs(p - y) - 0.5 * 1.0)),
         True, "any", 1.0, "Huber density", lambda a: huber_log_z(a, 1.0)),
    Case("torch.nn.SmoothL1Loss (beta=0.5)", "torch", "real",
         lambda y, p: jnp.where(jnp.abs(p - y) < 0.5, 0.5 * (p - y) ** 2 / 0.5,
                                jnp.abs(p - y) - 0.5 * 0.5),
         True, "any", 1.0, "Huber density (smooth L1 = huber_beta / beta)",
         lambda a: huber_log_z(a / 0.5, 0.5)),
    Case("torch.nn.BCEWithLogitsLoss", "torch", "binary",
         lambda y, z: -(y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z)), True,
         "isolated", 1.0, "Bernoulli(sigmoid(logit))", lambda a: 0.0),
    Case("torch.nn.BCEWithLogitsLoss (pos_weight=3)", "torch", "binary",
         lambda y, z: -(3.0 * y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z)),
         False, "none", 1.0),
    Case("torch.nn.BCELoss", "torch", "binary",
         lambda y, p: -(y * jnp.maximum(jnp.log(p), -100.0)
                        + (1 - y) * jnp.maximum(jnp.log1p(-p), -100.0)),
         True, "isolated", 1.0, "Bernoulli(p)", lambda a: 0.0, predictions=PROB),
    Case("torch.nn.CrossEntropyLoss", "torch", ("categorical", K),
         lambda k, z: -_log_softmax(z)[k], True, "isolated", 1.0,
         "Categorical(softmax(logits))", lambda a: 0.0),
    Case("torch.nn.CrossEntropyLoss (label_smoothing=0.1)", "torch", ("categorical", K),
         lambda k, z: -(0.9 * _log_softmax(z)[k] + 0.1 * jnp.mean(_log_softmax(z))), False,
         "none", 1.0),
    Case("torch.nn.NLLLoss (log-softmax inputs)", "torch", ("categorical", K),
         lambda k, z: -_log_softmax(z)[k], True, "isolated", 1.0,
         "Categorical(softmax(logits))", lambda a: 0.0),
    Case("torch.nn.KLDivLoss (log-softmax inputs, one-hot targets, sum)", "torch",
         ("categorical", K),
         lambda k, z: jnp.sum(jax.scipy.special.xlogy(onehot(k), onehot(k))
                              - onehot(k) * _log_softmax(z)),
         True, "isolated", 1.0, "Categorical(softmax(logits))", lambda a: 0.0),
    Case("torch.nn.MultiMarginLoss", "torch", ("categorical", K),
         lambda k, z: jnp.sum(jnp.maximum(0.0, 1.0 - z[k] + z) * (1 - onehot(k))) / K, False,
         "none", 1.0),
    Case("torch.nn.SoftMarginLoss", "torch", "binary",
         lambda y, z: jnp.logaddexp(0.0, -pm1(y) * z), True, "isolated", 1.0,
         "Bernoulli(sigmoid(score)) (the logistic loss)", lambda a: 0.0),
    Case("torch.nn.MultiLabelSoftMarginLoss (one label)", "torch", "binary",
         lambda y, z: -(y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z)), True,
         "isolated", 1.0, "Bernoulli(sigmoid(logit))", lambda a: 0.0),
    Case("torch.nn.HingeEmbeddingLoss (margin=1)", "torch", "binary",
         lambda y, x: jnp.where(y == 1, x, jnp.maximum(0.0, 1.0 - x)), False, "none", 1.0,
         predictions=DIST),
    Case("torch.nn.PoissonNLLLoss", "torch", "counts",
         lambda k, eta: jnp.exp(eta) - k * eta, False, "none", 1.0,
         note="not against counting measure: sum_k lambda^k e^-lambda diverges for "
              "lambda >= 1; with base 1/k! it is Poisson (next row)"),
    Case("torch.nn.PoissonNLLLoss, base measure 1/k!", "torch", "counts",
         lambda k, eta: jnp.exp(eta) - k * eta, True, "isolated", 1.0,
         "Poisson(exp(log_rate)); b = log k! from the base", lambda a: 0.0,
         base=LOG_FACTORIAL, base_text="1/k!"),
    Case("torch.nn.PoissonNLLLoss (full=True)", "torch", "counts",
         lambda k, eta: jnp.exp(eta) - k * eta + _stirling(k), False, "none", 1.0,
         note="Stirling's approximation of log k! is not exact: the normaliser varies "
              "with the rate"),
    Case("torch.nn.PoissonNLLLoss (log_input=False), base 1/k!", "torch", "counts",
         lambda k, lam: lam - k * jnp.log(lam + 1e-8), True, "isolated", 1.0,
         "Poisson(rate + 1e-8), up to exp(1e-8)", lambda a: 1e-8,
         base=LOG_FACTORIAL, base_text="1/k!",
         note="torch's eps=1e-8 inside the log makes Z = exp(1e-8) for every rate"),
    Case("torch.nn.GaussianNLLLoss (full=False)", "torch", "real",
         lambda y, mv: 0.5 * (jnp.log(jnp.maximum(mv[1], 1e-6))
                              + (mv[0] - y) ** 2 / jnp.maximum(mv[1], 1e-6)),
         True, "isolated", 1.0, "Normal(mean, var) without the log(2 pi)/2",
         lambda a: 0.5 * math.log(2 * math.pi), predictions=GAUSS_PRED),
    # ------------------------------------------------------------------ nllax
    Case("nllax.losses.sse", "nllax", "real", lambda y, p: nllax.losses.sse(y, p), True,
         "any", 1.0, "Normal(pred, sigma^2 = 1/(2a))", lambda a: 0.5 * math.log(math.pi / a)),
    Case("nllax.losses.mse", "nllax", "real", lambda y, p: nllax.losses.mse(y, p), True,
         "any", 1.0, "Normal(pred, sigma^2 = 1/(2a)); mean over n: a per observation / n",
         lambda a: 0.5 * math.log(math.pi / a)),
    Case("nllax.losses.sae", "nllax", "real", lambda y, p: nllax.losses.sae(y, p), True,
         "any", 1.0, "Laplace(pred, 1/a)", lambda a: math.log(2 / a)),
    Case("nllax.losses.mae", "nllax", "real", lambda y, p: nllax.losses.mae(y, p), True,
         "any", 1.0, "Laplace(pred, 1/a)", lambda a: math.log(2 / a)),
    Case("nllax.losses.binary_cross_entropy", "nllax", "binary",
         lambda y, z: nllax.losses.binary_cross_entropy(y, z), True, "isolated", 1.0,
         "Bernoulli(sigmoid(logit))", lambda a: 0.0),
    Case("nllax.losses.cross_entropy", "nllax", ("categorical", K),
         lambda k, z: nllax.losses.cross_entropy(k, z), True, "isolated", 1.0,
         "Categorical(softmax(logits))", lambda a: 0.0),
    Case("nllax.losses.poisson, base measure 1/k!", "nllax", "counts",
         lambda k, eta: nllax.losses.poisson(k, eta), True, "isolated", 1.0,
         "Poisson(exp(log_rate)); b = log k! from the base", lambda a: 0.0,
         base=LOG_FACTORIAL, base_text="1/k!"),
    # ------------------------------------------------------------------ others
    Case("mean absolute percentage error |y - p| / |y|", "other", "positive",
         lambda y, p: jnp.abs(y - p) / jnp.abs(y), False, "none", 1.0,
         note="exp(-a |y - p|/y) tends to exp(-a) as y grows: infinite mass for every a"),
    Case("mean squared logarithmic error (log1p y - log1p p)^2", "other", "positive",
         lambda y, p: (jnp.log1p(y) - jnp.log1p(p)) ** 2, False, "none", 1.0,
         note="a Gaussian in log1p(y) cut at y = 0, with Jacobian 1/(1 + y): Z depends on p"),
]

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES)


def _support_text(support) -> str:
    return f"categorical, K = {support[1]}" if isinstance(support, tuple) else support


def _verdict_text(r) -> str:
    if r.is_likelihood:
        return {"any": "**likelihood**, every a", "range": "**likelihood**, a range of a",
                "isolated": f"**likelihood**, only a = {r.a:g}",
                "given": f"**likelihood** at a = {r.a:g}"}[r.scales]
    if r.variation == math.inf:
        return "not a likelihood: Z = inf"
    return f"not a likelihood: log Z varies by {r.variation:.3g}"


def render_markdown(results: dict) -> str:
    """The audit table of docs/audit.md, from ``{case name: Audit}`` (deterministic:
    only digits that the audit's accuracy fixes are printed)."""
    lines = [
        "| loss | support | verdict | b = log Z at that a | implied likelihood, or why not |",
        "|---|---|---|---|---|",
    ]
    for c in CASES:
        r = results[c.name]
        support = _support_text(c.support) + (f", base {c.base_text}" if c.base_text else "")
        b = f"{round(r.b, 10) + 0.0:.10f}" if r.b is not None else "-"  # no "-0.0000000000"
        what = c.likelihood if r.is_likelihood else (c.note or "no a makes Z constant")
        lines.append(f"| `{c.name}` | {support} | {_verdict_text(r)} | {b} | {what} |")
    return "\n".join(lines) + "\n"
