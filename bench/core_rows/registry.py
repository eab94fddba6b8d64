"""Speed rows driven by the registry (bench/core.py): every registered family that the
hand-made modules (wave1, wrappers) do not cover, in its main parametrisation, and every
loss of ``nllax.losses`` they do not cover.

Data come from the family's test case (``tests/cases/<family>.py``: valid inputs the
harness uses) cast to float32; the parameter differentiated (``"p"``) is the family's
first parameter (the prediction), the others are per-observation arrays as the case draws
them. Each row's competitors: a hand-written jnp form of the same log-density (the plain
formula, without validity checks: what a user would write) and, where they have the
distribution in the same parametrisation, jax.scipy.stats, distrax and numpyro (skipped
when not installed). A registered family without a case, or without a hand-written form
here, still gets a row (nllax alone, or the libraries only) so that the table shows the gap.
"""

from __future__ import annotations

import math
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betaln, gammaln, log_ndtr, logsumexp, ndtr, xlogy

import nllax
from _libs import get
from core import Row

F32 = np.float32
LOG_2PI = math.log(2 * math.pi)
_TESTS = pathlib.Path(__file__).resolve().parents[2] / "tests"

# families covered by the hand-made row modules (wave1.py, wrappers.py), by case name
COVERED = {"gaussian", "laplace", "bernoulli", "categorical", "poisson", "logistic", "ordinal",
           "censored_gaussian", "hurdle_poisson", "zero_inflated_poisson",
           "zero_truncated_poisson"}
# the parameter differentiated, where it is not the case's first one
MAIN = {"binomial": "logits", "gaussian_mixture": "loc"}
# observations per row for event families (n counts parameter entries, as categorical's
# n/10 x 10 in wave1.py)
EVENT = {"multivariate_normal": 3, "gaussian_mixture": 3}
# the Tweedie density is a series of 64 terms per observation in float32 (~1 s per
# value-and-grad at n = 1e6 on 2 cores; 13 s before the windowed loop): timed at 1e6 at
# most, and it has no competitor to be compared with
MAX_N = {"tweedie": 10**6}


def _cases():
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    try:
        from cases import CASES, EQUIVALENCE_CASES
    except Exception as e:  # noqa: BLE001 - a missing test dependency skips these rows
        print(f"bench/core_rows/registry.py: test cases unavailable ({e}); rows skipped")
        return {}, {}
    return CASES, EQUIVALENCE_CASES


# ----------------------------------------------------------------------------------------
# hand-written jnp log-densities: f(d) -> per-observation log p, d = {"y", "p", params...}


def _t_lp(y, loc, s, df):
    z = (y - loc) / s
    return (gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * jnp.log(df * math.pi) - jnp.log(s)
            - (df + 1) / 2 * jnp.log1p(z * z / df))


def _huber_logz(delta):
    return jnp.log(math.sqrt(2 * math.pi) * (2 * ndtr(delta) - 1)
                   + 2 * jnp.exp(-0.5 * delta * delta) / delta)


