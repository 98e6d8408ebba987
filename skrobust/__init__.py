"""skrobust: distributionally robust learning for scikit-learn users.

Submodules
----------
ambiguity
    Ambiguity sets (chi-square, Cressie-Read, KL, CVaR): exact worst-case
    expectations of per-sample losses, their worst-case weights and duals.
linear_model
    Distributionally robust linear and logistic regression.
metrics
    Worst-case risk over subpopulations of core variables, with intervals.
shift
    Stability under distribution shift and shift decomposition (DISDE).
utils
    Validation helpers and estimator discovery.
"""

from skrobust import ambiguity, metrics, shift, utils

__version__ = "0.1.0.dev0"

__all__ = ["ambiguity", "metrics", "shift", "utils", "__version__"]
