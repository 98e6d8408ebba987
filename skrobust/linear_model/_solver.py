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

    def with_ambiguity(self, ambiguity):
        """The same problem with another risk head (same data, no copy)."""
        return _Problem(
            self.X,
            self.target,
            self.p,
            self.loss,
            ambiguity,
            self.alpha,
            self.fit_intercept,
            coef_penalty=self.coef_penalty,
        )

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

    def hessian(self, w, tau, exact=False):
        """Hessian (or a stand-in) of the smoothed objective, for preconditioning.

        With the dual profiled out it is exact: by the chain rule, with ``q``
        the weights of the losses and ``diag(c) - v v^T`` the curvature of the
        smoothed risk over the losses, ``H = X^T diag(q l'' + c l'^2) X -
        (X^T (v l')) (X^T (v l'))^T`` (``X`` with a column of ones when
        fitting an intercept), plus the ridge penalty. For ERM ``q = p`` and
        ``c = 0``. When the dual variables are optimized jointly (chi-square,
        KL), the model block is ``X^T diag(q l'') X`` with ``q`` the weights of
        the dual at ``w``, and the dual block the identity. ``exact=True``
        leaves out the curvature floor of kinked losses (see below).
        """
        W, b, _ = self.unpack(w)
        Z = self.predictions(W, b)
        curvature = self.loss.curvature(Z, self.target, tau)
        if getattr(self.loss, "curvature_vanishes", False) and not exact:
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
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Wc, bc, it, status = solve_cvxpy(problem, accurate=tol)
        except (RuntimeError, ImportError, ValueError, ArithmeticError):
            Wc = None
        if Wc is not None:
            cert_c = _cvxpy_certificate(problem, Wc, bc, status, tol, cert["scale"])
            cert_c = _with_lower_bound(cert_c, cert["lower_bound"])
            if cert_c["objective"] <= cert["objective"] or cert_c["certified"]:
                W, b, n_iter = Wc, bc, n_iter + it
                info = dict(cert_c, method="lbfgs+cvxpy")
            else:  # keep the better primal, with the better bound
                info = _with_lower_bound(info, cert_c["lower_bound"])
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


def _reduces_to_max(problem):
    """Whether the ambiguity set is the maximum loss for every loss vector.

    The worst case of an f-divergence ball (or CVaR, total variation) is a
    point mass on the largest loss exactly when that point mass lies in the
    set, and the sample of least nominal weight is the hardest to reach: one
    exact solve on its indicator decides it for every loss vector.
    """
    if problem.trivial or problem.coef_penalty is not None:
        return False
    if not hasattr(problem.ambiguity, "worst_case_weights"):
        return False
    support = np.flatnonzero(problem.p > 0)
    if support.size < 2:
        return False
    lightest = support[np.argmin(problem.p[support])]
    indicator = np.zeros_like(problem.p)
    indicator[lightest] = 1.0
    inside = _membership(problem.ambiguity, problem.p)
    if inside is not None:
        # the point mass itself is in the set (O(n), no exact solve)
        return bool(inside(indicator))
    q = problem.ambiguity.worst_case_weights(indicator, problem.p)
    return bool(q[lightest] >= 1.0 - 1e-12)


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


def _with_lower_bound(cert, lower):
    """``cert`` with the lower bound ``lower`` if larger (any valid bound).

    A certificate whose objective is itself a dual value of an inner solve
    (ConditionalCVaR's LP) carries that solve's own gap as ``lp_gap``, which
    stays in the duality gap.
    """
    if not np.isfinite(lower) or lower <= cert["lower_bound"]:
        return cert
    gap = max(cert["objective"] + cert.get("lp_gap", 0.0) - lower, 0.0)
    return dict(
        cert,
        lower_bound=float(lower),
        duality_gap=gap,
        certified=cert["certified"] or gap <= cert["threshold"],
    )


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


# Floor of the objective's scale, as a fraction of the mean loss at zero.
_SCALE_FLOOR = 1e-3


def _objective_scale(problem):
    """Floor of the relative tolerance: 1e-3 times the mean loss at zero.

    Certificates compare the gap with ``tol * max(|objective|, scale)``, so
    that a (nearly) perfect fit, objective 0, is judged on the problem's own
    scale: its gap must be below ``tol * 1e-3`` times the null model's loss.
    """
    Z = np.zeros((problem.X.shape[0], problem.n_outputs))
    losses = problem.loss.value(Z, problem.target)
    # the nominal mean, not the robust risk: a floor needs no exact solve
    return max(_SCALE_FLOOR * abs(float(np.dot(problem.p, losses))), 1e-300)


