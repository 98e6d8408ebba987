"""What the linear robust classifiers share: label encoding and probabilities."""

import numpy as np
from scipy.special import log_softmax
from sklearn.utils.multiclass import check_classification_targets

from skrobust.linear_model._losses import _BinaryLogistic, _Multinomial


def _encode_classes(estimator, y):
    """Set ``estimator.classes_``; return the loss and the encoded target.

    Two classes use the binary logistic loss (target in {-1, +1}), more the
    multinomial cross-entropy (target the class index).
    """
    check_classification_targets(y)
    estimator.classes_, y_index = np.unique(y, return_inverse=True)
    n_classes = estimator.classes_.shape[0]
    if n_classes < 2:
        raise ValueError(
            "y has only one class; the classifier needs at least 2 classes, "
            f"got {estimator.classes_.tolist()}."
        )
    loss = _BinaryLogistic() if n_classes == 2 else _Multinomial(n_classes)
    return loss, loss.encode(y_index)


class _LogisticProbaMixin:
    """Class probabilities from ``decision_function``: logistic or softmax."""

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return np.column_stack(
                [-np.logaddexp(0, scores), -np.logaddexp(0, -scores)]
            )
        return log_softmax(scores, axis=1)
