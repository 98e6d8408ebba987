"""Shared machinery of the robust linear models of this subpackage.

A robust linear model minimizes ``objective(losses(theta), extra)`` jointly
over the coefficients ``theta`` and a few extra (dual) variables, where the
objective comes from an ambiguity set of :mod:`skrobust.ambiguity`. The
solver is L-BFGS-B on the joint vector; bounds on the extra variables are
allowed (the transport variables of marginal DRO are nonnegative).
"""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from skrobust.linear_model._classifier import _LogisticProbaMixin
from skrobust.linear_model._losses import _BinaryLogistic, _Multinomial, _Squared
from skrobust.utils import check_nonnegative_sample_weight

# The losses are those of skrobust.linear_model; this subpackage keeps its
# conventions: labels encoded in {0, 1} and the squared error r^2 (twice
# linear_model's r^2 / 2).
_BINARY = _BinaryLogistic()
_SQUARED = _Squared()


def _loss_and_derivative(kind, raw, target):
    """Per-sample losses and their derivative with respect to the raw scores.

    ``raw`` has shape (n_samples, n_outputs). Kinds: ``"logistic"`` (one
    output, labels in {0, 1}), ``"multinomial"`` (one output per class) and
    ``"squared"`` (squared error :math:`(y - f)^2`).
    """
    if kind == "logistic":
        return _BINARY.value_grad(raw, 2.0 * target - 1.0)
    if kind == "multinomial":
        return _Multinomial(raw.shape[1]).value_grad(raw, target)
    losses, deriv = _SQUARED.value_grad(raw, target)
    return 2.0 * losses, 2.0 * deriv


def _cvxpy_losses(kind, raw, target):
    """Per-sample convex losses of cvxpy raw scores (as _loss_and_derivative)."""
    if kind == "logistic":
        return _BINARY.cvxpy(raw, 2.0 * target - 1.0)
    if kind == "multinomial":
        return _Multinomial(raw.shape[1]).cvxpy(raw, target)
    return 2.0 * _SQUARED.cvxpy(raw, target)


class _RobustObjective:
    """A robust objective of the per-sample losses and extra variables.

    Subclasses set ``n_extra``, ``extra_init(losses)``, ``bounds`` and
    ``__call__(losses, extra) -> (value, grad_losses, grad_extra)``, and may
    define ``stages`` (a list of settings solved in turn, warm started, as in
    a smoothing continuation) and ``set_stage``.
    """

    stages = (None,)

    def set_stage(self, stage):
        """Switch to a continuation stage (no-op for smooth objectives)."""

    def bounds(self):
        return [(None, None)] * self.n_extra


class _RobustLinearModel(BaseEstimator):
    """Fit of a linear model by L-BFGS-B on a robust objective."""

    _parameter_constraints = {
        "fit_intercept": ["boolean"],
        "l2_reg": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    def _solve(self, X, target, kind, n_outputs, objective):
        n_features = X.shape[1]
        n_coef = n_features * n_outputs
        n_int = n_outputs if self.fit_intercept else 0
        l2 = float(self.l2_reg)

        def unpack(params):
            coef = params[:n_coef].reshape(n_features, n_outputs)
            intercept = params[n_coef : n_coef + n_int]
            return coef, intercept, params[n_coef + n_int :]

        def raw_scores(coef, intercept):
            raw = X @ coef
            return raw + intercept if n_int else raw

        def fun(params):
            coef, intercept, extra = unpack(params)
            losses, deriv = _loss_and_derivative(
                kind, raw_scores(coef, intercept), target
            )
            value, grad_losses, grad_extra = objective(losses, extra)
            weighted = grad_losses[:, None] * deriv
            grad_coef = X.T @ weighted + l2 * coef
            value = value + 0.5 * l2 * float(np.sum(coef * coef))
            parts = [grad_coef.ravel()]
            if n_int:
                parts.append(weighted.sum(axis=0))
            parts.append(np.atleast_1d(grad_extra))
            return value, np.concatenate(parts)

        coef0 = np.zeros((n_features, n_outputs))
        intercept0 = np.zeros(n_int)
        losses0, _ = _loss_and_derivative(kind, raw_scores(coef0, intercept0), target)
        params = np.concatenate(
            [coef0.ravel(), intercept0, objective.extra_init(losses0)]
        )
        bounds = [(None, None)] * (n_coef + n_int) + list(objective.bounds())
        n_iter = 0
        for stage in objective.stages:
            objective.set_stage(stage)
            result = minimize(
                fun,
                params,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={
                    "maxiter": int(self.max_iter),
                    "gtol": float(self.tol),
                    "ftol": 64 * np.finfo(float).eps,
                    "maxcor": 20,
                },
            )
            params = result.x
            n_iter += int(result.nit)
            if result.status == 1:
                warnings.warn(
                    f"{type(self).__name__}: L-BFGS-B reached max_iter="
                    f"{self.max_iter} iterations before converging; increase "
                    "max_iter or scale the features.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        coef, intercept, extra = unpack(params)
        losses, _ = _loss_and_derivative(kind, raw_scores(coef, intercept), target)
        self.n_iter_ = n_iter
        return coef, (intercept if n_int else np.zeros(n_outputs)), extra, losses


class _LinearClassifier(
    _LogisticProbaMixin, LinearClassifierMixin, ClassifierMixin, _RobustLinearModel
):
    """Logistic (two classes) or multinomial (more) robust classifier."""

    def _fit_classifier(self, X, y, sample_weight, fit_params):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        encoder = LabelEncoder()
        target = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        n_classes = self.classes_.shape[0]
        if n_classes < 2:
            raise ValueError(
                "y has only one class; the classifier needs at least 2 classes, "
                f"got {self.classes_.tolist()}."
            )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        kind = "logistic" if n_classes == 2 else "multinomial"
        n_outputs = 1 if n_classes == 2 else n_classes
        objective = self._make_objective(X, sample_weight, **fit_params)
        coef, intercept, extra, losses = self._solve(
            X, target, kind, n_outputs, objective
        )
        self.coef_ = coef.T
        self.intercept_ = intercept
        self._finish(objective, losses, extra)
        return self


class _LinearRegressor(RegressorMixin, _RobustLinearModel):
    """Least-squares robust regressor."""

    def _fit_regressor(self, X, y, sample_weight, fit_params):
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        objective = self._make_objective(X, sample_weight, **fit_params)
        coef, intercept, extra, losses = self._solve(
            X, np.asarray(y, dtype=np.float64), "squared", 1, objective
        )
        self.coef_ = coef[:, 0]
        self.intercept_ = float(intercept[0])
        self._finish(objective, losses, extra)
        return self

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_
