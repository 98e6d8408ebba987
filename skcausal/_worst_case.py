"""Worst-case treatment effect over subpopulations (Jeong and Namkoong)."""

from numbers import Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skcausal._base import (
    _BaseCausalEstimator,
    _influence_stderr,
    _normal_interval,
    _resolve_level,
)
from skcausal._docstrings import fill_doc
from skcausal._estimators import _aipw_pseudo_outcomes, _mean_and_influence
from skrobust._crossfit import cross_predict, debiased_cvar
from skrobust.utils import DEPRECATED


def _columns(X, features, n_features):
    if features is None:
        return np.arange(n_features)
    idx = np.asarray(features).reshape(-1)
    if idx.dtype == bool:
        if idx.shape[0] != n_features:
            raise ValueError(
                f"subgroup_features as a mask must have {n_features} entries; "
                f"got {idx.shape[0]}."
            )
        return np.flatnonzero(idx)
    if idx.dtype.kind in "iu":
        if idx.size == 0 or idx.min() < -n_features or idx.max() >= n_features:
            raise ValueError(
                f"subgroup_features indices must lie in [0, {n_features}); got "
                f"{idx.tolist()}."
            )
        return idx
    names = getattr(X, "columns", None)
    if names is None:
        raise ValueError(
            "subgroup_features given by name needs X as a DataFrame with column names."
        )
    names = list(names)
    missing = [f for f in idx if f not in names]
    if missing:
        raise ValueError(f"subgroup_features {missing} are not columns of X.")
    return np.array([names.index(f) for f in idx])


def _set_row(table, row, estimate, se, lower, upper):
    """Overwrite one row's estimate, standard error, interval and z."""
    table.loc[row, ["estimate", "std_error", "ci_lower", "ci_upper"]] = (
        estimate,
        se,
        lower,
        upper,
    )
    table.loc[row, "z"] = estimate / se


