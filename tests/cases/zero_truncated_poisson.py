"""Test case: the zero-truncated Poisson family (`nllax.zero_truncated(nllax.poisson)`),
built from the Poisson case (see _wrapped.py)."""

import numpy as np

import nllax

from . import poisson
from ._wrapped import truncated_case

CASE = truncated_case(
    nllax.zero_truncated(nllax.poisson), poisson.CASE, 1,
    # a small rate (1 - f(0) = 3e-4: log1mexp's expm1 branch) and a large one
    normalisation=({"log_rate": np.log(3e-4)}, {"log_rate": np.log(40.0)}),
    k_max=400,
)
