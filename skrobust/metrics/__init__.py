"""Evaluation of fitted models beyond the average loss.

Worst-case risk over subpopulations defined by core variables (Li, Mittal,
Namkoong and Xia): a function for predictions, an evaluator for a fitted model
with the curve over the subpopulation mass and the members of the worst
subpopulation, and a scorer for model selection.
"""

from skrobust.metrics._evaluator import WorstSubpopulationEvaluator
from skrobust.metrics._scorer import make_worst_subpopulation_scorer
from skrobust.metrics._worst_subpopulation import (
    WorstSubpopulationResult,
    worst_subpopulation_risk,
)

__all__ = [
    "WorstSubpopulationEvaluator",
    "WorstSubpopulationResult",
    "make_worst_subpopulation_scorer",
    "worst_subpopulation_risk",
]
