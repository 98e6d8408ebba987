"""skcausal: cross-fitted treatment-effect estimators as scikit-learn estimators."""

from skcausal import datasets
from skcausal._clearner import CLearner
from skcausal._estimators import AIPW, IPW, TMLE, PlugIn
from skcausal._target import make_target

__all__ = ["AIPW", "CLearner", "IPW", "TMLE", "PlugIn", "datasets", "make_target"]
