"""Joint primal-dual solvers for DRO linear models.

Both solvers minimize

    F(W, b) = R(loss(X W + b)) + alpha / 2 * ||W||_F^2,

where ``R`` is the robust risk of an ambiguity set. The default solver runs
L-BFGS jointly over the model parameters and the dual variables of
``ambiguity.dual_objective`` (whose minimum over the dual is ``R``), in
float64 with O(n d) memory. Kinks (CVaR, absolute loss) are smoothed with a
temperature that is shrunk geometrically, warm-starting each stage, until the
certified bound on the suboptimality the smoothing causes is below ``tol``.
For losses of one output and up to 256 parameters, L-BFGS runs in coordinates
preconditioned by a Cholesky factor of the Hessian (one O(n d^2) pass each for
the warm start and the robust solve): exact for sets whose dual is profiled out
(CVaR, total variation), where it carries the curvature across the kink that
L-BFGS would otherwise relearn at every smoothing stage; the worst-case-weighted
Gram matrix, with an identity block for the duals, for sets whose dual is
optimized jointly (chi-square, Cressie-Read, KL). It halves the iterations.
The cvxpy solver states the same problem with the ambiguity set's cvxpy
formulation and solves it with an interior-point method (exact reference).
"""

import warnings

import numpy as np
from scipy.linalg import LinAlgError, block_diag, cholesky, solve_triangular
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

_EPS = np.finfo(np.float64).eps
# Largest number of parameters for which the O(n d^2) Hessian preconditioner is
# built; beyond it, one Hessian costs more than the L-BFGS iterations it saves.
_MAX_PRECONDITIONED = 256
_ROWS_PER_CHUNK = 8192


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
                dual, value, g_loss = self._profile(sample_loss, tau)
                g_dual = np.empty(0)
            else:
                value, g_loss, g_dual = self.ambiguity.dual_objective(
                    dual, sample_loss, self.p, smoothing=tau
                )
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

    def _profile(self, sample_loss, tau):
        """The dual solved for the losses (warm-started): dual, value, weights."""
        if tau > 0 and hasattr(self.ambiguity, "_profiled"):
            dual, value, g_loss = self.ambiguity._profiled(
                sample_loss, self.p, tau, start=self._last_dual
            )
        else:
            dual = self.ambiguity.dual_argmin(
                sample_loss, self.p, smoothing=tau, start=self._last_dual
            )
            value, g_loss, _ = self.ambiguity.dual_objective(
                dual, sample_loss, self.p, smoothing=tau
            )
        self._last_dual = dual
        return dual, value, g_loss

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
    def can_precondition(self):
        return (
            self.coef_penalty is None
            and self.n_outputs == 1
            and hasattr(self.loss, "curvature")
            and (
                not self.profile_dual or hasattr(self.ambiguity, "_profiled_curvature")
            )
            and self.n_coef + self.n_intercept <= _MAX_PRECONDITIONED
        )

    def hessian(self, w, tau):
        """Hessian (or a stand-in) of the smoothed objective, for preconditioning.

        With the dual profiled out it is exact: by the chain rule, with ``q``
        the weights of the losses and ``diag(c) - v v^T`` the curvature of the
        smoothed risk over the losses, ``H = X^T diag(q l'' + c l'^2) X -
        (X^T (v l')) (X^T (v l'))^T`` (``X`` with a column of ones when
        fitting an intercept), plus the ridge penalty. For ERM ``q = p`` and
        ``c = 0``. When the dual variables are optimized jointly (chi-square,
        KL), the model block is ``X^T diag(q l'') X`` with ``q`` the weights of
        the dual at ``w``, and the dual block the identity.
        """
        W, b, _ = self.unpack(w)
        Z = self.predictions(W, b)
        curvature = self.loss.curvature(Z, self.target, tau)
        if getattr(self.loss, "curvature_vanishes", False):
            # Absolute and Huber losses have zero curvature away from the
            # kink (or outside the quadratic band): at a poor starting point
            # almost every sample is there and H is singular. A floor of
            # L / (2 * rms residual) (the curvature a smoothed kink has at
            # the typical residual) keeps the factor well conditioned.
            resid = Z[:, 0] - self.target
            rms = float(np.sqrt(np.dot(self.p, resid * resid)))
            floor = self.loss.lipschitz / (2.0 * max(rms, tau, 1e-300))
            curvature = curvature + min(floor, 1.0 / max(tau, 1e-300))
        if self.trivial:
            H = _weighted_gram(self.X, self.p * curvature, self.fit_intercept)
        elif not self.profile_dual:
            dual = self.unpack(w)[2]
            _, q, _ = self.ambiguity.dual_objective(dual, self.losses(W, b), self.p)
            H = _weighted_gram(self.X, q * curvature, self.fit_intercept)
        else:
            sample_loss, dZ = self.loss.value_grad(Z, self.target, tau)
            dual, _, q = self._profile(sample_loss, tau)
            diag, vec = self.ambiguity._profiled_curvature(
                dual, sample_loss, self.p, tau
            )
            slope = dZ[:, 0]
            weights = q * curvature + diag * slope * slope
            H = _weighted_gram(self.X, weights, self.fit_intercept)
            u = self.X.T @ (vec * slope)
            if self.fit_intercept:
                u = np.append(u, np.sum(vec * slope))
            H -= np.outer(u, u)
        H[: self.n_coef, : self.n_coef] += self.alpha * np.eye(self.n_coef)
        if self.n_dual:
            H = block_diag(H, np.eye(self.n_dual))
        return H

    @property
    def needs_smoothing(self):
        return (
            self.loss.smooth_bound > 0
            or self.coef_penalty is not None
            or (not self.trivial and self.ambiguity.needs_smoothing)
        )


