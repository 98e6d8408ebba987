"""Conditional CVaR DRO: shifts of Y given X with the X-marginal held fixed."""

import warnings
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from skrobust.ambiguity._conditional_cvar import (  # noqa: F401 (tests import them)
    _LP_FULL,
    ConditionalCVaR,
    _conditional_cvar,
    _conditional_lp,
    _Controls,
)
from skrobust.linear_model._classifier import _encode_classes, _LogisticProbaMixin
from skrobust.linear_model._losses import (
    _Absolute,
    _Huber,
    _Squared,
)
from skrobust.linear_model._solver import (
    _check_result,
    _cvxpy_fallback_allowed,
    _with_lower_bound,
)
from skrobust.subpopulation._conditional_solver import (
    _ConditionalProblem,
    _cvxpy_certificate,
    _cvxpy_or_raise,
    _objective_scale,
    _solve_cvxpy,
    _solve_lbfgs,
)
from skrobust.subpopulation._marginal import (
    _DEPRECATED,
    _power_of_two,
    _resolve_covariates,
)
from skrobust.utils import (
    check_nonnegative_sample_weight,
    resolve_loss_name,
    resolve_renamed_param,
)

# scikit-learn's names; the old "squared" and "absolute" warn (one release)
_REGRESSION_LOSSES = {"squared_error", "absolute_error", "huber"}


