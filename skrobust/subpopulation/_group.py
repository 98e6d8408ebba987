"""Group DRO: minimize the worst average loss over known groups."""

from numbers import Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity import CVaR
from skrobust.subpopulation._linear import (
    _LinearClassifier,
    _LinearRegressor,
    _RobustObjective,
)

# the smoothed worst-group risk overestimates the exact one by at most this
# fraction of the loss scale when the continuation ends
_SMOOTHING_TOL = 1e-7


def _encode_groups(groups, n_samples):
    """Integer codes and labels of the groups (one group when None)."""
    if groups is None:
        return np.zeros(n_samples, dtype=np.intp), np.array([0])
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups must be 1-dimensional with one label per sample; got shape "
            f"{groups.shape} for {n_samples} samples."
        )
    if groups.dtype.kind in "fc" and not np.all(np.isfinite(groups)):
        raise ValueError(
            "groups contains NaN or infinite labels; every sample needs a "
            "finite group label."
        )
    if groups.dtype.kind == "O":
        missing = np.array([g is None or (g != g) for g in groups.tolist()])
        if missing.any():
            raise ValueError(
                "groups contains missing labels (None or NaN) at positions "
                f"{np.flatnonzero(missing)[:5].tolist()}; every sample needs a "
                "group label."
            )
    labels, codes = np.unique(groups, return_inverse=True)
    return codes.astype(np.intp), labels


class _GroupObjective(_RobustObjective):
    """The worst group risk as CVaR at level 1/G over the G group risks.

    With the G group risks weighted uniformly, ``CVaR(alpha=1/G)`` is the
    maximum: its worst case is any distribution on the simplex of groups
    (weights capped at ``(1/G) / alpha = 1``). Its dual is smoothed by a
    softplus of temperature ``tau`` that shrinks geometrically (continuation)
    until the overestimate ``tau * G * log 2`` is negligible.
    """

    n_extra = 1

    def __init__(self, codes, n_groups, sample_weight, adjustment):
        self.codes = codes
        self.n_groups = n_groups
        totals = np.bincount(codes, weights=sample_weight, minlength=n_groups)
        if np.any(totals <= 0):
            empty = np.flatnonzero(totals <= 0).tolist()
            raise ValueError(
                f"groups {empty} have zero total sample_weight; every group "
                "needs a positive weight."
            )
        self.totals = totals
        self.within = sample_weight / totals[codes]
        self.offset = adjustment / np.sqrt(totals)
        self.cvar = CVaR(alpha=1.0 / n_groups)
        self.p_groups = np.full(n_groups, 1.0 / n_groups)
        self.tau = 0.0
        self.stages = (None,)

    def group_risks(self, losses):
        return np.bincount(
            self.codes, weights=self.within * losses, minlength=self.n_groups
        )

    def extra_init(self, losses):
        risks = self.group_risks(losses) + self.offset
        scale = max(float(np.max(np.abs(risks))), 1e-12)
        if self.n_groups > 1:
            # temperatures scale * 10^-1 ... down to the tolerance
            n_stages = int(np.ceil(np.log10(0.1 / _SMOOTHING_TOL))) + 1
            self.stages = tuple(scale * 0.1 ** (k + 1) for k in range(n_stages))
        return np.array([float(np.max(risks))])

    def set_stage(self, stage):
        self.tau = (
            0.0 if stage is None else float(stage) / (self.n_groups * np.log(2.0))
        )

    def __call__(self, losses, extra):
        risks = self.group_risks(losses) + self.offset
        if self.n_groups == 1:
            return float(risks[0]), self.within, np.zeros(1)
        value, grad_risks, grad_eta = self.cvar.dual_objective(
            extra, risks, self.p_groups, smoothing=self.tau
        )
        return value, grad_risks[self.codes] * self.within, grad_eta