HAND = {
    "asymmetric_laplace": lambda d: (
        jnp.log(d["quantile"]) + jnp.log1p(-d["quantile"]) - jnp.log(d["scale"])
        - ((d["y"] - d["p"]) / d["scale"]) * (d["quantile"] - (d["y"] < d["p"]))),
    "beta": lambda d: (
        xlogy(d["p"] * d["precision"] - 1, d["y"])
        + xlogy((1 - d["p"]) * d["precision"] - 1, 1 - d["y"])
        - betaln(d["p"] * d["precision"], (1 - d["p"]) * d["precision"])),
    "binomial": lambda d: (
        gammaln(d["trials"] + 1) - gammaln(d["y"] + 1) - gammaln(d["trials"] - d["y"] + 1)
        + d["y"] * d["p"] - d["trials"] * jax.nn.softplus(d["p"])),
    "cauchy": lambda d: (-math.log(math.pi) - jnp.log(d["scale"])
                         - jnp.log1p(jnp.square((d["y"] - d["p"]) / d["scale"]))),
    "gamma": lambda d: (
        (1 / d["dispersion"]) * (jnp.log(d["y"] / d["dispersion"]) - d["p"]
                                 - d["y"] * jnp.exp(-d["p"]))
        - jnp.log(d["y"]) - gammaln(1 / d["dispersion"])),
    "gaussian_mixture": lambda d: logsumexp(
        jax.nn.log_softmax(d["logits"], -1)
        - 0.5 * jnp.square((d["y"][:, None] - d["p"]) / d["scale"]) - jnp.log(d["scale"])
        - 0.5 * LOG_2PI, axis=-1),
    "gaussian_natural": lambda d: (
        d["p"] * d["y"] + d["eta2"] * d["y"] ** 2 + d["p"] ** 2 / (4 * d["eta2"])
        + 0.5 * jnp.log(-2 * d["eta2"]) - 0.5 * LOG_2PI),
    "huber": lambda d: (
        -jnp.where(jnp.abs(z := (d["y"] - d["p"]) / d["scale"]) <= d["delta"], 0.5 * z * z,
                   d["delta"] * (jnp.abs(z) - 0.5 * d["delta"]))
        - jnp.log(d["scale"]) - _huber_logz(d["delta"])),
    "hyperbolic_secant": lambda d: (
        -jnp.logaddexp(z := (d["y"] - d["p"]) / d["scale"], -z) + math.log(2)
        - math.log(math.pi) - jnp.log(d["scale"])),
    "inverse_gaussian": lambda d: (
        -0.5 * jnp.log(2 * math.pi * d["dispersion"] * d["y"] ** 3)
        - jnp.square(d["y"] - (mu := jnp.exp(d["p"]))) / (2 * d["dispersion"] * mu * mu * d["y"])),
    "log_normal": lambda d: (
        -0.5 * jnp.square((jnp.log(d["y"]) - d["p"]) / d["scale"]) - jnp.log(d["scale"])
        - 0.5 * LOG_2PI - jnp.log(d["y"])),
    "multivariate_normal": lambda d: _hand_mvn(d),
    "negative_binomial": lambda d: (
        gammaln(d["y"] + (r := 1 / d["dispersion"])) - gammaln(r) - gammaln(d["y"] + 1)
        + r * (jnp.log(r) - jnp.logaddexp(jnp.log(r), d["p"]))
        + d["y"] * (d["p"] - jnp.logaddexp(jnp.log(r), d["p"]))),
    "student_t": lambda d: _t_lp(d["y"], d["p"], d["scale"], d["df"]),
    "weibull": lambda d: (
        jnp.log(d["concentration"]) - jnp.log(d["p"])
        + (d["concentration"] - 1) * jnp.log(d["y"] / d["p"])
        - (d["y"] / d["p"]) ** d["concentration"]),
}


def _hand_mvn(d):
    y, loc, L = d["y"], d["p"], d["scale_tril"]
    z = jax.scipy.linalg.solve_triangular(L, (y - loc)[..., None], lower=True)[..., 0]
    logdet = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(L, axis1=-2, axis2=-1))), -1)
    return -0.5 * jnp.sum(z * z, -1) - logdet - 0.5 * y.shape[-1] * LOG_2PI


