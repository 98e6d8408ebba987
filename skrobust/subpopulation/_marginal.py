"""Marginal DRO: worst case over subpopulations defined by chosen covariates."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval

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
    _cvxpy_losses,
    _LinearClassifier,
    _LinearRegressor,
    _loss_and_derivative,
)

# all ordered pairs of n samples are n * (n - 1) transport variables; above
# this many the pairwise structure needs n_neighbors
_MAX_PAIRS = 250_000


def _power_of_two(A):
    """Exponent ``k`` of the rescaling ``A / 2^k``: 0 when ``max |A|`` is in
    ``[2^-20, 2^20]`` (or zero), else the exponent nearest ``max |A|``."""
    top = float(np.max(np.abs(A), initial=0.0))
    if top == 0.0 or not np.isfinite(top) or 2.0**-20 <= top <= 2.0**20:
        return 0
    return int(np.frexp(top)[1])


def _resolve_covariates(
    estimator, covariates, n_features, name="covariates", allow_empty=False
):
    """Column indices from names, indices, or None (all columns).

    ``name`` is the parameter named in error messages; ``allow_empty`` lets an
    empty list select no column.
    """
    if covariates is None:
        return np.arange(n_features)
    items = [covariates] if isinstance(covariates, str | Integral) else covariates
    items = list(items)
    if not items:
        if allow_empty:
            return np.zeros(0, dtype=np.intp)
        raise ValueError(f"{name} is empty; name at least one column of X.")
    names = getattr(estimator, "feature_names_in_", None)
    indices = []
    for item in items:
        if isinstance(item, str):
            if names is None:
                raise ValueError(
                    f"{name} names the column {item!r}, but X has no column "
                    "names; pass a DataFrame or use column indices."
                )
            found = np.flatnonzero(names == item)
            if found.size == 0:
                raise ValueError(f"{name} names {item!r}, not a column of X.")
            indices.append(int(found[0]))
        elif isinstance(item, Integral) and not isinstance(item, bool):
            if not -n_features <= item < n_features:
                raise ValueError(
                    f"{name} index {item} is out of range for X with "
                    f"{n_features} columns."
                )
            indices.append(int(item) % n_features)
        else:
            raise TypeError(
                f"{name} must hold column names or integer indices; got {item!r}."
            )
    return np.unique(indices)


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

    options = {}
    if tol is not None:
        gap_tol = max(1e-4 * float(tol), 1e-12)
        options = dict(
            tol_gap_abs=gap_tol * scale,
            tol_gap_rel=gap_tol,
            tol_feas=gap_tol,
            max_iter=400,
        )
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

    losses = np.asarray(losses, dtype=np.float64)
    p = np.asarray(sample_weight, dtype=np.float64)
    p = p / p.sum()
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


class _MarginalMixin:
    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "covariates": [list, tuple, np.ndarray, str, Integral, None],
        "lipschitz": [Interval(Real, 0, None, closed="both")],
        "holder_exponent": [Interval(Real, 0, 1, closed="right")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    def _make_objective(self, X, sample_weight):
        self.covariates_ = _resolve_covariates(self, self.covariates, X.shape[1])
        return sample_weight

    def _solve(self, X, target, kind, n_outputs, sample_weight):
        import cvxpy as cp

        support = sample_weight > 0
        p = sample_weight[support] / sample_weight[support].sum()
        Xs, ts = X[support], target[support]
        problem = _MarginalProblem(
            Xs[:, self.covariates_],
            p,
            self.alpha,
            self.lipschitz,
            self.holder_exponent,
            self.n_neighbors,
        )
        # features (and the target) with entries outside [2^-20, 2^20] are
        # solved in units rescaled by a power of two (exact): the marginal
        # risk is positively homogeneous in the losses; Z keeps its units
        kx = _power_of_two(Xs)
        ky = _power_of_two(ts) if kind == "squared" else 0
        degree = 2 if kind == "squared" else 0
        if kx:
            Xs = np.ldexp(Xs, -kx)
        if ky:
            ts = np.ldexp(ts, -ky)
        units = np.ldexp(1.0, degree * ky)
        l2 = float(self.l2_reg)
        if l2:
            l2 = float(np.ldexp(l2, 2 * (ky - kx) - degree * ky))
        n_features = X.shape[1]
        coef = cp.Variable((n_features, n_outputs))
        raw = Xs @ coef
        intercept = None
        if self.fit_intercept:
            intercept = cp.Variable(n_outputs)
            raw = raw + np.ones((Xs.shape[0], 1)) @ cp.reshape(
                intercept, (1, n_outputs), order="C"
            )
        risk, constraints = problem.risk_expression(_cvxpy_losses(kind, raw, ts))
        penalty = 0.5 * l2 * cp.sum_squares(coef)
        prob = cp.Problem(cp.Minimize(risk + penalty), constraints)
        owner = type(self).__name__
        scale = _marginal_scale(kind, ts, p, n_outputs)
        n_iter = 0
        best = None
        # Clarabel at its defaults, then (the exact fallback) at tolerances
        # a tenth of tol, if the first solution is not certified
        for accurate in (None, self.tol):
            status = _solve_problem(prob, owner, accurate, scale)
            n_iter += int(prob.solver_stats.num_iters or 0)
            coef_value = np.zeros((n_features, n_outputs))
            if coef.value is not None:
                coef_value = np.asarray(coef.value, dtype=np.float64)
            intercept_value = np.zeros(n_outputs)
            if intercept is not None and intercept.value is not None:
                intercept_value = np.asarray(intercept.value, dtype=np.float64)
            info, weights = _marginal_certificate(
                problem,
                Xs,
                ts,
                kind,
                coef_value,
                intercept_value,
                l2,
                self.fit_intercept,
                self.tol,
                scale,
            )
            info["solver_status"] = status
            info["method"] = "cvxpy" if accurate is None else "cvxpy+accurate"
            gap = np.nan_to_num(info["duality_gap"], nan=np.inf)
            if best is None or gap < np.nan_to_num(best[0]["duality_gap"], nan=np.inf):
                best = (info, weights, coef_value, intercept_value)
            if info["certified"]:
                break
        info, weights, coef_value, intercept_value = best
        for key in ("objective", "lower_bound", "duality_gap", "threshold", "scale"):
            info[key] = float(info[key] * units)
        coef_value = np.ldexp(coef_value, ky - kx)
        intercept_value = np.ldexp(intercept_value, ky)
        if not info["certified"]:
            warnings.warn(
                _gap_message(owner, info, self.tol), ConvergenceWarning, stacklevel=4
            )
        raw_value = X @ coef_value + intercept_value
        losses, _ = _loss_and_derivative(kind, raw_value, target)
        all_weights = np.zeros(X.shape[0])
        all_weights[support] = weights
        self.n_transport_edges_ = problem.n_edges
        self.n_iter_ = n_iter
        self.solver_info_ = info
        self.optimality_gap_ = info["duality_gap"]
        penalty_value = 0.5 * float(self.l2_reg) * float(np.sum(coef_value**2))
        self._solution = (
            info["objective"] - penalty_value,
            all_weights,
            float(p @ losses[support]),
        )
        return coef_value, intercept_value, None, losses

    def _finish(self, objective, losses, extra):
        self.robust_risk_, self.worst_case_weights_, self.train_loss_ = self._solution
        del self._solution


_PARAMS = """    alpha : float, default=0.2
        Smallest mass of the subpopulations protected, in (0, 1].
        ``alpha=1`` gives ERM.
    covariates : list of str or int, str, int or None, default=None
        The covariates Z defining the subpopulations: column names of a
        DataFrame ``X`` or column indices. ``None`` uses every column.
    lipschitz : float, default=1.0
        Lipschitz constant :math:`L \\ge 0` of the worst-case likelihood
        ratio as a function of Z, in the units of
        :math:`\\|z - z'\\|^{\\beta}`: the smoothness of the conditional risk
        :math:`E[\\ell \\mid Z = z]` the estimator assumes (the paper's
        :math:`L / \\epsilon`, times :math:`\\alpha^{-1/2}`). ``0`` gives ERM;
        ``np.inf`` drops the smoothness and gives chi-square DRO on the
        individual losses (joint DRO), which also protects against noise in
        Y given Z. Standardize Z, or pick ``lipschitz`` in its units.
    holder_exponent : float, default=1.0
        Exponent :math:`\\beta \\in (0, 1]` of the Hölder condition
        :math:`|w(z) - w(z')| \\le L \\|z - z'\\|^{\\beta}`.
    n_neighbors : int, default=None
        ``None`` constrains every pair of samples (``n (n - 1)`` transport
        variables: up to 500 samples; with one covariate and
        ``holder_exponent=1`` the pairs of neighbors in sorted order imply all
        the others, so ``2 (n - 1)`` variables give the same problem exactly,
        for any n). An integer constrains only the
        pairs of a symmetrized ``n_neighbors``-nearest-neighbor graph in Z
        (a relaxation that can only raise the risk bound), with
        ``O(n * n_neighbors)`` variables, for large samples.
    fit_intercept : bool, default=True
        Whether to fit an intercept (never penalized).
    l2_reg : float, default=%(l2)s
        Strength :math:`\\lambda` of the penalty
        :math:`\\tfrac{\\lambda}{2} \\|\\theta\\|_2^2` on the coefficients.
    tol : float, default=1e-6
        Relative duality gap accepted: the solution is certified when the
        gap (see ``solver_info_``) is at most ``tol * max(|objective|, 1e-3 *
        mean loss at zero coefficients)``. If the interior-point solution at
        Clarabel's default tolerances is not certified, the problem is solved
        again with Clarabel's tolerances at ``1e-4 * tol``; if that fails
        too, a ConvergenceWarning names the gap."""

_ATTRS = """    covariates_ : ndarray of int
        Column indices of Z in ``X``.
    robust_risk_ : float
        The smooth marginal robust risk of the training losses at the solution
        (the minimized objective, without the penalty): the upper bound of
        ``solver_info_``, within ``optimality_gap_`` of the exact value.
    train_loss_ : float
        Average training loss.
    worst_case_weights_ : ndarray of shape (n_samples,)
        Worst-case distribution over the training samples (sums to one), in
        the set exactly: its likelihood ratio satisfies the second-moment
        bound and the Lipschitz constraints; it varies smoothly with Z.
    n_transport_edges_ : int
        Number of pairs of samples whose likelihood ratios are constrained.
    n_iter_ : int
        Number of interior-point iterations of the conic solver (summed over
        its solves).
    optimality_gap_ : float
        Certified bound on the objective at the solution minus the optimal
        objective (``nan`` when no dual bound could be formed).
    solver_info_ : dict
        The certificate, with the keys of
        :class:`skrobust.linear_model.DROLinearRegression`'s: ``objective``
        (the penalized objective with the marginal risk replaced by the dual
        objective at the solver's transport plan, evaluated exactly: an upper
        bound), ``lower_bound`` (a Fenchel bound from the worst-case weights,
        mapped exactly into the set: the optimum is at least this),
        ``duality_gap``, ``kkt_residual`` (largest entry of the gradient with
        the worst-case weights), ``threshold`` (``tol`` times the objective's
        scale), ``scale``, ``certified``, ``method`` (``"cvxpy"``, or
        ``"cvxpy+accurate"`` when the tighter second solve ran) and
        ``solver_status`` (cvxpy's status).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit``, when ``X`` has string column names."""

_NOTES = """    Duchi, Hashimoto and Namkoong protect every subpopulation of mass at
    least :math:`\\alpha` defined by Z, i.e. they bound
    :math:`\\sup_{Q_Z : dQ_Z / dP_Z \\le 1/\\alpha} E_{Q_Z}[\\mu(Z)]` with
    :math:`\\mu(z) = E[\\ell(\\theta; X, Y) \\mid Z = z]`, which cannot be
    estimated by plugging in the losses (that protects against the noise in
    Y too, and is far too pessimistic). Under the assumption that
    :math:`\\mu` is smooth, the worst-case likelihood ratio is smooth in Z,
    and the convex risk minimized here is

    .. math::

        R_{\\alpha, L}(\\theta) = \\sup_{w} \\Big\\{ E_{P_n}[w(Z)\\,
        \\ell(\\theta; X, Y)] : w \\ge 0,\\; E_{P_n}[w] = 1,\\;
        E_{P_n}[w^2] \\le \\tfrac{1}{\\alpha},\\;
        |w(Z_i) - w(Z_j)| \\le L \\|Z_i - Z_j\\|^{\\beta} \\Big\\},

    an upper bound on the worst subpopulation risk (Hölder's inequality
    turns the CVaR cap :math:`w \\le 1/\\alpha` into the second moment
    bound, the chi-square ball of radius :math:`(1/\\alpha - 1)/2`,
    :class:`skrobust.ambiguity.ChiSquare`). Its dual, the paper's convex
    procedure, moves loss between samples at a price proportional to their
    distance in Z:

    .. math::

        R_{\\alpha, L}(\\theta) = \\inf_{\\eta,\\; B \\ge 0}
        \\alpha^{-1/2} E_{P_n}\\big[(\\ell_i - \\eta - t_i(B))_+^2\\big]^{1/2}
        + \\eta + L \\sum_{i \\ne j} p_i p_j B_{ij} \\|Z_i - Z_j\\|^{\\beta},

    with :math:`t_i(B) = \\sum_j p_j (B_{ij} - B_{ji})`. It is minimized
    jointly over the coefficients, :math:`\\eta` and the transport plan
    :math:`B` as one conic program, written with cvxpy (the chi-square part
    by :meth:`skrobust.ambiguity.ChiSquare.cvxpy_risk`) and solved by the
    interior-point solver Clarabel. Its size is the number :math:`E` of
    constrained pairs: ``n_neighbors=None`` (all pairs, at most 250,000)
    takes about 0.4 s at n = 100 and 6 s at n = 300 on one core;
    ``n_neighbors=10`` takes about 3 s at n = 2,000 (squared loss, d = 3).
    With one covariate and :math:`\\beta = 1` the pairs of neighbors in
    sorted order imply all the others, and ``n_neighbors=None`` solves the
    all-pairs problem exactly with :math:`2 (n - 1)` pairs (0.08 s at
    n = 200 instead of 0.6 s, 68 times the size of ``X`` in memory instead
    of 1,100 times, logistic loss, d = 10). The peak memory of the conic
    form (cvxpy's canonicalization) stays about 45 to 110 times the size
    of ``X`` at n = 10,000 (d = 10).

    The solution is certified: the objective with the marginal risk
    replaced by the dual objective at Clarabel's transport plan, evaluated
    exactly, bounds it from above, and a Fenchel bound from the worst-case
    weights (Clarabel's multipliers, moved exactly into the set) bounds the
    optimum from below; their gap is ``optimality_gap_``. Above ``tol``
    (relative) the problem is solved again at tighter tolerances, then a
    ConvergenceWarning names the gap.
    First-order solvers (L-BFGS-B on the same dual) were tried and needed
    thousands of iterations on the transport variables."""

_REFS = """    .. [1] Duchi, J. C., Hashimoto, T. and Namkoong, H. (2022).
       "Distributionally robust losses for latent covariate mixtures."
       Operations Research 71(2)."""


class MarginalDROLogisticRegression(_MarginalMixin, _LinearClassifier):
    """Logistic regression robust to every subpopulation of Z of mass >= alpha.

    Minimizes the smooth marginal robust risk of Duchi, Hashimoto and
    Namkoong over the covariates Z (chosen columns of ``X``): an upper bound
    on the worst average log-loss over all subpopulations of mass at least
    ``alpha`` defined by Z, under a smoothness assumption on the conditional
    risk given Z. Two classes use the logistic loss, more the multinomial
    cross-entropy.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
    %(params)s

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
    MarginalDROLinearRegression : The least-squares counterpart.
    GroupDROLogisticRegression : When the group labels are known.

    Notes
    -----
    %(notes)s

    References
    ----------
    %(refs)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skrobust.subpopulation import MarginalDROLogisticRegression
    >>> X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    >>> clf = MarginalDROLogisticRegression(alpha=0.2, covariates=[0]).fit(X, y)
    >>> bool(clf.robust_risk_ > clf.train_loss_)
    True
    >>> bool(np.isclose(clf.worst_case_weights_.sum(), 1.0))
    True
    """

    _parameter_constraints = {
        **_MarginalMixin._parameter_constraints,
        "fit_intercept": ["boolean"],
        "l2_reg": _LinearClassifier._parameter_constraints["l2_reg"],
    }

    def __init__(
        self,
        alpha=0.2,
        *,
        covariates=None,
        lipschitz=1.0,
        holder_exponent=1.0,
        n_neighbors=None,
        fit_intercept=True,
        l2_reg=1e-4,
        tol=1e-6,
    ):
        self.alpha = alpha
        self.covariates = covariates
        self.lipschitz = lipschitz
        self.holder_exponent = holder_exponent
        self.n_neighbors = n_neighbors
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients on the smooth marginal robust log-loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; a DataFrame when ``covariates`` names columns.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining :math:`P_n`.

        Returns
        -------
        self : MarginalDROLogisticRegression
            The fitted estimator.
        """
        return self._fit_classifier(X, y, sample_weight, {})


class MarginalDROLinearRegression(_MarginalMixin, _LinearRegressor):
    """Least squares robust to every subpopulation of Z of mass >= alpha.

    Minimizes the smooth marginal robust risk of Duchi, Hashimoto and
    Namkoong over the covariates Z (chosen columns of ``X``) for the squared
    error :math:`(Y - \\theta^\\top X)^2`: an upper bound on the worst mean
    squared error over all subpopulations of mass at least ``alpha`` defined
    by Z, under a smoothness assumption on the conditional risk given Z.

    Read more in the :ref:`User Guide <group_and_marginal_dro>`.

    Parameters
    ----------
    %(params)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept.
    %(attrs)s

    See Also
    --------
    MarginalDROLogisticRegression : The classification counterpart.
    GroupDROLinearRegression : When the group labels are known.

    Notes
    -----
    %(notes)s

    References
    ----------
    %(refs)s

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.subpopulation import MarginalDROLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(150, 2))
    >>> y = X[:, 0] + (X[:, 1] > 0.6) * 2.0 + 0.1 * rng.normal(size=150)
    >>> reg = MarginalDROLinearRegression(alpha=0.2, covariates=[1]).fit(X, y)
    >>> bool(reg.robust_risk_ > reg.train_loss_)
    True
    """

    _parameter_constraints = {
        **_MarginalMixin._parameter_constraints,
        "fit_intercept": ["boolean"],
        "l2_reg": _LinearRegressor._parameter_constraints["l2_reg"],
    }

    def __init__(
        self,
        alpha=0.2,
        *,
        covariates=None,
        lipschitz=1.0,
        holder_exponent=1.0,
        n_neighbors=None,
        fit_intercept=True,
        l2_reg=0.0,
        tol=1e-6,
    ):
        self.alpha = alpha
        self.covariates = covariates
        self.lipschitz = lipschitz
        self.holder_exponent = holder_exponent
        self.n_neighbors = n_neighbors
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients on the smooth marginal robust squared error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; a DataFrame when ``covariates`` names columns.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights defining :math:`P_n`.

        Returns
        -------
        self : MarginalDROLinearRegression
            The fitted estimator.
        """
        return self._fit_regressor(X, y, sample_weight, {})


for _cls, _l2 in [
    (MarginalDROLogisticRegression, "1e-4"),
    (MarginalDROLinearRegression, "0.0"),
]:
    _cls.__doc__ = _cls.__doc__ % {
        "params": (_PARAMS % {"l2": _l2}).strip(),
        "attrs": (_ATTRS).strip(),
        "notes": (_NOTES).strip(),
        "refs": (_REFS).strip(),
    }
