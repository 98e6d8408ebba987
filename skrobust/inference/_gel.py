"""Generalized empirical likelihood bounds through f-divergence balls.

Duchi, Glynn and Namkoong show that the robust risk over an f-divergence ball
of radius ``chi2_{1, 1-a} / (2 n)`` (in the convention ``f''(1) = 1`` used by
:mod:`skrobust.ambiguity`) is an asymptotically exact upper confidence bound
for a population risk, and the optimistic counterpart a lower bound.
"""

import warnings
from numbers import Real

import numpy as np
from scipy.optimize import minimize
from scipy.stats import chi2
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import check_is_fitted

from skrobust.ambiguity import KL, CressieRead, CVaR, check_ambiguity
from skrobust.inference._result import CertifiedInterval
from skrobust.inference._validation import check_frequency_weights
from skrobust.utils._validation import check_losses

#: duality gap of a bound over a fixed loss vector, relative to the loss range
GAP_TOL = 1e-9
#: duality gap of the DRO fit behind the optimal-value bound, relative to it
FIT_GAP_TOL = 1e-6
#: relative tolerance and iteration cap of the certified weighted-ERM solve
#: behind that gap's lower bound
ERM_TOL = 1e-9
ERM_MAX_ITER = 2000


def _gel_radius(confidence, sided, n):
    """Radius ``chi2_{1, level} / (2 n)`` in the ``f''(1) = 1`` convention.

    Two-sided bounds use the ``confidence`` quantile; a one-sided bound at
    level ``confidence`` uses the ``2 * confidence - 1`` quantile, since each
    side of the two-sided interval misses with probability ``(1 - a) / 2``
    asymptotically (Duchi, Glynn and Namkoong, 2021, Theorem 2).
    """
    if sided == "two-sided":
        level = confidence
    else:
        if confidence <= 0.5:
            raise ValueError(
                f"confidence must be > 0.5 for a one-sided bound; got {confidence}."
            )
        level = 2.0 * confidence - 1.0
    return float(chi2.ppf(level, 1)) / (2.0 * n)


def _divergence_set(ambiguity, radius):
    ball = check_ambiguity(ambiguity)
    if isinstance(ball, CVaR) or "radius" not in ball.get_params():
        raise ValueError(
            "ambiguity must be an f-divergence ball with a radius (ChiSquare, "
            f"CressieRead or KL, or 'chi2' / 'kl'); got {ball!r}."
        )
    return ball.set_params(radius=radius)


def _divergence(ball, q, p):
    """``D_f(q || p)`` for the ball's ``f``; None when the ball is not known."""
    on = p > 0
    if isinstance(ball, KL):
        pos = q > 0
        return float(np.sum(q[pos] * np.log(q[pos] / p[pos])))
    if isinstance(ball, CressieRead):
        k = ball._k
        t = q[on] / p[on]
        if k == 2.0:
            f = 0.5 * (t - 1.0) ** 2
        else:
            f = (np.expm1(k * np.log(np.maximum(t, 1e-300))) - k * (t - 1.0)) / (
                k * (k - 1.0)
            )
            f = np.where(t > 0, f, 1.0 / k)
        return float(np.dot(p[on], f))
    return None


