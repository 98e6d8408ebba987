"""Trimming sensitivity under limited overlap (Ma and Namkoong)."""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skcausal._base import _BaseCausalEstimator, _check_alpha, _influence_stderr
from skcausal._estimators import _aipw_pseudo_outcomes

_L_MAX = 1e12


def _check_lipschitz(lipschitz):
    arr = np.asarray(lipschitz, dtype=np.float64)
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"lipschitz must be a finite number or 1-d array; got {lipschitz!r}."
        )
    if np.any(arr < 0):
        raise ValueError(f"lipschitz must be >= 0; got {lipschitz!r}.")
    return arr


class TrimmingSensitivity(_BaseCausalEstimator):
    """Trimmed AIPW with worst-case bounds on the bias that trimming causes.

    Units whose estimated propensity lies outside the overlap region
    :math:`\\mathcal O = \\{\\epsilon \\le \\hat e(x) \\le 1 - \\epsilon\\}` lack
    comparable units in one arm. The estimator reports the AIPW effect on
    :math:`\\mathcal O`, and, for the full-population average treatment
    effect, an estimate and a bias-aware confidence interval valid when both
    outcome functions are :math:`L`-Lipschitz in the Euclidean distance of the
    (standardized) covariates. The missing arm's mean at a unit outside
    :math:`\\mathcal O` is extended from its nearest overlap units: each
    brackets it within :math:`L` times its distance (the Lipschitz
    extension from that unit), the estimate averages their AIPW
    pseudo-outcomes, and the averaged half-widths give the worst-case bias
    bound :math:`B(L)`. The breakdown value
    :math:`L^\\star` is the smallest :math:`L` at which the interval contains
    zero.

    Read more in the :ref:`User Guide <overlap>`.

    Parameters
    ----------
    outcome_model : regressor or classifier, default=None
        Model of :math:`E[Y | X, A]`, cloned per fold and arm. ``None`` means
        :class:`~sklearn.linear_model.LinearRegression`.
    propensity_model : classifier, default=None
        Model of :math:`P(A = 1 | X)` with ``predict_proba``. ``None`` means
        :class:`~sklearn.linear_model.LogisticRegression`.
    threshold : float in (0, 0.5), default=0.1
        Trimming level :math:`\\epsilon`.
    n_neighbors : int, default=40
        Number :math:`K` of nearest overlap units that extend each outside
        unit. More neighbours lower the variance (each overlap unit is reused
        less) and raise the bias bound (they are farther away).
    scale : bool, default=True
        Standardize the covariates before measuring distances; the Lipschitz
        constant is then per standard deviation.
    alpha : float in (0, 1), default=0.05
        One minus the confidence level used for ``breakdown_lipschitz_``.
    learner : {"T", "S"}, default="T"
        One outcome model per arm, or one with the treatment as a feature.
    clip : float in [0, 0.5), default=1e-3
        Estimated propensities are clipped into ``[clip, 1 - clip]`` with a
        warning; ``clip=0`` raises on a propensity of exactly 0 or 1.
    cv : int, cross-validation generator or iterable, default=5
        Cross-fitting folds (stratified on the treatment, seeded by
        ``random_state``).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and every unset ``random_state`` of the nuisances.
    n_jobs : int, default=None
        Folds fit in parallel with joblib.
    verbose : int, default=0
        Progress messages of the joblib loop over folds.

    Attributes
    ----------
    estimate_ : float
        AIPW estimate of the effect on the overlap population
        :math:`E[Y(1) - Y(0) | X \\in \\mathcal O]`.
    stderr_ : float
        Its standard error.
    influence_function_ : ndarray of shape (n_samples,)
        Influence function of ``estimate_`` (zero outside the overlap region).
    potential_outcome_means_ : ndarray of shape (2,)
        AIPW estimates of :math:`E[Y(a) | X \\in \\mathcal O]`.
    potential_outcome_stderr_ : ndarray of shape (2,)
        Their standard errors.
    potential_outcome_influence_ : ndarray of shape (n_samples, 2)
        Their influence functions.
    overlap_mask_ : ndarray of shape (n_samples,) of bool
        Units inside the overlap region.
    overlap_fraction_ : float
        Fraction of units inside the overlap region.
    extrapolation_distance_ : ndarray of shape (n_samples,)
        Distance from each unit to its nearest overlap unit (zero inside).
    breakdown_lipschitz_ : float
        Smallest :math:`L` at which the bias-aware ``1 - alpha`` interval of
        the full-population effect contains zero (``0`` if it already does at
        ``L = 0``; ``inf`` if it never does).
    propensity_ : ndarray of shape (n_samples,)
        Out-of-fold (clipped) propensities.
    outcome_predictions_ : ndarray of shape (n_samples, 2)
        Out-of-fold predictions of both potential outcomes.
    propensity_models_ : list of estimators
        The propensity model fitted on each fold's training part.
    fold_indices_ : list of ndarray
        Held-out indices of each fold.
    diagnostics_ : dict
        As :class:`AIPW`, plus ``n_trimmed``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string names).

    See Also
    --------
    AIPW : The untrimmed estimator.

    Notes
    -----
    With AIPW pseudo-outcomes :math:`\\hat\\varphi^{(a)}_i` and
    :math:`j_1(i), \\dots, j_K(i)` the :math:`K` nearest overlap units of
    :math:`i`, a unit with :math:`\\hat e(X_i) < \\epsilon` contributes
    :math:`\\frac1K\\sum_k \\hat\\varphi^{(1)}_{j_k(i)} -
    \\hat\\varphi^{(0)}_i`, since
    :math:`|\\mu_1(X_i) - \\frac1K\\sum_k \\mu_1(X_{j_k})| \\le h_i(L) =
    \\frac LK \\sum_k d(X_i, X_{j_k})`; units with
    :math:`\\hat e > 1 - \\epsilon` are symmetric and units in
    :math:`\\mathcal O` contribute :math:`\\hat\\varphi^{(1)}_i -
    \\hat\\varphi^{(0)}_i`. Then :math:`\\hat\\tau` is the mean
    contribution, :math:`B(L) = \\frac1n\\sum_{i \\notin \\mathcal O}
    h_i(L)` is linear in :math:`L`, and the bias-aware interval is
    :math:`\\hat\\tau \\pm \\hat\\sigma\\, \\mathrm{cv}_\\alpha(B(L)/\\hat
    \\sigma)`, with :math:`\\mathrm{cv}_\\alpha(b)` the :math:`1-\\alpha`
    quantile of :math:`|N(b, 1)|` (Armstrong and Kolesar). The influence
    function credits each reused pseudo-outcome to its overlap unit (as for
    matching estimators). Overlap units near the boundary carry large
    inverse weights and are reused by many outside units, so
    :math:`\\hat\\sigma` can understate the spread of :math:`\\hat\\tau`
    in small samples; coverage at a valid :math:`L` then rests partly on the
    conservative bound.

    References
    ----------
    .. [1] Ma, Y. and Namkoong, H. "A Sensitivity Approach to Causal
       Inference Under Limited Overlap."
    .. [2] Armstrong, T. B. and Kolesar, M. (2018). "Optimal inference in a
       class of regression models." Econometrica 86(2).

    Examples
    --------
    >>> from skcausal import TrimmingSensitivity
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=500, random_state=0)
    >>> est = TrimmingSensitivity(threshold=0.05, random_state=0).fit(X, y)
    >>> lower, upper = est.conf_int(lipschitz=1.0)
    >>> bool(lower < upper)
    True
    >>> est.breakdown_lipschitz_ > 0
    True
    """

    _parameter_constraints = {
        **_BaseCausalEstimator._parameter_constraints,
        **_BaseCausalEstimator._outcome_constraints,
        **_BaseCausalEstimator._propensity_constraints,
        "threshold": [Interval(Real, 0, 0.5, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "scale": ["boolean"],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        *,
        threshold=0.1,
        n_neighbors=40,
        scale=True,
        alpha=0.05,
        learner="T",
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.threshold = threshold
        self.n_neighbors = n_neighbors
        self.scale = scale
        self.alpha = alpha
        self.learner = learner
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, treatment=None):
        """Cross-fit the nuisances, trim, and prepare the Lipschitz extensions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.
        y : array-like of shape (n_samples, 2) or (n_samples,)
            Target made by :func:`make_target`, or the outcome with
            ``treatment``.
        treatment : array-like of shape (n_samples,), default=None
            Binary treatment when ``y`` is the 1-d outcome.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        super().fit(X, y, treatment)
        X = validate_data(self, X, reset=False)
        Z = X
        if self.scale:
            sd = X.std(axis=0)
            sd[sd == 0] = 1.0
            Z = (X - X.mean(axis=0)) / sd
        e = self.propensity_
        inside = self.overlap_mask_
        k = min(int(self.n_neighbors), int(inside.sum()))
        nn = NearestNeighbors(n_neighbors=k).fit(Z[inside])
        inside_idx = np.flatnonzero(inside)
        distance = np.zeros(len(e))
        self._extensions = []
        for rows, arm in (
            (np.flatnonzero(e < self.threshold), 1),
            (np.flatnonzero(e > 1 - self.threshold), 0),
        ):
            if rows.size == 0:
                continue
            dist, ind = nn.kneighbors(Z[rows])
            distance[rows] = dist[:, 0]
            self._extensions.append((rows, arm, dist, inside_idx[ind]))
        self.extrapolation_distance_ = distance
        self.breakdown_lipschitz_ = self._breakdown(float(self.alpha))
        return self

    def _estimate(self, y, t, nuisance):
        e, mu = nuisance["e"], nuisance["mu"]
        inside = (e >= self.threshold) & (e <= 1 - self.threshold)
        if not np.any(inside):
            raise ValueError(
                f"No unit has an estimated propensity in [threshold, 1 - "
                f"threshold] = [{self.threshold}, {1 - self.threshold}]; "
                "lower threshold."
            )
        self.overlap_mask_ = inside
        self.overlap_fraction_ = float(inside.mean())
        phi = _aipw_pseudo_outcomes(y, t, e, mu)
        self._phi = phi
        psi = phi[inside].mean(axis=0)
        infl = np.where(inside[:, None], phi - psi, 0.0) / self.overlap_fraction_
        return psi, infl

    def _diagnostics(self, y, t, nuisance):
        diag = super()._diagnostics(y, t, nuisance)
        diag["n_trimmed"] = int((~self.overlap_mask_).sum())
        return diag

    # -- sensitivity ---------------------------------------------------------
    def _influence(self, lipschitz):
        """Estimate, influence function and half-widths at one constant L.

        An outside unit's missing-arm mean is the average of the AIPW
        pseudo-outcomes of its nearest overlap units; each pseudo-outcome is
        credited to its overlap unit in the influence function (as for
        matching estimators), so the variance is that of a linear statistic.
        """
        phi = self._phi
        n = phi.shape[0]
        own = phi[:, 1] - phi[:, 0]
        half = np.zeros(n)
        credit = np.zeros(n)
        for rows, arm, dist, neighbors in self._extensions:
            k = neighbors.shape[1]
            half[rows] = lipschitz * dist.mean(axis=1)
            sign = 1.0 if arm == 1 else -1.0
            own[rows] = -phi[rows, 0] if arm == 1 else phi[rows, 1]
            np.add.at(credit, neighbors.ravel(), sign * phi[neighbors.ravel(), arm] / k)
        total = own + credit
        estimate = float(total.mean())
        return estimate, total - estimate, half

    def _curve(self, lipschitz, alpha):
        rows = []
        n = self._phi.shape[0]
        for value in lipschitz:
            est, infl, half = self._influence(float(value))
            se = float(_influence_stderr(infl))
            bias = float(half.sum() / n)
            if se > 0:
                crit = stats.foldnorm.ppf(1 - alpha, bias / se) * se
            else:
                crit = bias
            rows.append((float(value), est, bias, se, est - crit, est + crit))
        return rows

    def bias_bound(self, lipschitz):
        """Worst-case trimming bias :math:`B(L)` of the full-population effect.

        Parameters
        ----------
        lipschitz : float or array-like of shape (n_values,)
            Lipschitz constant(s) :math:`L \\ge 0`.

        Returns
        -------
        bound : float or ndarray of shape (n_values,)
        """
        check_is_fitted(self)
        arr = _check_lipschitz(lipschitz)
        bounds = np.array([r[2] for r in self._curve(arr.reshape(-1), 0.05)])
        return float(bounds[0]) if arr.ndim == 0 else bounds

    def sensitivity_curve(self, lipschitz, alpha=0.05):
        """Estimate, bias bound and bias-aware interval over a grid of L.

        Parameters
        ----------
        lipschitz : array-like of shape (n_values,)
            Lipschitz constants :math:`L \\ge 0`.
        alpha : float, default=0.05
            One minus the confidence level.

        Returns
        -------
        curve : pandas.DataFrame
            Columns ``lipschitz``, ``estimate``, ``bias_bound``,
            ``std_error``, ``ci_lower``, ``ci_upper``.
        """
        check_is_fitted(self)
        arr = _check_lipschitz(lipschitz).reshape(-1)
        rows = self._curve(arr, _check_alpha(alpha))
        return pd.DataFrame(
            rows,
            columns=[
                "lipschitz",
                "estimate",
                "bias_bound",
                "std_error",
                "ci_lower",
                "ci_upper",
            ],
        )

    def conf_int(self, alpha=0.05, lipschitz=None):
        """Confidence interval of the overlap or the full-population effect.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level.
        lipschitz : float, default=None
            ``None`` gives the normal interval of the overlap-population
            effect ``estimate_``; a value :math:`L \\ge 0` gives the bias-aware
            interval of the full-population effect.

        Returns
        -------
        lower, upper : float
        """
        if lipschitz is None:
            return super().conf_int(alpha)
        check_is_fitted(self)
        value = float(_check_lipschitz(lipschitz).reshape(-1)[0])
        row = self._curve([value], _check_alpha(alpha))[0]
        return row[4], row[5]

    def _breakdown(self, alpha):
        def covers_zero(value):
            row = self._curve([value], alpha)[0]
            return row[4] <= 0.0 <= row[5]

        if covers_zero(0.0):
            return 0.0
        hi = 1.0
        while not covers_zero(hi):
            hi *= 4.0
            if hi > _L_MAX:
                return float("inf")
        lo = 0.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if covers_zero(mid) else (mid, hi)
            if hi - lo <= 1e-6 * hi:
                break
        return hi

    def plot(self, lipschitz=None, alpha=0.05, ax=None):
        """Plot the bias-aware interval of the full-population effect against L.

        Parameters
        ----------
        lipschitz : array-like, default=None
            Grid of :math:`L`; ``None`` spans ``[0, 2 L*]`` (or ``[0, 1]``).
        alpha : float, default=0.05
            One minus the confidence level.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        check_is_fitted(self)
        if lipschitz is None:
            top = self.breakdown_lipschitz_
            top = 2 * top if np.isfinite(top) and top > 0 else 1.0
            lipschitz = np.linspace(0.0, top, 60)
        curve = self.sensitivity_curve(lipschitz, alpha)
        if ax is None:
            _, ax = plt.subplots()
        ax.fill_between(
            curve["lipschitz"],
            curve["ci_lower"],
            curve["ci_upper"],
            alpha=0.3,
            label=f"{1 - alpha:.0%} bias-aware interval",
        )
        ax.plot(curve["lipschitz"], curve["estimate"], label="estimate")
        ax.axhline(0.0, color="black", linewidth=0.8)
        if np.isfinite(self.breakdown_lipschitz_):
            ax.axvline(
                self.breakdown_lipschitz_,
                linestyle="--",
                color="gray",
                label="breakdown L*",
            )
        ax.set_xlabel("Lipschitz constant L")
        ax.set_ylabel("average treatment effect")
        ax.legend()
        return ax
