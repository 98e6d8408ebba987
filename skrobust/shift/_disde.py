"""Decomposition of a performance drop under distribution shift (DISDE).

Cai, Namkoong and Yadlowsky, "Diagnosing model performance under distribution
shift" (2023).
"""

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import _num_samples, check_is_fitted

from skrobust._crossfit import (
    default_regressor,
    fit_first_stage,
    map_folds,
    normal_interval,
)
from skrobust.metrics._losses import LOSSES, model_losses
from skrobust.metrics._names import (
    _LEVEL,
    _OLD_LEVEL,
    _confidence_level,
    _deprecated_field,
)
from skrobust.utils._conventions import DEPRECATED

_CLIP = 1e-6

TERMS = ("x_shift_shared", "y_given_x_shift", "x_shift_unseen")


@dataclass(frozen=True, eq=False)
class ShiftDecomposition:
    """A performance drop split into three terms, with intervals.

    Returned by :func:`decompose_performance_shift`. The terms add up to the
    drop: ``total = x_shift_shared + y_given_x_shift + x_shift_unseen``.

    Attributes
    ----------
    source_risk, target_risk : float
        Average loss of the model on the source and on the target data.
    shared_risk_source : float
        Expected loss on the shared distribution :math:`S_X` under the source
        relation of Y given X.
    shared_risk_target : float
        The same under the target relation of Y given X.
    total : float
        ``target_risk - source_risk``.
    x_shift_shared : float
        More (or less) of the X that are harder yet seen in both domains:
        ``shared_risk_source - source_risk``.
    y_given_x_shift : float
        Change of Y given X on the shared X:
        ``shared_risk_target - shared_risk_source``.
    x_shift_unseen : float
        X that are rare or absent in the source domain:
        ``target_risk - shared_risk_target``.
    std_errors : dict
        Standard error of ``total`` and of each term.
    intervals : dict
        Interval of ``total`` and of each term, as
        :class:`~skrobust.utils.ConfidenceInterval` ``(low, high)``.
    confidence_level : float
        Level of the intervals (``confidence`` before; the old name is an
        alias for one release, with a ``FutureWarning``).
    source_shared_weights, target_shared_weights : ndarray
        Cross-fitted overlap weights :math:`\\hat\\pi` on the source samples
        and :math:`1 - \\hat\\pi` on the target samples,
        :math:`\\hat\\pi(x)` the balanced probability of the target domain.
    """

    source_risk: float
    target_risk: float
    shared_risk_source: float
    shared_risk_target: float
    total: float
    x_shift_shared: float
    y_given_x_shift: float
    x_shift_unseen: float
    std_errors: dict = field(repr=False)
    intervals: dict = field(repr=False)
    confidence_level: float = field(repr=False)
    source_shared_weights: np.ndarray = field(repr=False)
    target_shared_weights: np.ndarray = field(repr=False)

    confidence = _deprecated_field(
        "confidence", "confidence_level", "ShiftDecomposition"
    )

    def plot(self, ax=None, labels=None):
        """Bar plot of the drop and its three terms, with interval bars.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` uses the current axes.
        labels : list of str, default=None
            Four bar labels; ``None`` uses short descriptions.

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            ax = plt.gca()
        keys = ("total",) + TERMS
        if labels is None:
            labels = [
                "total drop",
                "X shift\n(harder, seen)",
                "Y | X shift",
                "X shift\n(unseen)",
            ]
        if len(labels) != len(keys):
            raise ValueError(f"labels must have {len(keys)} entries.")
        values = np.array([getattr(self, key) for key in keys])
        bounds = np.array([self.intervals[key] for key in keys])
        err = np.abs(bounds.T - values)
        colors = ["0.4", "tab:blue", "tab:orange", "tab:green"]
        ax.bar(range(4), values, yerr=err, color=colors, capsize=4)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(4))
        ax.set_xticklabels(labels)
        ax.set_ylabel("change in expected loss")
        return ax


def _pair(X_source, X_target):
    """Both domains' features, checked to stack (they are never stacked:
    :func:`_rows` gathers the rows each fit needs)."""
    if hasattr(X_source, "iloc") and hasattr(X_target, "iloc"):
        return X_source, X_target
    A = np.asarray(X_source)
    B = np.asarray(X_target)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError("X_source and X_target must be 2-dimensional.")
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"X_source has {A.shape[1]} features but X_target has {B.shape[1]}."
        )
    return A, B


def _rows(X_source, X_target, rows):
    """Rows ``rows`` of the source rows followed by the target rows, in the
    order given.

    One copy of the selected rows, without the stacked data set.
    """
    n_source = X_source.shape[0]
    in_source = rows < n_source
    if hasattr(X_source, "iloc"):
        import pandas as pd

        order = np.argsort(~in_source, kind="stable")  # source rows first
        cut = int(np.count_nonzero(in_source))
        stacked = pd.concat(
            [
                _safe_indexing(X_source, rows[order[:cut]]),
                _safe_indexing(X_target, rows[order[cut:]] - n_source),
            ],
            ignore_index=True,
        )
        if np.all(order[1:] > order[:-1]):
            return stacked
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.shape[0])
        return stacked.iloc[inverse].reset_index(drop=True)
    out = np.empty(
        (rows.shape[0], X_source.shape[1]),
        dtype=np.result_type(X_source, X_target),
    )
    out[in_source] = X_source[rows[in_source]]
    in_target = ~in_source
    out[in_target] = X_target[rows[in_target] - n_source]
    return out


def _fold_fit(classifier, regressor, X_source, X_target, losses, train, test):
    """Fit the fold's domain classifier (and loss regressions); predict ``test``.

    ``train`` and ``test`` are sorted indices of the source rows followed by
    the target rows. Returns the balanced probability of the target domain on
    ``test`` and, if ``regressor`` is given, the conditional risks of each
    domain on ``test`` (regressions of the loss on X fitted on that domain's
    training samples).
    """
    n_source = X_source.shape[0]
    domain = (train >= n_source).astype(np.int8)
    model = clone(classifier).fit(_rows(X_source, X_target, train), domain)
    X_test = _rows(X_source, X_target, test)
    proba = model.predict_proba(X_test)
    column = int(np.flatnonzero(np.asarray(model.classes_) == 1)[0])
    prob = np.clip(proba[:, column], _CLIP, 1 - _CLIP)
    del proba
    # odds of the target domain corrected to equal domain sizes
    n_target = domain.sum()
    odds = prob / (1 - prob) * (train.shape[0] - n_target) / n_target
    risks = []
    if regressor is not None:
        for d in (0, 1):
            fitted = fit_first_stage(
                regressor,
                lambda rows: _rows(X_source, X_target, rows),
                train[domain == d],
                losses,
            )
            risks.append(np.asarray(fitted.predict(X_test), dtype=float).reshape(-1))
    return test, odds / (1 + odds), risks


def _one_step_shared(pi, mu, losses, n_source, own):
    """One-step estimate of the shared-distribution risk and its influence.

    ``own`` is 0 for :math:`E_S[\\mu_P]` (the loss is observed on the source)
    and 1 for :math:`E_S[\\mu_Q]`. Returns the estimate and the influence
    values on the source and on the target samples.
    """
    w_source = pi[:n_source] ** 2
    w_target = (1.0 - pi[n_source:]) ** 2
    mass = w_source.mean() + w_target.mean()
    if own == 0:
        residual = pi[:n_source] * (losses[:n_source] - mu[:n_source])
        residual = np.r_[residual, np.zeros(pi.shape[0] - n_source)]
    else:
        residual = (1.0 - pi[n_source:]) * (losses[n_source:] - mu[n_source:])
        residual = np.r_[np.zeros(n_source), residual]
    value = (
        np.mean(residual[:n_source] + w_source * mu[:n_source])
        + np.mean(residual[n_source:] + w_target * mu[n_source:])
    ) / mass
    weight = np.r_[w_source, w_target]
    influence = (residual + weight * (mu - value)) / mass
    return float(value), influence[:n_source], influence[n_source:]


def _ratio_mean(weights, losses):
    """Weighted mean and its influence values (delta method)."""
    mean_w = weights.mean()
    value = float(np.dot(weights, losses) / weights.sum())
    return value, weights * (losses - value) / mean_w


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X_source": ["array-like"],
        "y_source": ["array-like"],
        "X_target": ["array-like"],
        "y_target": ["array-like"],
        "loss": [StrOptions(set(LOSSES)), callable],
        "domain_classifier": [HasMethods(["fit", "predict_proba"]), None],
        "method": [StrOptions({"one_step", "weighting"})],
        "regressor": [HasMethods(["fit", "predict"]), None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "confidence_level": [_LEVEL],
        "confidence": _OLD_LEVEL,
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def decompose_performance_shift(
    estimator,
    X_source,
    y_source,
    X_target,
    y_target,
    *,
    loss="zero_one",
    domain_classifier=None,
    method="one_step",
    regressor=None,
    cv=5,
    confidence_level=0.95,
    n_jobs=None,
    verbose=0,
    random_state=None,
    confidence=DEPRECATED,
):
    """Split a model's performance drop from source to target data (DISDE).

    The drop :math:`E_Q[\\ell] - E_P[\\ell]` from the source distribution
    :math:`P` to the target :math:`Q` is split through a shared distribution
    of X with density :math:`s(x) \\propto p(x) q(x) / (p(x) + q(x))`, which
    lives where both domains put mass, into

    - ``x_shift_shared``: :math:`E_S[\\mu_P] - E_P[\\mu_P]`, more (or less)
      of the X that are harder yet seen in training;
    - ``y_given_x_shift``: :math:`E_S[\\mu_Q - \\mu_P]`, a change in Y given X
      on the shared X;
    - ``x_shift_unseen``: :math:`E_Q[\\mu_Q] - E_S[\\mu_Q]`, X that are rare
      or absent in the source domain,

    with :math:`\\mu_P, \\mu_Q` the conditional risks given X in each domain.

    Read more in the :ref:`User Guide <shift_decomposition>`.

    Parameters
    ----------
    estimator : object
        The fitted model to diagnose (``predict``; ``predict_proba`` and
        ``classes_`` for ``loss="log_loss"``). It is not refitted.
    X_source, X_target : array-like of shape (n_source, n_features) and \
