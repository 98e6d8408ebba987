"""The exact reference path: the linear DRO problem as a cvxpy conic program.

``solve_cvxpy`` states the problem with the ambiguity set's cvxpy form and
solves it by Clarabel (SCS as a fallback); ``_cvxpy_certificate`` certifies
the interior-point solution with the engine's own bound.
"""

import numpy as np

from skrobust.linear_model._certificate import _certificate, _objective_scale


def _clarabel_tol(tol):
    """Clarabel's gap tolerances for a fallback solve at tolerance ``tol``.

    A tenth of ``tol`` (so that its OPTIMAL status certifies ``tol``), at most
    Clarabel's default 1e-8 and at least 1e-11, about what an interior-point
    method resolves in float64.
    """
    return float(min(max(0.1 * tol, 1e-11), 1e-8))


def _cvxpy_certificate(problem, W, b, status, tol, scale):
    """Certificate of an interior-point solution.

    Clarabel stops at ``OPTIMAL`` once its primal-dual gap is below
    ``tol_gap_abs + tol_gap_rel * |objective|`` (both set by
    :func:`solve_cvxpy`); its primal objective is at least ours at the same
    coefficients (ours minimizes over the auxiliary variables exactly), so
    that is a duality gap for the coefficients. The Fenchel gap of
    :func:`_certificate` is computed too and the smaller one reported.
    """
    w = np.concatenate([W.ravel(), b if b is not None else np.empty(0)])
    w = np.concatenate([w, np.zeros(problem.n_dual)])
    cert = _certificate(problem, w, 0.0, tol, scale)
    if status == "optimal":
        clarabel_tol = _clarabel_tol(tol)
        declared = clarabel_tol * (scale + abs(cert["objective"]))
        if declared < cert["duality_gap"] or not np.isfinite(cert["duality_gap"]):
            cert["duality_gap"] = declared
            cert["lower_bound"] = cert["objective"] - declared
        cert["certified"] = cert["certified"] or declared <= cert["threshold"]
    return cert


def solve_cvxpy(problem, accurate=False):
    """Solve the same problem exactly with cvxpy (Clarabel, SCS as fallback).

    Returns ``(W, b, n_iter, status)`` with ``status`` cvxpy's ("optimal" or
    "optimal_inaccurate"). ``accurate``, a tolerance, sets Clarabel's gap
    tolerances to ``_clarabel_tol(accurate)`` (used when it backs up L-BFGS).
    """
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
    if problem.trivial:
        risk, constraints = problem.p @ loss_expr, []
    else:
        risk, constraints = problem.ambiguity.cvxpy_risk(loss_expr, problem.p)
    if problem.coef_penalty is not None:
        risk = risk + problem.coef_penalty.cvxpy_penalty(
            W[:, 0], problem.loss.lipschitz
        )
    objective = risk + 0.5 * problem.alpha * cp.sum_squares(W)
    cvx_problem = cp.Problem(cp.Minimize(objective), constraints)
    status = None
    for solver in ("CLARABEL", "SCS"):
        options = {}
        if accurate and solver == "CLARABEL":
            scale = _objective_scale(problem)
            gap_tol = _clarabel_tol(accurate)
            options = dict(
                tol_gap_abs=gap_tol * scale,
                tol_gap_rel=gap_tol,
                tol_feas=gap_tol,
                max_iter=400,
            )
        try:
            cvx_problem.solve(solver=solver, **options)
        except cp.error.SolverError:
            continue
        status = cvx_problem.status
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            break
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or W.value is None:
        raise RuntimeError(
            f"cvxpy could not solve the DRO problem (status: {status}); "
            "use solver='lbfgs'."
        )
    stats = cvx_problem.solver_stats
    n_iter = int(stats.num_iters) if stats and stats.num_iters is not None else 0
    b_value = np.asarray(b.value, dtype=float) if b is not None else None
    return np.asarray(W.value, dtype=float), b_value, n_iter, status
