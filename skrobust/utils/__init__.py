"""Utilities shared by the three packages.

The public helper here is :func:`all_estimators`, which finds every public
estimator of ``skrobust``, ``skcausal`` and ``skbandit`` so that the common
scikit-learn checks run on each without anyone listing it.
"""

from skrobust.utils._conventions import (
    DEPRECATED,
    LOSS_NAMES,
    ConfidenceInterval,
    resolve_confidence_level,
    resolve_loss_name,
    resolve_renamed_argument,
    resolve_renamed_param,
)
from skrobust.utils._discovery import all_estimators
from skrobust.utils._validation import (
    check_losses,
    check_nonnegative_sample_weight,
    check_probability_weights,
)

__all__ = [
    "DEPRECATED",
    "LOSS_NAMES",
    "ConfidenceInterval",
    "all_estimators",
    "check_losses",
    "check_nonnegative_sample_weight",
    "check_probability_weights",
    "resolve_confidence_level",
    "resolve_loss_name",
    "resolve_renamed_argument",
    "resolve_renamed_param",
]