def _certified_risk(ball, losses, p):
    """Robust risk of ``losses`` under ``p`` with its duality gap.

    The exact solve of the ambiguity set is run on the losses rescaled to
    [0, 1] and checked there: the dual objective at the returned dual
    variable is an upper bound on the robust risk, and the expectation under
    a feasible distribution a lower bound. The worst-case weights ``q`` are
    moved toward ``p`` until feasible, ``p + t (q - p)`` with ``t = min(1,
    rho / D(q))`` (feasible since the divergence is convex and ``D(p) =
    0``). Returns ``(risk, gap, q_feasible)``, the gap in loss units: the
    exact risk is within ``gap`` of ``risk``. The gap is ``nan`` for a ball
    whose divergence is not known here.
    """
    on = p > 0
    lo, hi = losses[on].min(), losses[on].max()
    mean = float(np.dot(p, losses))
    if hi - lo <= 0 or ball.is_trivial():
        return mean, 0.0, p
    scale = hi - lo
    z = (losses - lo) / scale
    risk_z, q, dual = ball._exact(z, p)
    div = _divergence(ball, q, p)
    if div is None:
        gap_z = np.nan
        q_feasible = q
    else:
        radius = float(ball.radius)
        t = 1.0 if div <= radius else radius / div
        q_feasible = p + t * (q - p)
        primal = float(np.dot(q_feasible, z))
        dual_value = float(ball.dual_objective(np.asarray(dual), z, p)[0])
        gap_z = max(dual_value, risk_z) - min(primal, risk_z)
    risk = float(np.clip(lo + scale * risk_z, mean, hi))
    return risk, scale * gap_z, q_feasible


def _warn_gap(gap, tol, what):
    if gap > tol:
        warnings.warn(
            f"The {what} is not certified: its duality gap is {gap:.3g}, above "
            f"the tolerance {tol:.3g}.",
            ConvergenceWarning,
            stacklevel=3,
        )


@validate_params(
    {
        "losses": ["array-like"],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "ambiguity": [StrOptions({"chi2", "kl"}), HasMethods(["risk", "set_params"])],
        "sided": [StrOptions({"two-sided", "upper", "lower"})],
    },
    prefer_skip_nested_validation=True,
)
def gel_risk_interval(
    losses, confidence=0.95, *, sample_weight=None, ambiguity="chi2", sided="two-sided"
):
    """Generalized empirical likelihood confidence bounds for an expected loss.

    The upper bound is the worst-case expected loss over an f-divergence ball
    around the empirical distribution, the lower bound the best case, with
    the radius that makes them asymptotically exact confidence bounds.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses of a fixed model on data it was not fitted on (or
        any i.i.d. observations whose mean is the target).
    confidence : float, default=0.95
        Nominal coverage.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights; the radius uses ``n = sum(weights)``.
    ambiguity : {"chi2", "kl"} or AmbiguitySet, default="chi2"
        The f-divergence ball: ``ChiSquare``, ``CressieRead`` or ``KL`` from
        :mod:`skrobust.ambiguity` (its radius is replaced). All have
        :math:`f''(1) = 1`, so the same radius applies.
    sided : {"two-sided", "upper", "lower"}, default="two-sided"
        Which bounds to return; the missing side is infinite.

    Returns
    -------
    interval : CertifiedInterval
        The pair ``(lower, upper)`` (it unpacks as a tuple), with
        ``lower`` :math:`= -R_\\rho(-\\ell)` (``-inf`` when ``sided="upper"``)
        and ``upper`` :math:`= R_\\rho(\\ell)` (``inf`` when
        ``sided="lower"``). Its attributes ``low_gap`` and ``high_gap`` are
        the duality gaps of the two solves, in loss units: the exact bound
        lies within that distance of the reported one (``nan`` for a ball
        whose divergence is unknown here). A gap above ``tolerance`` (1e-9
        of the range of the losses) raises a ``ConvergenceWarning``.

    See Also
    --------
    gel_optimal_value_interval : Bounds for the optimal value of a model
        class, through a DRO fit.
    el_mean_interval : Exact empirical likelihood (Burg entropy) for a mean.

    Notes
    -----
    With :math:`R_\\rho(\\ell) = \\sup\\{E_Q[\\ell] : D_f(Q \\| P_n) \\le
    \\rho\\}` computed by the ambiguity set, the bounds are
    :math:`[-R_\\rho(-\\ell), R_\\rho(\\ell)]` with

    .. math::

        \\rho = \\frac{\\chi^2_{1, 1 - a}}{2 n}.

    Duchi, Glynn and Namkoong write the ball as :math:`D_f(Q \\| P_n) \\le
    \\rho' / n` with :math:`f''(1) = 2` (e.g. :math:`f(t) = (t-1)^2`) and
    :math:`\\rho' = \\chi^2_{1, 1-a}`; our :class:`~skrobust.ambiguity.ChiSquare`
    uses :math:`f(t) = (t-1)^2/2`, hence the factor 2. To first order
    :math:`R_\\rho(\\ell) = \\bar\\ell + \\sqrt{\\chi^2_{1,1-a}
    \\widehat{\\operatorname{Var}}(\\ell)/n}`, the Wald bound, with a skewness
    correction in the next term.

    References
    ----------
    .. [1] Duchi, J. C., Glynn, P. W. and Namkoong, H. (2021). "Statistics of
       robust optimization: a generalized empirical likelihood approach."
       Mathematics of Operations Research 46(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.inference import gel_risk_interval
    >>> losses = np.random.default_rng(0).exponential(size=500)
    >>> lower, upper = gel_risk_interval(losses, confidence=0.95)
    >>> bool(lower < losses.mean() < upper)
    True
    """
    losses = check_losses(losses)
    w = check_frequency_weights(sample_weight, losses.shape[0])
    n = float(losses.shape[0] if w is None else w.sum())
    ball = _divergence_set(ambiguity, _gel_radius(confidence, sided, n))
    p = np.full(losses.shape[0], 1.0 / losses.shape[0]) if w is None else w / n
    tol = GAP_TOL * float(np.ptp(losses[p > 0]))
    lower, upper, low_gap, high_gap = -np.inf, np.inf, 0.0, 0.0
    if sided in ("two-sided", "upper"):
        upper, high_gap, _ = _certified_risk(ball, losses, p)
        _warn_gap(high_gap, tol, "upper bound")
    if sided in ("two-sided", "lower"):
        neg, low_gap, _ = _certified_risk(ball, -losses, p)
        lower = -neg
        _warn_gap(low_gap, tol, "lower bound")
    return CertifiedInterval(lower, upper, low_gap, high_gap, tol)


