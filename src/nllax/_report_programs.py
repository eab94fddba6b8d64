r"""``nllax report``'s compiled programs, kept: a warm run neither traces nor lowers.

JAX's persistent compilation cache (:mod:`nllax._report_extras`) skips XLA's compile on a
second run, but not the Python tracing and the lowering to StableHLO of every program,
which were most of a warm report (9.6 s of 12.2 s, idle machine). This module keeps the
report's programs themselves (one measurement per row, one fit loop per row group, the
non-smooth polish): the first run lowers and compiles each one (``jit(f).lower(...)
.compile()``, the same jitted function the report calls otherwise) and writes the
executable, serialized with :mod:`jax.experimental.serialize_executable`, to
``DIR/programs``; a later run loads it and calls it. It is the very program the traced
path compiles, so the numbers do not change (checked bit for bit by the tests).
(:func:`jax.export` would keep the StableHLO instead, but its serialization needs the
``flatbuffers`` package, which is not a dependency of nllax.)

An entry is found by a SHA-256 key of everything that defines the program:

* the nllax source (every ``.py`` file of the package, so an edited library never runs a
  stale program), the versions of nllax, jax, jaxlib and optax, Python's version and the
  machine;
* the program's name and a *fingerprint* of the Python objects it was built from (the
  equivalence rows, the model function, the solver): functions by their module, name and
  byte code, recursively through their closures and defaults, so that a row replaced at
  run time (a monkeypatched or user-registered one) gets its own key; an object with no
  stable fingerprint is not stored and is simply traced, as before;
* the shapes, dtypes and tree structure of the arguments, the device (platform, id, kind,
  platform version) and whether 64-bit mode is on.

A missing, unreadable, corrupt or mismatching entry is not an error: the program is
compiled as usual and the entry (re)written (atomically, by renaming a temporary file). A
program that cannot be serialized is called as a plain jitted function. Within one process
the programs are kept in memory (a second report in the same process, as in the tests,
loads nothing again).

Two traps of loading executables that were never lowered in this process, both handled
here (jax 0.10): a CPU program that calls LAPACK (the fits' Cholesky) needs JAX's LAPACK
table filled in first, which JAX does only while lowering a linear-algebra op (without it:
a segfault); and an executable that JAX itself loaded from its persistent cache does not
serialize into a loadable one ("Function ... not found" on the next run), so the programs
stored here are compiled with JAX's persistent cache off.

Like JAX's persistent cache, the folder holds executable code: keep it where only you can
write.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import inspect
import importlib.metadata
import os
import pathlib
import pickle
import platform
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any

FORMAT = 1  # bumped when what is stored changes

_CALLERS: dict[str, Any] = {}  # key -> loaded or compiled executable, this process
_TAG: str | None = None


def clear_memory() -> None:
    """Forgets the programs loaded in this process (tests: a fresh process's behaviour)."""
    _CALLERS.clear()


def source_tag() -> str:
    """The SHA-256 of the nllax sources and the versions a program depends on."""
    global _TAG
    if _TAG is None:
        import nllax

        h = hashlib.sha256(f"nllax-report-programs {FORMAT}\n".encode())
        for pkg in ("nllax", "jax", "jaxlib", "optax"):
            try:
                v = importlib.metadata.version(pkg)
            except importlib.metadata.PackageNotFoundError:
                v = getattr(sys.modules.get(pkg), "__version__", "?")
            h.update(f"{pkg} {v}\n".encode())
        h.update(f"{nllax.__version__} {sys.version} {platform.machine()}\n".encode())
        # The executables are machine code for this CPU and these compiler settings: a
        # cache folder shared between hosts (a network home) must not hand an AVX-512
        # program to a CPU without it, nor one compiled under other XLA flags.
        h.update(f"{_cpu_identity()}\n{os.environ.get('XLA_FLAGS', '')}\n".encode())
        h.update(f"{os.environ.get('JAX_DISABLE_MOST_OPTIMIZATIONS', '')}\n".encode())
        root = pathlib.Path(nllax.__file__).resolve().parent
        h.update(source_digest(root).encode())
        _TAG = h.hexdigest()
    return _TAG


def _cpu_identity() -> str:
    """The CPU's model and instruction-set flags (Linux: /proc/cpuinfo), else what
    :mod:`platform` knows."""
    try:
        lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.processor()} {platform.platform()}"
    keep = sorted({ln.strip() for ln in lines
                   if ln.split(":")[0].strip() in ("model name", "flags", "Features",
                                                   "CPU part", "vendor_id")})
    return hashlib.sha256("\n".join(keep).encode()).hexdigest()


