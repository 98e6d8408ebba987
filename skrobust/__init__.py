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
utils
    Validation helpers and estimator discovery.
"""

from skrobust import ambiguity, ensemble, utils

__version__ = "0.1.0.dev0"

__all__ = ["ambiguity", "ensemble", "utils", "__version__"]