def _per_sample_losses(estimator, X, y, loss):
    """Per-sample losses of a fitted model on (X, y)."""
    if callable(loss):
        values = np.asarray(loss(y, estimator.predict(X)), dtype=float)
        if values.shape != (np.shape(X)[0],):
            raise ValueError(
                "loss must return one value per sample, of shape "
                f"({np.shape(X)[0]},); got shape {values.shape}."
            )
        return values
    if loss == "log_loss":
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        column = np.searchsorted(estimator.classes_, y)
        if np.any(column >= len(estimator.classes_)) or np.any(
            estimator.classes_[np.minimum(column, len(estimator.classes_) - 1)] != y
        ):
            raise ValueError("y holds labels the estimator was not fitted on.")
        picked = proba[np.arange(proba.shape[0]), column]
        return -np.log(np.clip(picked, np.finfo(float).tiny, 1.0))
    pred = estimator.predict(X)
    if loss == "zero_one":
        return (np.asarray(pred) != np.asarray(y)).astype(float)
    resid = np.asarray(pred, dtype=float) - np.asarray(y, dtype=float)
    if loss == "squared_error":
        return resid * resid
    return np.abs(resid)


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "loss": [
            StrOptions({"squared_error", "absolute_error", "log_loss", "zero_one"}),
            callable,
        ],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "ambiguity": [StrOptions({"chi2", "kl"}), HasMethods(["risk", "set_params"])],
        "sided": [StrOptions({"two-sided", "upper", "lower"})],
    },
    prefer_skip_nested_validation=True,
)
def gel_model_risk_interval(
    estimator,
    X,
    y,
    *,
    loss="squared_error",
    confidence=0.95,
    sample_weight=None,
    ambiguity="chi2",
    sided="two-sided",
):
    """Generalized EL confidence bounds for a fitted model's population risk.

    Evaluates the per-sample ``loss`` of a fitted model on data it was not
    fitted on and returns :func:`gel_risk_interval` of those losses.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted scikit-learn compatible model (``predict_proba`` is needed
        for ``loss="log_loss"``).
    X : array-like of shape (n_samples, n_features)
        Held-out features.
    y : array-like of shape (n_samples,)
        Held-out targets.
    loss : {"squared_error", "absolute_error", "log_loss", "zero_one"} or \
            callable, default="squared_error"
        Per-sample loss, or ``loss(y_true, y_pred)`` returning one value per
        sample.
    confidence : float, default=0.95
        Nominal coverage.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights.
    ambiguity : {"chi2", "kl"} or AmbiguitySet, default="chi2"
        The f-divergence ball (see :func:`gel_risk_interval`).
    sided : {"two-sided", "upper", "lower"}, default="two-sided"
        Which bounds to return; the missing side is infinite.

    Returns
    -------
    lower : float
        Lower confidence bound of :math:`E[\\ell(f(X), Y)]`.
    upper : float
        Upper confidence bound: the worst-case risk over the ball.

    See Also
    --------
    gel_risk_interval : The same bounds from per-sample losses.

    Notes
    -----
    The model is held fixed (the randomness is in the evaluation sample), so
    the bounds are for the risk of this model, not of the training procedure.
    See :func:`gel_risk_interval` for the radius and its convention.

    References
    ----------
    .. [1] Duchi, J. C., Glynn, P. W. and Namkoong, H. (2021). "Statistics of
       robust optimization: a generalized empirical likelihood approach."
       Mathematics of Operations Research 46(3).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrobust.inference import gel_model_risk_interval
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 2))
    >>> y = (X[:, 0] + rng.logistic(size=1000) > 0).astype(int)
    >>> model = LogisticRegression().fit(X[:500], y[:500])
    >>> lower, upper = gel_model_risk_interval(
    ...     model, X[500:], y[500:], loss="zero_one"
    ... )
    >>> bool(0.0 <= lower < upper <= 1.0)
    True
    """
    check_is_fitted(estimator)
    losses = _per_sample_losses(estimator, X, y, loss)
    return gel_risk_interval(
        losses,
        confidence,
        sample_weight=sample_weight,
        ambiguity=ambiguity,
        sided=sided,
    )


