"""Optional competitor libraries: imported if installed, skipped (with the reason) if not.

The benchmark must run wherever nllax runs, so every library other than jax/optax is
optional; ``missing`` records why one was left out, and the report says so.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

missing: dict[str, str] = {}
_cache: dict[str, ModuleType | None] = {}


def get(name: str) -> ModuleType | None:
    """The imported module, or None (the reason goes to ``missing``)."""
    if name in _cache:
        return _cache[name]
    mod = None
    try:
        # Import-time deprecation noise of third parties (e.g. distrax's TFP substrate
        # on a new jax) is not ours to report, and would fail a `-W error` test run.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - any failure to import means "skip it"
        missing[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:160]
    _cache[name] = mod
    return mod


def version(name: str) -> str:
    mod = get(name)
    if mod is None:
        return "not installed"
    return str(getattr(mod, "__version__", "?"))
