"""The marginal robust risk: its conic dual (cvxpy) and the certificate.

The worst case over smooth likelihood ratios of chosen covariates Z is, by
duality, a chi-square robust risk of losses transported along the edges of a
graph on Z (:class:`_MarginalProblem`), solved by Clarabel; the certificate
bounds the optimum with the linear engine's Fenchel bound.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors

from skrobust.ambiguity import ChiSquare
from skrobust.linear_model._losses import _BinaryLogistic, _Multinomial, _Squared
from skrobust.linear_model._solver import (
    _certificate_info,
    _fenchel_lower,
    _fenchel_lower_multi,
    _lbfgs,
    _Mean,
    _Problem,
)
from skrobust.subpopulation._linear import (
    _loss_and_derivative,
)
from skrobust.utils._validation import check_losses, check_probability_weights

# all ordered pairs of n samples are n * (n - 1) transport variables; above
# this many the pairwise structure needs n_neighbors
_MAX_PAIRS = 250_000


def _is_chain(Z, holder_exponent, n_neighbors):
    """Whether all pairs reduce exactly to the neighbors in sorted order.

    With one covariate and ``beta = 1`` the cost ``|z_i - z_j|`` is additive
    along the sorted values, so the Lipschitz constraints of consecutive
    samples imply all the others (triangle inequality): ``2 (n - 1)`` edges
    instead of ``n (n - 1)``, for any ``n``.
    """
    return n_neighbors is None and Z.shape[1] == 1 and float(holder_exponent) == 1.0


def _transport_edges(Z, holder_exponent, n_neighbors):
    """Directed edges (src, dst) and their cost ||z_src - z_dst||^beta."""
    n = Z.shape[0]
    if _is_chain(Z, holder_exponent, n_neighbors):
        order = np.argsort(Z[:, 0], kind="stable")
        src = np.concatenate([order[:-1], order[1:]])
        dst = np.concatenate([order[1:], order[:-1]])
        cost = np.abs(Z[src, 0] - Z[dst, 0])
        return src.astype(np.intp), dst.astype(np.intp), cost
    if n_neighbors is None:
        if n * (n - 1) > _MAX_PAIRS:
            raise ValueError(
                f"n_neighbors=None uses all {n * (n - 1)} ordered pairs of the "
                f"{n} samples, more than {_MAX_PAIRS}; set n_neighbors (e.g. 10) "
                "to restrict the transport to a nearest-neighbor graph."
            )
        src, dst = np.nonzero(~np.eye(n, dtype=bool))
    else:
        k = min(int(n_neighbors), n - 1)
        if k < 1:
            return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
        nn = NearestNeighbors(n_neighbors=k + 1).fit(Z)
        _, index = nn.kneighbors(Z)
        rows = np.repeat(np.arange(n), k + 1)
        cols = index.ravel()
        keep = rows != cols
        pairs = np.concatenate(
            [np.column_stack([rows, cols])[keep], np.column_stack([cols, rows])[keep]]
        )
        pairs = np.unique(pairs, axis=0)
        src, dst = pairs[:, 0], pairs[:, 1]
    cost = np.linalg.norm(Z[src] - Z[dst], axis=1) ** float(holder_exponent)
    return src.astype(np.intp), dst.astype(np.intp), cost


def _transport_matrix(src, dst, p):
    """Sparse map from edge masses m to the transported loss t (in loss units).

    Moving mass :math:`m_e` of the loss of sample ``src`` to ``dst`` lowers
    the loss of ``src`` by :math:`m_e / p_{src}` and raises the loss of
    ``dst`` by :math:`m_e / p_{dst}`.
    """
    n, n_edges = p.shape[0], src.shape[0]
    cols = np.arange(n_edges)
    # one matrix with two entries per column (no intermediate matrices)
    return sp.csc_matrix(
        (
            np.concatenate([1.0 / p[src], -1.0 / p[dst]]),
            (np.concatenate([src, dst]), np.concatenate([cols, cols])),
        ),
        shape=(n, n_edges),
    )


class _MarginalProblem:
    """The smooth marginal robust risk as a cvxpy problem (the paper's dual).

    The worst case ranges over likelihood ratios :math:`w(Z)` with
    :math:`E_p[w] = 1`, :math:`E_p[w^2] \\le 1/\\alpha` and
    :math:`|w_i - w_j| \\le L D_{ij}`. Its dual moves loss along the edges at
    a price :math:`L D_e` per unit of probability mass moved: the chi-square
    robust risk (:meth:`skrobust.ambiguity.ChiSquare.cvxpy_risk`) of the
    transported losses plus the transport cost.
    """

    def __init__(self, Z, p, alpha, lipschitz, holder_exponent, n_neighbors):
        self.p = p
        self.lipschitz = float(lipschitz)
        self.ball = ChiSquare(radius=0.5 * (1.0 / float(alpha) - 1.0))
        self.trivial = self.lipschitz == 0.0 or self.ball.is_trivial()
        self.smooth = not self.trivial and np.isfinite(self.lipschitz)
        if self.smooth:
            src, dst, cost = _transport_edges(Z, holder_exponent, n_neighbors)
            self.smooth = src.size > 0
        if self.smooth:
            self.src, self.dst, self.cost = src, dst, cost
            self.transport = _transport_matrix(src, dst, p)
            self.n_edges = int(src.size)
        else:
            self.src = self.dst = np.zeros(0, dtype=np.intp)
            self.cost = np.zeros(0)
            self.n_edges = 0

    def risk_expression(self, loss_expr):
        """Convex risk expression and its constraints.

        In the smooth case the transported losses are a variable bounding the
        losses minus the transport from above; the constraint's multiplier is
        the worst-case distribution :math:`p_i w(Z_i)` (it also satisfies the
        Lipschitz constraints, by stationarity in the transport plan).
        """
        import cvxpy as cp

        if self.trivial:
            return self.p @ loss_expr, []
        if not self.smooth:
            # the link's multiplier is the worst case (for the certificate)
            shifted = cp.Variable(self.p.shape[0])
            self._link = loss_expr <= shifted
            return self.ball.cvxpy_risk(shifted, self.p)[0], [self._link]
        mass = cp.Variable(self.n_edges, nonneg=True)
        self._mass = mass
        shifted = cp.Variable(self.p.shape[0])
        # the risk increases with each transported loss: tight at the optimum
        self._link = loss_expr - self.transport @ mass <= shifted
        risk = self.ball.cvxpy_risk(shifted, self.p)[0]
        return risk + self.lipschitz * (self.cost @ mass), [self._link]

    def weights(self, losses):
        """Worst-case distribution over the samples at the solution.

        In the smooth case: the multiplier of the link constraint, mapped
        into the set (:meth:`feasible`); ``None`` if that fails.
        """
        if self.trivial:
            return self.p.copy()
        link = getattr(self, "_link", None)
        if link is None or link.dual_value is None:
            if not self.smooth:
                return self.ball.worst_case_weights(losses, self.p)
            return None
        q = np.abs(np.asarray(link.dual_value, dtype=np.float64)).ravel()
        return self.feasible(q)

    def feasible(self, q):
        """Weights ``q = p w`` moved into the set, or ``None``.

        ``w`` is averaged over the groups of samples joined by zero-cost
        edges (equal Z: their ratios must be equal; averaging keeps
        ``E_p[w] = 1`` and does not raise ``E_p[w^2]``), then mixed with
        the constant ratio 1 (inside the set) just enough that the second
        moment and every Lipschitz constraint hold.
        """
        p = self.p
        total = float(q.sum())
        if not total > 0 or not np.all(np.isfinite(q)):
            return None
        w = q / total / p
        zero = self.cost <= 0
        if np.any(zero):
            graph = sp.coo_matrix(
                (np.ones(int(zero.sum())), (self.src[zero], self.dst[zero])),
                shape=(p.size, p.size),
            )
            _, label = connected_components(graph, directed=False)
            mass = np.bincount(label, weights=p)
            w = (np.bincount(label, weights=p * w) / mass)[label]
        w /= float(p @ w)
        t = 0.0
        delta = np.abs(w[self.src] - w[self.dst])
        limit = self.lipschitz * self.cost
        over = delta > limit
        if np.any(over):
            t = max(t, float(np.max(1.0 - limit[over] / delta[over])))
        second = float(p @ (w * w))
        cap = 1.0 + 2.0 * self.ball.radius  # E_p[w^2] <= 1 / alpha
        if second > cap:
            t = max(t, 1.0 - float(np.sqrt((cap - 1.0) / (second - 1.0))))
        t = min(1.0, t * (1.0 + 1e-12) + 1e-15) if t > 0 else 0.0
        w = (1.0 - t) * w + t
        return p * w

    def upper_risk(self, losses):
        """The dual objective at the solver's transport plan, evaluated exactly.

        For any plan ``B >= 0`` the chi-square risk of the transported losses
        plus the transport cost bounds the marginal risk from above (weak
        duality); the chi-square risk is computed in closed form.
        """
        if self.trivial:
            return float(self.p @ losses)
        if not self.smooth:
            return float(self.ball.risk(losses, self.p))
        mass = self._mass.value
        if mass is None:
            return np.inf
        mass = np.maximum(np.asarray(mass, dtype=np.float64), 0.0)
        shifted = losses - self.transport @ mass
        transport = self.lipschitz * float(self.cost @ mass)
        return float(self.ball.risk(shifted, self.p)) + transport


def _clarabel_options(tol, scale=1.0):
    """Clarabel's options for an exact solve at tolerance ``tol``.

    ``None`` keeps its defaults (gaps 1e-8); otherwise its gap and
    feasibility tolerances are ``1e-4 * tol`` (at least 1e-12), the absolute
    gap in units of ``scale``, at most 400 iterations.
    """
    if tol is None:
        return {}
    gap_tol = max(1e-4 * float(tol), 1e-12)
    return dict(
        tol_gap_abs=gap_tol * scale,
        tol_gap_rel=gap_tol,
        tol_feas=gap_tol,
        max_iter=400,
    )


def _cvxpy_linear(X, n_outputs, fit_intercept):
    """cvxpy coefficients ``W``, intercept ``b`` (or None) and ``X W + b``."""
    import cvxpy as cp

    W = cp.Variable((X.shape[1], n_outputs))
    Z = X @ W
    b = None
    if fit_intercept:
        b = cp.Variable(n_outputs)
        Z = Z + np.ones((X.shape[0], 1)) @ cp.reshape(b, (1, n_outputs), order="C")
    return W, b, Z


def _solve_problem(problem, owner, tol=None, scale=1.0):
    """Solve with Clarabel: its status (``tol`` tightens its tolerances).

    With ``tol`` (the exact fallback), Clarabel's gap and feasibility
    tolerances are ``1e-4 * tol`` (at least 1e-12; its defaults are 1e-8,
    too loose for the certificate of nearly separable or nearly perfect
    fits, whose dual weights multiply large coefficients) and ``scale`` the
    objective's scale for the absolute gap. Raises
    RuntimeError when no solution is found; the caller certifies the rest.
    """
    import cvxpy as cp

    options = _clarabel_options(tol, scale)
    try:
        with warnings.catch_warnings():
            # the status is read below; the certificate decides
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=cp.CLARABEL, **options)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"{owner}: the conic solver failed: {exc}") from exc
    if problem.status not in cp.settings.SOLUTION_PRESENT:
        raise RuntimeError(
            f"{owner}: the conic solver ended with status {problem.status!r} "
            "and no solution (scale the features and the target, raise l2_reg)."
        )
    return problem.status


def _gap_message(owner, info, tol):
    gap = info["duality_gap"]
    rel = gap / max(abs(info["objective"]), info["scale"])
    return (
        f"{owner}: the solution is not certified optimal: the duality gap is "
        f"{gap:.3e} ({rel:.2e} relative) > tol={tol:.1e} (conic solver status "
        f"{info['solver_status']!r}). Scale the features and the target, or "
        "raise l2_reg."
    )


def _marginal_risk(
    losses,
    Z,
    sample_weight,
    alpha,
    lipschitz,
    holder_exponent=1.0,
    n_neighbors=None,
    tol=1e-6,
):
    """Smooth marginal robust risk of fixed losses (the dual, by cvxpy).

    Used to evaluate a model on new data, and in the tests against the primal
    problem over smooth likelihood ratios. Certified: the value returned is
    the dual objective at Clarabel's transport plan, evaluated exactly (an
    upper bound on the risk), and ``E_q[losses]`` for the worst-case weights
    mapped into the set a lower bound; when they differ by more than ``tol``
    (relative) the problem is solved again at tighter tolerances, then a
    ConvergenceWarning names the gap.
    """
    import cvxpy as cp

    losses = check_losses(losses)
    p = check_probability_weights(sample_weight, losses.shape[0])
    problem = _MarginalProblem(
        np.asarray(Z, dtype=np.float64),
        p,
        alpha,
        lipschitz,
        holder_exponent,
        n_neighbors,
    )
    if not problem.smooth:
        # the mean, or the chi-square risk of the losses: closed forms
        return problem.upper_risk(losses)
    risk, constraints = problem.risk_expression(cp.Constant(losses))
    prob = cp.Problem(cp.Minimize(risk), constraints)
    scale = max(1e-3 * abs(float(p @ losses)), 1e-300)
    for accurate in (None, tol):
        status = _solve_problem(prob, "_marginal_risk", accurate, scale)
        upper = problem.upper_risk(losses)
        q = problem.weights(losses)
        lower = float(q @ losses) if q is not None else -np.inf
        info = {
            "objective": upper,
            "duality_gap": max(upper - lower, 0.0),
            "scale": scale,
            "solver_status": status,
        }
        if upper - lower <= tol * max(abs(upper), scale):
            return upper
    warnings.warn(_gap_message("_marginal_risk", info, tol), ConvergenceWarning, 2)
    return upper


def _marginal_scale(kind, target, p, n_outputs):
    """Floor of the relative tolerance: 1e-3 times the mean loss at zero."""
    zero = np.zeros((target.shape[0], n_outputs))
    losses, _ = _loss_and_derivative(kind, zero, target)
    return max(1e-3 * abs(float(p @ losses)), 1e-300)


def _marginal_certificate(
    problem, X, target, kind, coef, intercept, l2, fit_intercept, tol, scale
):
    """Duality gap of a marginal DRO solution: ``(info, weights)``.

    Upper bound: the objective at the coefficients with the marginal risk
    replaced by the dual objective at the solver's transport plan, evaluated
    exactly (:meth:`_MarginalProblem.upper_risk`). Lower bound: for any
    ``q`` in the set (the solver's worst-case weights mapped into it,
    :meth:`_MarginalProblem.feasible`), the optimum is at least
    ``min_theta E_q[loss(theta)] + l2 / 2 ||theta||^2``, bounded below by
    the linear engine's Fenchel bound
    (:func:`skrobust.linear_model._solver._fenchel_lower`) at the loss
    derivatives of the solution, or, when that is not tight enough, at those
    of the weighted fit ``min_theta E_q[loss] + penalty`` (L-BFGS from the
    solution): the bound is then first order in the weights' suboptimality,
    not in the coefficients' size times it. The keys are the linear engine's
    (``objective``, ``lower_bound``, ``duality_gap``, ``kkt_residual``,
    ``threshold``, ``scale``, ``certified``).
    """
    raw = X @ coef + intercept
    losses, deriv = _loss_and_derivative(kind, raw, target)
    penalty = 0.5 * l2 * float(np.sum(coef * coef))
    upper = problem.upper_risk(losses) + penalty
    q = problem.weights(losses)
    threshold = tol * max(abs(upper), scale)
    lower, kkt = -np.inf, np.nan
    if q is not None:
        G = deriv * q[:, None]
        grad = X.T @ G + l2 * coef
        kkt = float(np.max(np.abs(grad))) if grad.size else 0.0
        if fit_intercept:
            kkt = max(kkt, float(np.max(np.abs(G.sum(axis=0)))))
        # the engine's losses: the squared error is twice its r^2 / 2
        factor, ridge = 1.0, l2
        if kind == "logistic":
            loss, engine_target = _BinaryLogistic(), 2.0 * target - 1.0
        elif kind == "multinomial":
            loss, engine_target = _Multinomial(coef.shape[1]), target
        else:
            loss, engine_target = _Squared(), target
            factor, ridge = 2.0, 0.5 * l2
        engine = _Problem(
            X, engine_target, problem.p, loss, problem.ball, ridge, fit_intercept
        )
        w = np.concatenate([coef.ravel(), intercept if fit_intercept else []])

        def bound_at(w):
            W = w[: coef.size].reshape(coef.shape)
            b = w[coef.size :] if fit_intercept else 0.0
            _, u = loss.value_grad(X @ W + b, engine_target)
            if kind == "multinomial":
                return _fenchel_lower_multi(engine, q, u)
            return _fenchel_lower(engine, q, u[:, 0], w)

        bound = bound_at(w)
        if bound is not None:
            lower = factor * bound
        if upper - lower > threshold:
            # the best loss duals for these weights: those of the weighted
            # fit min_theta E_q[loss] + penalty (smooth), from the solution
            weighted = _Problem(
                X, engine_target, q, loss, _Mean(), ridge, fit_intercept
            )
            res = _lbfgs(weighted, w, 0.0, 1e-10, 200)
            refined = bound_at(res.x) if np.all(np.isfinite(res.x)) else None
            if refined is not None:
                lower = max(lower, factor * refined)
    else:
        q = np.full_like(problem.p, np.nan)
    if upper - lower > threshold and problem.smooth:
        # the solver's transport plan can be loose next to a tiny objective
        # (a nearly perfect fit): the plan of the risk of these very losses,
        # solved alone at tight tolerances, bounds it again from above
        import cvxpy as cp

        saved = problem._mass, problem._link  # the fit's variables
        risk, constraints = problem.risk_expression(cp.Constant(losses))
        inner = cp.Problem(cp.Minimize(risk), constraints)
        try:
            _solve_problem(inner, "certificate", tol, scale)
            upper = min(upper, problem.upper_risk(losses) + penalty)
        except RuntimeError:
            pass
        problem._mass, problem._link = saved
    gap = upper - lower if np.isfinite(lower) else np.nan
    info = _certificate_info(upper, lower, gap, kkt, threshold, scale)
    return info, q
