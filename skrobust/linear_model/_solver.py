"""Joint primal-dual solvers for DRO linear models.

Both solvers minimize

    F(W, b) = R(loss(X W + b)) + alpha / 2 * ||W||_F^2,

where ``R`` is the robust risk of an ambiguity set. The default solver runs
L-BFGS jointly over the model parameters and the dual variables of
``ambiguity.dual_objective`` (whose minimum over the dual is ``R``), in
float64 with O(n d) memory. Kinks (CVaR, absolute loss) are smoothed with a
temperature that is shrunk geometrically, warm-starting each stage, until the
certified bound on the suboptimality the smoothing causes is below ``tol``.
The cvxpy solver states the same problem with the ambiguity set's cvxpy
formulation and solves it with an interior-point method (exact reference).
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

_EPS = np.finfo(np.float64).eps


class _Problem:
    """The objective F over the packed vector [W.ravel(), b, dual]."""

    def __init__(
        self, X, target, p, loss, ambiguity, alpha, fit_intercept, coef_penalty=None
    ):
        self.X = X
        # a Wasserstein ball acts through a penalty on the coefficients
        self.coef_penalty = coef_penalty
        if coef_penalty is not None and coef_penalty.is_trivial():
            self.coef_penalty = None
        self.target = target
        self.p = p
        self.loss = loss
        self.ambiguity = ambiguity
        self.alpha = float(alpha)
        self.fit_intercept = fit_intercept
        self.n_features = X.shape[1]
        self.n_outputs = loss.n_outputs
        self.trivial = ambiguity.is_trivial()
        # Sets with a kinked dual (CVaR) have their dual profiled out: it is
        # solved exactly for each evaluation, so L-BFGS never sees the
        # ill-conditioned direction that smoothing creates.
        self.profile_dual = not self.trivial and ambiguity.needs_smoothing
        self.n_dual = 0 if self.trivial or self.profile_dual else ambiguity.n_dual
        self._last_dual = None
        self.n_coef = self.n_features * self.n_outputs
        self.n_intercept = self.n_outputs if fit_intercept else 0

    def unpack(self, w):
        W = w[: self.n_coef].reshape(self.n_features, self.n_outputs)
        start = self.n_coef
        b = w[start : start + self.n_intercept] if self.fit_intercept else None
        dual = w[start + self.n_intercept :]
        return W, b, dual

    def predictions(self, W, b):
        Z = self.X @ W
        if b is not None:
            Z += b
        return Z

    def losses(self, W, b):
        return self.loss.value(self.predictions(W, b), self.target)

    def __call__(self, w, tau):
        W, b, dual = self.unpack(w)
        Z = self.predictions(W, b)
        sample_loss, dZ = self.loss.value_grad(Z, self.target, tau)
        if self.trivial:
            value = float(np.dot(self.p, sample_loss))
            g_loss, g_dual = self.p, np.empty(0)
        else:
            if self.profile_dual:
                dual = self.ambiguity.dual_argmin(
                    sample_loss, self.p, smoothing=tau, start=self._last_dual
                )
                self._last_dual = dual
            value, g_loss, g_dual = self.ambiguity.dual_objective(
                dual, sample_loss, self.p, smoothing=tau
            )
            if self.profile_dual:
                g_dual = np.empty(0)
        G = dZ * g_loss[:, None]
        grad_W = self.X.T @ G
        if self.coef_penalty is not None:
            pen, pen_grad = self.coef_penalty.penalty(W, self.loss.lipschitz, tau)
            value += pen
            grad_W += pen_grad
        if self.alpha:
            grad_W += self.alpha * W
            value += 0.5 * self.alpha * float(np.sum(W * W))
        parts = [grad_W.ravel()]
        if b is not None:
            parts.append(G.sum(axis=0))
        parts.append(np.asarray(g_dual, dtype=float))
        return value, np.concatenate(parts)

    def objective(self, W, b):
        """Exact objective: robust risk of the unsmoothed losses plus penalty."""
        risk = self.ambiguity.risk(self.losses(W, b), self.p)
        if self.coef_penalty is not None:
            risk += self.coef_penalty.penalty(W, self.loss.lipschitz)[0]
        return risk + 0.5 * self.alpha * float(np.sum(W * W)), risk

    def smoothing_error(self, tau):
        bound = tau * self.loss.smooth_bound
        if not self.trivial:
            bound += self.ambiguity.smoothing_error(tau, self.p)
        if self.coef_penalty is not None:
            bound += self.coef_penalty.smoothing_error(
                tau, self.n_coef, self.loss.lipschitz
            )
        return bound

    @property
    def needs_smoothing(self):
        return (
            self.loss.smooth_bound > 0
            or self.coef_penalty is not None
            or (not self.trivial and self.ambiguity.needs_smoothing)
        )


def _lbfgs(fun, w0, tau, tol, max_iter):
    return minimize(
        fun,
        w0,
        args=(tau,),
        method="L-BFGS-B",
        jac=True,
        options={
            "maxiter": max_iter,
            "maxfun": 2 * max_iter + 20,
            "gtol": tol,
            "ftol": 64 * _EPS,
            "maxcor": 20,
        },
    )


def solve_lbfgs(problem, tol, max_iter):
    """Minimize the problem's objective; returns (W, b, dual, n_iter).

    BLAS runs single-threaded here: L-BFGS alternates small dense operations
    in scipy's OpenBLAS with matrix-vector products in numpy's, and the two
    thread pools contend (measured 2.5x slower at n = 1e5, d = 50 on 2 cores).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve_lbfgs(problem, tol, max_iter)