@fill_doc
class WorstCaseTreatmentEffect(_BaseCausalEstimator):
    """Lower CVaR of the conditional treatment effect over subpopulations.

    The smallest average treatment effect over every subpopulation that
    makes up at least a fraction ``mass`` of the population and is defined
    by the covariates :math:`Z` (a subset of the columns of ``X``):

    .. math::

        \\theta_\\alpha = \\inf_{h:\\, 0 \\le h \\le 1/\\alpha,\\ E[h(Z)] = 1}
        E[h(Z)\\, \\tau(Z)]
        = \\sup_\\eta \\Big\\{\\eta - \\frac1\\alpha E[(\\eta - \\tau(Z))_+]\\Big\\},

    with :math:`\\tau(Z) = E[Y(1) - Y(0) | Z]`. It tells how small the effect
    can be on a subpopulation the study may have under-represented, an
    assessment of external validity.

    Read more in the :ref:`User Guide <worst_case_effect>`.

    Parameters
    ----------
    <<outcome_model propensity_model>>
    effect_model : regressor, default=None
        Regression of the AIPW pseudo-outcomes on :math:`Z`, cross-fitted on
        the same folds. ``None`` means
        :class:`~sklearn.linear_model.LinearRegression` (fitted without a
        second copy of the training rows, which are already the fit's own).
    subgroup_features : array-like of int, bool or str, default=None
        Columns of ``X`` forming :math:`Z` (indices, a mask, or names when
        ``X`` is a DataFrame). ``None`` uses every column.
    mass : float in (0, 1], default=0.2
        Smallest subpopulation mass :math:`\\alpha`; ``1`` gives the ATE.
    <<learner clip cv random_state n_jobs verbose>>

    Attributes
    ----------
    estimate_ : float
        Debiased estimate of :math:`\\theta_\\alpha` at ``mass``.
    stderr_ : float
        Its standard error.
    influence_function_ : ndarray of shape (n_samples,)
        Estimated influence function of ``estimate_``.
    plugin_estimate_ : float
        The plug-in lower CVaR of the predicted effects :math:`\\hat\\tau(Z)`.
    value_at_risk_ : float
        :math:`\\hat\\eta`, the ``mass``-quantile of :math:`\\hat\\tau(Z)`.
    pseudo_outcomes_ : ndarray of shape (n_samples,)
        AIPW pseudo-outcomes :math:`\\hat\\varphi_i` of the effect.
    effect_predictions_ : ndarray of shape (n_samples,)
        Out-of-fold predictions :math:`\\hat\\tau(Z_i)`.
    effect_models_ : list of estimators
        The effect model fitted on each fold's training part.
    worst_case_weights_ : ndarray of shape (n_samples,)
        Weights of the worst subpopulation (sum to one), from
        :class:`skrobust.ambiguity.CVaR`.
    potential_outcome_means_ : ndarray of shape (2,)
        AIPW estimates of :math:`E[Y(0)]` and :math:`E[Y(1)]`.
    <<potential_outcome_stderr_ potential_outcome_influence_>>
    <<propensity_ outcome_predictions_ propensity_models_ fold_indices_>>
    diagnostics_ : dict
        As :class:`AIPW`.
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    AIPW : The population average effect (``mass=1``).
    skrobust.ambiguity.CVaR : The ambiguity set computing the worst case.

    Notes
    -----
    With :math:`\\hat\\eta` the ``mass``-quantile of :math:`\\hat\\tau(Z_i)`
    and :math:`q` the worst-case weights of CVaR on :math:`-\\hat\\tau`, the
    debiased estimator replaces :math:`\\hat\\tau(Z_i)` by the pseudo-outcome
    :math:`\\hat\\varphi_i` inside the tail,

    .. math::

        \\hat\\theta_\\alpha = \\frac1n \\sum_i \\psi_i, \\qquad
        \\psi_i = \\hat\\eta + n q_i (\\hat\\varphi_i - \\hat\\eta),

    which is first-order insensitive to errors in :math:`\\hat\\tau` and in
    the nuisances; :math:`\\psi_i - \\hat\\theta_\\alpha` is its influence
    function.

    References
    ----------
    .. [1] Jeong, S. and Namkoong, H. "Assessing External Validity Over
       Worst-case Subpopulations." arXiv:2007.02411.

    Examples
    --------
    >>> from skcausal import WorstCaseTreatmentEffect
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=1000, overlap=0.1, random_state=0)
    >>> est = WorstCaseTreatmentEffect(mass=0.2, subgroup_features=[0],
    ...                                random_state=0).fit(X, y)
    >>> round(est.estimate_, 1)  # truth: E[1 + X_1 | X_1 < -0.6] = 0.2
    0.2
    """

    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._outcome_constraints,
        **_BaseCausalEstimator._propensity_constraints,
        "effect_model": [None, HasMethods(["fit", "predict"])],
        "subgroup_features": [None, "array-like"],
        "mass": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        effect_model=None,
        *,
        subgroup_features=None,
        mass=0.2,
        learner="T",
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.effect_model = effect_model
        self.subgroup_features = subgroup_features
        self.mass = mass
        self.learner = learner
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, treatment=None, sample_weight=None):
        """Cross-fit the nuisances and the effect model; estimate the worst case.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.
        y : array-like of shape (n_samples, 2) or (n_samples,)
            Target made by :func:`make_target`, or the outcome with
            ``treatment``.
        treatment : array-like of shape (n_samples,), default=None
            Binary treatment when ``y`` is the 1-d outcome.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the units, passed to the nuisance and effect
            models that accept them and used in the worst-case distribution
            and every average.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X_in = X
        super().fit(X, y, treatment, sample_weight=sample_weight)
        # the base's ATE influence function is replaced by the worst case's
        # below: it goes before the effect models' fits (peak memory)
        del self.influence_function_
        sw = self._sample_weight
        X = validate_data(self, X, reset=False)
        self._subgroup_columns = _columns(
            X_in, self.subgroup_features, self.n_features_in_
        )
        cols = self._subgroup_columns
        # all the features in order: X itself, not a copy
        every = np.array_equal(cols, np.arange(X.shape[1]))
        Z = X if every else X[:, cols]
        phi = self.pseudo_outcomes_
        # the default model may centre the training rows in place: Z[train]
        # and phi[train] are copies made for it (peak memory: one copy less)
        lean = self.effect_model is None
        model = LinearRegression(copy_X=False) if lean else self.effect_model
        # out-of-fold predictions on the nuisances' folds (the engine's loop)
        tau, self.effect_models_ = cross_predict(
            model,
            Z,
            phi,
            [(None, test) for test in self.fold_indices_],
            sample_weight=sw,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        del Z
        if lean:
            # a later refit by the user copies its input, as LinearRegression()
            for fitted in self.effect_models_:
                fitted.set_params(copy_X=True)
        self.effect_predictions_ = tau
        value, infl, plugin, eta, q = self._worst_case(float(self.mass))
        self.estimate_ = value
        self.influence_function_ = infl
        self.stderr_ = float(_influence_stderr(infl, sw))
        self.plugin_estimate_ = plugin
        self.value_at_risk_ = eta
        self.worst_case_weights_ = q
        return self

    def _estimate(self, y, t, nuisance, sw):
        phi = _aipw_pseudo_outcomes(y, t, nuisance["e"], nuisance["mu"])
        self.pseudo_outcomes_ = phi[:, 1] - phi[:, 0]
        return _mean_and_influence(phi, sw, overwrite=True)

    def _worst_case(self, mass):
        """The debiased lower CVaR at ``mass``: the engine's debiased CVaR step.

        :func:`skrobust._crossfit.debiased_cvar` with ``tail="lower"``: minus
        the CVaR (:class:`skrobust.ambiguity.CVaR`, its worst-case weights and
        dual variable) of the negated predicted effects, with the
        pseudo-outcomes inside the tail. Returns ``(estimate, influence,
        plug-in, value at risk, worst-case weights)``.
        """
        return debiased_cvar(
            self.effect_predictions_,
            self.pseudo_outcomes_,
            mass,
            sample_weight=self._sample_weight,
            tail="lower",
        )

    def conf_int(self, confidence_level=0.95, *, alpha=DEPRECATED):
        """Normal confidence interval of the debiased worst-case effect.

        Parameters
        ----------
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the interval.
        alpha : float in (0, 1), default="deprecated"
            The old name, ``1 - confidence_level``: it keeps working for one
            release with a ``FutureWarning`` (so does a level below 0.5 given
            where ``alpha`` used to be the first argument).

        Returns
        -------
        interval : ConfidenceInterval
            ``low, high = estimate_ -/+ z stderr_`` (it unpacks as a pair).
        """
        check_is_fitted(self)
        level = _resolve_level(
            confidence_level, alpha, "WorstCaseTreatmentEffect.conf_int"
        )
        return self._normal_conf_int(level)

    def worst_case_curve(self, masses, confidence_level=0.95, *, alpha=DEPRECATED):
        """Debiased worst-case effect and its interval over subpopulation masses.

        Each mass is one call of the ambiguity protocol
        (:class:`~skrobust.ambiguity.CVaR`) on the negated predicted effects.

        Parameters
        ----------
        masses : array-like of shape (n_values,)
            Subpopulation masses in (0, 1].
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the intervals.
        alpha : float in (0, 1), default="deprecated"
            The old name, ``1 - confidence_level`` (one release, with a
            ``FutureWarning``).

        Returns
        -------
        curve : pandas.DataFrame
            Columns ``mass``, ``estimate``, ``plugin_estimate``,
            ``std_error``, ``ci_lower``, ``ci_upper``.
        """
        check_is_fitted(self)
        level = _resolve_level(
            confidence_level, alpha, "WorstCaseTreatmentEffect.worst_case_curve"
        )
        masses = np.asarray(masses, dtype=np.float64).reshape(-1)
        if masses.size == 0 or np.any((masses <= 0) | (masses > 1)):
            raise ValueError(f"masses must lie in (0, 1]; got {masses.tolist()}.")
        rows = []
        for mass in masses:
            value, infl, plugin, _, _ = self._worst_case(float(mass))
            se = float(_influence_stderr(infl, self._sample_weight))
            lower, upper = _normal_interval(value, se, 1.0 - level)
            rows.append((float(mass), value, plugin, se, lower, upper))
        return pd.DataFrame(
            rows,
            columns=[
                "mass",
                "estimate",
                "plugin_estimate",
                "std_error",
                "ci_lower",
                "ci_upper",
            ],
        )

    def summary(self, confidence_level=0.95, *, alpha=DEPRECATED):
        """Worst-case effect, ATE and potential-outcome means as a DataFrame.

        Parameters
        ----------
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the intervals.
        alpha : float in (0, 1), default="deprecated"
            The old name, ``1 - confidence_level`` (one release, with a
            ``FutureWarning``).

        Returns
        -------
        table : pandas.DataFrame
            Rows ``"worst-case effect"``, ``"ATE"``, ``"E[Y(1)]"``,
            ``"E[Y(0)]"``; columns as in :meth:`AIPW.summary`.
        """
        check_is_fitted(self)
        level = _resolve_level(
            confidence_level, alpha, "WorstCaseTreatmentEffect.summary"
        )
        table = self._summary_table(level)
        infl = self.potential_outcome_influence_
        ate_if = infl[:, 1] - infl[:, 0]
        ate = float(np.diff(self.potential_outcome_means_)[0])
        se = float(_influence_stderr(ate_if, self._sample_weight))
        lower, upper = _normal_interval(ate, se, 1.0 - level)
        _set_row(table, "ATE", ate, se, lower, upper)
        worst = table.iloc[[0]].copy()
        worst.index = ["worst-case effect"]
        lower, upper = self.conf_int(level)
        _set_row(worst, "worst-case effect", self.estimate_, self.stderr_, lower, upper)
        table = pd.concat([worst, table])
        table["p_value"] = 2 * stats.norm.sf(np.abs(table["z"]))
        return table
