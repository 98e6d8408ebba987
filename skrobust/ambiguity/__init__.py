"""Ambiguity sets: the one object that computes every worst-case expectation.

Two kinds share the root :class:`AmbiguitySet`. A
:class:`ReweightingAmbiguitySet` (chi-square, Cressie-Read, KL, CVaR, total
variation) offers the exact robust risk of a loss vector, the worst-case
weights (the gradient of the risk with respect to the losses), the dual
variables and objective used by joint primal-dual solvers, a certificate (the
duality gap of its own solve), the same evaluated on torch tensors, and a
cvxpy formulation used as an exact reference. A :class:`FeatureAmbiguitySet`
(Wasserstein) moves the samples instead: its worst case is a penalty on the
model's coefficients given its Lipschitz constant.
"""

from skrobust.ambiguity._base import AmbiguitySet, ReweightingAmbiguitySet
from skrobust.ambiguity._cressie_read import ChiSquare, CressieRead
from skrobust.ambiguity._cvar import CVaR
from skrobust.ambiguity._feature import FeatureAmbiguitySet
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
    "FeatureAmbiguitySet",
    "KL",
    "ReweightingAmbiguitySet",
    "TotalVariation",
    "Wasserstein",
    "ambiguity_constraint",
    "check_ambiguity",
]
