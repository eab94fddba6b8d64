"""Two JAX processes, the real multi-host code path, on this one machine.

``tests/_multiprocess_worker.py`` is started twice (process ids 0 and 1), each with two
simulated CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=2``), joined by
``jax.distributed.initialize("127.0.0.1:PORT", num_processes=2, process_id=i)`` with CPU
collectives over gloo. The data (n = 400) are split by rows over the 4-device mesh of
both processes, each process holding only its own 200 rows
(``jax.make_array_from_process_local_data``). Both processes compute the NLL and its
gradient at a probe point, ``nllax.fit`` (default damped Newton, and ``optax.lbfgs``),
``nllax.summary`` (observed and robust) at θ̂ and ``nllax.verify.gradient_ratio``; each
result must equal this (single, non-distributed) process's result on the whole data on
one CPU device to 1e-12 relative in float64.

One launch for the module (one compile set per process); this process computes the
reference while the workers run. Only loopback addresses: the coordinator listens on
127.0.0.1 (``JAX_COORDINATOR_BIND_ADDRESS``); gloo binds to the address the host name
resolves to (the loopback on machines whose host name maps to 127.0.0.1; jax offers no
public setting for it).

Why 1e-12 holds on any machine. Every quantity is a sum over the 400 observations, which
the processes add in another order (per device, then across devices). For any order,
``|fl(sum t_i) - sum t_i| <= (n - 1) u sum |t_i|`` (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., eq. 4.4), u = 2**-53, plus a few roundings in each term:
the budget below is ``GAMMA = (n + 16) u`` times the sum of absolute terms. Each test
computes that bound for its quantity from closed-form per-observation terms (NumPy, in
this module) and asserts that it is below 1e-12 (the precondition that makes 1e-12 a
derived tolerance, not an observed one) before comparing. For the fits the certificate is
``|theta - theta_hat| <= |grad| / lambda_min(H)`` for each run; for the standard errors the
first-order perturbation of ``H^{-1}`` (and of ``H^{-1} M H^{-1}``, M the outer product of
scores) by the rounding of its sums and by the two runs' difference in θ̂, componentwise.
"""

from __future__ import annotations

import pathlib
import socket
import subprocess
import sys
import time

import _children
import _multiprocess_worker as W
import jax
import numpy as np
import pytest

RTOL = 1e-12
U = np.finfo(np.float64).eps / 2  # unit roundoff of float64
GAMMA = (W.N + 16) * U  # rounding budget of one sum of N terms (module docstring)
TIMEOUT_S = 300  # both workers: ~17 s on an idle 2-core machine, most of it compilation
WORKER = pathlib.Path(W.__file__).resolve()


# --------------------------------------------------------------------------------------
# The launch.


def _free_loopback_port() -> int:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    except OSError as e:
        pytest.skip(f"two JAX processes need a TCP port on 127.0.0.1, which this platform "
                    f"refuses ({e})")


def _child_env(port: int) -> dict[str, str]:
    env = _children.env(devices=2)
    env["JAX_PLATFORMS"] = "cpu"  # the CPU (gloo) path, also on an accelerator machine
    env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"  # the default now; older jax needs it
    env["JAX_COORDINATOR_BIND_ADDRESS"] = f"127.0.0.1:{port}"  # default: every interface
    return env


def _tail(path: pathlib.Path, n: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no output)"
    return text[-n:]


def _wait(procs, logs, deadline: float) -> None:
    """Waits for both workers; as soon as one fails (or time is up) the other is killed,
    since it would otherwise wait for its peer until the distributed timeout."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
        late = time.monotonic() > deadline
        if failed or late:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            why = (f"process {failed[0]} exited with code {codes[failed[0]]}" if failed
                   else f"the two processes did not finish within {TIMEOUT_S} s")
            pytest.fail(why + "".join(f"\n--- process {i} output:\n{_tail(log)}"
                                      for i, log in enumerate(logs)))
        if all(c == 0 for c in codes):
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(reference, [process 0 results, process 1 results]), NumPy dicts."""
    if sys.platform == "win32":
        pytest.skip("jaxlib has no gloo CPU collectives on Windows: two JAX processes "
                    "cannot share a computation there")
    out = tmp_path_factory.mktemp("multiprocess")
    port = _free_loopback_port()
    env = _child_env(port)
    logs = [out / f"process_{i}.log" for i in range(W.NUM_PROCESSES)]
    procs = []
    try:
        for i, log in enumerate(logs):
            with open(log, "wb") as f:
                procs.append(subprocess.Popen(
                    [sys.executable, str(WORKER), str(i), str(port), str(out)],
                    stdout=f, stderr=subprocess.STDOUT, env=env, cwd=out))
        deadline = time.monotonic() + TIMEOUT_S
        with jax.enable_x64(True):  # the reference, while the workers run
            cpu = jax.devices("cpu")[0]
            X, y = (jax.device_put(a, cpu) for a in W.data())
            reference = W.compute(X, y, cpu)
        _wait(procs, logs, deadline)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    got = [dict(np.load(out / f"process_{i}.npz")) for i in range(W.NUM_PROCESSES)]
    return reference, got


