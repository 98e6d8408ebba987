"""Empirical-likelihood inference.

Confidence intervals and tests from the empirical likelihood ratio with its
chi-square calibration: for a mean, for coefficients of linear and logistic
regression, generalized empirical-likelihood bounds on a model's population
risk through the ambiguity sets of :mod:`skrobust.ambiguity`, and bootstrap
empirical likelihood for the optimal value of choosing the best of K options.
"""

from skrobust.inference._estimating import el_moment_test
from skrobust.inference._gel import (
    gel_model_risk_interval,
    gel_optimal_value_interval,
    gel_risk_interval,
)
from skrobust.inference._mean import el_mean_interval, el_mean_test
from skrobust.inference._nonsmooth import el_max_mean_interval
from skrobust.inference._regression import el_coef_interval, el_coef_test

__all__ = [
    "el_coef_interval",
    "el_coef_test",
    "el_max_mean_interval",
    "el_mean_interval",
    "el_mean_test",
    "el_moment_test",
    "gel_model_risk_interval",
    "gel_optimal_value_interval",
    "gel_risk_interval",
]