def _certificate(problem, w, tau, tol, scale, final=True):
    """Duality gap and KKT residual of the exact objective at ``w``.

    Returns a dict with ``objective`` (exact, unsmoothed), ``lower_bound``,
    ``duality_gap`` (their difference, ``nan`` when no bound is available),
    ``kkt_residual`` (largest entry of the gradient, with the worst-case
    weights as the gradient of the risk: a subgradient at kinks),
    ``threshold`` (``tol * max(|objective|, scale)``), ``scale`` and
    ``certified``.

    The lower bound is Fenchel duality: for any ``q`` in the ambiguity set and
    any ``u`` in the domain of the loss conjugates ``l_i*`` with ``sum q_i u_i
    = 0`` (an intercept),

        F* >= -sum_i q_i l_i*(u_i) - ||X^T (q u)||^2 / (2 alpha),

    and for ``alpha = 0`` the same without the last term when ``X^T (q u) =
    0``. The dual point is the one the solver holds: the smoothed problem's
    weights (mapped into the set) and loss derivatives, which converge to a
    saddle point as the temperature shrinks. ``u`` is made feasible by a
    move towards the domain's bounds (intercept) or by a projection onto the
    null space of ``[X 1]^T diag(q)`` (``alpha = 0``, up to
    ``_MAX_PRECONDITIONED`` parameters; one O(n d^2) pass) and a scaling into
    the domain. With ``alpha > 0`` the certificate costs one O(n d) pass.

    A smooth objective whose KKT residual is below ``100 * tol`` (the L-BFGS
    gradient tolerance, with the usual slack) is also certified.

    ``final=False`` (intermediate smoothing stages) tries only the smoothed
    dual point and skips the search for stationary weights at tied losses
    (:func:`_stationary_weights`, O(n d^2)).
    """
    W, b, dual = problem.unpack(w)
    Z = problem.predictions(W, b)
    p = problem.p
    losses, u_exact = problem.loss.value_grad(Z, problem.target)
    if problem.trivial:
        risk, q_exact = float(np.dot(p, losses)), p
    else:
        risk, q_exact = problem.ambiguity.risk_and_weights(losses, p)
    value = float(risk) + 0.5 * problem.alpha * float(np.sum(W * W))
    if problem.coef_penalty is not None:
        value += float(problem.coef_penalty.penalty(W, problem.loss.lipschitz)[0])
    threshold = tol * max(abs(value), scale)
    smooth = (
        problem.loss.smooth_bound == 0
        and problem.coef_penalty is None
        and (problem.trivial or not problem.ambiguity.needs_smoothing)
    )
    # one pass over X: the gradient with the worst-case weights and, for
    # alpha > 0, what the Fenchel bound needs (see _fenchel_lower)
    multi = problem.n_outputs > 1
    fenchel = hasattr(problem.loss, "conjugate")
    fenchel = fenchel and (problem.coef_penalty is None or not multi)
    penalized = problem.coef_penalty is not None
    G = u_exact * q_exact[:, None]
    columns = [G]
    if fenchel and problem.alpha > 0 and not multi and not penalized:
        columns.append(_bound_columns(problem, q_exact))
    products = problem.X.T @ np.column_stack(columns)
    K = problem.n_outputs
    grad = products[:, :K]
    exact_products = products if fenchel and problem.alpha > 0 and not multi else None
    if problem.alpha:
        grad = grad + problem.alpha * W
    kkt = float(np.max(np.abs(grad))) if grad.size else 0.0
    if problem.fit_intercept:
        kkt = max(kkt, float(np.max(np.abs(G.sum(axis=0)))))
    if problem.coef_penalty is not None:
        kkt = np.nan  # the penalty's subgradient is not formed
    lower = -np.inf
    if smooth and problem.alpha == 0 and kkt <= 100 * tol:
        # certified by the KKT residual; without a ridge the Fenchel bound
        # needs an O(n d^2) projection, too dear for a smooth objective
        fenchel = False
    if fenchel:
        if multi:
            candidates = [(q_exact, u_exact, None)]
        else:
            candidates = [(q_exact, u_exact[:, 0], exact_products)]
        if tau > 0:
            smooth_losses, u_smooth = problem.loss.value_grad(Z, problem.target, tau)
            q_smooth = _smoothed_weights(problem, smooth_losses, tau)
            q_smooth = q_exact if q_smooth is None else q_smooth
            candidates.insert(
                0, (q_smooth, u_smooth if multi else u_smooth[:, 0], None)
            )
            if not final:
                candidates = candidates[:1]
        elif multi and not problem.trivial and problem.profile_dual:
            q_smooth = _smoothed_weights(problem, losses, 0.0)
            if q_smooth is not None:
                candidates.insert(0, (q_smooth, u_exact, None))
        for q, u, cols in candidates:
            if multi:
                bound = _fenchel_lower_multi(problem, q, u, w)
            else:
                bound = _fenchel_lower(problem, q, u, w, cols)
            if bound is not None and bound > lower:
                lower = bound
            if value - lower <= threshold:
                break
        if (
            tau > 0
            and not multi
            and value - lower > threshold
            and (final or value - lower <= 100 * threshold)
            and problem.n_coef + problem.n_intercept <= _MAX_PRECONDITIONED
        ):
            # close to the tolerance: one Newton step refines the dual point
            point = _newton_dual_point(problem, w, tau)
            if point is not None:
                bound = _fenchel_lower(problem, point[0], point[1], w)
                if bound is not None and bound > lower:
                    lower = bound
    if (
        final
        and fenchel
        and (not multi or problem.alpha == 0)
        and not penalized
        and value - lower > threshold
        and problem.n_coef + problem.n_intercept <= _MAX_PRECONDITIONED
    ):
        # tied losses (a kink of the risk): search the set for the weights
        # that make the gradient vanish (for the multinomial loss without a
        # ridge, the only dual point its Fenchel bound can use)
        if multi:
            q_tie = _stationary_weights(problem, q_exact, u_exact[:, :-1], W)
            if q_tie is not None:
                bound = _fenchel_lower_multi(problem, q_tie, u_exact, w)
        else:
            q_tie = _stationary_weights(problem, q_exact, u_exact[:, 0], W)
            if q_tie is not None:
                bound = _fenchel_lower(problem, q_tie, u_exact[:, 0], w)
        if q_tie is not None and bound is not None and bound > lower:
            lower = bound
    gap = value - lower if np.isfinite(lower) else np.nan
    certified = bool(np.isfinite(gap) and gap <= threshold)
    if smooth and not certified:
        if kkt > 100 * tol and problem.n_dual:
            # a joint (model, dual) formulation is smooth where the profiled
            # risk has a kink (tied losses): its gradient is the KKT residual
            _, joint_grad = problem(w, 0.0)
            kkt = min(kkt, float(np.max(np.abs(joint_grad))))
        certified = kkt <= 100 * tol
    return _certificate_info(
        value,
        lower,
        gap,
        kkt,
        threshold,
        scale,
        certified=certified,
        # (private) the exact risk and worst-case weights at w, for reuse
        _risk_weights=(float(risk), q_exact),
    )


