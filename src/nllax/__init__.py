"""nllax: most deep-learning losses are negative log-likelihoods, exactly.

Families (one namespace each, ``log_prob`` per observation and ``nll`` reduced):
:mod:`nllax.gaussian`, :mod:`nllax.laplace`, :mod:`nllax.bernoulli`,
:mod:`nllax.categorical`, :mod:`nllax.poisson`. Classical losses: :mod:`nllax.losses`.
The exact relations ``NLL = a * loss + b``: :data:`nllax.equivalences`.
"""

from nllax import bernoulli as bernoulli
from nllax import categorical as categorical
from nllax import gaussian as gaussian
from nllax import laplace as laplace
from nllax import losses as losses
from nllax import poisson as poisson
from nllax import verify as verify
from nllax._checks import checked as checked
from nllax.equivalences import Equivalence as Equivalence
from nllax.equivalences import EquivalenceCheck as EquivalenceCheck
from nllax.equivalences import equivalences as equivalences
from nllax.inference import InferenceWarning as InferenceWarning
from nllax.inference import LRTest as LRTest
from nllax.inference import ProfileInterval as ProfileInterval
from nllax.inference import Summary as Summary
from nllax.inference import lr_test as lr_test
from nllax.inference import profile_ci as profile_ci
from nllax.inference import summary as summary
from nllax.fit import FitError as FitError
from nllax.fit import FitResult as FitResult
from nllax.fit import FitStatus as FitStatus
from nllax.fit import fit as fit

__version__ = "0.1.0"

__all__ = [
    "bernoulli",
    "categorical",
    "gaussian",
    "laplace",
    "losses",
    "poisson",
    "verify",
    "checked",
    "Equivalence",
    "EquivalenceCheck",
    "equivalences",
    "InferenceWarning",
    "LRTest",
    "ProfileInterval",
    "Summary",
    "lr_test",
    "profile_ci",
    "summary",
    "fit",
    "FitError",
    "FitResult",
    "FitStatus",
]
