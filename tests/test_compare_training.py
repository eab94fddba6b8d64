"""nllax.verify.compare_training: training on the NLL and on the loss, on a neural network.

A small pure-JAX MLP (one tanh hidden layer of 16 units) on three data sets that
scikit-learn ships: ``load_diabetes`` (regression: Gaussian NLL against optax's mean
``l2_loss``), ``load_breast_cancer`` (Bernoulli NLL against optax's mean sigmoid BCE) and
``load_digits`` (Categorical NLL against optax's mean softmax cross entropy). Each NLL is
a sum and each optax loss a mean, so the gradient ratio is the exact, data-only constant
a = n / sigma^2 (``l2_loss`` is r^2 / 2), a = n and a = n.

Tolerances (see each comment): rounding only, derived from the dtype's unit roundoff
u = eps / 2 and the number of steps, with the one assumption they need (rounding errors
add up instead of being amplified along the path) checked against a float64 run of the
same trajectory.

Compiled work: one scan (both trainings) per objective pair, optimizer and dtype, eight
in all.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn import datasets

import _tolerances as tt
import nllax
from nllax import verify

STEPS = 300
HIDDEN = 16
SIGMA = 0.5  # the Gaussian noise scale of the regression NLL


def _standardise(x):
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def _init(sizes, seed=0):
    """Seeded float64 initial weights (LeCun-normal), cast per test."""
    rng = np.random.default_rng(seed)
    return [{"w": rng.normal(size=(m, k)) / np.sqrt(m), "b": np.zeros(k)}
            for m, k in zip(sizes[:-1], sizes[1:])]


def mlp(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


# The objective pairs: f is nllax's NLL (a sum), g the optax loss (a mean).
def gaussian_nll(p, x, y):
    return nllax.gaussian.nll(y, mlp(p, x)[:, 0], SIGMA)


def l2_mean(p, x, y):
    return jnp.mean(optax.l2_loss(mlp(p, x)[:, 0], y))


def bernoulli_nll(p, x, y):
    return nllax.bernoulli.nll(y, logits=mlp(p, x)[:, 0])


def bce_mean(p, x, y):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(mlp(p, x)[:, 0], y))


def categorical_nll(p, x, y, where=None):
    return nllax.categorical.nll(y, logits=mlp(p, x), where=where)


def ce_mean(p, x, y, where=None):
    per = optax.softmax_cross_entropy_with_integer_labels(mlp(p, x), y)
    return jnp.mean(per, where=where)


def _load(name):
    if name == "diabetes":
        d = datasets.load_diabetes()
        y = (d.target - d.target.mean()) / d.target.std()
        return _standardise(d.data), y, 1, gaussian_nll, l2_mean, len(y) / SIGMA**2
    if name == "cancer":
        d = datasets.load_breast_cancer()
        y = d.target.astype(float)
        return _standardise(d.data), y, 1, bernoulli_nll, bce_mean, len(y)
    d = datasets.load_digits()
    return _standardise(d.data), d.target, 10, categorical_nll, ce_mean, len(d.target)


PROBLEMS = {name: _load(name) for name in ("diabetes", "cancer", "digits")}


def _setup(name, dtype):
    x, y, out, f, g, a = PROBLEMS[name]
    p0 = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), _init([x.shape[1], HIDDEN, out]))
    y = jnp.asarray(y, jnp.int32 if out > 1 else dtype)
    return p0, jnp.asarray(x, dtype), y, f, g, a


def _u(dtype):
    return float(np.finfo(dtype).eps) / 2  # unit roundoff


def _flat_traj(tree):
    """(steps + 1, n_params) float64 array of a trajectory pytree."""
    leaves = jax.tree_util.tree_leaves(tree)
    return np.concatenate([np.asarray(x, np.float64).reshape(x.shape[0], -1) for x in leaves], 1)


def _rel_dev(traj, ref):
    """Per step max|traj - ref| / max|ref|, as compare_training's max_rel_diff."""
    a, b = _flat_traj(traj), _flat_traj(ref)
    return np.abs(a - b).max(1) / np.abs(b).max(1)


# One optimizer object per configuration, reused: the compiled loop is cached on it.
LR_G = 0.1  # the learning rate of the mean loss; the NLL's is LR_G / a
SGD = {name: optax.sgd(LR_G / PROBLEMS[name][5]) for name in PROBLEMS}


