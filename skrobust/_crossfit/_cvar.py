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
Nothing of the CVaR is re-derived here: the weights, the risk and the value
at risk come from :class:`skrobust.ambiguity.CVaR`.
"""

import numpy as np

from skrobust.ambiguity import CVaR


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
        Samples of weight zero get zero worst-case weight.
    tail : {"upper", "lower"}, default="upper"
        ``"upper"``: the mean over the worst (largest) ``alpha`` of
        ``rank_by`` (a worst-case risk); ``"lower"``: over the smallest (a
        worst-case effect: minus the CVaR of ``-rank_by``).

    Returns
    -------
    estimate : float
        The weighted mean of :math:`\\psi`.
    influence : ndarray of shape (n_samples,)
        :math:`\\psi_i -` ``estimate``; its standard error is
        ``influence_stderr(influence, sample_weight)``.
    plug_in : float
        The CVaR (lower CVaR for ``tail="lower"``) of ``rank_by`` itself.
    value_at_risk : float
        :math:`\\hat\\eta`, on the scale of ``rank_by``.
    weights : ndarray of shape (n_samples,)
        The worst-case weights :math:`q` (sum to one).
    """
    if tail not in ("upper", "lower"):
        raise ValueError(f"tail must be 'upper' or 'lower'; got {tail!r}.")
    sign = 1.0 if tail == "upper" else -1.0
    sw = sample_weight
    cvar = CVaR(alpha=alpha)
    ranked = rank_by if sign > 0 else np.negative(rank_by)
    eta = sign * float(cvar.dual_init(ranked, sample_weight=sw)[0])
    risk, q = cvar.risk_and_weights(ranked, sample_weight=sw)
    del ranked
    # psi = eta + (q / p) (values - eta) in one buffer: q / p is q n
    # (uniform) or q sum(sw) / sw (q = 0 where sw = 0)
    psi = np.subtract(values, eta)
    psi *= q
    if sw is None:
        psi *= rank_by.shape[0]
        psi += eta
        value = float(np.mean(psi))
    else:
        total = float(sw.sum())
        psi *= total
        np.divide(psi, sw, out=psi, where=sw > 0)
        psi += eta
        value = float(sw @ psi) / total
    psi -= value
    return value, psi, sign * float(risk), eta, q