def _certificate_info(objective, lower, gap, kkt, threshold, scale, **extra):
    """The certificate dict every certified solve reports (``solver_info_``).

    ``certified`` defaults to a finite ``gap`` within ``threshold``; the
    keys in ``extra`` (``certified``, ``method``, ``lp_gap``, ...) are added
    or override.
    """
    info = {
        "objective": float(objective),
        "lower_bound": float(lower),
        "duality_gap": float(max(gap, 0.0)) if np.isfinite(gap) else np.nan,
        "kkt_residual": kkt,
        "threshold": float(threshold),
        "scale": float(scale),
        "certified": bool(np.isfinite(gap) and gap <= threshold),
    }
    info.update(extra)
    return info


def _newton_dual_point(problem, w, tau):
    """The dual point ``(q, u)`` after one Newton step on the smoothed problem.

    At a smoothed solution the gradient ``[X 1]^T (q u)`` is small but not
    zero, and the Fenchel bound pays for it. The Newton step ``d = -H^{-1}
    g`` (``H`` the exact Hessian of :meth:`_Problem.hessian`, one O(n d^2)
    pass) moves the predictions by ``dz = [X 1] d``; to first order the loss
    derivatives move by ``l'' dz`` and the risk's weights by ``(diag(c) - v
    v^T) (l' dz)`` (the smoothed risk's curvature), which cancels the
    gradient up to second order. The moved point is then put back into the
    domains (clipped) and the set (the set's own mapping, or a scaling
    towards the current weights). Only for one output, no coefficient
    penalty, and sets profiled out (CVaR, total variation, the maximum) or
    trivial.
    """
    if (
        problem.n_outputs != 1
        or problem.coef_penalty is not None
        or not hasattr(problem.loss, "curvature")
        or problem.n_dual
        or (
            not problem.trivial
            and not hasattr(problem.ambiguity, "_profiled_curvature")
        )
    ):
        return None
    p = problem.p
    W, b, _ = problem.unpack(w)
    Z = problem.predictions(W, b)
    smooth_losses, dZ = problem.loss.value_grad(Z, problem.target, tau)
    u = dZ[:, 0]
    curvature = problem.loss.curvature(Z, problem.target, tau)
    if problem.trivial:
        q = p
    else:
        dual, _, q = problem._profile(smooth_losses, tau)
    _, grad = problem(w, tau)
    H = problem.hessian(w, tau, exact=True)
    step = -np.linalg.lstsq(H, grad[: H.shape[0]], rcond=1e-13)[0]
    d = problem.n_coef
    dz = problem.X @ step[:d]
    if problem.fit_intercept:
        dz += step[d]
    u_new = u + curvature * dz
    bounds = problem.loss.dual_bounds(problem.target)
    if bounds is not None:
        u_new = np.clip(u_new, bounds[0], bounds[1])
    if problem.trivial:
        return p, u_new
    diag, vec = problem.ambiguity._profiled_curvature(dual, smooth_losses, p, tau)
    dl = u * dz
    q_new = np.maximum(q + diag * dl - vec * float(vec @ dl), 0.0)
    q_feasible = _smoothed_weights(problem, smooth_losses, tau)
    # radius balls (with a `divergence`) keep the bisection below: their
    # feasible_weights (issue 15) shrink toward p, not toward q_feasible
    if hasattr(problem.ambiguity, "feasible_weights") and not hasattr(
        problem.ambiguity, "divergence"
    ):
        q_new = problem.ambiguity.feasible_weights(q_new, p)
    else:
        q_new = q_new / q_new.sum()
        inside = _membership(problem.ambiguity, p)
        if inside is None or q_feasible is None:
            return None
        if not inside(q_new):
            lo, hi = 0.0, 1.0
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                if inside(q_feasible + mid * (q_new - q_feasible)):
                    lo = mid
                else:
                    hi = mid
            q_new = q_feasible + lo * (q_new - q_feasible)
    return q_new, u_new


