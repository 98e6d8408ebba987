"""Worst cases of the ambiguity sets at many levels at once.

The sets answer one level at a time (``CVaR(alpha).risk_and_weights``,
``KL(radius).risk_and_weights``). Evaluators need whole curves and inverse
problems: the CVaR worst-case weights of one vector at every level, applied
to other per-sample vectors (the debiased worst-subpopulation risk and its
influence values), and the KL radius at which the worst case reaches a given
risk (stability under distribution shift). They live here, on the sets' own
helpers (:func:`~skrobust.ambiguity._base._blocks`, the exponential tilt of
:mod:`~skrobust.ambiguity._kl`) and with the sets' conventions (ties at the
value at risk share the remaining mass in proportion to their nominal
weights; the mass condition has CVaR's relative slack of 1e-12).
"""

from collections import namedtuple

import numpy as np

from skrobust.ambiguity._base import _blocks
from skrobust.ambiguity._kl import _tilt
from skrobust.utils._validation import check_losses, check_probability_weights

#: relative slack of the mass condition, as in ``CVaR``'s value at risk
_SLACK = 1e-12
#: number of blocks the sorted order is walked in (memory: a few blocks)
_BLOCKS = 32

CVaRLevelSums = namedtuple(
    "CVaRLevelSums",
    [
        "value_at_risk",
        "tie_share",
        "mass_above",
        "mass_tie",
        "risk",
        "above",
        "tie",
    ],
)
CVaRLevelSums.__doc__ = """The CVaR worst case of one vector at every level.

At level :math:`\\alpha_k` the worst-case weights of
``CVaR(alpha_k).worst_case_weights(rank_by, sample_weight)`` are
:math:`q_i = p_i / \\alpha_k` where ``rank_by`` exceeds ``value_at_risk[k]``,
:math:`q_i = s_k p_i / \\alpha_k` (``s_k = tie_share[k]``) where it equals it,
and 0 below; so :math:`\\sum_i q_i c_i = (A_k + s_k T_k) / \\alpha_k` for any
column :math:`c` with ``A = above`` and ``T = tie``.

Fields
------
value_at_risk : ndarray of shape (n_levels,)
tie_share : ndarray of shape (n_levels,)
    Share of the value at risk's tie group inside the worst case, in [0, 1].
mass_above, mass_tie : ndarray of shape (n_levels,)
    Nominal mass strictly above the value at risk, and of its tie group.
risk : ndarray of shape (n_levels,)
    ``CVaR(alpha_k).risk(rank_by, sample_weight)``.
above, tie : ndarray of shape (n_columns, n_powers, n_levels)
    :math:`\\sum p_i (c_i / \\mathrm{scale})^r` over the samples strictly above
    the value at risk, and over its tie group, for each column and power.
"""


def _check_levels(alphas):
    try:
        alphas = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alphas must be an array of numbers; got {exc}") from exc
    if alphas.ndim > 1:
        raise ValueError(f"alphas must be 1-dimensional; got shape {alphas.shape}.")
    alphas = alphas.reshape(-1)
    if alphas.size == 0:
        raise ValueError("alphas is empty; at least one level is required.")
    if not np.all(np.isfinite(alphas) & (alphas > 0) & (alphas <= 1)):
        raise ValueError("alphas must lie in (0, 1].")
    return alphas


