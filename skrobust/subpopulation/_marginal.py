"""Marginal DRO: worst case over subpopulations defined by chosen covariates."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity import ChiSquare
from skrobust.subpopulation._linear import (
    _cvxpy_losses,
    _LinearClassifier,
    _LinearRegressor,
    _loss_and_derivative,
)

# all ordered pairs of n samples are n * (n - 1) transport variables; above
# this many the pairwise structure needs n_neighbors
_MAX_PAIRS = 250_000


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


def _transport_edges(Z, holder_exponent, n_neighbors):
    """Directed edges (src, dst) and their cost ||z_src - z_dst||^beta."""
    n = Z.shape[0]
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
    out = sp.csr_matrix((1.0 / p[src], (src, cols)), shape=(n, n_edges))
    into = sp.csr_matrix((1.0 / p[dst], (dst, cols)), shape=(n, n_edges))
    return out - into


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
            self.cost = cost
            self.transport = _transport_matrix(src, dst, p)
            self.n_edges = int(src.size)
        else:
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
            return self.ball.cvxpy_risk(loss_expr, self.p)[0], []
        mass = cp.Variable(self.n_edges, nonneg=True)
        shifted = cp.Variable(self.p.shape[0])
        # the risk increases with each transported loss: tight at the optimum
        self._link = loss_expr - self.transport @ mass <= shifted
        risk = self.ball.cvxpy_risk(shifted, self.p)[0]
        return risk + self.lipschitz * (self.cost @ mass), [self._link]

    def weights(self, losses):
        """Worst-case distribution over the samples at the solution."""
        if self.trivial:
            return self.p.copy()
        if not self.smooth:
            return self.ball.worst_case_weights(losses, self.p)
        q = np.abs(np.asarray(self._link.dual_value, dtype=np.float64))
        return q / q.sum()


def _solve_problem(problem, owner):
    """Solve with Clarabel; warn when the solution is inaccurate."""
    import cvxpy as cp

    try:
        problem.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"{owner}: the conic solver failed: {exc}") from exc
    if problem.status not in cp.settings.SOLUTION_PRESENT:
        raise RuntimeError(
            f"{owner}: the conic solver ended with status {problem.status!r} "
            "and no solution (scale the features and the target, raise l2_reg)."
        )
    if problem.status != cp.OPTIMAL:
        warnings.warn(
            f"{owner}: the conic solver ended with status {problem.status!r}; "
            "the solution may be inaccurate (scale the features, raise l2_reg).",
            ConvergenceWarning,
            stacklevel=4,
        )


def _marginal_risk(
    losses, Z, sample_weight, alpha, lipschitz, holder_exponent=1.0, n_neighbors=None
):
    """Smooth marginal robust risk of fixed losses (the dual, by cvxpy).

    Used to evaluate a model on new data, and in the tests against the primal
    problem over smooth likelihood ratios.
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
    risk, constraints = problem.risk_expression(cp.Constant(losses))
    if not risk.variables():
        return float(risk.value)
    prob = cp.Problem(cp.Minimize(risk), constraints)
    _solve_problem(prob, "_marginal_risk")
    return float(prob.value)


class _MarginalMixin:
    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "covariates": [list, tuple, np.ndarray, str, Integral, None],
        "lipschitz": [Interval(Real, 0, None, closed="both")],
        "holder_exponent": [Interval(Real, 0, 1, closed="right")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
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
        n_features = X.shape[1]
        coef = cp.Variable((n_features, n_outputs))
        raw = Xs @ coef
        if self.fit_intercept:
            intercept = cp.Variable(n_outputs)
            raw = raw + np.ones((Xs.shape[0], 1)) @ cp.reshape(
                intercept, (1, n_outputs), order="C"
            )
        risk, constraints = problem.risk_expression(_cvxpy_losses(kind, raw, ts))
        penalty = 0.5 * float(self.l2_reg) * cp.sum_squares(coef)
        prob = cp.Problem(cp.Minimize(risk + penalty), constraints)
        _solve_problem(prob, type(self).__name__)
        coef_value = np.zeros((n_features, n_outputs))
        if coef.value is not None:
            coef_value = np.asarray(coef.value, dtype=np.float64)
        intercept_value = np.zeros(n_outputs)
        if self.fit_intercept and intercept.value is not None:
            intercept_value = np.asarray(intercept.value, dtype=np.float64)
        raw_value = X @ coef_value + intercept_value
        losses, _ = _loss_and_derivative(kind, raw_value, target)
        weights = np.zeros(X.shape[0])
        weights[support] = problem.weights(losses[support])
        self.n_transport_edges_ = problem.n_edges
        self.n_iter_ = int(prob.solver_stats.num_iters or 0)
        self._solution = (
            float(risk.value) if risk.value is not None else np.nan,
            weights,
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
        variables: up to 500 samples). An integer constrains only the
        pairs of a symmetrized ``n_neighbors``-nearest-neighbor graph in Z
        (a relaxation that can only raise the risk bound), with
        ``O(n * n_neighbors)`` variables, for large samples.
    fit_intercept : bool, default=True
        Whether to fit an intercept (never penalized).
    l2_reg : float, default=%(l2)s
        Strength :math:`\\lambda` of the penalty
        :math:`\\tfrac{\\lambda}{2} \\|\\theta\\|_2^2` on the coefficients."""

_ATTRS = """    covariates_ : ndarray of int
        Column indices of Z in ``X``.
    robust_risk_ : float
        The smooth marginal robust risk of the training losses at the solution
        (the minimized objective, without the penalty).
    train_loss_ : float
        Average training loss.
    worst_case_weights_ : ndarray of shape (n_samples,)
        Worst-case distribution over the training samples (sums to one); it
        varies smoothly with Z.
    n_transport_edges_ : int
        Number of pairs of samples whose likelihood ratios are constrained.
    n_iter_ : int
        Number of interior-point iterations of the conic solver.
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
    interior-point solver Clarabel, to optimality. Its size is the number
    :math:`E` of constrained pairs: ``n_neighbors=None`` (all pairs, at most
    250,000) takes about 0.4 s at n = 100 and 6 s at n = 300 on one core;
    ``n_neighbors=10`` takes about 3 s at n = 2,000 (squared loss, d = 3).
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
    ):
        self.alpha = alpha
        self.covariates = covariates
        self.lipschitz = lipschitz
        self.holder_exponent = holder_exponent
        self.n_neighbors = n_neighbors
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg

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
    ):
        self.alpha = alpha
        self.covariates = covariates
        self.lipschitz = lipschitz
        self.holder_exponent = holder_exponent
        self.n_neighbors = n_neighbors
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg

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