# --------------------------------------------------------------------------------------
# Closed-form per-observation terms (NumPy float64) for the rounding bounds.
# Parameters ordered (b, w_1..w_3, log_scale); t_i = r_i^2 e^{-2s} / 2 + s + log(2 pi) / 2.


def _theta(d: dict, prefix: str = "") -> np.ndarray:
    return np.concatenate([np.ravel(d[prefix + "b"]), np.ravel(d[prefix + "w"]),
                           np.ravel(d[prefix + "log_scale"])]).astype(np.float64)


def _terms(theta: np.ndarray):
    """Per-observation NLL terms t (n,), gradients g (n, k), Hessians h (n, k, k)."""
    X, y = W.data()
    Xt = np.column_stack([np.ones(W.N), X])
    s = theta[-1]
    r = y - Xt @ theta[:-1]
    e = np.exp(-2 * s)
    t = 0.5 * r**2 * e + s + 0.5 * np.log(2 * np.pi)
    g = np.column_stack([-r[:, None] * Xt * e, 1 - r**2 * e])
    k = theta.size
    h = np.zeros((W.N, k, k))
    h[:, :-1, :-1] = Xt[:, :, None] * Xt[:, None, :] * e
    h[:, :-1, -1] = h[:, -1, :-1] = 2 * r[:, None] * Xt * e
    h[:, -1, -1] = 2 * r**2 * e
    return t, g, h


def _sum_bound(terms: np.ndarray) -> float:
    """Relative difference bound between two summation orders of ``terms`` over axis 0
    (two runs, each within GAMMA * sum|t_i|), in the 2-norm."""
    total = np.linalg.norm(terms.sum(axis=0))
    return 2 * GAMMA * np.linalg.norm(np.abs(terms).sum(axis=0)) / total


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _each(got):
    return [pytest.param(i, id=f"process{i}") for i in range(len(got))]


# --------------------------------------------------------------------------------------
# The checks.


def test_two_processes_two_devices_each_rows_split(runs):
    _, got = runs
    per = W.N // W.NUM_PROCESSES // 2  # rows per device
    for i, g in enumerate(got):
        processes, devices, local, rows = g["topology"]
        assert (processes, devices, local, rows) == (2, 4, 2, W.N)
        # this process held only its own rows, one block per local device
        expected = [(2 * i * per, (2 * i + 1) * per), ((2 * i + 1) * per, (2 * i + 2) * per)]
        assert g["local_rows"].tolist() == [list(e) for e in expected]


def test_nll_and_gradient(runs):
    ref, got = runs
    t, g, _ = _terms(_theta({k: np.asarray(v) for k, v in W.PROBE.items()}))
    value_bound, grad_bound = _sum_bound(t), _sum_bound(g)
    assert value_bound <= RTOL and grad_bound <= RTOL  # 1e-12 follows from the rounding
    for out in got:
        assert _rel(out["nll"], ref["nll"]) <= RTOL
        assert _rel(_theta(out, "grad_"), _theta(ref, "grad_")) <= RTOL


