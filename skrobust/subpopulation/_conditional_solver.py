"""The conditional CVaR problem, its certified L-BFGS solve and the cvxpy reference.

The worst case, its weights and its dual come from the ambiguity set
:class:`skrobust.ambiguity._conditional_cvar.ConditionalCVaR`; the Fenchel
bounds of the certificate from the linear engine
(:mod:`skrobust.linear_model._solver`).
"""

import numpy as np

from skrobust.ambiguity._conditional_cvar import (  # noqa: F401 (tests import them)
    _LP_FULL,
    ConditionalCVaR,
    _conditional_cvar,
    _conditional_lp,
    _Controls,
)
from skrobust.linear_model._solver import (
    _certificate_info,
    _fenchel_lower,
    _fenchel_lower_multi,
    _lbfgs,
    _Mean,
    _Problem,
    _with_lower_bound,
    solve_lbfgs,
)
from skrobust.subpopulation._marginal_solver import (
    _clarabel_options,
    _cvxpy_linear,
    _solve_problem,
)


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
        self.set = ConditionalCVaR(alpha=float(alpha), controls=X, columns=controls)
        self.C = self.set.controls_for(p)
        self.center, self.scale, self.keep = (
            self.C.all_center,
            self.C.all_scale,
            self.C.keep,
        )
        self.alpha = float(alpha)
        self.l2 = float(l2_reg)
        self.fit_intercept = fit_intercept
        self.n_outputs = loss.n_outputs
        self.n_coef = X.shape[1] * self.n_outputs
        self.n_intercept = self.n_outputs if fit_intercept else 0
        self.n_controls = self.C.shape[1]
        self.trivial = self.set.is_trivial()
        self._last_eta = None
        # the linear engine's problem on the same data, for its Fenchel bound
        # (no copy; its ``alpha`` is the ridge strength)
        self.engine = _Problem(
            X, target, p, loss, self.set._cvar(), self.l2, fit_intercept
        )

    def control_coef(self, beta):
        """``beta`` in the units of the original control columns."""
        coef = np.zeros(self.keep.shape[0])
        coef[self.keep] = np.asarray(beta, dtype=np.float64) / self.scale[self.keep]
        return coef

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
            eta, value, g_loss, g_beta = self.set.profile_intercept(
                beta, sample_loss, self.p, smoothing=tau, start=self._last_eta
            )
            self._last_eta = eta
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
        eta = self.set.profile_intercept(beta, self.losses(W, b), self.p)[0]
        return float(eta[0])

    def smoothing_error(self, tau):
        """Bound on the objective error caused by the temperature ``tau``."""
        cvar = 0.0 if self.trivial else self.set.smoothing_error(tau)
        return tau * self.loss.smooth_bound + cvar


