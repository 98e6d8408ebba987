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
:func:`debiased_cvar_curve` at many levels at once from one sort.
"""

import numpy as np
from scipy.stats import norm

from skrobust.ambiguity import CVaR


def level_sums(rank_by, p, columns, alphas):
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


def debiased_cvar_curve(conditional_risk, losses, alphas, confidence, weights=None):
    """Debiased CVaR of the conditional risk for every level in ``alphas``.

    The fitted conditional risks are grouped into their unique values and
    sorted once (:func:`level_sums`, which gives the plug-in curve of
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
    eta, frac, m0, mass_j, sums = level_sums(
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


def ranked_sum(rank_by, values, weights, alphas):
    """``sum_i q_i values_i`` with ``q`` the CVaR weights of ``rank_by``.

    ``q`` puts mass ``p_i / alpha`` on the largest ``rank_by`` until it sums
    to one (ties share the last group's remaining mass), for every level.
    """
    p = weights / weights.sum()
    _, frac, _, _, [(above, in_group)] = level_sums(rank_by, p, [(values, 1)], alphas)
    return (above + frac * in_group) / alphas


def misranking_correction(first, second, weights, alphas):
    """Second-order bias of the one-step estimate with the averaged first stage.

    ``first`` and ``second`` are conditional risks fitted on disjoint halves;
    with :math:`q^{(1)}, q^{(2)}` their CVaR weights the correction is
    :math:`\\langle q^{(1)} - q^{(2)}, \\hat\\mu^{(1)} - \\hat\\mu^{(2)}
    \\rangle / 8` (see the Notes of
    :func:`skrobust.metrics.worst_subpopulation_risk`).
    """
    gap = first - second
    return (
        ranked_sum(first, gap, weights, alphas)
        - ranked_sum(second, gap, weights, alphas)
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
