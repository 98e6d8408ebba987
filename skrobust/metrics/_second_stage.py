"""Second stage of the worst-subpopulation risk: the debiased CVaR curve.

From cross-fitted conditional risks and the per-sample losses, the one-step
estimate of :math:`\\mathrm{CVaR}_\\alpha(\\mu(Z))`, its influence-function
standard error, the misranking correction and the clipped interval, at every
level at once. The debiased CVaR step itself is the cross-fitting engine's
(:func:`skrobust._crossfit.debiased_cvar_curve` and
:func:`~skrobust._crossfit.misranking_correction`, on
:func:`skrobust.ambiguity._curves.cvar_level_sums`: CVaR's worst-case weights
of the conditional risks at every level, applied to the losses); here the
repeats and halves are combined, the jackknife run and the interval clipped.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import t as t_dist

from skrobust._crossfit._cvar import (
    _normal_quantile,
    debiased_cvar_curve,
    misranking_correction,
)
from skrobust.ambiguity._base import _blocks
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
        return debiased_cvar_curve(mu, losses, alphas, confidence, weights, scale)
    tables = []
    for first, second in predictions:
        mu = first + second
        mu *= 0.5
        table = debiased_cvar_curve(mu, losses, alphas, confidence, weights, scale)
        del mu
        table[:, 0] += misranking_correction(first, second, weights, alphas)
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
