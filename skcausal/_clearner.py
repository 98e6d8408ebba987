"""C-Learner: the outcome model fit under a zero first-order correction."""

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from skcausal._base import _BaseCausalEstimator, _inverse_weights, _weighted_mean
from skcausal._crossfit import _fit_weighted, _predict_outcome
from skcausal._docstrings import fill_doc
from skcausal._estimators import _aipw_pseudo_outcomes
from skrobust._crossfit import outcome_step as _outcome_step


def _violation(w, y, f):
    """Normalized constraint value: sum w (y - f) / sum w."""
    return float(np.dot(w, y - f) / w.sum())


class _LinearArm:
    """A linear model ``X @ coef_ + intercept_``."""

    def __init__(self, coef, intercept):
        self.coef_ = coef
        self.intercept_ = intercept

    def predict(self, X):
        return X @ self.coef_ + self.intercept_


# rows per block of the constrained least-squares sums: every (rows, p)
# temporary is a block, a small fixed size whatever the number of units
_GRAM_BLOCK = 512


def _row_blocks(n_rows):
    """Slices of at most ``_GRAM_BLOCK`` consecutive rows covering ``n_rows``."""
    return (
        slice(start, start + _GRAM_BLOCK) for start in range(0, n_rows, _GRAM_BLOCK)
    )


def _standardized(X, center, scale, fit_intercept):
    """``(X - center) / scale``, after a column of ones when ``fit_intercept``.

    Written into one buffer (the same values as the column stack).
    """
    start = int(fit_intercept)
    Z = np.empty((X.shape[0], X.shape[1] + start))
    if start:
        Z[:, 0] = 1.0
    body = Z[:, start:]
    np.subtract(X, center, out=body)
    body /= scale
    return Z


def _weighted_sum(values, weights):
    """``sum_i weights_i values_i`` over rows (``weights`` None: plain sum)."""
    return values.sum(axis=0) if weights is None else weights @ values


def _constrained_linear(model, X_tr, y_tr, X_ev, y_ev, w, sw_tr=None):
    """Closed-form KKT solution of least squares under one linear constraint.

    Minimize ``sum_tr sw (y_tr - X_tr b - b0)^2 + alpha ||b||^2`` subject to
    ``sum_ev w (y_ev - X_ev b - b0) = 0``. Columns are centered and scaled
    for conditioning; the penalty is transformed so the problem is unchanged.
    Every sum runs over row blocks of the data: no standardized or centred
    copy of the rows is made.
    """
    alpha = float(getattr(model, "alpha", 0.0))
    fit_intercept = bool(getattr(model, "fit_intercept", True))
    n_tr = X_tr.shape[0]
    total = float(n_tr) if sw_tr is None else float(sw_tr.sum())
    mean = _weighted_sum(X_tr, sw_tr) / total
    center = mean if fit_intercept else np.zeros(X_tr.shape[1])
    # the weighted variance about the mean (two passes, as np.average)
    var = np.zeros(X_tr.shape[1])
    for rows in _row_blocks(n_tr):
        dev = np.subtract(X_tr[rows], mean)
        np.square(dev, out=dev)
        var += _weighted_sum(dev, None if sw_tr is None else sw_tr[rows])
        del dev
    scale = np.sqrt(var / total)
    scale[scale == 0] = 1.0
    p = X_tr.shape[1] + fit_intercept
    penalty = np.full(p, alpha)
    penalty[fit_intercept:] = alpha / scale**2 if alpha else 0.0
    if fit_intercept:
        penalty[0] = 0.0
    # the constraint row c = Z_ev' w of the standardized held-out rows
    c = np.zeros(p)
    for rows in _row_blocks(X_ev.shape[0]):
        c += w[rows] @ _standardized(X_ev[rows], center, scale, fit_intercept)
    d = float(np.dot(w, y_ev))
    # the weighted Gram matrix and moment of the standardized training rows
    gram = np.zeros((p, p))
    moment = np.zeros(p)
    for rows in _row_blocks(n_tr):
        Z = _standardized(X_tr[rows], center, scale, fit_intercept)
        weighted = Z.T if sw_tr is None else Z.T * sw_tr[rows]
        gram += weighted @ Z
        moment += weighted @ y_tr[rows]
        del Z, weighted
    kkt = np.zeros((p + 1, p + 1))
    kkt[:p, :p] = gram + np.diag(penalty)
    kkt[:p, p] = c
    kkt[p, :p] = c
    rhs = np.concatenate([moment, [d]])
    sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    b = sol[:p]
    if fit_intercept:
        b0, b = b[0], b[1:]
    else:
        b0 = 0.0
    coef = b / scale
    intercept = float(b0 - np.dot(center, coef))
    arm = _LinearArm(coef, intercept)
    return arm, {"violation_before_shift": np.nan}


class _ShiftedArm:
    """A fitted regressor plus a constant shift of its predictions."""

    def __init__(self, model, shift, raw=False):
        self.model = model
        self.shift = shift
        self.raw = raw

    def predict(self, X):
        if self.raw:
            base = self.model.predict(X, raw_score=True)
        else:
            base = _predict_outcome(self.model, X)
        return np.asarray(base, dtype=np.float64).reshape(-1) + self.shift


