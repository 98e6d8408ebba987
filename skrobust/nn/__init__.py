"""Distributionally robust training of torch neural nets.

This subpackage needs the optional dependencies torch and skorch::

    pip install "skrobust[torch]"

It offers criteria for plain torch loops and skorch nets (:class:`DROLoss`,
the exact robust risk of a batch; :class:`DualDROLoss`, its dual form whose
mini-batch gradients are unbiased), scikit-learn estimators that own a skorch
net trained with them (:class:`DRONeuralNetClassifier`,
:class:`DRONeuralNetRegressor`), and Wasserstein robust training by principled
adversarial training (:class:`WassersteinRobustNeuralNetClassifier`).
"""

try:
    import skorch  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without torch only
    raise ImportError(
        "skrobust.nn needs torch and skorch, which are optional dependencies; "
        'install them with: pip install "skrobust[torch]"'
    ) from exc

from skrobust.nn._estimators import DRONeuralNetClassifier, DRONeuralNetRegressor
from skrobust.nn._loss import DROLoss, DualDROLoss
from skrobust.nn._wasserstein import WassersteinRobustNeuralNetClassifier

__all__ = [
    "DROLoss",
    "DualDROLoss",
    "DRONeuralNetClassifier",
    "DRONeuralNetRegressor",
    "WassersteinRobustNeuralNetClassifier",
]
