"""Exact CVaR solves: the value at risk by weighted selection, the weights.

Used by :class:`CVaR` and :class:`TotalVariation`; everything works in
blocks of rows, so no mask or temporary of n entries is built.
"""

import numpy as np
from scipy.special import expit

from skrobust.ambiguity._blocked import _blocks

_EPS = np.finfo(np.float64).eps


def _smoothed_quantile(losses, p, mass, tau, eta, scale):
    """Root in eta of ``sum(p * sigmoid((losses - eta) / tau)) = mass``.

    Newton's method from ``eta``, safeguarded by bisection once a sign change
    is bracketed, to machine precision (``scale`` sets the absolute floor).
    """
    tau = float(tau)
    # f(eta) = E_p[sigmoid((l - eta) / tau)] - mass is decreasing in eta;
    # lo keeps f > 0, hi keeps f < 0.
    lo, hi = -np.inf, np.inf
    for _ in range(200):
        sig = expit((losses - eta) / tau)
        value = float(np.dot(p, sig)) - mass
        if value == 0.0:
            break
        if value > 0:
            lo = eta
        else:
            hi = eta
        slope = float(np.dot(p, sig * (1.0 - sig))) / tau
        new = eta + value / slope if slope > 0 else np.nan
        if abs(new - eta) <= 4 * _EPS * scale:  # a Newton step below rounding
            eta = new
            break
        if np.isfinite(lo) and np.isfinite(hi):
            if not lo < new < hi:
                new = 0.5 * (lo + hi)
        elif not np.isfinite(new) or abs(new - eta) > 50.0 * tau + abs(eta):
            # open bracket and no useful Newton step: move by a doubling step
            step = 50.0 * tau + abs(eta)
            new = eta + step if value > 0 else eta - step
        if abs(new - eta) <= 4 * _EPS * scale or hi - lo <= 4 * _EPS * scale:
            eta = new
            break
        eta = new
    return eta


def _cvar_solution(z, p, alpha, var, delta=0.0):
    """CVaR at value at risk ``var`` and its worst case, built in ``z``.

    The weights are ``min(p / alpha, 1)`` above ``var`` and the remaining
    mass on the ties at ``var``, in proportion to ``p``. With ``delta > 0``
    (total variation) the weights are mixed, ``(1 - delta) q + delta q_max``,
    with ``q_max`` all mass on the largest value, 1. Two passes over blocks:
    the sums, then the weights written over ``z`` (which is returned as
    ``q``), so that only block-sized temporaries sit beside ``z`` and ``p``.

    Returns ``(cvar, q)``.
    """
    if p.strides == (0,):
        # uniform p (a broadcast view) leaves room for q beside z, in one pass
        return _cvar_solution_uniform(z, p, alpha, var, delta)
    blocks = _blocks(z.shape[0])
    total = dot_above = mass_tie = mass_max = 0.0
    with np.errstate(over="ignore"):  # subnormal alpha: caps bind at 1
        for block in blocks:
            z_block, p_block = z[block], p[block]
            capped = np.divide(p_block, alpha)
            np.minimum(capped, 1.0, out=capped)
            capped[z_block <= var] = 0.0
            total += float(capped.sum())
            dot_above += float(np.dot(capped, z_block))
            mass_tie += float(p_block[z_block == var].sum())
            if delta:
                mass_max += float(p_block[z_block >= 1.0].sum())
        room = min(mass_tie / alpha, 1.0)
        rest = min(max(1.0 - total, 0.0), room)
        risk = dot_above + rest * var  # exact when all mass is tied
        for block in blocks:
            z_block, p_block = z[block], p[block]
            capped = np.divide(p_block, alpha)
            np.minimum(capped, 1.0, out=capped)
            capped[z_block <= var] = 0.0
            tie = z_block == var
            capped[tie] = rest * (p_block[tie] / mass_tie)
            if delta:
                capped *= 1.0 - delta
                on_max = z_block >= 1.0
                capped[on_max] += delta * (p_block[on_max] / mass_max)
            np.copyto(z_block, capped)
    return float(risk), z


