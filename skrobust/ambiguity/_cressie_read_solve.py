"""Exact solves of the Cressie-Read dual on losses rescaled to [0, 1].

The closed-form chi-square solve and the segment search with Brent's method
for a general exponent, used by :class:`CressieRead` and :class:`ChiSquare`.
"""

import numpy as np
from scipy.optimize import brentq

from skrobust.ambiguity._blocked import (
    _blocks,
    _masked_max,
    _masked_min,
    _masked_sum,
    _weights_on_max,
)

_EPS = np.finfo(np.float64).eps

# exponents below this are safe for exp / expm1 (exp(600) ~ 1e260)
_LOG_SAFE = 600.0


def _solve_chi2(z, p, c, log_c, max_iter=64):
    """Exact chi-square solve with no sort and no work array of n floats.

    Same decisions as the general path (all mass on the maximum; every sample
    active; otherwise an interior ``eta``), but the interior ``eta`` is found by
    the active-set iteration ``eta <- mu_A - sqrt(V_A / (c^2 P_A - 1))`` over
    ``A = {z > eta}`` started at ``eta = 0``. The surrogate built on ``A``
    majorizes the dual to the right of ``eta`` and has a nonnegative derivative
    at the optimum, so the iterates increase to the optimum without passing it,
    and stop when the active set no longer changes (then the segment formula
    is exact). The moments are summed over blocks (one work block, a quarter
    of ``z`` when ``p`` is an array, and the masked copies of a block), and
    ``q`` is built in ``z``: peak memory ``z``, ``p`` and two blocks.
    Returns ``None`` when ``max_iter`` passes do not settle the active set
    (adversarially spread losses), and the caller falls back to the sorted
    segment search.
    """
    two_rho = float(np.expm1(2.0 * log_c))
    # uniform p (a broadcast view) leaves room for a whole work vector
    blocks = _blocks(z.shape[0], count=2 if p.strides == (0,) else 4)
    mass_max = sum(float(p[block][z[block] >= 1.0].sum()) for block in blocks)
    if 2.0 * log_c + np.log(mass_max) >= 0.0:
        return 1.0, _weights_on_max(z, p, overwrite=True), np.array([1.0])
    mean = float(np.dot(p, z))
    work = np.empty(blocks[0].stop - blocks[0].start)
    var = 0.0
    for block in blocks:
        dev = np.subtract(z[block], mean, out=work[: z[block].shape[0]])
        var += float(np.einsum("i,i,i->", p[block], dev, dev))
    if two_rho * mean * mean <= var:
        # every sample active: mean + sqrt(2 rho Var), eta <= min z = 0
        t = min(np.sqrt(two_rho / var), 1.0 / mean)
        risk = mean + np.expm1(log_c + 0.5 * np.log1p(t * t * var)) / t
        del work
        z -= mean
        z *= t
        z += 1.0
        np.maximum(z, 0.0, out=z)
        z *= p
        z /= z.sum()
        return float(risk), z, np.array([mean - 1.0 / t])
    eta = 0.0
    c2 = c * c
    for _ in range(max_iter):
        mass = first = 0.0
        for block in blocks:
            z_block, p_block = z[block], p[block]
            buffer = work[: z_block.shape[0]]
            active = z_block > eta
            mass += float(p_block[active].sum())
            np.multiply(p_block, z_block, out=buffer)
            first += float(buffer[active].sum())
        mu = first / mass
        second = 0.0
        for block in blocks:
            z_block, p_block = z[block], p[block]
            buffer = work[: z_block.shape[0]]
            np.subtract(z_block, mu, out=buffer)
            buffer *= buffer
            buffer *= p_block
            second += float(buffer[z_block > eta].sum())
        v = second / mass
        slope = c2 * mass - 1.0
        if slope <= 0.0:
            return None
        new = mu - np.sqrt(v / slope)
        if not new > eta:
            break
        # the active set is final when no loss lies in (eta, new]
        settled = True
        for block in blocks:
            z_block = z[block]
            between = z_block > eta
            between &= z_block <= new
            if between.any():
                settled = False
                break
        eta = new
        if settled:
            break
    else:
        return None
    del work
    z -= eta
    np.maximum(z, 0.0, out=z)
    z /= z.max()  # scaled: no underflow of tiny excesses squared
    moment = float(np.einsum("i,i,i->", p, z, z))
    top = 1.0 - eta
    risk = top * c * np.sqrt(moment) + eta
    z *= p
    z /= z.sum()
    return float(risk), z, np.array([eta])


