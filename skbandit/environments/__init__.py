"""Simulated bandit environments and the simulation loop."""

from skbandit.environments._envs import (
    BaseEnvironment,
    BernoulliArms,
    GaussianArms,
    LinearContextualBandit,
    SupervisedBandit,
)
from skbandit.environments._simulate import simulate

__all__ = [
    "BaseEnvironment",
    "BernoulliArms",
    "GaussianArms",
    "LinearContextualBandit",
    "SupervisedBandit",
    "simulate",
]
