"""skbandit: bandit policies, adaptive experiments and off-policy evaluation."""

from skbandit import environments, experiment, metrics
from skbandit._base import BasePolicy, PolicyTags, Tags, get_policy_tags
from skbandit._distilled import DistilledThompsonSampling
from skbandit._feedback import make_feedback
from skbandit._generative import (
    GenerativeThompsonSampling,
    NeuralSequenceGenerator,
    make_linear_tasks,
)
from skbandit._linear import LinearThompsonSampling
from skbandit._linucb import LinUCB
from skbandit._multiarmed import (
    UCB1,
    BernoulliThompsonSampling,
    EpsilonGreedy,
    GaussianThompsonSampling,
    Uniform,
)

__all__ = [
    "BasePolicy",
    "BernoulliThompsonSampling",
    "DistilledThompsonSampling",
    "EpsilonGreedy",
    "GenerativeThompsonSampling",
    "NeuralSequenceGenerator",
    "GaussianThompsonSampling",
    "LinUCB",
    "LinearThompsonSampling",
    "PolicyTags",
    "Tags",
    "UCB1",
    "Uniform",
    "get_policy_tags",
    "make_feedback",
    "make_linear_tasks",
    "environments",
    "experiment",
    "metrics",
]