def _certificate(problem, w, tol, scale, candidates=(), refine=False):
    """Duality gap of the exact objective at ``w`` (a dict, as the engine's).

    The objective is evaluated exactly by the LP (:meth:`ConditionalCVaR.solve`);
    the lower bound is the linear engine's Fenchel bound
    (:func:`skrobust.linear_model._solver._fenchel_lower`): for every ``q``
    in the set (``0 <= q <= p / alpha``, ``sum q = 1``, ``C^T q = 0``, the
    dual of the Rockafellar-Uryasev problem with an affine threshold) and
    loss duals ``u``, ``min_theta sum_i q_i l_i(theta) + l2 / 2 ||W||^2 >=
    -sum_i q_i l_i*(u_i) - ||X^T (q u)||^2 / (2 l2)``. ``candidates`` are
    pairs ``(q, u)`` (the smoothed solution's, cvxpy's duals), mapped into
    the set by :meth:`ConditionalCVaR.feasible_weights`; the LP's worst case at ``w`` is
    always tried. The gap includes the LP's own gap.
    """
    W, b, beta = problem.unpack(w)
    Z = problem.predictions(W, b)
    p = problem.p
    losses, u_exact = problem.loss.value_grad(Z, problem.target)
    if problem.trivial:
        risk, q_exact, lp_gap = float(p @ losses), p, 0.0
    else:
        eta = problem.eta_intercept(W, b, beta) + problem.C @ beta
        risk, q_exact, _, lp_gap = problem.set._solve(losses, p, eta)
    value = risk + 0.5 * problem.l2 * float(np.sum(W * W))
    threshold = tol * max(abs(value), scale)
    multi = problem.n_outputs > 1
    G = u_exact * q_exact[:, None]
    grad = problem.X.T @ G + problem.l2 * W
    kkt = float(np.max(np.abs(grad))) if grad.size else 0.0
    if problem.fit_intercept:
        kkt = max(kkt, float(np.max(np.abs(G.sum(axis=0)))))
    del G, Z, losses
    lower = -np.inf
    tried = [(q_exact, u_exact)]
    for q, u in candidates:
        q = p if problem.trivial else problem.set.feasible_weights(q, p)
        if q is not None:
            tried.insert(0, (q, u))
    del candidates

    def bound_at(q, u, w):
        if multi:
            return _fenchel_lower_multi(problem.engine, q, u)
        return _fenchel_lower(problem.engine, q, u[:, 0], w)

    best_q = None
    for q, u in tried:
        bound = bound_at(q, u, w)
        if bound is not None and bound > lower:
            lower, best_q = bound, q
        if value + lp_gap - lower <= threshold:
            break
    if refine and value + lp_gap - lower > threshold:
        # the best loss duals for these weights: those of the weighted fit
        # min_theta E_q[loss] + penalty (smooth), from the solution; the
        # bound is then first order in the weights' suboptimality
        q = best_q if best_q is not None else q_exact
        n_model = problem.n_coef + problem.n_intercept
        weighted = _Problem(
            problem.X,
            problem.target,
            q,
            problem.loss,
            _Mean(),
            problem.l2,
            problem.fit_intercept,
        )
        res = _lbfgs(weighted, w[:n_model], 0.0, 1e-10, 200)
        if np.all(np.isfinite(res.x)):
            Wq, bq, _ = problem.unpack(np.concatenate([res.x, w[n_model:]]))
            _, u = problem.loss.value_grad(problem.predictions(Wq, bq), problem.target)
            bound = bound_at(q, u, res.x)
            if bound is not None and bound > lower:
                lower = bound
    gap = value + lp_gap - lower if np.isfinite(lower) else np.nan
    return _certificate_info(
        value,
        lower,
        gap,
        kkt,
        threshold,
        scale,
        lp_gap=float(lp_gap),
        _risk_weights=(float(risk), q_exact),
    )


def _objective_scale(problem):
    """Floor of the relative tolerance: 1e-3 times the mean loss at zero."""
    Z = np.zeros((problem.X.shape[0], problem.n_outputs))
    losses = problem.loss.value(Z, problem.target)
    return max(1e-3 * abs(float(problem.p @ losses)), 1e-300)


class _EngineHead:
    """The conditional CVaR set as the risk head of the linear engine.

    The engine's dual variables are the slopes ``beta`` of the threshold
    on the standardized controls, optimized jointly with the model; the
    intercept ``beta_0`` is profiled out exactly for each evaluation
    (:meth:`ConditionalCVaR.profile_intercept`). The exact risk is the
    set's LP, started from the current threshold; the weights of the
    smoothed head are mapped into the set by
    :meth:`ConditionalCVaR.feasible_weights` for the engine's Fenchel bound.
    """

    needs_smoothing = True

    def __init__(self, problem, engine):
        self.problem = problem
        self.engine = engine

    def is_trivial(self):
        return self.problem.trivial

    def smoothing_error(self, tau, p=None):
        return self.problem.set.smoothing_error(tau)

    def dual_init(self, losses, p):
        return np.zeros(self.problem.n_controls)

    def risk_and_weights(self, losses, p):
        problem = self.problem
        threshold = None
        beta = self.engine.current_beta
        if losses.shape[0] > _LP_FULL and beta.size:
            # the working set starts from the current threshold
            eta0 = problem.set.profile_intercept(beta, losses, p)[0]
            threshold = float(eta0[0]) + problem.C @ beta
        risk, q, _, _ = problem.set._solve(losses, p, threshold)
        return risk, q

    def risk(self, losses, p):
        return self.risk_and_weights(losses, p)[0]

    def feasible_weights(self, q, p):
        return self.problem.set.feasible_weights(q, p)

    def cvxpy_risk(self, loss_expr, p):
        return self.problem.set.cvxpy_risk(loss_expr, p)