def cvar_level_sums(
    rank_by, alphas, columns=(), *, sample_weight=None, scale=1.0, powers=(1,)
):
    """CVaR worst-case weights of ``rank_by`` at every level, applied to columns.

    One sort of ``rank_by``; then two passes over the sorted order, a block at
    a time: the first finds the value at risk of every level (the first sorted
    sample whose cumulative mass reaches :math:`\\alpha`, with CVaR's slack),
    the second the prefix sums of the nominal mass, of ``rank_by`` and of the
    powers of each column at the two ends of each level's tie group. Peak
    memory: the order (one integer vector of the sample size), the
    probability weights when ``sample_weight`` is given, and blocks of a
    32nd of the sample size; the columns are read, never copied.

    Parameters
    ----------
    rank_by : array-like of shape (n_samples,)
        The vector whose CVaR worst case is taken (e.g. conditional risks).
    alphas : array-like of shape (n_levels,)
        Levels in (0, 1], in any order.
    columns : sequence of ndarray of shape (n_samples,), default=()
        Vectors the worst-case weights are applied to; a pair ``(a, b)``
        stands for ``a - b``, formed a block at a time (no vector of the
        difference is made, and the sums are those of the differences).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative weights defining the nominal distribution; ``None`` means
        uniform. Samples of zero weight get zero worst-case weight.
    scale : float, default=1.0
        The columns enter as ``column / scale`` (so that squares of large
        values do not overflow).
    powers : tuple of int, default=(1,)
        Powers of the scaled columns that are summed.

    Returns
    -------
    sums : CVaRLevelSums

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity._curves import cvar_level_sums
    >>> sums = cvar_level_sums(np.arange(10.0), [0.2, 0.25])
    >>> sums.risk  # CVaR(0.2) and CVaR(0.25) of 0..9
    array([8.5, 8.2])
    >>> sums.value_at_risk, sums.tie_share
    (array([8., 7.]), array([1. , 0.5]))
    """
    rank_by = check_losses(rank_by, name="rank_by")
    n = rank_by.shape[0]
    alphas = _check_levels(alphas)
    for column in columns:
        for part in column if isinstance(column, tuple) else (column,):
            if np.shape(part) != (n,):
                raise ValueError(
                    f"every column must have shape ({n},); got {np.shape(part)}."
                )
    uniform = sample_weight is None
    p = None if uniform else check_probability_weights(sample_weight, n)
    order = np.argsort(rank_by)[::-1]  # decreasing (a view of the argsort)
    targets = alphas * (1.0 - _SLACK)
    crossing = _crossing_positions(order, p, targets)
    eta = rank_by[order[crossing]]
    n_cols = len(columns)
    n_pow = len(powers)
    # prefix sums at the start and the end of each tie group: mass, rank_by,
    # then column c to power r at 2 + c * n_pow + r
    n_sums = 2 + n_cols * n_pow
    starts = np.empty((n_sums, alphas.shape[0]))
    ends = np.empty_like(starts)
    open_start = np.ones(alphas.shape[0], dtype=bool)
    open_end = np.ones(alphas.shape[0], dtype=bool)
    carry = np.zeros(n_sums)
    blocks = _blocks(n, count=_BLOCKS)
    for b, block in enumerate(blocks):
        index = order[block]
        values = rank_by[index]
        weights = np.ones(values.shape[0]) if uniform else p[index]
        terms = [weights, values * weights]
        for column in columns:
            if isinstance(column, tuple):
                scaled = np.subtract(column[0][index], column[1][index])
                scaled /= scale
            else:
                scaled = np.divide(column[index], scale, dtype=np.float64)
            for power in powers:
                term = scaled**power if power != 1 else scaled.copy()
                term *= weights
                terms.append(term)
            del scaled
        del index
        last = b == len(blocks) - 1
        # decreasing values: the samples above eta come first
        negated = np.negative(values, out=values)
        prefixes = None
        for side, open_, out in (
            ("left", open_start, starts),
            ("right", open_end, ends),
        ):
            pending = np.flatnonzero(open_)
            if pending.size == 0:
                continue
            count = np.searchsorted(negated, -eta[pending], side=side)
            done = slice(None) if last else count < negated.shape[0]
            levels, count = pending[done], count[done]
            if levels.size == 0:
                continue
            if prefixes is None:
                # prefix sums of the block, one term at a time
                prefixes = []
                for term in terms:
                    prefix = np.empty(term.shape[0] + 1)
                    prefix[0] = 0.0
                    np.cumsum(term, out=prefix[1:])
                    prefixes.append(prefix)
            for k, prefix in enumerate(prefixes):
                out[k, levels] = carry[k] + prefix[count]
            open_[levels] = False
        del prefixes, negated, values, weights
        # carried with pairwise sums: the rounding grows with the block length
        carry += [float(np.sum(term)) for term in terms]
        del terms
    if uniform:
        # masses are counts over n: exact
        starts /= n
        ends /= n
        carry /= n
    mass_above = starts[0]
    mass_tie = ends[0] - starts[0]
    share = np.clip((alphas - mass_above) / mass_tie, 0.0, 1.0)
    risk = (starts[1] + (alphas - mass_above) * eta) / alphas
    top = float(rank_by[order[0]])
    risk = np.clip(risk, min(float(carry[1]), top), top)
    above = starts[2:].reshape(n_cols, n_pow, -1)
    tie = (ends[2:] - starts[2:]).reshape(n_cols, n_pow, -1)
    return CVaRLevelSums(eta, share, mass_above, mass_tie, risk, above, tie)


