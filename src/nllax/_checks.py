"""Value checks that JAX cannot raise inside `jit`, and `nllax.checked` to raise them.

Every family reports an invalid value in two ways. The per-observation result is NaN
(always, and its gradient is NaN too), and, under `nllax.checked` only, a
`checkify.debug_check` names the argument and the rule.

Why only there: a `debug_check` leaves nothing in the compiled program, but it gives the
jaxpr an effect, and an effectful jitted function leaves JAX's fast C++ dispatch path:
measured here, a jitted sum of 1000 numbers costs 17 us per call, and 155 us with one
debug check; a Gaussian NLL's value and gradient 20 us against 250 us. A training loop on
small batches would pay that on every step. So the checks are emitted only while the
`nllax_checks` state is on, which `checked` turns on for its own calls, thread-locally.
That state is part of JAX's jit cache key, so a function jitted and called unchecked is
traced again (with the checks) when it is called through `checked`, and unchecked calls
afterwards still use the check-free program.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.experimental import checkify

try:  # a thread-local JAX config state that is part of the jit cache key
    from jax._src import config as _jax_config

    _CHECKS = _jax_config.bool_state(
        "nllax_checks", False, include_in_jit_key=True, include_in_trace_context=True,
        help="Emit nllax's value checks (set by nllax.checked for its own calls).")

    def _enabled() -> bool:
        return bool(_CHECKS.value)

    def _enable():
        return _CHECKS(True)
except Exception:  # noqa: BLE001 - a JAX without that API: always emit (slower dispatch)
    def _enabled() -> bool:
        return True

    def _enable():
        return contextlib.nullcontext()

# The errors `checked` reports: the value checks of nllax (user checks) only. NaN checks
# of checkify would also fire on the NaN that an invalid value deliberately produces.
_ERRORS = checkify.user_checks


def check(valid: jax.Array, where: str, message: str) -> None:
    """Records that ``all(valid)`` must hold; raises only under `checked` (and costs
    nothing, not even at dispatch, elsewhere)."""
    if _enabled():
        checkify.debug_check(jnp.all(valid), f"{where}: {message}")


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps ``fn`` so that invalid values met by any nllax call inside it raise.

    Without ``checked``, an invalid value (a scale <= 0 or NaN, a probability outside
    [0, 1], a Bernoulli target outside [0, 1], a label outside [0, K), a negative or
    non-integer count, a negative rate) gives NaN, because JAX cannot raise from inside
    ``jit``. With it, the call raises ``jax.experimental.checkify.JaxRuntimeError``
    whose message names the function, the argument and the rule that was broken.

    ``fn`` may be jitted or not and may use ``jit``, ``vmap`` and ``grad`` inside. It is
    functionalized by ``checkify.checkify`` and compiled with ``jax.jit`` once (so its
    arguments are arrays or pytrees of arrays; bind other options with
    ``functools.partial``), and the error is thrown after it returns. Calls with the same
    shapes do not recompile. The checks cost nothing in code that is not wrapped.

    Example:
        >>> import jax.numpy as jnp, nllax
        >>> f = nllax.checked(lambda y, s: nllax.gaussian.nll(y, 0.0, s))
        >>> f(jnp.ones(3), -1.0)
        Traceback (most recent call last):
        ...
        jax._src.checkify.JaxRuntimeError: nllax.gaussian: `scale` must be > 0 ...
    """

    # Built once: checkify re-traces on every call, so without jit an unjitted fn would
    # be traced and compiled op by op each time.
    compiled = jax.jit(checkify.checkify(fn, errors=_ERRORS))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _enable():
            err, out = compiled(*args, **kwargs)
        err.throw()
        return out

    return wrapper
