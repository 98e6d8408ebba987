"""Distributionally robust ensembles: gradient boosting on a LightGBM backbone.

Each boosting round reweights the per-sample gradients and hessians by the
worst-case weights of an ambiguity set from :mod:`skrobust.ambiguity`, so the
trees descend the robust risk instead of the average loss.
"""

from skrobust.ensemble._lgbm import DROLGBMClassifier, DROLGBMRegressor

__all__ = ["DROLGBMClassifier", "DROLGBMRegressor"]
