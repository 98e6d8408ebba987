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
ensemble
    Distributionally robust gradient boosting (LightGBM).
subpopulation
    Group DRO, marginal DRO over latent covariate mixtures, variance-regularized
    ERM.
nn
    DRO losses for torch and skorch-based estimators (``pip install
    "skrobust[torch]"``; import it explicitly: ``import skrobust.nn``).
metrics
    Worst-case risk over subpopulations of core variables, with intervals.
shift
    Stability under distribution shift and shift decomposition (DISDE).
utils
    Validation helpers and estimator discovery.
"""

import importlib

# Subpackages load on first use (PEP 562), so that ``import skrobust.utils``
# (as skcausal and skbandit do for the shared conventions) does not import
# LightGBM, cvxpy or pandas; ``skrobust.ensemble`` and ``from skrobust import
# ensemble`` work as before.
_SUBPACKAGES = (
    "ambiguity",
    "ensemble",
    "inference",
    "linear_model",
    "metrics",
    "shift",
    "subpopulation",
    "utils",
)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"skrobust.{name}")
    raise AttributeError(f"module 'skrobust' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))


__version__ = "0.1.0.dev0"

__all__ = [
    "ambiguity",
    "ensemble",
    "inference",
    "linear_model",
    "metrics",
    "shift",
    "subpopulation",
    "utils",
    "__version__",
]

# public submodules that are not imported eagerly (optional dependencies);
# estimator discovery imports them
_PUBLIC_SUBMODULES = ("nn",)