def _chi2_root(values, mass, c, z, p):
    """Closed-form minimizer of the chi-square dual over sorted segments.

    On the segment where the active set is the top ``m`` distinct losses (mass
    ``P``, mean ``mu``, variance ``V``), the dual is
    ``c * sqrt(P * (V + (mu - eta)^2)) + eta`` whose minimizer is
    ``mu - sqrt(V / (c^2 P - 1))``. Each candidate is clipped to its segment,
    where the segment formula equals the dual exactly, and the best is kept.
    """
    cum_mass = np.cumsum(mass)
    mean = np.cumsum(mass * values) / cum_mass
    second = np.cumsum(mass * values * values) / cum_mass
    var = np.maximum(second - mean * mean, 0.0)
    slope = c * c * cum_mass - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(
            slope > 0, np.sqrt(var / np.where(slope > 0, slope, 1.0)), np.inf
        )
    upper = values
    lower = np.append(values[1:], -np.inf)
    candidate = np.clip(mean - shift, lower, upper)
    finite = np.isfinite(candidate)
    dev = np.where(finite, mean - candidate, 0.0)
    objective = np.where(
        finite, c * np.sqrt(cum_mass * (var + dev * dev)) + candidate, np.inf
    )
    best = int(np.argmin(objective))
    # polish on the chosen segment with moments computed directly (two-pass)
    active = z > lower[best]
    pa = p[active]
    mass_a = pa.sum()
    mu = np.dot(pa, z[active]) / mass_a
    v = np.dot(pa, (z[active] - mu) ** 2) / mass_a
    slope_a = c * c * mass_a - 1.0
    if slope_a <= 0:
        return float(candidate[best])
    return float(np.clip(mu - np.sqrt(v / slope_a), lower[best], upper[best]))


def _power_times_p(x, p, power):
    """Overwrite ``x`` with ``p * x**power``, block by block.

    Returns ``sum(p * x**power * x)`` (with the ``x`` before the overwrite),
    the moment the Cressie-Read risk needs.
    """
    moment = 0.0
    for block in _blocks(x.shape[0]):
        x_block = x[block]
        weighted = x_block**power
        weighted *= p[block]
        moment += float(np.dot(weighted, x_block))
        np.copyto(x_block, weighted)
    return moment


def _excess_moments(z, p, eta, s):
    """``E_p[e^(s-1)]`` and ``E_p[e^s]`` of ``e = (z - eta)_+ / (1 - eta)``.

    ``1 - eta`` is the largest excess (the maximum of ``z`` is 1). Summed over
    blocks, so that only block-sized temporaries are made.
    """
    top = 1.0 - eta
    low = high = 0.0
    # uniform p (a broadcast view): halves, as only z is a vector of n floats
    for block in _blocks(z.shape[0], count=2 if p.strides == (0,) else 4):
        excess = np.subtract(z[block], eta)
        np.maximum(excess, 0.0, out=excess)
        excess /= top
        lower = excess ** (s - 1.0)
        p_block = p[block]
        low += float(np.dot(p_block, lower))
        lower *= excess
        high += float(np.dot(p_block, lower))
    return low, high