@pytest.fixture(scope="module")
def sgd_runs():
    """SGD on f with lr and on g with lr * a (the default scaling), both dtypes, with
    trajectories; float64 only for diabetes (the check of the rounding assumption)."""
    out = {}
    for name in PROBLEMS:
        for dtype in ("float32", "float64") if name == "diabetes" else ("float32",):
            with jax.enable_x64(dtype == "float64"):
                p0, x, y, f, g, _ = _setup(name, dtype)
                r = verify.compare_training(f, g, p0, x, y, optimizer=SGD[name], steps=STEPS,
                                            trajectory=True)
                out[name, dtype] = jax.device_get(r)
    return out


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_sgd_lr_times_a_is_the_same_trajectory(sgd_runs, name):
    r = sgd_runs[name, "float32"]
    a = PROBLEMS[name][5]
    # ratio=None: gradient_ratio at params0, on the MLP's pytree of weights. Its relative
    # error is float32 rounding of two n-term gradients (n <= 1797): 1e-4 is the
    # library's float32 rtol for proportionality (verify.default_rtol).
    assert float(r.ratio) == pytest.approx(a, rel=verify.default_rtol(jnp.float32))
    # Training really happened: the loss fell by a large factor.
    assert float(r.value_g[-1]) < 0.5 * float(r.value_g[0])
    # The two runs apply the same exact map theta -> theta - lr grad f = theta - (lr a)
    # grad g; they differ by rounding alone. Per step each run rounds its new iterate
    # (1/2 ulp <= u max|theta| each) and its update, whose rounding (a few u relative to
    # a step far smaller than theta) is below that; if the map does not amplify these
    # errors along the path (checked against float64 in the next test), they add up:
    # after t steps the difference is at most 2 t u max|theta|.
    t = np.arange(1, STEPS + 1)
    u = _u(np.float32)
    assert np.all(r.max_rel_diff <= 2 * t * u), r.max_rel_diff.max() / (2 * STEPS * u)


def test_sgd_without_the_factor_a_differs_grossly():
    # The power of the test above: g trained with the same lr as f (ratio 1).
    p0, x, y, f, g, _ = _setup("diabetes", "float32")
    wrong = verify.compare_training(f, g, p0, x, y, optimizer=SGD["diabetes"], steps=STEPS,
                                    ratio=1.0)
    assert float(wrong.worst_rel_diff) > 1e3 * 2 * STEPS * _u(np.float32)


def test_sgd_rounding_is_not_amplified_along_the_path(sgd_runs):
    # The assumption of the bound above, tested: the float32 run of the NLL is the exact
    # (float64) trajectory perturbed by float32 rounding at every step. It must stay
    # inside the same bound, 2 t u32 max|theta| (float64's own error is 2^-29 of that).
    r32, r64 = sgd_runs["diabetes", "float32"], sgd_runs["diabetes", "float64"]
    u = _u(np.float32)
    t = np.arange(0, STEPS + 1)
    for side in ("trajectory_f", "trajectory_g"):
        dev = _rel_dev(getattr(r32, side), getattr(r64, side))
        assert np.all(dev <= 2 * np.maximum(t, 1) * u), dev.max() / (2 * STEPS * u)
    # And the statement in float64: the same bound with float64's u.
    t = np.arange(1, STEPS + 1)
    assert np.all(r64.max_rel_diff <= 2 * t * _u(np.float64))


def test_gradient_ratio_on_the_mlp(x64):
    # gradient_ratio on the network's pytree: one ratio for all four leaves, exactly
    # n / sigma^2 (float64: the relative error is rounding of 442-term sums, far below
    # the library's float64 rtol 1e-10).
    p0, x, y, f, g, a = _setup("diabetes", "float64")
    r = jax.jit(lambda p: verify.gradient_ratio(f, g, p, x, y))(p0)
    assert float(r.ratio) == pytest.approx(a, rel=verify.default_rtol(jnp.float64))
    assert float(r.residual) <= verify.default_rtol(jnp.float64)
    for leaf in jax.tree_util.tree_leaves(r.leaf_ratios):
        assert float(leaf) == pytest.approx(a, rel=verify.default_rtol(jnp.float64))


# ----------------------------------------------------------------------------- Adam

ADAM_LR, ADAM_EPS = 1e-2, 1e-8
ADAM = optax.adam(ADAM_LR, eps=ADAM_EPS)
A_CANCER = PROBLEMS["cancer"][5]
ADAM_EPS_OVER_A = optax.adam(ADAM_LR, eps=ADAM_EPS / A_CANCER)


@pytest.fixture(scope="module")
def adam_runs():
    """Adam on the breast-cancer MLP (a = 569), scaling='none': f with eps and g with
    eps / a (float64 and float32), and f and g with the same eps (float64)."""
    out = {}
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            p0, x, y, f, g, a = _setup("cancer", dtype)
            out["exact", dtype] = jax.device_get(verify.compare_training(
                f, g, p0, x, y, optimizer=ADAM, optimizer_g=ADAM_EPS_OVER_A, steps=STEPS,
                ratio=a, scaling="none", trajectory=True))
            if dtype == "float64":
                out["same_eps", dtype] = jax.device_get(verify.compare_training(
                    f, g, p0, x, y, optimizer=ADAM, steps=STEPS, ratio=a, scaling="none",
                    trajectory=True))
                out["grad0"] = jax.device_get(jax.grad(g)(p0, x, y))
                out["p0"] = jax.device_get(p0)
    return out