class _BaseConditionalCVaR(BaseEstimator):
    """Shared parameters and fitting of the conditional CVaR linear models."""

    _parameter_constraints = {
        "subpopulation_size": [Interval(Real, 0, 1, closed="right")],
        "alpha": [Interval(Real, 0, 1, closed="right"), StrOptions({_DEPRECATED})],
        "control_features": [list, tuple, np.ndarray, str, Integral, None],
        "l2_reg": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"lbfgs", "cvxpy"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def _fit_problem(self, X, target, sample_weight, loss, degree=0):
        """Solve; ``degree`` is the loss's homogeneity in ``y`` (regression).

        Features (and, for regression, the target) whose largest entry is
        outside ``[2^-20, 2^20]`` are rescaled by a power of two (exact in
        floating point) before solving: the CVaR of an affine threshold is
        positively homogeneous, so the problem in the rescaled units is the
        same problem, and the results are mapped back.
        """
        controls = _resolve_covariates(
            self, self.control_features, X.shape[1], "control_features", True
        )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        p = sample_weight / sample_weight.sum()
        kx = _power_of_two(X)
        ky = _power_of_two(target) if degree else 0
        if ky:
            target = np.ldexp(target, -ky)
            if isinstance(loss, _Huber):
                loss = _Huber(np.ldexp(loss.epsilon, -ky))
        X_fit = np.ldexp(X, -kx) if kx else X
        units = np.ldexp(1.0, degree * ky)
        l2 = float(self.l2_reg)
        if l2:
            l2 = float(np.ldexp(l2, 2 * (ky - kx) - degree * ky))
        problem = _ConditionalProblem(
            X_fit,
            target,
            p,
            loss,
            controls,
            resolve_renamed_param(self, "alpha", "subpopulation_size"),
            l2,
            self.fit_intercept,
        )
        owner = type(self).__name__
        scale = _objective_scale(problem)
        # BLAS single-threaded (small dense steps contend with the thread
        # pool); the engine's L-BFGS loop sets it itself
        lbfgs = self.solver != "cvxpy"
        with nullcontext() if lbfgs else threadpool_limits(1, user_api="blas"):
            if self.solver == "cvxpy":
                w, n_iter, status, q = _cvxpy_or_raise(problem, self.tol, owner)
                info = dict(
                    _cvxpy_certificate(problem, w, status, q, self.tol, scale),
                    method="cvxpy",
                    solver_status=status,
                )
            else:
                w, n_iter, res, cert = _solve_lbfgs(problem, self.tol, self.max_iter)
                info = dict(cert, method="lbfgs", solver_status=None)
                if not cert["certified"] and _cvxpy_fallback_allowed(problem.engine):
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            wc, it, status, q = _solve_cvxpy(problem, self.tol)
                    except (RuntimeError, ImportError, ValueError, ArithmeticError):
                        wc = None
                    if wc is not None:
                        cert_c = _cvxpy_certificate(
                            problem, wc, status, q, self.tol, scale
                        )
                        cert_c = _with_lower_bound(cert_c, cert["lower_bound"])
                        if cert_c["objective"] <= cert["objective"]:
                            w, n_iter = wc, n_iter + it
                            info = dict(
                                cert_c, method="lbfgs+cvxpy", solver_status=status
                            )
                        else:
                            info = dict(
                                _with_lower_bound(cert, cert_c["lower_bound"]),
                                method="lbfgs",
                                solver_status=None,
                            )
                if not info["certified"]:
                    _check_result(res, self.max_iter, self.tol, owner, stacklevel=4)
            if not info["certified"]:
                gap = info["duality_gap"]
                what = (
                    f"the duality gap is {gap:.3e} "
                    f"({gap / max(abs(info['objective']), info['scale']):.2e} "
                    f"relative) > tol={self.tol:.1e}"
                    if np.isfinite(gap)
                    else "no duality gap could be computed and the KKT residual "
                    f"is {info['kkt_residual']:.3e}"
                )
                warnings.warn(
                    f"{owner}: the solution is not certified optimal: {what}. "
                    "Increase max_iter, scale the data, or use solver='cvxpy'.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        W, b, beta = problem.unpack(w)
        b = b if b is not None else np.zeros(problem.n_outputs)
        self.control_features_ = controls
        self.n_iter_ = int(n_iter)
        risk, self.worst_case_weights_ = info.pop("_risk_weights")
        self.robust_risk_ = float(risk * units)
        # back to the units of the data (the KKT residual, a gradient, stays
        # in those of the rescaled problem)
        for key in ("objective", "lower_bound", "duality_gap", "threshold", "scale"):
            info[key] = float(info[key] * units)
        info["lp_gap"] = float(info["lp_gap"] * units)
        self.solver_info_ = info
        self.optimality_gap_ = info["duality_gap"]
        losses = problem.losses(W, b)
        self.train_loss_ = float(p @ losses) * units
        if problem.trivial:
            beta = np.zeros(problem.n_controls)
            eta0 = float(np.min(losses[p > 0]))
        else:
            eta0 = problem.eta_intercept(W, b, beta)
        coef = np.ldexp(problem.control_coef(beta), degree * ky - kx)
        self.control_coef_ = coef
        center = np.ldexp(problem.center, kx)
        self.control_intercept_ = eta0 * units - float(center @ coef)
        W = np.ldexp(W, ky - kx)
        b = np.ldexp(b, ky)
        self.objective_ = self.robust_risk_ + 0.5 * float(self.l2_reg) * float(
            np.sum(W * W)
        )
        return W, b

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_PARAMS = """    subpopulation_size : float, default=0.2
        Level :math:`\\alpha` of the conditional CVaR, in (0, 1]: the worst
        case reweights the conditional law of Y given X by likelihood ratios
        of at most ``1 / subpopulation_size``. ``1`` gives ERM.
    control_features : list of str or int, str, int or None, default=None
        The control columns :math:`C` of ``X`` (names of a DataFrame's
        columns or indices) on which the threshold :math:`\\eta(x) = \\beta_0
        + \\beta^\\top c` depends. ``None`` uses every column; ``[]`` keeps
        only :math:`\\beta_0`, which gives ordinary (marginal) CVaR DRO.
        More controls hold more of the X-distribution fixed, giving a smaller
        (less conservative) robust risk.
    l2_reg : float, default=%(l2)s
        Strength :math:`\\lambda` of the penalty
        :math:`\\tfrac{\\lambda}{2} \\|W\\|_F^2` on the coefficients (the
        intercept and :math:`\\eta` are not penalized).
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    solver : {"lbfgs", "cvxpy"}, default="lbfgs"
        ``"lbfgs"``: the certified solver of :mod:`skrobust.linear_model`
        (the engine of :class:`~skrobust.linear_model.DROLinearRegression`):
        L-BFGS jointly over the coefficients and :math:`\\beta`, with
        :math:`\\beta_0` profiled out exactly and the kink :math:`(\\cdot)_+`
        smoothed by a softplus whose temperature is shrunk until the
        duality gap is certified.
        ``"cvxpy"``: the same problem as one conic program solved by
        Clarabel (exact; small data)."""

_COMMON_TAIL = """    tol : float, default=1e-6
        Tolerance on the largest gradient entry (L-BFGS) and relative
        duality gap accepted: the solution is certified when the gap (see
        ``solver_info_``) is at most ``tol * max(|objective_|, 1e-3 * mean
        loss at zero coefficients)``. If it is not, a problem of at most
        ``n_samples * n_parameters = 2e5`` entries is solved again exactly
        by Clarabel (through cvxpy); a ConvergenceWarning naming the gap is
        raised only if that also fails.
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations per smoothing stage.
    alpha : float, default="deprecated"
        The old name of ``subpopulation_size``; when given it is used, with
        a FutureWarning. Removed in the next release."""

_ATTRS = """    control_features_ : ndarray of int
        Column indices of the controls in ``X``.
    control_coef_ : ndarray of shape (n_controls,)
        :math:`\\beta`, the slope of the threshold :math:`\\eta(x)` at the
        solution (an affine fit of the value at risk of the loss given the
        controls).
    control_intercept_ : float
        :math:`\\beta_0`, so that :math:`\\eta(x) =` ``control_intercept_ +
        X[:, control_features_] @ control_coef_``.
    robust_risk_ : float
        The robust risk of the training losses at the solution, computed
        exactly by a linear program (without the penalty).
    objective_ : float
        ``robust_risk_ + l2_reg / 2 * ||coef||^2``.
    train_loss_ : float
        Average training loss.
    worst_case_weights_ : ndarray of shape (n_samples,)
        The worst-case distribution over the training samples: at most
        ``p_i / subpopulation_size``, with the same mean of every control as the data.
    n_iter_ : int
        Number of solver iterations (summed over the smoothing stages).
    optimality_gap_ : float
        Certified bound on ``objective_`` minus the optimal objective: the
        duality gap of the solution (``nan`` when no dual bound could be
        formed; then the KKT residual in ``solver_info_`` is the
        certificate).
    solver_info_ : dict
        The certificate, with the keys of
        :class:`skrobust.linear_model.DROLinearRegression`'s: ``objective``
        (the robust risk by the linear program, as its dual value, an upper
        bound whatever the LP's accuracy, plus the penalty), ``lower_bound``
        (a Fenchel bound from worst-case weights mapped exactly into the set
        and the loss derivatives: the optimum is at least this),
        ``duality_gap`` (their difference; after an interior-point solve,
        plus ``lp_gap``),
        ``kkt_residual`` (largest entry of the gradient with the worst-case
        weights, in the units of the solved problem), ``threshold`` (``tol``
        times the objective's scale), ``scale``, ``certified`` (gap below
        threshold), ``lp_gap`` (the linear program's own duality gap),
        ``method`` (``"lbfgs"``, ``"lbfgs+cvxpy"`` when the exact conic
        fallback ran, or ``"cvxpy"``) and ``solver_status`` (cvxpy's status
        when it ran).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names."""

_NOTES = """    The robust risk is the average over X of the conditional value at risk
    of the loss given X, the worst case over distributions that keep the
    X-marginal of the data and change the law of Y given X by a likelihood
    ratio of at most :math:`1/\\alpha` (Sahoo, Lei and Wager's biased
    sampling model, without their lower bound on the ratio). By the
    Rockafellar-Uryasev representation of CVaR, applied at each x,

    .. math::

        E_X[\\mathrm{CVaR}_\\alpha(\\ell \\mid X)] = \\inf_{\\eta(\\cdot)}
        E\\Big[\\eta(X) + \\frac{(\\ell - \\eta(X))_+}{\\alpha}\\Big]
        \\le \\inf_{\\beta_0, \\beta} E_{P_n}\\Big[\\eta_\\beta(X) +
        \\frac{(\\ell - \\eta_\\beta(X))_+}{\\alpha}\\Big],
        \\quad \\eta_\\beta(x) = \\beta_0 + \\beta^\\top c,

    and the right side is minimized jointly over the model and
    :math:`(\\beta_0, \\beta)`. Restricting :math:`\\eta` to an affine
    function of the controls gives an upper bound of the conditional CVaR:
    a conservative robust risk. Its dual is the worst case over weights
    :math:`0 \\le q_i \\le p_i / \\alpha` summing to one that keep the means
    of the controls (and of the constant) at their data values; the exact
    conditional set keeps the law of X itself. With no controls it is the
    ordinary CVaR of the losses; with :math:`\\alpha = 1` the mean.

    For regression the losses are those of
    :class:`skrobust.linear_model.DROLinearRegression` (squared error
    :math:`r^2/2`)."""

_REFS = """    .. [1] Sahoo, R., Lei, L. and Wager, S. (2022). "Learning from a biased
       sample." arXiv:2209.01754.
    .. [2] Rockafellar, R. T. and Uryasev, S. (2000). "Optimization of
       conditional value-at-risk." Journal of Risk 2."""


class ConditionalCVaRLogisticRegression(
    _LogisticProbaMixin, LinearClassifierMixin, _BaseConditionalCVaR
):
    """Logistic regression robust to shifts of Y given X (conditional CVaR).

    Minimizes a bound on the average over X of the conditional value at
    risk of the log-loss given X: the worst case over distributions with the
    data's X-marginal whose law of Y given X has a likelihood ratio at most
    ``1 / subpopulation_size``. The threshold of the CVaR is an affine
    function of chosen control columns. Two classes use the logistic loss, more the
    multinomial cross-entropy.

    Read more in the :ref:`User Guide <conditional_cvar>`.

    Parameters
    ----------
    %(params)s
    %(tail)s

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
    ConditionalCVaRLinearRegression : The regression counterpart.
    skrobust.linear_model.DROLogisticRegression : With ``CVaR(subpopulation_size)``, the
        marginal CVaR (``control_features=[]`` here).
    MarginalDROLogisticRegression : Shifts of the covariates instead.

    Notes
    -----
    %(notes)s

    References
    ----------
    %(refs)s

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.subpopulation import ConditionalCVaRLogisticRegression
    >>> X, y = make_classification(n_samples=200, n_features=4, random_state=0)
    >>> clf = ConditionalCVaRLogisticRegression(
    ...     subpopulation_size=0.2, control_features=[0]
    ... )
    >>> clf = clf.fit(X, y)
    >>> bool(clf.train_loss_ < clf.robust_risk_)
    True
    >>> clf.predict(X[:4]).shape
    (4,)
    """

    def __init__(
        self,
        subpopulation_size=0.2,
        *,
        control_features=None,
        l2_reg=1e-4,
        fit_intercept=True,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
        alpha=_DEPRECATED,
    ):
        self.subpopulation_size = subpopulation_size
        self.control_features = control_features
        self.l2_reg = l2_reg
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.alpha = alpha

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients on the conditional CVaR of the log-loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; a DataFrame when ``control_features`` names columns.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution; an integer weight
            is equivalent to repeating the sample.

        Returns
        -------
        self : ConditionalCVaRLogisticRegression
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, order="C")
        loss, target = _encode_classes(self, y)
        W, b = self._fit_problem(X, target, sample_weight, loss)
        self.coef_ = np.ascontiguousarray(W.T)
        self.intercept_ = b
        return self


class ConditionalCVaRLinearRegression(RegressorMixin, _BaseConditionalCVaR):
    """Linear regression robust to shifts of Y given X (conditional CVaR).

    Minimizes a bound on the average over X of the conditional value at
    risk of the loss given X: the worst case over distributions with the
    data's X-marginal whose law of Y given X has a likelihood ratio at most
    ``1 / subpopulation_size``, which protects the regions of X where the noise is
    largest. The threshold of the CVaR is an affine function of chosen
    control columns.

    Read more in the :ref:`User Guide <conditional_cvar>`.

    Parameters
    ----------
    %(params)s
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        Per-sample loss of the residual :math:`r`: :math:`r^2/2`,
        :math:`|r|`, or Huber's (as in
        :class:`skrobust.linear_model.DROLinearRegression`); scikit-learn's
        names. The old names ``"squared"`` and ``"absolute"`` still work for
        one release, with a FutureWarning.
    epsilon : float, default=1.0
        Threshold of the Huber loss, in the units of ``y``.
    %(tail)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept.
    %(attrs)s

    See Also
    --------
    ConditionalCVaRLogisticRegression : The classification counterpart.
    skrobust.linear_model.DROLinearRegression : With ``CVaR(subpopulation_size)``, the
        marginal CVaR (``control_features=[]`` here).
    MarginalDROLinearRegression : Shifts of the covariates instead.

    Notes
    -----
    %(notes)s

    References
    ----------
    %(refs)s

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.subpopulation import ConditionalCVaRLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(300, 2))
    >>> y = X @ np.array([1.0, -1.0]) + (0.1 + (X[:, 0] > 0)) * rng.normal(size=300)
    >>> reg = ConditionalCVaRLinearRegression(
    ...     subpopulation_size=0.2, control_features=[0]
    ... )
    >>> reg = reg.fit(X, y)
    >>> bool(reg.train_loss_ < reg.robust_risk_)
    True
    >>> reg.control_coef_.shape
    (1,)
    """

    _parameter_constraints = {
        **_BaseConditionalCVaR._parameter_constraints,
        "loss": [StrOptions(_REGRESSION_LOSSES | {"squared", "absolute"})],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        subpopulation_size=0.2,
        *,
        control_features=None,
        l2_reg=0.0,
        fit_intercept=True,
        loss="squared_error",
        epsilon=1.0,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
        alpha=_DEPRECATED,
    ):
        self.subpopulation_size = subpopulation_size
        self.control_features = control_features
        self.l2_reg = l2_reg
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.epsilon = epsilon
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.alpha = alpha

    def _loss(self, name):
        if name == "squared_error":
            return _Squared()
        if name == "absolute_error":
            return _Absolute()
        return _Huber(self.epsilon)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients on the conditional CVaR of the loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; a DataFrame when ``control_features`` names columns.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution; an integer weight
            is equivalent to repeating the sample.

        Returns
        -------
        self : ConditionalCVaRLinearRegression
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, order="C", y_numeric=True)
        name = resolve_loss_name(
            self.loss, owner=type(self).__name__, allowed=_REGRESSION_LOSSES
        )
        loss = self._loss(name)
        degree = 1 if name == "absolute_error" else 2
        W, b = self._fit_problem(X, loss.encode(y), sample_weight, loss, degree)
        self.coef_ = W[:, 0].copy()
        self.intercept_ = float(b[0])
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


for _cls, _l2 in [
    (ConditionalCVaRLogisticRegression, "1e-4"),
    (ConditionalCVaRLinearRegression, "0.0"),
]:
    _cls.__doc__ = _cls.__doc__ % {
        "params": (_PARAMS % {"l2": _l2}).strip(),
        "tail": _COMMON_TAIL.strip(),
        "attrs": _ATTRS.strip(),
        "notes": _NOTES.strip(),
        "refs": _REFS.strip(),
    }
