"""Conditional CVaR DRO: shifts of Y given X with the X-marginal held fixed."""

import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
from scipy.optimize import linprog
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from skrobust.ambiguity import CVaR
from skrobust.linear_model._classifier import _encode_classes, _LogisticProbaMixin
from skrobust.linear_model._losses import (
    _Absolute,
    _Huber,
    _Squared,
)
from skrobust.linear_model._solver import _check_result, _lbfgs
from skrobust.subpopulation._marginal import _resolve_covariates
from skrobust.utils import check_nonnegative_sample_weight


class _ConditionalProblem:
    """The smoothed objective over the packed vector [W.ravel(), b, beta].

    With the controls ``C`` centered under ``p``, the objective is
    ``CVaR_alpha(loss(X W + b) - C beta) + l2 / 2 ||W||^2``: the intercept
    ``beta_0`` of ``eta(x) = beta_0 + beta' c`` is CVaR's own dual variable,
    profiled out exactly for each evaluation by
    :meth:`skrobust.ambiguity.CVaR.dual_argmin`.
    """

    def __init__(self, X, target, p, loss, controls, alpha, l2_reg, fit_intercept):
        self.X = X
        self.target = target
        self.p = p
        self.loss = loss
        self.center = p @ controls if controls.shape[1] else np.zeros(0)
        self.C = controls - self.center
        self.cvar = CVaR(alpha=float(alpha))
        self.alpha = float(alpha)
        self.l2 = float(l2_reg)
        self.fit_intercept = fit_intercept
        self.n_outputs = loss.n_outputs
        self.n_coef = X.shape[1] * self.n_outputs
        self.n_intercept = self.n_outputs if fit_intercept else 0
        self.n_controls = controls.shape[1]
        self.trivial = self.cvar.is_trivial()
        self._last_eta = None

    def unpack(self, w):
        W = w[: self.n_coef].reshape(self.X.shape[1], self.n_outputs)
        end = self.n_coef + self.n_intercept
        b = w[self.n_coef : end] if self.fit_intercept else None
        return W, b, w[end:]

    def predictions(self, W, b):
        Z = self.X @ W
        return Z + b if b is not None else Z

    def losses(self, W, b):
        return self.loss.value(self.predictions(W, b), self.target)

    def __call__(self, w, tau, mean_only=False):
        W, b, beta = self.unpack(w)
        Z = self.predictions(W, b)
        sample_loss, dZ = self.loss.value_grad(Z, self.target, tau)
        if mean_only or self.trivial:
            value, g_loss = float(self.p @ sample_loss), self.p
            g_beta = np.zeros_like(beta)
        else:
            shifted = sample_loss - self.C @ beta
            eta = self.cvar.dual_argmin(
                shifted, self.p, smoothing=tau, start=self._last_eta
            )
            self._last_eta = eta
            value, g_loss, _ = self.cvar.dual_objective(
                eta, shifted, self.p, smoothing=tau
            )
            g_beta = -(self.C.T @ g_loss)
        G = dZ * g_loss[:, None]
        grad_W = self.X.T @ G
        if self.l2:
            grad_W += self.l2 * W
            value += 0.5 * self.l2 * float(np.sum(W * W))
        parts = [grad_W.ravel()]
        if b is not None:
            parts.append(G.sum(axis=0))
        parts.append(g_beta)
        return value, np.concatenate(parts)

    def eta_intercept(self, W, b, beta):
        """Exact optimal beta_0 (value at risk of the shifted losses)."""
        shifted = self.losses(W, b) - self.C @ beta
        return float(self.cvar.dual_argmin(shifted, self.p)[0])

    def smoothing_error(self, tau):
        """Bound on the objective error caused by the temperature ``tau``."""
        cvar = 0.0 if self.trivial else np.log(2.0) / self.alpha
        return tau * (self.loss.smooth_bound + cvar)


def _solve_lbfgs(problem, tol, max_iter):
    """ERM warm start, then a continuation in the softplus temperature."""
    n_params = problem.n_coef + problem.n_intercept
    w = np.zeros(n_params + problem.n_controls)
    tau_erm = 1e-2 if problem.loss.smooth_bound else 0.0
    res = _lbfgs(partial(problem, mean_only=True), w, tau_erm, max(tol, 1e-3), max_iter)
    w, n_iter = res.x, int(res.nit)
    if not problem.smoothing_error(1.0):
        res = _lbfgs(problem, w, 0.0, tol, max_iter)
        return res.x, n_iter + int(res.nit), res
    W, b, _ = problem.unpack(w)
    losses = problem.losses(W, b)
    spread = float(np.sqrt(problem.p @ (losses - problem.p @ losses) ** 2))
    if spread <= 1e-8 * (1.0 + abs(float(problem.p @ losses))):
        spread = 1.0
    tau = 0.01 * spread
    for _ in range(30):
        res = _lbfgs(problem, w, tau, tol, max_iter)
        w, n_iter = res.x, n_iter + int(res.nit)
        if problem.smoothing_error(tau) <= tol:
            break
        tau /= 10.0
    return w, n_iter, res


