"""skcausal: cross-fitted treatment-effect estimators as scikit-learn estimators."""

from skcausal import datasets
from skcausal._clearner import CLearner
from skcausal._crossfit import InSampleSplit
from skcausal._estimators import AIPW, IPW, TMLE, PlugIn
from skcausal._target import make_target
from skcausal._trimming import TrimmingSensitivity
from skcausal._worst_case import WorstCaseTreatmentEffect

__all__ = [
    "AIPW",
    "CLearner",
    "IPW",
    "InSampleSplit",
    "TMLE",
    "PlugIn",
    "TrimmingSensitivity",
    "WorstCaseTreatmentEffect",
    "datasets",
    "make_target",
]
