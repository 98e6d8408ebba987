"""Batched adaptive experiments for best-arm identification.

Designs return the share of each batch that goes to each arm, from an
independent Gaussian posterior on the arm means:
:class:`ResidualHorizonOptimization` plans over the remaining horizon;
:class:`UniformAllocation`, :class:`BatchThompsonSampling` and
:class:`TopTwoThompsonSampling` are the baselines. :func:`simulate_best_arm`
compares them on simulated experiments.
"""

from skbandit.experiment._allocation import (
    BatchThompsonSampling,
    ResidualHorizonOptimization,
    TopTwoThompsonSampling,
    UniformAllocation,
)
from skbandit.experiment._simulate import simulate_best_arm

__all__ = [
    "BatchThompsonSampling",
    "ResidualHorizonOptimization",
    "TopTwoThompsonSampling",
    "UniformAllocation",
    "simulate_best_arm",
]
