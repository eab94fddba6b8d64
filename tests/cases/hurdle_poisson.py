"""Test case: the hurdle Poisson family (`nllax.hurdle(nllax.poisson)`), built from the
Poisson case (see _wrapped.py)."""

import numpy as np

import nllax

from . import poisson
from ._wrapped import hurdle_case

CASE = hurdle_case(
    nllax.hurdle(nllax.poisson), poisson.CASE,
    normalisation=({"log_rate": np.log(0.3), "zero_logits": 0.4},
                   {"log_rate": np.log(40.0), "zero_logits": -1.0}),
    # zero_probs enters as log(pi) / log1p(-pi) only; its member is covered by the
    # zero-inflated case (where it has a written-out derivative) and by test_wrappers
    both_members=False,
)
