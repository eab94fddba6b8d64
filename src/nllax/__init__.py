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
from nllax import solvers as solvers
from nllax import verify as verify
from nllax._checks import checked as checked
from nllax._equivalences import Equivalence as Equivalence
from nllax._equivalences import EquivalenceCheck as EquivalenceCheck
from nllax._equivalences import equivalences as equivalences
from nllax._inference import InferenceWarning as InferenceWarning
from nllax._inference import LRTest as LRTest
from nllax._inference import ProfileInterval as ProfileInterval
from nllax._inference import Summary as Summary
from nllax._inference import lr_test as lr_test
from nllax._inference import profile_ci as profile_ci
from nllax._inference import summary as summary
from nllax._fit import FitError as FitError
from nllax._fit import FitResult as FitResult
from nllax._fit import FitStatus as FitStatus
from nllax._fit import fit as fit
from nllax._likelihood import Likelihood as Likelihood

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
    "Likelihood",
    "solvers",
]
