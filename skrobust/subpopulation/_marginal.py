"""Marginal DRO: worst case over subpopulations defined by chosen covariates."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from skrobust.subpopulation._linear import (
    _cvxpy_losses,
    _LinearClassifier,
    _LinearRegressor,
    _loss_and_derivative,
)
from skrobust.subpopulation._marginal_solver import (  # noqa: F401
    _MAX_PAIRS,
    _cvxpy_linear,
    _gap_message,
    _marginal_certificate,
    _marginal_risk,
    _marginal_scale,
    _MarginalProblem,
    _solve_problem,
)
from skrobust.utils import DEPRECATED, resolve_renamed_param

# Default of a renamed parameter: the conventions layer's DEPRECATED as a
# plain str (scikit-learn's check_parameters_default_constructible rejects
# the str subclass); resolve_renamed_param treats both alike.
_DEPRECATED = str(DEPRECATED)


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


class _MarginalMixin:
    _parameter_constraints = {
        "subpopulation_size": [Interval(Real, 0, 1, closed="right")],
        "alpha": [Interval(Real, 0, 1, closed="right"), StrOptions({_DEPRECATED})],
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
            resolve_renamed_param(self, "alpha", "subpopulation_size"),
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
        coef, intercept, raw = _cvxpy_linear(Xs, n_outputs, self.fit_intercept)
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


_PARAMS = """    subpopulation_size : float, default=0.2
        Smallest mass :math:`\\alpha` of the subpopulations protected, in
        (0, 1]. ``1`` gives ERM.
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
        too, a ConvergenceWarning names the gap.
    alpha : float, default="deprecated"
        The old name of ``subpopulation_size``; when given it is used, with
        a FutureWarning. Removed in the next release."""

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
    """Logistic regression robust to every large enough subpopulation of Z.

    Minimizes the smooth marginal robust risk of Duchi, Hashimoto and
    Namkoong over the covariates Z (chosen columns of ``X``): an upper bound
    on the worst average log-loss over all subpopulations of mass at least
    ``subpopulation_size`` defined by Z, under a smoothness assumption on
    the conditional risk given Z. Two classes use the logistic loss, more
    the multinomial cross-entropy.

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
    >>> clf = MarginalDROLogisticRegression(0.2, covariates=[0]).fit(X, y)
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
        subpopulation_size=0.2,
        *,
        covariates=None,
        lipschitz=1.0,
        holder_exponent=1.0,
        n_neighbors=None,
        fit_intercept=True,
        l2_reg=1e-4,
        tol=1e-6,
        alpha=_DEPRECATED,
    ):
        self.subpopulation_size = subpopulation_size
        self.covariates = covariates
        self.lipschitz = lipschitz
        self.holder_exponent = holder_exponent
        self.n_neighbors = n_neighbors
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.tol = tol
        self.alpha = alpha

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
    """Least squares robust to every large enough subpopulation of Z.

    Minimizes the smooth marginal robust risk of Duchi, Hashimoto and
    Namkoong over the covariates Z (chosen columns of ``X``) for the squared
    error :math:`(Y - \\theta^\\top X)^2`: an upper bound on the worst mean
    squared error over all subpopulations of mass at least
    ``subpopulation_size`` defined by Z, under a smoothness assumption on
    the conditional risk given Z.

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
    >>> reg = MarginalDROLinearRegression(0.2, covariates=[1]).fit(X, y)
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
        subpopulation_size=0.2,
        *,
        covariates=None,
        lipschitz=1.0,
        holder_exponent=1.0,
        n_neighbors=None,
        fit_intercept=True,
        l2_reg=0.0,
        tol=1e-6,
        alpha=_DEPRECATED,
    ):
        self.subpopulation_size = subpopulation_size
        self.covariates = covariates
        self.lipschitz = lipschitz
        self.holder_exponent = holder_exponent
        self.n_neighbors = n_neighbors
        self.fit_intercept = fit_intercept
        self.l2_reg = l2_reg
        self.tol = tol
        self.alpha = alpha

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