def _solve_cvxpy(problem, owner):
    """The same problem as one conic program (Clarabel), the exact reference."""
    import cvxpy as cp

    n, d = problem.X.shape
    K = problem.n_outputs
    W = cp.Variable((d, K))
    Z = problem.X @ W
    b = None
    if problem.fit_intercept:
        b = cp.Variable(K)
        Z = Z + np.ones((n, 1)) @ cp.reshape(b, (1, K), order="C")
    loss_expr = problem.loss.cvxpy(Z, problem.target)
    beta = cp.Variable(problem.n_controls) if problem.n_controls else None
    eta0 = cp.Variable()
    eta = eta0 + problem.C @ beta if beta is not None else eta0
    if problem.trivial:
        risk = problem.p @ loss_expr
    else:
        # the controls are centered under p, so E_p[eta] = eta0
        risk = eta0 + problem.p @ cp.pos(loss_expr - eta) / problem.alpha
    objective = risk + 0.5 * problem.l2 * cp.sum_squares(W)
    cvx_problem = cp.Problem(cp.Minimize(objective))
    try:
        cvx_problem.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"{owner}: the conic solver failed: {exc}") from exc
    if cvx_problem.status not in cp.settings.SOLUTION_PRESENT or W.value is None:
        raise RuntimeError(
            f"{owner}: cvxpy ended with status {cvx_problem.status!r} and no "
            "solution; use solver='lbfgs'."
        )
    if cvx_problem.status != cp.OPTIMAL:
        warnings.warn(
            f"{owner}: cvxpy reported the status {cvx_problem.status!r}; the "
            "solution may be inaccurate.",
            ConvergenceWarning,
            stacklevel=4,
        )
    parts = [np.asarray(W.value, dtype=float).ravel()]
    if b is not None:
        parts.append(np.asarray(b.value, dtype=float))
    beta_value = np.zeros(problem.n_controls)
    if beta is not None and beta.value is not None:
        beta_value += beta.value
    parts.append(beta_value)
    stats = cvx_problem.solver_stats
    n_iter = int(stats.num_iters) if stats and stats.num_iters is not None else 0
    return np.concatenate(parts), n_iter


