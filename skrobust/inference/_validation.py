"""Input checks shared by the empirical-likelihood functions."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from skrobust.utils._conventions import (
    DEPRECATED,
    resolve_confidence_level,
    resolve_renamed_argument,
)
from skrobust.utils._validation import (
    check_losses,
    check_probability_weights,
)


def check_sample_range(x, name="x"):
    """``x`` as a finite 1-d float64 array, with its minimum and maximum.

    The checks of :func:`skrobust.utils.check_losses`, with the finiteness
    read off the extremes (a NaN or an infinity makes the range non-finite),
    which saves a pass and a mask of ``x``'s size on the valid case; the
    extremes are returned for the caller to reuse. Returns ``(x, lo, hi)``.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.ndim == 1 and arr.shape[0] > 0:
        with np.errstate(invalid="ignore", over="ignore"):
            lo, hi = arr.min(), arr.max()
            spread = hi - lo
        if np.isfinite(spread):
            return arr, float(lo), float(hi)
    arr = check_losses(x, name=name)  # raises the message
    return arr, float(arr.min()), float(arr.max())


def check_frequency_weights(sample_weight, n_samples):
    """Nonnegative frequency weights; ``None`` stays None (unit weights).

    Empirical likelihood is calibrated by the number of observations, so the
    weights are *not* normalized: an integer weight counts as that many
    repeated rows and the effective sample size is their sum. The checks are
    the project's one sample-weight checker,
    :func:`skrobust.utils.check_probability_weights` (its normalized result
    is dropped).
    """
    if sample_weight is None:
        return None
    check_probability_weights(sample_weight, n_samples)
    w = np.asarray(sample_weight, dtype=np.float64)
    return np.full(n_samples, float(w)) if w.ndim == 0 else w


def level_constraint():
    """``validate_params`` entries of ``confidence_level`` and old ``confidence``."""
    level = Interval(Real, 0, 1, closed="neither")
    return {
        "confidence_level": [level],
        "confidence": [level, StrOptions({DEPRECATED}, deprecated={DEPRECATED})],
    }


def resolve_level(confidence_level, confidence, owner):
    """The interval level, from ``confidence_level`` or the old ``confidence``.

    ``confidence`` (the name before issue 15) wins when given, with a
    ``FutureWarning``; it keeps working for one release.
    """
    confidence_level = resolve_renamed_argument(
        confidence_level,
        confidence,
        old="confidence",
        new="confidence_level",
        owner=owner,
        stacklevel=5,
    )
    return resolve_confidence_level(confidence_level, owner=owner)
