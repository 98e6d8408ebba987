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
- :class:`ConditionalCVaRLogisticRegression`,
  :class:`ConditionalCVaRLinearRegression`: the X-distribution is held fixed
  and the law of Y given X shifts (likelihood ratio at most 1 / alpha);
  minimize a bound on the average conditional CVaR of the loss given X
  (Sahoo, Lei and Wager).
- :class:`VarianceRegularizedLogisticRegression`,
  :class:`VarianceRegularizedLinearRegression`: nothing is known; the
  chi-square robust risk at radius rho / n, which is the variance-regularized
  risk (Namkoong and Duchi).

Every worst-case expectation comes from :mod:`skrobust.ambiguity`.
"""

from skrobust.subpopulation._conditional import (
    ConditionalCVaRLinearRegression,
    ConditionalCVaRLogisticRegression,
)
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
    "ConditionalCVaRLinearRegression",
    "ConditionalCVaRLogisticRegression",
    "GroupDROLinearRegression",
    "GroupDROLogisticRegression",
    "MarginalDROLinearRegression",
    "MarginalDROLogisticRegression",
    "VarianceRegularizedLinearRegression",
    "VarianceRegularizedLogisticRegression",
]
