"""LinUCB: the per-arm ridge state of the linear policies with a confidence bonus."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from skbandit._linear import _BaseLinearPolicy


class LinUCB(_BaseLinearPolicy):
    """LinUCB: ridge regression per arm with an upper confidence bonus.

    Deterministic: each context gets the arm with the largest
    :math:`x^\\top\\hat\\theta_k + \\alpha\\sqrt{x^\\top A_k^{-1}x}`
    (ties to the first arm in ``classes_``).

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    exploration : float, default=1.0
        Width :math:`\\alpha` of the confidence bonus.
    regularization : float, default=1.0
        Ridge penalty :math:`\\lambda`.
    fit_intercept : bool, default=True
        Whether each arm's model has an (equally penalized) intercept.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Unused (LinUCB does not randomize); kept for a uniform interface.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    coef_ : ndarray of shape (n_arms, n_features)
        Ridge coefficients of each arm.
    intercept_ : ndarray of shape (n_arms,)
        Ridge intercepts (zeros if ``fit_intercept=False``).
    n_features_in_ : int
        Number of context features.
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    LinearThompsonSampling : Samples instead of adding a bonus.

    Notes
    -----
    :math:`A_k = \\lambda I + X_k^\\top W_k X_k`,
    :math:`\\hat\\theta_k = A_k^{-1} X_k^\\top W_k r_k`. Batches of more than
    2,048 contexts are computed in blocks of rows, so that the memory a call
    takes stays near the size of X.

    References
    ----------
    .. [1] L. Li, W. Chu, J. Langford and R. E. Schapire, "A Contextual-Bandit
       Approach to Personalized News Article Recommendation", WWW, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import LinUCB, make_feedback
    >>> X = np.array([[1.0], [1.0], [-1.0], [-1.0]])
    >>> y = make_feedback([0, 1, 0, 1], [1.0, 0.0, 0.0, 1.0])
    >>> LinUCB(exploration=0.1).fit(X, y).predict([[1.0], [-1.0]])
    array([0, 1])
    """

    _parameter_constraints: dict = {
        **_BaseLinearPolicy._parameter_constraints,
        "exploration": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        exploration=1.0,
        regularization=1.0,
        fit_intercept=True,
        arms=None,
        random_state=None,
    ):
        self.exploration = exploration
        self.regularization = regularization
        self.fit_intercept = fit_intercept
        self.arms = arms
        self.random_state = random_state

    def upper_bounds(self, X):
        """Upper confidence bound of each arm's reward in each context.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Contexts.

        Returns
        -------
        bounds : ndarray of shape (n_samples, n_arms)
        """
        X = self._validate_X(X)
        return self._bounds(X)

    def _block_bounds(self, X):
        """Upper bounds of one block of rows (a fresh array)."""
        mean, quad = self._mean_and_var(X)
        np.sqrt(quad, out=quad)
        quad *= self.exploration
        quad += mean
        return quad

    def _bounds(self, X):
        n = X.shape[0]
        step = self._block_rows(X)
        if step >= n:
            return self._block_bounds(X)
        bounds = np.empty((n, self._theta.shape[0]))
        for lo in range(0, n, step):
            bounds[lo : lo + step] = self._block_bounds(X[lo : lo + step])
        return bounds

    def _choose(self, X, rng):
        n = X.shape[0]
        step = self._block_rows(X)
        chosen = np.empty(n, dtype=np.intp)
        for lo in range(0, n, step):
            chosen[lo : lo + step] = self._block_bounds(X[lo : lo + step]).argmax(1)
        return chosen

    def _proba(self, X):
        best = self._choose(X, None)
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        proba[np.arange(X.shape[0]), best] = 1.0
        return proba

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.policy_tags.contextual = True
        tags.policy_tags.randomized = False
        return tags
