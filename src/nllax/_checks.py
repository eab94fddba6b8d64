"""Value checks that JAX cannot raise inside `jit`, and `nllax.checked` to raise them.

Every family reports an invalid value in two ways. The per-observation result is NaN
(always, and its gradient is NaN too), and a `checkify.debug_check` names the argument
and the rule. A `debug_check` does nothing unless the caller is functionalized by
`checkify` (which `nllax.checked` does), and XLA removes its unused predicate, so plain
`jit` code pays nothing. Unlike a context flag, it also survives `jit`'s trace cache.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.experimental import checkify

# The errors `checked` reports: the value checks of nllax (user checks) only. NaN checks
# of checkify would also fire on the NaN that an invalid value deliberately produces.
_ERRORS = checkify.user_checks


def check(valid: jax.Array, where: str, message: str) -> None:
    """Records that ``all(valid)`` must hold; raises only under `checked`."""
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
        err, out = compiled(*args, **kwargs)
        err.throw()
        return out

    return wrapper
