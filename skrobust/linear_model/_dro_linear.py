"""Distributionally robust logistic and linear regression."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from skrobust.ambiguity import (
    ChiSquare,
    Wasserstein,
    ambiguity_constraint,
    check_ambiguity,
)
from skrobust.linear_model._classifier import _encode_classes, _LogisticProbaMixin
from skrobust.linear_model._losses import (
    _Absolute,
    _Huber,
    _Squared,
)
from skrobust.linear_model._solver import (
    _cvxpy_certificate,
    _objective_scale,
    _Problem,
    solve_certified,
    solve_cvxpy,
)
from skrobust.utils import check_nonnegative_sample_weight, resolve_loss_name

#: scikit-learn's names of the regression losses (the old short names
#: "squared" and "absolute" work for one release, with a FutureWarning)
_REGRESSION_LOSSES = frozenset({"squared_error", "absolute_error", "huber"})


# features whose largest absolute entry is outside this band are rescaled
# by it before solving (see _feature_scale; used by every linear DRO estimator)
_FEATURE_SCALE_BAND = (1e-4, 1e4)


def _feature_scale(X):
    """A common scale of the features: 1, or their largest absolute entry.

    ``X / c`` with ``coef = coef' / c`` and the penalty ``l2 / c^2`` is the
    same problem. Features at 1e-150 or 1e150 make the coefficients 1e150 or
    1e-150, where L-BFGS and the rank decisions of the certificate (relative
    to the intercept's column of ones) break down: outside
    ``_FEATURE_SCALE_BAND`` the solver sees ``X / c`` instead (one copy).
    """
    if X.size == 0:
        return 1.0
    top = max(float(np.max(X)), -float(np.min(X)))
    low, high = _FEATURE_SCALE_BAND
    if not np.isfinite(top) or top <= 0.0 or low <= top <= high:
        return 1.0
    return top


def _objective_units(loss, scale):
    """Factor from the standardized problem's objective to the original's."""
    if isinstance(loss, _Absolute):
        return scale
    if isinstance(loss, (_Squared, _Huber)):
        return scale * scale
    return 1.0


class _BaseDROLinear(BaseEstimator):
    """Shared parameters and fitting of the DRO linear models."""

    _parameter_constraints = {
        "ambiguity": ambiguity_constraint(feature_space=True),
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"lbfgs", "cvxpy"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def _fit_problem(self, X, target, sample_weight, loss, scaled=None):
        """Solve, certify and set the fitted attributes; returns (W, b).

        ``scaled``, when given, is ``(loss, target, alpha, center, scale)``
        of the same problem with the targets standardized (see
        ``DROLinearRegression._standardized``): it is solved instead and its
        solution mapped back, ``W = scale * W'`` and ``b = scale * b' +
        center``. The attributes are computed on the original problem.
        """
        ambiguity = check_ambiguity(self.ambiguity)
        coef_penalty = None
        if isinstance(ambiguity, Wasserstein):
            if loss.lipschitz is None:
                raise ValueError(
                    "ambiguity=Wasserstein(...) needs a loss that is Lipschitz in "
                    "the linear prediction (binary logistic, 'absolute_error' or "
                    "'huber'); "
                    f"the worst case of the {type(loss).__name__.strip('_').lower()} "
                    "loss over a Wasserstein ball is infinite or not implemented."
                )
            coef_penalty, ambiguity = ambiguity, ChiSquare(radius=0.0)
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        p = sample_weight / sample_weight.sum()
        problem = _Problem(
            X,
            target,
            p,
            loss,
            ambiguity,
            self.alpha,
            self.fit_intercept,
            coef_penalty=coef_penalty,
        )
        solved, center, scale = problem, 0.0, 1.0
        s_loss, s_target, s_alpha = loss, target, self.alpha
        if scaled is not None:
            s_loss, s_target, s_alpha, center, scale = scaled
        # X with entries far from unit size is solved as X / x_scale (W' =
        # x_scale * W, so the penalty's alpha and a Wasserstein radius divide
        # by x_scale^2 and x_scale): the solver's absolute tolerances and
        # curvature floors are meant for unit-size features, and at 1e-150 or
        # 1e150 they certified wrong fits.
        x_scale = _feature_scale(X)
        if scaled is not None or x_scale != 1.0:
            # (a Wasserstein penalty r * L * ||W|| rescales with the loss's
            # Lipschitz constant L, epsilon / scale for Huber's loss)
            s_penalty = coef_penalty
            if coef_penalty is not None and x_scale != 1.0:
                s_penalty = clone(coef_penalty).set_params(
                    radius=float(coef_penalty.radius) / x_scale
                )
            solved = _Problem(
                X / x_scale if x_scale != 1.0 else X,
                s_target,
                p,
                s_loss,
                ambiguity,
                s_alpha / x_scale**2,
                self.fit_intercept,
                coef_penalty=s_penalty,
            )
        if self.solver == "cvxpy":
            W, b, n_iter, status, duals = solve_cvxpy(solved, weights=True)
            if status != "optimal":
                warnings.warn(
                    "cvxpy reported an inaccurate solution.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
            # proven by the engine's bound at Clarabel's dual point
            info = dict(
                _cvxpy_certificate(
                    solved,
                    W,
                    b,
                    status,
                    self.tol,
                    _objective_scale(solved),
                    weights=duals,
                ),
                method="cvxpy",
            )
        else:
            W, b, n_iter, info = solve_certified(
                solved,
                self.tol,
                self.max_iter,
                owner=type(self).__name__,
                units=_objective_units(loss, scale),
            )
        W = W * (scale / x_scale)
        if b is not None:
            b = b * scale + center
        info["solver_status"] = status if self.solver == "cvxpy" else None
        # back to the units of the original objective (the KKT residual, a
        # gradient, stays in those of the standardized problem)
        units = _objective_units(loss, scale)
        for key in ("objective", "lower_bound", "duality_gap", "threshold", "scale"):
            info[key] = float(info[key]) * units
        self.solver_info_ = info
        self.optimality_gap_ = info["duality_gap"]
        self.n_iter_ = int(n_iter)
        self.ambiguity_ = coef_penalty if coef_penalty is not None else ambiguity
        reuse = info.pop("_risk_weights", None)
        if reuse is not None and scaled is None:
            # the certificate's exact solve at this very solution
            self.robust_risk_, self.worst_case_weights_ = reuse
        else:
            self.robust_risk_, self.worst_case_weights_ = ambiguity.risk_and_weights(
                problem.losses(W, b), p
            )
        if coef_penalty is not None:
            self.robust_risk_ += coef_penalty.penalty(W, loss.lipschitz)[0]
        self.objective_ = self.robust_risk_ + 0.5 * self.alpha * float(np.sum(W * W))
        return W, (b if b is not None else np.zeros(W.shape[1]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_COMMON_PARAMS_DOC = """
    ambiguity : AmbiguitySet, Wasserstein or {"chi2", "kl", "cvar", "erm"}, \
            default="chi2"
        The ambiguity set whose worst-case expected loss is minimized, for
        example ``ChiSquare(radius=0.5)``, ``KL(radius=0.1)`` or
        ``CVaR(alpha=0.2)`` from :mod:`skrobust.ambiguity`. Shortcut strings
        use each set's default size (``"erm"`` is the plain average). Its
        parameters are searchable as ``ambiguity__radius``.
        ``Wasserstein(radius, norm)`` (transport of the features, labels
        fixed) is exact for Lipschitz losses (binary logistic, absolute,
        Huber): the robust risk is the mean loss plus ``radius * L *
        ||coef||_*``; its worst case moves samples, so ``worst_case_weights_``
        are then the nominal weights.
    alpha : float, default={alpha}
        Strength of the L2 penalty ``alpha / 2 * ||coef||^2``; the intercept is
        not penalized. ``alpha=0`` works whenever the optimum exists.
    fit_intercept : bool, default=True
        Whether to fit an (unpenalized) intercept.
    solver : {"lbfgs", "cvxpy"}, default="lbfgs"
        ``"lbfgs"``: L-BFGS jointly over the coefficients and the ambiguity
        set's dual variables (fast, O(n d) memory); kinks (CVaR, total
        variation, absolute loss) are smoothed with a temperature shrunk
        tenfold per stage until the duality gap certifies the solution (see
        ``solver_info_``). If the gap still exceeds ``tol`` and the problem is
        small (``n_samples * n_parameters <= 2e5``), it is solved again
        exactly by an interior-point method (Clarabel, through cvxpy); a
        ConvergenceWarning naming the gap is raised only if that also fails.
        ``"cvxpy"``: the interior-point solve only, for small data.
    tol : float, default=1e-6
        Relative duality gap accepted: the solution is certified when
        ``objective_ - lower bound <= tol * max(|objective_|, 1e-3 * mean
        loss at zero coefficients)`` (for regression with an intercept, the
        intercept at the weighted mean of ``y``; the floor matters for nearly
        perfect fits). Also the L-BFGS gradient tolerance.
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations per stage.
"""

_COMMON_ATTRS_DOC = """
    n_iter_ : int
        Number of solver iterations (summed over warm start and stages).
    robust_risk_ : float
        Worst-case training risk ``ambiguity.risk(losses)`` at the solution,
        computed exactly (without the penalty).
    objective_ : float
        ``robust_risk_ + alpha / 2 * ||coef||^2``.
    worst_case_weights_ : ndarray of shape (n_samples,)
        The worst-case distribution over the training samples at the solution.
    ambiguity_ : AmbiguitySet
        The validated ambiguity set used (a copy; the parameter is untouched).
    optimality_gap_ : float
        Certified bound on ``objective_`` minus the optimal objective: the
        duality gap of the solution (``nan`` when no dual bound could be
        formed, for example with a Wasserstein penalty; then the KKT residual
        in ``solver_info_`` is the certificate).
    solver_info_ : dict
        The certificate: ``objective`` (exact, unsmoothed), ``lower_bound``
        (a Fenchel dual value, or the interior-point solver's dual value:
        the optimum is at least this), ``duality_gap``, ``kkt_residual``
        (largest entry of the gradient, with the worst-case weights as the
        gradient of the risk; a subgradient at kinks), ``threshold`` (``tol``
        times the objective's scale), ``certified`` (gap below threshold, or
        for a smooth objective a KKT residual below ``100 * tol``),
        ``method`` (``"lbfgs"``, ``"lbfgs+cvxpy"`` when the exact fallback
        ran, or ``"cvxpy"``) and ``solver_status`` (cvxpy's status for
        ``solver="cvxpy"``). Regression targets are standardized before
        solving; these numbers are in the units of the original objective.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
