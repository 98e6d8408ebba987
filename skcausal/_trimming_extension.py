"""Lipschitz (McShane-Whitney) extensions of the outcome model: the geometry.

Distances between the outside units and the overlap anchors in row blocks,
the anchors that some extension can use (convex-hull walks), the lower and
upper extensions at a constant L and the smallest L at which they cross.
Used by :class:`skcausal.TrimmingSensitivity`.
"""

import numpy as np

from skrobust._crossfit import index_dtype

# distances are computed in blocks of at most this many (outside, anchor) pairs
_CHUNK_PAIRS = 2**21
# and of at least this many in all (smaller blocks cost more in numpy calls)
_MIN_PAIRS = 2**14
# geometric bisection steps for the smallest consistent Lipschitz constant
_CROSSING_STEPS = 40


def _outcome_unit(values):
    """``max |values|`` (1 when all are zero): the unit of the outcome.

    It scales exactly with the outcome (the rounding of ``c * y`` is
    monotone, so ``max |c y|`` is the rounded ``c max |y|``), so every
    quantity computed in this unit and multiplied back by it is equivariant
    to rounding: a fixed sequence of trial Lipschitz constants, bisection
    brackets and float32 draws in this unit are the same at any scale.
    """
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if not top > 0 or not np.isfinite(top):
        return 1.0
    return top


def _check_lipschitz(lipschitz):
    arr = np.asarray(lipschitz, dtype=np.float64)
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"lipschitz must be a finite number or 1-d array; got {lipschitz!r}."
        )
    if np.any(arr < 0):
        raise ValueError(f"lipschitz must be >= 0; got {lipschitz!r}.")
    return arr


