"""Empirical likelihood intervals for coefficients of linear and logistic models."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.stats import chi2
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils._param_validation import validate_params

from skrobust.inference._coef_score import (
    _feature_index,
    _perfect_fit_warning,
    _rounding_radius,
    _setup,
)
from skrobust.inference._validation import level_constraint, resolve_level
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression
from skrobust.utils._conventions import DEPRECATED

MAX_ITER = 100
#: relative tolerance on the Newton decrement of the nuisance profile
PROFILE_TOL = 1e-10
#: steps of the path from the fit along which el_coef_test follows the basin
CONTINUATION_STEPS = 8
#: passes over the data (dual and profile evaluations) for one endpoint or test
MAX_EVALUATIONS = 5000
EPS = np.finfo(np.float64).eps


class _Budget(Exception):
    """Raised inside a profile search when its evaluation budget is spent."""


class _Unbounded(Exception):
    """Raised when the profile search starts where the inner dual is unbounded."""


def _profile(score, j, b, theta, lam, budget):
    """Minimize over the free coefficients ``theta`` with ``beta_j = b``.

    Newton's method on the profiled objective ``F(theta) = max_lam l`` with
    the Schur-complement Hessian ``H_bb - H_bl H_ll^-1 H_lb`` (implicit
    differentiation through the inner maximizer), damped by a backtracking
    line search and a Levenberg shift when that Hessian is not positive
    definite. Returns ``(F, theta, lam, dF/db, decrement, S)``; the Newton
    decrement ``g' S^-1 g`` is the certificate of the minimization (above
    its tolerance when the search stalled), ``S`` the Schur-complement
    Hessian at the last iterate. It does not warn: :func:`_best_profile`
    does, for the start it keeps.
    """
    free = np.arange(score.design.p) != j

    def evaluate(theta, lam):
        if score.evaluations >= budget:
            raise _Budget
        beta = np.empty(score.design.p)
        beta[free] = theta
        beta[j] = b
        return score.profile_parts(beta, lam)

    parts = evaluate(theta, lam)
    if not np.isfinite(parts[0]):
        # the guess cannot balance the equations; try the unconditional fit
        theta = score.beta_hat[free]
        parts = evaluate(theta, None)
        if not np.isfinite(parts[0]):
            raise _Unbounded
    decrement = np.inf
    for _ in range(MAX_ITER):
        value, lam, grad, H_ll, H_lb, H_bb = parts
        if not free.any():
            return value, theta, lam, grad[j], 0.0, np.zeros((0, 0))
        g_free = grad[free]
        try:
            H_ll_inv_H_lb = np.linalg.solve(H_ll, H_lb[:, free])
        except LinAlgError:
            H_ll_inv_H_lb = np.linalg.lstsq(H_ll, H_lb[:, free], rcond=None)[0]
        S = H_bb[np.ix_(free, free)] - H_lb[:, free].T @ H_ll_inv_H_lb
        if not np.all(np.isfinite(S)):
            raise ValueError(
                f"The empirical-likelihood profile of coefficient {j} is not "
                f"finite at {b:.6g}: with {score.design.n} samples for "
                f"{score.design.p} coefficients the estimating equations "
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
        if decrement <= PROFILE_TOL * max(1.0, abs(value)):
            # quadratic convergence: one more full step reaches rounding level
            lam_guess = lam - H_ll_inv_H_lb @ step
            final = evaluate(theta + step, lam_guess)
            if np.isfinite(final[0]):
                theta = theta + step
                value, lam, grad = final[:3]
            return value, theta, lam, grad[j], decrement, S
        t = 1.0
        while True:
            trial = theta + t * step
            lam_guess = lam - t * (H_ll_inv_H_lb @ step)
            new = evaluate(trial, lam_guess)
            if not np.isfinite(new[0]):
                # rejected outright: the equations cannot be balanced there
                t *= 0.5
                if t < 1e-10:
                    trial, new = theta, parts
                    break
                continue
            if new[0] <= value - 1e-4 * t * decrement:
                break
            t *= 0.5
            if t < 1e-10:
                trial, new = theta, parts
                break
        if trial is theta:
            # no descent at rounding level: the search stalls; stop
            break
        theta, parts = trial, new
    value, lam, grad = parts[0], parts[1], parts[2]
    return value, theta, lam, grad[j], decrement, S


def _best_profile(score, j, b, starts, lam, budget):
    """:func:`_profile` from several starts; the lowest local minimum wins.

    At small ``n`` the profiled objective need not be convex in the free
    coefficients: it can have two basins (seed 373, ``n = 11``: minima 3.32
    and 4.10 of ``2 F`` in the intercept at slope 0.555), and Newton's
    method from one start finds the basin it starts in. The profile is a
    minimum, so the lowest value over the starts is the better (never a
    worse) approximation of it. A start inside the unit Dikin ellipsoid
    ``delta' S delta <= 1`` of a minimizer already found (always the case
    at large ``n``, where the objective is nearly quadratic) is skipped.
    Warns when the kept start's Newton decrement fails its tolerance.
    """
    best = None
    for theta0 in starts:
        if best is not None and best[5].size:
            delta = theta0 - best[1]
            if float(delta @ best[5] @ delta) <= 1.0:
                continue
        try:
            result = _profile(score, j, b, theta0, lam, budget)
        except _Unbounded:
            continue
        if best is None or result[0] < best[0]:
            best = result
    if best is None:
        raise _Unbounded
    value, decrement = best[0], best[4]
    if decrement > PROFILE_TOL * max(1.0, abs(value)):
        warnings.warn(
            "Profiling the nuisance coefficients did not converge: the Newton "
            f"decrement (the certificate) is {decrement:.3g}, above the "
            f"tolerance {PROFILE_TOL * max(1.0, abs(value)):.3g}.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return best[:5]


def _starts(beta_hat, free, slope, shift):
    """Starts of the nuisance profile at ``beta_j = beta_hat_j + shift``.

    The conditional (Wald) guess ``theta_hat + slope * shift`` and the
    unconditional fit ``theta_hat``.
    """
    return [beta_hat[free] + slope * shift, beta_hat[free]]


def _continuation(score, j, beta_hat, slope, b, budget, steps=CONTINUATION_STEPS):
    """Free coefficients followed from the fit to ``beta_j = b`` in ``steps``.

    Each step profiles from the previous step's minimizer (shifted along the
    Wald slope), so the basin of the fit is followed as :func:`_endpoint`
    follows it; the result starts the final profile at ``b``. ``None`` when
    the path leaves the region the data support before reaching ``b``.
    """
    free = np.arange(beta_hat.shape[0]) != j
    theta, lam, last = beta_hat[free], None, beta_hat[j]
    for b_s in np.linspace(beta_hat[j], b, steps + 1)[1:-1]:
        try:
            result = _profile(score, j, b_s, theta + slope * (b_s - last), lam, budget)
        except _Unbounded:
            return None
        theta, lam, last = result[1], result[2], b_s
    return theta + slope * (b - last)


def _endpoint(score, j, beta_hat, cov, threshold, side):
    """Endpoint of ``{b : 2 F(b) <= threshold}`` on one side of ``beta_hat``.

    A monotone root-find on ``phi(b) = sqrt(2 F(b))`` (nearly linear in
    ``b``), whose derivative comes from the envelope theorem, ``d(2F)/db = 2
    dl/dbeta_j``: Newton steps inside a bracket that shrinks (or, before an
    upper bracket is known, widens from the Wald endpoint), bisection as the
    safeguard. At most ``MAX_EVALUATIONS`` inner solves are spent; past that
    a ConvergenceWarning gives the bracket reached.
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
    bracket_tol = max(4.0 * EPS * (abs(beta_hat[j]) + se), 1e-11 * se)
    budget = score.evaluations + MAX_EVALUATIONS
    phi = np.nan
    # the free coefficients at the last distance found inside the set: the
    # continuation start, which follows the basin of the fit along the path
    theta_lo = beta_hat[free]
    try:
        for _ in range(MAX_ITER):
            b = beta_hat[j] + side * t
            starts = _starts(beta_hat, free, slope, side * t)
            starts.insert(0, theta_lo + slope * (side * (t - lo)))
            try:
                value, theta, lam, dvalue, _ = _best_profile(
                    score, j, b, starts, lam, budget
                )
            except _Unbounded:
                # beyond the region the data support: the statistic is inf,
                # and the endpoint is where that region ends
                hi, lam, phi = t, None, np.inf
                t = 0.5 * (lo + hi)
                if hi - lo <= bracket_tol:
                    return beta_hat[j] + side * lo
                continue
            stat = max(2.0 * value, 0.0)
            phi = np.sqrt(stat)
            if phi < target:
                lo, theta_lo = t, theta
            else:
                hi = t
            dphi = side * dvalue / phi if phi > 0 else 0.0
            new = t - (phi - target) / dphi if dphi > 0 else np.nan
            if lo < new < hi and abs(new - t) <= 1e-7 * se:
                # Newton's error after this step is O(step^2 / se) < 1e-14 se
                return beta_hat[j] + side * new
            if not lo < new < hi:
                new = 0.5 * (lo + hi) if np.isfinite(hi) else 2.0 * max(t, lo)
            if np.isfinite(hi) and hi - lo <= bracket_tol:
                # a bracket this narrow: the statistic jumps across the
                # threshold here (the edge of the region the data support
                # at tiny n) or the root is found to rounding
                return beta_hat[j] + side * (lo if phi == np.inf else new)
            t = new
    except _Budget:
        pass
    warnings.warn(
        "The empirical-likelihood interval endpoint did not converge within "
        f"{MAX_EVALUATIONS} passes over the data: the endpoint is bracketed by "
        f"distances [{lo:.6g}, {hi:.6g}] from the estimate (in units of the "
        f"column-scaled design), and sqrt(W) - sqrt(threshold) = "
        f"{phi - target:.3g} at the value returned.",
        ConvergenceWarning,
        stacklevel=3,
    )
    return beta_hat[j] + side * (hi if np.isfinite(hi) else t)


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
        **level_constraint(),
        "sample_weight": ["array-like", None],
        "features": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def el_coef_interval(
    estimator,
    X,
    y,
    *,
    confidence_level=0.95,
    sample_weight=None,
    features=None,
    confidence=DEPRECATED,
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
    confidence_level : float, default=0.95
        Nominal coverage of each interval (not simultaneous; SciPy's name).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).
    features : array-like of int or "intercept", default=None
        Coefficients to compute intervals for, as indices into ``coef_``, or
        ``"intercept"``. ``None`` means every entry of ``coef_``.
    confidence : float, default="deprecated"
        The old name of ``confidence_level``; it wins when given, with a
        ``FutureWarning``, and will be removed in the next release.

    Returns
    -------
    intervals : ndarray of shape (n_selected, 2)
        Lower and upper endpoints, one row per selected coefficient, in the
        units of ``X`` and ``y``.

    Raises
    ------
    ValueError
        If the design (with the intercept column) is rank deficient: the
        message names the collinear columns and one combination of them
        that vanishes, or numerically so (condition number above ``6.7e7``
        after scaling the columns, where the squared systems the statistic
        needs keep no significant digit). Also when there are no more
        samples with positive weight than coefficients.

    Warns
    -----
    UserWarning
        On a perfect least-squares fit (zero-width intervals, see Notes), a
        nearly perfect one (the number of significant digits the residuals
        carry), or an ill-conditioned design (condition number above
        ``1e4`` after scaling the columns; the message estimates the digits
        left).
    ConvergenceWarning
        If an inner solve fails its certificate (the Newton decrement of the
        dual or of the nuisance profile) or an endpoint is not found within
        5000 passes over the data; the message gives the certificate or the
        bracket reached.

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
    :math:`W_j(b) = \\chi^2_{1, \\text{confidence\\_level}}` by a safeguarded Newton
    iteration on :math:`\\sqrt{W_j}`, whose derivative is given by the
    envelope theorem. The intervals are centered on the unpenalized fit and
    use no variance estimate; their length adapts to heteroscedasticity.

    The statistic is invariant under rescaling of the columns of ``X`` and
    of ``y``, so the computation runs on columns (and a least-squares
    target) scaled to unit maximum, with coefficients measured from the fit,
    and maps back: the intervals are equivariant from ``1e-150`` to
    ``1e150``, and the design is only touched through products and
    blockwise Gram matrices (peak memory at most about 3 times ``X``,
    mostly the scaled copy of the target).

    *Perfect fits.* When the least-squares residuals are zero up to
    rounding, every :math:`g_i(\\hat\\beta) = 0`, while for any other
    :math:`\\beta` the values :math:`g_i(\\beta) = x_i x_i^\\top (\\hat\\beta -
    \\beta)` satisfy :math:`\\sum_i p_i (\\hat\\beta - \\beta)^\\top g_i(\\beta)
    > 0` for every positive reweighting :math:`p`, so the origin is outside
    their convex hull and :math:`W_j(b) = \\infty` for any
    :math:`b \\ne \\hat\\beta_j`. The confidence set at every level is then
    the single point :math:`\\hat\\beta_j`, returned as a zero-width
    interval, with a warning.

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
    confidence = resolve_level(confidence_level, confidence, "el_coef_interval")
    score, n_features, beta0, units = _setup(estimator, X, y, sample_weight)
    if features is None:
        features = list(range(n_features))
    else:
        features = list(np.ravel(np.asarray(features, dtype=object)))
    index = [_feature_index(f, n_features, estimator.fit_intercept) for f in features]
    beta_hat = score.solve(beta0)
    intervals = np.empty((len(index), 2))
    if score.perfect_fit:
        _perfect_fit_warning(
            "Each interval is the fitted coefficient itself (zero width)."
        )
        intervals[:] = (beta_hat * units)[index, None]
        return intervals
    beta_hat = score.beta_hat = score.recenter(beta_hat)
    cov = score.sandwich(beta_hat)
    threshold = chi2.ppf(confidence, 1)
    for row, j in enumerate(index):
        intervals[row, 0] = _endpoint(score, j, beta_hat, cov, threshold, -1.0)
        intervals[row, 1] = _endpoint(score, j, beta_hat, cov, threshold, 1.0)
        intervals[row] += score.center[j]
        intervals[row] *= units[j]
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
        Hypothesized value of that coefficient; finite.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).

    Returns
    -------
    statistic : float
        Profile statistic :math:`W_j(\\text{value})`, the other coefficients
        profiled out. ``inf`` when no coefficients with this value balance
        the estimating equations (the inner dual is unbounded, with a
        warning), and, for a perfect least-squares fit, ``inf`` unless
        ``value`` is the fitted coefficient up to rounding (then ``0``); see
        the Notes of :func:`el_coef_interval`.
    pvalue : float
        Upper tail of the chi-square distribution with one degree of freedom.

    Warns
    -----
    UserWarning
        On a perfect least-squares fit, a nearly perfect one, an
        ill-conditioned design, or an unbounded inner dual (as in
        :func:`el_coef_interval`).
    ConvergenceWarning
        If an inner solve fails its certificate: the squared Newton
        decrement of the dual, or the Newton decrement of the nuisance
        profile (the message gives it and its tolerance).

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
    if not np.isfinite(value):
        raise ValueError(f"value must be a finite number; got {value!r}.")
    score, n_features, beta0, units = _setup(estimator, X, y, sample_weight)
    j = _feature_index(feature, n_features, estimator.fit_intercept)
    beta_hat = score.solve(beta0)
    b = float(value) / units[j]
    if score.perfect_fit:
        _perfect_fit_warning(
            "The statistic is 0 when value equals the fitted coefficient up to "
            "rounding and inf otherwise."
        )
        if abs(b - beta_hat[j]) <= _rounding_radius(score, beta_hat, j):
            return 0.0, 1.0
        return np.inf, 0.0
    beta_hat = score.beta_hat = score.recenter(beta_hat)
    b -= score.center[j]
    cov = score.sandwich(beta_hat)
    free = np.arange(beta_hat.shape[0]) != j
    slope = cov[free, j] / cov[j, j] if cov[j, j] > 0 else np.zeros(free.sum())
    starts = _starts(beta_hat, free, slope, b - beta_hat[j])
    # and the Wald guess moved two conditional standard errors either way
    # along each free coefficient: a single test can afford a few more
    # starts, which find a lower basin far from the fit (at n ~ 12 a
    # nuisance objective can have two)
    if cov[j, j] > 0:
        cond = (
            cov[np.ix_(free, free)] - np.outer(cov[free, j], cov[free, j]) / cov[j, j]
        )
        spread = 2.0 * np.sqrt(np.clip(np.diag(cond), 0.0, None))
        for i in np.flatnonzero(spread > 0):
            for sign in (-1.0, 1.0):
                start = starts[0].copy()
                start[i] += sign * spread[i]
                starts.append(start)
    try:
        path = _continuation(score, j, beta_hat, slope, b, MAX_EVALUATIONS)
        if path is not None:
            starts.insert(0, path)
        fval = _best_profile(score, j, b, starts, None, MAX_EVALUATIONS)[0]
    except _Unbounded:
        warnings.warn(
            f"At value={value!r} the inner empirical-likelihood dual is "
            "unbounded (above 50 n) at the conditional and the unconditional "
            "fit of the other coefficients: the estimating equations cannot be "
            "balanced there, and the statistic is reported as inf.",
            UserWarning,
            stacklevel=2,
        )
        return np.inf, 0.0
    except _Budget:
        raise ValueError(
            f"The profile empirical likelihood at value={value!r} did not "
            f"converge within {MAX_EVALUATIONS} passes over the data; the value is "
            "probably far outside the region the data can support."
        ) from None
    statistic = max(2.0 * fval, 0.0)
    return float(statistic), float(chi2.sf(statistic, 1))