def _dro_parts(model, X, y):
    """Loss object, encoded target and coefficients of a fitted DRO model."""
    from skrobust.linear_model._losses import _BinaryLogistic, _Multinomial

    if is_classifier(model):
        y_index = np.searchsorted(model.classes_, y)
        if model.classes_.shape[0] == 2:
            loss = _BinaryLogistic()
        else:
            loss = _Multinomial(model.classes_.shape[0])
        W = np.asarray(model.coef_, dtype=float).T
    else:
        loss = model._loss()
        y_index = np.asarray(y, dtype=float)
        W = np.asarray(model.coef_, dtype=float).reshape(-1, 1)
    b = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    return loss, loss.encode(y_index), W, b


def _unpacker(W0, fit_intercept):
    shape = W0.shape

    def unpack(v):
        W = v[: W0.size].reshape(shape)
        b = v[W0.size :] if fit_intercept else np.zeros(shape[1])
        return W, b

    return unpack


def _coef_gradient(X, G, alpha, W, fit_intercept):
    """Gradient in ``(W, b)`` of ``sum_i loss_i + alpha / 2 ||W||^2``, flat.

    ``G`` holds the (weighted) derivatives of the losses in the scores.
    """
    grad = [(X.T @ G + alpha * W).ravel()]
    if fit_intercept:
        grad.append(G.sum(axis=0))
    return np.concatenate(grad)


