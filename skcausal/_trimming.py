"""Trimming sensitivity under limited overlap (Ma and Namkoong).

The estimator's public side; the work is in private modules by
responsibility: ``_trimming_extension`` (the Lipschitz extensions' geometry),
``_trimming_bootstrap`` (the stratified bootstrap and its refits) and
``_trimming_bounds`` (the bounds, intervals and breakdown constant).
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skcausal._base import _BaseCausalEstimator, _resolve_level
from skcausal._docstrings import fill_doc
from skcausal._estimators import _aipw_pseudo_outcomes
from skcausal._trimming_bootstrap import _BootstrapMixin
from skcausal._trimming_bounds import _BoundsMixin
from skcausal._trimming_extension import _check_lipschitz, _outcome_unit
from skrobust._crossfit import index_dtype
from skrobust.utils import DEPRECATED, ConfidenceInterval, resolve_confidence_level


@fill_doc
class TrimmingSensitivity(_BoundsMixin, _BootstrapMixin, _BaseCausalEstimator):
    """Trimmed AIPW with worst-case bounds on the bias that trimming causes.

    Units whose estimated propensity lies outside the overlap region
    :math:`\\mathcal O = \\{\\epsilon \\le \\hat e(x) \\le 1 - \\epsilon\\}` lack
    comparable units in one arm. The estimator reports the AIPW effect on
    :math:`\\mathcal O`, and, for the full-population average treatment
    effect, bounds and a bias-aware confidence interval valid when both
    outcome functions are :math:`L`-Lipschitz in the Euclidean distance of the
    (standardized) covariates. At a unit outside :math:`\\mathcal O` the
    missing arm's mean is bracketed by the lower and upper Lipschitz
    (McShane-Whitney) extensions of the outcome model from all overlap
    units; the bracket's half-width averages to the worst-case bias bound
    :math:`B(L)`. The breakdown value :math:`L^\\star` is the smallest
    :math:`L` at which the interval contains zero.

    Read more in the :ref:`User Guide <overlap>`.

    Parameters
    ----------
    <<outcome_model propensity_model>>
    threshold : float in (0, 0.5), default=0.1
        Trimming level :math:`\\epsilon`.
    extension : {"lipschitz", "knn"}, default="lipschitz"
        ``"lipschitz"``: the exact lower/upper Lipschitz extensions of the
        cross-fitted outcome model from every overlap unit, with standard
        errors from a bootstrap that refits the outcome models.
        ``"knn"``: the average AIPW pseudo-outcome of the ``n_neighbors``
        nearest overlap units, bracketed by :math:`L` times their mean
        distance, with a matching-style influence function and Armstrong
        and Kolesar's bias-aware critical value (cheaper, no refits, a wider
        bound, and a standard error that can be too small when a few
        boundary units are reused by many outside units).
    n_neighbors : int, default=40
        Number :math:`K` of nearest overlap units of ``extension="knn"``.
    n_bootstrap : int, default=100
        Bootstrap draws of ``extension="lipschitz"``: units are resampled
        within each (fold, arm) cell and the propensity and outcome models
        refit on the training folds (the overlap region is held fixed).
    anchor_margin : float, default=1.0
        With ``extension="lipschitz"``, each overlap unit's outcome
        prediction enters the extensions as the band ``mu_hat -/+
        anchor_margin`` times its bootstrap standard error, so that the
        noise of the fitted model does not narrow the brackets (the max of
        noisy values is biased upwards); ``0`` uses the predictions as they
        are.
    scale : bool, default=True
        Standardize the covariates before measuring distances; the Lipschitz
        constant is then per standard deviation.
    confidence_level : float in (0, 1), default=0.95
        Confidence level of the bias-aware interval that defines
        ``breakdown_lipschitz_``.
    <<learner clip cv>>
    random_state : int, RandomState instance or None, default=None
        Seeds the folds, the bootstrap and every unset ``random_state`` of
        the nuisances.
    n_jobs : int, default=None
        Folds and bootstrap draws fit in parallel with joblib.
    verbose : int, default=0
        Progress messages of the joblib loops.
    alpha : float in (0, 1), default="deprecated"
        The old name of the level, ``1 - confidence_level``: it keeps working
        for one release with a ``FutureWarning`` (and wins when set).

    Attributes
    ----------
    estimate_ : float
        AIPW estimate of the effect on the *estimated* overlap region,
        the mean of :math:`\\hat\\varphi^{(1)}_i - \\hat\\varphi^{(0)}_i` over
        the units with :math:`\\epsilon \\le \\hat e(X_i) \\le 1 - \\epsilon`
        (out-of-fold :math:`\\hat e`).
    stderr_ : float
        Its standard error, from the influence function with the estimated
        region and the cross-fitted nuisances held fixed: it omits the
        variability of the region and the nuisances' estimation error (see
        Notes).
    bootstrap_stderr_ : float or None
        Standard error of ``estimate_`` over the ``n_bootstrap`` draws of
        ``extension="lipschitz"``, each of which refits the nuisances and
        re-chooses the overlap region from its own propensities, so it
        includes the region's variability; ``None`` with ``extension="knn"``.
    influence_function_ : ndarray of shape (n_samples,)
        Influence function of ``estimate_`` (zero outside the overlap region).
    potential_outcome_means_ : ndarray of shape (2,)
        AIPW estimates of :math:`E[Y(a) | X \\in \\mathcal O]`.
    <<potential_outcome_stderr_ potential_outcome_influence_>>
    overlap_mask_ : ndarray of shape (n_samples,) of bool
        Units inside the overlap region.
    overlap_fraction_ : float
        Fraction of units inside the overlap region.
    extrapolation_distance_ : ndarray of shape (n_samples,)
        Distance from each unit to its nearest overlap unit (zero inside).
    breakdown_lipschitz_ : float
        Smallest :math:`L` at which the bias-aware ``confidence_level`` interval of
        the full-population effect contains zero (``0`` if it already does at
        ``L = 0``; ``inf`` if it never does).
    <<propensity_ outcome_predictions_ propensity_models_ fold_indices_>>
    diagnostics_ : dict
        As :class:`AIPW`, plus ``n_trimmed``.
    <<n_features_in_ feature_names_in_>>

    See Also
    --------
    AIPW : The untrimmed estimator.

    Notes
    -----
    Write :math:`\\hat\\varphi^{(a)}_i` for the AIPW pseudo-outcomes and
    :math:`\\hat\\mu_a` for the cross-fitted outcome model. For a unit with
    :math:`\\hat e(X_i) < \\epsilon` the treated mean lies in
    :math:`[\\ell_i(L), u_i(L)]` with

    .. math::

        \\ell_i(L) = \\max_{j \\in \\mathcal O} \\hat\\mu_1(X_j) - L\\,d(X_i,
        X_j), \\qquad
        u_i(L) = \\min_{j \\in \\mathcal O} \\hat\\mu_1(X_j) + L\\,d(X_i, X_j),

    the McShane-Whitney extensions (with ``anchor_margin`` :math:`\\kappa > 0`
    each :math:`\\hat\\mu_1(X_j)` is first lowered, respectively raised, by
    :math:`\\kappa` bootstrap standard errors); it contributes :math:`[\\ell_i, u_i] -
    \\hat\\varphi^{(0)}_i` (units with :math:`\\hat e > 1 - \\epsilon` are
    symmetric, units in :math:`\\mathcal O` contribute
    :math:`\\hat\\varphi^{(1)}_i - \\hat\\varphi^{(0)}_i`). Averaging gives
    bounds :math:`[\\hat\\theta_-(L), \\hat\\theta_+(L)]`; ``estimate`` is
    their midpoint and :math:`B(L)` their half-width. Where
    :math:`\\ell_i > u_i` (the fitted model is not :math:`L`-Lipschitz
    around unit :math:`i`) the bracket is the point where the two
    extensions meet. The standard errors of the two bounds come from the
    bootstrap, linearized at the extensions' active anchors, so they include
    the estimation error of :math:`\\hat\\mu_a` at those anchors; the
    interval is Imbens and Manski's :math:`[\\hat\\theta_- - c\\,
    \\hat\\sigma_-, \\hat\\theta_+ + c\\,\\hat\\sigma_+]` with
    :math:`\\Phi(c + 2B/\\max\\hat\\sigma) - \\Phi(-c) = 1 - \\alpha`.
    Only the overlap units that some outside unit's extension uses at some
    :math:`L \\ge 0` (the vertices of the convex hulls, per outside unit, of
    the points :math:`(d(X_i, X_j), \\hat\\mu(X_j) \\mp \\kappa\\,\\mathrm{se}_j)`) are
    kept as anchors: both extensions equal those over every overlap unit at
    every :math:`L`. Cost: :math:`O(n_{out}\\, n_{in})` to find them, then
    :math:`O(n_{out}\\, n_{anchors})` per :math:`L`, in distance blocks of
    about an eighth of the input's memory. The fit keeps each bootstrap
    draw's change of the outcome predictions at those anchors only (float32,
    :math:`4\\, n_{bootstrap}\\, n_{anchors}` bytes: on
    ``make_limited_overlap`` a fifth of the overlap units with 2 covariates,
    nine tenths with 5), and replays the draws' counts from the random
    stream instead of storing them; the outcome models are therefore refit
    twice per draw (once for the margins, once for the kept anchors).

    ``conf_int()`` (no ``lipschitz``) is the normal interval
    ``estimate_ -/+ z stderr_``. Its target is the effect on the region
    selected by the estimated propensity, and ``stderr_`` treats that region
    as fixed. It is close to nominal when :math:`\\hat e` is accurate near
    :math:`\\epsilon`, and it undercovers when the propensity is flat near
    :math:`\\epsilon` (the region then swings with the fit and takes in
    units whose true propensity is far below :math:`\\epsilon`). On
    ``make_limited_overlap(1000)`` the coverage of the sample effect over the
    estimated region was 0.90 to 0.92 with the default models, and with
    spline nuisances it was 0.92 at ``threshold=0.1`` and 0.81 at
    ``threshold=0.05``, where ``stderr_`` averaged 0.107 against a spread of
    0.153 (:ref:`User Guide <overlap_interval>`). ``bootstrap_stderr_``
    re-estimates the region in every draw. In the same design (100 draws,
    ``n_bootstrap=30``) it averaged 0.170 against a spread of 0.185 around
    the true region's effect and covered it in 0.90 of the draws, where
    ``stderr_`` covered it in 0.73 (default models, ``threshold=0.1``: 0.95
    and 0.92).

    References
    ----------
    .. [1] Ma, Y. and Namkoong, H. "A Sensitivity Approach to Causal
       Inference Under Limited Overlap."
    .. [2] McShane, E. J. (1934). "Extension of range of functions." Bulletin
       of the AMS 40(12).
    .. [3] Imbens, G. W. and Manski, C. F. (2004). "Confidence intervals for
       partially identified parameters." Econometrica 72(6).

    Examples
    --------
    >>> from skcausal import TrimmingSensitivity
    >>> from skcausal.datasets import make_limited_overlap
    >>> X, y = make_limited_overlap(n_samples=500, random_state=0)
    >>> est = TrimmingSensitivity(threshold=0.05, n_bootstrap=20,
    ...                           random_state=0).fit(X, y)
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
        "extension": [StrOptions({"lipschitz", "knn"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_bootstrap": [Interval(Integral, 2, None, closed="left")],
        "anchor_margin": [Interval(Real, 0, None, closed="left")],
        "scale": ["boolean"],
        "confidence_level": [Interval(Real, 0, 1, closed="neither")],
        "alpha": [
            Interval(Real, 0, 1, closed="neither"),
            Hidden(StrOptions({DEPRECATED})),
        ],
    }

    def __init__(
        self,
        outcome_model=None,
        propensity_model=None,
        *,
        threshold=0.1,
        extension="lipschitz",
        n_neighbors=40,
        n_bootstrap=100,
        anchor_margin=1.0,
        scale=True,
        confidence_level=0.95,
        learner="T",
        clip=1e-3,
        cv=5,
        random_state=None,
        n_jobs=None,
        verbose=0,
        # a plain str (the sentinel DEPRECATED is a str subclass, which
        # scikit-learn's check_parameters_default_constructible refuses)
        alpha=str(DEPRECATED),
    ):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.threshold = threshold
        self.extension = extension
        self.n_neighbors = n_neighbors
        self.n_bootstrap = n_bootstrap
        self.anchor_margin = anchor_margin
        self.scale = scale
        self.confidence_level = confidence_level
        self.learner = learner
        self.clip = clip
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.alpha = alpha

    def fit(self, X, y, treatment=None, sample_weight=None):
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
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the units, passed to the nuisance models
            that accept them and used in every average.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        super().fit(X, y, treatment, sample_weight=sample_weight)
        X = validate_data(self, X, reset=False)
        sw = self._sample_weight
        if sw is None:
            # unit weights as a read-only broadcast view: no array of n ones
            sw = self._sample_weight = np.broadcast_to(np.float64(1.0), X.shape[:1])
        margin = None
        self.bootstrap_stderr_ = None
        if self.extension == "lipschitz":
            # each anchor's value is known up to anchor_margin bootstrap
            # standard errors: the extensions start from that band (the
            # refits run before the standardized covariates exist)
            rng = check_random_state(self.random_state)
            margin = self._bootstrap(X, self.overlap_mask_, rng)
            margin *= float(self.anchor_margin)
        if self.scale:
            mean = np.average(X, axis=0, weights=sw)
            Z = X - mean
            sd = np.sqrt(np.einsum("i,ij,ij->j", sw, Z, Z) / sw.sum())
            sd[sd == 0] = 1.0
            Z /= sd
        else:
            Z = X
        e = self.propensity_
        # the outside units' indices: int32 below 2**31 units
        rows_dtype = index_dtype(e.shape[0])
        groups = (
            (np.flatnonzero(e < self.threshold).astype(rows_dtype), 1),
            (np.flatnonzero(e > 1 - self.threshold).astype(rows_dtype), 0),
        )
        # the standardized covariates of the anchors (the overlap units) and
        # of the outside units are all that is kept of them
        anchors = Z[self.overlap_mask_]
        group_Z = [Z[rows] for rows, _ in groups]
        del Z
        distance = np.zeros(len(e))
        self._extensions = []
        if self.extension == "knn":
            self._knn = self._knn_fit(anchors, group_Z, groups, distance)
            del self._known, anchors, group_Z
        else:
            work = [anchors, group_Z, margin]
            del anchors, group_Z, margin
            self._lipschitz_fit(X, work, groups, distance)
        del self._fit_data
        self.extrapolation_distance_ = distance
        level = resolve_confidence_level(
            self.confidence_level, self.alpha, owner="TrimmingSensitivity"
        )
        self.breakdown_lipschitz_ = self._breakdown(1.0 - level)
        return self

    def _estimate(self, y, t, nuisance, sw):
        e, mu = nuisance["e"], nuisance["mu"]
        inside = (e >= self.threshold) & (e <= 1 - self.threshold)
        if not np.any(inside):
            raise ValueError(
                f"No unit has an estimated propensity in [threshold, 1 - "
                f"threshold] = [{self.threshold}, {1 - self.threshold}]; "
                "lower threshold."
            )
        weight = np.ones_like(y) if sw is None else sw
        self.overlap_mask_ = inside
        self.overlap_fraction_ = float(weight @ inside / weight.sum())
        phi = _aipw_pseudo_outcomes(y, t, e, mu)
        self._fit_data = (y, t)
        # the unit of the outcome: Lipschitz constants are searched, and the
        # bootstrap draws stored, relative to it
        self._outcome_scale = _outcome_unit(y)
        psi = np.average(phi[inside], axis=0, weights=weight[inside])
        # the identified part of the full-population effect: the observed
        # arm's pseudo-outcome outside the overlap region
        known = phi[:, 1] - phi[:, 0]
        low, high = e < self.threshold, e > 1 - self.threshold
        known[low] = -phi[low, 0]
        known[high] = phi[high, 1]
        self._known_mean = float(weight @ known / weight.sum())
        if self.extension == "knn":
            # each unit's own term of the knn estimate (the neighbours'
            # pseudo-outcomes are read back from the influence function)
            self._known = known
        del known
        infl = phi
        infl -= psi
        infl[~inside] = 0.0
        infl /= self.overlap_fraction_
        return psi, infl

    def _diagnostics(self, y, t, nuisance):
        diag = super()._diagnostics(y, t, nuisance)
        diag["n_trimmed"] = int((~self.overlap_mask_).sum())
        return diag

    # -- sensitivity ---------------------------------------------------------
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

    def sensitivity_curve(self, lipschitz, confidence_level=0.95, *, alpha=DEPRECATED):
        """Estimate, bias bound and bias-aware interval over a grid of L.

        Parameters
        ----------
        lipschitz : array-like of shape (n_values,)
            Lipschitz constants :math:`L \\ge 0`.
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the bias-aware intervals.
        alpha : float in (0, 1), default="deprecated"
            The old name, ``1 - confidence_level`` (one release, with a
            ``FutureWarning``; so is a level below 0.5 given where ``alpha``
            used to be the first argument).

        Returns
        -------
        curve : pandas.DataFrame
            Columns ``lipschitz``, ``estimate`` (midpoint of the bounds),
            ``bias_bound`` (their half-width :math:`B(L)`), ``std_error``
            (the larger of the bounds' standard errors), ``lower_bound``,
            ``upper_bound``, ``lower_std_error``, ``upper_std_error``,
            ``ci_lower``, ``ci_upper``. With ``extension="knn"`` the bounds
            are ``estimate -/+ bias_bound`` and both standard errors are the
            one of ``estimate``.
        """
        check_is_fitted(self)
        arr = _check_lipschitz(lipschitz).reshape(-1)
        level = _resolve_level(
            confidence_level, alpha, "TrimmingSensitivity.sensitivity_curve"
        )
        rows = self._curve(arr, 1.0 - level)
        return pd.DataFrame(
            rows,
            columns=[
                "lipschitz",
                "estimate",
                "bias_bound",
                "std_error",
                "lower_bound",
                "upper_bound",
                "lower_std_error",
                "upper_std_error",
                "ci_lower",
                "ci_upper",
            ],
        )

    def conf_int(self, confidence_level=0.95, lipschitz=None, *, alpha=DEPRECATED):
        """Confidence interval of the overlap or the full-population effect.

        Parameters
        ----------
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the interval.
        lipschitz : float, default=None
            ``None`` gives the normal interval ``estimate_ -/+ z stderr_`` of
            the effect on the estimated overlap region, which is held fixed
            (it can undercover when the region is noisy; see Notes); a value
            :math:`L \\ge 0` gives the bias-aware interval of the
            full-population effect.
        alpha : float in (0, 1), default="deprecated"
            The old name, ``1 - confidence_level`` (one release, with a
            ``FutureWarning``; so is a level below 0.5 given where ``alpha``
            used to be the first argument).

        Returns
        -------
        interval : ConfidenceInterval
            ``low``, ``high`` (it unpacks as a pair).
        """
        check_is_fitted(self)
        level = _resolve_level(confidence_level, alpha, "TrimmingSensitivity.conf_int")
        if lipschitz is None:
            return self._normal_conf_int(level)
        value = float(_check_lipschitz(lipschitz).reshape(-1)[0])
        row = self._curve([value], 1.0 - level)[0]
        return ConfidenceInterval(row[8], row[9])

    def plot(self, lipschitz=None, confidence_level=0.95, ax=None, *, alpha=DEPRECATED):
        """Plot the bias-aware interval of the full-population effect against L.

        Parameters
        ----------
        lipschitz : array-like, default=None
            Grid of :math:`L`; ``None`` spans ``[0, 2 L*]`` (or ``[0, 1]``).
        confidence_level : float in (0, 1), default=0.95
            Confidence level of the band.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        alpha : float in (0, 1), default="deprecated"
            The old name, ``1 - confidence_level`` (one release, with a
            ``FutureWarning``; so is a level below 0.5 given where ``alpha``
            used to be the first argument).

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        check_is_fitted(self)
        level = _resolve_level(confidence_level, alpha, "TrimmingSensitivity.plot")
        if lipschitz is None:
            top = self.breakdown_lipschitz_
            top = 2 * top if np.isfinite(top) and top > 0 else 1.0
            lipschitz = np.linspace(0.0, top, 60)
        curve = self.sensitivity_curve(lipschitz, level)
        if ax is None:
            _, ax = plt.subplots()
        ax.fill_between(
            curve["lipschitz"],
            curve["ci_lower"],
            curve["ci_upper"],
            alpha=0.3,
            label=f"{level:.0%} bias-aware interval",
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
