"""Worst-case risk over subpopulations defined by core variables.

Li, Mittal, Namkoong and Xia, "Evaluating model performance under worst-case
subpopulations" (arXiv:2407.01316; NeurIPS 2021).
"""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.stats import norm
from scipy.stats import t as t_dist
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from skrobust.ambiguity import CVaR
from skrobust.metrics._crossfit import (
    crossfit_subsets,
    default_regressor,
    first_stage_r2,
    fit_size,
    fold_labels,
    index_dtype,
)
from skrobust.metrics._losses import LOSSES, model_losses, per_sample_loss

_COMMON_CONSTRAINTS = {
    "loss": [StrOptions(set(LOSSES)), callable],
    "regressor": [HasMethods(["fit", "predict"]), None],
    "cv": [Interval(Integral, 2, None, closed="left")],
    "n_repeats": [Interval(Integral, 1, None, closed="left")],
    "bias_correction": ["boolean"],
    "variance": [StrOptions({"influence", "jackknife"})],
    "jackknife_groups": [Interval(Integral, 2, None, closed="left")],
    "confidence": [Interval(Real, 0, 1, closed="neither")],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}


@dataclass(frozen=True)
class WorstSubpopulationResult:
    """Estimate of the worst-case subpopulation risk and its interval.

    Returned by :func:`worst_subpopulation_risk`; the arrays of
    :meth:`WorstSubpopulationEvaluator.risk_curve` have the same fields.

    Attributes
    ----------
    risk : float or ndarray
        Debiased estimate of the worst-case risk :math:`W_\\alpha`.
    lower, upper : float or ndarray
        Two-sided confidence interval at level ``confidence``.
    std_error : float or ndarray
        Standard error from the influence function.
    plug_in_risk : float or ndarray
        CVaR of the fitted conditional risks without the correction (biased).
    threshold : float or ndarray
        Value at risk :math:`\\eta` of the fitted conditional risk: the worst
        subpopulation is where the conditional risk exceeds it.
    alpha : float or ndarray
        Smallest subpopulation mass.
    confidence : float
        Confidence level of the interval.
    """

    risk: object
    lower: object
    upper: object
    std_error: object
    plug_in_risk: object
    threshold: object
    alpha: object
    confidence: float

    @property
    def confidence_interval(self):
        """``(lower, upper)``."""
        return self.lower, self.upper