class _GroupDROMixin:
    _parameter_constraints = {
        "group_adjustment": [Interval(Real, 0, None, closed="left")],
    }

    def _make_objective(self, X, sample_weight, groups=None):
        codes, labels = _encode_groups(groups, X.shape[0])
        self.groups_ = labels
        return _GroupObjective(
            codes, labels.shape[0], sample_weight, float(self.group_adjustment)
        )

    def _finish(self, objective, losses, extra):
        self.group_risks_ = objective.group_risks(losses)
        self.worst_group_risk_ = float(np.max(self.group_risks_))
        _, q = objective.cvar.risk_and_weights(
            self.group_risks_ + objective.offset, objective.p_groups
        )
        self.group_weights_ = q


_COMMON_PARAMS = """    group_adjustment : float, default=0.0
        Constant :math:`C \\ge 0` of Sagawa et al.'s group adjustment: group
        :math:`g` is charged :math:`C / \\sqrt{n_g}` extra (:math:`n_g` its
        total sample weight), which favours fitting small groups less
        aggressively, where their empirical risk is least reliable.
    fit_intercept : bool, default=True
        Whether to fit an intercept (never penalized).
    l2_reg : float, default=%(l2)s
        Strength :math:`\\lambda` of the penalty
        :math:`\\tfrac{\\lambda}{2} \\|\\theta\\|_2^2` on the coefficients.
    max_iter : int, default=500
        Maximum number of L-BFGS-B iterations per smoothing stage.
    tol : float, default=1e-6
        Tolerance on the projected gradient of L-BFGS-B."""

_COMMON_ATTRS = """    groups_ : ndarray of shape (n_groups,)
        Group labels seen in ``fit`` (a single group 0 when ``groups=None``).
    group_risks_ : ndarray of shape (n_groups,)
        Average training loss in each group.
    worst_group_risk_ : float
        Largest entry of ``group_risks_``: the minimized objective (without
        the penalty and the adjustment).
    group_weights_ : ndarray of shape (n_groups,)
        A worst-case distribution over the groups at the solution (all mass
        on the worst group, shared among ties).
    n_iter_ : int
        Total number of L-BFGS-B iterations.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names."""

_NOTES = """    The worst-group risk is an ambiguity set over groups: with the group
    risks :math:`L_1, \\dots, L_G` weighted uniformly,
    :math:`\\max_g L_g = \\mathrm{CVaR}_{1/G}(L)`, computed by
    :class:`skrobust.ambiguity.CVaR` (its worst case ranges over the whole
    simplex of groups). It is minimized jointly over the coefficients and
    CVaR's dual variable :math:`\\eta` by L-BFGS-B on the softplus-smoothed
    dual, with the temperature shrunk by factors of ten until the smoothing
    error is below :math:`10^{-7}` times the loss scale; the reported
    ``worst_group_risk_`` is exact. Compared with chi-square DRO
    (:class:`VarianceRegularizedLogisticRegression`), which protects every
    subpopulation of the training data without knowing it, group DRO protects
    only the named groups, and exactly.

    Sagawa et al. train deep networks by stochastic mirror ascent on the
    group weights; for a linear model the full-batch minimax problem is
    convex and solved here to optimality."""


