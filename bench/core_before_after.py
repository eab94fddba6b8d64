"""Same process, round-robin: the kernels of commit 8de16bd (before issue 10's second
round) against the working tree's, value-and-grad of the sum of the per-observation terms
(no validity checks, no pipeline), float32, with the HLO pass counts (bench/_hlo.py).

    PYTHONPATH=src python bench/core_before_after.py [n=1e6] [rounds=7] [name filter]
"""
import pathlib, re, subprocess, sys, tempfile, time, math, numpy as np, jax, jax.numpy as jnp
sys.path.insert(0, "bench")
OLD = pathlib.Path(tempfile.mkdtemp())
for _f in ("tweedie", "huber", "_losses_robust", "gamma", "cauchy"):
    (OLD / f"{_f}.py").write_text(subprocess.run(
        ["git", "show", f"8de16bd:src/nllax/{_f}.py"], capture_output=True, text=True,
        check=True).stdout)
import _hlo
from nllax import tweedie as T, huber as H, gamma as G, cauchy as C, _losses_robust as LR, _math as M

def grab(path, names, extra=""):
    src = open(path).read()
    ns = {"jax": jax, "jnp": jnp, "math": math, "M": M}
    exec(extra, ns)
    for name in names:
        m = re.search(r"^(@[^\n]*\n)*(def %s\(.*?)(?=^\S)" % name, src, re.S | re.M)
        exec(m.group(0), ns)
    return ns

old_t = grab(OLD / "tweedie.py", ["_nodes", "log_series"],
             "from jax.scipy.special import gammaln\nTERMS = 128\n_HALF = 64\n_WIDTH = 12.0\n")
old_h = grab(OLD / "huber.py", ["rho"])
old_lc = grab(OLD / "_losses_robust.py", ["_log_cosh_elem"], "from nllax import hyperbolic_secant as _hs\n_LOG2 = math.log(2.0)\n")
old_g = grab(OLD / "gamma.py", ["ratio_deviance"])
src = open(OLD / "cauchy.py").read()
ns = {"jax": jax, "jnp": jnp}
exec(src[src.index("@jax.custom_jvp\ndef _log1p_square"):src.index("def _log_prob")], ns)
old_c = ns

n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10**6
rng = np.random.default_rng(0)
f32 = lambda a: jnp.asarray(a, jnp.float32)
r = f32(rng.normal(size=n) * 1.5)
y = f32(np.exp(rng.normal(size=n) * 0.5) * rng.gamma(3, 1 / 3, n))
nt = min(n, 10**5)
yt = f32(rng.gamma(2.0, 0.7, size=nt) + 1e-3)
cases = {
  "tweedie log W (phi 1.3, p 1.4), n=%d" % nt: (
      lambda e, yy: jnp.sum(old_t["log_series"](yy * jnp.exp(0 * e), jnp.full_like(yy, 1.3), jnp.full_like(yy, 1.4))),
      lambda e, yy: jnp.sum(T.log_series(yy * jnp.exp(0 * e), jnp.full_like(yy, 1.3), jnp.full_like(yy, 1.4))),
      f32(np.zeros(nt)), yt),
  "huber rho(|r|, 0.7)": (lambda p, yy: jnp.sum(old_h["rho"](M.abs_(yy - p), 0.7)),
                          lambda p, yy: jnp.sum(H.rho(M.abs_(yy - p), 0.7)), f32(np.zeros(n)), r),
  "log_cosh": (lambda p, yy: jnp.sum(old_lc["_log_cosh_elem"](yy - p)),
               lambda p, yy: jnp.sum(LR._log_cosh_elem(yy - p)), f32(np.zeros(n)), r),
  "gamma 2 ratio_deviance(y e^-eta)": (
      lambda e, yy: jnp.sum(2.0 * old_g["ratio_deviance"](yy * jnp.exp(-e), jnp.log(yy) - e)),
      lambda e, yy: jnp.sum(2.0 * G.ratio_deviance(yy * jnp.exp(-e), jnp.log(yy) - e)),
      f32(rng.normal(size=n) * 0.3), y),
  "cauchy log1p(z^2)": (lambda p, yy: jnp.sum(old_c["_log1p_square"](yy - p)),
                        lambda p, yy: jnp.sum(C._log1p_square(yy - p)), f32(np.zeros(n)), r),
}
for name, (fo, fn, p, d) in [(k, v) for k, v in cases.items() if len(sys.argv) < 4 or sys.argv[3] in k]:
    cs = {}
    for k, f in (("old", fo), ("new", fn)):
        c = jax.jit(jax.value_and_grad(f)).lower(p, d).compile()
        cs[k] = c
    vo, vn = (float(cs[k](p, d)[0]) for k in ("old", "new"))
    ts = {k: [] for k in cs}
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 7):
        for k, c in cs.items():
            t = time.perf_counter(); jax.block_until_ready(c(p, d)); ts[k].append(time.perf_counter() - t)
    nn = d.shape[0]
    print(f"{name}: old {np.median(ts['old'])*1e3:.2f} ms, {_hlo.fmt(_hlo.summary(cs['old'].as_text(), nn))}; "
          f"new {np.median(ts['new'])*1e3:.2f} ms, {_hlo.fmt(_hlo.summary(cs['new'].as_text(), nn))}; "
          f"values {vo:.7g} / {vn:.7g}", flush=True)
