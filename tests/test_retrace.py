"""No retracing: repeated calls with the same shapes trace and compile once.

Two independent counters:

* a Python counter inside the traced function (it runs once per trace), and
* JAX's own compile events (``jax.monitoring``: every jaxpr trace and every XLA
  compilation records a duration event), which also see compilations *inside* nllax,
  e.g. the many small jitted `jnp` helpers an eager call uses, or `fit`'s compiled loop.

Every family's ``log_prob``/``nll`` (each parametrisation), every loss and ``fit`` (each
method) is called three times with new values of the same shapes: after the first
call, nothing is traced or compiled again. A negative control (a new ``lambda`` per
``fit`` call, which the fit docs say recompiles) shows the counters can fail.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
import pytest

import nllax

N, K = 6, 3


@contextlib.contextmanager
def compile_events():
    """Counts JAX's trace / lowering / compile events recorded inside the block."""
    counts: collections.Counter = collections.Counter()

    def listener(event, duration, **kwargs):
        if event.startswith("/jax/core/compile/"):
            counts[event.rsplit("/", 1)[-1]] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _y(i):
    return jnp.linspace(-1.0, 2.0, N, dtype=jnp.float32) * (1.0 + i)


def _p(i):
    return jnp.full((N,), 0.25 + 0.1 * i, jnp.float32)


def _labels(i):
    return (jnp.arange(N, dtype=jnp.int32) + i) % K


def _logits(i):
    return jnp.linspace(-2.0, 2.0, N * K, dtype=jnp.float32).reshape(N, K) * (1.0 + i)


def _probs(i):
    return jax.nn.softmax(_logits(i), axis=-1)


def _counts(i):
    return jnp.arange(N, dtype=jnp.float32) + i


def _mask(i):
    return jnp.arange(N) % (2 + i % 2) != 0


# id -> (fn(data, param, aux), inputs(i) -> (data, param, aux)); new values for every i.
ENTRIES: dict[str, tuple[Callable, Callable]] = {
    "gaussian.log_prob": (lambda y, m, s: nllax.gaussian.log_prob(y, m, s),
                          lambda i: (_y(i), _p(i), 1.0 + i)),
    "gaussian.log_prob-log_scale": (lambda y, m, s: nllax.gaussian.log_prob(y, m, log_scale=s),
                                    lambda i: (_y(i), _p(i), _p(i))),
    "gaussian.nll": (lambda y, m, s: nllax.gaussian.nll(y, m, s),
                     lambda i: (_y(i), _p(i), 1.0 + i)),
    "gaussian.nll-weights-where": (
        lambda y, m, aux: nllax.gaussian.nll(y, m, 2.0, weights=aux[0], where=aux[1],
                                             reduction="mean"),
        lambda i: (_y(i), _p(i), (_p(i), _mask(i)))),
    "laplace.log_prob": (lambda y, m, s: nllax.laplace.log_prob(y, m, s),
                         lambda i: (_y(i), _p(i), 1.0 + i)),
    "laplace.nll": (lambda y, m, s: nllax.laplace.nll(y, m, s, reduction="mean"),
                    lambda i: (_y(i), _p(i), 1.0 + i)),
    "bernoulli.log_prob": (lambda y, z, _: nllax.bernoulli.log_prob(y, logits=z),
                           lambda i: (_mask(i), _y(i), None)),
    "bernoulli.nll-probs": (lambda y, p, _: nllax.bernoulli.nll(y, probs=p),
                            lambda i: (_mask(i).astype(jnp.float32), _p(i), None)),
    "categorical.log_prob": (lambda lab, z, _: nllax.categorical.log_prob(lab, logits=z),
                             lambda i: (_labels(i), _logits(i), None)),
    "categorical.nll-probs-where": (
        lambda lab, p, m: nllax.categorical.nll(lab, probs=p, where=m),
        lambda i: (_labels(i), _probs(i), _mask(i))),
    "poisson.log_prob": (lambda k, e, _: nllax.poisson.log_prob(k, log_rate=e),
                         lambda i: (_counts(i), _y(i), None)),
    "poisson.nll-rate": (lambda k, r, _: nllax.poisson.nll(k, rate=r),
                         lambda i: (_counts(i), _p(i) * 10, None)),
    "losses.sse": (lambda y, m, _: nllax.losses.sse(y, m), lambda i: (_y(i), _p(i), None)),
    "losses.mse": (lambda y, m, w: nllax.losses.mse(y, m, weights=w),
                   lambda i: (_y(i), _p(i), _p(i))),
    "losses.sae": (lambda y, m, _: nllax.losses.sae(y, m), lambda i: (_y(i), _p(i), None)),
    "losses.mae": (lambda y, m, wh: nllax.losses.mae(y, m, where=wh),
                   lambda i: (_y(i), _p(i), _mask(i))),
    "losses.binary_cross_entropy": (lambda y, z, _: nllax.losses.binary_cross_entropy(y, z),
                                    lambda i: (_mask(i), _y(i), None)),
    "losses.cross_entropy": (lambda lab, z, _: nllax.losses.cross_entropy(lab, z),
                             lambda i: (_labels(i), _logits(i), None)),
    "losses.poisson": (lambda k, e, _: nllax.losses.poisson(k, e),
                       lambda i: (_counts(i), _y(i), None)),
}