def _block_rows(n_anchors, temps, budget):
    """Rows per distance block of ``n_anchors`` columns.

    A block holds ``temps`` float64 arrays of ``rows x n_anchors`` (the
    distances and its caller's work arrays); together they take at most
    ``budget`` pairs (and at most ``_CHUNK_PAIRS`` each), so the distances
    never take more than ``8 * budget`` bytes at a time.
    """
    pairs = min(_CHUNK_PAIRS, max(1, budget // max(1, temps)))
    return max(1, pairs // max(1, n_anchors))


def _pair_budget(n_samples, n_features):
    """Pairs of distance blocks: an eighth of the fit's input (X, y, t)."""
    return max(_MIN_PAIRS, n_samples * (n_features + 2) // 8)


def _distance_blocks(rows, anchors, temps=3, budget=_MIN_PAIRS):
    """Yield ``(start, distances)`` blocks of the rows-by-anchors distances.

    Each block is a fresh array that the caller may overwrite; ``temps``
    counts the block's arrays alive at once (three while it is computed).
    """
    step = _block_rows(anchors.shape[0], max(3, temps), budget)
    anchor_sq = np.einsum("ij,ij->i", anchors, anchors)
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step]
        sq = np.add(np.einsum("ij,ij->i", block, block)[:, None], anchor_sq)
        gram = block @ anchors.T
        gram *= 2.0
        sq -= gram
        del gram
        np.maximum(sq, 0.0, out=sq)
        yield start, np.sqrt(sq, out=sq)


def _hull_walk(dist, values, gain, run):
    """Anchors that attain ``max_j values_j - L dist_ij`` for some ``L >= 0``.

    ``values`` must be sorted in increasing order (and ``dist``'s columns
    with them). For each row, the maximizers over ``L >= 0`` are the
    vertices of the upper convex hull of the points ``(dist_ij, values_j)``
    to the left of the highest value: the walk starts at the nearest anchor
    (the maximizer as ``L`` grows without bound; the highest value among
    equally near ones) and moves, as ``L`` decreases, to the anchor whose
    line overtakes the current one first (the largest slope ``(values_j -
    values_c) / (dist_ij - dist_ic)``; the farthest of those tied), until no
    anchor has a higher value. Only anchors of higher value than the current
    ones can come next, so each step works on the columns past the lowest
    current one. ``gain`` and ``run`` are work arrays of ``dist``'s shape.
    Each step is vectorized over the block's rows; the loop runs over hull
    vertices (a few per row), not over units. Returns the column indices of
    the vertices met and each row's nearest distance.
    """
    index = np.arange(dist.shape[0])
    nearest = dist.min(axis=1)
    gain[...] = -np.inf
    np.copyto(gain, np.broadcast_to(values, gain.shape), where=dist == nearest[:, None])
    current = np.argmax(gain, axis=1)
    active = np.ones(dist.shape[0], dtype=bool)
    met = [current]
    while True:
        start = int(current[active].min()) + 1
        if start >= values.size:
            return np.concatenate(met), nearest
        g, r, d = gain[:, start:], run[:, start:], dist[:, start:]
        np.subtract(values[start:], values[current][:, None], out=g)
        np.subtract(d, dist[index, current][:, None], out=r)
        ahead = (g > 0) & (r > 0)
        np.divide(g, r, out=g, where=ahead)
        np.copyto(g, -np.inf, where=~ahead)
        del ahead
        best = g.max(axis=1)
        active &= best > -np.inf
        if not np.any(active):
            return np.concatenate(met), nearest
        np.copyto(r, -np.inf, where=g != best[:, None])
        current = np.where(active, start + np.argmax(r, axis=1), current)
        met.append(current[active])


def _active_anchors(rows, anchors, low_values, high_values, budget=_MIN_PAIRS):
    """Anchors that can be active in either extension, and nearest distances.

    Returns a boolean mask over ``anchors``: every anchor that attains the
    lower extension ``max_j low_j - L d(x, x_j)`` or the upper extension
    ``min_j high_j + L d(x, x_j)`` at some row ``x`` for some ``L >= 0``
    (ties to rounding may be represented by one of the tied anchors), and
    each row's distance to its nearest anchor. Both extensions, their
    crossing and the anchors they are linearized at are then the same over
    this subset as over all anchors, at every ``L``.
    """
    mark = np.zeros(anchors.shape[0], dtype=bool)
    nearest = np.empty(rows.shape[0])
    orders = [
        (np.argsort(low_values, kind="stable"), low_values),
        (np.argsort(-high_values, kind="stable"), -high_values),
    ]
    orders = [(order, values[order]) for order, values in orders]
    for start, dist in _distance_blocks(rows, anchors, 5, budget):
        gain, run = np.empty_like(dist), np.empty_like(dist)
        for order, values in orders:
            met, near = _hull_walk(dist[:, order], values, gain, run)
            mark[order[met]] = True
        nearest[start : start + dist.shape[0]] = near
    return mark, nearest


def _block_extension(dist, low_values, high_values, lipschitz, cand, with_args):
    """Lower / upper extensions of one block; ``dist`` is left unchanged."""
    index = np.arange(dist.shape[0])
    np.multiply(dist, lipschitz[:, None], out=cand)
    np.subtract(low_values, cand, out=cand)
    arg_lower = np.argmax(cand, axis=1)
    lower = cand[index, arg_lower]
    np.multiply(dist, lipschitz[:, None], out=cand)
    np.add(high_values, cand, out=cand)
    arg_upper = np.argmin(cand, axis=1)
    upper = cand[index, arg_upper]
    if with_args:
        return lower, upper, arg_lower, arg_upper
    return lower, upper


def _extension(rows, anchors, values, lipschitz, margin=0.0, budget=_MIN_PAIRS):
    """McShane-Whitney lower and upper Lipschitz extensions at ``rows``.

    ``lipschitz`` holds one constant per row. Returns the lower extension
    ``max_j (values_j - margin_j) - L d(x, x_j)``, the upper extension
    ``min_j (values_j + margin_j) + L d(x, x_j)`` and their arg-max / arg-min
    anchors.
    """
    low_values, high_values = values - margin, values + margin
    n = rows.shape[0]
    lower, upper = np.empty(n), np.empty(n)
    # anchor positions: int32 below 2**31 anchors (half of int64's bytes)
    dtype = index_dtype(anchors.shape[0])
    arg_lower, arg_upper = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype)
    for start, dist in _distance_blocks(rows, anchors, 3, budget):
        part = slice(start, start + dist.shape[0])
        lower[part], upper[part], arg_lower[part], arg_upper[part] = _block_extension(
            dist,
            low_values,
            high_values,
            lipschitz[part],
            np.empty_like(dist),
            True,
        )
    return lower, upper, arg_lower, arg_upper


def _crossing(rows, anchors, values, margin=0.0, budget=_MIN_PAIRS):
    """Smallest L at which each row's extension bracket is nonempty.

    Below it the anchors' values are not L-Lipschitz around the row; the
    bracket is then collapsed to the midpoint at the crossing. Returns the
    crossing constant, that midpoint, the two anchors that attain it and
    each row's distance to its nearest anchor. Each row's bisection is its
    own, so it runs block by block on distances computed once per block.
    """
    n = rows.shape[0]
    spread = float(values.max() - values.min())
    low_values, high_values = values - margin, values + margin
    nearest = np.full(n, np.inf)
    for start, dist in _distance_blocks(rows, anchors, 3, budget):
        nearest[start : start + dist.shape[0]] = dist.min(axis=1)
    scale = max(float(np.median(nearest)), 1e-12)
    crossing = np.empty(n)
    point = np.empty(n)
    # anchor positions: int32 below 2**31 anchors (half of int64's bytes)
    dtype = index_dtype(anchors.shape[0])
    arg_lower, arg_upper = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype)
    for start, dist in _distance_blocks(rows, anchors, 3, budget):
        part = slice(start, start + dist.shape[0])
        cand = np.empty_like(dist)
        hi = np.maximum(
            spread / (2.0 * np.maximum(nearest[part], 1e-9 * scale)) + 1e-300,
            np.finfo(np.float64).tiny,
        )
        lower, upper = _block_extension(
            dist, low_values, high_values, np.zeros(hi.size), cand, False
        )
        done = lower <= upper
        log_hi = np.log(hi)
        log_lo = log_hi - np.log(1e12)
        for _ in range(_CROSSING_STEPS):
            mid = 0.5 * (log_lo + log_hi)
            lower, upper = _block_extension(
                dist, low_values, high_values, np.exp(mid), cand, False
            )
            ok = lower <= upper
            log_hi = np.where(ok, mid, log_hi)
            log_lo = np.where(ok, log_lo, mid)
        crossing[part] = np.where(done, 0.0, np.exp(log_hi))
        lower, upper, arg_lower[part], arg_upper[part] = _block_extension(
            dist, low_values, high_values, crossing[part], cand, True
        )
        point[part] = 0.5 * (lower + upper)
    return crossing, point, arg_lower, arg_upper, nearest
