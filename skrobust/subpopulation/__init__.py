"""Robustness to subpopulation shift for linear models.

Three ways to protect the worst-off part of the population, from most to
least information about it:

- :class:`GroupDROLogisticRegression`, :class:`GroupDROLinearRegression`:
  the group labels are known (a ``groups`` fit parameter); minimize the worst
  group's average loss (Sagawa et al.).
- :class:`MarginalDROLogisticRegression`, :class:`MarginalDROLinearRegression`:
  the subpopulations are unknown but defined by chosen covariates Z; minimize
  a bound on the worst risk over all subpopulations of mass >= alpha
  (Duchi, Hashimoto and Namkoong).
- :class:`VarianceRegularizedLogisticRegression`,
  :class:`VarianceRegularizedLinearRegression`: nothing is known; the
  chi-square robust risk at radius rho / n, which is the variance-regularized
  risk (Namkoong and Duchi).

Every worst-case expectation comes from :mod:`skrobust.ambiguity`.
"""

from skrobust.subpopulation._group import (
    GroupDROLinearRegression,
    GroupDROLogisticRegression,
)
from skrobust.subpopulation._marginal import (
    MarginalDROLinearRegression,
    MarginalDROLogisticRegression,
)
from skrobust.subpopulation._variance import (
    VarianceRegularizedLinearRegression,
    VarianceRegularizedLogisticRegression,
)

__all__ = [
    "GroupDROLinearRegression",
    "GroupDROLogisticRegression",
    "MarginalDROLinearRegression",
    "MarginalDROLogisticRegression",
    "VarianceRegularizedLinearRegression",
    "VarianceRegularizedLogisticRegression",
]
