"""One of the two JAX processes of ``tests/test_multiprocess.py``, and the case they share.

Run as ``python tests/_multiprocess_worker.py PROCESS_ID PORT OUT_DIR`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` in the environment. It joins the
other process with ``jax.distributed.initialize("127.0.0.1:PORT", num_processes=2,
process_id=PROCESS_ID)`` (CPU collectives over gloo), builds one 4-device ``"data"`` mesh
over both processes, loads only its own half of the rows into a global array
(``jax.make_array_from_process_local_data``) and writes the results of :func:`compute`
to ``OUT_DIR/process_<id>.npz``. The test imports this module for :func:`data` and
:func:`compute` and runs them in its own, single process for the reference.

JAX is imported inside the functions: ``jax.distributed.initialize`` must run before
anything starts a JAX backend.

The case: a Gaussian linear model with the noise scale learned on the log scale,
``theta = {"w": (3,), "b": (), "log_scale": ()}``, n = 400 seeded observations
(Student-t noise, so that the robust and the observed covariances differ).
"""

from __future__ import annotations

import os
import sys

import numpy as np

N = 400  # observations: 100 per device on the 2-process x 2-device mesh
D = 3
NUM_PROCESSES = 2
PROBE = {"w": [0.3, -0.1, 0.2], "b": 0.5, "log_scale": 0.1}  # far from θ̂: large gradients
START = {"w": [0.0, 0.0, 0.0], "b": 0.0, "log_scale": 0.0}
FIXED_SCALE = 2.0  # the NLL of gradient_ratio: a = 1 / (2 sigma^2) = 1/8 times the SSE


def data() -> tuple[np.ndarray, np.ndarray]:
    """Seeded float64 design and response (the same in every process)."""
    rng = np.random.default_rng(20261201)
    X = rng.normal(size=(N, D))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.5 * rng.standard_t(df=5, size=N)
    return X, y


def _loc(p, X):
    return X @ p["w"] + p["b"]


def log_lik(p, X, y):
    import jax.numpy as jnp

    import nllax

    return nllax.gaussian.log_prob(y, _loc(p, X), scale=jnp.exp(p["log_scale"]))


def nll(p, X, y):
    import jax.numpy as jnp

    return -jnp.sum(log_lik(p, X, y))


def nll_fixed_scale(p, X, y):
    import nllax

    return nllax.gaussian.nll(y, _loc(p, X), FIXED_SCALE)


def sse(p, X, y):
    import nllax

    return nllax.losses.sse(y, _loc(p, X))


_OPTIMIZERS: dict = {}


def _optimizer(name):
    """One optax object per process, so that a second `compute` reuses the compiled loop."""
    import optax

    if name not in _OPTIMIZERS:
        _OPTIMIZERS[name] = optax.lbfgs()
    return _OPTIMIZERS[name]


# lbfgs is run to a gradient norm of 1e-12 * |f| (the default, sqrt(eps), would leave
# θ̂ uncertain to ~1e-8 / lambda_min, far above the 1e-12 the test compares at).
LBFGS_TOL = 1e-12


def compute(X, y, place) -> dict[str, np.ndarray]:
    """Every quantity the test compares, as NumPy arrays (call under float64).

    ``place`` puts the parameters where they belong: a device, or the replicated
    sharding of the mesh."""
    import jax
    import jax.numpy as jnp

    import nllax

    def params(p):
        return jax.device_put({k: jnp.asarray(v, jnp.float64) for k, v in p.items()}, place)

    probe, start = params(PROBE), params(START)
    out = {}
    value, grad = jax.jit(jax.value_and_grad(nll))(probe, X, y)
    out["nll"] = value
    out.update({f"grad_{k}": v for k, v in grad.items()})
    fits = {
        "newton": nllax.fit(nll, start, X, y),
        "lbfgs": nllax.fit(nll, start, X, y, optimizer=_optimizer("lbfgs"), tol=LBFGS_TOL),
    }
    for name, r in fits.items():
        out.update({f"fit_{name}_{k}": v for k, v in r.params.items()})
        out[f"fit_{name}_value"] = r.value
        out[f"fit_{name}_grad_norm"] = r.grad_norm
        out[f"fit_{name}_converged"] = r.converged
    for cov in ("observed", "robust"):
        s = nllax.summary(log_lik, fits["newton"].params, X, y, covariance=cov)
        out.update({f"summary_{cov}_stderr_{k}": v for k, v in s.stderr.items()})
        out[f"summary_{cov}_cov"] = s.cov
        out[f"summary_{cov}_loglik"] = s.loglik
    r = nllax.verify.gradient_ratio(nll_fixed_scale, sse, probe, X, y)
    out.update(ratio=r.ratio, cosine=r.cosine, residual=r.residual)
    return {k: np.asarray(v) for k, v in out.items()}


def main(process_id: int, port: int, out_dir: str) -> None:
    import jax

    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=NUM_PROCESSES,
                               process_id=process_id, initialization_timeout=120)
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    with jax.enable_x64(True):
        mesh = Mesh(np.array(jax.devices()), ("data",))  # every device of both processes
        X, y = data()
        per = N // NUM_PROCESSES
        mine = slice(process_id * per, (process_id + 1) * per)  # this process's rows only
        Xg = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data", None)), X[mine])
        yg = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), y[mine])
        out = compute(Xg, yg, NamedSharding(mesh, P()))
        out["topology"] = np.asarray([jax.process_count(), jax.device_count(),
                                      jax.local_device_count(), Xg.shape[0]])
        out["local_rows"] = np.asarray(sorted(
            (s.index[0].start, s.index[0].stop) for s in Xg.addressable_shards))
    np.savez(os.path.join(out_dir, f"process_{process_id}.npz"), **out)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