def _weighted_gram(X, weights, fit_intercept):
    """``[X 1]^T diag(weights) [X 1]`` for weights >= 0, in row chunks."""
    n, d = X.shape
    size = d + 1 if fit_intercept else d
    H = np.zeros((size, size))
    root = np.sqrt(np.maximum(weights, 0.0))
    for start in range(0, n, _ROWS_PER_CHUNK):
        rows = slice(start, start + _ROWS_PER_CHUNK)
        scaled = X[rows] * root[rows, None]
        H[:d, :d] += scaled.T @ scaled
    if fit_intercept:
        H[:d, d] = H[d, :d] = X.T @ weights
        H[d, d] = weights.sum()
    return H


def _cholesky_or_none(H):
    """Lower Cholesky factor of ``H`` plus the smallest jitter that works."""
    size = H.shape[0]
    base = max(float(np.trace(H)) / size, 1e-300)
    if not np.all(np.isfinite(H)):
        return None
    for jitter in (1e-10, 1e-8, 1e-6, 1e-4):
        try:
            factor = cholesky(H + jitter * base * np.eye(size), lower=True)
        except LinAlgError:
            continue
        diag = np.abs(np.diag(factor))
        # a factor this ill-conditioned maps L-BFGS steps to overflowing ones
        if diag.min() > 1e-7 * diag.max():
            return factor
    return None


class _Preconditioned:
    """``fun(w0 + L^{-T} v)``: the problem in coordinates where H is about I."""

    def __init__(self, fun, w0, factor):
        self.fun = fun
        self.w0 = w0
        self.factor = factor

    def to_w(self, v):
        return self.w0 + solve_triangular(self.factor, v, lower=True, trans="T")

    def __call__(self, v, tau):
        value, grad = self.fun(self.to_w(v), tau)
        return value, solve_triangular(self.factor, grad, lower=True)


