"""Per-sample losses of a fitted model, shared by the evaluation tools."""

import numpy as np

from skrobust.utils._validation import check_losses

LOSSES = ("zero_one", "squared_error", "absolute_error", "log_loss")

_EPS = 1e-15


def _log_loss(y_true, y_pred, classes=None):
    y_pred = np.asarray(y_pred, dtype=float)
    if y_pred.ndim == 1 or (y_pred.ndim == 2 and y_pred.shape[1] == 1):
        prob = y_pred.reshape(-1)
        if np.any((prob < 0) | (prob > 1)):
            raise ValueError("y_pred must hold probabilities in [0, 1] for log_loss.")
        labels = np.unique(y_true) if classes is None else np.asarray(classes)
        if labels.shape[0] > 2:
            raise ValueError(
                "log_loss with 1-d y_pred needs a binary y_true; got "
                f"{labels.shape[0]} classes. Pass y_pred of shape (n, n_classes)."
            )
        positive = np.asarray(y_true) == labels[-1]
        prob = np.clip(prob, _EPS, 1 - _EPS)
        return -np.where(positive, np.log(prob), np.log1p(-prob))
    if y_pred.ndim != 2:
        raise ValueError(
            f"y_pred for log_loss must be 1-d or 2-d; got {y_pred.ndim}-d."
        )
    labels = np.unique(y_true) if classes is None else np.asarray(classes)
    if labels.shape[0] != y_pred.shape[1]:
        raise ValueError(
            f"y_pred has {y_pred.shape[1]} columns but there are "
            f"{labels.shape[0]} classes; columns must follow the sorted classes."
        )
    index = np.searchsorted(labels, y_true)
    index = np.clip(index, 0, labels.shape[0] - 1)
    if not np.all(labels[index] == np.asarray(y_true)):
        raise ValueError("y_true holds labels that are not among the classes.")
    prob = np.clip(y_pred[np.arange(y_pred.shape[0]), index], _EPS, 1.0)
    return -np.log(prob)


def _check_finite_values(values, name):
    """Reject NaN (and, for numbers, infinity) in labels or predictions."""
    values = np.asarray(values)
    if values.dtype.kind in "fc":
        bad = ~np.isfinite(values)
    elif values.dtype.kind == "O":
        bad = values != values  # NaN is the only value unequal to itself
    else:
        return
    if np.any(bad):
        raise ValueError(f"{name} contains NaN or infinite values.")


def per_sample_loss(y_true, y_pred, loss="zero_one", classes=None):
    """Per-sample loss of predictions ``y_pred`` against ``y_true``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True targets.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predictions; probabilities for ``"log_loss"``.
    loss : {"zero_one", "squared_error", "absolute_error", "log_loss"} or \
callable, default="zero_one"
        A callable gets ``(y_true, y_pred)`` and returns one loss per sample.
    classes : array-like of shape (n_classes,), default=None
        Class labels in the order of the columns of ``y_pred`` (log loss only);
        ``None`` means the sorted labels of ``y_true``.

    Returns
    -------
    losses : ndarray of shape (n_samples,)
    """
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-dimensional; got shape {y_true.shape}.")
    n = y_true.shape[0]
    _check_finite_values(y_true, "y_true")
    if not callable(loss):
        _check_finite_values(y_pred, "y_pred")
    if callable(loss):
        values = loss(y_true, y_pred)
    elif loss == "log_loss":
        values = _log_loss(y_true, y_pred, classes)
    else:
        y_pred = np.asarray(y_pred)
        if y_pred.shape[0] != n or y_pred.ndim != 1:
            raise ValueError(
                f"y_pred must have shape ({n},) for loss={loss!r}; got {y_pred.shape}."
            )
        if loss == "zero_one":
            values = (y_pred != y_true).astype(float)
        elif loss == "squared_error":
            values = (y_true.astype(float) - y_pred.astype(float)) ** 2
        elif loss == "absolute_error":
            values = np.abs(y_true.astype(float) - y_pred.astype(float))
        else:
            raise ValueError(
                f"loss must be one of {LOSSES} or a callable; got {loss!r}."
            )
    values = check_losses(values, name="per-sample loss")
    if values.shape[0] != n:
        raise ValueError(
            f"the loss returned {values.shape[0]} values for {n} samples; "
            "it must return one loss per sample."
        )
    return values


def model_losses(estimator, X, y, loss):
    """Per-sample losses of a fitted ``estimator`` on ``(X, y)``.

    ``loss="log_loss"`` uses ``predict_proba`` with the estimator's
    ``classes_``; every other loss uses ``predict``.
    """
    y = np.asarray(y)
    if loss == "log_loss":
        proba = estimator.predict_proba(X)
        return per_sample_loss(y, proba, loss, classes=estimator.classes_)
    return per_sample_loss(y, estimator.predict(X), loss)