def _libs(name):
    """Library implementations of the same log-density, ``{label: f(d) -> log p}``."""
    st = jax.scipy.stats
    out = {}
    loc_scale = {"cauchy": ("cauchy", "Cauchy"), "log_normal": (None, "LogNormal")}
    if name == "cauchy":
        out["jax.scipy.stats"] = lambda d: st.cauchy.logpdf(d["y"], d["p"], d["scale"])
    if name == "student_t":
        out["jax.scipy.stats"] = lambda d: st.t.logpdf(d["y"], d["df"], d["p"], d["scale"])
    if name == "gamma":
        out["jax.scipy.stats"] = lambda d: st.gamma.logpdf(
            d["y"], 1 / d["dispersion"], scale=jnp.exp(d["p"]) * d["dispersion"])
    if name == "beta":
        out["jax.scipy.stats"] = lambda d: st.beta.logpdf(
            d["y"], d["p"] * d["precision"], (1 - d["p"]) * d["precision"])
    if name == "negative_binomial":
        out["jax.scipy.stats"] = lambda d: st.nbinom.logpmf(
            d["y"], 1 / d["dispersion"], 1 / (1 + d["dispersion"] * jnp.exp(d["p"])))
    if name == "binomial" and hasattr(st, "binom"):
        out["jax.scipy.stats"] = lambda d: st.binom.logpmf(
            d["y"], d["trials"], jax.nn.sigmoid(d["p"]))
    if name == "multivariate_normal":
        out["jax.scipy.stats"] = lambda d: st.multivariate_normal.logpdf(
            d["y"], d["p"], d["scale_tril"] @ jnp.swapaxes(d["scale_tril"], -1, -2))
    npd = get("numpyro.distributions")
    if npd is not None:
        build = {
            "cauchy": lambda D, d: D.Cauchy(d["p"], d["scale"]),
            "student_t": lambda D, d: D.StudentT(d["df"], d["p"], d["scale"]),
            "log_normal": lambda D, d: D.LogNormal(d["p"], d["scale"]),
            "gamma": lambda D, d: D.Gamma(1 / d["dispersion"],
                                          jnp.exp(-d["p"]) / d["dispersion"]),
            "beta": lambda D, d: D.BetaProportion(d["p"], d["precision"]),
            "weibull": lambda D, d: D.Weibull(d["p"], d["concentration"]),
            "negative_binomial": lambda D, d: D.NegativeBinomial2(jnp.exp(d["p"]),
                                                                  1 / d["dispersion"]),
            "binomial": lambda D, d: D.BinomialLogits(d["p"], d["trials"]),
            "inverse_gaussian": lambda D, d: D.Wald(jnp.exp(d["p"]), 1 / d["dispersion"])
            if hasattr(D, "Wald") else None,
            "multivariate_normal": lambda D, d: D.MultivariateNormal(
                d["p"], scale_tril=d["scale_tril"]),
            "asymmetric_laplace": lambda D, d: D.AsymmetricLaplaceQuantile(
                d["p"], d["scale"], d["quantile"]),
            "gaussian_mixture": lambda D, d: D.MixtureSameFamily(
                D.Categorical(logits=d["logits"]), D.Normal(d["p"], d["scale"])),
        }.get(name)
        if build is not None and (name != "inverse_gaussian" or hasattr(npd, "Wald")):
            out["numpyro"] = lambda d, b=build: b(npd, d).log_prob(d["y"])
    dx = get("distrax")
    if dx is not None:
        build = {
            "log_normal": None,
            "gamma": lambda d: dx.Gamma(1 / d["dispersion"], jnp.exp(-d["p"]) / d["dispersion"]),
            "beta": lambda d: dx.Beta(d["p"] * d["precision"], (1 - d["p"]) * d["precision"]),
            "multivariate_normal": lambda d: dx.MultivariateNormalTri(d["p"], d["scale_tril"]),
            "gaussian_mixture": lambda d: dx.MixtureSameFamily(
                dx.Categorical(logits=d["logits"]), dx.Normal(d["p"], d["scale"])),
        }.get(name)
        if build is not None:
            out["distrax"] = lambda d, b=build: b(d).log_prob(d["y"])
    del loc_scale
    return out


def _neg_sum(lp):
    return lambda d: -jnp.sum(lp(d))


