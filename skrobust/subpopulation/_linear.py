"""Shared machinery of the robust linear models of this subpackage.

A robust linear model minimizes ``risk(losses(theta)) + l2 / 2 ||coef||^2``,
where the risk head comes from an ambiguity set (the chi-square ball of
variance regularization, the maximum over groups of group DRO). The solve is
the certified engine of :mod:`skrobust.linear_model` (``solve_certified``):
L-BFGS jointly over the coefficients and the head's dual variables, kinks
smoothed under continuation, a duality-gap certificate at the end, the exact
conic form (Clarabel) for small problems whose gap exceeds ``tol``, and a
ConvergenceWarning naming the gap only if that fails too. The largest
squared error (variance regularization at radii holding every point mass)
has a second exact method at any size, the Chebyshev LP (HiGHS). Marginal
DRO overrides ``_solve`` with its own conic program.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from skrobust.linear_model._classifier import _LogisticProbaMixin
from skrobust.linear_model._dro_linear import _feature_scale
from skrobust.linear_model._losses import _BinaryLogistic, _Multinomial, _Squared
from skrobust.linear_model._solver import (
    _certificate_info,
    _Max,
    _Problem,
    solve_certified,
)
from skrobust.utils import check_nonnegative_sample_weight

# The losses are those of skrobust.linear_model; this subpackage keeps its
# conventions: labels encoded in {0, 1} and the squared error r^2 (twice
# linear_model's r^2 / 2).
_BINARY = _BinaryLogistic()
_SQUARED = _Squared()

# the fitted attribute solver_info_ holds these in the units of the objective
_OBJECTIVE_KEYS = ("objective", "lower_bound", "duality_gap", "threshold", "scale")


def _loss_and_derivative(kind, raw, target):
    """Per-sample losses and their derivative with respect to the raw scores.

    ``raw`` has shape (n_samples, n_outputs). Kinds: ``"logistic"`` (one
    output, labels in {0, 1}), ``"multinomial"`` (one output per class) and
    ``"squared"`` (squared error :math:`(y - f)^2`).
    """
    if kind == "logistic":
        return _BINARY.value_grad(raw, 2.0 * target - 1.0)
    if kind == "multinomial":
        return _Multinomial(raw.shape[1]).value_grad(raw, target)
    losses, deriv = _SQUARED.value_grad(raw, target)
    return 2.0 * losses, 2.0 * deriv


def _cvxpy_losses(kind, raw, target):
    """Per-sample convex losses of cvxpy raw scores (as _loss_and_derivative)."""
    if kind == "logistic":
        return _BINARY.cvxpy(raw, 2.0 * target - 1.0)
    if kind == "multinomial":
        return _Multinomial(raw.shape[1]).cvxpy(raw, target)
    return 2.0 * _SQUARED.cvxpy(raw, target)


class _Head:
    """What ``_make_objective`` hands to ``_solve``.

    ``ambiguity`` is the risk head of the engine (an ambiguity set or a
    stand-in with the same methods), ``p`` the nominal weights and
    ``offsets`` a constant added to each sample's loss (``None`` for none), in
    the units of this subpackage's losses.
    """

    def __init__(self, ambiguity, p, offsets=None):
        self.ambiguity = ambiguity
        self.p = p
        self.offsets = offsets


class _Shifted:
    """A loss of one output plus a constant per sample.

    The encoded target is ``[target, offset]`` (shape ``(n, 2)``), so the
    engine's row selections keep each sample's offset. The conjugate of
    ``l + c`` is ``l* - c``: the Fenchel bound of the engine then counts the
    offsets, and the certificate stays tight.
    """

    n_outputs = 1

    def __init__(self, base):
        self.base = base
        self.smooth_bound = base.smooth_bound
        self.lipschitz = base.lipschitz

    def value_grad(self, Z, target, tau=0.0):
        losses, grad = self.base.value_grad(Z, target[:, 0], tau)
        return losses + target[:, 1], grad

    def value(self, Z, target):
        return self.base.value(Z, target[:, 0]) + target[:, 1]

    def curvature(self, Z, target, tau=0.0):
        return self.base.curvature(Z, target[:, 0], tau)

    def cvxpy(self, Z, target):
        return self.base.cvxpy(Z, target[:, 0]) + target[:, 1]

    def dual_bounds(self, target):
        return self.base.dual_bounds(target[:, 0])

    def conjugate(self, u, target):
        return self.base.conjugate(u, target[:, 0]) - target[:, 1]


class _OffsetLabels(np.ndarray):
    """Class labels that carry a per-sample offset through row selections.

    The engine indexes the multinomial target as class labels (one-hot
    matrices, ``target[support]``); this integer array keeps each row's
    offset in ``offsets`` under any selection, for :class:`_ShiftedMultinomial`.
    """

    def __new__(cls, labels, offsets):
        obj = np.asarray(labels, dtype=np.intp).view(cls)
        obj.offsets = np.asarray(offsets, dtype=np.float64)
        return obj

    def __array_finalize__(self, obj):
        self.offsets = getattr(obj, "offsets", None)

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(out, _OffsetLabels):
            out.offsets = self.offsets[key]
        return out


class _ShiftedMultinomial:
    """The multinomial loss plus a constant per sample (see :class:`_Shifted`).

    The target is an :class:`_OffsetLabels`; the conjugate of ``l + c`` is
    ``l* - c``, so the engine's Fenchel bound counts the offsets.
    """

    smooth_bound = 0.0
    lipschitz = None

    def __init__(self, base):
        self.base = base
        self.n_outputs = base.n_outputs

    def value_grad(self, Z, target, tau=0.0):
        losses, grad = self.base.value_grad(Z, np.asarray(target), tau)
        return losses + target.offsets, grad

    def value(self, Z, target):
        return self.base.value(Z, np.asarray(target)) + target.offsets

    def cvxpy(self, Z, target):
        return self.base.cvxpy(Z, np.asarray(target)) + target.offsets

    def conjugate(self, U, target):
        return self.base.conjugate(U, np.asarray(target)) - target.offsets


def _standardization(y, p, fit_intercept):
    """``(center, scale)`` of the targets, ``(0, 1)`` when degenerate.

    The squared loss is homogeneous: with ``y' = (y - center) / scale`` and
    ``coef = scale * coef'`` (the intercept absorbing the center), the
    objective is ``scale^2`` times that of the standardized problem with the
    same penalty, so the solver works at unit scale whatever the units of
    ``y`` (1e-150 or 1e150). The scale is computed without overflow.
    """
    center = float(p @ y) if fit_intercept else 0.0
    if not np.isfinite(center):
        return 0.0, 1.0
    dev = np.abs(y - center)
    top = float(np.max(dev)) if dev.size else 0.0
    if not np.isfinite(top) or top <= 0.0:
        return center, 1.0
    scale = top * float(np.sqrt(p @ ((dev / top) ** 2)))
    if not np.isfinite(scale) or scale <= 0.0:
        return center, 1.0
    return center, scale


def _chebyshev_fit(problem, tol, scale):
    """The largest squared error minimized exactly, as a linear program.

    ``min_theta max_i (y_i - x_i theta - b)^2 / 2`` (no penalty) is the
    square of the Chebyshev fit ``min t s.t. |y_i - x_i theta - b| <= t``,
    an LP that HiGHS solves exactly at any n (the conic fallback stops at
    ``_CVXPY_MAX_SIZE``). Its certificate is the LP's dual value ``t_dual``
    (HiGHS' optimality: primal and dual feasible to 1e-7 relative): the
    optimum is at least ``t_dual^2 / 2``. Returns ``(W, b, n_iter, info)``
    as ``solve_certified`` does, or ``None`` when HiGHS fails.
    """
    from scipy.optimize import linprog

    support = problem.p > 0
    X = problem.X[support]
    y = problem.target[support]
    n, d = X.shape
    icpt = problem.fit_intercept
    ones = np.ones((n, 1))
    design = np.hstack([X, ones]) if icpt else X
    # [design, -1] [theta; t] <= y and [-design, -1] [theta; t] <= -y
    A_ub = np.vstack([np.hstack([design, -ones]), np.hstack([-design, -ones])])
    b_ub = np.concatenate([y, -y])
    c = np.zeros(design.shape[1] + 1)
    c[-1] = 1.0
    bounds = [(None, None)] * design.shape[1] + [(0.0, None)]
    try:
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    except (ValueError, ArithmeticError):
        return None
    del A_ub
    if res.status != 0 or res.x is None:
        return None
    W = res.x[:d].reshape(d, 1)
    b = res.x[d : d + 1] if icpt else None
    resid = np.abs(problem.predictions(W, b)[support, 0] - y)
    objective = 0.5 * float(np.max(resid)) ** 2
    dual = float(b_ub @ res.ineqlin.marginals)
    lower = 0.5 * max(min(dual, float(np.max(resid))), 0.0) ** 2
    gap = max(objective - lower, 0.0)
    threshold = tol * max(objective, scale)
    info = _certificate_info(
        objective, lower, gap, np.nan, threshold, scale, method="lbfgs+linprog"
    )
    return W, b, int(getattr(res, "nit", 0) or 0), info


class _RobustLinearModel(BaseEstimator):
    """Certified fit of a linear model on a robust risk head."""

    _parameter_constraints = {
        "fit_intercept": ["boolean"],
        "l2_reg": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    def _solve(self, X, target, kind, n_outputs, head):
        """Solve and certify; sets ``solver_info_``, ``optimality_gap_``, ``n_iter_``.

        The objective here is ``risk(l) + l2 / 2 ||coef||^2`` with this
        subpackage's losses ``l``; the engine's squared loss is ``l / 2``,
        so the engine solves ``risk(l / 2) + (l2 / 2) / 2 ||coef||^2``, the
        same minimizer at half the objective (``units`` converts back).
        """
        l2 = float(self.l2_reg)
        center, scale = 0.0, 1.0
        if kind == "logistic":
            loss, encoded, factor = _BinaryLogistic(), 2.0 * target - 1.0, 1.0
        elif kind == "multinomial":
            loss, factor = _Multinomial(n_outputs), 1.0
            encoded = np.asarray(target, dtype=np.intp)
        else:
            center, scale = _standardization(target, head.p, self.fit_intercept)
            loss, encoded, factor = _Squared(), (target - center) / scale, 2.0
        units = factor * scale * scale
        x_scale = _feature_scale(X)
        X_solved = X / x_scale if x_scale != 1.0 else X
        ambiguity = head.ambiguity
        if head.offsets is not None:
            if loss.n_outputs == 1:
                loss = _Shifted(loss)
                encoded = np.column_stack([encoded, head.offsets / units])
            else:
                loss = _ShiftedMultinomial(loss)
                encoded = _OffsetLabels(encoded, head.offsets / units)
        problem = _Problem(
            X_solved,
            encoded,
            head.p,
            loss,
            ambiguity,
            l2 / factor / x_scale**2,
            self.fit_intercept,
        )
        chebyshev = (
            kind == "squared"
            and isinstance(ambiguity, _Max)  # (or a subclass)
            and l2 == 0.0
            and head.offsets is None
        )
        with warnings.catch_warnings(record=chebyshev) as caught:
            if chebyshev:
                # held back until the exact LP has had its say; re-raised
                # below through the caller's filters
                warnings.simplefilter("always")
            W, b, n_iter, info = solve_certified(
                problem,
                float(self.tol),
                int(self.max_iter),
                owner=type(self).__name__,
                stacklevel=6,
                units=units,
            )
        if chebyshev:
            if not info["certified"]:
                exact = _chebyshev_fit(problem, float(self.tol), info["scale"])
                if exact is not None and exact[3]["certified"]:
                    W, b, it, info = exact
                    n_iter += it
                    caught = [
                        c
                        for c in caught
                        if not issubclass(c.category, ConvergenceWarning)
                    ]
            for record in caught:
                warnings.warn_explicit(
                    record.message, record.category, record.filename, record.lineno
                )
        info.pop("_risk_weights", None)
        for key in _OBJECTIVE_KEYS:
            info[key] = float(info[key]) * units
        info["solver_status"] = None
        self.solver_info_ = info
        self.optimality_gap_ = info["duality_gap"]
        self.n_iter_ = int(n_iter)
        coef = W * (scale / x_scale)
        intercept = b * scale + center if b is not None else np.zeros(n_outputs)
        losses, _ = _loss_and_derivative(kind, X @ coef + intercept, target)
        return coef, intercept, None, losses


class _LinearClassifier(
    _LogisticProbaMixin, LinearClassifierMixin, ClassifierMixin, _RobustLinearModel
):
    """Logistic (two classes) or multinomial (more) robust classifier."""

    def _fit_classifier(self, X, y, sample_weight, fit_params):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        encoder = LabelEncoder()
        target = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        n_classes = self.classes_.shape[0]
        if n_classes < 2:
            raise ValueError(
                "y has only one class; the classifier needs at least 2 classes, "
                f"got {self.classes_.tolist()}."
            )
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        kind = "logistic" if n_classes == 2 else "multinomial"
        n_outputs = 1 if n_classes == 2 else n_classes
        objective = self._make_objective(X, sample_weight, **fit_params)
        coef, intercept, extra, losses = self._solve(
            X, target, kind, n_outputs, objective
        )
        self.coef_ = coef.T
        self.intercept_ = intercept
        self._finish(objective, losses, extra)
        return self


class _LinearRegressor(RegressorMixin, _RobustLinearModel):
    """Least-squares robust regressor."""

    def _fit_regressor(self, X, y, sample_weight, fit_params):
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        sample_weight = check_nonnegative_sample_weight(sample_weight, X)
        objective = self._make_objective(X, sample_weight, **fit_params)
        coef, intercept, extra, losses = self._solve(
            X, np.asarray(y, dtype=np.float64), "squared", 1, objective
        )
        self.coef_ = coef[:, 0]
        self.intercept_ = float(intercept[0])
        self._finish(objective, losses, extra)
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


# numpydoc shared by the certified estimators (group DRO, variance
# regularization): the solver parameters and the certificate attributes
_SOLVER_PARAMS_DOC = """    max_iter : int, default=500
        Maximum number of L-BFGS iterations per smoothing stage.
    tol : float, default=1e-6
        Relative duality gap accepted: the solution is certified when
        ``objective_ - lower bound <= tol * max(|objective_|, 1e-3 * mean
        loss at zero coefficients)`` (for regression with an intercept, the
        intercept at the weighted mean of ``y``). Also the L-BFGS gradient
        tolerance. If the gap of the L-BFGS solution exceeds it and the
        problem is small (``n_samples * n_parameters <= 2e5``), it is solved
        again exactly by an interior-point method (Clarabel, through cvxpy);
        a ConvergenceWarning naming the gap is raised only if that also
        fails."""

_CERTIFICATE_ATTRS_DOC = """    objective_ : float
        The minimized objective at the solution, computed exactly:
        %(objective)s plus ``l2_reg / 2 * ||coef_||^2``.
    optimality_gap_ : float
        Certified bound on ``objective_`` minus the optimal objective: the
        duality gap of the solution (``nan`` when no dual bound could be
        formed; then the KKT residual in ``solver_info_`` is the
        certificate).
    solver_info_ : dict
        The certificate: ``objective`` (exact, unsmoothed), ``lower_bound``
        (a Fenchel dual value, or the interior-point solver's dual value:
        the optimum is at least this), ``duality_gap``, ``kkt_residual``
        (largest entry of the gradient, with the worst-case weights as the
        gradient of the risk; a subgradient at kinks), ``threshold`` (``tol``
        times the objective's scale), ``certified`` (gap below threshold, or
        for a smooth objective a KKT residual below ``100 * tol``),
        ``method`` (``"lbfgs"``, ``"lbfgs+cvxpy"`` when the exact conic
        fallback ran, or ``"lbfgs+linprog"`` when the largest squared error
        was minimized exactly as a linear program) and ``solver_status``
        (``None``). Regression targets
        are standardized before solving; these numbers are in the units of
        the objective (the KKT residual, a gradient, in those of the
        standardized problem).
    n_iter_ : int
        Number of solver iterations (summed over the warm start, the
        smoothing stages and the exact fallback)."""
