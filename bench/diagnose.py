"""Section 4: what nllax's validity rules cost per observation, measured.

Wave 1 marked an invalid value (scale <= 0, a target outside the support...) by a select
on every per-observation term; on XLA:CPU the sum is a YNNPACK fusion that absorbs
arithmetic producers but not a compare/select, so that select wrote the n terms out (one
n-buffer written and read back). This section measured the alternative (reduce first,
poison the scalar total), which is what the family core (``nllax._family``) now does:
a rule over an array is reduced to one flag in its own pass where the family allows it,
the total is multiplied by ``1 + (0 if valid else NaN)``, and per-term NaN is kept only
where a family's own arithmetic needs it. The patched variants are gone (``VARIANTS`` is
empty); what remains is each family's ``nll`` as shipped (value and value-and-gradient,
with its temporaries) and, for the Bernoulli family, a select-free candidate form
(``max(z, 0) - y z + log1p(exp(-|z|))`` with its validity as arithmetic) for comparison.
"""

from __future__ import annotations

import contextlib
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from nllax import _reduce as R
from _measure import Timing, compile_jax, time_round_robin
import evaluation as E


# Variants of `_reduce.finish_nll` to compare with the shipped one. The two measured
# before (NaN rule in checked mode only; poison the reduced total when the validity is a
# scalar) are now what the core does, so there is nothing left to patch in.
VARIANTS: dict = {}


@contextlib.contextmanager
def patched_finish_nll(replacement):
    """Temporarily routes every family's `nll` through ``replacement``."""
    saved = R.finish_nll
    R.finish_nll = replacement
    try:
        yield
    finally:
        R.finish_nll = saved


@jax.custom_jvp
def _bce_terms(y, z):
    # max(z, 0) - y z + log1p(exp(-|z|)): exact in both tails for 0/1 targets (the
    # difference max(z, 0) - y z is exact), and only max/abs/exp/log1p: no compare/select.
    # The validity of y (0 <= y <= 1) enters as 0 * sqrt(y - y^2), NaN iff y is outside.
    return jnp.maximum(z, 0) - y * z + jnp.log1p(jnp.exp(-jnp.abs(z))) + 0 * jnp.sqrt(y - y * y)


@_bce_terms.defjvp
def _bce_terms_jvp(primals, tangents):
    y, z = primals
    dy, dz = tangents
    out = _bce_terms(y, z)
    # σ(z) - y written as (1 - y) σ(z) - y σ(-z): no cancellation in either tail; + 0 * out
    # makes the derivative NaN exactly where the value is (an invalid y), as in nllax.
    grad_z = (1 - y) * jax.nn.sigmoid(z) - y * jax.nn.sigmoid(-z) + 0 * out
    return out, grad_z * dz - z * dy


def candidate_bernoulli(d, p):
    """A candidate Bernoulli NLL (sum) without per-observation selects (finite logits)."""
    return jnp.sum(_bce_terms(d["y"], p))


CANDIDATES = {
    "nllax.bernoulli.nll": (
        "candidate: max(z,0) - yz + log1p(exp(-|z|)), custom_jvp, arithmetic validity",
        candidate_bernoulli,
    ),
}


@dataclasses.dataclass
class DiagRow:
    family: str
    impl: str
    n: int
    mode: str  # "value" or "v&g"
    variant: str  # "shipped" or a key of VARIANTS
    time: Timing
    temp: int | None
    same_value: bool  # same value (or value and gradient) as shipped


CASES = [
    ("Gaussian", "nllax.gaussian.nll"), ("Laplace", "nllax.laplace.nll"),
    ("Bernoulli (logits)", "nllax.bernoulli.nll"),
    ("Categorical (integer labels)", "nllax.categorical.nll"),
    ("Poisson (log-rate)", "nllax.poisson.nll"), ("Poisson (log-rate)", "nllax.losses.poisson"),
]


def run(n: int, *, budget_s: float, quick: bool = False, log=print) -> list[DiagRow]:
    """Every case of `CASES` (the smoke run: Gaussian and Bernoulli only)."""
    rows = []
    fams = {f.name: f for f in E.FAMILIES}
    cases = [c for c in CASES if c[0] in ("Gaussian", "Bernoulli (logits)")] if quick else CASES
    for fam_name, impl_name in cases:
        fam = fams[fam_name]
        d_np, p_np = fam.data(n, np.random.default_rng(0))
        d = {k: jax.device_put(v) for k, v in d_np.items()}
        p = jax.device_put(p_np)
        im = next(i for i in fam.impls() if i.name == impl_name)
        for mode, fn in (("value", E._flip(im.fn)), ("v&g", jax.value_and_grad(E._flip(im.fn)))):
            compiled = {"shipped": compile_jax(fn, p, d)}
            for name, repl in VARIANTS.items():
                with patched_finish_nll(repl):
                    # a new function object: jit's trace cache is keyed on the function
                    compiled[name] = compile_jax(lambda *a, f=fn: f(*a), p, d)
            if impl_name in CANDIDATES:
                label, cand = CANDIDATES[impl_name]
                cfn = E._flip(cand) if mode == "value" else jax.value_and_grad(E._flip(cand))
                compiled[label] = compile_jax(cfn, p, d)
            ref = [np.asarray(x) for x in jax.tree_util.tree_leaves(compiled["shipped"].call(p, d))]
            timings = time_round_robin(
                [lambda c=c.call: c(p, d) for c in compiled.values()], budget_s=budget_s
            )
            for (name, c), tm in zip(compiled.items(), timings):
                out = [np.asarray(x) for x in jax.tree_util.tree_leaves(c.call(p, d))]
                same = all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(ref, out))
                rows.append(DiagRow(fam_name, impl_name, n, mode, name, tm, c.temp_bytes, same))
                log(f"    {impl_name:24s} {mode:5s} {name:44s} {tm.ms():>22s} ms")
    return rows