def source_digest(root: pathlib.Path) -> str:
    """SHA-256 over the relative paths and contents of every ``.py`` file under ``root``."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


class Unstable(Exception):
    """An object without a fingerprint that is stable across processes."""


_SIMPLE = (type(None), bool, int, float, complex, str, bytes)


def fingerprint(obj: Any, _depth: int = 0, _seen: frozenset = frozenset()) -> str:
    """A text that is the same in every process for the same definition of ``obj``
    (functions by module, qualified name and byte code, through closures and defaults;
    dataclasses and tuples by their fields). Raises :class:`Unstable` for anything else."""
    import dataclasses

    import numpy as np

    if _depth > 64:
        raise Unstable("too deep")
    rec = (lambda o: fingerprint(o, _depth + 1, _seen | {id(obj)}))
    if isinstance(obj, _SIMPLE) or isinstance(obj, (enum.Enum, inspect.Signature,
                                                    inspect.Parameter)):
        text = f"{type(obj).__qualname__}:{obj!r}"
        if " at 0x" in text:  # an address: not the same in the next process
            raise Unstable(text)
        return text
    if id(obj) in _seen:  # a cycle (a recursive closure): its name is enough
        return f"<cycle {type(obj).__qualname__}>"
    if isinstance(obj, (tuple, list, frozenset, set)):
        items = sorted(map(rec, obj)) if isinstance(obj, (set, frozenset)) else map(rec, obj)
        return f"{type(obj).__qualname__}({','.join(items)})"
    if isinstance(obj, (dict, types.MappingProxyType)):
        return "{" + ",".join(f"{rec(k)}:{rec(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        a = np.asarray(obj)
        return f"nd({a.dtype},{a.shape},{hashlib.sha256(a.tobytes()).hexdigest()})"
    if isinstance(obj, np.dtype):
        return f"dtype({obj})"
    if isinstance(obj, functools.partial):
        return f"partial({rec(obj.func)},{rec(obj.args)},{rec(obj.keywords)})"
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        cells = tuple(c.cell_contents for c in (obj.__closure__ or ()))
        text = (f"fn({obj.__module__}.{obj.__qualname__},{_code(code)},"
                f"{rec(cells)},{rec(obj.__defaults__)},{rec(obj.__kwdefaults__)}")
        if not (obj.__module__ or "").startswith("nllax"):
            # Not covered by the nllax source tag: the file it was defined in, and the
            # module-level names it uses (a constant edited there is another program).
            # A function defined where there is no file (a REPL, `python -c`) is Unstable.
            text += f",{_file_digest(code.co_filename)},{rec(_globals_used(obj))}"
        return text + ")"
    import jax

    if isinstance(obj, jax.custom_jvp):
        return f"custom_jvp({rec(obj.fun)},{rec(obj.jvp)},{rec(obj.nondiff_argnums)})"
    if isinstance(obj, jax.custom_vjp):
        return (f"custom_vjp({rec(obj.fun)},{rec(obj.fwd)},{rec(obj.bwd)},"
                f"{rec(obj.nondiff_argnums)})")
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None and not _is_library(wrapped):  # jax.jit, functools.wraps
        return f"{type(obj).__qualname__}({rec(wrapped)})"
    if isinstance(obj, (types.BuiltinFunctionType, type, types.ModuleType)) or (
            _is_library(obj) and callable(obj) and hasattr(obj, "__qualname__")):
        # a class, a module, a builtin or a jax/numpy/optax callable: its name (the
        # versions are in the source tag)
        name = getattr(obj, "__qualname__", getattr(obj, "__name__", None))
        return f"ref({getattr(obj, '__module__', '')}.{name})"
    if dataclasses.is_dataclass(obj):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return f"{type(obj).__module__}.{type(obj).__qualname__}{rec(fields)}"
    if isinstance(obj, tuple) or hasattr(obj, "_fields"):
        return f"{type(obj).__qualname__}{rec(tuple(obj))}"
    if type(obj).__module__.startswith("nllax") and hasattr(obj, "__dict__"):
        return f"{type(obj).__module__}.{type(obj).__qualname__}{rec(vars(obj))}"
    raise Unstable(type(obj).__qualname__)


def _file_digest(filename: str) -> str:
    try:
        return hashlib.sha256(pathlib.Path(filename).read_bytes()).hexdigest()[:32]
    except OSError:
        raise Unstable(f"no source file {filename!r}") from None


def _globals_used(fn: types.FunctionType) -> dict[str, Any]:
    names: set[str] = set()
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    g = fn.__globals__
    return {k: g[k] for k in sorted(names) if k in g}


def _is_library(obj: Any) -> bool:
    mod = getattr(obj, "__module__", None) or ""
    return mod.split(".")[0] in ("jax", "jaxlib", "numpy", "optax", "math", "builtins")


def _code(code: types.CodeType) -> str:
    h = hashlib.sha256(code.co_code)
    for c in code.co_consts:
        h.update((_code(c) if isinstance(c, types.CodeType) else repr(c)).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:32]


class Programs:
    """Calls the report's programs, their compiled executables kept in ``directory``
    (``None``: plain calls, nothing stored or loaded). Counts what it did: ``loaded``
    (deserialized from the folder), ``stored`` (traced, lowered, compiled and written),
    ``in_memory`` (loaded or stored earlier in this process), ``traced`` (no stable key,
    not serializable, or storing is off: called as a plain jitted function) and
    ``replaced`` (an entry that could not be used, compiled again and overwritten), and
    ``load_s``, the seconds spent loading."""

    def __init__(self, directory: str | os.PathLike | None):
        self.dir = None if directory is None else pathlib.Path(directory) / "programs"
        self.counts = {"loaded": 0, "stored": 0, "in_memory": 0, "traced": 0,
                       "replaced": 0, "load_s": 0.0}
        self._fps: dict[int, tuple[Any, str]] = {}
        self._pruned = False

    def _fingerprint(self, obj: Any) -> str:
        hit = self._fps.get(id(obj))
        if hit is None or hit[0] is not obj:
            hit = self._fps[id(obj)] = (obj, fingerprint(obj))  # holds obj: id stays valid
        return hit[1]

    def key(self, name: str, parts: Any, args: tuple) -> tuple[str, Any] | None:
        """``(key, device)`` of the entry, or ``None`` when ``parts`` has no stable
        fingerprint or the arguments are not arrays, committed to one device."""
        import jax
        import numpy as np

        try:
            fp = ",".join(self._fingerprint(p) for p in parts)
        except Unstable:
            return None
        leaves, tree = jax.tree_util.tree_flatten(args)
        avals = []
        devices = set()
        for x in leaves:
            if isinstance(x, np.ndarray):  # a host scalar (fit's controls): uncommitted
                avals.append(f"{x.dtype}{tuple(x.shape)}w0")
                continue
            if not isinstance(x, jax.Array):
                return None
            avals.append(f"{x.dtype}{tuple(x.shape)}w{int(getattr(x, 'weak_type', False))}")
            if x.committed:  # the data; an uncommitted scalar follows them
                devices |= set(x.devices())
        if len(devices) != 1:
            return None
        (dev,) = devices
        h = hashlib.sha256(source_tag().encode())
        for part in (name, fp, str(tree), ";".join(avals),
                     f"{dev.platform}:{dev.id}:{dev.device_kind}:{dev.client.platform_version}",
                     str(bool(jax.config.jax_enable_x64))):
            h.update(part.encode() + b"\0")
        return h.hexdigest(), dev

    def call(self, name: str, parts: Any, fn: Callable[..., Any], *args: Any,
             **static: Any) -> Any:
        """``fn(*args, **static)`` through the stored executable of ``fn`` for these
        arguments. ``fn`` must be a ``jax.jit``-wrapped function and ``static`` its static
        keyword arguments; ``parts`` the objects that define the program besides the nllax
        sources (rows, model, solver, ``static``)."""
        found = None if self.dir is None else self.key(name, parts, args)
        if found is None:
            self.counts["traced"] += 1
            return fn(*args, **static)
        key, dev = found
        compiled = _CALLERS.get(key)
        if compiled is not None:
            self.counts["in_memory"] += 1
            self._write(key, compiled, overwrite=False)
            return compiled(*args)
        path = self._path(key)
        if path.exists():
            t0 = time.perf_counter()
            try:
                compiled = _load(path.read_bytes(), key, dev)
                self.counts["load_s"] += time.perf_counter() - t0
                out = compiled(*args)
            except Exception:  # noqa: BLE001  (corrupt or stale: compiled again below)
                self.counts["replaced"] += 1
            else:
                self.counts["loaded"] += 1
                _CALLERS[key] = compiled
                return out
        try:
            compiled = _compile_fresh(fn, args, static)
            compiled.nllax_blob = _dump(compiled, key)
        except Exception:  # noqa: BLE001  (not serializable: the plain call, as before)
            self.counts["traced"] += 1
            return fn(*args, **static)
        _CALLERS[key] = compiled
        self._write(key, compiled, overwrite=True)
        self.counts["stored"] += 1
        return compiled(*args)

    def _path(self, key: str) -> pathlib.Path:
        return self.dir / f"{source_tag()[:16]}-{key}.xla"

    def _write(self, key: str, compiled, overwrite: bool) -> None:
        path = self._path(key)
        blob = getattr(compiled, "nllax_blob", None)
        if blob is None or (not overwrite and path.exists()):
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self._pruned:
                self._pruned = True
                self._prune()
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except OSError:  # a read-only cache: the run goes on, uncached
            pass

    def _prune(self) -> None:
        """Removes the programs of other nllax sources or versions (their file names start
        with another tag), so the folder holds one library version's programs, not one set
        per edit."""
        mine = source_tag()[:16] + "-"
        for p in self.dir.glob("*.xla"):
            if not p.name.startswith(mine):
                try:
                    p.unlink()
                except OSError:
                    pass


def _compile_fresh(fn, args, static):
    """``fn.lower(*args, **static).compile()`` by XLA itself, not loaded from JAX's
    persistent compilation cache: a CPU executable loaded from there and serialized again
    does not load (measured with jax 0.10: "Function ... not found" on the next run).
    This store replaces the persistent cache for these programs."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    lowered = fn.lower(*args, **static)
    saved = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    cc.reset_cache()  # JAX remembers whether the cache is on: make it look again, twice
    try:
        return lowered.compile()
    finally:
        jax.config.update("jax_enable_compilation_cache", saved)
        cc.reset_cache()


def _dump(compiled, key: str) -> bytes:
    from jax.experimental import serialize_executable as se

    data, in_tree, out_tree = se.serialize(compiled)
    return pickle.dumps((FORMAT, key, data, in_tree, out_tree))


def _load(blob: bytes, key: str, dev):
    from jax.experimental import serialize_executable as se

    fmt, stored_key, data, in_tree, out_tree = pickle.loads(blob)
    if fmt != FORMAT or stored_key != key:
        raise ValueError("not this program")
    if dev.platform == "cpu":
        # A compiled CPU program calls LAPACK (Cholesky) through function pointers that
        # JAX fills in when it first *lowers* a linear-algebra op; a program loaded without
        # lowering anything would call null pointers (a segfault). No initializer in this
        # JAX: raise, and the program is compiled instead.
        from jax._src.lax import linalg

        linalg.initialize_lapack()
    compiled = se.deserialize_and_load(data, in_tree, out_tree, backend=dev.client,
                                       execution_devices=[dev])
    compiled.nllax_blob = blob
    return compiled
