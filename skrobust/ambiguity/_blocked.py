"""Blocked numpy helpers shared by the exact solves of the ambiguity sets.

Masked sums, minima and maxima and the weights on the maximum, computed over
blocks of rows (:func:`_blocks`), so no mask or temporary of n entries is
built.
"""

import numpy as np


def _group_descending(z, p):
    """Unique values of ``z`` in decreasing order, their total mass and index."""
    values, inverse = np.unique(z, return_inverse=True)
    mass = np.bincount(inverse, weights=p, minlength=values.shape[0])
    values = values[::-1]
    mass = mass[::-1]
    inverse = values.shape[0] - 1 - inverse
    return values, mass, inverse


def _weights_on_max(z, p, overwrite=False):
    """All mass on the largest loss, split in proportion to ``p`` among ties.

    With ``overwrite=True`` the weights are built in ``z``'s buffer.
    """
    top = z.max()
    q = z if overwrite else np.empty_like(z, dtype=np.float64)
    for block in _blocks(z.shape[0]):
        z_block = z[block]
        weights = np.where(z_block >= top, p[block], 0.0)
        np.copyto(q[block], weights)
    q /= q.sum()
    return q


def _masked_sum(x, z, compare, value):
    """``x[compare(z, value)].sum()`` over blocks (no mask or copy of n entries).

    ``compare`` is a comparison ufunc such as ``np.greater_equal``.
    """
    if z.shape[0] <= _MIN_BLOCK:  # one block: no generator (mini-batches)
        return float(x[compare(z, value)].sum())
    return float(
        sum(
            float(x[block][compare(z[block], value)].sum())
            for block in _blocks(z.shape[0])
        )
    )


def _masked_min(z, compare, value):
    """The smallest ``z`` with ``compare(z, value)`` (``inf`` if none), in blocks."""
    if z.shape[0] <= _MIN_BLOCK:
        return float(z[compare(z, value)].min(initial=np.inf))
    return float(
        min(
            float(z[block][compare(z[block], value)].min(initial=np.inf))
            for block in _blocks(z.shape[0])
        )
    )


def _masked_max(z, compare, value):
    """The largest ``z`` with ``compare(z, value)`` (``-inf`` if none), in blocks."""
    if z.shape[0] <= _MIN_BLOCK:
        return float(z[compare(z, value)].max(initial=-np.inf))
    return float(
        max(
            float(z[block][compare(z[block], value)].max(initial=-np.inf))
            for block in _blocks(z.shape[0])
        )
    )


#: smallest block of :func:`_blocks`
_MIN_BLOCK = 1024


def _blocks(n, count=4):
    """Slices of ``range(n)`` in about ``count`` blocks of at least 1024.

    Loops over these (not over samples) keep the masks and temporaries of an
    operation to a fraction of a vector of ``n`` floats.
    """
    if n <= _MIN_BLOCK:
        return [slice(0, n)]
    step = max(_MIN_BLOCK, -(-n // count))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]