def _constrained_shift(model, X_tr, y_tr, X_ev, y_ev, w, sw_tr=None):
    """Any regressor: fit, then the best constant shift satisfying the constraint.

    Within the family ``{f + c}`` the constraint fixes ``c`` uniquely, so this
    is the exact C-Learner projection for that family.
    """
    fitted = _fit_weighted(clone(model), X_tr, y_tr, sw_tr)
    f_ev = _predict_outcome(fitted, X_ev)
    shift = _violation(w, y_ev, f_ev)
    return _ShiftedArm(fitted, shift), {"violation_before_shift": shift}


class _ConstrainedSquaredLoss:
    """LightGBM objective: squared loss on training rows + constraint penalty.

    Rows ``[:n_train]`` are the arm's training units (frequency weights
    ``train_weights``), the remaining rows the held-out fold with weights
    ``w``. The penalty is ``rho * N / 2 * g^2`` with ``N`` the training
    weight and ``g = sum w (y - f) / sum w``. Its Hessian is rank one; the
    diagonal ``rho * N * w / sum w`` makes a leaf holding the whole held-out
    fold take exactly the Newton step ``g``.
    """

    def __init__(self, n_train, weights, penalty, train_weights=None):
        self.n_train = n_train
        self.weights = weights
        self.penalty = penalty
        self.train_weights = train_weights

    def __call__(self, y_true, y_pred):
        n_tr = self.n_train
        w = self.weights
        sw = np.ones(n_tr) if self.train_weights is None else self.train_weights
        total = w.sum()
        grad = np.empty_like(y_pred)
        hess = np.empty_like(y_pred)
        grad[:n_tr] = sw * (y_pred[:n_tr] - y_true[:n_tr])
        hess[:n_tr] = sw
        g = np.dot(w, y_true[n_tr:] - y_pred[n_tr:]) / total
        scale = self.penalty * sw.sum() / total
        grad[n_tr:] = -scale * g * w
        hess[n_tr:] = scale * w
        return grad, hess


def _constrained_lightgbm(model, X_tr, y_tr, X_ev, y_ev, w, penalty, sw_tr=None):
    """Boost on the penalized objective, then shift to zero violation."""
    fitted = clone(model).set_params(
        objective=_ConstrainedSquaredLoss(X_tr.shape[0], w, penalty, sw_tr)
    )
    base = float(np.average(y_tr, weights=sw_tr))
    X_all = np.vstack([X_tr, X_ev])
    y_all = np.concatenate([y_tr, y_ev])
    fitted.fit(X_all, y_all, init_score=np.full(X_all.shape[0], base))
    f_ev = fitted.predict(X_ev, raw_score=True) + base
    violation = _violation(w, y_ev, f_ev)
    return _ShiftedArm(fitted, base + violation, raw=True), {
        "violation_before_shift": violation
    }


def _is_lightgbm(model):
    try:
        from lightgbm import LGBMRegressor
    except ImportError:  # pragma: no cover - lightgbm is a dependency
        return False
    return isinstance(model, LGBMRegressor)


def _is_skorch_net(model):
    return any(cls.__module__.startswith("skorch") for cls in type(model).__mro__)


class _ConstrainedArms:
    """Per-arm constrained outcome models of one fold."""

    def __init__(self, arms):
        self.models = arms

    def predict_both(self, X):
        return np.column_stack([arm.predict(X) for arm in self.models])


def _clearner_fitter(penalty, seed):
    """The C-Learner's outcome step: each arm fit under its held-out constraint."""

    def fit_arm(model, arm, X_arm, y_arm, sw, held_out):
        X_ev, y_ev, t_ev, e_ev, sw_ev = held_out
        received = t_ev == arm
        w = received / (e_ev if arm == 1 else 1.0 - e_ev)
        if sw_ev is not None:
            w = w * sw_ev
        args = (X_arm, y_arm, X_ev, y_ev, w)
        if isinstance(model, LinearRegression | Ridge):
            return _constrained_linear(model, *args, sw)
        if _is_lightgbm(model):
            return _constrained_lightgbm(model, *args, penalty, sw)
        if _is_skorch_net(model):
            from skcausal._torch_nets import _constrained_skorch

            return _constrained_skorch(model, *args, penalty, seed, sw)
        return _constrained_shift(model, *args, sw)

    return _outcome_step(fit_arm, _ConstrainedArms)


