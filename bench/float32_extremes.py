"""Worst float32 relative errors of every family over its extreme range, against float64
(or 50-digit decimal) references on the same float32 inputs; in units of float32 eps.
tests/test_numerics_float32.py asserts bounds on these. Run from the repository root:
``python bench/float32_extremes.py``."""
import sys; sys.path.insert(0, 'tests')
import numpy as np, jax, jax.numpy as jnp, nllax, _refs
from scipy import special
f32 = np.float32
res = {}
# Bernoulli logits over +-[1e-30, 1e30] and +-inf
mag = np.logspace(-30, 30, 601).astype(f32)
z = np.concatenate([mag, -mag, [0, np.inf, -np.inf]]).astype(f32)
for yv in (0.0, 1.0, 0.25):
    y = np.full_like(z, yv)
    got = nllax.bernoulli.log_prob(jnp.asarray(y), logits=jnp.asarray(z))
    res[f"bernoulli y={yv}"] = _refs.rel_err_f32(got, _refs.bernoulli_logits(y.astype(np.float64), z.astype(np.float64)))
# BCE gradient sigma(z)-y
for yv in (0.0, 1.0):
    y = np.full_like(z, yv)
    g = jax.grad(lambda q: nllax.losses.binary_cross_entropy(jnp.asarray(y), q))(jnp.asarray(z))
    want = special.expit(z.astype(np.float64)) - yv
    res[f"bce grad y={yv} abs"] = float(np.max(np.abs(np.asarray(g, np.float64) - want)))
# Categorical: scale of logits 1e-30..1e30, K=5 random directions, and ties
r = np.random.default_rng(0)
base = r.normal(size=(1, 5))
scales = np.logspace(-30, 30, 121)[:, None]
logits = (base * scales).astype(f32)
for lab in range(5):
    labels = np.full(logits.shape[0], lab)
    got = nllax.categorical.log_prob(jnp.asarray(labels), logits=jnp.asarray(logits))
    res[f"categorical label={lab}"] = _refs.rel_err_f32(got, _refs.categorical_logits_decimal(labels, logits.astype(np.float64)))
tied = np.broadcast_to(np.logspace(-30, 30, 61)[:, None], (61, 7)).astype(f32)
got = nllax.categorical.log_prob(jnp.zeros(61, int), logits=jnp.asarray(tied))
res["categorical tied"] = _refs.rel_err_f32(got, np.full(61, -np.log(7)))
conf = np.zeros((40, 3), f32); conf[:, 0] = np.linspace(1, 80, 40)
got = nllax.categorical.log_prob(jnp.zeros(40, int), logits=jnp.asarray(conf))
res["categorical confident"] = _refs.rel_err_f32(got, _refs.categorical_logits_decimal(np.zeros(40, int), conf.astype(np.float64)))
inf = np.array([[np.inf, 0, 0], [np.inf, np.inf, 0], [-np.inf, 0, 1], [np.inf, -np.inf, 3]], f32)
got = nllax.categorical.log_prob(jnp.array([0, 0, 0, 1]), logits=jnp.asarray(inf))
print("inf logits", got)
# Gaussian scales 1e-30..1e30, residual = scale * u
s = np.logspace(-30, 30, 601).astype(f32)
u = r.normal(size=s.shape)
yv = (s * u).astype(f32)
got = nllax.gaussian.log_prob(jnp.asarray(yv), 0.0, jnp.asarray(s))
res["gaussian scale"] = _refs.rel_err_f32(got, _refs.gaussian_logpdf(yv.astype(np.float64), 0.0, s.astype(np.float64)))
got = nllax.laplace.log_prob(jnp.asarray(yv), 0.0, jnp.asarray(s))
res["laplace scale"] = _refs.rel_err_f32(got, _refs.laplace_logpdf(yv.astype(np.float64), 0.0, s.astype(np.float64)))
# Poisson counts to 1e7, rates around counts
k = np.unique(np.round(np.logspace(0, 7, 80))).astype(f32)
for fac in (0.5, 0.99, 1.0, 1.001, 2.0):
    lam = (k * fac).astype(f32)
    got = nllax.poisson.log_prob(jnp.asarray(k), rate=jnp.asarray(lam))
    res[f"poisson rate=k*{fac}"] = _refs.rel_err_f32(got, _refs.poisson_logpmf(k, lam.astype(np.float64)))
    eta = np.log(k * fac).astype(f32)
    got = nllax.poisson.log_prob(jnp.asarray(k), log_rate=jnp.asarray(eta))
    res[f"poisson lograte=k*{fac}"] = _refs.rel_err_f32(got, _refs.poisson_logpmf(k, np.exp(eta.astype(np.float64))))
naive = k * np.log(k.astype(f32)) - k - special.gammaln(k.astype(f32) + 1).astype(f32)
res["NAIVE poisson float32 rate=k"] = _refs.rel_err_f32(naive.astype(f32), _refs.poisson_logpmf(k, k.astype(np.float64)))
for kk, v in res.items():
    print(f"{kk:32s} {v:.3g}  ({v/np.finfo(f32).eps:.1f} eps)")