(n_target, n_features)
        Features of each domain, passed to ``estimator`` and to
        ``domain_classifier`` as given. To define the shift over some
        columns only, make ``domain_classifier`` a pipeline that selects
        them.
    y_source, y_target : array-like of shape (n_source,) and (n_target,)
        Targets of each domain.
    loss : {"zero_one", "squared_error", "absolute_error", "log_loss"} or \
callable, default="zero_one"
        Per-sample loss; a callable gets ``(y_true, y_pred)``.
    domain_classifier : classifier, default=None
        Probabilistic classifier of the domain (0 source, 1 target) given X,
        cross-fitted and cloned for each fold. Its probabilities should be
        calibrated. ``None`` uses
        :class:`~sklearn.linear_model.LogisticRegression`.
    method : {"one_step", "weighting"}, default="one_step"
        ``"one_step"``: one-step estimates of the shared-distribution
        risks from the overlap weights and cross-fitted regressions of the
        loss on X in each domain; their intervals include the estimation
        error of the domain classifier (see Notes). ``"weighting"``: overlap
        weighted means of the losses, with intervals that treat the fitted
        weights as known (they can under-cover, see Notes).
    regressor : regressor, default=None
        Regression of the per-sample loss on X in each domain, cross-fitted
        with the domain classifier (``method="one_step"`` only). ``None``
        uses the regularized gradient boosting of
        :func:`~skrobust.metrics.worst_subpopulation_risk`.
    cv : int, default=5
        Cross-fitting folds, stratified by domain.
    confidence_level : float, default=0.95
        Level of the two-sided intervals.
    n_jobs : int, default=None
        Jobs fitting the domain classifier in parallel (joblib).
    verbose : int, default=0
        Verbosity of the parallel fits (joblib).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds.
    confidence : float, default="deprecated"
        Deprecated name of ``confidence_level``, kept for one release
        (setting it warns with a ``FutureWarning``).

    Returns
    -------
    result : ShiftDecomposition
        The terms, their intervals and a :meth:`~ShiftDecomposition.plot`
        method.

    See Also
    --------
    kl_stability : How far the distribution can move before the loss
        reaches a threshold.

    Notes
    -----
    With :math:`\\pi(x) = q(x) / (p(x) + q(x))` the probability of the target
    domain at equal domain sizes (from the cross-fitted classifier, its odds
    rescaled by the domain sizes), :math:`E_S[f] = E_P[\\pi f] / E_P[\\pi] =
    E_Q[(1 - \\pi) f] / E_Q[1 - \\pi]`, so

    .. math::

        E_S[\\mu_P] = \\frac{\\sum_{i \\in P} \\pi(x_i) \\ell_i}
        {\\sum_{i \\in P} \\pi(x_i)}, \\qquad
        E_S[\\mu_Q] = \\frac{\\sum_{j \\in Q} (1 - \\pi(x_j)) \\ell_j}
        {\\sum_{j \\in Q} (1 - \\pi(x_j))}.

    The overlap weights lie in [0, 1], so these means stay stable where the
    domains barely overlap, unlike importance weights :math:`q/p`. This is
    ``method="weighting"``; its intervals (delta method, the two samples
    independent) treat the fitted classifier as known, but the weights'
    estimation error moves the estimate at first order,
    :math:`E_P[(\\hat\\pi - \\pi)(\\mu_P - E_S[\\mu_P])] / E_P[\\pi]`,
    which cross-fitting does not remove.

    ``method="one_step"`` (the default) adds the influence function of
    the weights. With :math:`m = E_P[\\pi] = E_P[\\pi^2] + E_Q[(1-\\pi)^2]`,

    .. math::

        E_S[\\mu_P] = \\frac{1}{m} \\Big( E_P[\\pi (\\ell - \\hat\\mu_P)
        + \\pi^2 \\hat\\mu_P] + E_Q[(1-\\pi)^2 \\hat\\mu_P] \\Big),

    and symmetrically for :math:`E_S[\\mu_Q]` with the residual
    :math:`(1-\\pi)(\\ell - \\hat\\mu_Q)` on the target samples; the
    terms :math:`\\pi^2 \\hat\\mu` on the source and :math:`(1-\\pi)^2
    \\hat\\mu` on the target are the pathwise derivative of
    :math:`\\int p q / (p+q)\\, \\mu` in the two densities. The estimating
    equation is Neyman-orthogonal: its error is of second order (the square
    of the classifier's error and the product of the classifier's and the
    regressions' errors), so with cross-fitting the variance of the influence
    values gives intervals that account for the estimated weights. Costs two
    regressions per fold on top of the classifier.

    Peak memory (tracemalloc; input: both domains' ``X`` and ``y``) with
    the default one-step method is 2.9x at n = 10000 and 2.2x at
    n = 100000 (both domains together, 5 features; 3.6x and 2.7x before),
    1.9x and 1.8x with ``method="weighting"``. The rows each fit needs are
    gathered from the two domains (never stacked); the early-stopping
    validation rows of the default boosting regressions are passed as
    ``X_val`` (the split the regression draws itself, so the same model)
    rather than copied a second time. The rest is inside the classifier's
    and the regressions' fits.

    References
    ----------
    .. [1] Cai, T. T., Namkoong, H. and Yadlowsky, S. (2023). "Diagnosing
       model performance under distribution shift." Operations Research;
       arXiv:2303.02011.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.shift import decompose_performance_shift
    >>> rng = np.random.default_rng(0)
    >>> X_s = rng.normal(size=(2000, 1))
    >>> X_t = rng.normal(loc=1.0, size=(2000, 1))  # covariate shift only
    >>> f = lambda X: X[:, 0] ** 2
    >>> y_s = f(X_s) + rng.normal(size=2000)
    >>> y_t = f(X_t) + rng.normal(size=2000)
    >>> model = LinearRegression().fit(X_s, y_s)
    >>> result = decompose_performance_shift(
    ...     model, X_s, y_s, X_t, y_t, loss="squared_error", random_state=0)
    >>> bool(np.isclose(result.total, result.x_shift_shared
    ...      + result.y_given_x_shift + result.x_shift_unseen))
    True
    >>> lo, hi = result.intervals["y_given_x_shift"]
    >>> bool(lo < 0 < hi)
    True
    """
    check_is_fitted(estimator)
    n_source = _num_samples(X_source)
    n_target = _num_samples(X_target)
    if _num_samples(y_source) != n_source:
        raise ValueError(
            f"y_source has {_num_samples(y_source)} samples but X_source has "
            f"{n_source}."
        )
    if _num_samples(y_target) != n_target:
        raise ValueError(
            f"y_target has {_num_samples(y_target)} samples but X_target has "
            f"{n_target}."
        )
    if min(n_source, n_target) < cv:
        raise ValueError(
            f"each domain needs at least cv={cv} samples; got {n_source} source "
            f"and {n_target} target samples."
        )
    # both domains' losses in one vector; each domain's is a view of it
    losses = np.concatenate(
        [
            model_losses(estimator, X_source, y_source, loss),
            model_losses(estimator, X_target, y_target, loss),
        ]
    )
    source_losses = losses[:n_source]
    target_losses = losses[n_source:]
    X_source, X_target = _pair(X_source, X_target)
    domain = np.r_[np.zeros(n_source, dtype=np.int8), np.ones(n_target, dtype=np.int8)]
    classifier = (
        LogisticRegression() if domain_classifier is None else domain_classifier
    )
    rng = check_random_state(random_state)
    splitter = StratifiedKFold(
        cv, shuffle=True, random_state=int(rng.randint(np.iinfo(np.int32).max))
    )
    one_step = method == "one_step"
    if one_step:
        regressor = default_regressor() if regressor is None else regressor
    else:
        regressor = None
    # the stratified folds as one label vector (the splitter's temporaries
    # are freed before any fit); each fit builds its own index arrays
    folds = np.empty(domain.shape[0], dtype=np.int8)
    for k, (_, test) in enumerate(
        splitter.split(np.zeros((domain.shape[0], 1)), domain)
    ):
        folds[test] = k
    del _, test  # the splitter's last index arrays
    index = np.int32 if domain.shape[0] < np.iinfo(np.int32).max else np.int64
    # results are consumed as they come: never all held at once
    results = map_folds(
        _fold_fit,
        (
            (
                classifier,
                regressor,
                X_source,
                X_target,
                losses,
                np.flatnonzero(folds != k).astype(index),
                np.flatnonzero(folds == k).astype(index),
            )
            for k in range(cv)
        ),
        n_jobs=n_jobs,
        verbose=verbose,
    )
    pi = np.empty(domain.shape[0])
    mu = np.empty((2, domain.shape[0])) if one_step else np.empty((2, 0))
    for test, values, risks in results:
        pi[test] = values
        for d, risk in enumerate(risks):
            mu[d, test] = risk
    del folds, test, values, risks
    w_source = pi[:n_source]
    w_target = 1.0 - pi[n_source:]

    source_risk = float(source_losses.mean())
    target_risk = float(target_losses.mean())
    infl_source = source_losses - source_risk
    infl_target = target_losses - target_risk
    if one_step:
        shared_source, sp_source, sp_target = _one_step_shared(
            pi, mu[0], losses, n_source, own=0
        )
        shared_target, sq_source, sq_target = _one_step_shared(
            pi, mu[1], losses, n_source, own=1
        )
    else:
        shared_source, sp_source = _ratio_mean(w_source, source_losses)
        shared_target, sq_target = _ratio_mean(w_target, target_losses)
        sp_target = np.zeros(n_target)
        sq_source = np.zeros(n_source)

    def variance(on_source, on_target):
        return float(
            np.var(on_source, ddof=1) / n_source + np.var(on_target, ddof=1) / n_target
        )

    var = {
        "total": variance(-infl_source, infl_target),
        "x_shift_shared": variance(sp_source - infl_source, sp_target),
        "y_given_x_shift": variance(sq_source - sp_source, sq_target - sp_target),
        "x_shift_unseen": variance(-sq_source, infl_target - sq_target),
    }
    estimates = {
        "total": target_risk - source_risk,
        "x_shift_shared": shared_source - source_risk,
        "y_given_x_shift": shared_target - shared_source,
        "x_shift_unseen": target_risk - shared_target,
    }
    confidence = _confidence_level(
        "decompose_performance_shift", confidence_level, confidence
    )
    std_errors = {key: float(np.sqrt(v)) for key, v in var.items()}
    intervals = {
        key: normal_interval(estimates[key], std_errors[key], confidence)
        for key in estimates
    }
    return ShiftDecomposition(
        source_risk=source_risk,
        target_risk=target_risk,
        shared_risk_source=shared_source,
        shared_risk_target=shared_target,
        total=float(estimates["total"]),
        x_shift_shared=float(estimates["x_shift_shared"]),
        y_given_x_shift=float(estimates["y_given_x_shift"]),
        x_shift_unseen=float(estimates["x_shift_unseen"]),
        std_errors=std_errors,
        intervals=intervals,
        confidence_level=float(confidence),
        source_shared_weights=w_source,
        target_shared_weights=w_target,
    )
