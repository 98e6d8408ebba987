"""Input checks shared by the empirical-likelihood functions."""

import numpy as np

from skrobust.utils._validation import check_losses


def check_sample_1d(x, name="x"):
    """Return ``x`` as a finite 1-d float64 array (a copy when converted).

    The checks of :func:`skrobust.utils.check_losses`, with the finiteness
    read off the extremes (a NaN or an infinity makes the range non-finite),
    which saves a pass and a mask of ``x``'s size on the valid case.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.ndim == 1 and arr.shape[0] > 0:
        with np.errstate(invalid="ignore", over="ignore"):
            spread = arr.max() - arr.min()
        if np.isfinite(spread):
            return arr
    return check_losses(x, name=name)  # raises the message


def check_frequency_weights(sample_weight, n_samples):
    """Nonnegative frequency weights; ``None`` gives ones.

    Empirical likelihood is calibrated by the number of observations, so the
    weights are *not* normalized: an integer weight counts as that many
    repeated rows and the effective sample size is their sum.
    """
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"sample_weight must be an array of numbers; got {exc}"
        ) from exc
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {w.shape}, but {n_samples} samples were given."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinite values.")
    if np.any(w < 0):
        raise ValueError("sample_weight has negative entries; weights must be >= 0.")
    if w.sum() <= 0:
        raise ValueError("sample_weight sums to zero; at least one weight must be > 0.")
    return w
