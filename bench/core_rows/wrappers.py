"""Speed rows of the ordinal family and the wrappers (bench/core.py): each against a
hand-written jnp form of the same likelihood (the naive formulas: CDF differences,
log(1 - exp(...)); what a user would write) and numpyro where it has the distribution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import nllax
from _libs import get
from core import Row

F32 = np.float32
ZIP = nllax.zero_inflated(nllax.poisson)
HURDLE = nllax.hurdle(nllax.poisson)
ZTP = nllax.zero_truncated(nllax.poisson)
TOBIT = nllax.censored(nllax.gaussian)
LOG_SQRT_2PI = 0.5 * float(np.log(2 * np.pi))


def _ordinal(n, rng):
    c = np.array([-1.0, 0.2, 1.5], F32)
    eta = (0.8 * rng.standard_normal(n)).astype(F32)
    u = eta + rng.logistic(size=n).astype(F32)
    return {"y": np.searchsorted(c, u).astype(np.int32), "p": eta, "c": c}


def _padded(c):
    return jnp.concatenate([jnp.full((1,), -jnp.inf, c.dtype), c, jnp.full((1,), jnp.inf, c.dtype)])


def _hand_ordinal(cdf):
    def f(d):
        c = _padded(d["c"])
        return -jnp.sum(jnp.log(cdf(c[d["y"] + 1] - d["p"]) - cdf(c[d["y"]] - d["p"])))
    return f


def _zero_counts(n, rng):
    eta = (0.5 + 0.5 * rng.standard_normal(n)).astype(F32)
    z = (-0.5 + rng.standard_normal(n)).astype(F32)
    y = rng.poisson(np.exp(eta)).astype(F32)
    y[rng.random(n) < 1 / (1 + np.exp(-z))] = 0
    return {"y": y, "p": eta, "z": z}


def _positive_counts(n, rng):
    eta = (0.5 + 0.5 * rng.standard_normal(n)).astype(F32)
    return {"y": np.maximum(rng.poisson(np.exp(eta)), 1).astype(F32), "p": eta}


def _poisson_lp(y, eta):
    return y * eta - jnp.exp(eta) - jax.lax.lgamma(y + 1)


def _hand_zip(d):
    y, eta, z = d["y"], d["p"], d["z"]
    pos = jax.nn.log_sigmoid(-z) + _poisson_lp(y, eta)
    zero = jnp.logaddexp(jax.nn.log_sigmoid(z), jax.nn.log_sigmoid(-z) - jnp.exp(eta))
    return -jnp.sum(jnp.where(y == 0, zero, pos))


def _hand_hurdle(d):
    y, eta, z = d["y"], d["p"], d["z"]
    pos = (jax.nn.log_sigmoid(-z) + _poisson_lp(y, eta)
           - jnp.log(-jnp.expm1(-jnp.exp(eta))))
    return -jnp.sum(jnp.where(y == 0, jax.nn.log_sigmoid(z), pos))


def _tobit(n, rng):
    mu = rng.standard_normal(n).astype(F32)
    y = np.maximum(mu + 1.3 * rng.standard_normal(n), 0).astype(F32)
    return {"y": y, "p": mu, "s": F32(1.3)}


def _hand_tobit(d):
    y, mu, s = d["y"], d["p"], d["s"]
    dens = -0.5 * jnp.square((y - mu) / s) - jnp.log(s) - LOG_SQRT_2PI
    return -jnp.sum(jnp.where(y <= 0, jax.scipy.special.log_ndtr(-mu / s), dens))


def _numpyro(cls, build):
    dist = get("numpyro.distributions")
    if dist is None or not hasattr(dist, cls):
        return {}
    return {f"numpyro {cls}": lambda d, D=getattr(dist, cls): -jnp.sum(build(D, d))}


ROWS = [
    Row("ordinal.nll", _ordinal,
        lambda d: nllax.ordinal.nll(d["y"], d["p"], cutpoints=d["c"]), {
            "hand jnp (sigmoid difference)": _hand_ordinal(jax.nn.sigmoid),
            **_numpyro("OrderedLogistic",
                       lambda D, d: D(d["p"], d["c"]).log_prob(d["y"])),
        }, "K = 4, shared cut-points"),
    Row("ordinal.nll[probit]", _ordinal,
        lambda d: nllax.ordinal.nll(d["y"], d["p"], cutpoints=d["c"], link="probit"), {
            "hand jnp (ndtr difference)": _hand_ordinal(jax.scipy.special.ndtr),
        }, "K = 4"),
    Row("zero_inflated(poisson).nll", _zero_counts,
        lambda d: ZIP.nll(d["y"], log_rate=d["p"], zero_logits=d["z"]), {
            "hand jnp": _hand_zip,
            **_numpyro("ZeroInflatedPoisson",
                       lambda D, d: D(jax.nn.sigmoid(d["z"]), jnp.exp(d["p"])).log_prob(d["y"])),
        }, "per-observation zero logits"),
    Row("hurdle(poisson).nll", _zero_counts,
        lambda d: HURDLE.nll(d["y"], log_rate=d["p"], zero_logits=d["z"]), {
            "hand jnp": _hand_hurdle,
        }),
    Row("zero_truncated(poisson).nll", _positive_counts,
        lambda d: ZTP.nll(d["y"], log_rate=d["p"]), {
            "hand jnp": lambda d: -jnp.sum(_poisson_lp(d["y"], d["p"])
                                           - jnp.log(-jnp.expm1(-jnp.exp(d["p"])))),
        }),
    Row("censored(gaussian).nll", _tobit,
        lambda d: TOBIT.nll(d["y"], d["p"], d["s"], lower=0.0), {
            "hand jnp": _hand_tobit,
        }, "Tobit, lower = 0, scalar scale"),
]
