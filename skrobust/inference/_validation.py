"""Input checks shared by the empirical-likelihood functions."""

import numpy as np

from skrobust.utils._validation import check_losses


def check_sample_1d(x, name="x"):
    """Return ``x`` as a finite 1-d float64 array (a copy when converted)."""
    return check_losses(x, name=name)


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
