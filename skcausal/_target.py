"""The causal target: outcome and treatment travel together inside ``y``."""

import numpy as np
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_consistent_length


def _check_treatment(treatment, *, name="treatment"):
    """Return ``treatment`` as a float array of 0/1, or raise a clear error."""
    try:
        t = np.asarray(treatment)
        # no copy when already float64: the callers never write into it
        t = t.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a binary array of 0 and 1; got {exc}"
        ) from exc
    if t.ndim == 2 and t.shape[1] == 1:
        t = t.ravel()
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional; got shape {t.shape}.")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    values = np.unique(t)
    if not np.all(np.isin(values, (0.0, 1.0))):
        shown = values[:5].tolist()
        raise ValueError(
            f"{name} must be binary with values 0 (control) and 1 (treated); "
            f"got the values {shown}{' ...' if values.size > 5 else ''}."
        )
    return t


@validate_params(
    {"outcome": ["array-like"], "treatment": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def make_target(outcome, treatment):
    """Pack an outcome and a binary treatment into one 2-column target ``y``.

    The causal estimators of :mod:`skcausal` read the treatment from the second
    column of ``y``. Because ``y`` is passed through untouched by
    :class:`~sklearn.pipeline.Pipeline`, every cross-validation splitter,
    :func:`~sklearn.model_selection.cross_validate` and
    :class:`~sklearn.model_selection.GridSearchCV`, the treatment follows the
    rows it belongs to with no global configuration.

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    outcome : array-like of shape (n_samples,)
        Observed outcomes (finite real numbers).
    treatment : array-like of shape (n_samples,)
        Treatment indicators: 1 (or ``True``) for treated, 0 for control.

    Returns
    -------
    y : ndarray of shape (n_samples, 2)
        ``y[:, 0]`` is the outcome and ``y[:, 1]`` the treatment, as float64.

    Raises
    ------
    ValueError
        If the lengths differ, the outcome is not finite, or the treatment is
        not binary.

    See Also
    --------
    AIPW : Doubly robust estimator of the average treatment effect.

    Examples
    --------
    >>> from skcausal import make_target
    >>> make_target([1.5, 2.0, 0.5], [1, 0, 1])
    array([[1.5, 1. ],
           [2. , 0. ],
           [0.5, 1. ]])
    """
    try:
        y = np.asarray(outcome, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"outcome must be an array of numbers; got {exc}") from exc
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"outcome must be 1-dimensional; got shape {y.shape}.")
    if not np.all(np.isfinite(y)):
        raise ValueError("outcome contains NaN or infinite values.")
    t = _check_treatment(treatment)
    check_consistent_length(y, t)
    return np.column_stack([y, t])


def _split_target(y, treatment):
    """Split a validated ``y`` (and optional ``treatment``) into outcome, t.

    ``y`` has passed :func:`~sklearn.utils.validation.validate_data` with
    ``multi_output=True``, so it is finite and numeric.
    """
    y = np.asarray(y, dtype=np.float64)
    if treatment is None:
        if y.ndim != 2 or y.shape[1] != 2:
            raise ValueError(
                "y must be the 2-column target made by "
                "skcausal.make_target(outcome, treatment), or a 1-d outcome "
                f"with fit(..., treatment=t); got y of shape {y.shape} and no "
                "treatment."
            )
        # views of y's columns (0.5x the input not copied); nothing in skcausal
        # writes into them, and no fitted attribute keeps them
        return y[:, 0], _check_treatment(y[:, 1], name="y[:, 1] (treatment)")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(
            "With fit(..., treatment=t), y must be the 1-d outcome; got y of "
            f"shape {y.shape}. Pass either make_target(outcome, treatment) as y "
            "or the outcome with treatment=, not both."
        )
    t = _check_treatment(treatment)
    check_consistent_length(y, t)
    return y, t