@fill_doc
class CLearner(_BaseCausalEstimator):
    """C-Learner: plug-in estimation with a constrained outcome model.

    For each arm and each cross-fitting fold, the outcome model is the best
    fit to the arm's units of the training folds among models whose
    first-order correction on the held-out fold is exactly zero. The
    plug-in estimate then equals the one-step (AIPW) estimate of the same
    model, without the correction that explodes when inverse weights are
    large.

    Read more in the :ref:`User Guide <clearner>`.

    Parameters
    ----------
    outcome_model : regressor, default=None
        The backbone, cloned per fold and arm. Four backbones are solved:

        - :class:`~sklearn.linear_model.LinearRegression` or
          :class:`~sklearn.linear_model.Ridge` (and ``None``, which means
          ``LinearRegression()``): the exact constrained least-squares
          solution from its optimality (KKT) conditions.
        - :class:`lightgbm.LGBMRegressor`: boosting on the squared loss plus
          ``penalty`` times the squared constraint (a custom objective; the
          model's own ``objective`` is replaced), then a constant shift that
          sets the violation to zero.
        - a skorch ``NeuralNetRegressor``: the same penalty during training
          and, after each epoch, a shift of the output layer's bias that makes
          the constraint hold exactly.
        - any other regressor: fit, then the constant shift that satisfies
          the constraint (the exact solution within ``{f + c}``).
    <<propensity_model>>
    penalty : float, default=1.0
        Weight :math:`\\rho` of the squared-constraint penalty of the
        LightGBM and neural-net backbones (relative to the mean squared
        loss); the final constraint is exact whatever its value.
    <<clip cv random_state n_jobs verbose>>

    Attributes
    ----------
    <<estimate_>>
    stderr_ : float
        Standard error from the influence function of the stacked
        out-of-fold predictions.
    <<influence_function_ potential_outcome_means_ potential_outcome_stderr_>>
    <<potential_outcome_influence_ propensity_>>
    outcome_predictions_ : ndarray of shape (n_samples, 2)
        Out-of-fold predictions of the constrained outcome models.
    <<propensity_models_ fold_indices_>>
    diagnostics_ : dict
        As :class:`AIPW`, plus ``constraint_residual`` (the largest absolute
        held-out :math:`P_k[w (Y - \\hat\\mu_a)]` over folds and arms after
        fitting, zero up to rounding) and ``constraint_violation_before_shift``
        (the largest normalized violation :math:`P_k[w (Y - f)] / P_k[w]`
        before the final shift of the LightGBM, neural-net and generic
        backbones; NaN for the linear backbone, which is exact).
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    AIPW : Adds the correction instead of constraining the model.
    TMLE : Moves the fitted model along one direction to zero the correction.

    Notes
    -----
    For the treated arm and fold :math:`k` with held-out part :math:`I_k`,

    .. math::

        \\hat\\mu_1^{(k)} = \\arg\\min_{f \\in \\mathcal F}
        \\sum_{i \\notin I_k} A_i (Y_i - f(X_i))^2
        \\quad \\text{s.t.} \\quad
        \\sum_{i \\in I_k} \\frac{A_i}{\\hat e(X_i)} (Y_i - f(X_i)) = 0,

    and symmetrically for the control arm with weights
    :math:`(1 - A_i)/(1 - \\hat e(X_i))`. The estimate is
    :math:`\\frac1n\\sum_i \\hat\\mu_1(X_i) - \\hat\\mu_0(X_i)` over the
    stacked out-of-fold predictions and, since the correction is zero, its
    influence function is the AIPW one evaluated at the constrained models.

    References
    ----------
    .. [1] Cai, T. T., Fonseca, Y., Hou, K. and Namkoong, H. "C-Learner:
       Constrained Learning for Causal Inference." arXiv:2405.09493.

    Examples
    --------
    >>> from skcausal import CLearner
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=400, overlap=0.1, random_state=0)
    >>> est = CLearner(random_state=0).fit(X, y)
    >>> round(est.estimate_, 1)
    1.0
    >>> est.diagnostics_["constraint_residual"] < 1e-8
    True
    """

    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._propensity_constraints,
        "outcome_model": _BaseCausalEstimator._outcome_constraints["outcome_model"],
        "penalty": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        *,
        penalty=1.0,
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.penalty = penalty
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _outcome_fitter(self):
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        return _clearner_fitter(float(self.penalty), seed)

    def _estimate(self, y, t, nuisance, sw):
        e, mu = nuisance["e"], nuisance["mu"]
        residual, before = 0.0, []
        # the held-out correction of each fold, from that fold's weights only
        for (_, test), res in zip(
            nuisance["folds"], nuisance["fold_results"], strict=True
        ):
            r = np.subtract(y[test, None], mu[test])
            r *= _inverse_weights(t[test], e[test])
            r = _weighted_mean(r, None if sw is None else sw[test])
            residual = max(residual, float(np.max(np.abs(r))))
            for arm in (0, 1):
                before.append(abs(res["info"][arm]["violation_before_shift"]))
        before = np.nan if np.all(np.isnan(before)) else float(np.nanmax(before))
        self._constraint = (residual, before)
        # the correction is zero by construction: phi's mean is the plug-in
        psi = _weighted_mean(mu, sw)
        phi = _aipw_pseudo_outcomes(y, t, e, mu)
        phi -= psi
        return psi, phi

    def _diagnostics(self, y, t, nuisance):
        diag = super()._diagnostics(y, t, nuisance)
        diag["constraint_residual"] = self._constraint[0]
        diag["constraint_violation_before_shift"] = self._constraint[1]
        return diag
