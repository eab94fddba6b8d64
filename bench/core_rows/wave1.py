"""Speed rows of the wave-1 families and losses (bench/core.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nllax
from _libs import get
from core import Row

F32 = np.float32
C = 0.5 * math.log(2 * math.pi)


def _real(n, rng):
    y = rng.standard_normal(n).astype(F32)
    return {"y": y, "p": (y + 0.5 * rng.standard_normal(n)).astype(F32), "s": F32(1.3),
            "ls": (0.3 * rng.standard_normal(n)).astype(F32)}


def _binary(n, rng):
    z = (2 * rng.standard_normal(n)).astype(F32)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(F32)
    return {"y": y, "yb": y > 0.5, "p": z}


def _labels(n, rng):
    m, k = max(n // 10, 1), 10
    return {"y": rng.integers(0, k, m).astype(np.int32), "p": rng.standard_normal((m, k)).astype(F32)}


def _counts(n, rng):
    eta = (1 + 0.5 * rng.standard_normal(n)).astype(F32)
    return {"y": rng.poisson(np.exp(eta)).astype(F32), "p": eta}


def _dist(lib, cls, *args):
    mod = get(lib)
    return None if mod is None else getattr(mod, cls)


def _loc_scale_competitors(cls):
    out = {
        "jax.scipy.stats": lambda d: -jnp.sum(getattr(jax.scipy.stats, cls.lower() if cls != "Normal" else "norm").logpdf(d["y"], d["p"], d["s"])),
    }
    for lib in ("distrax", "numpyro.distributions"):
        D = _dist(lib, cls)
        if D is not None:
            out[lib.split(".")[0]] = lambda d, D=D: -jnp.sum(D(d["p"], d["s"]).log_prob(d["y"]))
    return out


ROWS = [
    Row("gaussian.nll", _real, lambda d: nllax.gaussian.nll(d["y"], d["p"], d["s"]), {
        "hand jnp": lambda d: jnp.sum(0.5 * jnp.square((d["y"] - d["p"]) / d["s"])
                                      + jnp.log(d["s"]) + C),
        "optax squared_error (loss form)": lambda d: jnp.sum(
            optax.losses.squared_error(d["p"], d["y"])),
        **_loc_scale_competitors("Normal"),
    }, "scalar scale"),
    Row("gaussian.nll[log_scale per obs]", _real,
        lambda d: nllax.gaussian.nll(d["y"], d["p"], log_scale=d["ls"]), {
            "hand jnp": lambda d: jnp.sum(0.5 * jnp.square((d["y"] - d["p"]) * jnp.exp(-d["ls"]))
                                          + d["ls"] + C),
        }, "learned noise"),
    Row("laplace.nll", _real, lambda d: nllax.laplace.nll(d["y"], d["p"], d["s"]), {
        "hand jnp": lambda d: jnp.sum(jnp.abs(d["y"] - d["p"]) / d["s"] + jnp.log(2 * d["s"])),
        **{k: v for k, v in _loc_scale_competitors("Laplace").items() if k != "jax.scipy.stats"},
        "jax.scipy.stats": lambda d: -jnp.sum(jax.scipy.stats.laplace.logpdf(
            d["y"], d["p"], d["s"])),
    }),
    Row("bernoulli.nll", _binary, lambda d: nllax.bernoulli.nll(d["y"], logits=d["p"]), {
        "hand jnp": lambda d: jnp.sum(jax.nn.softplus(d["p"]) - d["y"] * d["p"]),
        "optax sigmoid_binary_cross_entropy": lambda d: jnp.sum(
            optax.losses.sigmoid_binary_cross_entropy(d["p"], d["y"])),
    }, "float targets"),
    Row("bernoulli.nll[bool y]", _binary, lambda d: nllax.bernoulli.nll(d["yb"], logits=d["p"]), {
        "hand jnp": lambda d: jnp.sum(jax.nn.softplus(d["p"]) - d["yb"] * d["p"]),
        "optax sigmoid_binary_cross_entropy": lambda d: jnp.sum(
            optax.losses.sigmoid_binary_cross_entropy(d["p"], d["yb"].astype(jnp.float32))),
    }, "bool targets: no range check"),
    Row("categorical.nll", _labels, lambda d: nllax.categorical.nll(d["y"], logits=d["p"]), {
        "optax softmax_cross_entropy_with_integer_labels": lambda d: jnp.sum(
            optax.losses.softmax_cross_entropy_with_integer_labels(d["p"], d["y"])),
        "hand jnp": lambda d: jnp.sum(jax.nn.logsumexp(d["p"], axis=-1) - jnp.take_along_axis(
            d["p"], d["y"][:, None], -1)[:, 0]),
    }, "n/10 rows x 10 classes"),
    Row("poisson.nll", _counts, lambda d: nllax.poisson.nll(d["y"], log_rate=d["p"]), {
        "hand jnp": lambda d: jnp.sum(jnp.exp(d["p"]) - d["y"] * d["p"]
                                      + jax.lax.lgamma(d["y"] + 1)),
        "jax.scipy.stats": lambda d: -jnp.sum(jax.scipy.stats.poisson.logpmf(
            d["y"], jnp.exp(d["p"]))),
    }, "exact log k! (Loader)"),
    Row("logistic.nll", _real, lambda d: nllax.logistic.nll(d["y"], d["p"], d["s"]), {
        "jax.scipy.stats": lambda d: -jnp.sum(jax.scipy.stats.logistic.logpdf(
            (d["y"] - d["p"]) / d["s"]) - jnp.log(d["s"])),
    }),
    Row("losses.sse", _real, lambda d: nllax.losses.sse(d["y"], d["p"]), {
        "optax squared_error": lambda d: jnp.sum(optax.losses.squared_error(d["p"], d["y"])),
        "hand jnp": lambda d: jnp.sum(jnp.square(d["y"] - d["p"])),
    }),
    Row("losses.mse", _real, lambda d: nllax.losses.mse(d["y"], d["p"]), {
        "optax squared_error": lambda d: jnp.mean(optax.losses.squared_error(d["p"], d["y"])),
        "hand jnp": lambda d: jnp.mean(jnp.square(d["y"] - d["p"])),
    }),
    Row("losses.mae", _real, lambda d: nllax.losses.mae(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.mean(jnp.abs(d["y"] - d["p"])),
    }),
    Row("losses.poisson", _counts, lambda d: nllax.losses.poisson(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.sum(jnp.exp(d["p"]) - d["y"] * d["p"]),
        "optax poisson_nll (if present)": lambda d: jnp.sum(jnp.exp(d["p"]) - d["y"] * d["p"]),
    }),
]
