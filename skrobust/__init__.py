"""skrobust: distributionally robust learning for scikit-learn users.

Submodules
----------
ambiguity
    Ambiguity sets (chi-square, Cressie-Read, KL, CVaR): exact worst-case
    expectations of per-sample losses, their worst-case weights and duals.
linear_model
    Distributionally robust linear and logistic regression.
nn
    Robust risks as torch criteria and DRO / Wasserstein robust neural nets
    (needs ``pip install "skrobust[torch]"``; import it as ``skrobust.nn``).
utils
    Validation helpers and estimator discovery.
"""

from skrobust import ambiguity, utils

__version__ = "0.1.0.dev0"

__all__ = ["ambiguity", "utils", "__version__"]

# public submodules that are not imported eagerly (optional dependencies);
# estimator discovery imports them
_PUBLIC_SUBMODULES = ("nn",)
