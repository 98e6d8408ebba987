"""The worst-subpopulation evaluator of a fitted model."""

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted, validate_data

from skrobust._crossfit import default_regressor, fold_labels
from skrobust.ambiguity import CVaR
from skrobust.ambiguity._curves import _check_levels
from skrobust.metrics._estimate import (
    _COMMON_CONSTRAINTS,
    _evaluate,
    _loss_scale,
    _scaled,
    _select_core,
    _weights,
)
from skrobust.metrics._losses import model_losses
from skrobust.metrics._names import (
    _DEPRECATED_DEFAULT,
    _OLD_SIZE,
    _SIZE,
    _renamed_argument,
)
from skrobust.metrics._second_stage import _curve_table, _result
from skrobust.utils._conventions import DEPRECATED, resolve_renamed_param


class WorstSubpopulationEvaluator(BaseEstimator):
    """Worst-subpopulation performance of a fitted model.

    Fitting on evaluation data ``(X, y)`` computes the per-sample losses of
    ``estimator``, the cross-fitted conditional risk given the core features,
    the debiased worst-case risk at level ``subpopulation_size`` with its
    interval, and who belongs to the worst subpopulation. :meth:`risk_curve`
    gives the whole curve over the subpopulation size from the same fit.

    Read more in the :ref:`User Guide <worst_subpopulation>`.

    Parameters
    ----------
    estimator : object
        A fitted model with ``predict`` (``predict_proba`` and ``classes_``
        for ``loss="log_loss"``). It is not refitted. ``clone`` (used by
        ``GridSearchCV`` and the like) unfits the models it copies; wrap the
        model in :class:`~sklearn.frozen.FrozenEstimator` to keep it fitted.
    subpopulation_size : float, default=0.1
        Smallest subpopulation mass :math:`\\alpha`, in (0, 1] (``alpha``
        before).
    loss : {"zero_one", "squared_error", "absolute_error", "log_loss"} or \
callable, default="zero_one"
        Per-sample loss; a callable gets ``(y_true, y_pred)``.
    core_features : array-like of int, str or bool, default=None
        Columns of ``X`` that define subpopulations (indices, names of a
        DataFrame's columns, or a mask); ``None`` means all columns.
    regressor : regressor, default=None
        First stage, cloned for each fold; ``None`` uses the regularized
        gradient boosting of :func:`worst_subpopulation_risk`.
    cv : int, default=5
        Number of cross-fitting folds.
    n_repeats : int, default=1
        Number of cross-fitting splits (see :func:`worst_subpopulation_risk`).
    bias_correction : bool, default=True
        Fit two first stages per fold on disjoint halves of the training
        folds, average them and add the misranking correction (see
        :func:`worst_subpopulation_risk`).
    variance : {"influence", "jackknife"}, default="influence"
        Standard errors from the influence function, or from a delete-a-group
        jackknife of the whole procedure (see
        :func:`worst_subpopulation_risk`).
    jackknife_groups : int, default=10
        Number of groups of the jackknife.
    confidence_level : float, default=0.95
        Level of the two-sided intervals (``confidence`` before).
    n_jobs : int, default=None
        Number of jobs fitting the first stage in parallel (joblib).
    verbose : int, default=0
        Verbosity of the parallel fits (joblib): progress of the cross-fitting.
    random_state : int, RandomState instance or None, default=None
        Seeds the cross-fitting splits.
    alpha : float, default="deprecated"
        Deprecated name of ``subpopulation_size``, kept for one release
        (setting it warns with a ``FutureWarning`` in ``fit``).
    confidence : float, default="deprecated"
        Deprecated name of ``confidence_level``, kept for one release
        (setting it warns with a ``FutureWarning`` in ``fit``).

    Attributes
    ----------
    losses_ : ndarray of shape (n_samples,)
        Per-sample losses of ``estimator`` on the evaluation data.
    conditional_risk_ : ndarray of shape (n_samples,)
        Cross-fitted conditional risk :math:`\\hat\\mu(Z_i)` (averaged over
        the halves and the repeats).
    risk_ : float
        Debiased worst-case risk at level ``subpopulation_size``.
    confidence_interval_ : ConfidenceInterval
        ``(low, high)`` interval for the worst-case risk (a 2-tuple with the
        fields ``low`` and ``high``).
    std_error_ : float
        Its standard error.
    plug_in_risk_ : float
        CVaR of the conditional risks without correction.
    threshold_ : float
        The :math:`(1-\\alpha)`-quantile :math:`\\hat\\eta` of the conditional
        risk: the worst subpopulation is where it is exceeded.
    worst_case_weights_ : ndarray of shape (n_samples,)
        Weights of the worst subpopulation on the evaluation samples
        (``1 / (n alpha)`` inside, ``0`` outside, a fraction on ties).
    membership_ : ndarray of shape (n_samples,), dtype=bool
        Whether each evaluation sample is in the worst subpopulation.
    first_stage_r2_ : float
        Cross-fitted :math:`R^2` of the first stage: one minus its held-out
        mean squared error over that of the training folds' mean loss
        (``nan`` for constant losses). At or below 0 the first stage explains
        nothing about the losses given the core features, and ``fit`` warns.
    regressor_ : regressor
        First stage refitted on all evaluation data, used by
        :meth:`conditional_risk` and :meth:`in_worst_subpopulation`. It is
        fitted to the losses divided by their largest absolute value (the
        two methods scale its predictions back), so that its numerics do not
        depend on the scale of the losses.
    n_features_in_ : int
        Number of features of ``X``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    worst_subpopulation_risk : The same estimate from predictions.
    make_worst_subpopulation_scorer : A scorer for model selection.

    Notes
    -----
    The estimator and interval are those of :func:`worst_subpopulation_risk`.

    ``fit`` refits the first stage on all evaluation data first, then
    cross-fits; its peak memory (tracemalloc) is 3.0x the input (``X`` and
    ``y``, 5 features, zero-one losses) at n = 10000 and 2.2x at
    n = 100000 with the default first stage (3.9x and 2.9x before),
    of which the refit alone takes 3.0x at n = 10000 and 1.9x at n = 100000
    (the boosting's early-stopping copy of ``X`` and its histograms). With
    ``variance="jackknife"`` the evaluator keeps every left-out group's
    cross-fitted predictions for :meth:`risk_curve` (``jackknife_groups``
    times those of the whole sample), unlike the function, which drops each
    group's once its estimate is computed.

    References
    ----------
    .. [1] Li, M., Mittal, D., Namkoong, H. and Xia, S. "Evaluating model
       performance under worst-case subpopulations." arXiv:2407.01316; first
       version by Li, Namkoong and Xia in Advances in Neural Information
       Processing Systems 34 (2021).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.metrics import WorstSubpopulationEvaluator
    >>> rng = np.random.default_rng(1)
    >>> X = rng.uniform(size=(4000, 2))
    >>> y = (rng.uniform(size=4000) < X[:, 0]).astype(int)  # errs w.p. X_1
    >>> model = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    >>> evaluator = WorstSubpopulationEvaluator(
    ...     model, subpopulation_size=0.2, regressor=LinearRegression(),
    ...     random_state=0
    ... ).fit(X, y)
    >>> round(evaluator.risk_, 1)
    0.9
    >>> curve = evaluator.risk_curve([0.1, 0.5, 1.0])
    >>> np.round(curve.risk, 2)  # closed form 1 - alpha / 2: 0.95, 0.75, 0.5
    array([0.96, 0.75, 0.5 ])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["predict"])],
        "subpopulation_size": [_SIZE],
        "alpha": _OLD_SIZE,
        "core_features": ["array-like", None],
        **_COMMON_CONSTRAINTS,
    }

    def __init__(
        self,
        estimator,
        *,
        subpopulation_size=0.1,
        loss="zero_one",
        core_features=None,
        regressor=None,
        cv=5,
        n_repeats=1,
        bias_correction=True,
        variance="influence",
        jackknife_groups=10,
        confidence_level=0.95,
        n_jobs=None,
        verbose=0,
        random_state=None,
        alpha=_DEPRECATED_DEFAULT,
        confidence=_DEPRECATED_DEFAULT,
    ):
        self.estimator = estimator
        self.subpopulation_size = subpopulation_size
        self.loss = loss
        self.core_features = core_features
        self.regressor = regressor
        self.cv = cv
        self.n_repeats = n_repeats
        self.bias_correction = bias_correction
        self.variance = variance
        self.jackknife_groups = jackknife_groups
        self.confidence_level = confidence_level
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        self.alpha = alpha
        self.confidence = confidence

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Evaluate ``estimator`` on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Evaluation features, passed to ``estimator`` as given.
        y : array-like of shape (n_samples,)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the evaluation samples (an integer weight
            counts as that many copies); passed to the first stage's ``fit``.

        Returns
        -------
        self : object
            The fitted evaluator.
        """
        try:
            check_is_fitted(self.estimator)
        except NotFittedError as exc:
            raise NotFittedError(
                "estimator must be a fitted model; clone() unfits the models "
                "an evaluator holds, wrap it in sklearn.frozen.FrozenEstimator "
                "to keep it fitted."
            ) from exc
        size = float(resolve_renamed_param(self, "alpha", "subpopulation_size"))
        level = float(resolve_renamed_param(self, "confidence", "confidence_level"))
        validate_data(
            self, X, y, ensure_all_finite="allow-nan", dtype=None, y_numeric=False
        )
        self.losses_ = model_losses(self.estimator, X, np.asarray(y), self.loss)
        Z = _select_core(X, self.core_features)
        sample_weight = _weights(sample_weight, self.losses_, self.regressor)
        n = self.losses_.shape[0]
        fold_labels(n, self.cv, 1, 0)  # the folds' errors before any fit
        # the first stage refitted on all evaluation data comes first, while
        # the fewest vectors of the sample size are held (it peaks inside the
        # regressor's fit); it sees the losses in the cross-fit's units
        regressor = self.regressor
        if regressor is None:
            regressor = default_regressor(n)
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.regressor_ = clone(regressor).fit(
            Z, _scaled(self.losses_, _loss_scale(self.losses_)), **fit_params
        )
        fit = _evaluate(
            self.losses_,
            Z,
            np.array([size]),
            self.regressor,
            self.cv,
            self.n_repeats,
            level,
            self.n_jobs,
            self.random_state,
            self.variance,
            self.jackknife_groups,
            self.verbose,
            sample_weight,
            self.bias_correction,
            keep_jackknife=True,
        )
        self.conditional_risk_ = fit.conditional_risk
        self.first_stage_r2_ = fit.r2
        self._predictions = fit.predictions
        self._jackknife = fit.jackknife
        self._loss_scale = fit.scale
        table = fit.table
        self._sample_weight = sample_weight
        self._confidence_level = level
        result = _result(table, np.array([size]), level, True)
        self.risk_ = result.risk
        self.confidence_interval_ = result.confidence_interval
        self.std_error_ = result.std_error
        self.plug_in_risk_ = result.plug_in_risk
        self.threshold_ = result.threshold
        q = CVaR(alpha=size).worst_case_weights(
            self.conditional_risk_, sample_weight=sample_weight
        )
        self.worst_case_weights_ = q
        self.membership_ = q > 0
        return self

    def risk_curve(self, subpopulation_sizes=None, alphas=DEPRECATED):
        """Worst-case risk over a range of subpopulation masses.

        No refitting: the CVaR worst-case weights of the cross-fitted
        conditional risks at every level come from one sort
        (:func:`skrobust.ambiguity._curves.cvar_level_sums`, whose plug-in
        values are :meth:`skrobust.ambiguity.CVaR.risk_curve`'s); the same for
        the two halves of the correction and for the jackknife subsets with
        ``variance="jackknife"``. Peak memory (tracemalloc) without the
        jackknife: at most 3 times the loss vector (1.8x to 3.0x at
        n = 10000, 1.3x to 2.4x at n = 100000, with and without the halves
        of the correction and weights; 9.3x to 11.1x before).

        Parameters
        ----------
        subpopulation_sizes : array-like of shape (n_levels,), default=None
            Levels in (0, 1]; ``None`` means 50 levels from ``0.02`` to ``1``.
        alphas : array-like of shape (n_levels,), default="deprecated"
            Deprecated name of ``subpopulation_sizes``, kept for one release
            (setting it warns with a ``FutureWarning``).

        Returns
        -------
        curve : WorstSubpopulationResult
            Its fields are arrays of shape (n_levels,).
        """
        check_is_fitted(self)
        sizes = _renamed_argument(
            "WorstSubpopulationEvaluator.risk_curve",
            "alphas",
            "subpopulation_sizes",
            alphas,
            subpopulation_sizes,
        )
        if sizes is None:
            sizes = np.linspace(0.02, 1.0, 50)
        try:
            sizes = _check_levels(sizes)
        except ValueError as exc:
            raise ValueError(f"subpopulation_sizes: {exc}") from exc
        table = _curve_table(
            self._predictions,
            self.losses_,
            self._sample_weight,
            sizes,
            self._confidence_level,
            self._jackknife,
            self._loss_scale,
        )
        table *= self._loss_scale
        return _result(table, sizes, self._confidence_level, False)

    def conditional_risk(self, X):
        """Fitted conditional risk of new samples given their core features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the columns of the evaluation data.

        Returns
        -------
        risk : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=None)
        Z = _select_core(X, self.core_features)
        risk = np.asarray(self.regressor_.predict(Z), dtype=float).reshape(-1)
        return risk * self._loss_scale

    def in_worst_subpopulation(self, X):
        """Whether new samples fall in the fitted worst subpopulation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with the columns of the evaluation data.

        Returns
        -------
        member : ndarray of shape (n_samples,), dtype=bool
            ``conditional_risk(X) > threshold_``.
        """
        return self.conditional_risk(X) > self.threshold_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        regressor = default_regressor() if self.regressor is None else self.regressor
        tags.input_tags.allow_nan = (
            get_tags(self.estimator).input_tags.allow_nan
            and get_tags(regressor).input_tags.allow_nan
        )
        tags.target_tags.required = True
        return tags
