"""Variance-regularized ERM through its convex chi-square surrogate."""

from numbers import Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity import ChiSquare
from skrobust.linear_model._solver import _Max
from skrobust.subpopulation._linear import (
    _CERTIFICATE_ATTRS_DOC,
    _SOLVER_PARAMS_DOC,
    _Head,
    _LinearClassifier,
    _LinearRegressor,
)


class _MaxLoss(_Max):
    """The engine's smoothed maximum, with its exact conic form (epigraph)."""

    def cvxpy_risk(self, loss_expr, p):
        import cvxpy as cp

        t = cp.Variable()
        return t, [loss_expr[np.flatnonzero(p > 0)] <= t]


class _VarianceMixin:
    _parameter_constraints = {"rho": [Interval(Real, 0, None, closed="left")]}

    def _make_objective(self, X, sample_weight):
        # n is the total weight, so an integer weight acts as a repeated row
        self.radius_ = float(self.rho) / float(np.sum(sample_weight))
        self.ambiguity_ = ChiSquare(radius=self.radius_)
        p = sample_weight / sample_weight.sum()
        head = self.ambiguity_
        # From radius (1 / p_min - 1) / 2 on, the closed ball holds the point
        # mass on every sample and the robust risk is the largest loss. The
        # engine reduces to the maximum only strictly inside (at the boundary
        # itself the dual's minimizer sits on the largest loss, a kink where
        # L-BFGS stalls: a 96% gap at n=6e4): the boundary, up to the rounding
        # of rho / n, is solved as the maximum here.
        p_min = float(np.min(p[p > 0]))
        if np.count_nonzero(p) > 1 and self.radius_ >= (1.0 / p_min - 1.0) / 2.0 * (
            1.0 - 1e-12
        ):
            head = _MaxLoss()
        return _Head(head, p)

    def _finish(self, head, losses, extra):
        p = head.p
        mean = float(p @ losses)
        self.train_loss_ = mean
        dev = np.abs(losses - mean)
        top = float(np.max(dev))
        with np.errstate(over="ignore"):  # inf when beyond float64 (losses ~1e300)
            relative = p @ (dev / top) ** 2 if top > 0 else 0.0
            self.loss_variance_ = float(top * top * relative)
        self.robust_risk_ = float(self.ambiguity_.risk(losses, p))
        coef = np.asarray(self.coef_)
        self.objective_ = self.robust_risk_ + 0.5 * float(self.l2_reg) * float(
            np.sum(coef * coef)
        )


_PARAMS = """    rho : float, default=1.0
        Confidence parameter :math:`\\rho \\ge 0`; the chi-square radius is
        :math:`\\rho / n` with :math:`n` the total sample weight (the number
        of samples for unit weights). ``rho`` near the
        :math:`1 - \\delta` quantile of :math:`\\chi^2_1` makes the objective
        an upper confidence bound on the population risk.
    fit_intercept : bool, default=True
        Whether to fit an intercept (never penalized).
    l2_reg : float, default=%(l2)s
        Strength :math:`\\lambda` of the penalty
        :math:`\\tfrac{\\lambda}{2} \\|\\theta\\|_2^2` on the coefficients.
%(solver)s"""

_ATTRS = """    radius_ : float
        The chi-square radius used, :math:`\\rho / n`.
    robust_risk_ : float
        Chi-square robust risk of the training losses at the solution.
    train_loss_ : float
        Average training loss.
    loss_variance_ : float
        Variance of the training losses; when no loss is clipped,
        ``robust_risk_ == train_loss_ + sqrt(2 * radius_ * loss_variance_)``.
    ambiguity_ : ChiSquare
        The chi-square ball of radius ``radius_`` whose worst-case risk is
        minimized.
%(certificate)s
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names."""

_NOTES = """    Namkoong and Duchi minimize the variance-regularized empirical risk
    :math:`E_{P_n}[\\ell] + \\sqrt{2 \\rho \\operatorname{Var}_{P_n}(\\ell) / n}`,
    which trades bias for variance like a confidence bound but is not
    convex in :math:`\\theta`. Its convex surrogate is the chi-square robust
    risk

    .. math::

        R_n(\\theta) = \\sup_{Q : D_{\\chi^2}(Q \\| P_n) \\le \\rho / n}
        E_Q[\\ell(\\theta; X, Y)], \\qquad
        D_{\\chi^2}(Q \\| P) = \\tfrac12 E_P[(dQ/dP - 1)^2],

    which is exactly the variance-regularized risk whenever the worst-case
    weights :math:`q_i \\propto p_i (\\ell_i - \\eta^\\star)_+` clip no loss
    (all losses above :math:`\\eta^\\star`; this holds with high probability
    when the losses have enough variance relative to :math:`\\rho/n`), and
    is never below it otherwise. So this estimator is chi-square DRO
    (:class:`skrobust.ambiguity.ChiSquare`) with radius :math:`\\rho / n`;
    the dual :math:`\\inf_\\eta \\sqrt{1 + 2\\rho/n}\\,
    E[(\\ell - \\eta)_+^2]^{1/2} + \\eta` is minimized jointly over the
    coefficients and :math:`\\eta` by L-BFGS, and the solution is certified
    by a duality gap (``solver_info_``). From :math:`\\rho / n \\ge (1 /
    p_{\\min} - 1) / 2` on (:math:`(n - 1) / 2` for unit weights) the ball
    holds every point mass and the robust risk is the largest loss: the fit
    is then the minimax (largest-loss) fit, solved as such."""

