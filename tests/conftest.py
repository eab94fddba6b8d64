"""Test configuration.

Simulated CPU devices, so that sharding is tested on any machine: XLA reads the flag when
JAX initialises its backends, so it is set here, before any test imports JAX. Four by
default; ``NLLAX_TEST_DEVICES=n`` runs the suite with ``n`` instead (the second CI pass,
``make test-xla2``, uses 1: tests that need four devices skip, naming the reason). An
explicit ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` wins over both.
On a GPU/TPU machine the real devices are used as well (`jax.devices()`).

A persistent XLA compilation cache (tests only, never the library): compiling is most of
the suite's time, and a second run with the same programs and flags loads the executables
from ``.pytest_cache/jax-compilation-cache`` (``make clean`` removes it). Set through the
environment, so that the processes the tests start (CLI, notebooks, multi-process) share
it. ``NLLAX_TEST_JAX_CACHE=0`` turns it off, any other value names the directory.
The cache key covers the program, the XLA flags and the jaxlib version, so a changed flag
or a new jaxlib compiles afresh.

Cheap compiles (tests only): ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` and XLA:CPU's loop
emitters (``--xla_cpu_use_fusion_emitters=false``) and one LLVM module per program
(``--xla_cpu_parallel_codegen_split_count=1``), where this XLA knows them, unless
``NLLAX_TEST_OPTIMIZE=1``, which ``make test-xla2`` sets (see below and docs/testing.md).

``NLLAX_TEST_COMPILES=1`` prints the number of XLA compiles and their seconds per test
module at the end (run without xdist, ``-p no:xdist``, to see them).
"""

import os
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DEVICES_FLAG = "--xla_force_host_platform_device_count"
if _DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
    _n = int(os.environ.get("NLLAX_TEST_DEVICES", "4"))
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {_DEVICES_FLAG}={_n}").strip()

# Cheap compiles: the suite compiles thousands of small programs that each run for
# microseconds, so XLA's backend optimisation (LLVM -O2 and its expensive passes) costs far
# more than it saves. ``jax_disable_most_optimizations`` (backend optimisation level 0, no
# expensive LLVM passes; the HLO passes still run) saves about a fifth of the CPU time of
# the harness modules. Set through the environment, so the processes the tests start get
# it too. ``NLLAX_TEST_OPTIMIZE=1`` keeps XLA's default, fully optimised compiles: the
# second CI pass (``make test-xla2``) runs the numeric core that way, so the code users run
# is tested too.
_FUSION_FLAG = "--xla_cpu_use_fusion_emitters"
_SPLIT_FLAG = "--xla_cpu_parallel_codegen_split_count"


def _xla_knows(flag: str) -> bool:
    """Whether this jaxlib's XLA accepts ``flag`` (an unknown flag in ``XLA_FLAGS`` aborts
    the process): asked once, in a child process, by the first process that needs it."""
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flag}",
               JAX_PLATFORMS="cpu")
    try:
        r = subprocess.run([sys.executable, "-c", "import jax; jax.jit(abs)(1.0)"], env=env,
                           capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


if os.environ.get("NLLAX_TEST_OPTIMIZE", "") in ("", "0"):
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    # XLA:CPU's older loop emitters instead of its MLIR fusion emitters: measured on this
    # 2-core machine (docs/testing.md), tests/test_families.py compiled in 38 s instead of
    # 61 s and test_harness_equivalences in 67 s instead of 77 s, cold. The fit does the
    # same on CPU for its own programs (nllax._fit._XLA_OPTIONS), and the second CI pass
    # keeps XLA's defaults.
    # And one LLVM module per program instead of XLA:CPU's default split into up to 32
    # modules compiled in parallel (--xla_cpu_parallel_codegen_split_count): for the
    # suite's small programs each part costs its own LLVM setup and codegen, and the two
    # xdist workers already use both cores. Measured (bench/TEST_TIME.md, "Suite-wide
    # levers"): about a fifth less XLA compile CPU time. Not bit-identical: the kernels,
    # grouped into other modules, round differently in the last bits (measured up to ~34
    # float32 eps on the harness's programs), another valid code generation, as the loop
    # emitters are; the second CI pass keeps XLA's default split, as users run it.
    cheap = [f for f in (f"{_FUSION_FLAG}=false", f"{_SPLIT_FLAG}=1")
             if f.split("=")[0] not in os.environ.get("XLA_FLAGS", "")]
    if cheap and not _xla_knows(" ".join(cheap)):  # one child process for both, usually
        cheap = [f for f in cheap if _xla_knows(f)]
    if cheap:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {' '.join(cheap)}".strip()

_cache = os.environ.get("NLLAX_TEST_JAX_CACHE",
                        str(_ROOT / ".pytest_cache" / "jax-compilation-cache"))
CACHE_DIR = None if _cache in ("", "0") else _cache
if CACHE_DIR is not None:
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", CACHE_DIR)
    # every program, however small and quick to compile (the suite's are small)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import collections  # noqa: E402

import pytest  # noqa: E402

# Reference data are read in place; NLLAX_DATA overrides the default ../shared/data.
DATA_DIR = pathlib.Path(
    os.environ.get("NLLAX_DATA", _ROOT / ".." / "shared" / "data")
).resolve()


def pytest_configure(config):
    if CACHE_DIR is not None:
        # Two xdist workers may write and read one entry at once (JAX writes entries in
        # place); a torn read is a cache miss that JAX reports as a warning and then
        # compiles, which is the right outcome, not a test failure.
        config.addinivalue_line(
            "filterwarnings", "ignore:Error reading persistent compilation cache entry")
        config.addinivalue_line(
            "filterwarnings", "ignore:Error writing persistent compilation cache entry")
    if os.environ.get("NLLAX_TEST_COMPILES", "") not in ("", "0"):
        config.pluginmanager.register(_CompileCounter(), "nllax-compile-counter")
    if os.environ.get("NLLAX_TEST_TIMES", "") not in ("", "0"):
        config.pluginmanager.register(_TestTimes(os.environ["NLLAX_TEST_TIMES"]),
                                      "nllax-test-times")
    # The modules' order is ours (pytest_collection_modifyitems below), not xdist's
    # default of "most tests first", which sends the notebooks (3 and 4 tests, each a
    # kernel running a whole tutorial) to the end of the run, where they run alone.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


# The costliest modules first (CPU seconds on a cold cache, measured: docs/testing.md), so
# that with `--dist loadfile` the two workers end together instead of one finishing a long
# module while the other idles. The other modules follow, most tests first.
SLOW_FIRST = (
    "test_cli.py",  # its module fixture runs the whole report (the longest single step)
    "test_notebook.py",
    "test_multiprocess.py",
    "test_notebook_neural_networks.py",
    "test_wrappers.py",
    "test_bench_smoke.py",
    "test_nist.py",
    "test_harness_validity.py",
    "test_harness_reference.py",
    "test_harness_gradients.py",
    "test_checked.py",
    "test_harness_float32.py",
    "test_harness_properties.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    count = collections.Counter(item.path for item in items)
    # stable: the tests of one module keep their order
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -count[item.path],
                                 str(item.path)))


