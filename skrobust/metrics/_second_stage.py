"""Second stage of the worst-subpopulation risk: the debiased CVaR curve.

From cross-fitted conditional risks and the per-sample losses, the one-step
estimate of :math:`\\mathrm{CVaR}_\\alpha(\\mu(Z))`, its influence-function
standard error, the misranking correction and the clipped interval, at every
level at once. Every worst case is CVaR's, through
:func:`skrobust.ambiguity._curves.cvar_level_sums` (CVaR's worst-case weights
of the conditional risks at every level, applied to the losses, from one
sort); the cross-fitting engine's :func:`skrobust._crossfit.debiased_cvar`
is the same step at one level (with the influence vector).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import t as t_dist

from skrobust.ambiguity._base import _blocks
from skrobust.ambiguity._curves import cvar_level_sums, cvar_weighted_means
from skrobust.metrics._names import _deprecated_field
from skrobust.utils._conventions import ConfidenceInterval


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
        Two-sided confidence interval at level ``confidence_level``.
    std_error : float or ndarray
        Standard error from the influence function.
    plug_in_risk : float or ndarray
        CVaR of the fitted conditional risks without the correction (biased).
    threshold : float or ndarray
        Value at risk :math:`\\eta` of the fitted conditional risk: the worst
        subpopulation is where the conditional risk exceeds it.
    subpopulation_size : float or ndarray
        Smallest subpopulation mass :math:`\\alpha` (``alpha`` before; the old
        name is an alias for one release, with a ``FutureWarning``).
    confidence_level : float
        Confidence level of the interval (``confidence`` before; the old name
        is an alias for one release, with a ``FutureWarning``).
    """

    risk: object
    lower: object
    upper: object
    std_error: object
    plug_in_risk: object
    threshold: object
    subpopulation_size: object
    confidence_level: float

    @property
    def confidence_interval(self):
        """:class:`~skrobust.utils.ConfidenceInterval` ``(low, high)``."""
        return ConfidenceInterval(self.lower, self.upper)

    alpha = _deprecated_field("alpha", "subpopulation_size", "WorstSubpopulationResult")
    confidence = _deprecated_field(
        "confidence", "confidence_level", "WorstSubpopulationResult"
    )


def _normal_quantile(level):
    """``scipy.stats.norm.ppf(level)`` (the same numbers: SciPy's ``norm.ppf``
    is ``ndtri``), without its argument checks, which took a fifth of the
    time of a risk curve at n = 1e4."""
    return float(ndtri(level))


def _debiased_cvar_curve(
    conditional_risk, losses, alphas, confidence, weights=None, scale=1.0
):
    """Debiased CVaR of the conditional risk for every level in ``alphas``.

    The CVaR worst-case weights of the fitted conditional risks at every
    level (:func:`~skrobust.ambiguity._curves.cvar_level_sums`, one sort)
    applied to the losses and their squares give, for all levels at once, the
    plug-in CVaR, the value at risk, the one-step estimate and the variance
    of its influence values. ``losses`` enter as ``losses / scale``, read a
    block at a time. ``weights`` are frequency weights (``None`` means ones):
    an integer weight counts as that many copies of the sample; samples of
    zero weight get zero worst-case weight.

    Returns an array of shape (n_levels, 5): estimate, standard error,
    plug-in value, value at risk and half-width of the interval.
    """
    total = float(losses.shape[0]) if weights is None else float(weights.sum())
    sums = cvar_level_sums(
        conditional_risk,
        alphas,
        [losses],
        sample_weight=weights,
        scale=scale,
        powers=(1, 2),
    )
    eta, frac = sums.value_at_risk, sums.tie_share
    m0, mass_j = sums.mass_above, sums.mass_tie
    l0, s0 = sums.above[0]
    loss_j, sq_j = sums.tie[0]
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
    z = _normal_quantile(0.5 + confidence / 2)
    return np.column_stack([estimate, std_error, sums.risk, eta, z * std_error])


