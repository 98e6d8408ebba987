"""Ambiguity sets: the one object that computes every worst-case expectation.

Each set offers the exact robust risk of a loss vector, the worst-case weights
(the gradient of the risk with respect to the losses), the dual objective
with its gradients used by joint primal-dual solvers, and a cvxpy formulation
used as an exact reference.
"""

from skrobust.ambiguity._base import AmbiguitySet
from skrobust.ambiguity._cressie_read import ChiSquare, CressieRead
from skrobust.ambiguity._cvar import CVaR
from skrobust.ambiguity._kl import KL
from skrobust.ambiguity._total_variation import TotalVariation
from skrobust.ambiguity._validation import (
    AMBIGUITY_SHORTCUTS,
    ambiguity_constraint,
    check_ambiguity,
)
from skrobust.ambiguity._wasserstein import Wasserstein

__all__ = [
    "AMBIGUITY_SHORTCUTS",
    "AmbiguitySet",
    "ChiSquare",
    "CressieRead",
    "CVaR",
    "KL",
    "TotalVariation",
    "Wasserstein",
    "ambiguity_constraint",
    "check_ambiguity",
]
