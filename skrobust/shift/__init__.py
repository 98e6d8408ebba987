"""How a model's performance responds to distribution shift.

Stability (Namkoong, Ma and Glynn, 2022): the smallest KL shift of the data
distribution that raises the expected loss past a threshold, with an interval,
for the whole distribution or for shifts of core variables only. Shift
decomposition (DISDE; Cai, Namkoong and Yadlowsky, 2023): a performance drop
from source to target data split into a shift of X within the shared support,
a shift of Y given X, and X unseen in the source.
"""

from skrobust.shift._disde import ShiftDecomposition, decompose_performance_shift
from skrobust.shift._stability import StabilityResult, kl_stability

__all__ = [
    "ShiftDecomposition",
    "StabilityResult",
    "decompose_performance_shift",
    "kl_stability",
]
