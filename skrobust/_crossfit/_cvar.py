"""The debiased CVaR step of the cross-fitting engine.

Given cross-fitted predictions ``mu`` of a conditional mean (a conditional
risk, a conditional treatment effect) and per-sample values ``phi`` whose
conditional mean it is (losses, pseudo-outcomes), the one-step estimate of
:math:`\\mathrm{CVaR}_\\alpha(E[\\phi \\mid Z])` replaces ``mu`` by ``phi``
inside the worst-case tail of ``mu``,

.. math::

    \\hat W_\\alpha = \\frac1n \\sum_i \\psi_i, \\qquad
    \\psi_i = \\hat\\eta + n q_i (\\phi_i - \\hat\\eta),

with :math:`q` the CVaR worst-case weights of ``mu`` and :math:`\\hat\\eta`
its value at risk; :math:`\\psi - \\hat W_\\alpha` is the influence function.
:func:`debiased_cvar` computes it at one level through
:class:`skrobust.ambiguity.CVaR` (the upper or the lower tail);
:func:`debiased_cvar_curve` at many levels at once from one sort, through
:func:`skrobust.ambiguity._curves.cvar_level_sums` (CVaR's worst-case weights
at every level, in blocks: peak memory the order and a buffer of half a
vector, the losses are read, never copied).
"""

import numpy as np
from scipy.special import ndtri

from skrobust.ambiguity import CVaR
from skrobust.ambiguity._curves import cvar_level_sums, cvar_weighted_means


def _normal_quantile(level):
    """``scipy.stats.norm.ppf(level)`` (the same numbers: SciPy's ``norm.ppf``
    is ``ndtri``), without its argument checks, which took a fifth of the
    time of a risk curve at n = 1e4."""
    return float(ndtri(level))


def debiased_cvar_curve(
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


def misranking_correction(first, second, weights, alphas):
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


def debiased_cvar(rank_by, values, alpha, *, sample_weight=None, tail="upper"):
    """One-step (debiased) CVaR at one level, with its influence function.

    Parameters
    ----------
    rank_by : ndarray of shape (n_samples,)
        Cross-fitted predictions :math:`\\hat\\mu(Z_i)` that define the tail.
    values : ndarray of shape (n_samples,)
        Per-sample values :math:`\\phi_i` (losses, pseudo-outcomes) whose
        conditional mean ``rank_by`` predicts.
    alpha : float in (0, 1]
        Mass of the subpopulation.
    sample_weight : ndarray of shape (n_samples,), default=None
        Frequency weights (nonnegative, positive sum); ``None`` means ones.
    tail : {"upper", "lower"}, default="upper"
        ``"upper"``: the mean over the worst (largest) ``alpha`` of
        ``rank_by`` (a worst-case risk); ``"lower"``: over the smallest (a
        worst-case effect, minus the CVaR of ``-rank_by``).

    Returns
    -------
    estimate : float
        :math:`\\frac1n \\sum_i \\psi_i` under the weights.
    influence : ndarray of shape (n_samples,)
        :math:`\\psi_i - ` ``estimate``; its standard error is
        :func:`~skrobust._crossfit.influence_stderr` ``(influence, sample_weight)``.
    plug_in : float
        The CVaR of ``rank_by`` itself (biased).
    value_at_risk : float
        :math:`\\hat\\eta` (on the scale of ``rank_by``, sign included).
    weights : ndarray of shape (n_samples,)
        The worst-case weights :math:`q` (sum to one).
    """
    if tail not in ("upper", "lower"):
        raise ValueError(f"tail must be 'upper' or 'lower'; got {tail!r}.")
    sign = 1.0 if tail == "upper" else -1.0
    n = rank_by.shape[0]
    sw = sample_weight
    p = np.full(n, 1.0 / n) if sw is None else sw / sw.sum()
    cvar = CVaR(alpha=alpha)
    ranked = rank_by if sign > 0 else -rank_by
    risk, q = cvar.risk_and_weights(ranked, sample_weight=sw)
    eta = sign * float(cvar.dual_init(ranked, sample_weight=sw)[0])
    del ranked
    ratio = np.divide(q, p, out=np.zeros_like(q), where=p > 0)
    # eta + ratio * (values - eta), then its centring, in one buffer
    psi = np.subtract(values, eta)
    psi *= ratio
    del ratio
    psi += eta
    value = float(p @ psi)
    psi -= value
    return value, psi, sign * float(risk), eta, q
