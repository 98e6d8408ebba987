"""The DRO layer of the boosting loop: a thin layer over the ambiguity protocol.

Each round's gradients are reweighted by the worst-case weights of the
ambiguity set (:meth:`~skrobust.ambiguity.AmbiguitySet.risk_and_weights`, or
the gradient of its smoothed dual at the set's own exact dual solve
:meth:`~skrobust.ambiguity.AmbiguitySet.dual_argmin`), and the trees start at
the constant score of least robust risk, solved by the certified linear engine
(:func:`skrobust.linear_model._solver.solve_certified`) as an intercept-only
linear model. No dual is derived here.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skrobust.linear_model._solver import _Problem, solve_certified

# losses closer than this (relative to their scale) count as tied when the
# boosting weights are computed
_TIE_TOL = 1e-6


def _snap_ties(losses):
    """Round losses to a grid of ``_TIE_TOL`` times their scale.

    At the robust starting constant of a classifier the per-class losses are
    equal up to the solver's precision; without snapping, a set whose worst
    case sits on the largest losses (CVaR, a large chi-square radius) would
    put all its weight on one class, where no split has any gain. Tied losses
    share the worst-case mass in proportion to their nominal weights.
    """
    step = _TIE_TOL * max(1.0, float(np.max(np.abs(losses))))
    return np.round(losses / step) * step


# softplus temperature, relative to the spread of the losses, of the dual of
# sets whose dual has a kink (CVaR)
_SMOOTHING = 0.3


def _boosting_weights(ambiguity, losses, weight):
    """Robust risk and the weights that multiply the gradients of a round.

    Smooth sets give their exact worst-case weights. For a set with a kinked
    dual (CVaR) the exact weights jump between ``1/alpha`` and 0 as a loss
    crosses the value at risk, and Newton steps on them oscillate; we use the
    gradient of the set's softplus-smoothed dual
    (:meth:`~skrobust.ambiguity.AmbiguitySet.dual_objective` with
    ``smoothing``) at its minimizer over the dual variable, which the set
    solves itself (:meth:`~skrobust.ambiguity.AmbiguitySet.dual_argmin`, to
    machine precision), at a temperature of ``_SMOOTHING`` times the standard
    deviation of the losses.
    """
    risk, q = ambiguity.risk_and_weights(losses, weight)
    if not ambiguity.needs_smoothing or ambiguity.is_trivial():
        return risk, q
    p = weight / weight.sum()
    tau = _SMOOTHING * float(np.sqrt(p @ (losses - p @ losses) ** 2))
    if tau <= 0:
        return risk, q
    start = ambiguity.dual_init(losses, weight)
    eta = ambiguity.dual_argmin(losses, p, smoothing=tau, start=start)
    _, smooth_q, _ = ambiguity.dual_objective(eta, losses, p, smoothing=tau)
    return risk, smooth_q / smooth_q.sum()


# the robust starting constant: relative duality gap and iterations of the
# certified engine (an intercept-only problem of n_outputs unknowns)
_INIT_TOL = 1e-8
_INIT_MAX_ITER = 1000


def _robust_constant(ambiguity, loss, target, weight, start):
    """The constant raw score of least robust risk (an intercept-only model).

    Solved by the linear engine's certified loop on one constant feature
    (its coefficients are the constant scores; a column of ones rather than
    an intercept, so that the engine's exact conic fallback applies when
    L-BFGS is not certified). The constant only starts the trees: when the
    engine cannot certify it (its ConvergenceWarning is caught), the better
    of its answer and ``start`` by robust risk is kept.

    Parameters
    ----------
    ambiguity : AmbiguitySet
        A validated, non-trivial ambiguity set.
    loss : object
        A loss of :mod:`skrobust.linear_model._losses` (the engine's).
    target : ndarray of shape (n_samples,)
        The target encoded for ``loss``.
    weight : ndarray of shape (n_samples,)
        Nonnegative sample weights with a positive sum.
    start : ndarray of shape (n_outputs,)
        The average-risk constant, the fallback.

    Returns
    -------
    init : ndarray of shape (n_outputs,)
    """
    n = target.shape[0]
    ones = np.ones((n, 1))
    problem = _Problem(ones, target, weight / weight.sum(), loss, ambiguity, 0.0, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        coef, _, _, info = solve_certified(problem, _INIT_TOL, _INIT_MAX_ITER)
    init = np.asarray(coef, dtype=np.float64).ravel()
    if info["certified"]:
        return init

    def robust_risk(c):
        return ambiguity.risk(problem.losses(c[None, :], None), weight)

    return init if robust_risk(init) <= robust_risk(start) else start
