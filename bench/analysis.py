"""Why a target is missed: the closing note of bench/RESULTS.md.

Keys are the target keys of `report.targets` (``vg:<impl>``, ``overhead:<impl>``,
``bce_vs_optax``, ``weights_used``, ``fit_speed:<model>``, ``fit_compile:<model>``). The
explanations come from reading the optimised HLO (``jit(f).lower(...).compile().as_text()``)
and ``memory_analysis()`` of each function with jax/jaxlib 0.10.2 on CPU; the temporary
counts they quote are printed in the tables of the same report, and section 4 measures the
suggested fixes without touching ``src/``.
"""

_YNN = (
    "On XLA:CPU (jaxlib 0.10.2) a sum is emitted as a YNNPACK fusion (`__ynn_fusion` in the "
    "optimised HLO) that absorbs elementwise arithmetic (sub, mul, div, exp, log, log1p, abs, "
    "max) but not a compare or a select; any `jnp.where`, boolean mask or `isnan` between the "
    "inputs and the sum splits the fusion, so the n per-observation terms are written to a "
    "temporary and read back (one n-buffer = 4n bytes each way; at n = 1e7 that is 80 MB of "
    "extra traffic on top of the 80 MB the floor reads). Whether v&g needs one more buffer "
    "then depends on XLA's schedule (whether the gradient fusion may overwrite a buffer the "
    "reduction still reads)."
)

_GAUSSIAN_SCALAR = (
    "Not a pass or a buffer: with a scalar scale nllax's program has the hand-written "
    "form's shape (optimised HLO at n = 1e6: value 1 pass, 0 n-writes, 2 n-reads; v&g 3 "
    "passes, 2 n-writes, 4 n-reads; 0 temporaries in both). The one difference is a second "
    "divide per element in v&g: the standardised residual `(y - loc) / scale` goes through "
    "`_family._divide`, whose written-out derivative divides the cotangent by the scale "
    "again, where autodiff of the hand form lets XLA fold `1 / scale**2` into one scalar. "
    "That rule is kept on purpose: the default derivative `-r dd / d**2` is 0 / 0 = NaN "
    "once `d**2` underflows (a scale of 1e-20 in float32), and a reciprocal `1 / scale` "
    "overflows at the denormal scales `exp(-90)` that the family must handle "
    "(tests/test_core_defects.py). The rest is run-to-run spread: the 1e7 v&g medians' "
    "[min-max] ranges overlap (section 1), and bench/CORE.md's own run gives other ratios "
    "for the same call."
)

_BERNOULLI = (
    "`nllax.bernoulli` keeps the target rule (`y` in [0, 1], else NaN: one reduction "
    "pass) and the exact tails (`max(z, 0) - y z + log1p(exp(-|z|))` with the linear part "
    "chosen so that nothing cancels for 0/1 labels, and exact limits at +-inf logits), "
    "which `softplus(z) - y z` does not. " + _YNN + " Bool targets need no rule (the "
    "`[bool y]` rows)."
)

_CATEGORICAL = (
    "Accuracy by design (`nllax.categorical` module docstring): the value keeps a "
    "confident label's tiny log-probability, `d - log1p(T + expm1(d))` with the label's "
    "own term excluded, where `logsumexp(z) - z[label]` rounds it to 0; the exclusion "
    "buffer `where(onehot, 0, exp(z - max))` is written out once (1.2 n-buffers against "
    "0.2). The gradient reuses that buffer (no second exponential, no gather/scatter "
    "pair), so value-and-gradient is at the competitors' speed (the v&g ratio here); only "
    "the value alone pays for the buffer."
)

_POISSON_NLL = (
    "By design (documented in `nllax.poisson`): `nll` is the full log-likelihood in "
    "Loader's (2000) saddle-point form, `stirlerr(k) + bd0(k, mu)`, which keeps float32 "
    "digits for large counts where `lgamma(k + 1)` and `k log mu - mu` cancel; "
    "`exp(eta) - k eta` is a different quantity (no `log k!`), so the first ratio compares "
    "unlike things, and against the fastest full-NLL form (`jax.scipy.stats.poisson."
    "logpmf`, lgamma) the gap is the table's second row. The passes are the `stirlerr` "
    "table/series and `bd0`'s series/direct branches, each a select that the XLA:CPU "
    "reduction fusion does not absorb (bench/CORE.md, 'Why the remaining rows are above "
    "1.10x'). For speed, `nllax.losses.poisson` is the simple form."
)

