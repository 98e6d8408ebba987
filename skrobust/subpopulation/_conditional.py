"""Conditional CVaR DRO: shifts of Y given X with the X-marginal held fixed."""

import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from skrobust.ambiguity._conditional_cvar import (  # noqa: F401 (tests import them)
    _LP_FULL,
    ConditionalCVaR,
    _conditional_cvar,
    _conditional_lp,
    _Controls,
)
from skrobust.linear_model._classifier import _encode_classes, _LogisticProbaMixin
from skrobust.linear_model._losses import (
    _Absolute,
    _Huber,
    _Squared,
)
from skrobust.linear_model._solver import (
    _certificate_info,
    _check_result,
    _cvxpy_fallback_allowed,
    _fenchel_lower,
    _fenchel_lower_multi,
    _lbfgs,
    _Mean,
    _Problem,
    _with_lower_bound,
)
from skrobust.subpopulation._marginal import _power_of_two, _resolve_covariates
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
        self.ambiguity = ConditionalCVaR(
            alpha=float(alpha), controls=X, columns=controls
        )
        self.C = self.ambiguity.controls_for(p)
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
        self.trivial = self.ambiguity.is_trivial()
        self._last_eta = None
        # the linear engine's problem on the same data, for its Fenchel bound
        # (no copy; its ``alpha`` is the ridge strength)
        self.engine = _Problem(
            X, target, p, loss, self.ambiguity._cvar(), self.l2, fit_intercept
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
            eta, value, g_loss, g_beta = self.ambiguity.profile_intercept(
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
        eta = self.ambiguity.profile_intercept(beta, self.losses(W, b), self.p)[0]
        return float(eta[0])

    def smoothing_error(self, tau):
        """Bound on the objective error caused by the temperature ``tau``."""
        cvar = 0.0 if self.trivial else self.ambiguity.smoothing_error(tau)
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
        risk, q_exact, _, lp_gap = problem.ambiguity._solve(losses, p, eta)
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
        q = p if problem.trivial else problem.ambiguity.feasible_weights(q, p)
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


def _smoothed_candidate(problem, w, tau):
    """The smoothed problem's dual point ``(q, u)`` at ``w``."""
    W, b, beta = problem.unpack(w)
    Z = problem.predictions(W, b)
    smooth_losses, u = problem.loss.value_grad(Z, problem.target, tau)
    if problem.trivial:
        return problem.p, u
    _, _, q, _ = problem.ambiguity.profile_intercept(
        beta, smooth_losses, problem.p, smoothing=tau
    )
    return q, u


def _objective_scale(problem):
    """Floor of the relative tolerance: 1e-3 times the mean loss at zero."""
    Z = np.zeros((problem.X.shape[0], problem.n_outputs))
    losses = problem.loss.value(Z, problem.target)
    return max(1e-3 * abs(float(problem.p @ losses)), 1e-300)


def _solve_lbfgs(problem, tol, max_iter):
    """ERM warm start, then a continuation in the softplus temperature.

    Once the bound on the smoothing error is below ``tol``, each stage ends
    with a certificate (:func:`_certificate`); the continuation stops when
    the gap is certified, or when the smoothing error is far below what the
    tolerance resolves. Returns ``(w, n_iter,
    res, cert)`` with the best stage's point and certificate.
    """
    n_params = problem.n_coef + problem.n_intercept
    w = np.zeros(n_params + problem.n_controls)
    scale = _objective_scale(problem)
    tau_erm = 1e-2 if problem.loss.smooth_bound else 0.0
    res = _lbfgs(partial(problem, mean_only=True), w, tau_erm, max(tol, 1e-3), max_iter)
    w, n_iter = res.x, int(res.nit)
    if not problem.smoothing_error(1.0):
        res = _lbfgs(problem, w, 0.0, tol, max_iter)
        w = res.x
        cert = _certificate(
            problem, w, tol, scale, [_smoothed_candidate(problem, w, 0.0)]
        )
        return w, n_iter + int(res.nit), res, cert
    W, b, _ = problem.unpack(w)
    losses = problem.losses(W, b)
    spread = float(np.sqrt(problem.p @ (losses - problem.p @ losses) ** 2))
    if spread <= 1e-8 * (1.0 + abs(float(problem.p @ losses))):
        spread = 1.0
    tau = 0.01 * spread
    best_w, best, best_lower, best_tau = None, None, -np.inf, tau
    cert = None
    for stage_index in range(30):
        res = _lbfgs(problem, w, tau, tol, max_iter)
        w, n_iter = res.x, n_iter + int(res.nit)
        if problem.smoothing_error(tau) > tol and stage_index < 29:
            # the continuation stops only once the smoothing error is below
            # tol: no certificate (an LP) before that
            tau /= 10.0
            continue
        stage = _certificate(
            problem, w, tol, scale, [_smoothed_candidate(problem, w, tau)]
        )
        best_lower = max(best_lower, stage["lower_bound"])
        if best is None or stage["objective"] <= best["objective"]:
            best_w, best, best_tau = w, stage, tau
        cert = _with_lower_bound(best, best_lower)
        # the smoothing error below tol (the coefficients then agree with the
        # exact solution's), and the gap certified
        if cert["certified"] and problem.smoothing_error(tau) <= tol:
            break
        if problem.smoothing_error(tau) <= 1e-3 * min(tol, cert["threshold"]):
            break
        tau /= 10.0
    if not cert["certified"]:
        # once more with the weighted fit's loss duals (one more L-BFGS run)
        final = _certificate(
            problem,
            best_w,
            tol,
            scale,
            [_smoothed_candidate(problem, best_w, best_tau)],
            refine=True,
        )
        cert = _with_lower_bound(final, best_lower)
    return best_w, n_iter, res, cert


def _solve_cvxpy(problem, tol=None):
    """The same problem as one conic program (Clarabel), the exact reference.

    Returns ``(w, n_iter, status, q)``: ``q`` is the multiplier of the
    constraints ``loss - eta <= s``, the worst-case weights (a dual point
    for the certificate). ``tol`` sets Clarabel's gap and feasibility
    tolerances to ``1e-4 * tol`` (at least 1e-12). Raises RuntimeError when
    no solution is found.
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
    risk, constraints, _, beta = problem.ambiguity.cvxpy_parts(loss_expr, problem.p)
    objective = risk + 0.5 * problem.l2 * cp.sum_squares(W)
    cvx_problem = cp.Problem(cp.Minimize(objective), constraints)
    options = {}
    if tol is not None:
        # 1e-4 * tol: Clarabel's defaults (1e-8) leave nearly perfect fits
        # short of a certificate at tol
        gap_tol = max(1e-4 * float(tol), 1e-12)
        options = dict(
            tol_gap_abs=gap_tol * _objective_scale(problem),
            tol_gap_rel=gap_tol,
            tol_feas=gap_tol,
            max_iter=400,
        )
    try:
        with warnings.catch_warnings():
            # the status is read below; the certificate decides
            warnings.simplefilter("ignore", UserWarning)
            cvx_problem.solve(solver=cp.CLARABEL, **options)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"the conic solver failed: {exc}") from exc
    if cvx_problem.status not in cp.settings.SOLUTION_PRESENT or W.value is None:
        raise RuntimeError(
            f"cvxpy ended with status {cvx_problem.status!r} and no solution"
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

    def _fit_problem(self, X, target, sample_weight, loss, degree=0):
        """Solve; ``degree`` is the loss's homogeneity in ``y`` (regression).

        Features (and, for regression, the target) whose largest entry is
        outside ``[2^-20, 2^20]`` are rescaled by a power of two (exact in
        floating point) before solving: the CVaR of an affine threshold is
        positively homogeneous, so the problem in the rescaled units is the
        same problem, and the results are mapped back.
        """
        controls = _resolve_covariates(
            self, self.control_features, X.shape[1], "control_features", True
        )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        p = sample_weight / sample_weight.sum()
        kx = _power_of_two(X)
        ky = _power_of_two(target) if degree else 0
        if ky:
            target = np.ldexp(target, -ky)
            if isinstance(loss, _Huber):
                loss = _Huber(np.ldexp(loss.epsilon, -ky))
        X_fit = np.ldexp(X, -kx) if kx else X
        units = np.ldexp(1.0, degree * ky)
        l2 = float(self.l2_reg)
        if l2:
            l2 = float(np.ldexp(l2, 2 * (ky - kx) - degree * ky))
        problem = _ConditionalProblem(
            X_fit,
            target,
            p,
            loss,
            controls,
            self.alpha,
            l2,
            self.fit_intercept,
        )
        owner = type(self).__name__
        scale = _objective_scale(problem)
        with threadpool_limits(limits=1, user_api="blas"):
            if self.solver == "cvxpy":
                w, n_iter, status, q = _cvxpy_or_raise(problem, self.tol, owner)
                info = dict(
                    _cvxpy_certificate(problem, w, status, q, self.tol, scale),
                    method="cvxpy",
                    solver_status=status,
                )
            else:
                w, n_iter, res, cert = _solve_lbfgs(problem, self.tol, self.max_iter)
                info = dict(cert, method="lbfgs", solver_status=None)
                if not cert["certified"] and _cvxpy_fallback_allowed(problem.engine):
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            wc, it, status, q = _solve_cvxpy(problem, self.tol)
                    except (RuntimeError, ImportError, ValueError, ArithmeticError):
                        wc = None
                    if wc is not None:
                        cert_c = _cvxpy_certificate(
                            problem, wc, status, q, self.tol, scale
                        )
                        cert_c = _with_lower_bound(cert_c, cert["lower_bound"])
                        if cert_c["objective"] <= cert["objective"]:
                            w, n_iter = wc, n_iter + it
                            info = dict(
                                cert_c, method="lbfgs+cvxpy", solver_status=status
                            )
                        else:
                            info = dict(
                                _with_lower_bound(cert, cert_c["lower_bound"]),
                                method="lbfgs",
                                solver_status=None,
                            )
                if not info["certified"]:
                    _check_result(res, self.max_iter, self.tol, owner, stacklevel=4)
            if not info["certified"]:
                gap = info["duality_gap"]
                what = (
                    f"the duality gap is {gap:.3e} "
                    f"({gap / max(abs(info['objective']), info['scale']):.2e} "
                    f"relative) > tol={self.tol:.1e}"
                    if np.isfinite(gap)
                    else "no duality gap could be computed and the KKT residual "
                    f"is {info['kkt_residual']:.3e}"
                )
                warnings.warn(
                    f"{owner}: the solution is not certified optimal: {what}. "
                    "Increase max_iter, scale the data, or use solver='cvxpy'.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        W, b, beta = problem.unpack(w)
        b = b if b is not None else np.zeros(problem.n_outputs)
        self.control_features_ = controls
        self.n_iter_ = int(n_iter)
        risk, self.worst_case_weights_ = info.pop("_risk_weights")
        self.robust_risk_ = float(risk * units)
        # back to the units of the data (the KKT residual, a gradient, stays
        # in those of the rescaled problem)
        for key in ("objective", "lower_bound", "duality_gap", "threshold", "scale"):
            info[key] = float(info[key] * units)
        info["lp_gap"] = float(info["lp_gap"] * units)
        self.solver_info_ = info
        self.optimality_gap_ = info["duality_gap"]
        losses = problem.losses(W, b)
        self.train_loss_ = float(p @ losses) * units
        if problem.trivial:
            beta = np.zeros(problem.n_controls)
            eta0 = float(np.min(losses[p > 0]))
        else:
            eta0 = problem.eta_intercept(W, b, beta)
        coef = np.ldexp(problem.control_coef(beta), degree * ky - kx)
        self.control_coef_ = coef
        center = np.ldexp(problem.center, kx)
        self.control_intercept_ = eta0 * units - float(center @ coef)
        W = np.ldexp(W, ky - kx)
        b = np.ldexp(b, ky)
        self.objective_ = self.robust_risk_ + 0.5 * float(self.l2_reg) * float(
            np.sum(W * W)
        )
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
        Tolerance on the largest gradient entry (L-BFGS), bound on the
        objective error allowed by smoothing, and relative duality gap
        accepted: the solution is certified when the gap (see
        ``solver_info_``) is at most ``tol * max(|objective_|, 1e-3 * mean
        loss at zero coefficients)``. If it is not, a problem of at most
        ``n_samples * n_parameters = 2e5`` entries is solved again exactly
        by Clarabel (through cvxpy); a ConvergenceWarning naming the gap is
        raised only if that also fails.
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
    optimality_gap_ : float
        Certified bound on ``objective_`` minus the optimal objective: the
        duality gap of the solution (``nan`` when no dual bound could be
        formed; then the KKT residual in ``solver_info_`` is the
        certificate).
    solver_info_ : dict
        The certificate, with the keys of
        :class:`skrobust.linear_model.DROLinearRegression`'s: ``objective``
        (exact: the robust risk by the linear program, plus the penalty),
        ``lower_bound`` (a Fenchel bound from worst-case weights mapped
        exactly into the set and the loss derivatives: the optimum is at
        least this), ``duality_gap`` (their difference plus ``lp_gap``),
        ``kkt_residual`` (largest entry of the gradient with the worst-case
        weights, in the units of the solved problem), ``threshold`` (``tol``
        times the objective's scale), ``scale``, ``certified`` (gap below
        threshold), ``lp_gap`` (the linear program's own duality gap),
        ``method`` (``"lbfgs"``, ``"lbfgs+cvxpy"`` when the exact conic
        fallback ran, or ``"cvxpy"``) and ``solver_status`` (cvxpy's status
        when it ran).
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
        X, y = validate_data(self, X, y, dtype=np.float64, order="C")
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
        X, y = validate_data(self, X, y, dtype=np.float64, order="C", y_numeric=True)
        loss = self._loss()
        degree = 1 if self.loss == "absolute" else 2
        W, b = self._fit_problem(X, loss.encode(y), sample_weight, loss, degree)
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
