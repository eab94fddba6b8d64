"""Test case: the zero-inflated Poisson family (`nllax.zero_inflated(nllax.poisson)`),
built from the Poisson case (see _wrapped.py)."""

import numpy as np

import nllax

from . import poisson
from ._wrapped import zero_inflated_case

CASE = zero_inflated_case(
    nllax.zero_inflated(nllax.poisson), poisson.CASE,
    normalisation=({"log_rate": np.log(0.3), "zero_logits": 0.4},
                   {"log_rate": np.log(40.0), "zero_logits": -1.0}),
)