def _lbfgs(fun, w0, tau, tol, max_iter, factor=None):
    if factor is not None:
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                res = _lbfgs_run(_Preconditioned(fun, w0, factor), w0, tau, tol, max_iter)
        except (ValueError, FloatingPointError):
            res = None
        if res is not None and np.all(np.isfinite(res.x)) and np.isfinite(res.fun):
            return res
        # the preconditioned run broke down: plain coordinates
    return _lbfgs_run(fun, w0, tau, tol, max_iter)


def _lbfgs_run(fun, w0, tau, tol, max_iter):
    preconditioned = isinstance(fun, _Preconditioned)
    if preconditioned:
        w0 = np.zeros_like(w0)
    res = minimize(
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
    if preconditioned:
        res.x = fun.to_w(res.x)
    return res


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
        factor = None
        if erm.can_precondition and problem.loss.smooth_bound == 0:
            factor = _cholesky_or_none(erm.hessian(np.zeros(n_params), tau0))
        res = _lbfgs(erm, np.zeros(n_params), tau0, max(tol, 1e-3), max_iter, factor)
        n_iter += res.nit
        w[:n_params] = res.x
        if problem.n_dual:
            W, b, _ = problem.unpack(w)
            losses = problem.losses(W, b)
            w[n_params:] = problem.ambiguity.dual_init(losses, problem.p)
    res = None
    factor = None
    precondition = problem.can_precondition
    start = 0.001 if precondition else 0.01
    for tau in _smoothing_schedule(problem, w, tol, start):
        if factor is None and precondition:
            factor = _cholesky_or_none(problem.hessian(w, tau))
        res = _lbfgs(problem, w, tau, tol, max_iter, factor)
        w = res.x
        n_iter += res.nit
        if tau > 0 and _certified(problem, w, tau, tol, max_iter, factor):
            break
    _check_result(res, max_iter, tol)
    W, b, dual = problem.unpack(w)
    return W, b, dual, n_iter


def _smoothing_schedule(problem, w, tol, start=0.01):
    """Temperatures from ``start * std(losses)``, /10 each, until the bound <= tol.

    Preconditioned problems start at ``0.001 * std``: knowing the curvature
    across the kink, L-BFGS handles the sharper smoothing, and fewer losses lie
    in the band where the smoothing is active.
    """
    if not problem.needs_smoothing:
        return [0.0]
    W, b, _ = problem.unpack(w)
    losses = problem.losses(W, b)
    spread = float(np.std(losses))
    if spread <= 1e-8 * (1.0 + abs(float(np.mean(losses)))):
        spread = 1.0
    tau = start * spread
    taus = [tau]
    per_unit = problem.smoothing_error(1.0)
    while per_unit * tau > tol and len(taus) < 30:
        tau /= 10.0
        taus.append(tau)
    return taus


def _check_result(res, max_iter, tol, owner="", stacklevel=3):
    """Raise ConvergenceWarning for an L-BFGS result that did not converge.

    ``owner`` prefixes the message (for example the estimator's name).
    """
    prefix = f"{owner}: " if owner else ""
    if res.success:
        return
    if res.nit >= max_iter or res.status == 1:
        warnings.warn(
            f"{prefix}L-BFGS did not converge in max_iter={max_iter} iterations "
            f"({res.message}). Increase max_iter or scale the data.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
        return
    # Line-search stalls at the limit of floating-point precision are benign
    # when the gradient is small; otherwise say so.
    grad_norm = float(np.max(np.abs(res.jac))) if res.jac.size else 0.0
    if grad_norm > max(100 * tol, 1e-5):
        warnings.warn(
            f"{prefix}L-BFGS stopped before convergence ({res.message}); the "
            f"largest gradient entry is {grad_norm:.2e} > tol={tol:.1e}.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


def _certified(problem, w, tau, tol, max_iter, factor=None):
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
        _, _, g_loss = problem._profile(smooth_loss, tau)
    else:
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
    res = _lbfgs(weighted, w[:n_params], tau, tol, max_iter, factor)
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