def _misranking_correction(first, second, weights, alphas):
    """Second-order bias of the one-step estimate with the averaged first stage.

    ``first`` and ``second`` are conditional risks fitted on disjoint halves;
    with :math:`q^{(1)}, q^{(2)}` their CVaR weights the correction is
    :math:`\\langle q^{(1)} - q^{(2)}, \\hat\\mu^{(1)} - \\hat\\mu^{(2)}
    \\rangle / 8` (see the Notes of
    :func:`skrobust.metrics.worst_subpopulation_risk`). The
    difference of the two fits is formed a block at a time.
    """
    gap = [(first, second)]
    return (
        cvar_weighted_means(first, alphas, gap, sample_weight=weights)[0]
        - cvar_weighted_means(second, alphas, gap, sample_weight=weights)[0]
    ) / 8.0


def _conditional_risk(predictions):
    """The first stages' predictions averaged over repeats and halves.

    A view of them (no copy) for one repeat of one first stage per fold.
    """
    if predictions.shape[0] == 1 and predictions.shape[1] == 1:
        return predictions[0, 0]
    return predictions.mean(axis=(0, 1))


def _corrected_curve(predictions, losses, weights, alphas, confidence, scale=1.0):
    """Estimates over ``alphas`` from the cross-fitted predictions.

    One first stage per fold (``predictions`` of shape (n_repeats, 1, n)):
    the one-step estimate on the predictions averaged over repeats. Two halves
    per fold: in each repeat, the one-step estimate on the average of the two
    halves plus the misranking correction; the repeats' estimates are averaged
    and their spread is added to the variance (Chernozhukov et al., 2018).
    """
    if predictions.shape[1] == 1:
        mu = _conditional_risk(predictions)
        return _debiased_cvar_curve(mu, losses, alphas, confidence, weights, scale)
    tables = []
    for first, second in predictions:
        mu = first + second
        mu *= 0.5
        table = _debiased_cvar_curve(mu, losses, alphas, confidence, weights, scale)
        del mu
        table[:, 0] += _misranking_correction(first, second, weights, alphas)
        tables.append(table)
    tables = np.array(tables)
    table = tables.mean(axis=0)
    spread = np.mean((tables[:, :, 0] - table[:, 0]) ** 2, axis=0)
    table[:, 1] = np.sqrt(np.mean(tables[:, :, 1] ** 2, axis=0) + spread)
    table[:, 4] = _normal_quantile(0.5 + confidence / 2) * table[:, 1]
    return table


def _curve_table(predictions, losses, weights, alphas, confidence, jackknife, scale):
    """Estimates over ``alphas``, with jackknife standard errors if given.

    ``losses`` are in their own units and enter divided by ``scale`` (the
    units of the predictions); the table is in the predictions' units.

    Returns an array of shape (n_levels, 6): estimate, standard error,
    plug-in value, value at risk, lower and upper end of the interval. The
    estimate is clipped below at the mean loss, which the worst case over
    subpopulations of any mass can never fall under, and the upper end is
    raised to at least the mean's upper end; the lower end is that of the
    one-step estimate (see the Notes of :func:`worst_subpopulation_risk`).
    """
    table = _corrected_curve(predictions, losses, weights, alphas, confidence, scale)
    mean, mean_std_error = _mean_and_std_error(losses, weights, scale)
    quantile = _normal_quantile(0.5 + confidence / 2)
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
                    _corrected_curve(mu, kept, kept_weights, alphas, confidence, scale)[
                        :, 0
                    ],
                    _mean_and_std_error(kept, kept_weights, scale)[0],
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


def _mean_and_std_error(losses, weights, scale=1.0):
    """Weighted mean of ``losses / scale`` and its standard error.

    Frequency weights; the centred squares are summed a block at a time (no
    vector of the sample size is made).
    """
    n = losses.shape[0]
    blocks = _blocks(n)
    total = float(n) if weights is None else float(weights.sum())

    def scaled(block):
        return np.divide(losses[block], scale, dtype=np.float64)

    def weighted_sum(values, block):
        return float(np.sum(values) if weights is None else weights[block] @ values)

    mean = sum(weighted_sum(scaled(block), block) for block in blocks) / total
    sq = 0.0
    for block in blocks:
        centred = scaled(block)
        centred -= mean
        centred *= centred
        sq += weighted_sum(centred, block)
    sq /= total
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
        subpopulation_size=pick(alphas),
        confidence_level=float(confidence),
    )