def test_adam_on_f_is_adam_with_eps_over_a_on_g(adam_runs):
    # Exact in exact arithmetic (the docstring's derivation), so rounding only. Adam
    # divides by sqrt(v): where a gradient coordinate is small it amplifies rounding,
    # and the simple 2 t u bound of SGD does not hold. The amplification is measured on
    # this trajectory instead: the float32 run of f is the float64 run perturbed by
    # float32 rounding; in the linear regime the response to float64 rounding is
    # u64/u32 times as large. Bound: 2 runs x margin 2 x that response, plus the
    # iterates' own rounding 2 t u64.
    r32, r64 = adam_runs["exact", "float32"], adam_runs["exact", "float64"]
    resp32 = np.maximum.accumulate(_rel_dev(r32.trajectory_f, r64.trajectory_f))[1:]
    u32, u64 = _u(np.float32), _u(np.float64)
    t = np.arange(1, STEPS + 1)
    bound = 4 * resp32 * (u64 / u32) + 2 * t * u64
    assert np.all(r64.max_rel_diff <= bound), (r64.max_rel_diff / bound).max()


def test_adam_same_eps_first_step_closed_form_and_bound(adam_runs):
    # From the common start, Adam's first step is -lr * grad / (|grad| + eps) per
    # coordinate (bias-corrected moments of one gradient), so with grad f = a grad g:
    #   theta_f - theta_g = -lr [a G / (a |G| + eps) - G / (|G| + eps)],  G = grad g,
    # and the docstring's bound  |.| <= lr min(|1 - 1/a| eps / |G|, (sqrt a - 1)/(sqrt a + 1)).
    r = adam_runs["same_eps", "float64"]
    G = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(adam_runs["grad0"])])
    p0 = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(adam_runs["p0"])])
    step1 = _flat_traj(r.trajectory_f)[1] - _flat_traj(r.trajectory_g)[1]
    a, lr, eps = A_CANCER, ADAM_LR, ADAM_EPS
    expected = -lr * (a * G / (a * np.abs(G) + eps) - G / (np.abs(G) + eps))
    # Rounding of the two computed iterates: 1/2 ulp of |theta| + lr each, and the
    # moments/updates' few roundings relative to lr: 8 u64 (|p0| + lr) covers both.
    rounding = 8 * _u(np.float64) * (np.abs(p0) + lr)
    np.testing.assert_array_less(np.abs(step1 - expected), rounding + 1e-300)
    bound = lr * np.minimum(abs(1 - 1 / a) * eps / np.abs(G), (np.sqrt(a) - 1) / (np.sqrt(a) + 1))
    np.testing.assert_array_less(np.abs(step1), bound + rounding)
    # The eps effect is real but small: over the whole run the same-eps trajectories
    # differ by far more than rounding (above) and by far less than the steps taken.
    moved = np.abs(_flat_traj(r.trajectory_f)[-1] - p0).max() / np.abs(p0).max()
    assert 1e3 * 2 * STEPS * _u(np.float64) < float(r.worst_rel_diff) < 1e-2 * moved


# ----------------------------------------------------------------------------- minibatches

BATCH = 50
MB_STEPS = 100
MB_SGD = optax.sgd(LR_G / BATCH)


@pytest.fixture(scope="module")
def minibatches():
    x, y, *_ = PROBLEMS["digits"]
    rng = np.random.default_rng(1)
    idx = np.stack([rng.permutation(len(y))[:BATCH] for _ in range(MB_STEPS)])
    mask = np.ones((MB_STEPS, BATCH), bool)
    return x[idx].astype(np.float32), y[idx].astype(np.int32), mask


def _mb_run(minibatches, mask, ratio=None):
    x, y, _ = minibatches
    p0, *_ = _setup("digits", "float32")
    return verify.compare_training(categorical_nll, ce_mean, p0, jnp.asarray(x), jnp.asarray(y),
                                   jnp.asarray(mask), optimizer=MB_SGD, steps=MB_STEPS,
                                   ratio=ratio, minibatches=True)


def test_minibatch_mean_vs_sum_changes_a_by_the_batch_size(minibatches):
    r = _mb_run(minibatches, minibatches[2])
    # The NLL sums the batch, the loss averages it: a is the batch size, not n.
    assert float(r.ratio) == pytest.approx(BATCH, rel=verify.default_rtol(jnp.float32))
    t = np.arange(1, MB_STEPS + 1)
    assert np.all(np.asarray(r.max_rel_diff) <= 2 * t * _u(np.float32))  # as for SGD above
    assert float(r.value_g[-1]) < 0.7 * float(r.value_g[0])


