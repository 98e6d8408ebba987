"""Old home of the torch solves; they live in :mod:`skrobust.ambiguity._torch`.

Kept so that code importing ``skrobust.nn._solvers.risk_and_weights`` keeps
working: it is the torch backend with the torch kernels forced (on the CPU
the backend's default would use the numpy solve of the set).
"""

from functools import partial

from skrobust.ambiguity._torch import check_batch_weight
from skrobust.ambiguity._torch import risk_and_weights as _risk_and_weights

#: the torch kernels of the backend, on any device
risk_and_weights = partial(_risk_and_weights, kernel="torch")

__all__ = ["check_batch_weight", "risk_and_weights"]
