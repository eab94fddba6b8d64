"""Test case: the censored gaussian family (`nllax.censored(nllax.gaussian)`), built from the
gaussian case (see _wrapped.py)."""

import nllax

from . import gaussian
from ._wrapped import censored_case

CASE = censored_case(
    nllax.censored(nllax.gaussian), gaussian.CASE,
    normalisation=({"loc": 0.3, "scale": 1.7, "lower": -1.0, "upper": 2.0},
                   {"loc": -2.0, "scale": 0.5, "lower": -2.5, "upper": 8.0}),
)