class GroupDROLogisticRegression(_GroupDROMixin, _LinearClassifier):
    """Logistic regression minimizing the worst average loss over known groups.

    Solves Sagawa et al.'s group DRO problem

    .. math::

        \\min_\\theta \\max_{g = 1, \\dots, G} \\;
        E_{P_n}\\big[\\ell(\\theta; X, Y) \\mid \\text{group } g\\big]
        + \\frac{C}{\\sqrt{n_g}} + \\frac{\\lambda}{2} \\|\\theta\\|_2^2

    with the logistic loss (two classes) or the multinomial cross-entropy
    (more classes). The group of each sample is the ``groups`` fit parameter.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
    %(params)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    %(attrs)s

    See Also
    --------
    GroupDROLinearRegression : The least-squares counterpart.
    MarginalDROLogisticRegression : Worst case over subpopulations defined by
        covariates, when group labels are unknown.

    Notes
    -----
    %(notes)s

    References
    ----------
    .. [1] Sagawa, S., Koh, P. W., Hashimoto, T. B. and Liang, P. (2020).
       "Distributionally robust neural networks for group shifts: on the
       importance of regularization for worst-case generalization." ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.subpopulation import GroupDROLogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> groups = (rng.uniform(size=200) < 0.2).astype(int)
    >>> y = np.where(groups == 1, X[:, 1] > 0, X[:, 0] > 0).astype(int)
    >>> clf = GroupDROLogisticRegression().fit(X, y, groups=groups)
    >>> clf.group_risks_.shape
    (2,)
    >>> bool(np.isclose(clf.worst_group_risk_, clf.group_risks_.max()))
    True
    """

    _parameter_constraints = {
        **_LinearClassifier._parameter_constraints,
        **_GroupDROMixin._parameter_constraints,
    }

    def __init__(
        self,
        *,
        group_adjustment=0.0,
        fit_intercept=True,
        l2_reg=1e-4,
        max_iter=500,
        tol=1e-6,
    ):
        self.group_adjustment = group_adjustment
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the coefficients minimizing the worst group's average loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,), default=None
            Group label of each sample (any values). ``None`` puts every
            sample in one group, which gives penalized logistic regression.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights; each group's risk is its weighted average loss.

        Returns
        -------
        self : GroupDROLogisticRegression
            The fitted estimator.
        """
        return self._fit_classifier(X, y, sample_weight, {"groups": groups})


class GroupDROLinearRegression(_GroupDROMixin, _LinearRegressor):
    """Least squares minimizing the worst mean squared error over known groups.

    Solves Sagawa et al.'s group DRO problem

    .. math::

        \\min_\\theta \\max_{g = 1, \\dots, G} \\;
        E_{P_n}\\big[(Y - \\theta^\\top X)^2 \\mid \\text{group } g\\big]
        + \\frac{C}{\\sqrt{n_g}} + \\frac{\\lambda}{2} \\|\\theta\\|_2^2 .

    The group of each sample is the ``groups`` fit parameter.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
    %(params)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept.
    %(attrs)s

    See Also
    --------
    GroupDROLogisticRegression : The classification counterpart.
    MarginalDROLinearRegression : Worst case over subpopulations defined by
        covariates, when group labels are unknown.

    Notes
    -----
    %(notes)s

    References
    ----------
    .. [1] Sagawa, S., Koh, P. W., Hashimoto, T. B. and Liang, P. (2020).
       "Distributionally robust neural networks for group shifts: on the
       importance of regularization for worst-case generalization." ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.subpopulation import GroupDROLinearRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0.0, 1.0, 2.0, 6.0])
    >>> groups = np.array([0, 0, 0, 1])
    >>> reg = GroupDROLinearRegression().fit(X, y, groups=groups)
    >>> # the minimax line balances the two groups mean squared errors
    >>> np.round(reg.group_risks_, 3)
    array([0.677, 0.677])
    """

    _parameter_constraints = {
        **_LinearRegressor._parameter_constraints,
        **_GroupDROMixin._parameter_constraints,
    }

    def __init__(
        self,
        *,
        group_adjustment=0.0,
        fit_intercept=True,
        l2_reg=0.0,
        max_iter=500,
        tol=1e-6,
    ):
        self.group_adjustment = group_adjustment
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the coefficients minimizing the worst group's mean squared error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        groups : array-like of shape (n_samples,), default=None
            Group label of each sample (any values). ``None`` puts every
            sample in one group, which gives (ridge) least squares.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights; each group's risk is its weighted average loss.

        Returns
        -------
        self : GroupDROLinearRegression
            The fitted estimator.
        """
        return self._fit_regressor(X, y, sample_weight, {"groups": groups})


for _cls, _l2 in [
    (GroupDROLogisticRegression, "1e-4"),
    (GroupDROLinearRegression, "0.0"),
]:
    _cls.__doc__ = _cls.__doc__ % {
        "params": (_COMMON_PARAMS % {"l2": _l2}).strip(),
        "attrs": (_COMMON_ATTRS).strip(),
        "notes": (_NOTES).strip(),
    }
