"""Worst cases of the ambiguity sets at many levels at once.

The sets answer one level at a time (``CVaR(alpha).risk_and_weights``,
``KL(radius).risk_and_weights``). Evaluators need whole curves and inverse
problems: the CVaR worst-case weights of one vector at every level, applied
to other per-sample vectors (the debiased worst-subpopulation risk and its
influence values), and the KL radius at which the worst case reaches a given
risk (stability under distribution shift). They live here, on the sets' own
helpers (:func:`~skrobust.ambiguity._base._blocks`, the validation of
losses and weights) and with the sets' conventions (ties at the
value at risk share the remaining mass in proportion to their nominal
weights; the mass condition has CVaR's relative slack of 1e-12).
"""

from collections import namedtuple

import numpy as np
from scipy.optimize import brentq

from skrobust.ambiguity._base import _blocks
from skrobust.utils._validation import check_losses, check_nonnegative_sample_weight

#: relative slack of the mass condition, as in ``CVaR``'s value at risk
_SLACK = 1e-12
#: number of blocks the sorted order is walked in (memory: a few blocks)
_BLOCKS = 16
#: smallest block, in samples
_MIN_STEP = 2048

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

    One sort of ``rank_by``; the value at risk of every level is the first
    sorted sample whose cumulative mass reaches :math:`\\alpha` (with CVaR's
    slack; from counts for uniform weights, from one pass over blocks of the
    sorted weights otherwise); one more pass over blocks of the sorted order
    sums the nominal mass, ``rank_by`` and the powers of each column up to
    the two ends of each level's tie group (values found by binary search in
    each block, sums as prefix sums of a reused buffer). The result equals
    ``CVaR(alpha).worst_case_weights`` level by level, ties at the value at
    risk sharing the remaining mass in proportion to their weights. Peak
    memory: the order (one integer vector of the sample size) and a buffer of
    blocks within half a vector of the sample size; the columns and the
    weights are read, never copied.

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
    parts = []
    for column in columns:
        pair = column if isinstance(column, tuple) else (column,)
        pair = tuple(np.asarray(part, dtype=np.float64) for part in pair)
        for part in pair:
            if part.shape != (n,):
                raise ValueError(
                    f"every column must have shape ({n},); got {part.shape}."
                )
        parts.append(pair)
    uniform = sample_weight is None
    weights, total = None, float(n)
    if not uniform:
        # validated frequency weights, read a block at a time; the sums are
        # divided by their total at the end (no vector of probabilities)
        weights = check_nonnegative_sample_weight(sample_weight, rank_by)
        total = float(np.sum(weights))
    order = _decreasing_order(rank_by)
    n_levels = alphas.shape[0]
    targets = alphas * (1.0 - _SLACK)
    # the levels by increasing target: their values at risk do not increase,
    # so the pending levels are always a suffix of this order
    by_level = np.argsort(targets, kind="stable")
    n_pow = len(powers)
    # rows of the block buffer: the weights (weighted only), rank_by, then the
    # powers of each column; column 0 of the buffer is 0 for the prefix sums
    first_row = 0 if uniform else 1
    n_rows = first_row + 1 + len(parts) * n_pow
    # (weighted: one more block, the cumulative mass)
    blocks = _level_blocks(n, n_rows + (0 if uniform else 1))
    step = blocks[0].stop - blocks[0].start
    if uniform:
        # cumulative mass (k + 1) / n: the first k with (k + 1) / n >= target
        crossing = np.clip(np.ceil(targets * n).astype(np.intp) - 1, 0, n - 1)
        crossing = crossing[by_level]
    else:
        level_mass = targets[by_level] * total  # in the units of the weights
    reuse = any(part is rank_by for pair in parts for part in pair)
    buffer = np.empty((n_rows, step + 1))
    buffer[:, 0] = 0.0
    eta = np.empty(n_levels)  # in by_level order until the end
    bounds = [np.empty((n_rows, n_levels)), np.empty((n_rows, n_levels))]
    counts = [np.empty(n_levels), np.empty(n_levels)]
    crossed = ended = 0  # levels by_level[:crossed] have their value at risk
    carry = np.zeros(n_rows)
    # the trailing run of equal values of the blocks seen: its value, and the
    # prefix sums and position where it starts (a tie group across blocks)
    run_value, run_bounds, run_position = np.nan, carry.copy(), 0
    position = 0
    for b, block in enumerate(blocks):
        size = block.stop - block.start
        # contiguous indices and mode="clip": np.take then writes straight
        # into the buffer (with a view of the reversed order, or the default
        # mode, it would copy the indices or buffer the output)
        index = np.ascontiguousarray(order[block])
        rows = buffer[:, 1 : size + 1]
        values = rows[first_row]
        np.take(rank_by, index, out=values, mode="clip")
        if not uniform:
            np.take(weights, index, out=rows[0], mode="clip")
        # 1. the levels whose value at risk falls in this block
        new = crossed
        if crossed < n_levels:
            if uniform:
                local = crossing[crossed:] - position
            else:
                cum = np.cumsum(rows[0])
                cum += carry[0]
                # zero weights repeat the cumulative mass: "left" finds the
                # positive weight that reached it
                local = np.searchsorted(cum, level_mass[crossed:], side="left")
                del cum
            new = crossed + int(np.searchsorted(local, size, side="left"))
            eta[crossed:new] = values[local[: new - crossed]]
        # 2. where their tie groups start (count of values above eta), where
        # the pending groups end (count at or above it) and where the
        # trailing run starts: the values decrease, so they are searched in
        # the reversed view
        ascending = values[::-1]
        above = size - np.searchsorted(ascending, eta[crossed:new], side="right")
        from_run = (above == 0) & (eta[crossed:new] == run_value)
        at_or_above = size - np.searchsorted(ascending, eta[ended:new], side="left")
        finished = ended + int(np.searchsorted(at_or_above, size, side="left"))
        if b == len(blocks) - 1:
            finished = new
        last = values[-1]
        last_above = size - int(np.searchsorted(ascending, last, side="right"))
        run_goes_on = last_above == 0 and last == run_value
        del ascending
        # the block's values of rank_by, if a column needs them (the row is
        # overwritten by its prefix sums, and weighted, below)
        ranked = values.copy() if reuse else None
        # 3. the block's terms, their sums and prefix sums
        row = first_row + 1
        for pair in parts:
            # a part that is rank_by itself is copied from the block's values
            # (kept aside above), not gathered again: random gathers are
            # most of the time at large n
            scaled = rows[row]
            if pair[0] is rank_by:
                np.copyto(scaled, ranked)
            else:
                np.take(pair[0], index, out=scaled, mode="clip")
            if len(pair) == 2:
                if pair[1] is rank_by:
                    scaled -= ranked
                else:
                    scaled -= pair[1][index]
            if scale != 1.0:
                scaled /= scale
            for j in range(n_pow - 1, -1, -1):
                if powers[j] != 1:
                    np.power(scaled, powers[j], out=rows[row + j])
                elif j:
                    rows[row + j] = scaled
            row += n_pow
        del index
        if not uniform:
            rows[1:] *= rows[0]
        # carried with pairwise sums: the rounding grows with the block length
        block_sums = rows.sum(axis=1)
        np.cumsum(rows, axis=1, out=rows)  # prefix sums, in place
        # 4. the bounds found in this block
        levels = slice(crossed, new)
        bounds[0][:, levels] = carry[:, None] + buffer[:, above]
        counts[0][levels] = position + above
        if from_run.any():
            bounds[0][:, crossed:new][:, from_run] = run_bounds[:, None]
            counts[0][crossed:new][from_run] = run_position
        levels = slice(ended, finished)
        bounds[1][:, levels] = (
            carry[:, None] + buffer[:, at_or_above[: finished - ended]]
        )
        counts[1][levels] = position + at_or_above[: finished - ended]
        if not run_goes_on:
            run_value = last
            run_bounds = carry + buffer[:, last_above]
            run_position = position + last_above
        carry += block_sums
        position += size
        crossed, ended = new, finished
    if crossed < n_levels:
        # rounding left these targets above the cumulated mass: the worst
        # case is all of it, its value at risk the smallest value of positive
        # weight, whose tie group ends the sorted order (rare)
        _all_mass_levels(
            rank_by,
            weights,
            parts,
            scale,
            powers,
            carry,
            slice(crossed, None),
            eta,
            bounds,
            first_row,
        )
    # back from by_level order to the order of alphas
    unsorted = np.empty_like(by_level)
    unsorted[by_level] = np.arange(n_levels)
    eta = eta[unsorted]
    starts, ends = bounds[0][:, unsorted], bounds[1][:, unsorted]
    counts = [c[unsorted] for c in counts]
    # sums over the total weight; for uniform weights the masses are counts
    # over n (exact)
    starts /= total
    ends /= total
    carry /= total
    if uniform:
        mass_above = counts[0] / n
        mass_tie = (counts[1] - counts[0]) / n
    else:
        mass_above = starts[0]
        mass_tie = ends[0] - starts[0]
    share = np.clip((alphas - mass_above) / mass_tie, 0.0, 1.0)
    sum_above = starts[first_row]
    risk = (sum_above + (alphas - mass_above) * eta) / alphas
    top = float(rank_by[order[0]])
    risk = np.clip(risk, min(float(carry[first_row]), top), top)
    first_column = first_row + 1
    shape = (len(parts), n_pow, n_levels)
    above = starts[first_column:].reshape(shape)
    tie = (ends[first_column:] - starts[first_column:]).reshape(shape)
    return CVaRLevelSums(eta, share, mass_above, mass_tie, risk, above, tie)


