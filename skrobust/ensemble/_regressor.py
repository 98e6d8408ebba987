"""DRO LightGBM regressor: boosting on a robust regression loss."""

from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from skrobust.ensemble._booster import _BaseDROLGBM, _doc
from skrobust.linear_model._losses import _Absolute, _Huber, _Squared
from skrobust.utils import check_nonnegative_sample_weight


class DROLGBMRegressor(RegressorMixin, _BaseDROLGBM):
    __doc__ = _doc(
        """Gradient boosting that minimizes a worst-case (robust) regression loss.

    Each boosting round computes the per-sample losses :math:`\\ell_i` of the
    current model, the worst-case weights :math:`q` of the ambiguity set, and
    hands LightGBM the loss's gradients and hessians multiplied by
    :math:`W q_i` (:math:`W` the total sample weight): the functional gradient
    of the robust risk :math:`\\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell]`
    (Danskin). With a radius of zero and the squared loss this is LightGBM's
    own ``regression`` objective.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        Per-sample loss: :math:`\\tfrac12 (y - f)^2`, :math:`|y - f|`, or the
        Huber loss with threshold ``huber_delta``. The absolute and Huber
        losses use a unit hessian (LightGBM does the same, but it also
        re-fits the leaf values of ``regression_l1`` to residual medians,
        which a custom objective cannot do).
    huber_delta : float, default=1.0
        Threshold of the Huber loss (LightGBM's ``alpha``).
%(shared_params)s

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The fitted trees (raw scores exclude :attr:`init_score_`).
    init_score_ : ndarray of shape (1,)
        Starting prediction: the weighted mean of ``y`` for the squared and
        Huber losses, the weighted median for the absolute loss.
    ambiguity_ : AmbiguitySet
        The ambiguity set used (the string shortcut resolved).
    robust_risk_ : float
        Robust loss of the final model on the training data.
    train_loss_ : float
        Average (sample-weighted) loss on the training data.
    n_estimators_ : int
        Number of boosting rounds run.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    DROLGBMClassifier : The classification counterpart.
    lightgbm.LGBMRegressor : Plain (average-risk) boosting.

    Notes
    -----
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
    >>> from sklearn.datasets import make_regression
    >>> from skrobust.ensemble import DROLGBMRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=5.0,
    ...                        random_state=0)
    >>> reg = DROLGBMRegressor("cvar", n_estimators=20, random_state=0)
    >>> reg.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> bool(reg.robust_risk_ >= reg.train_loss_)
    True
    """
    )

    _parameter_constraints = {
        **_BaseDROLGBM._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        ambiguity="chi2",
        *,
        loss="squared_error",
        huber_delta=1.0,
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
        return 1

    def _init_score(self, target, weight):
        if self.loss == "absolute_error":
            order = np.argsort(target, kind="stable")
            cum = np.cumsum(weight[order])
            index = int(np.searchsorted(cum, 0.5 * cum[-1]))
            return np.array([target[order][index]])
        return np.array([np.dot(weight, target) / weight.sum()])

    def _engine_loss(self, target, weight):
        """The linear engine's regression loss (same scale), on the distinct targets.

        A constant score gives equal targets equal losses, and the robust
        risk of the sets of :mod:`skrobust.ambiguity` depends only on the
        distribution of the losses: the constant's problem is solved on the
        distinct target values, weighted by their total sample weight.
        """
        values, inverse = np.unique(target, return_inverse=True)
        mass = np.bincount(inverse, weights=weight, minlength=values.shape[0])
        present = mass > 0
        values, mass = values[present], mass[present]
        if self.loss == "squared_error":
            return _Squared(), values, mass
        if self.loss == "absolute_error":
            return _Absolute(), values, mass
        return _Huber(float(self.huber_delta)), values, mass

    def _loss_grad_hess(self, raw, target):
        residual = raw[:, 0] - target
        if self.loss == "squared_error":
            losses = 0.5 * residual**2
            grad = residual
            hess = np.ones_like(residual)
        elif self.loss == "absolute_error":
            losses = np.abs(residual)
            grad = np.sign(residual)
            hess = np.ones_like(residual)
        else:
            delta = float(self.huber_delta)
            small = np.abs(residual) <= delta
            losses = np.where(
                small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta)
            )
            grad = np.clip(residual, -delta, delta)
            hess = np.ones_like(residual)
        return losses, grad[:, None], hess[:, None]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the boosted trees on the robust loss.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining the nominal distribution :math:`P_n`.

        Returns
        -------
        self : DROLGBMRegressor
            The fitted estimator.
        """
        if self.class_weight is not None:
            raise ValueError(
                "class_weight applies to classification; DROLGBMRegressor needs "
                f"class_weight=None, got {self.class_weight!r}."
            )
        X, y = self._validate_fit_data(X, y, y_numeric=True)
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        return self._boost(X, np.asarray(y, dtype=np.float64), sample_weight)

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._raw_predict(X)[:, 0]
