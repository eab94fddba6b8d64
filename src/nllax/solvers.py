"""The solvers of :func:`nllax.fit` (``fit(..., solver=...)``).

* :class:`Newton`: Levenberg–Marquardt-damped Newton on the exact Hessian (the default
  for an opaque objective).
* :class:`GaussNewton`: the same iteration on :math:`J^\\top W J` for a
  :class:`nllax.Likelihood` (the default for those; exact Newton for affine predictors,
  Fisher scoring with ``curvature="expected"``).
* :class:`TrustRegion`: Gauss–Newton on :math:`J^\top W J` in a Moré (1978) trust
  region, the default for a :class:`nllax.Likelihood` whose predictor is nonlinear
  (for an affine one it runs :class:`GaussNewton`'s iteration); for any other callable,
  Newton on the exact Hessian in the same trust region (an option: :class:`Newton`
  stays the default there, ``bench/NIST.md``).
* :class:`Optax`: any optax transformation (``fit(optimizer=opt)`` wraps it).
* :class:`Solver`: the interface (``init`` / ``step`` / ``terminate`` / ``postprocess``
  on a NamedTuple state) for writing another one.
"""

from nllax._solvers import GaussNewton as GaussNewton
from nllax._solvers import Newton as Newton
from nllax._solvers import Optax as Optax
from nllax._solvers import Solver as Solver
from nllax._trust import TrustRegion as TrustRegion

__all__ = ["GaussNewton", "Newton", "Optax", "Solver", "TrustRegion"]
