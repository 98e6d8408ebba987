"""Shared base of the cross-fitted treatment-effect estimators.

The nuisances come from the cross-fitting engine (:mod:`skrobust._crossfit`).
Helpers for subclasses (stable names):

- ``conf_int(confidence_level=0.95, *, alpha=DEPRECATED)`` and
  ``summary(confidence_level=0.95, *, alpha=DEPRECATED)``: public; resolve
  the level (old ``alpha`` keyword, or a positional value < 0.5, read as the
  old alpha with a ``FutureWarning``), then call
- ``_normal_conf_int(level) -> ConfidenceInterval`` and
  ``_summary_table(level) -> DataFrame``: no deprecation handling, for a
  subclass whose own ``conf_int`` / ``summary`` adds parameters.
- ``_resolve_level(confidence_level, alpha, owner) -> float``: that rule
  (keyword and positional alpha), for a subclass's own methods.
- ``_check_alpha``, ``_normal_interval(estimate, stderr, alpha)``,
  ``_influence_stderr``, ``_weighted_mean``: unchanged (the last two are the
  engine's ``influence_stderr`` / ``weighted_mean``; ``_normal_interval``
  now returns a ``ConfidenceInterval``, which unpacks as before).
"""

import warnings
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, _fit_context
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from skcausal._crossfit import _crossfit, _plain_outcome_fitter
from skcausal._target import _split_target
from skrobust import _crossfit as _engine
from skrobust._crossfit import normal_interval
from skrobust.utils import (
    DEPRECATED,
    ConfidenceInterval,
    check_nonnegative_sample_weight,
    resolve_confidence_level,
)

_PROBA_FLOOR = 1e-15

# the engine's influence-function helpers under their old names (the
# estimators of skcausal import them from here)
_influence_stderr = _engine.influence_stderr
_weighted_mean = _engine.weighted_mean


def _normal_interval(estimate, stderr, alpha):
    """The engine's normal interval at level ``1 - alpha`` (old signature)."""
    return normal_interval(estimate, stderr, 1.0 - alpha)


def _resolve_level(confidence_level, alpha, owner):
    """The checked confidence level of a ``conf_int`` / ``summary`` call.

    The old ``alpha`` keyword goes to
    :func:`~skrobust.utils.resolve_confidence_level` (``FutureWarning``). The
    first positional argument of these methods was ``alpha``
    (``conf_int(0.05)``: a 95% interval); for one release a value in
    (0, 0.5), when ``alpha`` is not given, keeps that meaning, with a
    ``FutureWarning``: a level of at least 0.5 is the only kind in use, so no
    call is read wrongly in silence.
    """
    if (
        isinstance(alpha, str)
        and alpha == DEPRECATED
        and isinstance(confidence_level, Real)
        and not isinstance(confidence_level, bool)
        and 0.0 < confidence_level < 0.5
    ):
        level = 1.0 - float(confidence_level)
        warnings.warn(
            f"{owner}: {confidence_level!r} is read as the old alpha (one minus "
            "the confidence level), which is deprecated and will be removed in "
            f"the next release; use confidence_level={level!r} instead.",
            FutureWarning,
            stacklevel=3,
        )
        confidence_level = level
    return resolve_confidence_level(confidence_level, alpha, owner=owner)


def _check_alpha(alpha):
    if not isinstance(alpha, Real) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a float in (0, 1); got {alpha!r}.")
    return float(alpha)


# rows per block of the in-place products with the inverse weights
_WEIGHT_BLOCK = 1024


def _times_inverse_weights(values, t, e):
    """``values *= _inverse_weights(t, e)`` in place, one block of rows at a time.

    The same values as the full product, with an (n, 2) weight temporary of
    ``_WEIGHT_BLOCK`` rows instead of ``n``.
    """
    for start in range(0, values.shape[0], _WEIGHT_BLOCK):
        rows = slice(start, start + _WEIGHT_BLOCK)
        values[rows] *= _inverse_weights(t[rows], e[rows])
    return values


