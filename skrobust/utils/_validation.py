"""Validation of per-sample losses and weights shared by every module."""

import numpy as np


def check_losses(losses, *, name="losses"):
    """Return ``losses`` as a finite 1-d float64 array (never a view to modify).

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses.
    name : str, default="losses"
        Name used in error messages.

    Returns
    -------
    losses : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        If the array is empty, not 1-d, holds NaN or infinite values, or
        spans more than the float64 range.

    Examples
    --------
    >>> from skrobust.utils import check_losses
    >>> check_losses([1, 2, 3])
    array([1., 2., 3.])
    """
    try:
        arr = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers; got {exc}") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional; got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; at least one sample is required.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    with np.errstate(over="ignore"):
        spread = arr.max() - arr.min()
    if not np.isfinite(spread):
        raise ValueError(
            f"{name} span more than the float64 range (max - min overflows); "
            "rescale them."
        )
    return arr


def check_probability_weights(sample_weight, n_samples, *, name="sample_weight"):
    """Normalize nonnegative sample weights into a probability vector.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        Nonnegative weights; ``None`` means uniform.
    n_samples : int
        Expected length.
    name : str, default="sample_weight"
        Name used in error messages.

    Returns
    -------
    p : ndarray of shape (n_samples,)
        Weights divided by their sum.

    Raises
    ------
    ValueError
        If the weights have the wrong length, are negative, not finite, or sum
        to zero.

    Examples
    --------
    >>> from skrobust.utils import check_probability_weights
    >>> check_probability_weights([1, 3], 2)
    array([0.25, 0.75])
    """
    if sample_weight is None:
        return np.full(n_samples, 1.0 / n_samples)
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers; got {exc}") from exc
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(
            f"{name} has shape {w.shape}, but {n_samples} samples were given."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if np.any(w < 0):
        raise ValueError(f"{name} has negative entries; weights must be >= 0.")
    total = w.sum()
    if total <= 0:
        raise ValueError(f"{name} sums to zero; at least one weight must be > 0.")
    return w / total


def check_nonnegative_sample_weight(sample_weight, X):
    """scikit-learn's sample-weight check plus a positive total.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        Nonnegative weights; ``None`` means all ones.
    X : array-like of shape (n_samples, n_features)
        The data the weights belong to.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        If a weight is negative or not finite, the length is wrong, or all
        weights are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.utils import check_nonnegative_sample_weight
    >>> check_nonnegative_sample_weight(None, np.zeros((2, 1)))
    array([1., 1.])
    """
    from sklearn.utils.validation import _check_sample_weight

    weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
    if not weight.sum() > 0:
        raise ValueError("sample_weight sums to zero; some weight must be > 0.")
    return weight