_REFS = """    .. [1] Namkoong, H. and Duchi, J. C. (2017). "Variance-based
       regularization with convex objectives." NeurIPS.
    .. [2] Duchi, J. C., Glynn, P. W. and Namkoong, H. (2021). "Statistics of
       robust optimization: a generalized empirical likelihood approach."
       Mathematics of Operations Research 46(3)."""


class VarianceRegularizedLogisticRegression(_VarianceMixin, _LinearClassifier):
    """Logistic regression with convex variance regularization.

    Minimizes the chi-square robust log-loss at radius :math:`\\rho / n`, the
    convex surrogate of
    :math:`E_{P_n}[\\ell] + \\sqrt{2 \\rho \\operatorname{Var}_{P_n}(\\ell) / n}`
    (equal to it when no loss is clipped), plus an optional ridge penalty.
    Two classes use the logistic loss, more the multinomial cross-entropy.

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
    VarianceRegularizedLinearRegression : The least-squares counterpart.
    skrobust.ambiguity.ChiSquare : The ambiguity set behind the objective.

    Notes
    -----
    %(notes)s

    References
    ----------
    %(refs)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.subpopulation import VarianceRegularizedLogisticRegression
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = VarianceRegularizedLogisticRegression(rho=5.0).fit(X, y)
    >>> bool(clf.robust_risk_ > clf.train_loss_)
    True
    """

    _parameter_constraints = {
        **_LinearClassifier._parameter_constraints,
        **_VarianceMixin._parameter_constraints,
    }

    def __init__(
        self, rho=1.0, *, fit_intercept=True, l2_reg=1e-4, max_iter=500, tol=1e-6
    ):
        self.rho = rho
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients on the variance-regularized log-loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining :math:`P_n`; their total is :math:`n`.

        Returns
        -------
        self : VarianceRegularizedLogisticRegression
            The fitted estimator.
        """
        return self._fit_classifier(X, y, sample_weight, {})


class VarianceRegularizedLinearRegression(_VarianceMixin, _LinearRegressor):
    """Least squares with convex variance regularization.

    Minimizes the chi-square robust squared error at radius :math:`\\rho / n`,
    the convex surrogate of
    :math:`E_{P_n}[\\ell] + \\sqrt{2 \\rho \\operatorname{Var}_{P_n}(\\ell) / n}`
    with :math:`\\ell = (Y - \\theta^\\top X)^2` (equal to it when no loss is
    clipped), plus an optional ridge penalty.

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
    VarianceRegularizedLogisticRegression : The classification counterpart.
    skrobust.ambiguity.ChiSquare : The ambiguity set behind the objective.

    Notes
    -----
    %(notes)s

    References
    ----------
    %(refs)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_regression
    >>> from skrobust.subpopulation import VarianceRegularizedLinearRegression
    >>> X, y = make_regression(n_samples=100, n_features=3, noise=1.0,
    ...                        random_state=0)
    >>> reg = VarianceRegularizedLinearRegression(rho=2.0).fit(X, y)
    >>> bool(reg.robust_risk_ >= reg.train_loss_)
    True
    """

    _parameter_constraints = {
        **_LinearRegressor._parameter_constraints,
        **_VarianceMixin._parameter_constraints,
    }

    def __init__(
        self, rho=1.0, *, fit_intercept=True, l2_reg=0.0, max_iter=500, tol=1e-6
    ):
        self.rho = rho
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients on the variance-regularized squared error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining :math:`P_n`; their total is :math:`n`.

        Returns
        -------
        self : VarianceRegularizedLinearRegression
            The fitted estimator.
        """
        return self._fit_regressor(X, y, sample_weight, {})


for _cls, _l2 in [
    (VarianceRegularizedLogisticRegression, "1e-4"),
    (VarianceRegularizedLinearRegression, "0.0"),
]:
    _cls.__doc__ = _cls.__doc__ % {
        "params": (_PARAMS % {"l2": _l2, "solver": _SOLVER_PARAMS_DOC}).strip(),
        "attrs": (
            _ATTRS
            % {
                "certificate": _CERTIFICATE_ATTRS_DOC
                % {"objective": "``robust_risk_``"}
            }
        ).strip(),
        "notes": (_NOTES).strip(),
        "refs": (_REFS).strip(),
    }
