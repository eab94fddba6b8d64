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

_POISON_SCALAR = (
    "Cause: `_reduce.finish_nll` poisons every term, `poison(lp, valid, params)` = "
    "`jnp.where(valid, lp, nan)`, and `valid` is per observation only because of the rule "
    "`_reduce.not_nan(y)` (`~isnan(y)`), which the family adds so that `checked` mode can "
    "name a NaN in y — a NaN propagates to the result by itself, and the only other rule "
    "(`scale > 0`) is a scalar here. " + _YNN + " nllax has 1 temporary n-buffer (value "
    "and v&g) where the hand-written jnp form has 0. Fix (`src/nllax/_reduce.py`, "
    "`finish_nll`): emit the `not_nan` check (`_checks.check`) but leave it out of the "
    "combined validity given to `poison`, and when the remaining validity is a scalar and "
    "`reduction != 'none'`, reduce first and return `poison(total, valid, params)`. For a "
    "scalar validity this gives the same value *and* the same gradient (all NaN when the "
    "scale is invalid, since every term is), and section 4 measures it: 0 temporary "
    "n-buffers, value and v&g, with the time in its table."
)

_BERNOULLI = (
    "Cause: the family code of `bernoulli._compute_logits`, not only the poison: per "
    "observation it evaluates the compare `0 <= y <= 1`, `where(valid, y, 0)`, two "
    "`log_sigmoid` calls (each a softplus with its own select for infinities) and two "
    "`_xmul` selects `where(y == 0, 0, y * t)`, then the poison select. " + _YNN + " "
    "Result: 1 / 2 temporary n-buffers (value / v&g) against 1 / 0 for `softplus(z) - y z`. "
    "Fix (measured in section 4 as the 'candidate' row, same values and gradients, "
    "including y = 1, z = 20 -> 2.06e-9 and NaN for y outside [0, 1]): per-term "
    "`max(z, 0) - y z + log1p(exp(-|z|))` (exact in both tails for 0/1 targets, because "
    "`max(z, 0) - y z` is then exact), a `custom_jvp` with derivative "
    "`(1 - y) sigmoid(z) - y sigmoid(-z) + 0 * out` (no cancellation; NaN where the value is), "
    "and the target rule as arithmetic, `+ 0 * sqrt(y - y**2)` (NaN iff y is outside "
    "[0, 1] or NaN), which XLA fuses into the reduction: 0 / 0 n-buffers. Caveat for the "
    "owner: that form gives NaN for infinite logits (inf - inf); keeping nllax's exact "
    "+-inf limits needs a clamp of z to the finite range plus a custom derivative, which "
    "also avoids selects."
)

_CATEGORICAL = (
    "Cause: `categorical._compute_logits`. For accuracy of confident predictions it "
    "rewrites +inf logits with a select over all n/10 x 10 logits (`any(z == inf)`), takes "
    "an `argmax`, gathers three times (`_take` of the max logit, of the shifted max for "
    "`expm1`, of the label), excludes the max with the compare/select `is_a`, and poisons "
    "the result. " + _YNN + " Gathers are not fused either, and their transposes in v&g "
    "are scatter-adds. Result: 2.5 / 3.0 temporary "
    "n-buffers (value / v&g) against 0.2 / 0.8 for `logsumexp(z) - z[label]` (jax.nn, "
    "optax). Suggested fix: the plain log-sum-exp path (stop-gradient max, `exp`, sum, "
    "`log`, one gather of the label) as the default computation, and the argmax/`log1p` "
    "refinement only where it changes the float32 result (log-probabilities above about "
    "-1e-7), e.g. behind a keyword; the +inf rewrite can be dropped by clamping logits to "
    "the finite range before the max."
)

_POISSON_NLL = (
    "By design (documented in `nllax.poisson`): `nll` is the saddle-point form (Loader 2000), "
    "exact `log k!` through a 16-entry `stirlerr` table (a gather) and its asymptotic "
    "series, and `bd0` with a 9-term series branch and a direct branch, each selected by "
    "`where` — 5 temporary n-buffers and several transcendental calls per observation, "
    "against 0 for `exp(eta) - k eta` and 1-2 for the `gammaln` forms. It is the accurate "
    "choice for large counts (where the textbook form keeps no float32 digit); for "
    "speed, `nllax.losses.poisson` is the simple form."
)

