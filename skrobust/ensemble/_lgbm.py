"""Distributionally robust gradient boosting on a LightGBM backbone.

The code lives by responsibility in :mod:`._booster` (the boosting loop and
shared parameters), :mod:`._robust` (the layer over the ambiguity protocol),
:mod:`._data` (input handling), :mod:`._classifier` and :mod:`._regressor`.
"""

from skrobust.ensemble._booster import _BaseDROLGBM
from skrobust.ensemble._classifier import DROLGBMClassifier
from skrobust.ensemble._regressor import DROLGBMRegressor

__all__ = ["DROLGBMClassifier", "DROLGBMRegressor", "_BaseDROLGBM"]