def _crossing_positions(order, p, targets):
    """Sorted position of each level's value at risk.

    The first sample, in decreasing order of the ranked vector, whose
    cumulative mass reaches the target; targets that rounding leaves unmet
    go to the last sample of positive weight.
    """
    n = order.shape[0]
    if p is None:
        # cumulative mass (k + 1) / n: the first k with (k + 1) / n >= target
        return np.clip(np.ceil(targets * n).astype(np.intp) - 1, 0, n - 1)
    crossing = np.full(targets.shape[0], -1, dtype=np.intp)
    pending = np.ones(targets.shape[0], dtype=bool)
    carry = 0.0
    last_positive = 0
    for block in _blocks(n, count=_BLOCKS):
        weights = p[order[block]]
        positive = np.flatnonzero(weights > 0)
        if positive.size:
            last_positive = block.start + int(positive[-1])
        cum = np.cumsum(weights)
        cum += carry
        todo = np.flatnonzero(pending)
        if todo.size:
            # zero weights repeat the cumulative mass: "left" finds the
            # positive weight that reached it
            count = np.searchsorted(cum, targets[todo], side="left")
            hit = count < weights.shape[0]
            crossing[todo[hit]] = block.start + count[hit]
            pending[todo[hit]] = False
        carry += float(np.sum(weights))
    crossing[pending] = last_positive
    return crossing


def cvar_weighted_means(rank_by, alphas, columns, *, sample_weight=None):
    """``sum_i q_i c_i`` for each column ``c``, ``q`` the CVaR worst case of
    ``rank_by`` at every level (see :func:`cvar_level_sums`).

    Returns
    -------
    means : ndarray of shape (n_columns, n_levels)
    """
    sums = cvar_level_sums(rank_by, alphas, columns, sample_weight=sample_weight)
    alphas = _check_levels(alphas)
    return (sums.above[:, 0] + sums.tie_share * sums.tie[:, 0]) / alphas