def _decreasing_order(values):
    """Indices sorting ``values`` in decreasing order (ties in any order):
    a reversed view of the argsort."""
    return np.argsort(values)[::-1]


def _level_blocks(n, n_rows):
    """Blocks of the sorted order for a buffer of ``n_rows`` rows.

    At least ``_MIN_STEP`` samples (fewer numpy calls per sample) or a
    ``_BLOCKS``-th of them, whichever is larger, as long as the buffer stays
    within half a vector of the sample size (memory).
    """
    step = max(_MIN_STEP, -(-n // _BLOCKS))
    step = min(step, max(n // (2 * n_rows), 1))
    return _blocks(n, count=max(1, -(-n // step)))


def _all_mass_levels(
    rank_by, weights, parts, scale, powers, carry, levels, eta, bounds, first_row
):
    """Bounds of levels whose target rounding left above the cumulated mass.

    Their worst case holds every sample of positive weight: the value at
    risk is the smallest value of positive weight, its tie group ends the
    sorted order (the end bounds are the totals ``carry``), and the start
    bounds are the totals less the sums over that group, summed a block at a
    time in the original order.
    """
    positive = weights > 0
    value = float(np.min(rank_by, where=positive, initial=np.inf))
    del positive
    group = np.zeros_like(carry)
    for block in _blocks(rank_by.shape[0]):
        mask = rank_by[block] == value
        w = weights[block][mask]
        terms = [w, rank_by[block][mask] * w]
        for pair in parts:
            column = pair[0][block][mask]
            if len(pair) == 2:
                column = column - pair[1][block][mask]
            column = column / scale
            terms.extend(column**power * w for power in powers)
        group += [float(np.sum(term)) for term in terms]
    eta[levels] = value
    bounds[1][:, levels] = carry[:, None]
    bounds[0][:, levels] = (carry - group)[:, None]


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


def kl_radius_at_risk(losses, level, *, overwrite=False, check_input=True, q_sum=1.0):
    """Smallest KL radius whose worst-case risk reaches ``level`` (uniform P_n).

    The inverse of ``KL(radius).risk`` in the radius:

    .. math::

        I(y) = \\inf\\{D_{KL}(Q \\| P_n) : E_Q[\\ell] \\ge y\\}
             = \\sup_{\\lambda \\ge 0} \\lambda y - \\log E_{P_n}
             e^{\\lambda \\ell},

    whose maximizing tilt :math:`q \\propto e^{\\lambda \\ell}` is the worst
    case of ``KL(radius=I(y))`` (whose dual variable is :math:`\\log(1 /
    \\lambda)`). The optimality condition :math:`E_{q_\\lambda}[\\ell] = y`
    is increasing in :math:`\\lambda`; it is solved by Brent's method on the
    losses rescaled to [0, 1], with exponentials shifted by their largest
    exponent, which never overflow (about ten passes of five vector
    operations; a Newton method on :math:`\\log\\lambda` with KL's tilt
    took 1.5 to 3 times as long at n = 1e6). Peak memory: the rescaled losses
    (the input itself with ``overwrite=True``) and one work vector, which
    becomes the weights.

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Per-sample losses.
    level : float
        The risk the worst case has to reach.
    overwrite : bool, default=False
        Whether ``losses`` (a float64 array) may be overwritten.
    check_input : bool, default=True
        Whether to validate ``losses``; ``False`` for a finite 1-d float64
        array the caller has validated (two passes fewer).
    q_sum : float, default=1.0
        What the returned weights sum to (``n`` gives ``n q``, the likelihood
        ratio), in the same pass as their normalization.

    Returns
    -------
    radius : float
        :math:`I(y)`: 0 when ``level`` is at most the mean, ``inf`` above the
        largest loss.
    multiplier : float
        The optimal :math:`\\lambda` in the losses' units (``inf`` when
        ``level`` is at least the largest loss).
    q : ndarray of shape (n_samples,)
        The maximizing tilt, summing to ``q_sum`` (all mass on the largest
        losses when ``level`` is at least the largest loss).

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
    values = check_losses(losses) if check_input else losses
    if not overwrite and values is losses:
        values = values.copy()  # check_losses returned the caller's array
    level = float(level)
    n = values.shape[0]
    mean = float(values.mean())
    top = float(values.max())
    if level <= mean:
        return 0.0, 0.0, np.full(n, q_sum / n)
    if level >= top:
        on_top = values >= top
        count = int(np.count_nonzero(on_top))
        radius = np.inf if level > top else float(np.log(n / count))
        return radius, np.inf, on_top * (q_sum / count)
    lo = float(values.min())
    scale = top - lo
    z = values
    z -= lo
    z /= scale
    target = (level - lo) / scale
    buffer = np.empty_like(z)

    def exponentials(t):
        # exp(t (z - 1)) in place: its largest value is exp(0) = 1
        np.subtract(z, 1.0, out=buffer)
        np.multiply(buffer, t, out=buffer)
        return np.exp(buffer, out=buffer)

    def tilted_mean_gap(t):
        w = exponentials(t)
        return np.dot(w, z) / w.sum() - target

    hi = 1.0
    while tilted_mean_gap(hi) < 0:
        hi *= 2.0
    t = brentq(tilted_mean_gap, 0.0, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
    q = exponentials(t)
    total = q.sum()  # >= 1: the largest value contributes exp(0)
    radius = t * (target - 1.0) - (np.log(total) - np.log(n))
    q *= q_sum / total
    return max(float(radius), 0.0), t / scale, q