"""


class DROLogisticRegression(_LogisticProbaMixin, LinearClassifierMixin, _BaseDROLinear):
    __doc__ = (
        """Distributionally robust logistic regression.

    Minimizes the worst-case expected cross-entropy over an ambiguity set
    around the (weighted) training distribution,

    .. math::

        \\min_{W, b} \\; \\sup_{Q \\in \\mathcal{U}(P_n)}
        E_Q[\\ell(W^\\top x + b, y)] + \\frac{\\alpha}{2} \\|W\\|_F^2,

    with the binary logistic loss for two classes and the multinomial
    (softmax) loss otherwise. With an ambiguity set of size zero this is
    scikit-learn's ``LogisticRegression(C=1 / (n_samples * alpha))``.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------"""
        + _COMMON_PARAMS_DOC.replace("{alpha}", "1e-4")
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients (one row for binary problems, as in scikit-learn).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts."""
        + _COMMON_ATTRS_DOC
        + """
    See Also
    --------
    DROLinearRegression : The regression counterpart.
    skrobust.ambiguity.ChiSquare : The default ambiguity set.

    Notes
    -----
    The robust risk is replaced by its one-dimensional dual (for example
    :math:`\\inf_\\eta \\sqrt{1+2\\rho}\\, E[(\\ell-\\eta)_+^2]^{1/2} + \\eta` for
    the chi-square ball), which is jointly convex in the coefficients and
    :math:`\\eta`, so one smooth convex problem is solved.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).
    .. [2] Namkoong, H. and Duchi, J. C. (2016). "Stochastic gradient methods
       for distributionally robust optimization with f-divergences." NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrobust.ambiguity import ChiSquare
    >>> from skrobust.linear_model import DROLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = DROLogisticRegression(ChiSquare(radius=0.5), alpha=1e-2).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> bool(clf.robust_risk_ > clf.worst_case_weights_.size ** -1 * 0)
    True
    """
    )

    def __init__(
        self,
        ambiguity="chi2",
        *,
        alpha=1e-4,
        fit_intercept=True,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
    ):
        self.ambiguity = ambiguity
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by minimizing the robust risk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (any values; at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution; an integer weight
            is equivalent to repeating the sample.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        loss, target = _encode_classes(self, y)
        W, b = self._fit_problem(X, target, sample_weight, loss)
        self.coef_ = np.ascontiguousarray(W.T)
        self.intercept_ = b
        return self


class DROLinearRegression(RegressorMixin, _BaseDROLinear):
    __doc__ = (
        """Distributionally robust linear regression.

    Minimizes the worst-case expected loss over an ambiguity set around the
    (weighted) training distribution,

    .. math::

        \\min_{w, b} \\; \\sup_{Q \\in \\mathcal{U}(P_n)}
        E_Q[\\ell(w^\\top x + b - y)] + \\frac{\\alpha}{2} \\|w\\|_2^2,

    with :math:`\\ell(r) = r^2/2` (``"squared_error"``), :math:`|r|`
    (``"absolute_error"``) or the Huber loss :math:`r^2/2` for :math:`|r| \\le
    \\epsilon`, :math:`\\epsilon |r| - \\epsilon^2/2` otherwise (``"huber"``).
    With an ambiguity set of size zero, the squared loss gives scikit-learn's
    ``Ridge(alpha=n_samples * alpha)`` (``LinearRegression`` for ``alpha=0``).

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------"""
        + _COMMON_PARAMS_DOC.replace("{alpha}", "0.0")
        + """    loss : {"squared_error", "absolute_error", "huber"}, \
            default="squared_error"
        Per-sample loss of the residual (scikit-learn's names). The old
        names ``"squared"`` and ``"absolute"`` still work for one release,
        with a FutureWarning.
    epsilon : float, default=1.0
        Threshold of the Huber loss, in the units of ``y``. scikit-learn's
        ``HuberRegressor(epsilon=e)`` with fitted ``scale_ = s`` corresponds
        to ``epsilon = e * s`` and ``alpha = alpha_sklearn * s / n_samples``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept."""
        + _COMMON_ATTRS_DOC
        + """
    See Also
    --------
    DROLogisticRegression : The classification counterpart.

    Notes
    -----
    For the chi-square ball and the squared loss, when no sample's loss is
    clipped at the optimum the robust risk equals
    :math:`E_n[\\ell] + \\sqrt{2 \\rho \\operatorname{Var}_n(\\ell)}`, so the model
    trades average fit for a smaller spread of losses.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import CVaR
    >>> from skrobust.linear_model import DROLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=200)
    >>> reg = DROLinearRegression(CVaR(alpha=0.2)).fit(X, y)
    >>> np.round(reg.coef_, 1)
    array([ 1. , -2. ,  0.5])
    """
    )

    _parameter_constraints = {
        **_BaseDROLinear._parameter_constraints,
        "loss": [
            StrOptions(
                {*_REGRESSION_LOSSES, "squared", "absolute"},
                deprecated={"squared", "absolute"},
            )
        ],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        ambiguity="chi2",
        *,
        alpha=0.0,
        fit_intercept=True,
        loss="squared_error",
        epsilon=1.0,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
    ):
        self.ambiguity = ambiguity
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.epsilon = epsilon
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    def _loss_name(self):
        """scikit-learn's name of ``loss`` (FutureWarning for an old name)."""
        return resolve_loss_name(
            self.loss, owner=type(self).__name__, allowed=_REGRESSION_LOSSES
        )

    def _loss(self, name=None):
        name = self._loss_name() if name is None else name
        if name == "squared_error":
            return _Squared()
        if name == "absolute_error":
            return _Absolute()
        return _Huber(self.epsilon)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by minimizing the robust risk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution; an integer weight
            is equivalent to repeating the sample.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        name = self._loss_name()
        loss = self._loss(name)
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        scaled = self._standardized(y, sample_weight, name)
        W, b = self._fit_problem(X, loss.encode(y), sample_weight, loss, scaled)
        self.coef_ = W[:, 0].copy()
        self.intercept_ = float(b[0])
        return self

    def _standardized(self, y, sample_weight, name):
        """The problem with ``(y - center) / scale``: loss, target, alpha, ...

        Every loss here is homogeneous in the residual and every risk head in
        the losses, so ``y -> y / s`` with ``W = s W'`` is the same problem
        (the squared loss with the same ``alpha``, the absolute loss with
        ``alpha * s``, the Huber loss with ``epsilon / s``), and an intercept
        absorbs the centering. The solver then works at unit scale, where
        its absolute tolerances mean what they say (y scaled by 1e-8 or 1e8
        gives the same solution, scaled).
        """
        w = sample_weight / sample_weight.sum()  # validated by fit
        center = float(np.dot(w, y)) if self.fit_intercept else 0.0
        scale = float(np.sqrt(np.dot(w, (y - center) ** 2)))
        if not np.isfinite(scale) or scale <= 0.0:
            return None
        if name == "squared_error":
            loss, alpha = _Squared(), self.alpha
        elif name == "absolute_error":
            loss, alpha = _Absolute(), self.alpha * scale
        else:
            loss, alpha = _Huber(self.epsilon / scale), self.alpha
        return loss, loss.encode((y - center) / scale), alpha, center, scale

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_