@pytest.mark.parametrize("method", ["newton", "lbfgs"])
def test_fit(runs, method):
    ref, got = runs
    p = f"fit_{method}_"
    theta_ref = _theta(ref, p)
    t, g, h = _terms(theta_ref)
    lam_min = np.linalg.eigvalsh(h.sum(axis=0))[0]
    grad_floor = GAMMA * np.linalg.norm(np.abs(g).sum(axis=0))  # rounding of |grad| itself
    assert ref[p + "converged"]
    for out in got:
        assert out[p + "converged"]
        # Certificate: each run is within (|grad| + rounding) / lambda_min of θ̂.
        bound = (out[p + "grad_norm"] + ref[p + "grad_norm"] + 2 * grad_floor) / lam_min
        assert bound <= RTOL * np.linalg.norm(theta_ref)
        assert _rel(_theta(out, p), theta_ref) <= RTOL
        assert _rel(out[p + "value"], ref[p + "value"]) <= max(_sum_bound(t), RTOL)


def _summary_bounds(theta_a: np.ndarray, theta_b: np.ndarray, robust: bool):
    """First-order, componentwise bounds (Higham, ch. 7 and 14: ``|d(H^-1)| <=
    |H^-1| |dH| |H^-1|``) on the relative difference of each standard error and of the
    covariance (Frobenius norm) between a run at theta_a and one at theta_b."""
    _, ga, ha = _terms(theta_a)
    _, gb, hb = _terms(theta_b)
    k = theta_a.size
    H = ha.sum(axis=0)
    B = np.linalg.inv(H)
    aB = np.abs(B)
    # |dH|: rounding of both runs' sums + the two θ̂ (exact arithmetic) + the inversion
    # (a backward-stable k x k factorisation; 16 k kappa u is generous for k = 5).
    dH = (2 * GAMMA * np.abs(ha).sum(axis=0) + np.abs(hb.sum(axis=0) - H)
          + 16 * k * np.linalg.cond(H) * U * np.abs(H))
    dB = aB @ dH @ aB
    if not robust:
        return 0.5 * np.diag(dB) / np.diag(B), np.linalg.norm(dB) / np.linalg.norm(B)
    M = ga.T @ ga  # the scores are -g: the same outer products
    aM = np.abs(M)
    dM = 2 * GAMMA * np.abs(ga).T @ np.abs(ga) + np.abs(gb.T @ gb - M) + 16 * k * U * aM
    C = B @ M @ B
    dC = dB @ aM @ aB + aB @ dM @ aB + aB @ aM @ dB  # C = B M B
    return 0.5 * np.diag(dC) / np.diag(C), np.linalg.norm(dC) / np.linalg.norm(C)


@pytest.mark.parametrize("covariance", ["observed", "robust"])
def test_summary(runs, covariance):
    ref, got = runs
    p = f"summary_{covariance}_"
    theta_ref = _theta(ref, "fit_newton_")
    se_ref = _theta(ref, p + "stderr_")
    for out in got:
        se_bound, cov_bound = _summary_bounds(theta_ref, _theta(out, "fit_newton_"),
                                              covariance == "robust")
        # The standard errors' bound is below 1e-12; the covariance's Frobenius bound can
        # exceed it slightly (it adds up the entries' worst cases, 1.15e-12 seen here), so
        # the covariance is held to the larger of 1e-12 and its bound.
        assert np.all(se_bound <= RTOL)
        se = _theta(out, p + "stderr_")
        assert np.all(np.abs(se - se_ref) <= RTOL * se_ref)
        assert _rel(out[p + "cov"], ref[p + "cov"]) <= max(RTOL, cov_bound)
        assert _rel(out[p + "loglik"], ref[p + "loglik"]) <= RTOL


def test_gradient_ratio(runs):
    ref, got = runs
    _, g, _ = _terms(_theta({k: np.asarray(v) for k, v in W.PROBE.items()}))
    # The SSE's per-observation gradient, -2 r_i (1, x_i), is the NLL's (b, w) columns
    # times a constant, so it has their conditioning; eps_g bounds one run's rounding.
    eps_g = _sum_bound(g[:, :-1]) / 2
    assert 8 * eps_g <= RTOL
    for out in got:
        # ratio and cosine move by at most 4 eps_g per run (first order), the residual
        # (an absolute number, both at rounding level) by 2 eps_g per run.
        assert abs(out["ratio"] - ref["ratio"]) <= RTOL * abs(ref["ratio"])
        assert abs(out["cosine"] - ref["cosine"]) <= RTOL
        assert abs(out["residual"] - ref["residual"]) <= RTOL
    assert ref["ratio"] == pytest.approx(1 / (2 * W.FIXED_SCALE**2), rel=RTOL)
