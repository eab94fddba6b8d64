"""nllax: most deep-learning losses are negative log-likelihoods, exactly.

Families (one namespace each, ``log_prob`` per observation and ``nll`` reduced; the
continuous ones also ``log_cdf`` and ``log_sf``), all listed in :data:`nllax.families`:
:mod:`nllax.gaussian`, :mod:`nllax.laplace`, :mod:`nllax.bernoulli`,
:mod:`nllax.categorical`, :mod:`nllax.poisson`, :mod:`nllax.binomial`,
:mod:`nllax.negative_binomial`. GLM links: :mod:`nllax.links`. Classical losses: :mod:`nllax.losses`.
The exact relations ``NLL = a * loss + b``: :data:`nllax.equivalences`. How a family is
declared: ``docs/adding-a-family.md``.
"""

from nllax import _family

# Families: importing each module registers it in `families` (in this order).
from nllax import gaussian as gaussian
from nllax import laplace as laplace
from nllax import bernoulli as bernoulli
from nllax import categorical as categorical
from nllax import poisson as poisson
from nllax import binomial as binomial
from nllax import negative_binomial as negative_binomial
from nllax import logistic as logistic
from nllax import ordinal as ordinal
from nllax import gaussian_natural as gaussian_natural
from nllax import multivariate_normal as multivariate_normal
from nllax import gaussian_mixture as gaussian_mixture
from nllax import beta as beta
from nllax import weibull as weibull
from nllax import huber as huber
from nllax import hyperbolic_secant as hyperbolic_secant
from nllax import asymmetric_laplace as asymmetric_laplace
from nllax import student_t as student_t
from nllax import cauchy as cauchy
from nllax import log_normal as log_normal
from nllax import gamma as gamma
from nllax import inverse_gaussian as inverse_gaussian
from nllax import tweedie as tweedie

from nllax._wrappers import censored as censored
from nllax._wrappers import hurdle as hurdle
from nllax._wrappers import truncated as truncated
from nllax._wrappers import zero_inflated as zero_inflated
from nllax._wrappers import zero_truncated as zero_truncated

from nllax import links as links
from nllax import losses as losses
from nllax import objectives as objectives
from nllax import solvers as solvers
from nllax import verify as verify
from nllax._audit import Audit as Audit
from nllax._audit import audit as audit
from nllax._checks import checked as checked
from nllax._equivalences import Equivalence as Equivalence
from nllax._equivalences import EquivalenceCheck as EquivalenceCheck
from nllax._equivalences import equivalences as equivalences
from nllax._family import Family as Family
from nllax._likelihood import Likelihood as Likelihood
from nllax._inference import InferenceWarning as InferenceWarning
from nllax._inference import LRTest as LRTest
from nllax._inference import Prediction as Prediction
from nllax._inference import ScoreTest as ScoreTest
from nllax._inference import WaldTest as WaldTest
from nllax._inference import score_test as score_test
from nllax._inference import ProfileInterval as ProfileInterval
from nllax._inference import Summary as Summary
from nllax._inference import lr_test as lr_test
from nllax._inference import profile_ci as profile_ci
from nllax._inference import summary as summary
from nllax._fit import FitError as FitError
from nllax._fit import FitResult as FitResult
from nllax._fit import FitStatus as FitStatus
from nllax._fit import fit as fit

#: name -> family module, every registered family (read-only).
families = _family.families_view()

__version__ = "0.1.0"

__all__ = [
    "families",
    "gaussian",
    "laplace",
    "bernoulli",
    "categorical",
    "poisson",
    "binomial",
    "negative_binomial",
    "logistic",
    "ordinal",
    "gaussian_natural",
    "multivariate_normal",
    "gaussian_mixture",
    "beta",
    "weibull",
    "huber",
    "hyperbolic_secant",
    "asymmetric_laplace",
    "student_t",
    "cauchy",
    "log_normal",
    "gamma",
    "inverse_gaussian",
    "tweedie",
    "zero_inflated",
    "hurdle",
    "truncated",
    "zero_truncated",
    "censored",
    "links",
    "losses",
    "objectives",
    "solvers",
    "verify",
    "audit",
    "Audit",
    "checked",
    "Equivalence",
    "EquivalenceCheck",
    "equivalences",
    "Family",
    "Likelihood",
    "InferenceWarning",
    "LRTest",
    "Prediction",
    "ScoreTest",
    "WaldTest",
    "score_test",
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