_POISSON_LOSS = (
    "Cause: `losses._neg_poisson_terms` and the poison: the count rule "
    "`(k >= 0) & (k == floor(k)) & isfinite(k)` with `where(valid, k, 0)`, the select "
    "`where(k == 0, 0, k * eta)` and `_reduce.poison` per observation. " + _YNN + " "
    "Result: 1 temporary n-buffer (value and v&g) against 0 for `exp(eta) - k eta`. "
    "Suggested fix: `k * eta` needs no select when eta is finite (it is 0 at k = 0), so "
    "guard only `eta = -inf` by clamping eta to the finite range; the count rule can be "
    "made arithmetic (e.g. `0 * sqrt(k)` for k >= 0; integrality is the one check that "
    "needs a compare, and could move to `nllax.checked` only)."
)

_WEIGHTS = (
    "With `weights=` and `where=` given, nllax and the hand-written weighted/masked form "
    "both contain the mask select, so both materialise the terms (1 n-buffer); the "
    "remaining difference is nllax's extra passes: `as_mask` broadcasts the mask and "
    "`mask_data` replaces masked data by a safe value (another select) before the family "
    "code, and the poison select comes on top."
)

_FIT_SPEED = (
    "Cause: the default method of `nllax.fit` is a damped Newton method on the exact "
    "Hessian, `jax.hessian` (forward-over-reverse: d + 1 = 21 tangent directions through "
    "the data) recomputed after every accepted step; the rows 'one jax.hessian' and 'one "
    "value_and_grad' of section 2 show one Hessian costs several gradient evaluations, and "
    "Newton needs 5-7 of them. The hand-written jitted optax L-BFGS loop reaches the same "
    "θ̂ (agreement 1e-13) with only gradient evaluations and is the fastest method here. "
    "Suggested fix (`src/nllax/_fit.py`): for smooth objectives with more than a handful of "
    "observations per parameter, start with L-BFGS (or Newton-CG with Hessian-vector "
    "products) and use the exact Hessian only for the final step / the covariance; or "
    "reuse the Hessian across accepted steps while the decrease ratio is good. Note also "
    "that `nllax.fit(optimizer=optax.lbfgs())` is slower than the hand-written optax loop "
    "because `fit._optax_loop` calls `value_and_grad` at the top of every iteration although "
    "L-BFGS's zoom line search has already evaluated value and gradient at the accepted "
    "point (the hand-written loop reuses them with `optax.value_and_grad_from_state`), "
    "so every iteration costs one extra pass over the data. The "
    "statsmodels baseline itself varies a lot with its BLAS threads on this 2-core "
    "machine (both columns are shown)."
)

_FIT_COMPILE = (
    "Cause: the whole fit is one `lax.while_loop` that contains the objective, its gradient, "
    "its exact Hessian (`jacfwd` of `jacrev`, with the family's `custom_jvp` rules "
    "differentiated twice), a Cholesky solve and the Levenberg-Marquardt logic; section 2 "
    "lists the compile time of the gradient and of the Hessian alone. `fit._newton` traces "
    "both twice: `vg(x0)` and `hess(x0)` for the starting point before the `while_loop`, and "
    "`vg(xt)` and `hess` (inside a `lax.cond`) in the body, so XLA compiles two copies of the "
    "Hessian graph; evaluating the starting point inside the first iteration (a flag in the "
    "loop state) would compile one. The Poisson "
    "saddle-point form (stirlerr table, bd0 series, `digamma` in its custom derivative) is "
    "the heaviest to compile. Compile time also grows with the machine's load (it is "
    "single-threaded CPU work), so the absolute figure depends on when it was measured."
)

WHY: dict[str, str] = {
    "vg:nllax.gaussian.nll": _POISON_SCALAR,
    "overhead:nllax.gaussian.nll": _POISON_SCALAR,
    "vg:nllax.laplace.nll": _POISON_SCALAR,
    "overhead:nllax.laplace.nll": _POISON_SCALAR,
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