def _level_sums(rank_by, p, columns, alphas):
    """Sums over the worst subpopulation of ``rank_by`` at every level.

    The samples are sorted once by decreasing ``rank_by`` and grouped into
    its unique values; the worst subpopulation at level :math:`\alpha` holds
    the groups above the value at risk and a share ``frac`` of its group
    (ties share it). Each column is multiplied by the nominal masses ``p``,
    summed per group and accumulated in place, so the memory is a few
    vectors of the sample size whatever the number of levels.

    Parameters
    ----------
    rank_by : ndarray of shape (n_samples,)
    p : ndarray of shape (n_samples,)
        Nominal masses, summing to one.
    columns : list of (ndarray of shape (n_samples,), int)
        Arrays and the power they enter with (``(losses, 2)`` sums the
        squared losses).
    alphas : ndarray of shape (n_levels,)

    Returns
    -------
    eta : ndarray of shape (n_levels,)
        Value at risk of ``rank_by``.
    frac : ndarray of shape (n_levels,)
        Share of the value at risk's group inside the subpopulation.
    above_mass, group_mass : ndarray of shape (n_levels,)
        Mass of the groups above the value at risk, and of its group.
    sums : list of (ndarray, ndarray)
        For each column, its ``p``-weighted sum over the groups above and
        over the value at risk's group.
    """
    order = np.argsort(rank_by)[::-1]
    ranked = rank_by[order]
    new_group = np.empty(ranked.shape[0], dtype=bool)
    new_group[0] = True
    np.not_equal(ranked[1:], ranked[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    del new_group
    values = ranked[starts]
    del ranked
    n_groups = starts.shape[0]
    p_sorted = p[order]
    mass = np.add.reduceat(p_sorted, starts)
    cum_mass = np.cumsum(mass)
    cum_mass[-1] = 1.0
    j = np.minimum(np.searchsorted(cum_mass, alphas * (1.0 - 1e-12)), n_groups - 1)
    inside = j > 0
    above_mass = np.where(inside, cum_mass[j - 1], 0.0)
    group_mass = mass[j]
    del cum_mass, mass
    sums = []
    for column, power in columns:
        sorted_column = column[order]
        if power == 2:
            np.multiply(sorted_column, sorted_column, out=sorted_column)
        sorted_column *= p_sorted
        group_sum = np.add.reduceat(sorted_column, starts)
        del sorted_column
        in_group = group_sum[j]
        np.cumsum(group_sum, out=group_sum)
        sums.append((np.where(inside, group_sum[j - 1], 0.0), in_group))
    frac = np.clip((alphas - above_mass) / group_mass, 0.0, 1.0)
    return values[j], frac, above_mass, group_mass, sums


def _debiased_cvar_curve(conditional_risk, losses, alphas, confidence, weights=None):
    """Debiased CVaR of the conditional risk for every level in ``alphas``.

    The fitted conditional risks are grouped into their unique values and
    sorted once (:func:`_level_sums`, which gives the plug-in curve of
    :meth:`~skrobust.ambiguity.CVaR.risk_curve` the same way); cumulative
    sums over the groups of the nominal mass, of the losses and of their
    squares then give, for all levels at once, the worst-case weights, the
    value at risk, the one-step estimate and the variance of its influence
    values. ``weights`` are frequency weights (``None`` means ones): an
    integer weight counts as that many copies of the sample.

    Returns an array of shape (n_levels, 5): estimate, standard error,
    plug-in value, value at risk and half-width of the interval.
    """
    if weights is None:
        total = float(losses.shape[0])
        p = np.full(losses.shape[0], 1.0 / total)
    else:
        keep = weights > 0
        if not keep.all():
            conditional_risk, losses, weights = (
                conditional_risk[keep],
                losses[keep],
                weights[keep],
            )
        del keep
        total = float(weights.sum())
        p = weights / total
    eta, frac, m0, mass_j, sums = _level_sums(
        conditional_risk, p, [(losses, 1), (losses, 2), (conditional_risk, 1)], alphas
    )
    del p
    (l0, loss_j), (s0, sq_j), (mu0, _) = sums
    plug_in = (mu0 + (alphas - m0) * eta) / alphas
    estimate = (l0 + frac * loss_j) / alphas
    # psi_i = eta + s_i (loss_i - eta), s_i = q_i / p_i: 1 / alpha above the
    # value at risk, frac / alpha in its group, 0 below
    first = (l0 - eta * m0 + frac * (loss_j - eta * mass_j)) / alphas
    centered_sq = s0 - 2 * eta * l0 + eta**2 * m0
    centered_sq_j = sq_j - 2 * eta * loss_j + eta**2 * mass_j
    second = (centered_sq + frac**2 * centered_sq_j) / alphas**2
    mean_sq = eta**2 + 2 * eta * first + second
    if total > 1:
        variance = np.maximum(mean_sq - estimate**2, 0.0) * total / (total - 1)
    else:
        variance = np.zeros_like(estimate)
    std_error = np.sqrt(variance / total)
    z = norm.ppf(0.5 + confidence / 2)
    return np.column_stack([estimate, std_error, plug_in, eta, z * std_error])


def _ranked_sum(rank_by, values, weights, alphas):
    """``sum_i q_i values_i`` with ``q`` the CVaR weights of ``rank_by``.

    ``q`` puts mass ``p_i / alpha`` on the largest ``rank_by`` until it sums
    to one (ties share the last group's remaining mass), for every level.
    """
    p = weights / weights.sum()
    _, frac, _, _, [(above, in_group)] = _level_sums(rank_by, p, [(values, 1)], alphas)
    return (above + frac * in_group) / alphas


def _misranking_correction(first, second, weights, alphas):
    """Second-order bias of the one-step estimate with the averaged first stage.

    ``first`` and ``second`` are conditional risks fitted on disjoint halves;
    with :math:`q^{(1)}, q^{(2)}` their CVaR weights the correction is
    :math:`\\langle q^{(1)} - q^{(2)}, \\hat\\mu^{(1)} - \\hat\\mu^{(2)}
    \\rangle / 8` (see the Notes of :func:`worst_subpopulation_risk`).
    """
    gap = first - second
    return (
        _ranked_sum(first, gap, weights, alphas)
        - _ranked_sum(second, gap, weights, alphas)
    ) / 8.0


def _as_core(Z, n_samples):
    if not hasattr(Z, "iloc") and np.ndim(Z) == 1:
        Z = np.asarray(Z).reshape(-1, 1)
    if np.ndim(Z) != 2:
        raise ValueError(f"Z must be 2-dimensional; got {np.ndim(Z)} dimensions.")
    if _num_samples(Z) != n_samples:
        raise ValueError(
            f"Z has {_num_samples(Z)} rows but y_true has {n_samples} samples."
        )
    return Z


def _loss_scale(losses):
    """Largest absolute loss (1 for all-zero losses).

    The first and second stages run on ``losses / scale``, in [-1, 1], and
    every output is multiplied back: the worst-case risk is positively
    homogeneous, and a first stage that works in float32 (histogram boosting)
    or has absolute tolerances then behaves the same at any scale of the
    losses (1e-150 or 1e150 included).
    """
    scale = float(np.max(np.abs(losses)))
    return scale if scale > 0 else 1.0


def _scaled(losses, scale):
    """``losses / scale``; the losses themselves (no copy) when the scale is
    1, e.g. zero-one losses (they are only read)."""
    return losses if scale == 1.0 else losses / scale


@dataclass
class _Fit:
    """What :func:`_evaluate` computes: everything in units of ``scale``."""

    scaled_losses: np.ndarray
    scale: float
    predictions: np.ndarray
    jackknife: list
    table: np.ndarray
    r2: float

    @property
    def conditional_risk(self):
        return self.predictions.mean(axis=(0, 1)) * self.scale


def _evaluate(
    losses,
    Z,
    alphas,
    regressor,
    cv,
    n_repeats,
    confidence,
    n_jobs,
    random_state,
    variance="influence",
    jackknife_groups=10,
    verbose=0,
    sample_weight=None,
    bias_correction=True,
    keep_jackknife=False,
):
    """Cross-fit the conditional risk and tabulate the debiased CVaR.

    With ``bias_correction`` each training fold is split into two random
    halves and one first stage is fitted on each. With
    ``variance="jackknife"`` the samples are also split into
    ``jackknife_groups`` random groups and the whole procedure (first stage
    included, with the same fold and half labels) is rerun without each group,
    one group at a time: each group's predictions are dropped once its
    leave-out estimate is computed, unless ``keep_jackknife`` (the evaluator,
    whose :meth:`risk_curve` reuses them).
    The default first stage is sized to the samples of one fit
    (:func:`~skrobust.metrics._crossfit.default_regressor`); a warning says
    when the cross-fitted first stage predicts the losses no better than the
    training folds' means.

    Returns a :class:`_Fit` (the table in the losses' units).
    """
    n = losses.shape[0]
    if regressor is None:
        regressor = default_regressor(fit_size(n, cv, bias_correction))
    scale = _loss_scale(losses)
    scaled = _scaled(losses, scale)
    rng = check_random_state(random_state)
    folds = fold_labels(n, cv, n_repeats, rng)
    halves = None
    if bias_correction:
        halves = np.array(
            [rng.permutation(n) % 2 for _ in range(n_repeats)], dtype=np.int8
        )
        for labels, half in zip(folds, halves, strict=True):
            # samples of each (fold, half); a training half is the other folds'
            counts = np.bincount(labels * 2 + half, minlength=2 * cv).reshape(cv, 2)
            if np.any(counts.sum(axis=0) - counts == 0):
                raise ValueError(
                    f"cv={cv} cross-fitting of n_samples={n} with "
                    "bias_correction=True leaves a training half without "
                    "samples; use more samples, a smaller cv or "
                    "bias_correction=False."
                )
    group = None
    if variance == "jackknife":
        if jackknife_groups > n:
            raise ValueError(
                f"jackknife_groups={jackknife_groups} exceeds n_samples={n}."
            )
        group = rng.permutation(n) % jackknife_groups

    def crossfit(subset):
        return crossfit_subsets(
            regressor,
            Z,
            scaled,
            folds,
            [subset],
            halves=halves,
            sample_weight=sample_weight,
            n_jobs=n_jobs,
            verbose=verbose,
        )[0]

    def leave_one_group_out():
        # one subset at a time: its predictions are dropped once its
        # leave-out estimate is computed, unless they are kept
        for g in range(jackknife_groups):
            subset = np.flatnonzero(group != g).astype(index_dtype(n))
            yield subset, crossfit(subset)

    predictions = crossfit(None)
    r2 = first_stage_r2(scaled, predictions.mean(axis=(0, 1)), folds, sample_weight)
    if r2 <= 0:
        warnings.warn(
            "the first stage explains none of the variation of the losses "
            f"given Z: its cross-fitted R^2 is {r2:.3g} (held-out squared error "
            "against that of the training folds' mean loss) at "
            f"n_samples={n}. The fitted conditional risks are then noise, the "
            "estimate is at most the mean loss plus noise (it is clipped at the "
            "mean) and its interval can miss the worst case. Use more samples, "
            "fewer core variables or a simpler regressor.",
            UserWarning,
            stacklevel=3,
        )
    jackknife = []
    if group is not None:
        jackknife = leave_one_group_out()
        if keep_jackknife:
            jackknife = list(jackknife)
    table = _curve_table(
        predictions, scaled, sample_weight, alphas, confidence, jackknife
    )
    if not keep_jackknife:
        jackknife = []
    return _Fit(scaled, scale, predictions, jackknife, table * scale, r2)


def _corrected_curve(predictions, losses, weights, alphas, confidence):
    """Estimates over ``alphas`` from the cross-fitted predictions.

    One first stage per fold (``predictions`` of shape (n_repeats, 1, n)):
    the one-step estimate on the predictions averaged over repeats. Two halves
    per fold: in each repeat, the one-step estimate on the average of the two
    halves plus the misranking correction; the repeats' estimates are averaged
    and their spread is added to the variance (Chernozhukov et al., 2018).
    """
    if predictions.shape[1] == 1:
        mu = predictions.mean(axis=(0, 1))
        return _debiased_cvar_curve(mu, losses, alphas, confidence, weights)
    tables = []
    w = np.ones_like(losses) if weights is None else weights
    for first, second in predictions:
        mu = first + second
        mu *= 0.5
        table = _debiased_cvar_curve(mu, losses, alphas, confidence, weights)
        del mu
        table[:, 0] += _misranking_correction(first, second, w, alphas)
        tables.append(table)
    tables = np.array(tables)
    table = tables.mean(axis=0)
    spread = np.mean((tables[:, :, 0] - table[:, 0]) ** 2, axis=0)
    table[:, 1] = np.sqrt(np.mean(tables[:, :, 1] ** 2, axis=0) + spread)
    table[:, 4] = norm.ppf(0.5 + confidence / 2) * table[:, 1]
    return table


def _curve_table(predictions, losses, weights, alphas, confidence, jackknife):
    """Estimates over ``alphas``, with jackknife standard errors if given.

    Returns an array of shape (n_levels, 6): estimate, standard error,
    plug-in value, value at risk, lower and upper end of the interval. The
    estimate is clipped below at the mean loss, which the worst case over
    subpopulations of any mass can never fall under, and the upper end is
    raised to at least the mean's upper end; the lower end is that of the
    one-step estimate (see the Notes of :func:`worst_subpopulation_risk`).
    """
    table = _corrected_curve(predictions, losses, weights, alphas, confidence)
    mean, mean_std_error = _mean_and_std_error(losses, weights)
    quantile = norm.ppf(0.5 + confidence / 2)
    if not isinstance(jackknife, list) or jackknife:
        # a list of (subset, predictions), or a generator of them consumed
        # one group at a time
        leave_out = []
        for subset, mu in jackknife:
            kept = losses[subset]
            kept_weights = None if weights is None else weights[subset]
            del subset
            leave_out.append(
                np.r_[
                    _corrected_curve(mu, kept, kept_weights, alphas, confidence)[:, 0],
                    _mean_and_std_error(kept, kept_weights)[0],
                ]
            )
            del mu, kept, kept_weights
        leave_out = np.array(leave_out)
        groups = leave_out.shape[0]
        spread = np.sum((leave_out - leave_out.mean(axis=0)) ** 2, axis=0)
        std_error = np.sqrt((groups - 1) / groups * spread)
        quantile = t_dist.ppf(0.5 + confidence / 2, groups - 1)
        table[:, 1] = std_error[:-1]
        table[:, 4] = quantile * std_error[:-1]
        mean_std_error = std_error[-1]
    # the mean's interval by the same method (at alpha = 1 they coincide)
    estimate = table[:, 0]
    lower = estimate - table[:, 4]
    upper = np.maximum(estimate + table[:, 4], mean + quantile * mean_std_error)
    table[:, 0] = np.maximum(estimate, mean)
    table[:, 4] = lower
    return np.column_stack([table, upper])


def _mean_and_std_error(losses, weights):
    """Weighted mean loss and its standard error (frequency weights)."""
    if weights is None:
        total = float(losses.shape[0])
        mean = float(losses.mean())
        sq = float(np.mean((losses - mean) ** 2))
    else:
        total = float(weights.sum())
        mean = float(np.dot(weights, losses) / total)
        sq = float(np.dot(weights, (losses - mean) ** 2) / total)
    if total <= 1:
        return mean, 0.0
    return mean, float(np.sqrt(sq / (total - 1)))


def _result(table, alphas, confidence, scalar):
    risk, std_error, plug_in, eta, lower, upper = table.T
    pick = (lambda a: float(a[0])) if scalar else (lambda a: a)
    return WorstSubpopulationResult(
        risk=pick(risk),
        lower=pick(np.minimum(lower, risk)),
        upper=pick(upper),
        std_error=pick(std_error),
        plug_in_risk=pick(plug_in),
        threshold=pick(eta),
        alpha=pick(alphas),
        confidence=float(confidence),
    )


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "Z": ["array-like"],
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "sample_weight": ["array-like", None],
        **_COMMON_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def worst_subpopulation_risk(
    y_true,
    y_pred,
    Z,
    alpha,
    *,
    loss="zero_one",
    regressor=None,
    sample_weight=None,
    cv=5,
    n_repeats=1,
    bias_correction=True,
    variance="influence",
    jackknife_groups=10,
    confidence=0.95,
    n_jobs=None,
    verbose=0,
    random_state=None,
):
    """Worst-case risk of a model over all subpopulations of mass >= alpha.

    The subpopulations are defined by the core variables ``Z`` (any columns,
    continuous or discrete, and every intersection of them): the value is
    :math:`W_\\alpha = \\sup` of :math:`E[\\ell \\mid A]` over events
    :math:`A` of :math:`Z` with :math:`P(A) \\ge \\alpha`, the CVaR at level
    :math:`\\alpha` of the conditional risk :math:`\\mu(Z) = E[\\ell \\mid Z]`.
    It is estimated in two stages: a cross-fitted regression of the per-sample
    losses on ``Z``, then the CVaR of the fitted conditional risks with a
    one-step correction that removes the first-order effect of the regression
    error, a correction of the second-order bias from misranking near the
    threshold, and a normal confidence interval from the influence function.

    Read more in the :ref:`User Guide <worst_subpopulation>`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True targets.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predictions of the model (probabilities for ``loss="log_loss"``, with
        columns in the order of the sorted labels of ``y_true``).
    Z : array-like of shape (n_samples, n_core)
        Core variables that define the subpopulations. A 1-d array is one
        column. A DataFrame is passed to ``regressor`` as is, so a pipeline
        can encode categorical columns.
    alpha : float
        Smallest subpopulation mass, in (0, 1]. ``alpha=1`` gives the average
        loss.
    loss : {"zero_one", "squared_error", "absolute_error", "log_loss"} or \
callable, default="zero_one"
        Per-sample loss; a callable gets ``(y_true, y_pred)`` and returns one
        loss per sample.
    regressor : regressor, default=None
        First stage: regresses the per-sample loss on ``Z``; cloned for each
        fold (and each half of it, see ``bias_correction``). ``None`` uses a
        regularized :class:`~sklearn.ensemble.HistGradientBoostingRegressor`
        (learning rate 0.05, 8 leaves, 100 rounds) sized to the samples of
        one fit, :math:`m`: at least :math:`m / 20` samples a leaf, clipped to
        [5, 100], and early stopping from :math:`m = 20` on (see Notes).
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights (an integer weight counts as that many copies of
        the sample): they define the nominal distribution of the second stage
        and are passed to the first stage's ``fit``, which must accept them.
    cv : int, default=5
        Number of cross-fitting folds.
    n_repeats : int, default=1
        Number of independent cross-fitting splits. With ``bias_correction``
        the estimate is the mean of the repeats' corrected estimates and their
        spread is added to the variance; without it, the out-of-fold
        conditional risks of the repeats are averaged.
    bias_correction : bool, default=True
        Fit two first stages per fold, on two random halves of the training
        folds, use their average as the conditional risk and add the
        misranking correction estimated from their disagreement (see Notes).
        It costs two fits on half the data instead of one fit per fold.
        ``False`` fits one first stage per fold and adds no correction: the
        estimate is then biased downwards by a flexible first stage and its
        interval under-covers.
    variance : {"influence", "jackknife"}, default="influence"
        Standard error of the interval. ``"influence"``: the sample standard
        deviation of the influence values. ``"jackknife"``: a delete-a-group
        jackknife of the whole procedure, first stage included, with a
        Student-t quantile; it costs ``jackknife_groups`` more cross-fits and
        gives wider, conservative intervals.
    jackknife_groups : int, default=10
        Number of random groups left out in turn by the jackknife.
    confidence : float, default=0.95
        Level of the two-sided interval.
    n_jobs : int, default=None
        Number of jobs fitting the first stage in parallel (joblib).
    verbose : int, default=0
        Verbosity of the parallel fits (joblib): progress of the cross-fitting.
    random_state : int, RandomState instance or None, default=None
        Seeds the cross-fitting splits.

    Returns
    -------
    result : WorstSubpopulationResult
        ``risk``, ``lower``, ``upper``, ``std_error``, ``plug_in_risk``,
        ``threshold``, ``alpha`` and ``confidence``.

    Warns
    -----
    UserWarning
        When the cross-fitted first stage explains none of the variation of
        the losses given ``Z`` (its :math:`R^2` against the training folds'
        mean loss is at most 0).

    See Also
    --------
    WorstSubpopulationEvaluator : The same for a fitted model, with the curve
        over alpha and the members of the worst subpopulation.
    make_worst_subpopulation_scorer : A scorer for model selection.
    skrobust.ambiguity.CVaR : The CVaR of a loss vector.

    Notes
    -----
    With :math:`\\hat\\mu` the out-of-fold conditional risks and :math:`q` the
    worst-case weights of :math:`\\mathrm{CVaR}_\\alpha(\\hat\\mu)` (its
    gradient with respect to :math:`\\hat\\mu`), the estimate is

    .. math::

        \\hat W_\\alpha = \\mathrm{CVaR}_\\alpha(\\hat\\mu) + \\sum_i q_i
        (\\ell_i - \\hat\\mu_i) = \\sum_i q_i \\ell_i ,

    the average observed loss in the fitted worst subpopulation
    :math:`\\{\\hat\\mu > \\hat\\eta\\}`, :math:`\\hat\\eta` the
    :math:`(1-\\alpha)`-quantile of :math:`\\hat\\mu`. Its influence values
    are :math:`\\psi_i = \\hat\\eta + n q_i (\\ell_i - \\hat\\eta)`, and the
    interval is :math:`\\hat W_\\alpha \\pm z\\, \\mathrm{sd}(\\psi)/\\sqrt n`.

    The one-step estimate is the risk of an actual subpopulation, so a first
    stage that misranks samples near the threshold biases it downwards. With
    :math:`\\hat\\mu = \\mu + \\delta` and :math:`f` the density of
    :math:`\\mu(Z)`, the bias is :math:`E[(1\\{\\hat\\mu > \\eta\\} -
    1\\{\\mu > \\eta\\})(\\mu - \\eta)] / \\alpha \\approx -f(\\eta)\\,
    E[\\delta^2 \\mid \\mu = \\eta] / (2\\alpha)`, of second order but, for a
    flexible first stage at a few thousand samples, comparable to the
    standard error (coverage 0.86 at n = 2000 with boosting). With
    ``bias_correction=True`` two first stages :math:`\\hat\\mu^{(1)},
    \\hat\\mu^{(2)}` are fitted on disjoint halves of each training fold, so
    their errors are independent given :math:`Z`; the conditional risk is
    their average, whose error variance is half that of one of them, and

    .. math::

        \\widehat{f\\sigma^2} = \\tfrac{1}{2} \\alpha\\, \\langle q^{(1)} -
        q^{(2)}, \\hat\\mu^{(1)} - \\hat\\mu^{(2)} \\rangle

    estimates :math:`f(\\eta) E[\\delta^2 \\mid \\mu = \\eta]` for one half
    (:math:`q^{(k)}` the CVaR weights of :math:`\\hat\\mu^{(k)}`; two fits
    disagree about membership in proportion to their error variance), so
    :math:`\\langle q^{(1)} - q^{(2)}, \\hat\\mu^{(1)} - \\hat\\mu^{(2)}
    \\rangle / 8 \\ge 0` is added to the estimate. On the simulation of the
    user guide (Z uniform on the unit 5-cube, error probability
    :math:`Z_1`, alpha = 0.2; 200 draws), coverage of the 95% interval
    with the default boosting first stage goes from 0.86 / 0.89 (n = 2000 /
    8000) without the correction to 0.945 / 0.925 with it, for intervals of
    the same width; with a linear first stage it is 0.96 / 0.925 (table in
    the user guide). The
    correction needs the error of the first stage to be smooth enough that
    its variance dominates near the threshold; a first stage with a large
    non-monotone bias (say, spurious splits on noise columns) still biases
    the estimate.

    The worst case over subpopulations of mass at least :math:`\\alpha` is
    never below the mean risk (:math:`A` = everything is one of them), but
    the one-step estimate can be, when the first stage ranks the samples by
    noise. The estimate is therefore :math:`\\max(\\hat W_\\alpha, \\bar\\ell)`,
    :math:`\\bar\\ell` the (weighted) mean loss, and the upper end of the
    interval is at least the upper end :math:`\\bar\\ell + z\\,
    \\mathrm{sd}(\\ell)/\\sqrt n` of the mean's interval; the lower end is
    the one-step estimate's. The interval only grows, so its coverage
    cannot drop; ``threshold`` and ``plug_in_risk`` are not clipped.

    The default first stage adapts to the :math:`m` samples of one fit (a
    training fold, halved with ``bias_correction``). A fixed leaf size of 100
    allows no split below 200 samples a fit: the conditional risks are then
    the training folds' means, which rank the folds by the noise of their
    complements, and the estimate fell below the mean loss at n < 500. A
    leaf of :math:`m / 20` samples (clipped to [5, 100]) lets a tail of 5%
    of the samples be isolated. Measured on Z uniform on the unit square,
    error probability :math:`Z_1`, alpha = 0.2 (truth 0.9; 100 draws),
    coverage of the 95% interval is 0.92, 0.94 and 0.92 at n = 100, 200 and
    500 (0.00 before). When the cross-fitted first stage predicts the losses
    no better than the training folds' means (:math:`R^2 \\le 0`), a
    ``UserWarning`` says so.

    Losses are divided by their largest absolute value before both stages
    and the results multiplied back, so the estimate is exactly positively
    homogeneous in the losses, at any scale a float holds.

    The jackknife leaves out each of :math:`G` random groups in turn, reruns
    the cross-fitting (same fold labels) and the second stage on the rest,
    and uses :math:`\\hat\\sigma^2_J = \\frac{G-1}{G} \\sum_g (\\hat W_{(-g)} -
    \\bar W)^2` with a :math:`t_{G-1}` quantile.

    Peak memory (tracemalloc) is at most about 3 times the input (``Z`` and
    the two label vectors) from n = 10000 on: for Z of 5 columns and
    zero-one losses, 2.1x at n = 10000 and 1.8x at n = 100000 with the
    default first stage (2.7x and 2.1x before), 2.0x and 1.9x with a linear
    one, 2.5x / 2.4x with the jackknife (whose left-out groups are
    cross-fitted one at a time; 5.6x / 5.5x before). The largest part is
    the first stage's own fit on one training fold: a copy of its rows and
    the regressor's buffers. A histogram boosting first stage with early
    stopping gets its validation rows as ``X_val`` (the same split it would
    draw, so the same model) instead of copying the fold's rows a second
    time. Below about 10000 samples the boosting's buffers of fixed size
    (histograms of 256 bins per feature and node) dominate, and the ratio
    rises (3.9x at n = 5000 for :func:`~skrobust.shift.kl_stability`).

    References
    ----------
    .. [1] Li, M., Mittal, D., Namkoong, H. and Xia, S. "Evaluating model
       performance under worst-case subpopulations." arXiv:2407.01316; first
       version by Li, Namkoong and Xia in Advances in Neural Information
       Processing Systems 34 (2021).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.metrics import worst_subpopulation_risk
    >>> rng = np.random.default_rng(1)
    >>> Z = rng.uniform(size=(4000, 2))
    >>> y_true = np.zeros(4000)
    >>> y_pred = (rng.uniform(size=4000) < Z[:, 0]).astype(float)  # errs w.p. Z_1
    >>> result = worst_subpopulation_risk(
    ...     y_true, y_pred, Z, alpha=0.2, regressor=LinearRegression(),
    ...     random_state=0)
    >>> round(result.risk, 1)  # closed form: 1 - alpha / 2 = 0.9
    0.9
    >>> bool(result.lower < 0.9 < result.upper)
    True
    """
    losses = per_sample_loss(y_true, y_pred, loss)
    Z = _as_core(Z, losses.shape[0])
    sample_weight = _weights(sample_weight, losses, regressor)
    alphas = np.array([float(alpha)])
    fit = _evaluate(
        losses,
        Z,
        alphas,
        regressor,
        cv,
        n_repeats,
        confidence,
        n_jobs,
        random_state,
        variance,
        jackknife_groups,
        verbose,
        sample_weight,
        bias_correction,
    )
    return _result(fit.table, alphas, confidence, scalar=True)


def _weights(sample_weight, losses, regressor):
    """Validated frequency weights, or ``None`` for unit weights."""
    if sample_weight is None:
        return None
    try:
        sample_weight = _check_sample_weight(
            sample_weight, losses, ensure_non_negative=True
        )
    except ValueError as exc:
        raise ValueError(f"sample_weight is invalid: {exc}") from exc
    if not sample_weight.sum() > 0:
        raise ValueError("sample_weight must have a positive sum.")
    regressor = default_regressor() if regressor is None else regressor
    if not has_fit_parameter(regressor, "sample_weight"):
        raise ValueError(
            f"sample_weight needs a regressor whose fit accepts sample_weight; "
            f"{type(regressor).__name__}.fit does not."
        )
    return sample_weight


def _select_core(X, core_features):
    if core_features is None:
        return X
    return _safe_indexing(X, core_features, axis=1)


class WorstSubpopulationEvaluator(BaseEstimator):
    """Worst-subpopulation performance of a fitted model.

    Fitting on evaluation data ``(X, y)`` computes the per-sample losses of
    ``estimator``, the cross-fitted conditional risk given the core features,
    the debiased worst-case risk at level ``alpha`` with its interval, and who
    belongs to the worst subpopulation. :meth:`risk_curve` gives the whole
    curve over alpha from the same fit.

    Read more in the :ref:`User Guide <worst_subpopulation>`.

    Parameters
    ----------
    estimator : object
        A fitted model with ``predict`` (``predict_proba`` and ``classes_``
        for ``loss="log_loss"``). It is not refitted. ``clone`` (used by
        ``GridSearchCV`` and the like) unfits the models it copies; wrap the
        model in :class:`~sklearn.frozen.FrozenEstimator` to keep it fitted.
    alpha : float, default=0.1
        Smallest subpopulation mass, in (0, 1].
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
    confidence : float, default=0.95
        Level of the two-sided intervals.
    n_jobs : int, default=None
        Number of jobs fitting the first stage in parallel (joblib).
    verbose : int, default=0
        Verbosity of the parallel fits (joblib): progress of the cross-fitting.
    random_state : int, RandomState instance or None, default=None
        Seeds the cross-fitting splits.

    Attributes
    ----------
    losses_ : ndarray of shape (n_samples,)
        Per-sample losses of ``estimator`` on the evaluation data.
    conditional_risk_ : ndarray of shape (n_samples,)
        Cross-fitted conditional risk :math:`\\hat\\mu(Z_i)` (averaged over
        the halves and the repeats).
    risk_ : float
        Debiased worst-case risk at level ``alpha``.
    confidence_interval_ : tuple of float
        ``(lower, upper)`` interval for the worst-case risk.
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
    ...     model, alpha=0.2, regressor=LinearRegression(), random_state=0
    ... ).fit(X, y)
    >>> round(evaluator.risk_, 1)
    0.9
    >>> curve = evaluator.risk_curve([0.1, 0.5, 1.0])
    >>> np.round(curve.risk, 2)  # closed form 1 - alpha / 2: 0.95, 0.75, 0.5
    array([0.96, 0.75, 0.5 ])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["predict"])],
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "core_features": ["array-like", None],
        **_COMMON_CONSTRAINTS,
    }

    def __init__(
        self,
        estimator,
        *,
        alpha=0.1,
        loss="zero_one",
        core_features=None,
        regressor=None,
        cv=5,
        n_repeats=1,
        bias_correction=True,
        variance="influence",
        jackknife_groups=10,
        confidence=0.95,
        n_jobs=None,
        verbose=0,
        random_state=None,
    ):
        self.estimator = estimator
        self.alpha = alpha
        self.loss = loss
        self.core_features = core_features
        self.regressor = regressor
        self.cv = cv
        self.n_repeats = n_repeats
        self.bias_correction = bias_correction
        self.variance = variance
        self.jackknife_groups = jackknife_groups
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

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
            np.array([float(self.alpha)]),
            self.regressor,
            self.cv,
            self.n_repeats,
            self.confidence,
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
        result = _result(table, np.array([float(self.alpha)]), self.confidence, True)
        self.risk_ = result.risk
        self.confidence_interval_ = result.confidence_interval
        self.std_error_ = result.std_error
        self.plug_in_risk_ = result.plug_in_risk
        self.threshold_ = result.threshold
        q = CVaR(alpha=float(self.alpha)).worst_case_weights(
            self.conditional_risk_, sample_weight=sample_weight
        )
        self.worst_case_weights_ = q
        self.membership_ = q > 0
        return self

    def risk_curve(self, alphas=None):
        """Worst-case risk over a range of subpopulation masses.

        No refitting: the cross-fitted conditional risks are sorted once and
        cumulative sums give every level at once (the plug-in values through
        :meth:`skrobust.ambiguity.CVaR.risk_curve`); the same for the two
        halves of the correction and for the jackknife subsets with
        ``variance="jackknife"``.

        Parameters
        ----------
        alphas : array-like of shape (n_levels,), default=None
            Levels in (0, 1]; ``None`` means 50 levels from ``0.02`` to ``1``.

        Returns
        -------
        curve : WorstSubpopulationResult
            Its fields are arrays of shape (n_levels,).
        """
        check_is_fitted(self)
        if alphas is None:
            alphas = np.linspace(0.02, 1.0, 50)
        alphas = np.asarray(alphas, dtype=float).reshape(-1)
        if alphas.size == 0 or np.any(~np.isfinite(alphas)):
            raise ValueError("alphas must be a non-empty array of finite levels.")
        if np.any((alphas <= 0) | (alphas > 1)):
            raise ValueError("alphas must lie in (0, 1].")
        table = _curve_table(
            self._predictions,
            self.losses_ / self._loss_scale,
            self._sample_weight,
            alphas,
            self.confidence,
            self._jackknife,
        )
        return _result(table * self._loss_scale, alphas, self.confidence, False)

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


class _WorstSubpopulationScorer:
    """Callable ``scorer(estimator, X, y)``: minus the worst-case risk."""

    def __init__(
        self,
        alpha,
        loss,
        core_features,
        regressor,
        cv,
        n_repeats,
        bias_correction,
        seed,
    ):
        self.alpha = alpha
        self.loss = loss
        self.core_features = core_features
        self.regressor = regressor
        self.cv = cv
        self.n_repeats = n_repeats
        self.bias_correction = bias_correction
        self.random_state = seed

    def __call__(self, estimator, X, y, sample_weight=None):
        losses = model_losses(estimator, X, np.asarray(y), self.loss)
        Z = _as_core(_select_core(X, self.core_features), losses.shape[0])
        sample_weight = _weights(sample_weight, losses, self.regressor)
        alphas = np.array([float(self.alpha)])
        fit = _evaluate(
            losses,
            Z,
            alphas,
            self.regressor,
            self.cv,
            self.n_repeats,
            0.95,
            None,
            self.random_state,
            sample_weight=sample_weight,
            bias_correction=self.bias_correction,
        )
        return -float(fit.table[0, 0])

    def __repr__(self):
        return (
            f"make_worst_subpopulation_scorer(alpha={self.alpha!r}, loss={self.loss!r})"
        )


@validate_params(
    {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "core_features": ["array-like", None],
        "loss": _COMMON_CONSTRAINTS["loss"],
        "regressor": _COMMON_CONSTRAINTS["regressor"],
        "cv": _COMMON_CONSTRAINTS["cv"],
        "n_repeats": _COMMON_CONSTRAINTS["n_repeats"],
        "bias_correction": ["boolean"],
        "random_state": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def make_worst_subpopulation_scorer(
    alpha,
    *,
    loss="zero_one",
    core_features=None,
    regressor=None,
    cv=5,
    n_repeats=1,
    bias_correction=True,
    random_state=0,
):
    """Scorer that ranks models by their worst-subpopulation risk.

    The score of a model on held-out data is minus its debiased worst-case
    risk over subpopulations of mass >= ``alpha`` defined by
    ``core_features`` (greater is better), so ``GridSearchCV(...,
    scoring=scorer)`` selects the model whose worst subpopulation fares best.

    Read more in the :ref:`User Guide <worst_subpopulation>`.

    Parameters
    ----------
    alpha : float
        Smallest subpopulation mass, in (0, 1].
    loss : {"zero_one", "squared_error", "absolute_error", "log_loss"} or \
callable, default="zero_one"
        Per-sample loss.
    core_features : array-like of int, str or bool, default=None
        Columns of ``X`` defining subpopulations; ``None`` means all.
    regressor : regressor, default=None
        First stage; ``None`` uses regularized gradient boosting.
    cv : int, default=5
        Cross-fitting folds inside each scored split.
    n_repeats : int, default=1
        Cross-fitting splits.
    bias_correction : bool, default=True
        Correct the misranking bias with two first stages per fold (see
        :func:`worst_subpopulation_risk`).
    random_state : int or None, default=0
        Seeds the cross-fitting; an int keeps scores reproducible and equal
        across the models compared.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``; the weights
        are frequency weights (see :func:`worst_subpopulation_risk`).

    See Also
    --------
    worst_subpopulation_risk : The estimate the scorer computes.

    References
    ----------
    .. [1] Li, M., Mittal, D., Namkoong, H. and Xia, S. "Evaluating model
       performance under worst-case subpopulations." arXiv:2407.01316; first
       version by Li, Namkoong and Xia in Advances in Neural Information
       Processing Systems 34 (2021).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skrobust.metrics import make_worst_subpopulation_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 3))
    >>> y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    >>> scorer = make_worst_subpopulation_scorer(
    ...     0.2, core_features=[1, 2], regressor=LinearRegression())
    >>> search = GridSearchCV(LogisticRegression(), {"C": [1e-3, 1.0]},
    ...                       scoring=scorer, cv=3).fit(X, y)
    >>> search.best_params_
    {'C': 1.0}
    """
    return _WorstSubpopulationScorer(
        alpha,
        loss,
        core_features,
        regressor,
        cv,
        n_repeats,
        bias_correction,
        random_state,
    )
