"""Joint primal-dual solvers for DRO linear models.

Both solvers minimize

    F(W, b) = R(loss(X W + b)) + alpha / 2 * ||W||_F^2,

where ``R`` is the robust risk of an ambiguity set. The default solver runs
L-BFGS jointly over the model parameters and the dual variables of
``ambiguity.dual_objective`` (whose minimum over the dual is ``R``), in
float64 with O(n d) memory. Kinks (CVaR, absolute loss) are smoothed with a
temperature that is shrunk geometrically, warm-starting each stage, until the
solution is certified.

Every solve ends with a certificate (``_certificate``): the exact objective,
a Fenchel lower bound on the optimum built from the solver's dual point
(worst-case weights and loss derivatives, made feasible), their gap, and the
KKT residual. A gap above ``tol`` (relative) sends small problems to the exact
conic form (Clarabel); only if that fails too is a ConvergenceWarning naming
the gap raised (``solve_certified``). Ambiguity sets that are the maximum loss
for every loss vector (huge radii) are solved as the maximum, smoothed.
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
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

# The engine's parts, each in its module; every name stays importable from
# here (other packages and tests import them from this module).
from skrobust.linear_model._certificate import (  # noqa: F401
    _SCALE_FLOOR,
    _certificate,
    _certificate_info,
    _newton_dual_point,
    _objective_scale,
    _with_lower_bound,
)
from skrobust.linear_model._cvxpy_path import (  # noqa: F401
    _clarabel_tol,
    _cvxpy_certificate,
    solve_cvxpy,
)
from skrobust.linear_model._fenchel import (  # noqa: F401
    _balance_intercept,
    _bound_columns,
    _distance_to_ball,
    _fenchel_lower,
    _fenchel_lower_multi,
    _fenchel_lower_penalized,
    _project_null,
    _room,
    _scale_into,
    _stationary_weights,
)
from skrobust.linear_model._heads import (  # noqa: F401
    _Max,
    _Mean,
    _membership,
    _reduces_to_max,
    _smoothed_weights,
    _softmax_on_support,
)
from skrobust.linear_model._problem import (  # noqa: F401
    _MAX_PRECONDITIONED,
    _ROWS_PER_CHUNK,
    _Problem,
    _weighted_gram,
)

_EPS = np.finfo(np.float64).eps


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
                res = _lbfgs_run(
                    _Preconditioned(fun, w0, factor), w0, tau, tol, max_iter
                )
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
    """Minimize the problem's objective: ``(W, b, dual, n_iter, cert, res)``.

    ``cert`` is the certificate of :func:`_certificate` at the solution and
    ``res`` the last L-BFGS result.
    BLAS runs single-threaded here: L-BFGS alternates small dense operations
    in scipy's OpenBLAS with matrix-vector products in numpy's, and the two
    thread pools contend (measured 2.5x slower at n = 1e5, d = 50 on 2 cores).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve_lbfgs(problem, tol, max_iter)