def _cvar_solution_uniform(z, p, alpha, var, delta):
    """:func:`_cvar_solution` for a broadcast ``p``: q in its own array."""
    with np.errstate(over="ignore"):  # subnormal alpha: caps bind at 1
        q = np.divide(p, alpha)
        np.minimum(q, 1.0, out=q)
        q[z <= var] = 0.0
        tie = z == var
        mass_tie = float(p[tie].sum())
        room = min(mass_tie / alpha, 1.0)
    rest = min(max(1.0 - float(q.sum()), 0.0), room)
    risk = float(np.dot(q, z)) + rest * var  # exact when all mass is tied
    q[tie] = rest * (p[tie] / mass_tie)
    del tie
    if delta:
        on_max = z >= 1.0
        mass_max = float(p[on_max].sum())
        q *= 1.0 - delta
        q[on_max] += delta * (p[on_max] / mass_max)
    return risk, q


#: candidate sets at most this large are sorted
_SELECT_SMALL = 2048
#: largest strided sample that brackets the value at risk
_SELECT_SAMPLE = 4096


def _value_at_risk(z, p, alpha):
    """Largest value ``v`` of ``z`` with ``sum(p[z >= v]) >= alpha``.

    ``z`` must be nonnegative. The mass condition has a relative slack of
    1e-12 so that rounding in the sums never skips the group where it is met.
    Uniform ``p`` (a broadcast view): a quickselect over ranks. Otherwise a
    weighted selection in expected O(n) that never copies ``z`` or ``p`` whole
    (see :func:`_weighted_value_at_risk`).
    """
    if p.strides == (0,):
        return _uniform_value_at_risk(z, p, alpha)
    return _weighted_value_at_risk(z, p, alpha)


def _uniform_value_at_risk(z, p, alpha):
    """Quickselect (median pivots from ``np.partition``) for uniform ``p``.

    The first pivot is where the target is met for equal weights, usually
    the answer. Peak memory: ``z``, one partitioned copy, masks.
    """
    target = alpha * (1.0 - 1e-12)
    above = 0.0  # mass of the values above every remaining candidate
    share = min(max(1.0 - target / max(float(p.sum()), target), 0.0), 1.0)
    rank = min(int(share * z.size), z.size - 1)
    while z.size > 64:
        if rank is None:
            rank = z.size // 2
        pivot = np.partition(z, rank)[rank]
        rank = None
        # (compressed sums are pairwise, accurate well within the slack)
        upper = z > pivot
        p_upper = p[upper]
        mass_upper = float(p_upper.sum())
        if above + mass_upper >= target:
            z, p = z[upper], p_upper
            continue
        mass_tie = float(p[z == pivot].sum())
        if above + mass_upper + mass_tie >= target:
            return pivot
        above += mass_upper + mass_tie
        lower = z < pivot
        if not lower.any():  # rounding left the target unmet: the smallest value
            return pivot
        z, p = z[lower], p[lower]
    order = np.argsort(-z, kind="stable")
    crossed = np.searchsorted(above + np.cumsum(p[order]), target)
    return z[order[min(int(crossed), z.size - 1)]]