class _EngineProblem(_Problem):
    """:class:`_ConditionalProblem` as a problem of the linear engine.

    The objective and gradient over ``[W.ravel(), b, beta]`` are the
    conditional problem's; the engine's loop (warm start, continuation in
    the temperature, certificate at each stage) runs it unchanged. The head
    counts as profiled (the intercept is), so the engine's certificate maps
    the smoothed head's weights into the set at the current ``beta``.
    """

    def __init__(self, problem):
        self.conditional = problem
        self.current_beta = np.zeros(problem.n_controls)
        super().__init__(
            problem.X,
            problem.target,
            problem.p,
            problem.loss,
            _EngineHead(problem, self),
            problem.l2,
            problem.fit_intercept,
        )
        self.n_dual = 0 if self.trivial else problem.n_controls

    def unpack(self, w):
        W, b, dual = super().unpack(w)
        if dual.size == self.current_beta.size:
            self.current_beta = dual
        return W, b, dual

    def __call__(self, w, tau):
        return self.conditional(w, tau)

    def _profile(self, sample_loss, tau):
        eta, value, g, _ = self.conditional.set.profile_intercept(
            self.current_beta, sample_loss, self.p, smoothing=tau
        )
        return eta, value, g


def _solve_lbfgs(problem, tol, max_iter):
    """The linear engine's certified L-BFGS loop: ``(w, n_iter, res, cert)``.

    Without controls and above ``_LP_FULL`` samples the set is
    :class:`skrobust.ambiguity.CVaR`, solved by the engine as it is (its
    dual profiled, preconditioned); otherwise :class:`_EngineProblem`.
    ``cert`` is the engine's certificate plus ``lp_gap``, the LP's own
    duality gap at the solution (the objective is the LP's dual value, an
    upper bound: the gap needs no more).
    """
    plain = problem.n_controls == 0 and not problem.trivial
    if plain and problem.X.shape[0] > _LP_FULL:
        # measured: the engine's own CVaR problem (preconditioned) is 1.8-3.4x
        # faster at n = 1e4..1e5, the joint head 1.1-1.3x at n <= 1000
        engine = problem.engine
    else:
        engine = _EngineProblem(problem)
    W, b, dual, n_iter, cert, res = solve_lbfgs(engine, tol, max_iter)
    parts = [W.ravel()]
    if b is not None:
        parts.append(b)
    beta = dual if problem.n_controls and not problem.trivial else np.empty(0)
    parts.append(np.zeros(problem.n_controls) if beta.size == 0 else beta)
    w = np.concatenate(parts)
    lp_gap = 0.0
    if problem.n_controls and not problem.trivial:
        eta = problem.eta_intercept(W, b, beta) + problem.C @ beta
        lp_gap = problem.set._solve(problem.losses(W, b), problem.p, eta)[3]
    return w, int(n_iter), res, dict(cert, lp_gap=float(lp_gap))