def _family_row(name, case):
    fam = case.family
    main = MAIN.get(name)
    k = EVENT.get(name, 1)

    def make(n, rng):
        data, params = case.sample(rng, max(n // k, 2))
        d64 = {"y": np.asarray(data)}
        for key, v in params.items():
            d64["p" if key == pname else key] = np.asarray(v)
        d = {k_: v.astype(F32) if v.dtype.kind == "f" else v for k_, v in d64.items()}
        # the case's far-tail rows (a few fixed indices) can overflow or underflow float32:
        # such an observation is replaced, in every argument, by observation 0
        m = len(d["y"])
        bad = np.zeros(m, bool)
        for k_, v in d.items():
            if v.ndim and v.shape[0] == m and v.dtype.kind == "f":
                lost = ~np.isfinite(v) | ((v == 0) & (d64[k_] != 0))
                bad |= lost.reshape(m, -1).any(axis=1)
        # and an observation whose float32 log-density is not finite (a far tail of the
        # case's sampler: e.g. a log-normal y of 1e-44 with a small scale)
        kw = {k_: v for k_, v in d.items() if k_ not in ("y", "p")}
        lp = np.asarray(case.module.log_prob(d["y"], **kw, **{pname: d["p"]},
                                             **dict(case.options)))
        bad |= ~np.isfinite(lp).reshape(m, -1).all(axis=1)
        bad[0] = False
        if bad.any():
            for v in d.values():
                if v.ndim and v.shape[0] == m:
                    v[bad] = v[0]
        return d

    pname = main or _first_name(case)
    fam_nll = case.module.nll

    def call(d):
        kw = {k_: v for k_, v in d.items() if k_ not in ("y", "p")}
        return fam_nll(d["y"], **kw, **{pname: d["p"]}, **dict(case.options))

    comps = {}
    if name in HAND:
        comps["hand jnp"] = _neg_sum(HAND[name])
    comps.update({k_: _neg_sum(f) for k_, f in _libs(name).items()})
    note = f"n/{k} rows x {k}" if k > 1 else ""
    if not comps:
        note = "no JAX implementation elsewhere (nllax alone)"
    return Row(f"{name}.nll", make, call, comps, note, max_n=MAX_N.get(name))


def _first_name(case):
    _, params = case.sample(np.random.default_rng(0), 4)
    return next(iter(params))


# ----------------------------------------------------------------------------------------
# losses not in wave1.py


def _real(n, rng):
    y = rng.standard_normal(n).astype(F32)
    return {"y": y, "p": (y + 0.5 * rng.standard_normal(n)).astype(F32)}


def _positive(n, rng):
    eta = (0.5 * rng.standard_normal(n)).astype(F32)
    return {"y": rng.gamma(2.5, np.exp(eta) / 2.5).astype(F32) + F32(1e-3), "p": eta}


def _binary(n, rng):
    z = (2 * rng.standard_normal(n)).astype(F32)
    return {"y": (rng.random(n) < 1 / (1 + np.exp(-z))).astype(F32), "p": z}


def _binomial(n, rng):
    z = rng.standard_normal(n).astype(F32)
    t = rng.integers(1, 20, n).astype(F32)
    return {"y": rng.binomial(t.astype(int), 1 / (1 + np.exp(-z))).astype(F32), "t": t, "p": z}


def _counts(n, rng):
    eta = (1 + 0.5 * rng.standard_normal(n)).astype(F32)
    return {"y": rng.poisson(np.exp(eta)).astype(F32), "p": eta}


def _labels(n, rng):
    m, k = max(n // 10, 1), 10
    return {"y": rng.integers(0, k, m).astype(np.int32),
            "p": rng.standard_normal((m, k)).astype(F32)}


def _msle(n, rng):
    d = _positive(n, rng)
    return {"y": d["y"], "p": np.exp(d["p"]).astype(F32)}


def _optax(name):
    optax = get("optax")
    return None if optax is None else getattr(optax.losses, name, None)


def _huber_hand(r, delta):
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _loss_rows():
    L = nllax.losses
    rows = []
    huber_o, l2 = _optax("huber_loss"), _optax("log_cosh")
    bce_o, ce_o = _optax("sigmoid_binary_cross_entropy"), _optax(
        "softmax_cross_entropy_with_integer_labels")
    tau = 0.3
    rows.append(Row("losses.pinball", _real, lambda d: L.pinball(d["y"], d["p"], quantile=tau), {
        "hand jnp": lambda d: jnp.sum(jnp.maximum(tau * (r := d["y"] - d["p"]), (tau - 1) * r)),
    }, "quantile 0.3"))
    rows.append(Row("losses.huber", _real, lambda d: L.huber(d["y"], d["p"], delta=0.7), {
        "hand jnp": lambda d: jnp.sum(_huber_hand(d["y"] - d["p"], 0.7)),
        **({"optax huber_loss": lambda d: jnp.sum(huber_o(d["p"], d["y"], delta=0.7))}
           if huber_o else {}),
    }, "delta 0.7"))
    rows.append(Row("losses.smooth_l1", _real, lambda d: L.smooth_l1(d["y"], d["p"], beta=0.7), {
        "hand jnp": lambda d: jnp.sum(_huber_hand(d["y"] - d["p"], 0.7)) / 0.7,
    }, "beta 0.7"))
    rows.append(Row("losses.log_cosh", _real, lambda d: L.log_cosh(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.sum(jnp.logaddexp(r := d["p"] - d["y"], -r) - math.log(2)),
        **({"optax log_cosh": lambda d: jnp.sum(l2(d["p"], d["y"]))} if l2 else {}),
    }))
    rows.append(Row("losses.sae", _real, lambda d: L.sae(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.sum(jnp.abs(d["y"] - d["p"])),
    }))
    rows.append(Row("losses.msle", _msle, lambda d: L.msle(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.mean(jnp.square(jnp.log1p(d["y"]) - jnp.log1p(d["p"]))),
    }))
    rows.append(Row("losses.binary_cross_entropy", _binary,
                    lambda d: L.binary_cross_entropy(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.sum(jax.nn.softplus(d["p"]) - d["y"] * d["p"]),
        **({"optax sigmoid_binary_cross_entropy": lambda d: jnp.sum(bce_o(d["p"], d["y"]))}
           if bce_o else {}),
    }))
    rows.append(Row("losses.binomial_deviance", _binomial,
                    lambda d: L.binomial_deviance(d["y"], d["t"], d["p"]), {
        "hand jnp": lambda d: 2 * jnp.sum(
            xlogy(d["y"], d["y"] / d["t"]) + xlogy(d["t"] - d["y"], 1 - d["y"] / d["t"])
            - d["y"] * d["p"] + d["t"] * jax.nn.softplus(d["p"])),
    }))
    rows.append(Row("losses.cross_entropy", _labels, lambda d: L.cross_entropy(d["y"], d["p"]), {
        "hand jnp": lambda d: jnp.sum(jax.nn.logsumexp(d["p"], axis=-1) - jnp.take_along_axis(
            d["p"], d["y"][:, None], -1)[:, 0]),
        **({"optax softmax_cross_entropy_with_integer_labels":
            lambda d: jnp.sum(ce_o(d["p"], d["y"]))} if ce_o else {}),
    }, "n/10 rows x 10 classes"))
    rows.append(Row("losses.gamma_deviance", _positive, lambda d: L.gamma_deviance(d["y"], d["p"]), {
        "hand jnp": lambda d: 2 * jnp.sum(
            (x := d["y"] * jnp.exp(-d["p"])) - 1 - jnp.log(x)),
    }))
    rows.append(Row("losses.poisson_deviance", _counts,
                    lambda d: L.poisson_deviance(d["y"], d["p"]), {
        "hand jnp": lambda d: 2 * jnp.sum(
            xlogy(d["y"], d["y"]) - d["y"] * d["p"] - d["y"] + jnp.exp(d["p"])),
    }))
    pw = 1.5
    rows.append(Row("losses.tweedie_deviance", _positive,
                    lambda d: L.tweedie_deviance(d["y"], d["p"], power=pw), {
        "hand jnp": lambda d: 2 * jnp.sum(
            d["y"] ** (2 - pw) / ((1 - pw) * (2 - pw))
            - d["y"] * jnp.exp((1 - pw) * d["p"]) / (1 - pw)
            + jnp.exp((2 - pw) * d["p"]) / (2 - pw)),
    }, "power 1.5"))
    return rows


def _rows():
    cases, _ = _cases()
    rows = []
    for name in sorted(cases):
        if name in COVERED:
            continue
        rows.append(_family_row(name, cases[name]))
    missing = sorted(set(nllax.families) - set(cases) - COVERED)
    for name in missing:
        print(f"bench/core_rows/registry.py: family {name} has no test case; no row")
    return rows + _loss_rows()


ROWS = _rows()