def test_unequal_batches_break_the_constant_a(minibatches):
    # Step 60 has a batch of 30 valid rows (a mask): there the mean divides by 30, the
    # sum does not, a is 30 for that step, and the runs part from it on.
    mask = minibatches[2].copy()
    mask[59, 30:] = False
    r = _mb_run(minibatches, mask)
    d = np.asarray(r.max_rel_diff)
    assert np.all(d[:59] <= 2 * np.arange(1, 60) * _u(np.float32))
    assert d[59] > 100 * 2 * 60 * _u(np.float32)  # 100 times the rounding bound there


# ----------------------------------------------------------------------------- API


def test_scaling_gradient_trains_a_times_g():
    # "gradient": g's gradient times a, i.e. training a * g: same as f for any optimizer.
    x = jnp.linspace(-1.0, 1.0, 20)
    y = 0.5 - x + 0.1 * jnp.sin(9.0 * x)
    nll = lambda w, x, y: nllax.gaussian.nll(y, w[0] + w[1] * x, 0.5)
    mse = lambda w, x, y: nllax.losses.mse(y, w[0] + w[1] * x)
    r = verify.compare_training(nll, mse, jnp.zeros(2), x, y, optimizer=optax.adam(1e-2),
                                steps=50, scaling="gradient")
    # Adam's update is O(lr) per step whatever the gradient; rounding of the iterates
    # (2 t u) plus Adam's amplification of gradient rounding at O(1) gradients (a few u
    # relative per step): 8 t u.
    assert float(r.worst_rel_diff) <= 8 * 50 * _u(np.float32)
    assert r.value_f.shape == r.max_abs_diff.shape == (50,)
    assert r.trajectory_f is None
    assert jax.tree_util.tree_structure(r.leaf_max_abs_diff) == jax.tree_util.tree_structure(
        jnp.zeros(2))


def test_compare_training_works_under_jit():
    x = jnp.linspace(-1.0, 1.0, 20)
    y = 0.5 - x
    nll = lambda w, x, y: nllax.gaussian.nll(y, w[0] + w[1] * x, 0.5)
    sse = lambda w, x, y: nllax.losses.sse(y, w[0] + w[1] * x)
    opt = optax.sgd(1e-3)
    run = jax.jit(lambda p: verify.compare_training(nll, sse, p, x, y, optimizer=opt, steps=5))
    r = run(jnp.zeros(2))
    assert isinstance(r, verify.TrainingComparison)
    # 1 / (2 sigma^2), to the float32 rounding of the two gradients' 20-term sums
    rtol = sum(tt.relative_gradient_rounding(f, jnp.zeros(2), x, y, eps=tt.EPS32) for f in (nll, sse))
    assert float(r.ratio) == pytest.approx(2.0, rel=rtol)


def test_compare_training_argument_errors():
    ok = lambda p, x: jnp.sum(p * x)
    p, x = jnp.ones(3), jnp.ones(3)
    opt = optax.sgd(0.1)
    with pytest.raises(ValueError, match="`steps` must be a positive Python int"):
        verify.compare_training(ok, ok, p, x, optimizer=opt, steps=0)
    with pytest.raises(ValueError, match="`scaling` must be one of"):
        verify.compare_training(ok, ok, p, x, optimizer=opt, steps=2, scaling="adam")
    with pytest.raises(TypeError, match="`optimizer` must be an optax GradientTransformation"):
        verify.compare_training(ok, ok, p, x, optimizer=optax.sgd, steps=2)
    with pytest.raises(TypeError, match="`optimizer_g` must be an optax"):
        verify.compare_training(ok, ok, p, x, optimizer=opt, optimizer_g=1.0, steps=2)
    with pytest.raises(ValueError, match=r"args\[0\] has shape \(3,\)"):
        verify.compare_training(ok, ok, p, x, optimizer=opt, steps=2, minibatches=True)
    with pytest.raises(ValueError, match="`ratio` must be a scalar"):
        verify.compare_training(ok, ok, p, x, optimizer=opt, steps=2, ratio=jnp.ones(2))
    with pytest.raises(ValueError, match="`g` must return a real floating scalar"):
        verify.compare_training(ok, lambda p, x: p * x, p, x, optimizer=opt, steps=2, ratio=1.0)
    with pytest.raises(TypeError, match="has dtype int32"):
        verify.compare_training(ok, ok, jnp.ones(3, jnp.int32), x, optimizer=opt, steps=2)