def solve_certified(problem, tol, max_iter, owner="", stacklevel=4, units=1.0):
    """L-BFGS, certified; the exact conic form when the certificate fails.

    Returns ``(W, b, n_iter, info)``. ``info`` holds the certificate (see
    :func:`_certificate`) and ``method``: ``"lbfgs"``, or ``"lbfgs+cvxpy"``
    when the duality gap of the L-BFGS solution exceeded ``tol`` (relative)
    and the problem, of at most ``_CVXPY_MAX_SIZE`` entries, was solved again
    by Clarabel. A ConvergenceWarning naming the gap is raised only if that
    also fails (or is not available); ``units`` converts the gap it names to
    the caller's units (the objective of a standardized problem).

    An ambiguity set that puts all its mass on the largest loss for every
    loss vector (a chi-square ball of radius above ``(1/p_min - 1) / 2``, say)
    is the maximum loss; it is solved as such, with the maximum smoothed by a
    log-sum-exp under continuation, instead of through its dual, whose
    minimizer then sits on a kink.
    """
    solved = problem
    if _reduces_to_max(problem):
        solved = problem.with_ambiguity(_Max())
    W, b, _, n_iter, cert, res = solve_lbfgs(solved, tol, max_iter)
    info = dict(cert, method="lbfgs")
    if solved is not problem:
        info.pop("_risk_weights")  # the stand-in head's, not the set's
    if not cert["certified"] and _cvxpy_fallback_allowed(problem):
        # Clarabel at a tenth of tol; if its dual point does not prove it
        # (exponential cones stop early), once more at a thousandth
        for accuracy in (tol, 1e-3 * tol):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    Wc, bc, it, status, qc = solve_cvxpy(
                        problem, accurate=accuracy, weights=True
                    )
            except (RuntimeError, ImportError, ValueError, ArithmeticError):
                break
            cert_c = _cvxpy_certificate(
                problem, Wc, bc, status, tol, cert["scale"], weights=qc
            )
            cert_c = _with_lower_bound(cert_c, info["lower_bound"])
            if cert_c["objective"] <= info["objective"] or cert_c["certified"]:
                W, b, n_iter = Wc, bc, n_iter + it
                info = dict(cert_c, method="lbfgs+cvxpy")
            else:  # keep the better primal, with the better bound
                info = _with_lower_bound(info, cert_c["lower_bound"])
            if info["certified"]:
                break
    if not info["certified"]:
        prefix = f"{owner}: " if owner else ""
        gap = info["duality_gap"]
        if np.isfinite(gap):
            what = (
                f"the duality gap is {gap * units:.3e} "
                f"({gap / max(abs(info['objective']), info['scale']):.2e} relative) "
                f"> tol={tol:.1e}"
            )
        else:
            what = (
                "no duality gap could be computed and the KKT residual is "
                f"{info['kkt_residual']:.3e}"
            )
        if res is not None and not res.success and res.nit >= max_iter:
            what += f"; L-BFGS reached max_iter={max_iter} ({res.message})"
        warnings.warn(
            f"{prefix}the solution is not certified optimal: {what}. Increase "
            "max_iter, scale the data, or use solver='cvxpy'.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    return W, b, n_iter, info


# Largest n * (number of parameters) for which a failed certificate is
# followed by the exact interior-point solve (Clarabel: about 1 s at 2e5).
_CVXPY_MAX_SIZE = 200_000


def _cvxpy_fallback_allowed(problem):
    size = problem.X.shape[0] * (problem.n_coef + problem.n_intercept)
    if size > _CVXPY_MAX_SIZE:
        return False
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        return False
    return True


def _solve_lbfgs(problem, tol, max_iter):
    n_params = problem.n_coef + problem.n_intercept
    w = np.zeros(n_params + problem.n_dual)
    n_iter = 0
    scale = _objective_scale(problem)
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
        tau0 = _initial_temperature(erm, np.zeros(n_params), 0.01)
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
    tau = 0.0
    if problem.needs_smoothing:
        tau = _initial_temperature(problem, w, 0.001 if precondition else 0.01)
    # Continuation: solve, certify, and shrink the temperature tenfold until
    # the duality gap is below tol (relative) or the smoothing error is far
    # below what the tolerance can resolve.
    # Every stage's dual point gives a valid lower bound on the optimum and
    # every stage's solution an upper one: the certificate keeps the best of
    # each (late stages, sharply smoothed, can end less accurately).
    best_w, best, best_lower, best_tau = None, None, -np.inf, tau
    for _ in range(30):
        if factor is None and precondition:
            factor = _cholesky_or_none(problem.hessian(w, tau))
        res = _lbfgs(problem, w, tau, tol, max_iter, factor)
        w = res.x
        n_iter += res.nit
        stage = _certificate(problem, w, tau, tol, scale, final=tau == 0.0)
        best_lower = max(best_lower, stage["lower_bound"])
        if best is None or stage["objective"] <= best["objective"]:
            best_w, best, best_tau = w, stage, tau
        cert = _with_lower_bound(best, best_lower)
        if cert["certified"] or tau == 0.0:
            break
        if problem.smoothing_error(tau) <= 1e-3 * cert["threshold"]:
            break
        # the gap of a smoothed solution is about proportional to the
        # temperature: aim at a quarter of the threshold, shrinking 2x to 100x
        ratio = 0.1
        if np.isfinite(stage["duality_gap"]) and stage["duality_gap"] > 0:
            ratio = 0.25 * stage["threshold"] / stage["duality_gap"]
        tau *= float(np.clip(ratio, 0.01, 0.5))
    if not cert["certified"] and best_tau > 0.0:
        # the full certificate (every dual point, tied-loss weights) once
        stage = _certificate(problem, best_w, best_tau, tol, scale, final=True)
        cert = _with_lower_bound(stage, max(best_lower, stage["lower_bound"]))
    if not cert["certified"] and tau == 0.0:
        # a smooth problem a little short of the tolerance: polish once with
        # a tighter gradient tolerance before anything heavier
        res = _lbfgs(problem, best_w, 0.0, 1e-3 * tol, max_iter, factor)
        n_iter += res.nit
        stage = _certificate(problem, res.x, 0.0, tol, scale)
        if stage["objective"] <= best["objective"] or stage["certified"]:
            best_w, best = res.x, stage
        cert = _with_lower_bound(best, max(best_lower, stage["lower_bound"]))
    W, b, dual = problem.unpack(best_w)
    return W, b, dual, n_iter, cert, res


def _initial_temperature(problem, w, start):
    """``start * std(losses)`` at ``w`` (1 when the losses are all equal).

    Preconditioned problems start at ``0.001 * std``: knowing the curvature
    across the kink, L-BFGS handles the sharper smoothing, and fewer losses lie
    in the band where the smoothing is active.
    """
    if not problem.needs_smoothing:
        return 0.0
    W, b, _ = problem.unpack(w)
    losses = problem.losses(W, b)
    spread = float(np.std(losses))
    if spread <= 1e-8 * (1.0 + abs(float(np.mean(losses)))):
        spread = max(abs(float(np.mean(losses))), 1e-300)
    return start * spread


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
