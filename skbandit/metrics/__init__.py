"""Off-policy evaluation: value estimates, confidence intervals and scorers."""

from skbandit.metrics._ope import (
    dr_value,
    estimate_policy_value,
    ips_value,
    make_policy_scorer,
    snips_value,
)
from skbandit.metrics._simulation import make_simulation_scorer

__all__ = [
    "dr_value",
    "estimate_policy_value",
    "ips_value",
    "make_policy_scorer",
    "make_simulation_scorer",
    "snips_value",
]