def _conditional_cvar(losses, controls, alpha, sample_weight=None):
    """Robust risk and worst-case weights of fixed losses, by linear programming.

    The value of :math:`\\inf_{\\beta_0, \\beta} E_p[\\eta + (\\ell - \\eta)_+ /
    \\alpha]` with :math:`\\eta = \\beta_0 + \\beta^\\top c`, computed from its
    dual: :math:`\\max_q \\sum_i q_i \\ell_i` over :math:`0 \\le q_i \\le
    p_i / \\alpha`, :math:`\\sum_i q_i = 1`, :math:`\\sum_i q_i c_i = \\sum_i
    p_i c_i` (HiGHS). Used for the fitted attributes, to evaluate a model on
    new data, and by the benchmarks.

    Returns
    -------
    risk : float
    weights : ndarray of shape (n_samples,)
    """
    losses = np.asarray(losses, dtype=np.float64)
    controls = np.asarray(controls, dtype=np.float64).reshape(losses.shape[0], -1)
    p = np.ones_like(losses) if sample_weight is None else np.asarray(sample_weight)
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    alpha = float(alpha)
    if alpha >= 1.0:
        return float(p @ losses), p.copy()
    if controls.shape[1] == 0:
        return CVaR(alpha=alpha).risk_and_weights(losses, p)
    # center and scale the constraints; shift the losses (the weights sum to
    # one) for a well-scaled LP
    C = controls - p @ controls
    scale = np.sqrt(p @ C**2)
    # a constant column centers to rounding noise: it constrains nothing
    keep = scale > 1e-10 * np.max(np.abs(controls), axis=0)
    C = C[:, keep] / scale[keep]
    if C.shape[1] == 0:
        return CVaR(alpha=alpha).risk_and_weights(losses, p)
    shift = float(p @ losses)
    A_eq = np.vstack([np.ones_like(p), C.T])
    b_eq = np.zeros(A_eq.shape[0])
    b_eq[0] = 1.0
    result = linprog(
        -(losses - shift),
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=np.column_stack([np.zeros_like(p), p / alpha]),
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(
            "conditional CVaR: the linear-programming solver (HiGHS) found no "
            f"solution ({result.message})."
        )
    q = np.clip(result.x, 0.0, None)
    return float(q @ losses), q / q.sum()


class _BaseConditionalCVaR(BaseEstimator):
    """Shared parameters and fitting of the conditional CVaR linear models."""

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "control_features": [list, tuple, np.ndarray, str, Integral, None],
        "l2_reg": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"lbfgs", "cvxpy"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def _fit_problem(self, X, target, sample_weight, loss):
        controls = _resolve_covariates(
            self, self.control_features, X.shape[1], "control_features", True
        )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        p = sample_weight / sample_weight.sum()
        C = X[:, controls]
        problem = _ConditionalProblem(
            X, target, p, loss, C, self.alpha, self.l2_reg, self.fit_intercept
        )
        owner = type(self).__name__
        with threadpool_limits(limits=1, user_api="blas"):
            if self.solver == "cvxpy":
                w, n_iter = _solve_cvxpy(problem, owner)
            else:
                w, n_iter, res = _solve_lbfgs(problem, self.tol, self.max_iter)
                _check_result(res, self.max_iter, self.tol, owner, stacklevel=4)
        W, b, beta = problem.unpack(w)
        b = b if b is not None else np.zeros(problem.n_outputs)
        losses = problem.losses(W, b)
        self.control_features_ = controls
        self.n_iter_ = int(n_iter)
        self.robust_risk_, self.worst_case_weights_ = _conditional_cvar(
            losses, C, self.alpha, p
        )
        self.train_loss_ = float(p @ losses)
        self.objective_ = self.robust_risk_ + 0.5 * float(self.l2_reg) * float(
            np.sum(W * W)
        )
        if problem.trivial:
            beta = np.zeros(problem.n_controls)
            eta0 = float(np.min(losses[p > 0]))
        else:
            eta0 = problem.eta_intercept(W, b, beta)
        self.control_coef_ = np.asarray(beta, dtype=float).copy()
        self.control_intercept_ = eta0 - float(problem.center @ beta)
        return W, b

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_PARAMS = """    alpha : float, default=0.2
        Level of the conditional CVaR, in (0, 1]: the worst case reweights
        the conditional law of Y given X by likelihood ratios of at most
        ``1 / alpha``. ``alpha=1`` gives ERM.
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
        ``"lbfgs"``: L-BFGS jointly over the coefficients and :math:`\\beta`,
        with :math:`\\beta_0` profiled out exactly and the kink
        :math:`(\\cdot)_+` smoothed by a softplus whose temperature is
        shrunk until the bound on the resulting error is below ``tol``.
        ``"cvxpy"``: the same problem as one conic program solved by
        Clarabel (exact; small data)."""

_COMMON_TAIL = """    tol : float, default=1e-6
        Tolerance on the largest gradient entry (L-BFGS), and bound on the
        objective error allowed by smoothing.
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations per smoothing stage."""

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
        ``p_i / alpha``, with the same mean of every control as the data.
    n_iter_ : int
        Number of solver iterations (summed over the smoothing stages).
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
    ``1 / alpha``. The threshold of the CVaR is an affine function of chosen
    control columns. Two classes use the logistic loss, more the
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
    skrobust.linear_model.DROLogisticRegression : With ``CVaR(alpha)``, the
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
    >>> clf = ConditionalCVaRLogisticRegression(alpha=0.2, control_features=[0])
    >>> clf = clf.fit(X, y)
    >>> bool(clf.train_loss_ < clf.robust_risk_)
    True
    >>> clf.predict(X[:4]).shape
    (4,)
    """

    def __init__(
        self,
        alpha=0.2,
        *,
        control_features=None,
        l2_reg=1e-4,
        fit_intercept=True,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
    ):
        self.alpha = alpha
        self.control_features = control_features
        self.l2_reg = l2_reg
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

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
        X, y = validate_data(self, X, y, dtype=np.float64)
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
    ``1 / alpha``, which protects the regions of X where the noise is
    largest. The threshold of the CVaR is an affine function of chosen
    control columns.

    Read more in the :ref:`User Guide <conditional_cvar>`.

    Parameters
    ----------
    %(params)s
    loss : {"squared", "absolute", "huber"}, default="squared"
        Per-sample loss of the residual :math:`r`: :math:`r^2/2`,
        :math:`|r|`, or Huber's (as in
        :class:`skrobust.linear_model.DROLinearRegression`).
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
    skrobust.linear_model.DROLinearRegression : With ``CVaR(alpha)``, the
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
    >>> reg = ConditionalCVaRLinearRegression(alpha=0.2, control_features=[0])
    >>> reg = reg.fit(X, y)
    >>> bool(reg.train_loss_ < reg.robust_risk_)
    True
    >>> reg.control_coef_.shape
    (1,)
    """

    _parameter_constraints = {
        **_BaseConditionalCVaR._parameter_constraints,
        "loss": [StrOptions({"squared", "absolute", "huber"})],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        alpha=0.2,
        *,
        control_features=None,
        l2_reg=0.0,
        fit_intercept=True,
        loss="squared",
        epsilon=1.0,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
    ):
        self.alpha = alpha
        self.control_features = control_features
        self.l2_reg = l2_reg
        self.fit_intercept = fit_intercept
        self.loss = loss
        self.epsilon = epsilon
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    def _loss(self):
        if self.loss == "squared":
            return _Squared()
        if self.loss == "absolute":
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
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        loss = self._loss()
        W, b = self._fit_problem(X, loss.encode(y), sample_weight, loss)
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
