"""Empirical likelihood intervals for coefficients of linear and logistic models."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.special import expit
from scipy.stats import chi2
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils import check_X_y
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import column_or_1d

from skrobust.ambiguity import check_ambiguity
from skrobust.inference._estimating import _pseudo_log, _solve_dual
from skrobust.inference._validation import check_frequency_weights
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression

MAX_ITER = 100
EPS = np.finfo(np.float64).eps


class _Score:
    """Estimating function ``g_i(beta) = x_i (y_i - m(x_i' beta))`` of a GLM.

    ``m`` is the identity (least squares) or the logistic function (maximum
    likelihood logistic regression); ``beta`` holds the coefficients followed
    by the intercept when there is one.
    """

    def __init__(self, X, y, w, family):
        self.X, self.y, self.w, self.family = X, y, w, family
        self.n = float(w.sum())
        p = X.shape[1]
        # products x_ij x_ik once, so that every X' diag(c) X is one BLAS call
        self._pairs = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], p * p)

    def grams(self, *cs):
        """``X' diag(c) X`` for each weight vector ``c``, in one product."""
        p = self.X.shape[1]
        out = np.stack(cs) @ self._pairs
        return [row.reshape(p, p) for row in out]

    def mean_and_derivatives(self, beta):
        eta = self.X @ beta
        if self.family == "linear":
            one = np.ones_like(eta)
            return eta, one, np.zeros_like(eta)
        m = expit(eta)
        m1 = m * (1.0 - m)
        return m, m1, m1 * (1.0 - 2.0 * m)

    def solve(self, beta0):
        """Root of the estimating equations (the unpenalized fit)."""
        X, y, w = self.X, self.y, self.w
        if self.family == "linear":
            sw = np.sqrt(w)
            return np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        beta = np.array(beta0, dtype=float)
        for _ in range(MAX_ITER):
            m, m1, _ = self.mean_and_derivatives(beta)
            grad = X.T @ (w * (y - m))
            hess = (X * (w * m1)[:, None]).T @ X
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
            beta = beta + step
            if np.max(np.abs(step)) <= 1e-13 * (1.0 + np.max(np.abs(beta))):
                return beta
        warnings.warn(
            "The logistic regression estimating equations did not converge "
            "(separable data?); intervals may be meaningless.",
            ConvergenceWarning,
            stacklevel=4,
        )
        return beta

    def sandwich(self, beta):
        """Sandwich covariance ``A^-1 B A^-T`` of the root."""
        X, y, w = self.X, self.y, self.w
        m, m1, _ = self.mean_and_derivatives(beta)
        A = (X * (w * m1)[:, None]).T @ X
        B = (X * (w * (y - m) ** 2)[:, None]).T @ X
        A_inv = np.linalg.pinv(A)
        return A_inv @ B @ A_inv.T

    def profile_parts(self, beta, lam):
        """Inner dual solve at ``beta`` and the derivatives the profile needs.

        Returns ``(value, lam, grad_beta, H_ll, H_lb, H_bb)`` for
        ``l(lam, beta) = sum_i w_i log*(1 + lam' g_i(beta))`` at the maximizing
        ``lam``. With ``r = y - m``, ``a = X lam`` and ``d = 1 + a r`` every
        block is ``X' diag(c) X`` for some weights ``c``.
        """
        X, y, w = self.X, self.y, self.w
        m, m1, m2 = self.mean_and_derivatives(beta)
        r = y - m
        G = X * r[:, None]
        r2 = r * r
        lam, value = _solve_dual(
            G, w, self.n, lam, gram=lambda c: self.grams(c * r2)[0]
        )
        a = X @ lam
        _, psi1, psi2 = _pseudo_log(1.0 + a * r, 1.0 / self.n)
        grad_beta = X.T @ (-w * psi1 * m1 * a)
        H_ll, H_lb, H_bb = self.grams(
            w * psi2 * r2,
            -w * (psi2 * r * m1 * a + psi1 * m1),
            w * (psi2 * (m1 * a) ** 2 - psi1 * m2 * a),
        )
        return value, lam, grad_beta, H_ll, H_lb, H_bb


def _profile(score, j, b, theta, lam):
    """Minimize over the free coefficients ``theta`` with ``beta_j = b``.

    Newton's method on the profiled objective ``F(theta) = max_lam l`` with
    the Schur-complement Hessian ``H_bb - H_bl H_ll^-1 H_lb`` (implicit
    differentiation through the inner maximizer), damped by a backtracking
    line search and a Levenberg shift when that Hessian is not positive
    definite. Returns ``(F, theta, lam, dF/db)``.
    """
    free = np.arange(score.X.shape[1]) != j

    def assemble(theta):
        beta = np.empty(score.X.shape[1])
        beta[free] = theta
        beta[j] = b
        return beta

    parts = score.profile_parts(assemble(theta), lam)
    for _ in range(MAX_ITER):
        value, lam, grad, H_ll, H_lb, H_bb = parts
        if not free.any():
            return value, theta, lam, grad[j]
        g_free = grad[free]
        try:
            H_ll_inv_H_lb = np.linalg.solve(H_ll, H_lb[:, free])
        except LinAlgError:
            H_ll_inv_H_lb = np.linalg.lstsq(H_ll, H_lb[:, free], rcond=None)[0]
        S = H_bb[np.ix_(free, free)] - H_lb[:, free].T @ H_ll_inv_H_lb
        if not np.all(np.isfinite(S)):
            raise ValueError(
                f"The empirical-likelihood profile of coefficient {j} is not "
                f"finite at {b:.6g}: with {score.X.shape[0]} samples for "
                f"{score.X.shape[1]} coefficients the estimating equations "
                "cannot be balanced there. Use more samples."
            )
        shift = 0.0
        scale = max(np.max(np.abs(np.diag(S))), 1e-300)
        while True:
            try:
                factor = cho_factor(S + shift * np.eye(S.shape[0]))
                break
            except LinAlgError:
                shift = max(2.0 * shift, 1e-8 * scale)
        step = -cho_solve(factor, g_free)
        decrement = -float(g_free @ step)
        if decrement <= 1e-10 * max(1.0, abs(value)):
            # quadratic convergence: one more full step reaches rounding level
            lam_guess = lam - H_ll_inv_H_lb @ step
            theta = theta + step
            value, lam, grad = score.profile_parts(assemble(theta), lam_guess)[:3]
            return value, theta, lam, grad[j]
        t = 1.0
        while True:
            trial = theta + t * step
            lam_guess = lam - t * (H_ll_inv_H_lb @ step)
            new = score.profile_parts(assemble(trial), lam_guess)
            if new[0] <= value - 1e-4 * t * decrement or t < 1e-10:
                break
            t *= 0.5
        theta, parts = trial, new
    warnings.warn(
        "Profiling the nuisance coefficients did not converge.",
        ConvergenceWarning,
        stacklevel=4,
    )
    value, lam, grad = parts[0], parts[1], parts[2]
    return value, theta, lam, grad[j]


def _endpoint(score, j, beta_hat, cov, threshold, side):
    """Endpoint of ``{b : 2 F(b) <= threshold}`` on one side of ``beta_hat``.

    A monotone root-find on ``phi(b) = sqrt(2 F(b))`` (nearly linear in
    ``b``), whose derivative comes from the envelope theorem, ``d(2F)/db = 2
    dl/dbeta_j``: Newton steps inside a bracket that shrinks (or, before an
    upper bracket is known, widens from the Wald endpoint), bisection as the
    safeguard.
    """
    se = np.sqrt(max(cov[j, j], 0.0))
    if se == 0:
        se = 1e-8 * (1.0 + abs(beta_hat[j]))
    free = np.arange(beta_hat.shape[0]) != j
    slope = cov[free, j] / cov[j, j] if cov[j, j] > 0 else np.zeros(free.sum())
    target = np.sqrt(threshold)
    # distances from beta_hat_j along ``side``
    lo, hi = 0.0, np.inf
    t = target * se
    lam = None
    for _ in range(MAX_ITER):
        b = beta_hat[j] + side * t
        theta = beta_hat[free] + slope * (side * t)
        value, theta, lam, dvalue = _profile(score, j, b, theta, lam)
        stat = max(2.0 * value, 0.0)
        phi = np.sqrt(stat)
        if phi < target:
            lo = t
        else:
            hi = t
        dphi = side * dvalue / phi if phi > 0 else 0.0
        new = t - (phi - target) / dphi if dphi > 0 else np.nan
        if lo < new < hi and abs(new - t) <= 1e-7 * se:
            # Newton's error after this step is O(step^2 / se) < 1e-14 se
            return beta_hat[j] + side * new
        if not lo < new < hi:
            new = 0.5 * (lo + hi) if np.isfinite(hi) else 2.0 * max(t, lo)
        if np.isfinite(hi) and hi - lo <= 4.0 * EPS * (abs(b) + se):
            return beta_hat[j] + side * new
        t = new
    warnings.warn(
        "The empirical-likelihood interval endpoint did not converge.",
        ConvergenceWarning,
        stacklevel=3,
    )
    return beta_hat[j] + side * t


def _setup(estimator, X, y, sample_weight):
    """Validated design (with an intercept column), target, weights, family."""
    if isinstance(estimator, LogisticRegression):
        family = "logistic"
        C = estimator.C
        penalty = getattr(estimator, "penalty", "deprecated")
        if not (penalty is None or penalty == "none" or C == np.inf):
            raise ValueError(
                "estimator must be an unpenalized LogisticRegression "
                "(C=np.inf): empirical likelihood intervals are for the "
                f"coefficients of the unpenalized score equations; got C={C}."
            )
        if estimator.class_weight is not None:
            raise ValueError(
                "estimator.class_weight must be None; pass frequency weights "
                "as sample_weight instead."
            )
    elif isinstance(estimator, LinearRegression):
        family = "linear"
        if estimator.positive:
            raise ValueError(
                "estimator.positive=True constrains the coefficients; the "
                "empirical likelihood interval needs the unconstrained fit."
            )
    elif isinstance(estimator, DROLinearRegression | DROLogisticRegression):
        family = "linear" if isinstance(estimator, DROLinearRegression) else "logistic"
        trivial = check_ambiguity(estimator.ambiguity).is_trivial()
        squared = family == "logistic" or estimator.loss == "squared"
        if not (trivial and estimator.alpha == 0 and squared):
            raise ValueError(
                "For a DRO linear model the estimating equations are those of "
                "least squares or logistic maximum likelihood, so estimator "
                "must have ambiguity='erm' (radius 0), alpha=0 and, for "
                f"regression, loss='squared'; got {estimator!r}. Use "
                "gel_optimal_value_interval for bounds on the robust risk."
            )
    else:
        raise TypeError(
            "estimator must be a LinearRegression or an unpenalized "
            f"LogisticRegression; got {type(estimator).__name__}."
        )
    X, y = check_X_y(
        X,
        y,
        dtype=np.float64 if family == "linear" else None,
        y_numeric=family == "linear",
    )
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    if hasattr(estimator, "n_features_in_") and estimator.n_features_in_ != n_features:
        raise ValueError(
            f"X has {n_features} features, but estimator was fitted with "
            f"{estimator.n_features_in_}."
        )
    if family == "logistic":
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            classes = np.unique(y)
        if len(classes) != 2 or not np.all(np.isin(np.unique(y), classes)):
            raise ValueError(
                "y must hold exactly two classes for a logistic regression "
                f"interval; got classes {np.unique(y)}."
            )
        y = (y == classes[1]).astype(np.float64)
    else:
        y = column_or_1d(y).astype(np.float64)
    w = check_frequency_weights(sample_weight, X.shape[0])
    w = np.ones(X.shape[0]) if w is None else w
    if estimator.fit_intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    n_positive = int(np.count_nonzero(w))
    if n_positive <= X.shape[1]:
        raise ValueError(
            f"Empirical likelihood for {X.shape[1]} coefficients needs more "
            f"samples with positive weight than coefficients; got {n_positive}."
        )
    beta0 = np.zeros(X.shape[1])
    coef = getattr(estimator, "coef_", None)
    if family == "logistic" and coef is not None:
        beta0[:n_features] = np.ravel(coef)
        if estimator.fit_intercept:
            beta0[-1] = np.ravel(estimator.intercept_)[0]
    score = _Score(X, y, w, family)
    return score, n_features, beta0


def _feature_index(feature, n_features, fit_intercept):
    if isinstance(feature, str):
        if feature != "intercept" or not fit_intercept:
            raise ValueError(
                "features entries must be coefficient indices or 'intercept' "
                f"(for a model with an intercept); got {feature!r}."
            )
        return n_features
    if not isinstance(feature, Integral | np.integer) or not (
        -n_features <= feature < n_features
    ):
        raise ValueError(
            f"features entries must be integers in [0, {n_features}); got {feature!r}."
        )
    return int(feature) % n_features


@validate_params(
    {
        "estimator": [
            LinearRegression,
            LogisticRegression,
            DROLinearRegression,
            DROLogisticRegression,
        ],
        "X": ["array-like"],
        "y": ["array-like"],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "features": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def el_coef_interval(
    estimator, X, y, *, confidence=0.95, sample_weight=None, features=None
):
    """Empirical likelihood intervals for coefficients of a linear or logistic model.

    Each coefficient gets the interval of values whose profile empirical
    likelihood ratio, with every other coefficient profiled out, is below the
    chi-square quantile with one degree of freedom.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    estimator : LinearRegression, LogisticRegression, DROLinearRegression or \
            DROLogisticRegression
        Defines the estimating equations and whether there is an intercept;
        fitted or not (it is never refitted or modified). A
        ``LogisticRegression`` must be unpenalized (``C=np.inf``) and binary;
        a DRO linear model must be its ERM special case (``ambiguity="erm"``,
        ``alpha=0``, squared loss or binary logistic).
    X : array-like of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,)
        Target: real for ``LinearRegression``, two classes for
        ``LogisticRegression``.
    confidence : float, default=0.95
        Nominal coverage of each interval (not simultaneous).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).
    features : array-like of int or "intercept", default=None
        Coefficients to compute intervals for, as indices into ``coef_``, or
        ``"intercept"``. ``None`` means every entry of ``coef_``.

    Returns
    -------
    intervals : ndarray of shape (n_selected, 2)
        Lower and upper endpoints, one row per selected coefficient.

    See Also
    --------
    el_coef_test : The profiled test these intervals invert.
    el_moment_test : The statistic for a fully specified parameter.

    Notes
    -----
    The estimating function is :math:`g_i(\\beta) = x_i (y_i - m(x_i^\\top
    \\beta))` with :math:`m` the identity (least squares) or the logistic
    function (logistic maximum likelihood); :math:`x_i` includes a constant
    when the model has an intercept. The profile statistic for coefficient
    :math:`j` is

    .. math::

        W_j(b) = \\min_{\\beta : \\beta_j = b}\\ 2 \\max_{\\lambda}
        \\sum_i w_i \\log_\\star\\big(1 + \\lambda^\\top g_i(\\beta)\\big),

    computed by Newton's method in :math:`\\lambda` (inner) and in the other
    coefficients (outer, with the Hessian of the profiled objective from
    implicit differentiation). The endpoints solve
    :math:`W_j(b) = \\chi^2_{1, \\text{confidence}}` by a safeguarded Newton
    iteration on :math:`\\sqrt{W_j}`, whose derivative is given by the
    envelope theorem. The intervals are centered on the unpenalized fit and
    use no variance estimate; their length adapts to heteroscedasticity.

    References
    ----------
    .. [1] Owen, A. B. (1991). "Empirical likelihood for linear models."
       Annals of Statistics 19(4).
    .. [2] Qin, J. and Lawless, J. (1994). "Empirical likelihood and general
       estimating equations." Annals of Statistics 22(1).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.inference import el_coef_interval
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=200)
    >>> model = LinearRegression().fit(X, y)
    >>> intervals = el_coef_interval(model, X, y)
    >>> intervals.shape
    (2, 2)
    >>> bool(intervals[0, 0] < 2.0 < intervals[0, 1])
    True
    """
    score, n_features, beta0 = _setup(estimator, X, y, sample_weight)
    if features is None:
        features = list(range(n_features))
    else:
        features = list(np.ravel(np.asarray(features, dtype=object)))
    index = [_feature_index(f, n_features, estimator.fit_intercept) for f in features]
    beta_hat = score.solve(beta0)
    cov = score.sandwich(beta_hat)
    threshold = chi2.ppf(confidence, 1)
    intervals = np.empty((len(index), 2))
    for row, j in enumerate(index):
        intervals[row, 0] = _endpoint(score, j, beta_hat, cov, threshold, -1.0)
        intervals[row, 1] = _endpoint(score, j, beta_hat, cov, threshold, 1.0)
    return intervals


@validate_params(
    {
        "estimator": [
            LinearRegression,
            LogisticRegression,
            DROLinearRegression,
            DROLogisticRegression,
        ],
        "X": ["array-like"],
        "y": ["array-like"],
        "feature": [Integral, str],
        "value": [Real],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def el_coef_test(estimator, X, y, feature, value, *, sample_weight=None):
    """Profile empirical likelihood test that one coefficient equals ``value``.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    estimator : LinearRegression, LogisticRegression, DROLinearRegression or \
            DROLogisticRegression
        Defines the estimating equations, as in :func:`el_coef_interval`.
    X : array-like of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,)
        Target.
    feature : int or "intercept"
        Index into ``coef_``, or ``"intercept"``.
    value : float
        Hypothesized value of that coefficient.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).

    Returns
    -------
    statistic : float
        Profile statistic :math:`W_j(\\text{value})`, the other coefficients
        profiled out.
    pvalue : float
        Upper tail of the chi-square distribution with one degree of freedom.

    See Also
    --------
    el_coef_interval : The interval of values this test does not reject.

    Notes
    -----
    See :func:`el_coef_interval` for the statistic and how it is computed.

    References
    ----------
    .. [1] Qin, J. and Lawless, J. (1994). "Empirical likelihood and general
       estimating equations." Annals of Statistics 22(1).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.inference import el_coef_test
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=200)
    >>> statistic, pvalue = el_coef_test(LinearRegression(), X, y, 1, 0.0)
    >>> bool(pvalue > 0.01)
    True
    """
    score, n_features, beta0 = _setup(estimator, X, y, sample_weight)
    j = _feature_index(feature, n_features, estimator.fit_intercept)
    beta_hat = score.solve(beta0)
    cov = score.sandwich(beta_hat)
    free = np.arange(beta_hat.shape[0]) != j
    slope = cov[free, j] / cov[j, j] if cov[j, j] > 0 else np.zeros(free.sum())
    theta = beta_hat[free] + slope * (float(value) - beta_hat[j])
    fval, *_ = _profile(score, j, float(value), theta, None)
    statistic = max(2.0 * fval, 0.0)
    return float(statistic), float(chi2.sf(statistic, 1))