def _weighted_value_at_risk(z, p, alpha):
    """The value at risk for general weights, without copying ``z`` or ``p``.

    A strided sample of the candidates brackets the value (two sample values
    around the estimated crossing, a Floyd-Rivest step); one pass over blocks
    sums the masses above and inside the bracket and copies the candidates
    inside it (about a tenth) out, until few enough remain to sort. When the
    bracket misses, the range of candidate values is narrowed instead (and
    halved in bit space if a sample cannot bracket it). Peak memory: ``z``,
    ``p``, block-sized masks and the copied candidates (at most an eighth).
    """
    target = alpha * (1.0 - 1e-12)
    above = 0.0  # mass of the values above every candidate
    lo, hi = 0.0, np.inf  # the candidates are the values in [lo, hi] of zc
    zc, pc = z, p
    ranged = False  # whether zc also holds values outside [lo, hi]
    inside = float(np.sum(p))  # mass of the candidates
    count = z.size  # number of candidates
    limit = max(z.size // 8, 64)  # most candidates copied out
    small = min(_SELECT_SMALL, limit)  # most candidates sorted
    bisect = False  # set when a bracket missed: the next pivot is a midpoint
    while True:
        if ranged and count <= limit:
            zc, pc = _collect(zc, pc, lo, hi)
            ranged = False
        if zc.size <= small and not ranged:
            if zc.size == 0:
                return lo
            order = np.argsort(-zc, kind="stable")
            crossed = np.searchsorted(above + np.cumsum(pc[order]), target)
            return zc[order[min(int(crossed), zc.size - 1)]]
        lo_piv = hi_piv = None
        if not bisect:
            lo_piv, hi_piv = _bracket(zc, pc, lo, hi, ranged, above, inside, target)
        if lo_piv is None:
            # a midpoint of the range in bit space: at most 64 halvings
            top = min(hi, float(np.max(zc)))
            low_bits = int(np.float64(lo).view(np.uint64))
            high_bits = int(np.float64(top).view(np.uint64))
            middle_bits = np.uint64(low_bits + (high_bits - low_bits) // 2)
            lo_piv = hi_piv = float(middle_bits.view(np.float64))
        bisect = False
        # one pass: masses above and inside [lo_piv, hi_piv], and the
        # candidates inside it while they are few
        mass_upper = mass_middle = 0.0
        n_upper = n_middle = 0
        parts = []
        for block in _blocks(zc.shape[0], count=8):
            z_block, p_block = zc[block], pc[block]
            upper = z_block > hi_piv
            middle = z_block >= lo_piv
            if ranged:
                in_range = z_block >= lo
                in_range &= z_block <= hi
                upper &= in_range
                middle &= in_range
            middle &= ~upper
            p_upper = p_block[upper]
            mass_upper += float(p_upper.sum())
            n_upper += p_upper.shape[0]
            p_middle = p_block[middle]
            mass_middle += float(p_middle.sum())
            n_middle += p_middle.shape[0]
            if parts is not None:
                if n_middle <= limit:
                    parts.append((z_block[middle], p_middle))
                else:
                    parts = None
        if above + mass_upper >= target:
            # the crossing is above the bracket
            lo = float(np.nextafter(hi_piv, np.inf))
            inside, count, ranged, bisect = mass_upper, n_upper, True, True
            continue
        if above + mass_upper + mass_middle >= target:
            if lo_piv == hi_piv:
                return lo_piv
            above += mass_upper
            lo, hi, inside = lo_piv, hi_piv, mass_middle
            bisect = n_middle == count  # the bracket held every candidate
            count = n_middle
            if parts is not None:
                zc = np.concatenate([part[0] for part in parts])
                pc = np.concatenate([part[1] for part in parts])
                ranged = False
            else:
                ranged = True
            continue
        # the crossing is below the bracket
        above += mass_upper + mass_middle
        remaining = count - n_upper - n_middle
        if remaining <= 0:
            # rounding left the target unmet: the smallest candidate value
            keep = (zc >= lo) & (zc <= hi) if ranged else slice(None)
            return float(np.min(zc[keep]))
        hi, count = float(np.nextafter(lo_piv, -np.inf)), remaining
        inside = max(inside - mass_upper - mass_middle, 0.0)
        ranged, bisect = True, True


def _collect(zc, pc, lo, hi):
    """The candidates with values in ``[lo, hi]``, copied block by block."""
    parts_z, parts_p = [], []
    for block in _blocks(zc.shape[0], count=16):
        z_block = zc[block]
        keep = z_block >= lo
        keep &= z_block <= hi
        parts_z.append(z_block[keep])
        parts_p.append(pc[block][keep])
    return np.concatenate(parts_z), np.concatenate(parts_p)


def _bracket(zc, pc, lo, hi, ranged, above, inside, target):
    """Two candidate values around the estimated crossing of ``target``.

    From a strided sample of the candidates, sorted in decreasing order with
    its masses scaled to the candidates' mass ``inside``: the sample values
    about ``3 sqrt(sample size)`` places before and after the estimated
    crossing (``hi``/``lo`` of the range where that runs off the sample).
    Returns ``(None, None)`` when the sample cannot bracket anything.
    """
    # a sample of at most a sixteenth of the candidates (memory)
    step = max(zc.size // _SELECT_SAMPLE, 16)
    zs, ps = zc[::step], pc[::step]
    if ranged:
        keep = (zs >= lo) & (zs <= hi)
        zs, ps = zs[keep], ps[keep]
    if zs.size < 32:
        return None, None
    order = np.argsort(-zs, kind="stable")
    zs, ps = zs[order], ps[order]
    cum = np.cumsum(ps)
    if not cum[-1] > 0.0:
        cum = np.arange(1.0, zs.size + 1.0)
    crossed = int(np.searchsorted(above + cum * (inside / cum[-1]), target))
    gap = int(3.0 * np.sqrt(zs.size)) + 2
    if crossed - gap <= 0 and crossed + gap >= zs.size - 1:
        return None, None
    hi_piv = float(zs[crossed - gap]) if crossed - gap > 0 else hi
    lo_piv = float(zs[min(crossed + gap, zs.size - 1)])
    if crossed + gap >= zs.size - 1:
        lo_piv = lo  # the bracket reaches the bottom of the range
    return lo_piv, hi_piv