def _cressie_read_root(z, p, s, c):
    """Root of the dual's derivative for a general exponent ``s = k / (k-1)``.

    The derivative ``1 - c E[(z-eta)^(s-1)] / E[(z-eta)^s]^((s-1)/s)`` (over
    ``z > eta``) is continuous and nondecreasing in ``eta``. A bisection over
    the distinct losses (:func:`_root_segment`, without sorting them all)
    finds the segment between two consecutive ones that holds its root;
    Brent's method finds the root.
    """

    def derivative(eta):
        # the ratio is scale-free: dividing by the largest excess (whose mass
        # is positive) keeps both moments positive and finite for any exponent
        low, high = _excess_moments(z, p, eta, s)
        return 1.0 - c * low / high ** ((s - 1.0) / s)

    # the smallest loss is 0 and the largest 1; just below 1 the derivative
    # is positive here
    if derivative(0.0) > 0:
        # root lies below the smallest loss: expand the bracket downwards
        upper = 0.0
        step = 1.0
        lower = upper - step
        while derivative(lower) > 0:
            step *= 2.0
            lower = upper - step
    else:
        upper, lower = _root_segment(z, derivative)
        if derivative(lower) == 0:
            return float(lower)
        if upper >= 1.0:
            # derivative(1) is evaluated with an empty active set
            upper = np.nextafter(1.0, -np.inf)
            if derivative(upper) <= 0:
                return float(upper)
    return float(
        brentq(derivative, lower, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    )


def _root_segment(z, derivative):
    """Consecutive distinct values ``upper > lower`` of ``z`` around the root.

    ``derivative`` is nondecreasing, ``derivative(0) <= 0`` and it is positive
    just below 1 (the smallest and largest value of ``z``). Returns the
    segment with ``derivative(lower) <= 0 < derivative(upper)`` (or ``upper =
    1``), the one a bisection over all the sorted distinct values finds. Probes
    come from sorted strided samples of the values inside the current segment
    (about ``log2(n)`` evaluations in all); the values inside are copied out
    and sorted only once at most an eighth of them remain.
    """
    upper, lower = 1.0, 0.0
    n = z.shape[0]
    limit = max(n // 8, 64)
    while True:
        inside = z > lower
        inside &= z < upper
        count = int(np.count_nonzero(inside))
        if count == 0:
            return upper, lower
        if count <= limit:
            probes = np.unique(z[inside])[::-1]
            del inside
            exact = True
        else:
            del inside
            step = max(n // 4096, 16)
            sample = z[::step]
            sample = sample[(sample > lower) & (sample < upper)]
            if sample.size == 0:
                # no sample inside: probe the midpoint in bit space
                low_bits = int(np.float64(lower).view(np.uint64))
                high_bits = int(np.float64(upper).view(np.uint64))
                middle = np.uint64(low_bits + (high_bits - low_bits) // 2)
                sample = np.array([middle.view(np.float64)])
            probes = np.unique(sample)[::-1]
            exact = False
        # bisection over the descending probes: index -1 is `upper`, and
        # probes.size is `lower`
        i, j = -1, probes.shape[0]
        while j - i > 1:
            mid = (i + j) // 2
            if derivative(probes[mid]) > 0:
                i = mid
            else:
                j = mid
        if i >= 0:
            upper = float(probes[i])
        if j < probes.shape[0]:
            lower = float(probes[j])
        if exact:
            return upper, lower


def _boundary_atom(z, p, s, c, eta):
    """Exact solution when the optimal eta sits within rounding of a loss.

    For large ``k`` the exponent ``s - 1 = 1 / (k - 1)`` of the worst-case
    weights ``q ~ p (z - eta)_+^(s-1)`` is tiny, so the lowest active loss
    ``v`` keeps a sizeable weight ``p_v delta^(s-1)`` even when its excess
    ``delta = v - eta`` is far below the resolution of ``eta`` in floating
    point. Here ``u = delta^(s-1)`` is solved in closed form from the
    stationarity condition ``c (L + m_v u) = H^((s-1)/s)``, with ``L`` and
    ``H`` the moments of the excesses over ``v`` of the losses above it (the
    ``delta`` in them is negligible). Returns ``None`` unless ``delta`` is
    below ``1e-13 / (s - 1)`` of every gap to a neighbouring loss; above that
    the float ``eta`` resolves the weights on its own. The moments are summed
    over blocks, and the weights (when returned) are built in ``z``.
    """
    eps = s - 1.0
    # eta may have rounded onto v itself
    v = _masked_min(z, np.greater_equal, eta)
    if not v < 1.0:  # no loss at or above eta, or none above v (max z = 1)
        return None
    top = 1.0 - v  # the largest excess over v
    blocks = _blocks(z.shape[0])
    low = high = 0.0
    for block in blocks:
        y = np.subtract(z[block], v)
        np.maximum(y, 0.0, out=y)  # losses at or below v: 0, no weight
        y /= top
        p_block = p[block]
        low += float(np.dot(p_block, y**eps))
        high += float(np.dot(p_block, y**s))
    mass_v = _masked_sum(p, z, np.equal, v)
    below = _masked_max(z, np.less, v)
    u = (high ** (eps / s) / c - low) / mass_v if mass_v > 0.0 else 0.0
    if not 0.0 < u < 1.0:
        return _anchored_solve(z, p, s, c, v, below, v - eta, None)
    log_delta = np.log(top) + np.log(u) / eps
    gaps = [_masked_min(z, np.greater, v) - v]
    if below > -np.inf:
        gaps.append(v - below)
    # neglecting delta next to the gaps moves the other weights by a factor
    # (1 + delta / gap)^eps: keep that below 1e-13
    if log_delta > np.log(1e-13 * min(gaps) / eps):
        # delta is not negligible next to the gaps; when it is still far
        # below the resolution of the float eta, solve for it anchored at v
        return _anchored_solve(z, p, s, c, v, below, v - eta, log_delta)
    delta = float(np.exp(log_delta))
    for block in blocks:
        z_block, p_block = z[block], p[block]
        y = np.subtract(z_block, v)
        np.maximum(y, 0.0, out=y)
        y /= top
        weights = y**eps
        weights *= p_block
        at_v = z_block == v
        weights[at_v] = p_block[at_v] * u
        np.copyto(z_block, weights)
    z /= z.sum()
    risk = top * c * high ** (1.0 / s) + v - delta
    return float(risk), z, np.array([v - delta])


def _anchored_solve(z, p, s, c, v, below, delta_float, log_guess):
    """Solve for ``delta = v - eta`` directly when eta sits just below a loss.

    ``v`` is the smallest loss at or above the float ``eta`` and ``below``
    the largest loss under ``v`` (``-inf`` if none). When ``delta`` is tiny
    next to ``v - below`` (and to the unit spread), the float ``eta`` (or
    ``mean - 1/t`` in the all-active solve) resolves it only to ~1e-15 in
    absolute terms, while the weight ``p_v delta^(s-1)`` at ``v`` needs it to
    a relative accuracy. Here the excesses are formed as ``(z - v) + delta``,
    exact to rounding for every ``delta`` in ``(0, v - below)``, where the
    active set is ``{z >= v}``, and Brent's method finds ``log delta`` on the
    decreasing derivative ``1 - c E[e^(s-1)] / E[e^s]^((s-1)/s)``. Returns
    ``None`` (the caller keeps the float solution) when ``delta`` is not
    small or no bracket is found; the weights, when returned, are built in
    ``z``. Moments are summed over blocks.
    """
    gap = v - below  # inf when v is the smallest loss
    if not delta_float <= 1e-4 * min(gap, 1.0):
        return None
    eps = s - 1.0
    top = 1.0 - v  # the excesses are scaled by this (v < 1)
    blocks = _blocks(z.shape[0])

    def moments(delta):
        low = high = 0.0
        for block in blocks:
            y = np.subtract(z[block], v)
            active = y >= 0.0
            y += delta
            y /= top
            y[~active] = 0.0
            lower = y**eps
            p_block = p[block]
            low += float(np.dot(p_block, lower))
            lower *= y
            high += float(np.dot(p_block, lower))
        return low, high

    def derivative(log_delta):
        low, high = moments(float(np.exp(log_delta)))
        return 1.0 - c * low / high ** (eps / s)

    # the derivative decreases in delta (increases in eta); bracket log delta
    if delta_float > 0.0:
        start = float(np.log(delta_float))
    elif log_guess is not None:
        start = float(log_guess)
    else:
        start = float(np.log(1e-4 * min(gap, 1.0)))
    ceiling = float(np.log(gap)) if gap < np.inf else np.inf
    high_x = min(start + 1.0, ceiling)
    step = 1.0
    while derivative(high_x) > 0.0:
        if high_x >= ceiling:
            return None
        step *= 2.0
        high_x = min(start + step, ceiling)
    low_x = start - 1.0
    step = 1.0
    floor = float(np.log(np.finfo(np.float64).tiny))
    while derivative(low_x) <= 0.0:
        if low_x <= floor:
            return None
        step *= 2.0
        low_x = max(start - step, floor)
    if low_x >= high_x:
        return None
    log_delta = brentq(derivative, low_x, high_x, xtol=1e-13, rtol=8 * _EPS)
    delta = float(np.exp(log_delta))
    _, high = moments(delta)
    for block in blocks:
        z_block, p_block = z[block], p[block]
        y = np.subtract(z_block, v)
        active = y >= 0.0
        y += delta
        y /= top
        y[~active] = 0.0
        weights = y**eps
        weights *= p_block
        np.copyto(z_block, weights)
    z /= z.sum()
    risk = top * c * high ** (1.0 / s) + v - delta
    return float(risk), z, np.array([v - delta])


def _log_moments(z, mean, p, s, t):
    """log E[(1 + t dev)^(s-1)] and log E[(1 + t dev)^s], stable for small t.

    ``dev = z - mean``, with ``max z = 1``; summed over blocks, so that only
    block-sized temporaries are made.
    """
    # the largest log-base, at the largest loss (every step is monotone)
    top = float(np.log1p(max(t * (1.0 - mean), -1.0)))
    large = s * top >= _LOG_SAFE  # large exponents (k near 1)
    low = high = 0.0
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf gives weight 0
        for block in _blocks(z.shape[0]):
            log_base = np.subtract(z[block], mean)
            log_base *= t
            np.maximum(log_base, -1.0, out=log_base)
            np.log1p(log_base, out=log_base)
            p_block = p[block]
            if not large:
                low += float(np.dot(p_block, np.expm1((s - 1.0) * log_base)))
                high += float(np.dot(p_block, np.expm1(s * log_base)))
            else:
                # factor out the largest base
                log_base -= top
                lower = np.exp((s - 1.0) * log_base)
                low += float(np.dot(p_block, lower))
                np.exp(log_base, out=log_base)
                lower *= log_base
                high += float(np.dot(p_block, lower))
    if not large:
        return np.log1p(low), np.log1p(high)
    return (s - 1.0) * top + np.log(low), s * top + np.log(high)


def _all_active_derivative(z, mean, p, s, log_c, t):
    """Dual derivative at eta = mean - 1/t when every loss exceeds eta.

    With u = mean - eta = 1/t, the derivative ``1 - c E[(z-eta)^(s-1)] /
    E[(z-eta)^s]^((s-1)/s)`` equals ``-expm1(log c + log-ratio)`` where the
    moments are of ``1 + t (z - mean)``; this form keeps full precision when
    eta is far below the losses (tiny radii).
    """
    low, high = _log_moments(z, mean, p, s, t)
    return -np.expm1(log_c + low - (s - 1.0) / s * high)


def _solve_all_active(z, mean, p, k, s, log_c):
    """Exact solve when the optimal eta lies below every loss.

    The optimum is parametrized by t = 1 / (mean - eta). For k = 2 it is in
    closed form, ``risk = mean + sqrt(2 rho Var)``; otherwise Brent's method
    finds log t. The risk is evaluated as ``mean + expm1(log c + log E[(1 + t
    dev)^s] / s) / t`` to avoid cancelling two large numbers. Returns
    ``(risk, t)``; the caller builds the weights.
    """
    t_max = 1.0 / mean  # eta = 0, the smallest loss

    def derivative(log_t):
        return _all_active_derivative(z, mean, p, s, log_c, np.exp(log_t))

    if k == 2.0:
        var = 0.0
        for block in _blocks(z.shape[0]):
            dev = np.subtract(z[block], mean)
            var += float(np.einsum("i,i,i->", p[block], dev, dev))
        # 2 rho = expm1(2 log c)
        t = np.sqrt(np.expm1(2.0 * log_c) / var)
    else:
        upper = np.log(t_max)
        lower = upper - 1.0
        while derivative(lower) > 0:
            lower -= 2.0 * abs(lower) + 1.0
        if derivative(upper) <= 0.0:
            # the caller saw a derivative >= 0 at eta = 0 up to rounding (flat
            # derivatives at large k): the optimum is eta = 0 itself
            t = t_max
        else:
            t = np.exp(brentq(derivative, lower, upper, xtol=1e-14, rtol=8 * _EPS))
    t = min(t, t_max)
    _, high = _log_moments(z, mean, p, s, t)
    risk = mean + np.expm1(log_c + high / s) / t
    return float(risk), float(t)