def _stationary_weights(problem, q0, u, W):
    """Weights in the set closest to ``p`` that make the gradient vanish.

    At a kink of the risk (tied losses, for example a constant predictor)
    every weight vector of the set that maximizes ``E_q[loss]`` is a
    subgradient, and the optimality condition is that one of them gives
    ``[X 1]^T (q u_k) = -alpha [W_k, 0]`` for every output ``k``. This solves

        min_q sum_i (q_i - p_i)^2 / p_i  s.t.  those equations, sum q = 1,
        q >= 0

    (the chi-square distance to ``p``) by a semismooth Newton method on its
    dual, ``q = p max(0, 1 + C lam)`` with ``C = [diag(u_k) [X 1] ..., 1]``:
    each step one weighted Gram matrix per pair of outputs, O(n d^2 K^2), no
    copy of ``X``. ``u`` is ``(n,)`` (one output) or ``(n, K)``; for the
    multinomial loss (rows of ``u`` sum to zero, so the last output's
    equations follow from the others when ``alpha = 0``) pass ``K - 1``
    columns. If the result is outside the set it is moved back towards
    ``q0`` (in the set) until it is inside. ``None`` when the set's
    membership test is unknown.
    """
    p = problem.p
    inside = _membership(problem.ambiguity, p)
    if inside is None:
        return None
    X = problem.X
    d = X.shape[1]
    icpt = problem.fit_intercept
    U = u[:, None] if u.ndim == 1 else u
    K = U.shape[1]
    width = d + int(icpt)  # equations per output
    m = K * width + 1
    target = np.zeros(m)
    for k in range(K):
        target[k * width : k * width + d] = -problem.alpha * W[:, k]
    target[-1] = 1.0

    def apply_c(lam):
        out = np.full(X.shape[0], lam[-1])
        for k in range(K):
            block = lam[k * width : (k + 1) * width]
            inner = X @ block[:d]
            if icpt:
                inner += block[d]
            out += U[:, k] * inner
        return out

    def apply_ct(v):
        parts = []
        for k in range(K):
            uv = U[:, k] * v
            parts.append(X.T @ uv)
            if icpt:
                parts.append([uv.sum()])
        parts.append([v.sum()])
        return np.concatenate(parts)

    def gram(weights):
        # C^T diag(weights) C from [X 1]^T diag(weights u_k u_l) [X 1] and
        # X^T (w u_k); a difference of two Gram matrices for k != l (the
        # product u_k u_l takes both signs)
        G = np.empty((m, m))
        for k in range(K):
            rows = slice(k * width, (k + 1) * width)
            for j in range(k, K):
                cols = slice(j * width, (j + 1) * width)
                c = weights * U[:, k] * U[:, j]
                block = _weighted_gram(X, np.maximum(c, 0.0), icpt)
                if j != k:
                    block -= _weighted_gram(X, np.maximum(-c, 0.0), icpt)
                G[rows, cols] = block
                G[cols, rows] = block.T
            wu = weights * U[:, k]
            G[k * width : k * width + d, -1] = G[-1, k * width : k * width + d] = (
                X.T @ wu
            )
            if icpt:
                G[k * width + d, -1] = G[-1, k * width + d] = wu.sum()
        G[-1, -1] = weights.sum()
        return G

    def dual_value(lam, q):
        # the concave dual: lam^T target - sum q^2 / (2 p) (up to a constant)
        return float(lam @ target) - 0.5 * float(np.sum(q * q / np.where(p > 0, p, 1)))

    lam = np.zeros(m)
    q = p.copy()
    scale_t = 1.0 + float(np.max(np.abs(target)))
    for _ in range(30):
        resid = apply_ct(q) - target
        if float(np.max(np.abs(resid))) <= 1e-13 * scale_t:
            break
        active = (1.0 + apply_c(lam)) > 0
        J = gram(p * active)
        step = np.linalg.lstsq(J, -resid, rcond=1e-13)[0]
        value = dual_value(lam, q)
        t = 1.0
        for _ in range(30):  # backtracking on the dual objective
            trial = lam + t * step
            q_trial = p * np.maximum(0.0, 1.0 + apply_c(trial))
            if dual_value(trial, q_trial) >= value - 1e-15 * abs(value):
                break
            t *= 0.5
        lam, q = trial, q_trial
    total = q.sum()
    if not total > 0:
        return None
    q = q / total
    if inside(q):
        return q
    lo, hi = 0.0, 1.0  # the segment from q0 (inside) to q; the set is convex
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if inside(q0 + mid * (q - q0)):
            lo = mid
        else:
            hi = mid
    return q0 + lo * (q - q0)


