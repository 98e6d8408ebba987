"""The exact reference path: the linear DRO problem as a cvxpy conic program.

``solve_cvxpy`` states the problem with the ambiguity set's cvxpy form and
solves it by Clarabel (SCS as a fallback); ``_cvxpy_certificate`` certifies
the interior-point solution with the engine's own bound.
"""

import numpy as np

from skrobust.linear_model._certificate import (
    _certificate,
    _objective_scale,
    _with_lower_bound,
)
from skrobust.linear_model._fenchel import _fenchel_lower, _fenchel_lower_multi
from skrobust.linear_model._heads import _into_set


def _clarabel_tol(tol):
    """Clarabel's gap tolerances for a fallback solve at tolerance ``tol``.

    A tenth of ``tol`` (so that its OPTIMAL status certifies ``tol``), at most
    Clarabel's default 1e-8 and at least 1e-11, about what an interior-point
    method resolves in float64.
    """
    return float(min(max(0.1 * tol, 1e-11), 1e-8))


def _cvxpy_certificate(problem, W, b, status, tol, scale, weights=None):
    """Certificate of an interior-point solution, proven by the engine's bounds.

    Clarabel's declared gap is not trusted (it holds only up to its
    feasibility tolerance: fits 2e-6 and 7e-6 relative above the optimum
    were certified by it). The objective is evaluated exactly at ``(W,
    b)`` and the lower bound is the engine's own Fenchel bound, from the
    dual points of :func:`_certificate` (the exact worst-case weights, the
    stationary weights at tied losses) and, when given, from ``weights``:
    Clarabel's multipliers of the loss epigraph (the worst-case weights at
    its solution, see :func:`solve_cvxpy`), mapped into the set, with the
    multipliers of the predictions (the loss derivatives, see
    :func:`_clarabel_bound`). Certified only when the
    exact objective minus the best of these bounds is within the threshold.
    ``status`` (cvxpy's) is kept for the callers; it certifies nothing.
    """
    w = np.concatenate([W.ravel(), b if b is not None else np.empty(0)])
    w = np.concatenate([w, np.zeros(problem.n_dual)])
    cert = _certificate(problem, w, 0.0, tol, scale)
    if weights is not None and not cert["duality_gap"] <= cert["threshold"]:
        bound = _clarabel_bound(problem, weights, w, cert["_risk_weights"][1])
        if bound is not None:
            cert = _with_lower_bound(cert, bound)
    return cert


def _clarabel_bound(problem, duals, w, q_inside):
    """The Fenchel bound at Clarabel's dual point (or ``None``).

    ``duals = (q, v)`` are the multipliers of ``ell >= loss(z)`` and ``z = X
    W + b`` (:func:`solve_cvxpy`): the worst-case weights and ``-q`` times
    the loss derivatives, a subgradient at kinks (where the derivative of
    the exact loss is a poor dual). ``q`` is moved into the set, ``u =
    -v / q`` into the conjugates' domains, and the bound made exact by
    :func:`_fenchel_lower`.
    """
    q, v = duals
    q = np.asarray(q, dtype=float).reshape(-1)
    V = np.asarray(v, dtype=float).reshape(problem.p.shape[0], -1)
    if q.shape != problem.p.shape or not (
        np.all(np.isfinite(q)) and np.all(np.isfinite(V))
    ):
        return None
    W, b, _ = problem.unpack(w)
    _, U = problem.loss.value_grad(problem.predictions(W, b), problem.target)
    positive = q > 0
    U = np.where(positive[:, None], -V / np.where(positive, q, 1.0)[:, None], U)
    if problem.trivial:
        q = problem.p
    else:
        q = np.where(problem.p > 0, np.maximum(q, 0.0), 0.0)
        q = _into_set(problem, q, q_inside)
        if q is None:
            return None
    if problem.n_outputs > 1:
        return _fenchel_lower_multi(problem, q, U, w)
    u = U[:, 0]
    bounds = problem.loss.dual_bounds(problem.target)
    if bounds is not None:
        u = np.clip(u, bounds[0], bounds[1])
    return _fenchel_lower(problem, q, u, w)


def solve_cvxpy(problem, accurate=False, weights=False):
    """Solve the same problem exactly with cvxpy (Clarabel, SCS as fallback).

    Returns ``(W, b, n_iter, status)`` with ``status`` cvxpy's ("optimal" or
    "optimal_inaccurate"). ``accurate``, a tolerance, sets Clarabel's gap
    tolerances to ``_clarabel_tol(accurate)`` (used when it backs up L-BFGS).
    ``weights=True`` states the predictions and losses as variables, ``z = X
    W + b`` and an epigraph ``ell >= loss(z)`` (the risk is nondecreasing in
    the losses, so the optimum is unchanged), and returns, as a fifth
    element, their multipliers ``(q, v)``: the worst-case weights and ``-q``
    times the loss derivatives at the solution, a dual point for the
    certificate (``None`` if the solver gave none).
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
    epigraph = link = None
    if weights:
        # predictions and losses as variables: the multipliers of their
        # defining constraints are the dual point (q, q * loss derivative)
        z = cp.Variable((n, K))
        link = z == Z
        ell = cp.Variable(n)
        epigraph = problem.loss.cvxpy(z, problem.target) <= ell
        loss_expr = ell
    else:
        loss_expr = problem.loss.cvxpy(Z, problem.target)
    if problem.trivial:
        risk, constraints = problem.p @ loss_expr, []
    else:
        risk, constraints = problem.ambiguity.cvxpy_risk(loss_expr, problem.p)
    if epigraph is not None:
        constraints = [*constraints, epigraph, link]
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
    W_value = np.asarray(W.value, dtype=float)
    if weights:
        q, v = epigraph.dual_value, link.dual_value
        duals = None
        if q is not None and v is not None:
            duals = (np.asarray(q, dtype=float), np.asarray(v, dtype=float))
        return W_value, b_value, n_iter, status, duals
    return W_value, b_value, n_iter, status
