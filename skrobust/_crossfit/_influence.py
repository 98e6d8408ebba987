"""Influence-function inference of the cross-fitting engine.

Every cross-fitted estimate here is a (weighted) mean of per-sample scores;
its influence function is the centred score, its standard error
:func:`influence_stderr`, its interval :func:`normal_interval`.
"""

import numpy as np
from scipy import stats

from skrobust.utils import ConfidenceInterval


def normal_interval(estimate, stderr, confidence_level):
    """Two-sided normal interval ``estimate -/+ z * stderr``.

    Parameters
    ----------
    estimate, stderr : float or ndarray
        Point estimate(s) and standard error(s).
    confidence_level : float in (0, 1)
        ``z`` is the ``(1 + confidence_level) / 2`` normal quantile.

    Returns
    -------
    interval : ConfidenceInterval
        ``(low, high)``, floats or arrays like ``estimate``.
    """
    z = stats.norm.ppf(0.5 + 0.5 * confidence_level)
    return ConfidenceInterval(estimate - z * stderr, estimate + z * stderr)


def influence_stderr(infl, sample_weight=None, axis=None):
    """Standard error ``sqrt(sum(w * infl**2)) / sum(w)`` of an influence function.

    The weights are frequency weights (a unit of weight 2 counts as two
    units); ``None`` gives ``sqrt(mean(infl**2) / n)``.
    """
    # max |infl| without an |infl| temporary
    top = float(np.maximum(np.max(infl), -np.min(infl))) if infl.size else 0.0
    if top > 0 and np.isfinite(top) and not 1e-100 < top < 1e100:
        # squares of values beyond 1e+-150 over- or underflow: work in the
        # units of the largest value (a temporary, at extreme scales only)
        return top * influence_stderr(infl / top, sample_weight, axis)
    if infl.ndim == 1 or (infl.ndim == 2 and axis == 0):
        # sums of squares without an (n,)-sized temporary
        spec = "i,i->" if infl.ndim == 1 else "ij,ij->j"
        if sample_weight is None:
            return np.sqrt(np.einsum(spec, infl, infl)) / infl.shape[0]
        spec = "i," + spec
        squares = np.einsum(spec, sample_weight, infl, infl)
        return np.sqrt(squares) / np.sum(sample_weight)
    if sample_weight is None:
        return np.sqrt(np.mean(infl**2, axis=axis) / infl.shape[0])
    w = sample_weight if infl.ndim == 1 else sample_weight[:, None]
    return np.sqrt(np.sum(w * infl**2, axis=axis)) / np.sum(sample_weight)


def weighted_mean(values, sample_weight):
    """Mean over units (axis 0) under frequency weights (``None``: plain)."""
    if sample_weight is None:
        return values.mean(axis=0)
    return np.tensordot(sample_weight, values, axes=1) / sample_weight.sum()


def mean_and_influence(phi, sw=None, overwrite=False):
    """Means of the columns of ``phi`` and its centred columns.

    ``overwrite=True`` centres ``phi`` in place (the caller's array).
    """
    psi = weighted_mean(phi, sw)
    if overwrite:
        phi -= psi
        return psi, phi
    return psi, phi - psi