def _membership(ambiguity, p):
    """A test ``q in set`` for the sets of :mod:`skrobust.ambiguity`, or None."""
    from skrobust.ambiguity import KL, CressieRead, CVaR, TotalVariation

    support = p > 0
    slack = 1.0 - 1e-12
    if isinstance(ambiguity, CressieRead):
        k = 2.0 if not hasattr(ambiguity, "k") else float(ambiguity.k)
        rho = float(ambiguity.radius)

        def inside(q):
            if np.any(q[~support] > 0):
                return False
            t = q[support] / p[support]
            f = (t**k - k * t + k - 1.0) / (k * (k - 1.0))
            return float(p[support] @ f) <= rho * slack

        return inside
    if isinstance(ambiguity, KL):
        rho = float(ambiguity.radius)

        def inside(q):
            if np.any(q[~support] > 0):
                return False
            qs = q[support]
            pos = qs > 0
            return float(qs[pos] @ np.log(qs[pos] / p[support][pos])) <= rho * slack

        return inside
    if isinstance(ambiguity, CVaR):
        cap = p / float(ambiguity.alpha)
        return lambda q: bool(np.all(q <= cap * (1.0 + 1e-12)))
    if isinstance(ambiguity, TotalVariation):
        delta = float(ambiguity.radius)
        return lambda q: 0.5 * float(np.abs(q - p).sum()) <= delta * slack
    if isinstance(ambiguity, _Max):
        return lambda q: not np.any(q[~support] > 0)
    return None


def _bound_columns(problem, q):
    """``[q * lo, q * hi, q]`` for the conjugate domains (zeros if unbounded)."""
    bounds = problem.loss.dual_bounds(problem.target)
    if bounds is None:
        zero = np.zeros_like(q)
        return np.column_stack([zero, zero, q])
    lo, hi = bounds
    return np.column_stack([q * lo, q * hi, q])


