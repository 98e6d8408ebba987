"""Plug-in, inverse propensity weighting, AIPW and TMLE estimators."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, logit
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from skcausal._base import (
    _BaseCausalEstimator,
    _inverse_weights,
    _times_inverse_weights,
    _weighted_mean,
)
from skcausal._docstrings import fill_doc
from skrobust._crossfit import mean_and_influence as _mean_and_influence


def _aipw_pseudo_outcomes(y, t, e, mu):
    """Per-arm AIPW pseudo-outcomes, shape (n, 2)."""
    phi = np.subtract(y[:, None], mu)
    _times_inverse_weights(phi, t, e)
    phi += mu
    return phi


@fill_doc
class PlugIn(_BaseCausalEstimator):
    """Cross-fitted plug-in (S- or T-learner) estimator of the ATE.

    The average over all units of the difference of the two out-of-fold
    outcome predictions. It has no first-order correction, so its error is
    as large as the outcome model's bias; prefer :class:`AIPW` or
    :class:`CLearner` for inference.

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    <<outcome_model learner cv random_state n_jobs verbose>>

    Attributes
    ----------
    estimate_ : float
        Estimated average treatment effect :math:`E[Y(1) - Y(0)]`.
    <<stderr_>>
    influence_function_ : ndarray of shape (n_samples,)
        Estimated influence function of ``estimate_`` at each unit.
    <<potential_outcome_means_ potential_outcome_stderr_ potential_outcome_influence_>>
    <<outcome_predictions_ fold_indices_>>
    diagnostics_ : dict
        ``n_samples``, ``n_treated`` and the out-of-fold ``outcome_mse``.
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    AIPW : Adds the inverse-propensity-weighted residual correction.

    Notes
    -----
    .. math::

        \\hat\\tau = \\frac{1}{n}\\sum_i \\hat\\mu_1^{(-k(i))}(X_i)
        - \\hat\\mu_0^{(-k(i))}(X_i),

    where :math:`k(i)` is the fold holding unit :math:`i` out. The reported
    standard error uses :math:`\\hat\\mu_1 - \\hat\\mu_0 - \\hat\\tau` as the
    influence function; it ignores the outcome model's estimation error and
    is too small unless that model is correctly specified and parametric.

    References
    ----------
    .. [1] Kunzel, S. R., Sekhon, J. S., Bickel, P. J. and Yu, B. (2019).
       "Metalearners for estimating heterogeneous treatment effects using
       machine learning." PNAS 116(10).

    Examples
    --------
    >>> from skcausal import PlugIn
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=400, overlap=0.1, random_state=0)
    >>> est = PlugIn(random_state=0).fit(X, y)
    >>> round(est.estimate_, 1)
    1.0
    """

    _uses_propensity = False
    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._outcome_constraints,
    }

    def __init__(
        self,
        outcome_model=None,
        *,
        learner="T",
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.learner = learner
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _estimate(self, y, t, nuisance, sw):
        return _mean_and_influence(nuisance["mu"], sw)


@fill_doc
class IPW(_BaseCausalEstimator):
    """Cross-fitted inverse propensity weighting estimator of the ATE.

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    <<propensity_model>>
    normalize : bool, default=True
        ``True`` gives the Hajek estimator (weights normalized to sum to one
        within each arm), ``False`` the Horvitz-Thompson estimator.
    <<clip cv random_state n_jobs verbose>>

    Attributes
    ----------
    <<estimate_>>
    stderr_ : float
        Standard error from the influence function.
    <<influence_function_ potential_outcome_means_ potential_outcome_stderr_>>
    <<potential_outcome_influence_ propensity_ propensity_models_ fold_indices_>>
    diagnostics_ : dict
        ``propensity_min``, ``propensity_max``, ``n_clipped``, the Kish
        effective sample sizes ``ess_treated`` and ``ess_control`` of the
        inverse weights, and the out-of-fold ``propensity_log_loss``.
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    AIPW : Adds an outcome model; consistent if either model is.

    Notes
    -----
    Horvitz-Thompson: :math:`\\hat\\mu_1 = \\frac1n\\sum_i A_i Y_i/\\hat e(X_i)`.
    Hajek: :math:`\\hat\\mu_1 = \\sum_i \\frac{A_i Y_i}{\\hat e(X_i)} /
    \\sum_i \\frac{A_i}{\\hat e(X_i)}`, with influence function
    :math:`\\frac{A_i (Y_i - \\hat\\mu_1)/\\hat e(X_i)}{\\frac1n\\sum_j
    A_j/\\hat e(X_j)}`; the control arm is symmetric. The propensity is treated
    as known, which makes the standard error conservative for a correctly
    specified parametric propensity model.

    References
    ----------
    .. [1] Horvitz, D. G. and Thompson, D. J. (1952). "A generalization of
       sampling without replacement from a finite universe." JASA 47(260).

    Examples
    --------
    >>> from skcausal import IPW
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=400, overlap=0.1, random_state=0)
    >>> est = IPW(random_state=0).fit(X, y)
    >>> round(est.estimate_, 1)
    1.0
    """

    _uses_outcome = False
    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._propensity_constraints,
        "normalize": ["boolean"],
    }

    def __init__(
        self,
        propensity_model=None,
        *,
        normalize=True,
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.propensity_model = propensity_model
        self.normalize = normalize
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _estimate(self, y, t, nuisance, sw):
        e = nuisance["e"]
        w = _inverse_weights(t, e)
        if not self.normalize:
            w *= y[:, None]
            return _mean_and_influence(w, sw, overwrite=True)
        mean_w = _weighted_mean(w, sw)
        infl = np.multiply(w, y[:, None])
        psi = _weighted_mean(infl, sw) / mean_w
        np.subtract(y[:, None], psi, out=infl)
        infl *= w
        infl /= mean_w
        return psi, infl


@fill_doc
class AIPW(_BaseCausalEstimator):
    """Cross-fitted augmented inverse propensity weighting (doubly robust).

    The one-step estimator: the plug-in estimate plus the inverse-propensity
    weighted mean of the outcome model's residuals, with both nuisances fit
    out of fold (double / debiased machine learning).

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    <<outcome_model propensity_model learner clip cv random_state n_jobs verbose>>

    Attributes
    ----------
    <<estimate_ stderr_>>
    influence_function_ : ndarray of shape (n_samples,)
        :math:`\\hat\\varphi_i`, the estimated influence function.
    <<potential_outcome_means_ potential_outcome_stderr_ potential_outcome_influence_>>
    <<propensity_ outcome_predictions_ propensity_models_ fold_indices_>>
    diagnostics_ : dict
        ``propensity_min``, ``propensity_max``, ``n_clipped``, the Kish
        effective sample sizes ``ess_treated``/``ess_control`` of the inverse
        weights, ``propensity_log_loss`` and ``outcome_mse`` (out of fold).
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    TMLE : Targets the outcome model instead of adding a correction.
    CLearner : Constrains the outcome model so the correction is zero.

    Notes
    -----
    With out-of-fold :math:`\\hat e, \\hat\\mu_0, \\hat\\mu_1`,

    .. math::

        \\hat\\varphi_i^{(1)} = \\hat\\mu_1(X_i) + \\frac{A_i}{\\hat e(X_i)}
        (Y_i - \\hat\\mu_1(X_i)), \\quad
        \\hat\\tau = \\frac1n \\sum_i \\hat\\varphi_i^{(1)} - \\hat\\varphi_i^{(0)},

    and the influence function is :math:`\\hat\\varphi^{(1)}_i -
    \\hat\\varphi^{(0)}_i - \\hat\\tau`.

    References
    ----------
    .. [1] Robins, J. M., Rotnitzky, A. and Zhao, L. P. (1994). "Estimation
       of regression coefficients when some regressors are not always
       observed." JASA 89(427).
    .. [2] Chernozhukov, V. et al. (2018). "Double/debiased machine learning
       for treatment and structural parameters." Econometrics Journal 21(1).

    Examples
    --------
    >>> from skcausal import AIPW
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=400, overlap=0.1, random_state=0)
    >>> est = AIPW(random_state=0).fit(X, y)
    >>> round(est.estimate_, 1)
    1.0
    >>> lower, upper = est.conf_int(confidence_level=0.95)
    >>> bool(lower < 1.0 < upper)
    True
    """

    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._outcome_constraints,
        **_BaseCausalEstimator._propensity_constraints,
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        *,
        learner="T",
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.learner = learner
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _estimate(self, y, t, nuisance, sw):
        phi = _aipw_pseudo_outcomes(y, t, nuisance["e"], nuisance["mu"])
        return _mean_and_influence(phi, sw, overwrite=True)


def _scaled_logit(q, lo, hi, bound=1e-4):
    """``logit`` of ``q`` scaled to [0, 1] and clipped into [bound, 1 - bound]."""
    out = np.clip((q - lo) / (hi - lo), bound, 1 - bound)
    return logit(out, out=out)


def _logistic_fluctuation(offset, h, target, max_iter, tol, weight=None):
    """Maximize the logistic likelihood of ``target`` over ``eps``.

    The model is ``expit(offset + eps * h)``; the negative log-likelihood is
    convex in ``eps`` and minimized by Newton steps with backtracking. It has
    converged when its derivative (the score equation the fluctuation must
    solve) is below ``tol`` times ``sum |h|``. ``weight`` holds frequency
    weights of the units (``None``: all one).
    """
    w = np.ones_like(h) if weight is None else weight

    def nll(eps):
        # offset + eps * h, log(1 + e^z) - target * z, in two buffers
        z = eps * h
        z += offset
        tz = target * z
        np.logaddexp(0.0, z, out=z)
        z -= tz
        return float(w @ z)

    scale = float(w @ np.abs(h))
    eps = 0.0
    value = nll(eps)
    for _ in range(max_iter):
        p = expit(offset + eps * h)
        grad = float(np.sum(w * h * (p - target)))
        if abs(grad) <= tol * scale:
            return eps, True
        hess = float(np.sum(w * h**2 * p * (1 - p)))
        if hess <= 0:
            return eps, False
        step = grad / hess
        if grad * step <= 1e-10 * (1.0 + abs(value)):
            # predicted decrease below the resolution of the objective: the
            # quadratic model is exact here, take the pure Newton step
            eps -= step
            value = nll(eps)
            continue
        size = 1.0
        for _ in range(60):
            trial = eps - size * step
            trial_value = nll(trial)
            if trial_value <= value:
                break
            size /= 2.0
        else:
            # no decrease representable in floating point: at the optimum
            return eps, abs(grad) <= 1e3 * tol * scale
        eps, value = trial, trial_value
    return eps, False


@fill_doc
class TMLE(_BaseCausalEstimator):
    """Cross-fitted targeted maximum likelihood estimator (TMLE).

    The out-of-fold outcome predictions of each arm are moved along the
    clever covariate :math:`H_1 = 1/\\hat e(X)` (treated) or
    :math:`H_0 = 1/(1 - \\hat e(X))` (control) until the first-order
    correction vanishes, then averaged.

    Read more in the :ref:`User Guide <causal>`.

    Parameters
    ----------
    <<outcome_model propensity_model learner>>
    fluctuation : {"logistic", "linear"}, default="logistic"
        ``"logistic"`` rescales the outcome to [0, 1] with its observed range
        and fits :math:`\\mathrm{expit}(\\mathrm{logit}\\,\\bar Q + \\epsilon
        H)` by maximum likelihood, which keeps the estimate inside the
        outcome's range. ``"linear"`` fits :math:`\\bar Q + \\epsilon H` by
        least squares (unbounded; the version whose instability under extreme
        weights is reported by Kang and Schafer style studies).
    <<clip>>
    max_iter : int, default=100
        Newton iterations of the logistic fluctuation.
    tol : float, default=1e-10
        The logistic fluctuation stops when its score equation
        :math:`\\sum_i H_i (Y_i - \\bar Q^*_i)` (outcome rescaled to [0, 1])
        is below ``tol`` times :math:`\\sum_i |H_i|`.
    <<cv random_state n_jobs verbose>>

    Attributes
    ----------
    <<estimate_>>
    stderr_ : float
        Standard error from the influence function.
    <<influence_function_ potential_outcome_means_ potential_outcome_stderr_>>
    <<potential_outcome_influence_>>
    fluctuation_ : ndarray of shape (2,)
        Fitted :math:`\\epsilon` of the control and treated arms.
    targeted_predictions_ : ndarray of shape (n_samples, 2)
        Targeted out-of-fold predictions :math:`\\bar Q^*_0, \\bar Q^*_1`.
    <<propensity_>>
    outcome_predictions_ : ndarray of shape (n_samples, 2)
        Out-of-fold (untargeted) predictions of both potential outcomes.
    <<propensity_models_ fold_indices_>>
    diagnostics_ : dict
        As :class:`AIPW`, plus ``first_order_residual``: the largest absolute
        per-arm mean of :math:`H_a (Y - \\bar Q^*_a)` after targeting.
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    AIPW : The one-step estimator with the same influence function.

    Notes
    -----
    For the treated arm, :math:`\\hat\\mu_1 = \\frac1n\\sum_i \\bar
    Q_1^*(X_i)` with influence function :math:`\\frac{A_i}{\\hat e(X_i)}(Y_i
    - \\bar Q^*_1(X_i)) + \\bar Q_1^*(X_i) - \\hat\\mu_1`. The fluctuation is
    fit once on the stacked out-of-fold predictions (pooled CV-TMLE).

    References
    ----------
    .. [1] van der Laan, M. J. and Rubin, D. (2006). "Targeted maximum
       likelihood learning." The International Journal of Biostatistics 2(1).
    .. [2] Gruber, S. and van der Laan, M. J. (2010). "A targeted maximum
       likelihood estimator of a causal effect on a bounded continuous
       outcome." The International Journal of Biostatistics 6(1).

    Examples
    --------
    >>> from skcausal import TMLE
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=400, overlap=0.1, random_state=0)
    >>> est = TMLE(random_state=0).fit(X, y)
    >>> round(est.estimate_, 1)
    1.0
    """

    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._outcome_constraints,
        **_BaseCausalEstimator._propensity_constraints,
        "fluctuation": [StrOptions({"logistic", "linear"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        *,
        learner="T",
        fluctuation="logistic",
        clip=1e-3,
        max_iter=100,
        tol=1e-10,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.learner = learner
        self.fluctuation = fluctuation
        self.clip = clip
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _estimate(self, y, t, nuisance, sw):
        e, mu = nuisance["e"], nuisance["mu"]
        q_star = np.empty_like(mu)
        eps = np.zeros(2)
        lo, hi = float(y.min()), float(y.max())
        # the clever covariate and the arm indicator are made one arm at a
        # time (h_arm = 1 / P(arm | X), received = 1[t == arm])
        for arm in (0, 1):
            h = 1.0 / (1.0 - e) if arm == 0 else 1.0 / e
            mask = t == arm
            wm = None if sw is None else sw[mask]
            if self.fluctuation == "linear" or hi <= lo:
                resid = y[mask] - mu[mask, arm]
                hm = h[mask]
                whm = hm if wm is None else wm * hm
                eps[arm] = float(np.dot(whm, resid) / np.dot(whm, hm))
                del resid, hm, whm
                q_star[:, arm] = mu[:, arm] + eps[arm] * h
                continue
            # the fit sees only the arm's units; the full offset and h are
            # made after it (elementwise, so the same values)
            del h
            eps[arm], converged = _logistic_fluctuation(
                _scaled_logit(mu[mask, arm], lo, hi),
                1.0 / (1.0 - e[mask]) if arm == 0 else 1.0 / e[mask],
                (y[mask] - lo) / (hi - lo),
                self.max_iter,
                self.tol,
                wm,
            )
            if not converged:
                warnings.warn(
                    f"The logistic fluctuation of arm {arm} did not converge in "
                    f"max_iter={self.max_iter} iterations; increase max_iter or "
                    "use fluctuation='linear'.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
            offset = _scaled_logit(mu[:, arm], lo, hi)
            h = 1.0 / (1.0 - e) if arm == 0 else 1.0 / e
            offset += eps[arm] * h
            q_star[:, arm] = lo + (hi - lo) * expit(offset, out=offset)
            del offset
        del h, mask
        self.fluctuation_ = eps
        self.targeted_predictions_ = q_star
        # the correction received * h * (y - q_star), then phi, in place
        phi = np.subtract(y[:, None], q_star)
        phi[:, 0] *= 1.0 / (1.0 - e)
        phi[:, 0] *= 1.0 - t
        phi[:, 1] *= 1.0 / e
        phi[:, 1] *= t
        self._first_order = float(np.max(np.abs(_weighted_mean(phi, sw))))
        phi += q_star
        psi = _weighted_mean(q_star, sw)
        phi -= psi
        return psi, phi

    def _diagnostics(self, y, t, nuisance):
        diag = super()._diagnostics(y, t, nuisance)
        diag["first_order_residual"] = self._first_order
        return diag