def _inverse_weights(t, e):
    """Inverse-propensity weights of the control and treated arms, (n, 2)."""
    w = np.empty((t.shape[0], 2))
    np.subtract(1.0, t, out=w[:, 0])
    w[:, 0] /= 1.0 - e
    np.divide(t, e, out=w[:, 1])
    return w


def _effective_sample_size(w):
    total = w.sum()
    return float(total**2 / np.dot(w, w)) if total > 0 else 0.0


class _BaseCausalEstimator(BaseEstimator):
    """Cross-fitting, inference and scoring shared by every estimator.

    Subclasses set ``_uses_outcome`` / ``_uses_propensity`` and implement
    :meth:`_estimate`, which maps the stacked out-of-fold nuisances to the two
    potential-outcome means and their influence functions.
    """

    _uses_outcome = True
    _uses_propensity = True

    _parameter_constraints: dict = {
        "cv": ["cv_object"],
        "random_state": ["random_state"],
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
    }

    _outcome_constraints = {
        "outcome_model": [None, HasMethods(["fit", "predict"])],
        "learner": [StrOptions({"T", "S"})],
    }
    _propensity_constraints = {
        "propensity_model": [None, HasMethods(["fit", "predict_proba"])],
        "clip": [Interval(Real, 0, 0.5, closed="left")],
    }

    # -- fitting -----------------------------------------------------------
    def _outcome_model(self):
        model = getattr(self, "outcome_model", None)
        return LinearRegression() if model is None else model

    def _propensity_model(self):
        model = getattr(self, "propensity_model", None)
        return LogisticRegression() if model is None else model

    def _outcome_fitter(self):
        return _plain_outcome_fitter(getattr(self, "learner", "T"))

    # nuisance models carry their own validation, hence no nested skipping
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, treatment=None, sample_weight=None):
        """Cross-fit the nuisance models and estimate the treatment effect.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates (confounders).
        y : array-like of shape (n_samples, 2) or (n_samples,)
            The target made by :func:`make_target` (outcome in column 0,
            treatment in column 1), or the 1-d outcome when ``treatment`` is
            given.
        treatment : array-like of shape (n_samples,), default=None
            Binary treatment, a convenience alternative to :func:`make_target`.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the units: passed to the nuisance models
            (to every step of a pipeline that accepts them; integer weights
            become repeated rows for a model that does not) and used in
            every average and in the standard errors, so that integer
            weights give the same result as repeated rows held out in the
            same fold.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        outcome, t = _split_target(y, treatment)
        sw = None
        if sample_weight is not None:
            sw = check_nonnegative_sample_weight(sample_weight, X)
            # float32 weights are kept as float32 by the checker
            sw = sw.astype(np.float64, copy=False)
        self._sample_weight = sw
        rng = check_random_state(self.random_state)
        nuisance = _crossfit(
            X,
            outcome,
            t,
            propensity_model=self._propensity_model()
            if self._uses_propensity
            else None,
            outcome_model=self._outcome_model() if self._uses_outcome else None,
            fitter=self._outcome_fitter() if self._uses_outcome else None,
            cv=self.cv,
            clip=float(getattr(self, "clip", 0.0)),
            random_state=rng,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            sample_weight=sw,
        )
        results = nuisance["fold_results"]
        self.fold_indices_ = [test for _, test in nuisance["folds"]]
        if self._uses_propensity:
            self.propensity_models_ = [res["propensity_model"] for res in results]
            self.propensity_ = nuisance["e"]
        if self._uses_outcome:
            self._outcome_fits = [res["outcome_model"] for res in results]
            self.outcome_predictions_ = nuisance["mu"]
        psi, infl = self._estimate(outcome, t, nuisance, sw)
        self.potential_outcome_means_ = np.asarray(psi, dtype=np.float64)
        self.potential_outcome_influence_ = infl
        self.estimate_ = float(psi[1] - psi[0])
        self.influence_function_ = infl[:, 1] - infl[:, 0]
        self.stderr_ = float(_influence_stderr(self.influence_function_, sw))
        self.potential_outcome_stderr_ = _influence_stderr(infl, sw, axis=0)
        self.diagnostics_ = self._diagnostics(outcome, t, nuisance)
        return self

    @abstractmethod
    def _estimate(self, y, t, nuisance, sw):
        """Return ``(psi, influence)``: (2,) means of Y(0), Y(1) and (n, 2).

        ``sw`` holds the frequency weights of the units, or ``None``.
        """

    def _diagnostics(self, y, t, nuisance):
        diag = {"n_samples": int(t.shape[0]), "n_treated": int(t.sum())}
        if self._uses_propensity:
            e = nuisance["e"]
            diag["propensity_min"] = float(e.min())
            diag["propensity_max"] = float(e.max())
            diag["n_clipped"] = int(nuisance["n_clipped"])
            w = t / e
            diag["ess_treated"] = _effective_sample_size(w)
            # (1 - t) / (1 - e) in the same buffer, without a (1 - e) temporary
            # (t is 0 or 1: the same values)
            np.subtract(1.0, e, out=w)
            np.divide(1.0, w, out=w)
            w[t != 0] = 0.0
            diag["ess_control"] = _effective_sample_size(w)
            del w
            diag["propensity_log_loss"] = _log_loss(t, e)
        if self._uses_outcome:
            diag["outcome_mse"] = _observed_arm_mse(y, t, nuisance["mu"])
        return diag

    # -- inference ---------------------------------------------------------
    def conf_int(self, confidence_level=0.95, *, alpha=DEPRECATED):
        """Normal confidence interval for the average treatment effect.

        Parameters
        ----------
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the interval. For one release a value below
            0.5 is read as the old ``alpha`` (``conf_int(0.05)`` meant a 95%
            interval), with a ``FutureWarning``.
        alpha : float in (0, 1), default="deprecated"
            Deprecated: ``1 - confidence_level``. Kept for one release, with
            a ``FutureWarning``.

        Returns
        -------
        interval : skrobust.utils.ConfidenceInterval
            ``(low, high) = estimate_ -/+ z * stderr_``, ``z`` the
            ``(1 + confidence_level) / 2`` normal quantile; it unpacks as
            ``lower, upper``.
        """
        check_is_fitted(self)
        level = _resolve_level(
            confidence_level, alpha, f"{type(self).__name__}.conf_int"
        )
        return self._normal_conf_int(level)

    def _normal_conf_int(self, confidence_level):
        """``conf_int`` at a checked level, without deprecation handling.

        For subclasses whose own ``conf_int`` adds parameters.
        """
        low, high = normal_interval(self.estimate_, self.stderr_, confidence_level)
        return ConfidenceInterval(float(low), float(high))

    def summary(self, confidence_level=0.95, *, alpha=DEPRECATED):
        """Estimates, standard errors and intervals as a DataFrame.

        Parameters
        ----------
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the intervals. For one release a value below
            0.5 is read as the old ``alpha``, with a ``FutureWarning``.
        alpha : float in (0, 1), default="deprecated"
            Deprecated: ``1 - confidence_level``. Kept for one release, with
            a ``FutureWarning``.

        Returns
        -------
        table : pandas.DataFrame
            Rows ``"ATE"``, ``"E[Y(1)]"``, ``"E[Y(0)]"``; columns ``estimate``,
            ``std_error``, ``z``, ``p_value`` (two-sided, against zero),
            ``ci_lower``, ``ci_upper``.
        """
        check_is_fitted(self)
        level = _resolve_level(
            confidence_level, alpha, f"{type(self).__name__}.summary"
        )
        return self._summary_table(level)

    def _summary_table(self, confidence_level):
        """``summary`` at a checked level, without deprecation handling."""
        est = np.array(
            [self.estimate_, *self.potential_outcome_means_[::-1]], dtype=float
        )
        se = np.array([self.stderr_, *self.potential_outcome_stderr_[::-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        lower, upper = normal_interval(est, se, confidence_level)
        return pd.DataFrame(
            {
                "estimate": est,
                "std_error": se,
                "z": z,
                "p_value": 2.0 * stats.norm.sf(np.abs(z)),
                "ci_lower": lower,
                "ci_upper": upper,
            },
            index=["ATE", "E[Y(1)]", "E[Y(0)]"],
        )

    # -- nuisance predictions and scoring ------------------------------------
    def predict_potential_outcomes(self, X):
        """Predict both potential outcomes with the cross-fitted outcome models.

        The prediction is the average over the folds' outcome models.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        mu : ndarray of shape (n_samples, 2)
            ``mu[:, 0]`` estimates :math:`E[Y(0) | X]`, ``mu[:, 1]``
            estimates :math:`E[Y(1) | X]`.
        """
        check_is_fitted(self)
        if not self._uses_outcome:
            raise AttributeError(
                f"{type(self).__name__} has no outcome model; it cannot predict "
                "potential outcomes."
            )
        X = validate_data(self, X, reset=False)
        return np.mean([fit.predict_both(X) for fit in self._outcome_fits], axis=0)

    def _predict_propensity(self, X):
        from skcausal._crossfit import _predict_propensity

        e = np.mean([_predict_propensity(m, X) for m in self.propensity_models_], 0)
        return np.clip(e, max(float(getattr(self, "clip", 0.0)), _PROBA_FLOOR), None)

    def score(self, X, y, treatment=None):
        """Minus the held-out nuisance loss (greater is better).

        The score is meant for selecting nuisance hyperparameters (for example
        ``outcome_model__max_depth`` in
        :class:`~sklearn.model_selection.GridSearchCV`); it never scores the
        treatment effect itself, which has no observable ground truth. It is

        .. math::

            -\\Big[\\frac{1}{n}\\sum_i (Y_i - \\hat\\mu_{A_i}(X_i))^2
            + \\frac{1}{n}\\sum_i \\ell_{\\log}(A_i, \\hat e(X_i))\\Big],

        the mean squared error of the outcome models on the arm each unit
        received plus the log loss of the propensity model, each term present
        only when the estimator has that model. The two terms depend on
        disjoint hyperparameters, so maximizing their sum over a product grid
        selects the best of each. Predictions average the folds' models.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Held-out covariates.
        y : array-like of shape (n_samples, 2) or (n_samples,)
            Target made by :func:`make_target`, or the outcome with
            ``treatment``.
        treatment : array-like of shape (n_samples,), default=None
            Binary treatment when ``y`` is the 1-d outcome.

        Returns
        -------
        score : float
            Minus the held-out nuisance loss.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        y = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values.")
        outcome, t = _split_target(y, treatment)
        check_consistent_length(X, outcome, t)
        loss = 0.0
        if self._uses_outcome:
            mu = self.predict_potential_outcomes(X)
            loss += _observed_arm_mse(outcome, t, mu)
        if self._uses_propensity:
            loss += _log_loss(t, self._predict_propensity(X))
        return -loss

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags


def _log_loss(t, e):
    # one arm at a time, clipped and logged in place (no (n,) float copies
    # beyond the arm's)
    treated = t == 1
    part = np.clip(e[treated], _PROBA_FLOOR, 1.0 - _PROBA_FLOOR)
    total = np.log(part, out=part).sum()
    part = np.clip(e[~treated], _PROBA_FLOOR, 1.0 - _PROBA_FLOOR)
    np.negative(part, out=part)
    total += np.log1p(part, out=part).sum()
    return float(-total / e.shape[0])


def _observed_arm_mse(y, t, mu):
    """Mean squared error of ``mu`` on the arm each unit received."""
    resid = np.where(t == 1, mu[:, 1], mu[:, 0])
    np.subtract(y, resid, out=resid)
    # max |resid| without an |resid| temporary
    top = float(max(resid.max(), -resid.min())) if resid.size else 0.0
    if top > 0 and np.isfinite(top) and not 1e-100 < top < 1e100:
        # the squares of residuals beyond 1e+-150 over- or underflow
        resid /= top
        return float(resid @ resid / resid.shape[0]) * top * top
    return float(resid @ resid / resid.shape[0])