def kl_radius_at_risk(losses, level, *, overwrite=False):
    """Smallest KL radius whose worst-case risk reaches ``level`` (uniform P_n).

    The inverse of ``KL(radius).risk`` in the radius:

    .. math::

        I(y) = \\inf\\{D_{KL}(Q \\| P_n) : E_Q[\\ell] \\ge y\\}
             = \\sup_{\\lambda \\ge 0} \\lambda y - \\log E_{P_n}
             e^{\\lambda \\ell},

    whose maximizing tilt :math:`q \\propto e^{\\lambda \\ell}` is the worst
    case of ``KL(radius=I(y))`` (its dual variable is :math:`\\log(1 /
    \\lambda)`). The optimality condition :math:`E_{q_\\lambda}[\\ell] = y` is
    increasing in :math:`\\lambda`; it is solved by a safeguarded Newton
    method on :math:`\\log \\lambda` (slope :math:`\\lambda\\,
    \\mathrm{Var}_q(\\ell)`) on losses rescaled to [0, 1], with KL's
    exponential tilt (shifted exponentials that never overflow, ``expm1``
    for small tilts), to machine precision. Peak memory: the rescaled
    losses (the input itself with ``overwrite=True``) and one work vector,
    which becomes the weights.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses.
    level : float
        The risk the worst case has to reach.
    overwrite : bool, default=False
        Whether ``losses`` (a float64 array) may be overwritten.

    Returns
    -------
    radius : float
        :math:`I(y)`: 0 when ``level`` is at most the mean, ``inf`` above the
        largest loss.
    multiplier : float
        The optimal :math:`\\lambda` in the losses' units (``inf`` when
        ``level`` is at least the largest loss).
    q : ndarray of shape (n_samples,)
        The maximizing tilt, summing to one (all mass on the largest losses
        when ``level`` is at least the largest loss).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import KL
    >>> from skrobust.ambiguity._curves import kl_radius_at_risk
    >>> losses = np.array([0.0, 0.0, 1.0, 3.0])
    >>> radius, _, _ = kl_radius_at_risk(losses, 2.0)
    >>> bool(np.isclose(KL(radius=radius).risk(losses), 2.0))
    True
    """
    values = check_losses(losses)
    if not overwrite and values is losses:
        values = values.copy()
    elif not overwrite:
        values = np.array(values)  # check_losses may return the caller's array
    level = float(level)
    n = values.shape[0]
    mean = float(values.mean())
    top = float(values.max())
    if level <= mean:
        return 0.0, 0.0, np.full(n, 1.0 / n)
    if level >= top:
        on_top = values >= top
        count = int(np.count_nonzero(on_top))
        radius = np.inf if level > top else float(np.log(n / count))
        return radius, np.inf, on_top / float(count)
    p = np.broadcast_to(np.float64(1.0 / n), (n,))
    lo = float(values.min())
    scale = top - lo
    dev = values
    dev -= lo
    dev /= scale
    z_mean = float(dev.mean())
    dev -= z_mean
    target = (level - lo) / scale - z_mean
    work = np.empty_like(dev)
    log_t = _solve_tilted_mean(dev, p, target, work)
    t = float(np.exp(log_t))
    _, log_mgf, q = _tilt(dev, p, t, work)
    radius = max(t * target - log_mgf, 0.0)
    return float(radius), t / scale, q


def _solve_tilted_mean(dev, p, target, work):
    """Root in ``log t`` of ``E_{q_t}[dev] = target`` (0 < target < max dev).

    Newton's method on ``log t`` (the tilted mean increases in ``t``, with
    slope ``t Var_q(dev)`` in ``log t``) from the small-tilt solution
    ``t = target / Var_p(dev)``, safeguarded by a bracket (grown by unit steps
    in ``log t`` until the root is enclosed, then bisected when a Newton step
    leaves it), as KL's own radius solve.
    """
    lo, hi = -800.0, np.inf
    var_p = float(np.einsum("i,i,i->", p, dev, dev))
    log_t = np.log(target / var_p) if var_p > 0 else 0.0
    log_t = min(max(log_t, lo), 700.0)
    for _ in range(300):
        t = float(np.exp(log_t))
        _, _, q = _tilt(dev, p, t, work)
        mean_q = float(np.dot(q, dev))
        gap = mean_q - target
        if gap == 0.0:
            break
        if gap > 0:
            hi = log_t
        else:
            lo = log_t
        second = float(np.einsum("i,i,i->", q, dev, dev))
        slope = t * max(second - mean_q * mean_q, 0.0)
        new = log_t - gap / slope if slope > 0 else np.nan
        if abs(new - log_t) <= 1e-14 * max(1.0, abs(log_t)):
            log_t = new
            break
        if np.isinf(hi):
            if not log_t < new <= log_t + 1.0:
                new = log_t + 1.0
        elif not lo < new < hi:
            new = 0.5 * (lo + hi)
        if hi - lo <= 1e-14 * max(1.0, abs(log_t)):
            break
        log_t = new
    return log_t
