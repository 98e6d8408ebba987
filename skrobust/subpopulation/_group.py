"""Group DRO: minimize the worst average loss over known groups."""

from numbers import Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity import ChiSquare
from skrobust.subpopulation._linear import (
    _CERTIFICATE_ATTRS_DOC,
    _SOLVER_PARAMS_DOC,
    _Head,
    _LinearClassifier,
    _LinearRegressor,
)


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


class _GroupMax:
    """The worst group risk ``max_g R_g`` as a risk head of the engine.

    ``R_g`` is group ``g``'s average loss under the nominal weights ``p`` (the
    group adjustment is a constant added to the losses of the group, see
    ``_Shifted``). Its worst-case distributions over the samples are ``q_i = pi_g p_i /
    P_g`` (``P_g`` the group's mass) for ``pi`` on the simplex of groups: the
    ambiguity set is the convex hull of the group distributions. The maximum
    is smoothed by a log-sum-exp of temperature ``tau`` over the groups,
    within ``tau log G`` of it; the engine shrinks ``tau`` until the duality
    gap certifies the solution.
    """

    n_dual = 0
    needs_smoothing = True

    def __init__(self, codes, n_groups, p):
        self.codes = codes
        self.n_groups = n_groups
        mass = np.bincount(codes, weights=p, minlength=n_groups)
        self.within = p / mass[codes]

    def is_trivial(self):
        return False

    def smoothing_error(self, tau, p=None):
        return float(tau) * np.log(self.n_groups)

    def group_values(self, losses):
        """``R_g`` for every group."""
        return np.bincount(
            self.codes, weights=self.within * losses, minlength=self.n_groups
        )

    def _spread(self, pi):
        """Sample weights ``pi_g p_i / P_g`` of group weights ``pi``."""
        return pi[self.codes] * self.within

    def risk(self, losses, p=None):
        return float(np.max(self.group_values(losses)))

    def risk_and_weights(self, losses, p=None):
        values = self.group_values(losses)
        top = float(np.max(values))
        pi = (values >= top).astype(float)
        return top, self._spread(pi / pi.sum())

    def _smoothed(self, losses, tau):
        scaled = self.group_values(losses) / tau
        top = float(np.max(scaled))
        e = np.exp(scaled - top)
        total = float(e.sum())
        return tau * (top + np.log(total)), self._spread(e / total)

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        return np.empty(0)

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        if smoothing > 0:
            value, q = self._smoothed(losses, smoothing)
        else:
            value, q = self.risk_and_weights(losses)
        return value, q, np.empty(0)

    def _profiled(self, losses, p, smoothing, start=None):
        value, q = self._smoothed(losses, smoothing)
        return np.empty(0), value, q

    def feasible_weights(self, q, p):
        # the group weights of q, spread back within the groups
        pi = np.bincount(
            self.codes, weights=np.maximum(q, 0.0), minlength=self.n_groups
        )
        return self._spread(pi / pi.sum())

    def cvxpy_risk(self, loss_expr, p):
        import cvxpy as cp
        import scipy.sparse as sp

        n = self.codes.shape[0]
        average = sp.csr_matrix(
            (self.within, (self.codes, np.arange(n))), shape=(self.n_groups, n)
        )
        t = cp.Variable()
        return t, [average @ loss_expr <= t]


class _GroupDROMixin:
    _parameter_constraints = {
        "group_adjustment": [Interval(Real, 0, None, closed="left")],
    }

    def _make_objective(self, X, sample_weight, groups=None):
        codes, labels = _encode_groups(groups, X.shape[0])
        self.groups_ = labels
        n_groups = labels.shape[0]
        totals = np.bincount(codes, weights=sample_weight, minlength=n_groups)
        if np.any(totals <= 0):
            empty = labels[totals <= 0].tolist()
            raise ValueError(
                f"groups {empty} have zero total sample_weight; every group "
                "needs a positive weight."
            )
        p = sample_weight / sample_weight.sum()
        group_offsets = float(self.group_adjustment) / np.sqrt(totals)
        group_head = _GroupMax(codes, n_groups, p)
        offsets = None
        if self.group_adjustment > 0:
            offsets = group_offsets[codes]

        head = _Head(ChiSquare(radius=0.0) if n_groups == 1 else group_head, p, offsets)
        head.group_head, head.group_offsets = group_head, group_offsets
        return head

    def _finish(self, head, losses, extra):
        self.group_risks_ = head.group_head.group_values(losses)
        self.worst_group_risk_ = float(np.max(self.group_risks_))
        values = self.group_risks_ + head.group_offsets
        pi = (values >= values.max()).astype(float)
        self.group_weights_ = pi / pi.sum()
        coef = np.asarray(self.coef_)
        self.objective_ = float(values.max()) + 0.5 * float(self.l2_reg) * float(
            np.sum(coef * coef)
        )


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
%(solver)s"""

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
%(certificate)s
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names."""

_NOTES = """    The worst-group risk is an ambiguity set over groups: with the group
    risks :math:`L_1, \\dots, L_G`, :math:`\\max_g L_g` is the worst case
    over the convex hull of the group distributions (sample weights
    :math:`\\pi_g p_i / P_g`, :math:`\\pi` on the simplex of groups). It
    is minimized by L-BFGS on a log-sum-exp smoothing of the maximum, the
    temperature shrunk under continuation until a Fenchel duality gap
    certifies the solution (``solver_info_``); the reported
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
        "params": (_COMMON_PARAMS % {"l2": _l2, "solver": _SOLVER_PARAMS_DOC}).strip(),
        "attrs": (
            _COMMON_ATTRS
            % {
                "certificate": _CERTIFICATE_ATTRS_DOC
                % {"objective": "the worst adjusted group risk"}
            }
        ).strip(),
        "notes": (_NOTES).strip(),
    }
