"""The DRO fits behind the generalized-EL bounds on an optimal value.

The upper bound's saddle-point gap (a weighted ERM solve by the linear
engine's ``solve_certified``) and the lower bound's local optimistic fit.
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning

from skrobust.ambiguity import check_ambiguity
from skrobust.inference._gel_risk import _certified_risk

#: relative tolerance and iteration cap of the certified weighted-ERM solve
#: behind that gap's lower bound
ERM_TOL = 1e-9
ERM_MAX_ITER = 2000


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