def _smoothed_weights(problem, smooth_losses, tau):
    """Weights of the smoothed head, mapped into the ambiguity set (or None)."""
    if problem.trivial:
        return problem.p
    if not problem.profile_dual:
        return None
    amb = problem.ambiguity
    p = problem.p
    dual, _, g = problem._profile(smooth_losses, tau)
    # radius balls (with a `divergence`, issue 15) keep their old path here
    if hasattr(amb, "feasible_weights") and not hasattr(amb, "divergence"):
        return amb.feasible_weights(g, p)
    if hasattr(amb, "_cvar") and hasattr(amb, "radius"):
        # total variation: (1 - delta) * (CVaR_{1-delta} weights) + delta * any
        # distribution lies in the ball (their sum of |q - p| / 2 <= delta)
        cvar = amb._cvar()
        delta = float(amb.radius)
        _, g_cvar, _ = cvar.dual_objective(dual, smooth_losses, p, smoothing=tau)
        top = _softmax_on_support(smooth_losses, p, tau)
        return (1.0 - delta) * cvar.feasible_weights(g_cvar, p) + delta * top
    return None


def _softmax_on_support(losses, p, tau):
    """Softmax of ``losses / tau`` on the support of ``p``.

    At ``tau = 0`` its limit: uniform on the largest losses of the support.
    """
    if tau == 0:
        top = np.where(p > 0, losses, -np.inf)
        top = (top == top.max()).astype(float)
        return top / top.sum()
    scaled = np.where(p > 0, losses / tau, -np.inf)
    scaled -= scaled.max()
    e = np.exp(scaled)
    return e / e.sum()


def _fenchel_lower(problem, q, u, w, products=None):
    """Fenchel lower bound on the optimum from weights ``q`` and duals ``u``.

    See :func:`_certificate`; ``None`` when no feasible point was found.
    ``products``, when given, is ``X^T [q u, q lo, q hi, q]`` (``lo``, ``hi``
    the conjugates' domain, see :func:`_bound_columns`): for ``alpha > 0``
    the bound then needs no further pass over ``X``.
    """
    loss = problem.loss
    X, target = problem.X, problem.target
    q = np.asarray(q, dtype=float)
    bounds = loss.dual_bounds(target)
    if problem.coef_penalty is not None:
        return _fenchel_lower_penalized(problem, q, u, bounds)
    if problem.alpha > 0:
        if products is None:
            products = X.T @ np.column_stack([q * u, _bound_columns(problem, q)])
        xt_qu = products[:, 0]
        if problem.fit_intercept:
            u, t, side = _balance_intercept(u, q, bounds)
            if u is None:
                return None
            # X^T (q u) of the balanced u, from the same products
            if side == "lo":
                xt_qu = (1.0 - t) * xt_qu + t * products[:, 1]
            elif side == "hi":
                xt_qu = (1.0 - t) * xt_qu + t * products[:, 2]
            elif side == "shift":
                xt_qu = xt_qu - t * products[:, 3]
        quad = float(xt_qu @ xt_qu) / (2.0 * problem.alpha)
        correction = 0.0
    else:
        n_params = problem.n_coef + problem.n_intercept
        if n_params > _MAX_PRECONDITIONED:
            return None
        room = _room(u, bounds)
        H = _weighted_gram(X, q * room, problem.fit_intercept)
        u = _project_null(X, q, u, H, problem.fit_intercept, room)
        u = _scale_into(u, bounds)
        # what rounding leaves of X^T (q u) enters through the coefficients:
        # charge it at twice the current ones (a bounded-region argument)
        r = X.T @ (q * u)
        theta = np.abs(w[: problem.n_coef])
        correction = 2.0 * float(np.abs(r) @ theta)
        if problem.fit_intercept:
            correction += 2.0 * abs(float(q @ u)) * abs(float(w[problem.n_coef]))
        quad = 0.0
    support = q > 0
    conj = loss.conjugate(u[support], target[support])
    if not np.all(np.isfinite(conj)):
        return None
    return -float(q[support] @ conj) - quad - correction


def _fenchel_lower_penalized(problem, q, u, bounds):
    """The Fenchel bound with a Wasserstein penalty ``c ||W||_*``.

    The conjugate of ``alpha / 2 ||W||^2 + c ||W||_*`` (``c = radius * L``)
    at ``v`` is ``dist(v, B)^2 / (2 alpha)``, ``B`` the ball of radius ``c``
    in the transport norm (the dual of the penalty's norm), and for ``alpha
    = 0`` the indicator of ``B``, reached by scaling ``u`` towards 0 (inside
    the domain of every Lipschitz loss here). Two passes over ``X``.
    """
    pen = problem.coef_penalty
    c = float(pen.radius) * float(problem.loss.lipschitz)
    order = {2: 2, 1: np.inf, np.inf: 1}[pen._dual_order()]
    if problem.fit_intercept:
        u, _, _ = _balance_intercept(u, q, bounds)
        if u is None:
            return None
    v = problem.X.T @ (q * u)
    if problem.alpha > 0:
        quad = _distance_to_ball(v, c, order) ** 2 / (2.0 * problem.alpha)
    else:
        size = float(np.linalg.norm(v, order))
        if size > c:
            u = u * (c / size)
        quad = 0.0
    support = q > 0
    conj = problem.loss.conjugate(u[support], problem.target[support])
    if not np.all(np.isfinite(conj)):
        return None
    return -float(q[support] @ conj) - quad