def _solve_cvxpy(problem, tol=None):
    """The same problem as one conic program (Clarabel), the exact reference.

    Returns ``(w, n_iter, status, q)``: ``q`` is the multiplier of the
    constraints ``loss - eta <= s``, the worst-case weights (a dual point
    for the certificate). ``tol`` sets Clarabel's gap and feasibility
    tolerances to ``1e-4 * tol`` (at least 1e-12). Raises RuntimeError when
    no solution is found.
    """
    import cvxpy as cp

    W, b, Z = _cvxpy_linear(problem.X, problem.n_outputs, problem.fit_intercept)
    loss_expr = problem.loss.cvxpy(Z, problem.target)
    risk, constraints, _, beta = problem.set.cvxpy_parts(loss_expr, problem.p)
    objective = risk + 0.5 * problem.l2 * cp.sum_squares(W)
    cvx_problem = cp.Problem(cp.Minimize(objective), constraints)
    # 1e-4 * tol: Clarabel's defaults (1e-8) leave nearly perfect fits short
    # of a certificate at tol
    scale = _objective_scale(problem)
    options = _clarabel_options(tol, scale)
    _solve_problem(cvx_problem, "conditional CVaR", tol, scale)
    if W.value is None:
        raise RuntimeError("conditional CVaR: the conic solver gave no solution")
    parts = [np.asarray(W.value, dtype=float).ravel()]
    if b is not None:
        parts.append(np.asarray(b.value, dtype=float))
    beta_value = np.zeros(problem.n_controls)
    if beta is not None and beta.value is not None:
        beta_value += beta.value
    parts.append(beta_value)
    stats = cvx_problem.solver_stats
    n_iter = int(stats.num_iters) if stats and stats.num_iters is not None else 0
    q = problem.p
    if constraints and constraints[0].dual_value is not None:
        q = np.abs(np.asarray(constraints[0].dual_value, dtype=float)).ravel()
    # Clarabel stops at "optimal" once |primal - dual| <= tol_gap_abs +
    # tol_gap_rel |primal|: its dual value is at least this (a dual bound,
    # up to its dual feasibility tolerance)
    problem.cvxpy_dual_bound = -np.inf
    if cvx_problem.status == cp.OPTIMAL and cvx_problem.value is not None:
        value = float(cvx_problem.value)
        rel = float(options.get("tol_gap_rel", 1e-8))
        absolute = float(options.get("tol_gap_abs", 1e-8))
        problem.cvxpy_dual_bound = value - (absolute + rel * abs(value))
    return np.concatenate(parts), n_iter, cvx_problem.status, q


def _cvxpy_or_raise(problem, tol, owner):
    """:func:`_solve_cvxpy` at tolerance ``tol``, errors named for ``owner``."""
    try:
        return _solve_cvxpy(problem, tol)
    except RuntimeError as exc:
        raise RuntimeError(f"{owner}: {exc}; use solver='lbfgs'.") from exc


def _cvxpy_certificate(problem, w, status, q, tol, scale):
    """Certificate of an interior-point solution (see :func:`_certificate`).

    The Fenchel bound uses cvxpy's multipliers (mapped into the set) and the
    LP's worst case; the objective is re-evaluated exactly. When Clarabel
    reports "optimal", its dual value (its primal value minus the gap its
    stopping rule allows) is a further lower bound; the gap is then measured
    from the exact objective at its coefficients, never from its primal
    value (feasible only up to its tolerances: on a nearly perfect fit the
    exact objective was 7e-6 relative above the optimum that Clarabel
    reported at 1e-8).
    """
    W, b, _ = problem.unpack(w)
    Z = problem.predictions(W, b)
    losses, u = problem.loss.value_grad(Z, problem.target)
    candidates = [(q, u)]
    if problem.loss.smooth_bound > 0:
        # a kinked loss (absolute): at the samples interpolated by the
        # solution the residual is rounding noise and its sign no dual; the
        # derivatives of the smoothed loss at small temperatures are
        spread = float(np.sqrt(problem.p @ (losses - problem.p @ losses) ** 2))
        spread = spread if spread > 0 else 1.0
        for tau in (1e-6, 1e-8, 1e-10):
            candidates.append(
                (q, problem.loss.value_grad(Z, problem.target, tau * spread)[1])
            )
    cert = _certificate(problem, w, tol, scale, candidates, refine=True)
    claimed = getattr(problem, "cvxpy_dual_bound", -np.inf)
    if claimed <= cert["objective"]:
        # Clarabel's claim, used only when consistent with the exact
        # objective (on perfect fits its primal value can sit above the
        # optimum by more than its gap, making the claim exceed it)
        cert = _with_lower_bound(cert, claimed)
    return cert