_POISSON_LOSS = (
    "The rules, not the arithmetic (bench/CORE.md, 'Why the remaining rows...', item 5, "
    "with the HLO): the count rule's reduction (`sum((ceil(k) - k) + (|k| - k)) == 0`, what "
    "makes k = 2.5 or -1 give NaN) is one pass of its own; `_math.xmul(k, eta)`'s select "
    "(`0 * (-inf) = 0`, a zero count at a zero rate) is one pass and one temporary; and "
    "with the gradient sharing `exp(eta)`, that exponential is then written out too "
    "(5 passes and 2 n-buffers against 3 and 0). Without both pieces the program is the "
    "hand formula's (measured, diagnosis only). Neither is removable without changing a "
    "rule: a select-free `k * max(eta, -FLT_MAX)` returns FLT_MAX * k instead of +inf "
    "for a positive count at a zero rate."
)

_WEIGHTS = (
    "`where=` masks the *inputs* (y, loc, weights: three selects) before the family code, "
    "so that a NaN or inf in a dropped slot reaches neither the value nor the gradient "
    "(issue 10's defect, tests/test_core_defects.py); the hand-written form masks only "
    "the terms and returns a NaN gradient there. The masked weights are then read by "
    "three reductions (the weight rule `sum(|w| - w) == 0`, the weight total for the "
    "constant `log scale + log(2 pi)/2`, and the weighted sum), so XLA writes them out: "
    "optimised HLO at n = 1e6, value 6 passes (3 n-writes, 11 n-reads, 3 temporaries) "
    "against 2 (1, 4, 1), v&g 6 passes (3, 12) against 4 (3, 9). Folding the constant into "
    "the weighted sum would save one reduction; not done yet."
)

_FIT_SPEED = (
    "A plain callable objective (this section's fits) gets `nllax.solvers.Newton`, the "
    "exact Hessian by forward-over-reverse autodiff: d + 1 = 21 tangent passes through "
    "the data per Hessian (the rows 'one jax.hessian' against 'one value_and_grad'). Ten "
    "times statsmodels is out of reach for any second-order method built from autodiff "
    "here: for the linear model statsmodels' OLS is one direct solve (118 ms) and a "
    "single Hessian costs half of that. The same models written as an `nllax.Likelihood` "
    "get Gauss-Newton / Fisher scoring, one `J'WJ` matmul per step: bench/GLM_quiet.md "
    "(quiet machine): 2.7-8.5x faster than statsmodels' IRLS and 0.77-1.04x glmax on its "
    "six GLM problems, at 1.3-3.5x the arithmetic floor of a Newton step; statsmodels "
    "itself is at 6-10x that floor, so the ratio is bounded by its own per-step cost, "
    "not by nllax's. L-BFGS (`optimizer=optax.lbfgs()`, rows above) is faster still but "
    "agrees with the optimum to 1e-9, not 1e-15. The statsmodels baseline varies with "
    "its BLAS threads on this 2-core machine (both columns are shown)."
)

_FIT_COMPILE = (
    "The first call here is trace + lower + XLA compile of one `lax.while_loop` program "
    "(Newton: value, gradient, exact Hessian, Cholesky, damping and convergence logic). "
    "For a Likelihood (the GLM path) `bench/fit_trace.py` splits it: trace 0.29-0.36 s, "
    "lower 0.14-0.40 s, XLA compile 0.94-1.20 s wall at load 0.9, for a program of "
    "585-623 jaxpr equations; bench/FIT_COMPILE.md has where the equations come from "
    "(the one-pass evaluation, traced once since stop 20, and the damped step's "
    "bookkeeping) and what was cut. Compile time is CPU work that grows with the "
    "machine's load, so the absolute figure depends on when it was measured."
)

WHY: dict[str, str] = {
    "vg:nllax.gaussian.nll": _GAUSSIAN_SCALAR,
    "overhead:nllax.gaussian.nll": _GAUSSIAN_SCALAR,
    "vg:nllax.laplace.nll": _GAUSSIAN_SCALAR,
    "overhead:nllax.laplace.nll": _GAUSSIAN_SCALAR,
    "vg:nllax.bernoulli.nll": _BERNOULLI,
    "overhead:nllax.bernoulli.nll": _BERNOULLI,
    "bce_vs_optax": "See the Bernoulli entry above: " + _BERNOULLI,
    "vg:nllax.categorical.nll": _CATEGORICAL,
    "overhead:nllax.categorical.nll": _CATEGORICAL,
    "vg:nllax.poisson.nll": _POISSON_NLL,
    "overhead:nllax.poisson.nll": _POISSON_NLL,
    "vg:nllax.losses.poisson": _POISSON_LOSS,
    "overhead:nllax.losses.poisson": _POISSON_LOSS,
    "weights_used": _WEIGHTS,
    "fit_speed": _FIT_SPEED,
    "fit_compile": _FIT_COMPILE,
}