def _distance_to_ball(v, c, order):
    """Euclidean distance from ``v`` to ``{z : ||z||_order <= c}``."""
    if order == 2:
        return max(float(np.linalg.norm(v)) - c, 0.0)
    if order == np.inf:
        return float(np.linalg.norm(v - np.clip(v, -c, c)))
    a = np.abs(v)
    if a.sum() <= c:
        return 0.0
    # l1 ball: soft-threshold at theta with sum (|v| - theta)_+ = c
    s = np.sort(a)[::-1]
    cums = np.cumsum(s) - c
    k = np.arange(1, s.size + 1)
    rho = np.flatnonzero(s - cums / k > 0)[-1]
    theta = cums[rho] / (rho + 1)
    return float(np.linalg.norm(v - np.sign(v) * np.maximum(a - theta, 0.0)))


def _fenchel_lower_multi(problem, q, U, w=None):
    """The Fenchel bound of :func:`_fenchel_lower` for the multinomial loss.

    ``U`` (n, K) holds ``softmax(z_i) - e_{y_i}``; an intercept needs ``sum_i
    q_i U_i = 0``, reached by the convex combination ``(1 - t) U_i + t (m -
    e_{y_i})`` with the smallest ``t`` that keeps ``m`` (a class distribution
    next to the weighted class frequencies) on the simplex. Two passes over
    ``X``.

    For ``alpha = 0`` the bound needs ``[X 1]^T (q U) = 0``: ``(q, U)`` from
    :func:`_stationary_weights` meets it up to rounding, and what is left,
    ``r``, enters through the coefficients at twice the current ones, as in
    :func:`_fenchel_lower` (``w``, the flat parameters, is needed then;
    ``None`` without it).
    """
    X, target = problem.X, problem.target
    if problem.alpha <= 0:
        if w is None:
            return None
        W, b, _ = problem.unpack(w)
        support = q > 0
        conj = problem.loss.conjugate(U[support], target[support])
        if not np.all(np.isfinite(conj)):
            return None
        qU = U * q[:, None]
        correction = 2.0 * float(np.sum(np.abs(X.T @ qU) * np.abs(W)))
        if problem.fit_intercept:
            correction += 2.0 * float(np.abs(qU.sum(axis=0)) @ np.abs(b))
        return -float(q[support] @ conj) - correction
    n, K = U.shape
    E = np.zeros((n, K))
    E[np.arange(n), target] = 1.0
    xt_qu = X.T @ (U * q[:, None])
    if problem.fit_intercept:
        g = q @ U
        ybar = q @ E
        positive = g > 0
        if np.any(positive & (ybar <= 0)):
            return None
        if np.any(positive):
            r = float(np.max(g[positive] / ybar[positive]))
            t = r / (1.0 + r)
            m = np.maximum(ybar - g / r, 0.0)
            m /= m.sum()
            U = (1.0 - t) * U + t * (m[None, :] - E)
            xt_q = X.T @ np.column_stack([q, E * q[:, None]])
            xt_qu = (1.0 - t) * xt_qu + t * (np.outer(xt_q[:, 0], m) - xt_q[:, 1:])
    support = q > 0
    conj = problem.loss.conjugate(U[support], target[support])
    if not np.all(np.isfinite(conj)):
        return None
    quad = float(np.sum(xt_qu * xt_qu)) / (2.0 * problem.alpha)
    return -float(q[support] @ conj) - quad


def _balance_intercept(u, q, bounds):
    """Move ``u`` so that ``sum q u = 0``, staying in the conjugates' domain.

    Unbounded domains take a uniform shift ``u - t``; bounded ones the convex
    combination ``(1 - t) u + t lo`` (or ``hi``) on the side that reduces the
    sum. Returns ``(u, t, side)``, or ``(None, 0, None)`` if impossible.
    """
    total = float(q.sum())
    g = float(q @ u)
    if g == 0.0:
        return u, 0.0, None
    if bounds is None:
        t = g / total
        return u - t, t, "shift"
    lo, hi = bounds
    if g > 0:
        room = float(q @ (u - lo))
        if room < g:
            return None, 0.0, None
        t = g / room
        return (1.0 - t) * u + t * lo, t, "lo"
    room = float(q @ (hi - u))
    if room < -g:
        return None, 0.0, None
    t = -g / room
    return (1.0 - t) * u + t * hi, t, "hi"