def _lbfgs_from(fun, W0, b0, fit_intercept, maxiter, ftol, gtol):
    """L-BFGS-B on ``fun`` (value and gradient) from the coefficients ``(W0, b0)``.

    Returns ``fun`` (value, gradient) at the end point, or at the start when
    that is lower (L-BFGS can end above it on a flat or kinked objective).
    """
    v0 = np.concatenate([W0.ravel(), b0 if fit_intercept else []])
    res = minimize(
        fun,
        v0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": maxiter, "ftol": ftol, "gtol": gtol},
    )
    start, end = fun(v0), fun(res.x)
    return start if start[0] < end[0] else end


def _optimistic_value(model, X, y, ball, p):
    """``min_theta -R(-loss(theta)) + penalty`` by L-BFGS from the ERM fit.

    The optimistic risk is not convex in the coefficients in general; the
    search starts at the ERM solution and returns a local minimum, which
    agrees with the global one to first order (the bound's width is
    ``n^-1/2``, the difference ``O(1/n)``). Returns the value and the
    largest absolute entry of its gradient there (the KKT residual).
    """
    loss, target, W0, b0 = _dro_parts(model, X, y)
    fit_intercept = model.fit_intercept
    alpha = float(model.alpha)
    unpack = _unpacker(W0, fit_intercept)

    def fun(v):
        W, b = unpack(v)
        Z = X @ W + b
        sample_loss, dZ = loss.value_grad(Z, target)
        risk, q = ball.risk_and_weights(-sample_loss, p)
        grad = _coef_gradient(X, dZ * q[:, None], alpha, W, fit_intercept)
        return -risk + 0.5 * alpha * float(np.sum(W * W)), grad

    value, grad = _lbfgs_from(fun, W0, b0, fit_intercept, 1000, 1e-15, 1e-10)
    return float(value), float(np.max(np.abs(grad), initial=0.0))


def _weighted_erm_value(loss, X, target, q, alpha, fit_intercept):
    """A lower bound on ``min_theta sum_i q_i loss_i(theta) + alpha / 2 ||W||^2``.

    Closed form (a weighted ridge least-squares solve) for the squared loss.
    Otherwise the linear engine's certified solve of that weighted ERM
    problem, whose Fenchel dual value is a lower bound by weak duality (not
    the primal value an iterative solve reaches, which is above the minimum
    by its suboptimality and would understate the gap); where the engine
    certifies by the KKT residual alone (a smooth loss without a ridge) its
    objective; ``-inf`` when it certifies neither.
    """
    from skrobust.linear_model._losses import _Squared
    from skrobust.linear_model._solver import _Problem, solve_certified

    if isinstance(loss, _Squared):
        sq = np.sqrt(q)
        A = X * sq[:, None]
        if fit_intercept:
            A = np.column_stack([A, sq])
        rhs = target * sq
        d = X.shape[1]
        if alpha > 0:
            ridge = np.zeros((d, A.shape[1]))
            ridge[:, :d] = np.sqrt(alpha) * np.eye(d)
            A = np.vstack([A, ridge])
            rhs = np.concatenate([rhs, np.zeros(d)])
        coef = np.linalg.lstsq(A, rhs, rcond=None)[0]
        resid = A @ coef - rhs
        # the ridge rows of the residual carry sqrt(alpha) W: 0.5 alpha ||W||^2
        return 0.5 * float(resid @ resid)
    problem = _Problem(
        X, target, q / q.sum(), loss, check_ambiguity("erm"), alpha, fit_intercept
    )
    with warnings.catch_warnings():
        # an uncertified inner solve shows as a large gap, which warns
        warnings.simplefilter("ignore", ConvergenceWarning)
        info = solve_certified(problem, ERM_TOL, ERM_MAX_ITER)[3]
    if np.isfinite(info["lower_bound"]):
        return float(info["lower_bound"])
    return float(info["objective"]) if info["certified"] else -np.inf