class _CompileCounter:
    """XLA compiles per test module, from jax.monitoring: every program JAX compiles,
    counted also when its executable comes from the persistent cache (then in seconds
    the load, not a compile)."""

    def __init__(self):
        import jax.monitoring

        self.module = "<collection>"
        self.count = collections.Counter()
        self.secs = collections.Counter()
        self.hits = collections.Counter()
        jax.monitoring.register_event_duration_secs_listener(self._duration)
        jax.monitoring.register_event_listener(self._event)

    def _duration(self, event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count[self.module] += 1
            self.secs[self.module] += duration

    def _event(self, event, **_):
        if event == "/jax/compilation_cache/cache_hits":
            self.hits[self.module] += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self.module = item.nodeid.split("::")[0]

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        tr.section("XLA compiles per module")
        for m in sorted(self.count.keys() | self.hits.keys(), key=lambda m: -self.secs[m]):
            tr.write_line(f"{self.count[m]:6d} compiles {self.secs[m]:8.1f} s  (of them "
                          f"{self.hits[m]:5d} from the persistent cache)  {m}")
        tr.write_line(f"{sum(self.count.values()):6d} compiles {sum(self.secs.values()):8.1f} s  "
                      f"(of them {sum(self.hits.values()):5d} from the persistent cache)  total")


class _TestTimes:
    """Per-test costs, for bench/test_time.py: ``NLLAX_TEST_TIMES=<dir>`` writes one line
    per test (setup, call and teardown together, so a module fixture counts in the test
    that first needs it) to ``<dir>/times-<worker>.tsv``: node id, CPU seconds of this
    process (all its threads: XLA compiles on several), CPU seconds of the child processes
    it waited for (CLI, notebook kernels, multi-process), wall seconds, XLA compiles, their
    seconds, and persistent-cache hits among them. Load-independent enough to find the
    costly modules (CPU seconds still grow somewhat under load: shared caches)."""

    def __init__(self, folder):
        import jax.monitoring

        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        self.file = open(pathlib.Path(folder) / f"times-{worker}.tsv", "a", buffering=1)
        self.compiles = self.compile_secs = self.hits = 0
        jax.monitoring.register_event_duration_secs_listener(self._duration)
        jax.monitoring.register_event_listener(self._event)

    def _duration(self, event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            self.compiles += 1
            self.compile_secs += duration

    def _event(self, event, **_):
        if event == "/jax/compilation_cache/cache_hits":
            self.hits += 1

    @staticmethod
    def _now():
        import resource
        import time

        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.process_time(), child.ru_utime + child.ru_stime, time.perf_counter())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        before = self._now(), self.compiles, self.compile_secs, self.hits
        yield
        after = self._now()
        cpu, child, wall = (a - b for a, b in zip(after, before[0]))
        self.file.write(f"{item.nodeid}\t{cpu:.3f}\t{child:.3f}\t{wall:.3f}\t"
                        f"{self.compiles - before[1]}\t{self.compile_secs - before[2]:.3f}\t"
                        f"{self.hits - before[3]}\n")


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA_DIR


@pytest.fixture
def x64():
    """Float64 for one test, without flipping the global setting for the others."""
    import jax

    with jax.enable_x64(True):
        yield
