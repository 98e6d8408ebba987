"""DRO LightGBM classifier: boosting on the robust log-loss."""

import numpy as np
from scipy.special import expit, log_expit, log_softmax, logsumexp, softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets

from skrobust.ensemble._booster import _BaseDROLGBM, _doc
from skrobust.linear_model._losses import _BinaryLogistic, _Multinomial
from skrobust.utils import check_nonnegative_sample_weight


class DROLGBMClassifier(ClassifierMixin, _BaseDROLGBM):
    __doc__ = _doc(
        """Gradient boosting that minimizes a worst-case (robust) log-loss.

    Each boosting round computes the per-sample log-losses :math:`\\ell_i` of
    the current model, the worst-case weights :math:`q` of the ambiguity set
    (:meth:`~skrobust.ambiguity.AmbiguitySet.worst_case_weights`), and hands
    LightGBM the gradients and hessians of the plain loss multiplied by
    :math:`W q_i` (:math:`W` the total sample weight, so that unit weights and
    a radius of zero give exactly LightGBM's own binary / multiclass
    objective). By Danskin's theorem :math:`q_i \\partial \\ell_i / \\partial
    f(x_i)` is the functional gradient of the robust risk
    :math:`R(f) = \\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell(f(X), Y)]`, so the
    trees descend the robust risk while the weights follow the hardest
    samples.

    Two classes use the logistic loss on one raw score; more classes use the
    softmax cross-entropy on one score per class, with LightGBM's multiclass
    hessian :math:`\\tfrac{K}{K-1} p_k (1 - p_k)`.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
%(shared_params)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    booster_ : lightgbm.Booster
        The fitted trees (raw scores exclude :attr:`init_score_`).
    init_score_ : ndarray of shape (1,) or (n_classes,)
        Starting raw score: the log-odds (log class frequencies for several
        classes) of the weighted training labels, as LightGBM's
        ``boost_from_average``.
    ambiguity_ : AmbiguitySet
        The ambiguity set used (the string shortcut resolved).
    robust_risk_ : float
        Robust log-loss of the final model on the training data.
    train_loss_ : float
        Average (sample-weighted) log-loss on the training data.
    n_estimators_ : int
        Number of boosting rounds run.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    DROLGBMRegressor : The regression counterpart.
    lightgbm.LGBMClassifier : Plain (average-risk) boosting.

    Notes
    -----
    The weights make each round a Newton step on the robust risk with the
    weights held fixed, the boosting analogue of the joint primal-dual solve
    of the DRO linear models. The trees start from the constant that
    minimizes the robust risk; losses equal to a relative :math:`10^{-6}`
    count as tied. For CVaR, whose exact weights jump between
    :math:`1/\\alpha` and 0 and make the Newton steps oscillate, the weights
    are the gradient of CVaR's softplus-smoothed dual at a temperature of 0.3
    times the standard deviation of the current losses (the reported
    ``robust_risk_`` is the exact CVaR). If the worst case concentrates on
    samples that no split can separate (e.g. the single largest loss under a
    huge radius), LightGBM stops early and a ``ConvergenceWarning`` says so.

    ``min_child_samples`` counts rows, not weight, so a ``sample_weight`` of 2
    is not the same as a repeated row, exactly as in LightGBM.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).
    .. [2] Ke, G. et al. (2017). "LightGBM: A highly efficient gradient
       boosting decision tree." NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.ambiguity import ChiSquare
    >>> from skrobust.ensemble import DROLGBMClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = DROLGBMClassifier(ChiSquare(radius=0.5), n_estimators=20,
    ...                         random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool(clf.robust_risk_ >= clf.train_loss_)
    True
    """
    )

    def __init__(
        self,
        ambiguity="chi2",
        *,
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=31,
        max_depth=-1,
        min_child_samples=20,
        subsample=1.0,
        subsample_freq=0,
        colsample_bytree=1.0,
        reg_lambda=0.0,
        reg_alpha=0.0,
        lgbm_params=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
        boosting_type="gbdt",
        subsample_for_bin=200000,
        objective=None,
        class_weight=None,
        min_split_gain=0.0,
        min_child_weight=1e-3,
        importance_type="split",
        **kwargs,
    ):
        self._store_params(locals())

    def _n_outputs(self):
        n_classes = self.classes_.shape[0]
        return 1 if n_classes == 2 else n_classes

    def _init_score(self, target, weight):
        freq = np.bincount(target, weights=weight, minlength=self.classes_.shape[0])
        freq = np.clip(freq / weight.sum(), 1e-15, 1.0)
        if self.classes_.shape[0] == 2:
            return np.array([np.log(freq[1]) - np.log(freq[0])])
        return np.log(freq)

    def _engine_loss(self, target, weight):
        """The linear engine's log-loss, on one atom per class.

        A constant score gives every sample of a class the same loss, and the
        robust risk of the sets of :mod:`skrobust.ambiguity` depends only on
        the distribution of the losses (their worst case weights tied losses
        alike), so the constant's problem is solved on the classes, weighted
        by their total sample weight: ``n_classes`` rows instead of
        ``n_samples`` (a balanced binary problem, whose losses all tie at the
        start, took seconds at n = 20,000 through the engine's exact conic
        fallback).
        """
        n_classes = self.classes_.shape[0]
        loss = _BinaryLogistic() if n_classes == 2 else _Multinomial(n_classes)
        mass = np.bincount(target, weights=weight, minlength=n_classes)
        present = np.flatnonzero(mass > 0)
        return loss, loss.encode(present), mass[present]

    def _loss_grad_hess(self, raw, target):
        if raw.shape[1] == 1:
            f = raw[:, 0]
            sign = 2.0 * target - 1.0
            losses = -log_expit(sign * f)
            prob = expit(f)
            grad = (prob - target)[:, None]
            hess = (prob * (1.0 - prob))[:, None]
            return losses, grad, hess
        n_classes = raw.shape[1]
        rows = np.arange(raw.shape[0])
        losses = -log_softmax(raw, axis=1)[rows, target]
        prob = softmax(raw, axis=1)
        grad = prob.copy()
        grad[rows, target] -= 1.0
        hess = (n_classes / (n_classes - 1.0)) * prob * (1.0 - prob)
        return losses, grad, hess

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the boosted trees on the robust log-loss.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (any values; at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining the nominal distribution :math:`P_n`.

        Returns
        -------
        self : DROLGBMClassifier
            The fitted estimator.
        """
        X, y = self._validate_fit_data(X, y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        target = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        if self.classes_.shape[0] < 2:
            raise ValueError(
                "y has only one class; the classifier needs at least 2 classes, "
                f"got {self.classes_.tolist()}."
            )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        if self.class_weight is not None:
            # as LightGBM: the class weights multiply the sample weights
            sample_weight = sample_weight * compute_sample_weight(self.class_weight, y)
        return self._boost(X, target, sample_weight)

    def decision_function(self, X):
        """Raw scores: log-odds for two classes, one score per class otherwise.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        raw = self._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            pos = expit(raw[:, 0])
            return np.column_stack([1.0 - pos, pos])
        return softmax(raw, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            return np.column_stack([log_expit(-raw[:, 0]), log_expit(raw[:, 0])])
        return raw - logsumexp(raw, axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            index = (raw[:, 0] > 0).astype(int)
        else:
            index = np.argmax(raw, axis=1)
        return self.classes_[index]
