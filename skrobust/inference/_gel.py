"""Generalized empirical likelihood bounds through f-divergence balls.

Duchi, Glynn and Namkoong show that the robust risk over an f-divergence ball
of radius ``chi2_{1, 1-a} / (2 n)`` (in the convention ``f''(1) = 1`` used by
:mod:`skrobust.ambiguity`) is an asymptotically exact upper confidence bound
for a population risk, and the optimistic counterpart a lower bound.
"""

import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from skrobust.ambiguity import ambiguity_constraint
from skrobust.inference._gel_fit import (  # noqa: F401 (re-exported)
    ERM_MAX_ITER,
    ERM_TOL,
    _dro_parts,
    _fit_gap,
    _optimistic_value,
    _weighted_erm_value,
)
from skrobust.inference._gel_risk import (  # noqa: F401 (re-exported)
    FIT_GAP_TOL,
    GAP_TOL,
    _certified_risk,
    _divergence,
    _divergence_set,
    _gel_radius,
    _warn_gap,
)
from skrobust.inference._result import CertifiedInterval
from skrobust.inference._validation import (
    check_frequency_weights,
    level_constraint,
    resolve_level,
)
from skrobust.utils._conventions import DEPRECATED
from skrobust.utils._validation import check_losses

#: the ``ambiguity`` constraint of every generalized-EL function
AMBIGUITY = ambiguity_constraint(shortcuts={"chi2", "kl"})


@validate_params(
    {
        "losses": ["array-like"],
        **level_constraint(),
        "sample_weight": ["array-like", None],
        "ambiguity": AMBIGUITY,
        "sided": [StrOptions({"two-sided", "upper", "lower"})],
    },
    prefer_skip_nested_validation=True,
)
def gel_risk_interval(
    losses,
    confidence_level=0.95,
    *,
    sample_weight=None,
    ambiguity="chi2",
    sided="two-sided",
    confidence=DEPRECATED,
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
    confidence_level : float, default=0.95
        Nominal coverage (SciPy's name).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights; the radius uses ``n = sum(weights)``.
    ambiguity : {"chi2", "kl"} or AmbiguitySet, default="chi2"
        The f-divergence ball: ``ChiSquare``, ``CressieRead`` or ``KL`` from
        :mod:`skrobust.ambiguity` (its radius is replaced). All have
        :math:`f''(1) = 1`, so the same radius applies.
    sided : {"two-sided", "upper", "lower"}, default="two-sided"
        Which bounds to return; the missing side is infinite.

    confidence : float, default="deprecated"
        The old name of ``confidence_level``; it wins when given, with a
        ``FutureWarning``, and will be removed in the next release.

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
    >>> lower, upper = gel_risk_interval(losses, confidence_level=0.95)
    >>> bool(lower < losses.mean() < upper)
    True
    """
    confidence = resolve_level(confidence_level, confidence, "gel_risk_interval")
    losses = check_losses(losses)
    w = check_frequency_weights(sample_weight, losses.shape[0])
    n = float(losses.shape[0] if w is None else w.sum())
    ball = _divergence_set(ambiguity, _gel_radius(confidence, sided, n))
    p = None if w is None else w / n  # None: uniform, no array
    if p is None:
        tol = GAP_TOL * float(np.ptp(losses))
    else:
        on = p > 0
        span = np.max(losses, where=on, initial=-np.inf) - np.min(
            losses, where=on, initial=np.inf
        )
        tol = GAP_TOL * float(span)
        del on
    lower, upper, low_gap, high_gap = -np.inf, np.inf, 0.0, 0.0
    if sided in ("two-sided", "upper"):
        upper, high_gap, _ = _certified_risk(ball, losses, p, weights=False)
        _warn_gap(high_gap, tol, "upper bound")
    if sided in ("two-sided", "lower"):
        neg, low_gap, _ = _certified_risk(ball, losses, p, sign=-1.0, weights=False)
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
        **level_constraint(),
        "sample_weight": ["array-like", None],
        "ambiguity": AMBIGUITY,
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
    confidence_level=0.95,
    sample_weight=None,
    ambiguity="chi2",
    sided="two-sided",
    confidence=DEPRECATED,
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
    confidence_level : float, default=0.95
        Nominal coverage (SciPy's name).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights.
    ambiguity : {"chi2", "kl"} or AmbiguitySet, default="chi2"
        The f-divergence ball (see :func:`gel_risk_interval`).
    sided : {"two-sided", "upper", "lower"}, default="two-sided"
        Which bounds to return; the missing side is infinite.

    confidence : float, default="deprecated"
        The old name of ``confidence_level``; it wins when given, with a
        ``FutureWarning``, and will be removed in the next release.

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
    confidence_level = resolve_level(
        confidence_level, confidence, "gel_model_risk_interval"
    )
    check_is_fitted(estimator)
    losses = _per_sample_losses(estimator, X, y, loss)
    return gel_risk_interval(
        losses,
        confidence_level,
        sample_weight=sample_weight,
        ambiguity=ambiguity,
        sided=sided,
    )


@validate_params(
    {
        "estimator": [HasMethods(["fit", "set_params"])],
        "X": ["array-like"],
        "y": ["array-like"],
        **level_constraint(),
        "sample_weight": ["array-like", None],
        "sided": [StrOptions({"two-sided", "upper", "lower"})],
    },
    prefer_skip_nested_validation=True,
)
def gel_optimal_value_interval(
    estimator,
    X,
    y,
    *,
    confidence_level=0.95,
    sample_weight=None,
    sided="two-sided",
    confidence=DEPRECATED,
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
    confidence_level : float, default=0.95
        Nominal coverage (SciPy's name).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights; the radius uses their sum.
    sided : {"two-sided", "upper", "lower"}, default="two-sided"
        Which bounds to compute; the missing side is infinite.

    confidence : float, default="deprecated"
        The old name of ``confidence_level``; it wins when given, with a
        ``FutureWarning``, and will be removed in the next release.

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
    confidence = resolve_level(
        confidence_level, confidence, "gel_optimal_value_interval"
    )
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
