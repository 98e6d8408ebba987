"""Sampling allocations for batched best-arm identification experiments.

The designs live by responsibility in :mod:`._allocation_base` (the shared
Gaussian posterior and the uniform baseline), :mod:`._thompson` (batch and
top-two Thompson sampling) and :mod:`._rho` (Residual Horizon Optimization).
"""

from skbandit.experiment._allocation_base import UniformAllocation, _BaseAllocation
from skbandit.experiment._rho import ResidualHorizonOptimization, _rho_objective
from skbandit.experiment._thompson import (
    BatchThompsonSampling,
    TopTwoThompsonSampling,
    _posterior_draws,
)

__all__ = [
    "BatchThompsonSampling",
    "ResidualHorizonOptimization",
    "TopTwoThompsonSampling",
    "UniformAllocation",
    "_BaseAllocation",
    "_posterior_draws",
    "_rho_objective",
]