def _room(u, bounds):
    """How far each ``u_i`` may move inside its domain, in [0, 1].

    ``(u - lo) (hi - u) / ((hi - lo) / 2)^2`` for bounded domains, 1 for
    unbounded ones: a projection weighted by it moves the duals at the kink
    (a smoothed absolute loss's interpolated samples) and leaves the
    saturated ones, so the result rarely has to be scaled back into the box.
    """
    if bounds is None:
        return np.ones_like(u)
    lo, hi = bounds
    half = 0.5 * (hi - lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        room = (u - lo) * (hi - u) / np.where(half > 0, half * half, 1.0)
    return np.clip(np.where(half > 0, room, 0.0), 0.0, 1.0)


def _project_null(X, q, u, H, fit_intercept, room):
    """``u - room * [X 1] lam`` with ``[X 1]^T diag(q) (that) = 0``.

    The least change in the metric ``sum q delta^2 / room``; ``H`` is
    ``[X 1]^T diag(q room) [X 1]``.
    """
    d = X.shape[1]
    qu = q * u
    r = X.T @ qu
    if fit_intercept:
        r = np.append(r, qu.sum())
    for _ in range(2):  # one step of iterative refinement
        lam = np.linalg.lstsq(H, r, rcond=1e-13)[0]
        step = X @ lam[:d]
        if fit_intercept:
            step += lam[d]
        u = u - room * step
        qu = q * u
        r = X.T @ qu
        if fit_intercept:
            r = np.append(r, qu.sum())
    return u


def _scale_into(u, bounds):
    """Scale ``u`` towards 0 (inside every domain here) until it fits."""
    if bounds is None:
        return u
    lo, hi = bounds
    with np.errstate(divide="ignore", invalid="ignore"):
        caps = np.where(u > hi, hi / u, np.where(u < lo, lo / u, 1.0))
    t = float(np.clip(np.min(caps), 0.0, 1.0)) if caps.size else 1.0
    return u * t


class _Max:
    """The maximum loss over the support, smoothed by a log-sum-exp.

    Stands in for an ambiguity set that puts all its mass on the largest loss
    for every loss vector (see :func:`_reduces_to_max`).
    """

    n_dual = 0
    needs_smoothing = True

    def is_trivial(self):
        return False

    def smoothing_error(self, tau, p=None):
        n = int(np.count_nonzero(p)) if p is not None else 1
        return float(tau) * np.log(max(n, 1))

    def risk(self, losses, p):
        return float(np.max(losses[p > 0]))

    def risk_and_weights(self, losses, p):
        on_support = np.where(p > 0, losses, -np.inf)
        top = on_support.max()
        q = np.where(on_support >= top, p, 0.0)
        return float(top), q / q.sum()

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        return np.empty(0)

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        if smoothing > 0:
            value, q = self._smoothed(losses, p, smoothing)
        else:
            value, q = self.risk_and_weights(losses, p)
        return value, q, np.empty(0)

    def _smoothed(self, losses, p, tau):
        scaled = np.where(p > 0, losses / tau, -np.inf)
        top = scaled.max()
        e = np.exp(scaled - top)
        total = e.sum()
        return float(tau * (top + np.log(total))), e / total

    def _profiled(self, losses, p, smoothing, start=None):
        value, q = self._smoothed(losses, p, smoothing)
        return np.empty(0), value, q

    def _profiled_curvature(self, dual, losses, p, smoothing):
        _, q = self._smoothed(losses, p, smoothing)
        return q / smoothing, q / np.sqrt(smoothing)

    def feasible_weights(self, q, p):
        # every distribution on the support is in the set of the maximum
        q = np.where(p > 0, np.maximum(q, 0.0), 0.0)
        return q / q.sum()


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


class _Mean:
    """The trivial ambiguity set, used for the ERM warm start."""

    n_dual = 0
    needs_smoothing = False

    def is_trivial(self):
        return True

    def smoothing_error(self, tau, p=None):
        return 0.0


def _clarabel_tol(tol):
    """Clarabel's gap tolerances for a fallback solve at tolerance ``tol``.

    A tenth of ``tol`` (so that its OPTIMAL status certifies ``tol``), at most
    Clarabel's default 1e-8 and at least 1e-11, about what an interior-point
    method resolves in float64.
    """
    return float(min(max(0.1 * tol, 1e-11), 1e-8))


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