@pytest.mark.parametrize("name", list(ENTRIES))
def test_jit_traces_once(name):
    fn, inputs = ENTRIES[name]
    traces = []

    @jax.jit
    def f(data, param, aux):
        traces.append(1)
        return jnp.sum(fn(data, param, aux))

    jax.block_until_ready(f(*inputs(0)))
    with compile_events() as events:
        for i in (1, 2):
            jax.block_until_ready(f(*inputs(i)))
    assert len(traces) == 1
    assert not events, dict(events)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_grad_traces_once(name):
    fn, inputs = ENTRIES[name]
    traces = []

    def f(param, data, aux):
        traces.append(1)
        return jnp.sum(fn(data, param, aux))

    g = jax.jit(jax.grad(f))
    data, param, aux = inputs(0)
    jax.block_until_ready(g(param, data, aux))
    with compile_events() as events:
        for i in (1, 2):
            data, param, aux = inputs(i)
            jax.block_until_ready(g(param, data, aux))
    assert len(traces) == 1
    assert not events, dict(events)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_eager_calls_compile_once(name):
    # Without a user `jit`, an nllax call dispatches many small compiled pieces; a second
    # call with new values of the same shapes must reuse every one of them.
    fn, inputs = ENTRIES[name]
    jax.block_until_ready(fn(*inputs(0)))
    with compile_events() as events:
        for i in (1, 2):
            jax.block_until_ready(fn(*inputs(i)))
    assert not events, dict(events)


# ---------------------------------------------------------------------------------------
# fit: the compiled loop is cached on the objective and optimizer objects.

FIT_TRACES: collections.Counter = collections.Counter()


def logistic_nll(beta, x, y):
    FIT_TRACES["logistic"] += 1
    return nllax.bernoulli.nll(y, logits=x @ beta)


def gaussian_mean_nll(mu, y):
    FIT_TRACES["gaussian"] += 1
    return nllax.gaussian.nll(y, mu, reduction="mean")


def _logistic_data(i):
    key = jax.random.key(i)
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (40, 3), jnp.float32)
    p = jax.nn.sigmoid(x @ jnp.asarray([0.5, -1.0, 0.25]))
    y = jax.random.bernoulli(ky, p).astype(jnp.float32)
    return x, y


SGD = optax.sgd(0.05)
LBFGS = optax.lbfgs()
ADAM_HP = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)

FIT_CASES = {
    "newton": {"optimizer": None},
    "sgd": {"optimizer": SGD, "max_steps": 50},
    "lbfgs": {"optimizer": LBFGS, "max_steps": 50},
    "stochastic": {"optimizer": SGD, "batch_size": 10, "epochs": 2},
}


@pytest.mark.parametrize("method", list(FIT_CASES))
def test_fit_second_call_does_not_retrace(method):
    kw = FIT_CASES[method]
    x0, y0 = _logistic_data(0)
    r0 = nllax.fit(logistic_nll, jnp.zeros(3), x0, y0, **kw)
    jax.block_until_ready(r0)
    traced = FIT_TRACES["logistic"]
    assert traced >= 1
    # New data and starting points, made before counting (making them compiles too).
    runs = [(jnp.full((3,), 0.1 * i, jnp.float32), *_logistic_data(i)) for i in (1, 2)]
    with compile_events() as events:
        for p0, x, y in runs:
            jax.block_until_ready(nllax.fit(logistic_nll, p0, x, y, **kw))
    assert FIT_TRACES["logistic"] == traced
    assert not events, dict(events)


def test_fit_new_tol_max_steps_and_hyperparams_do_not_retrace():
    y = _y(0)
    kw = {"optimizer": ADAM_HP, "hyperparams": {"learning_rate": 0.1}}
    jax.block_until_ready(nllax.fit(gaussian_mean_nll, jnp.float32(0.0), y, **kw))
    traced = FIT_TRACES["gaussian"]
    ys = [_y(i) for i in (1, 2)]
    with compile_events() as events:
        for i in (1, 2):
            r = nllax.fit(gaussian_mean_nll, jnp.float32(i), ys[i - 1], optimizer=ADAM_HP,
                          hyperparams={"learning_rate": 0.1 / (i + 1)}, tol=1e-4 * i,
                          max_steps=100 + i)
            jax.block_until_ready(r)
    assert FIT_TRACES["gaussian"] == traced
    assert not events, dict(events)


def test_fit_new_objective_object_does_retrace():
    # Negative control, as documented: the cache key is the objective's identity, so a
    # fresh lambda per call compiles again. This is what the counters above would see.
    y = _y(0)
    with compile_events() as events:
        for i in range(2):
            jax.block_until_ready(
                nllax.fit(lambda mu, y: nllax.gaussian.nll(y, mu), jnp.float32(i), y,
                          optimizer=SGD, max_steps=5))
    assert events["backend_compile_duration"] >= 2, dict(events)


# ---------------------------------------------------------------------------------------
# checked mode: wrapping must not turn one compilation into one per call.


def test_checked_jitted_function_compiles_once():
    traces = []

    @jax.jit
    def f(y, s):
        traces.append(1)
        return nllax.gaussian.nll(y, 0.0, s)

    g = nllax.checked(f)
    runs = [(_y(i), jnp.float32(1.0 + i)) for i in range(3)]
    jax.block_until_ready(g(*runs[0]))
    with compile_events() as events:
        for y, s in runs[1:]:
            jax.block_until_ready(g(y, s))
    assert len(traces) == 1
    assert not events, dict(events)


def test_checked_plain_function_compiles_once():
    g = nllax.checked(lambda y, s: nllax.gaussian.nll(y, 0.0, s))
    runs = [(_y(i), jnp.float32(1.0 + i)) for i in range(3)]
    jax.block_until_ready(g(*runs[0]))
    with compile_events() as events:
        for y, s in runs[1:]:
            jax.block_until_ready(g(y, s))
    assert not events, dict(events)
