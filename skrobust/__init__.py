"""skrobust: distributionally robust learning for scikit-learn users.

Submodules
----------
ambiguity
    Ambiguity sets (chi-square, Cressie-Read, KL, CVaR): exact worst-case
    expectations of per-sample losses, their worst-case weights and duals.
inference
    Empirical-likelihood confidence intervals and tests, and generalized
    empirical-likelihood bounds on risks through the ambiguity sets.
linear_model
    Distributionally robust linear and logistic regression.
utils
    Validation helpers and estimator discovery.
"""

from skrobust import ambiguity, inference, linear_model, utils

__version__ = "0.1.0.dev0"

__all__ = ["ambiguity", "inference", "linear_model", "utils", "__version__"]