def _solve_lbfgs(problem, tol, max_iter):
    n_params = problem.n_coef + problem.n_intercept
    w = np.zeros(n_params + problem.n_dual)
    n_iter = 0
    # Warm start: a loose ERM fit gives losses from which the dual is exact.
    if not problem.trivial:
        erm = _Problem(
            problem.X,
            problem.target,
            problem.p,
            problem.loss,
            _Mean(),
            problem.alpha,
            problem.fit_intercept,
        )
        tau0 = _smoothing_schedule(erm, np.zeros(n_params), tol)[0]
        res = _lbfgs(erm, np.zeros(n_params), tau0, max(tol, 1e-3), max_iter)
        n_iter += res.nit
        w[:n_params] = res.x
        if problem.n_dual:
            W, b, _ = problem.unpack(w)
            losses = problem.losses(W, b)
            w[n_params:] = problem.ambiguity.dual_init(losses, problem.p)
    res = None
    for tau in _smoothing_schedule(problem, w, tol):
        res = _lbfgs(problem, w, tau, tol, max_iter)
        w = res.x
        n_iter += res.nit
        if tau > 0 and _certified(problem, w, tau, tol, max_iter):
            break
    _check_result(res, max_iter, tol)
    W, b, dual = problem.unpack(w)
    return W, b, dual, n_iter


def _smoothing_schedule(problem, w, tol):
    """Temperatures from 0.01 * std(losses), /10 each, until the error bound <= tol."""
    if not problem.needs_smoothing:
        return [0.0]
    W, b, _ = problem.unpack(w)
    losses = problem.losses(W, b)
    spread = float(np.std(losses))
    if spread <= 1e-8 * (1.0 + abs(float(np.mean(losses)))):
        spread = 1.0
    tau = 0.01 * spread
    taus = [tau]
    per_unit = problem.smoothing_error(1.0)
    while per_unit * tau > tol and len(taus) < 30:
        tau /= 10.0
        taus.append(tau)
    return taus


def _check_result(res, max_iter, tol):
    if res.success:
        return
    if res.nit >= max_iter or res.status == 1:
        warnings.warn(
            f"L-BFGS did not converge in max_iter={max_iter} iterations "
            f"({res.message}). Increase max_iter or scale the data.",
            ConvergenceWarning,
            stacklevel=3,
        )
        return
    # Line-search stalls at the limit of floating-point precision are benign
    # when the gradient is small; otherwise say so.
    grad_norm = float(np.max(np.abs(res.jac))) if res.jac.size else 0.0
    if grad_norm > max(100 * tol, 1e-5):
        warnings.warn(
            f"L-BFGS stopped before convergence ({res.message}); the largest "
            f"gradient entry is {grad_norm:.2e} > tol={tol:.1e}.",
            ConvergenceWarning,
            stacklevel=3,
        )


def _certified(problem, w, tau, tol, max_iter):
    """Whether a smoothed solution is within ``tol`` of optimal (duality gap).

    Only sets that can map the smoothed dual's weights ``q`` into the set
    (``feasible_weights``) get the certificate; others run the full schedule.
    By weak duality, ``min_theta max_q >= min_theta sum_i q_i loss_i(theta) +
    penalty`` for any feasible ``q``; the right side is a smooth weighted ERM,
    minimized from the current point. Losses with a kink are replaced by their
    smoothing, which never exceeds them, so the bound stays valid.
    """
    if (
        problem.trivial
        or problem.coef_penalty is not None
        or not hasattr(problem.ambiguity, "feasible_weights")
    ):
        return False
    W, b, dual = problem.unpack(w)
    Z = problem.predictions(W, b)
    smooth_loss, _ = problem.loss.value_grad(Z, problem.target, tau)
    if problem.profile_dual:
        dual = problem.ambiguity.dual_argmin(smooth_loss, problem.p, smoothing=tau)
    _, g_loss, _ = problem.ambiguity.dual_objective(
        dual, smooth_loss, problem.p, smoothing=tau
    )
    q = problem.ambiguity.feasible_weights(g_loss, problem.p)
    weighted = _Problem(
        problem.X,
        problem.target,
        q,
        problem.loss,
        _Mean(),
        problem.alpha,
        problem.fit_intercept,
    )
    n_params = problem.n_coef + problem.n_intercept
    res = _lbfgs(weighted, w[:n_params], tau, tol, max_iter)
    lower = res.fun
    upper, _ = problem.objective(W, b)
    return upper - lower <= tol * max(1.0, abs(upper))


class _Mean:
    """The trivial ambiguity set, used for the ERM warm start."""

    n_dual = 0
    needs_smoothing = False

    def is_trivial(self):
        return True

    def smoothing_error(self, tau, p=None):
        return 0.0


def solve_cvxpy(problem):
    """Solve the same problem exactly with cvxpy (Clarabel, SCS as fallback)."""
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
        try:
            cvx_problem.solve(solver=solver)
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
    if status == cp.OPTIMAL_INACCURATE:
        warnings.warn(
            "cvxpy reported an inaccurate solution.", ConvergenceWarning, stacklevel=3
        )
    stats = cvx_problem.solver_stats
    n_iter = int(stats.num_iters) if stats and stats.num_iters is not None else 0
    b_value = np.asarray(b.value, dtype=float) if b is not None else None
    return np.asarray(W.value, dtype=float), b_value, n_iter
