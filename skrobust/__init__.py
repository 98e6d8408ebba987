"""skrobust: distributionally robust learning for scikit-learn users.

Submodules
----------
ambiguity
    Ambiguity sets (chi-square, Cressie-Read, KL, CVaR): exact worst-case
    expectations of per-sample losses, their worst-case weights and duals.
ensemble
    Distributionally robust gradient boosting (LightGBM backbone).
linear_model
    Distributionally robust linear and logistic regression.
subpopulation
    Group DRO, marginal DRO over covariates, variance-regularized ERM.
utils
    Validation helpers and estimator discovery.
"""

from skrobust import ambiguity, ensemble, subpopulation, utils

__version__ = "0.1.0.dev0"

__all__ = ["ambiguity", "ensemble", "subpopulation", "utils", "__version__"]