def _fit_gap(model, X, y, ball, p):
    """Saddle-point duality gap of a fitted DRO model over ``ball``.

    For any ``q`` in the ball, ``min_theta E_q[loss(theta)] + penalty`` is a
    lower bound on the optimal value (weak duality) and the robust objective
    at the fitted coefficients an upper bound; with ``q`` the (feasible)
    worst-case weights at the fit their difference bounds the fit's
    suboptimality. Returns ``(objective, gap)``.
    """
    loss, target, W, b = _dro_parts(model, X, y)
    alpha = float(model.alpha)
    sample_loss = loss.value(X @ W + b, target)
    risk, risk_gap, q = _certified_risk(ball, sample_loss, p)
    objective = risk + 0.5 * alpha * float(np.sum(W * W))
    lower = _weighted_erm_value(loss, X, target, q, alpha, model.fit_intercept)
    upper = max(objective, float(model.objective_))
    return objective, max(upper - lower, 0.0) + risk_gap


@validate_params(
    {
        "estimator": [HasMethods(["fit", "set_params"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "sided": [StrOptions({"two-sided", "upper", "lower"})],
    },
    prefer_skip_nested_validation=True,
)
def gel_optimal_value_interval(
    estimator, X, y, *, confidence=0.95, sample_weight=None, sided="two-sided"
):
    """Generalized EL confidence bounds for the optimal risk of a model class.

    For the stochastic optimization problem :math:`T(P) = \\min_\\theta
    E_P[\\ell(\\theta; X, Y)]` solved by a DRO linear model, the upper bound is
    the model's robust risk at the generalized-EL radius (a DRO fit) and the
    lower bound the optimistic risk at that radius.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    estimator : DROLinearRegression or DROLogisticRegression
        Template defining the loss, penalty and intercept; it is cloned and
        its ``ambiguity`` replaced by a chi-square ball of the right radius
        (or an f-divergence ball of the same kind as its own when that is a
        ``ChiSquare``, ``CressieRead`` or ``KL`` object).
    X : array-like of shape (n_samples, n_features)
        Data.
    y : array-like of shape (n_samples,)
        Targets.
    confidence : float, default=0.95
        Nominal coverage.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights; the radius uses their sum.
    sided : {"two-sided", "upper", "lower"}, default="two-sided"
        Which bounds to compute; the missing side is infinite.

    Returns
    -------
    interval : CertifiedInterval
        The pair ``(lower, upper)`` (it unpacks as a tuple):
        ``lower`` is :math:`\\min_\\theta \\inf_{Q} E_Q[\\ell(\\theta)]` over the
        ball (a local minimum from the ERM solution) and ``upper``
        :math:`\\min_\\theta \\sup_{Q} E_Q[\\ell(\\theta)]`, the ``objective_``
        of the DRO fit. ``high_gap`` is the saddle-point duality gap of that
        fit: with :math:`\\hat q` the worst-case weights at the fitted
        :math:`\\hat\\theta` (moved into the ball if rounding put them
        outside), :math:`\\min_\\theta E_{\\hat q}[\\ell(\\theta)]` + penalty is a
        lower bound on the optimum, so ``upper - high_gap`` is one too (the
        inner minimum is a closed form for the squared loss; otherwise it is
        bounded below by the Fenchel dual value of the linear engine's
        certified solve of that weighted problem, so the gap never
        understates the fit's suboptimality). The lower problem is not
        convex and has no global certificate: ``low_gap`` is its first-order
        KKT residual, the largest absolute entry of the gradient at the
        returned coefficients. Either above its tolerance (``1e-6 *
        max(1, |upper|)``, in ``tolerance``) raises a ``ConvergenceWarning``.

    See Also
    --------
    gel_risk_interval : Bounds for the risk of one fixed model.
    skrobust.linear_model.DROLinearRegression : The DRO fit behind the upper
        bound.

    Notes
    -----
    With :math:`\\rho = \\chi^2_{1,1-a}/(2n)` (convention :math:`f''(1) = 1`),
    Duchi, Glynn and Namkoong (2021) show

    .. math::

        P\\Big(\\min_\\theta \\inf_{D_f(Q\\|P_n) \\le \\rho} E_Q \\ell(\\theta)
        \\le T(P) \\le \\min_\\theta \\sup_{D_f(Q\\|P_n) \\le \\rho}
        E_Q \\ell(\\theta)\\Big) \\to 1 - a

    when the population minimizer is unique. The lower problem is not convex
    in general; it is solved locally from the ERM coefficients.

    References
    ----------
    .. [1] Duchi, J. C., Glynn, P. W. and Namkoong, H. (2021). "Statistics of
       robust optimization: a generalized empirical likelihood approach."
       Mathematics of Operations Research 46(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.linear_model import DROLinearRegression
    >>> from skrobust.inference import gel_optimal_value_interval
    >>> rng = np.random.default_rng(2)
    >>> X = rng.normal(size=(300, 2))
    >>> y = X @ np.array([1.0, -1.0]) + rng.normal(size=300)
    >>> lower, upper = gel_optimal_value_interval(DROLinearRegression(), X, y)
    >>> round(lower, 3), round(upper, 3)
    (0.419, 0.584)
    >>> # the optimal half squared error is Var(noise) / 2 = 0.5
    >>> bool(lower < 0.5 < upper)
    True
    """
    if "ambiguity" not in estimator.get_params():
        raise TypeError(
            "estimator must be a DRO model with an 'ambiguity' parameter, such "
            "as skrobust.linear_model.DROLinearRegression or "
            f"DROLogisticRegression; got {type(estimator).__name__}."
        )
    n_rows = np.shape(X)[0]
    if n_rows == 0:
        raise ValueError("X has 0 samples; at least one sample is required.")
    w = check_frequency_weights(sample_weight, n_rows)
    n = float(n_rows if w is None else w.sum())
    radius = _gel_radius(confidence, sided, n)
    own = estimator.get_params().get("ambiguity", "chi2")
    try:
        ball = _divergence_set(own, radius)
    except (ValueError, TypeError):
        ball = _divergence_set("chi2", radius)
    lower, upper, low_gap, high_gap = -np.inf, np.inf, 0.0, 0.0
    p = np.full(n_rows, 1.0 / n_rows) if w is None else w / w.sum()
    tol = 0.0
    if sided in ("two-sided", "upper"):
        model = clone(estimator).set_params(ambiguity=ball)
        model.fit(X, y, sample_weight=w)
        upper = float(model.objective_)
        X_arr = np.asarray(X, dtype=np.float64)
        y_arr = np.asarray(y) if is_classifier(model) else np.asarray(y, dtype=float)
        _, high_gap = _fit_gap(model, X_arr, y_arr, ball, p)
        tol = FIT_GAP_TOL * max(1.0, abs(upper))
        _warn_gap(high_gap, tol, "upper bound (the DRO fit)")
    if sided in ("two-sided", "lower"):
        erm = clone(estimator).set_params(ambiguity="erm").fit(X, y, sample_weight=w)
        check_is_fitted(erm)
        X_arr = np.asarray(X, dtype=np.float64)
        y_arr = np.asarray(y) if is_classifier(erm) else np.asarray(y, dtype=float)
        lower, low_gap = _optimistic_value(erm, X_arr, y_arr, ball, p)
        tol = max(tol, FIT_GAP_TOL * max(1.0, abs(lower)))
        if low_gap > tol:
            warnings.warn(
                "The lower bound's local solve did not reach a stationary "
                f"point: its KKT residual (largest gradient entry) is "
                f"{low_gap:.3g}, above the tolerance {tol:.3g}.",
                ConvergenceWarning,
                stacklevel=2,
            )
    return CertifiedInterval(lower, upper, low_gap, high_gap, tol)
