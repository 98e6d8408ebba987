"""Conditional value at risk: the worst subpopulation of mass alpha."""

from numbers import Real

import numpy as np
from scipy.special import expit
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._base import ReweightingAmbiguitySet, _blocks

_EPS = np.finfo(np.float64).eps


class CVaR(ReweightingAmbiguitySet):
    """Conditional value at risk: all subpopulations of mass at least alpha.

    The set is :math:`\\{Q : dQ/dP_n \\le 1/\\alpha\\}`, the mixture components
    of weight at least :math:`\\alpha` of :math:`P_n`. Its robust risk is the
    average of the largest :math:`\\alpha`-fraction of the losses,

    .. math::

        \\mathrm{CVaR}_\\alpha(\\ell) = \\inf_{\\eta} \\Big\\{ \\eta +
        \\frac{1}{\\alpha} E_{P_n}[(\\ell - \\eta)_+] \\Big\\},

    computed exactly in O(n) time: :math:`\\eta^\\star` is the
    :math:`(1-\\alpha)`-quantile of the weighted losses (value at risk), found
    by a weighted quickselect without sorting, and the worst case puts weight
    :math:`p_i/\\alpha` on every loss above it and the remaining mass on it.
    Tied losses at the quantile share the remaining mass in proportion to
    their nominal weights.

    The dual objective is piecewise linear. :meth:`dual_objective` with
    ``smoothing=tau > 0`` replaces :math:`(x)_+` by the softplus
    :math:`\\tau \\log(1 + e^{x/\\tau})`, which overestimates it by at most
    :math:`\\tau \\log 2`; joint solvers shrink ``tau`` until the bound on the
    suboptimality this causes, :math:`\\tau \\log 2 / \\alpha`, is below their
    tolerance, and report the exact CVaR of the solution.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------
    alpha : float, default=0.1
        Smallest subpopulation mass, in (0, 1]. ``alpha=1`` gives the mean.

    See Also
    --------
    CressieRead : Smooth divergence balls; CVaR is their limit as ``k -> inf``.

    References
    ----------
    .. [1] Rockafellar, R. T. and Uryasev, S. (2000). "Optimization of
       conditional value-at-risk." Journal of Risk 2.
    .. [2] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import CVaR
    >>> losses = np.arange(10.0)
    >>> CVaR(alpha=0.2).risk(losses)  # mean of the two largest
    8.5
    >>> CVaR(alpha=0.2).worst_case_weights(losses)[-3:]
    array([0. , 0.5, 0.5])
    """

    _parameter_constraints = {"alpha": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, alpha=0.1):
        self.alpha = alpha

    @property
    def needs_smoothing(self):
        return True

    def is_trivial(self):
        return float(self.alpha) == 1.0

    def smoothing_error(self, smoothing, p=None):
        return float(smoothing) * np.log(2.0) / float(self.alpha)

    def feasible_weights(self, q, p):
        """Map nonnegative weights with ``q <= p / alpha`` into the set.

        Used to turn the weights of a smoothed dual into a feasible worst case
        (for a duality-gap certificate): the weights are scaled down if they sum
        to more than one, or filled up towards the caps ``p / alpha``.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Nonnegative weights with ``q <= p / alpha``.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        q : ndarray of shape (n_samples,)
            Weights in the CVaR set: nonnegative, summing to one, capped.
        """
        # peak memory: the result and the caps (which become the room left)
        cap = np.divide(p, float(self.alpha), dtype=np.float64)
        q = np.clip(q, 0.0, cap)
        total = q.sum()
        if total >= 1.0:
            q /= total
            return q
        room = np.subtract(cap, q, out=cap)
        room_total = room.sum()
        room *= 1.0 - total
        room /= room_total
        q += room
        return q

    def _dual_trivial(self, losses, p):
        return np.array([float(losses.min())])

    def _solve_unit(self, z, p):
        # O(n): the value at risk by a weighted selection, then the weights
        # (built in z's buffer: peak memory z, p and blocks)
        alpha = float(self.alpha)
        var = _value_at_risk(z, p, alpha)
        risk, q = _cvar_solution(z, p, alpha, var)
        return risk, q, np.array([var])

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        """Minimizer of the (smoothed) dual objective over eta.

        With ``smoothing=tau > 0`` the optimality condition
        ``E_p[sigmoid((l - eta) / tau)] = alpha`` is monotone in eta; it is
        solved by Newton's method from ``start``, safeguarded by bisection once
        a sign change is bracketed, to machine precision. With ``tau = 0`` it
        is the value at risk.

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0
        start : ndarray of shape (1,), default=None
            Starting point of Newton's method (for example the previous
            solution).

        Returns
        -------
        dual : ndarray of shape (1,)
        """
        if smoothing <= 0:
            return self.dual_init(losses, p)
        eta = float(start[0]) if start is not None else float(np.dot(p, losses))
        scale = max(1.0, float(np.max(np.abs(losses))))
        eta = _smoothed_quantile(losses, p, float(self.alpha), smoothing, eta, scale)
        return np.array([eta])

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        """Dual objective :math:`\\eta + E_p[(\\ell - \\eta)_+] / \\alpha`.

        Parameters
        ----------
        dual : ndarray of shape (1,)
            The dual variable :math:`\\eta`, in loss units.
        losses : ndarray of shape (n_samples,)
            Per-sample losses.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.
        smoothing : float, default=0.0
            Softplus temperature :math:`\\tau`; ``0`` gives the exact,
            piecewise-linear objective and a subgradient.

        Returns
        -------
        value : float
        grad_losses : ndarray of shape (n_samples,)
        grad_dual : ndarray of shape (1,)
        """
        alpha = float(self.alpha)
        eta = float(dual[0])
        # peak memory: the gradient (built in the array of differences) and
        # one temporary
        diff = np.subtract(losses, eta, dtype=np.float64)
        if smoothing > 0:
            diff /= smoothing
            soft = np.logaddexp(0.0, diff)
            soft *= smoothing
            value = eta + np.dot(p, soft) / alpha
            del soft
            grad_losses = expit(diff, out=diff)  # the slope
        else:
            soft = np.maximum(diff, 0.0)
            value = eta + np.dot(p, soft) / alpha
            del soft
            grad_losses = np.greater(diff, 0.0, out=diff)  # the slope
        grad_losses *= p
        grad_losses /= alpha
        return value, grad_losses, np.array([1.0 - grad_losses.sum()])

    _dual_is_threshold = True
    _expectation_dual = ("eta",)

    def _profiled(self, losses, p, smoothing, start=None):
        # the old private name, kept for callers outside skrobust.ambiguity
        return self.profiled_dual(losses, p, smoothing, start=start)

    def _profiled_curvature(self, dual, losses, p, smoothing):
        # the old private name, kept for callers outside skrobust.ambiguity
        return self.profiled_curvature(dual, losses, p, smoothing)

    def _torch_solve_unit(self, z, p):
        from skrobust.ambiguity._torch import cvar_unit

        return cvar_unit(z, p, float(self.alpha))

    def _torch_dual_terms(self, losses, dual):
        from skrobust.ambiguity._torch import cvar_dual_terms

        return cvar_dual_terms(losses, dual[0], float(self.alpha))

    def profiled_dual(self, losses, p, smoothing=0.0, start=None):
        """Smoothed dual minimized over eta: ``(dual, value, grad_losses)``.

        The same numbers as :meth:`dual_argmin` followed by
        :meth:`dual_objective`, computed for solvers that call it at every
        iterate: only losses within ``40 * smoothing`` of eta go through the
        sigmoid and softplus; beyond that band both equal their limits (0 or
        1, and ``(x)_+``) to within ``exp(-40) < 5e-18`` per unit weight.

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0
        start : ndarray of shape (1,), default=None

        Returns
        -------
        dual : ndarray of shape (1,)
        value : float
        grad_losses : ndarray of shape (n_samples,)
        """
        if smoothing <= 0:
            return super().profiled_dual(losses, p, smoothing, start=start)
        alpha = float(self.alpha)
        tau = float(smoothing)
        width = 40.0 * tau
        eta = float(start[0]) if start is not None else float(np.dot(p, losses))
        for _ in range(8):
            diff = losses - eta
            above = diff >= 2.0 * width
            band = np.flatnonzero(np.abs(diff) < 2.0 * width)
            mass_above = float(p[above].sum())
            p_band, l_band = p[band], losses[band]
            if not 0.0 < alpha - mass_above < float(p_band.sum()):
                # the root is outside the band: restart from the value at risk
                eta = float(self.dual_init(losses, p)[0])
                continue
            # Newton's rounding floor: the magnitude of the band's losses
            scale = max(1.0, abs(eta) + 2.0 * width)
            new = _smoothed_quantile(
                l_band, p_band, alpha - mass_above, tau, eta, scale
            )
            # every loss outside the band is at least `width` away from `new`
            if abs(new - eta) <= width:
                break
            eta = new
        else:
            dual = self.dual_argmin(losses, p, smoothing=tau, start=start)
            value, grad, _ = self.dual_objective(dual, losses, p, smoothing=tau)
            return dual, value, grad
        grad = np.where(above, p, 0.0)
        # sum over the losses above the band of p * (loss - new)
        excess = float(np.dot(grad, diff)) - (new - eta) * mass_above
        u = (l_band - new) / tau
        grad[band] = p_band * expit(u)
        excess += tau * float(np.dot(p_band, np.logaddexp(0.0, u)))
        grad /= alpha
        return np.array([new]), new + excess / alpha, grad

    def profiled_curvature(self, dual, losses, p, smoothing):
        """Hessian of the smoothed risk over the losses, with eta profiled out.

        With :math:`c_i = p_i \\sigma_i (1 - \\sigma_i) / \\tau` and
        :math:`\\sigma_i` the sigmoid of :math:`(\\ell_i - \\eta) / \\tau` at the
        minimizing :math:`\\eta`, the implicit function theorem gives
        :math:`\\nabla^2_\\ell R = \\mathrm{diag}(c) / \\alpha - c c^\\top /
        (\\alpha \\sum_i c_i)`. Returned as ``(diag, vec)`` with
        ``hessian = diag(diag) - outer(vec, vec)``; solvers use it to build a
        preconditioner.

        Parameters
        ----------
        dual : ndarray of shape (1,)
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float

        Returns
        -------
        diag : ndarray of shape (n_samples,)
        vec : ndarray of shape (n_samples,)
        """
        alpha = float(self.alpha)
        sig = expit((losses - float(dual[0])) / smoothing)
        c = p * sig * (1.0 - sig) / smoothing
        total = float(c.sum())
        vec = c / np.sqrt(alpha * total) if total > 0 else np.zeros_like(c)
        return c / alpha, vec

    def cvxpy_risk(self, loss_expr, p):
        """Robust risk of a cvxpy expression through the Rockafellar-Uryasev dual.

        Parameters
        ----------
        loss_expr : cvxpy.Expression of shape (n_samples,)
            Convex per-sample losses.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        objective : cvxpy.Expression
        constraints : list
        """
        import cvxpy as cp

        eta = cp.Variable()
        expr = eta + (np.asarray(p) @ cp.pos(loss_expr - eta)) / float(self.alpha)
        return expr, []

    def risk_curve(self, losses, alphas, sample_weight=None):
        """CVaR of ``losses`` at every level in ``alphas`` from one sort.

        The losses are sorted once; with :math:`C_g` the nominal mass and
        :math:`S_g` the mass-weighted sum of the distinct values above and
        including value :math:`g` (in decreasing order),
        the CVaR at level :math:`\\alpha` is
        :math:`(S_{j-1} + (\\alpha - C_{j-1}) v_j) / \\alpha`, :math:`j` the
        first group with :math:`C_j \\ge \\alpha`. The cost is one sort plus a
        binary search per level, against a sort per level for repeated calls
        to :meth:`risk`. The ``alpha`` parameter of the set is not used.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        alphas : array-like of shape (n_levels,)
            Levels in (0, 1], in any order.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining :math:`P_n`; ``None`` means uniform.

        Returns
        -------
        risks : ndarray of shape (n_levels,)
            ``risks[k]`` equals ``CVaR(alpha=alphas[k]).risk(losses,
            sample_weight)``.

        Examples
        --------
        >>> import numpy as np
        >>> from skrobust.ambiguity import CVaR
        >>> CVaR().risk_curve(np.arange(10.0), [0.1, 0.2, 0.25, 1.0])
        array([9. , 8.5, 8.2, 4.5])
        """
        from skrobust.utils._validation import check_losses, check_probability_weights

        losses = check_losses(losses)
        if sample_weight is None:
            # uniform: a read-only broadcast view, no array of n weights
            p = np.broadcast_to(np.float64(1.0 / losses.shape[0]), losses.shape)
        else:
            p = check_probability_weights(sample_weight, losses.shape[0])
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
        # One argsort; the sorted losses are then walked in decreasing order,
        # a block at a time, with running masses and sums (peak memory: the
        # losses, the order, p and blocks). With elements instead of groups,
        # ties before the crossing one add m v to S and m to C, which cancel.
        n = losses.shape[0]
        order = np.argsort(losses, kind="stable")[::-1]
        targets = alphas * (1.0 - 1e-12)
        levels = np.argsort(targets, kind="stable")
        sorted_targets = targets[levels]
        risks = np.empty_like(alphas)
        mass_before = sum_before = 0.0
        done = 0
        for block in _blocks(n, count=16):
            index = order[block]
            values = losses[index]
            weights = p[index]
            mass_above = mass_before + np.cumsum(weights)
            mass_block = float(np.sum(weights))
            weights *= values
            sum_above = sum_before + np.cumsum(weights)
            sum_block = float(np.sum(weights))
            del weights
            if block.stop >= n:  # the last block: every level left crosses here
                crossing = sorted_targets.shape[0]
            else:
                crossing = int(np.searchsorted(sorted_targets, mass_above[-1], "right"))
            if crossing > done:
                here = levels[done:crossing]
                j = np.searchsorted(mass_above, sorted_targets[done:crossing])
                j = np.minimum(j, values.shape[0] - 1)
                c_before = np.where(j > 0, mass_above[j - 1], mass_before)
                s_before = np.where(j > 0, sum_above[j - 1], sum_before)
                level = alphas[here]
                risks[here] = (s_before + (level - c_before) * values[j]) / level
                done = crossing
            # carried with pairwise sums: the running sums' rounding error
            # grows with the block length, not with n
            mass_before += mass_block
            sum_before += sum_block
        top = float(losses.max())
        mean = float(np.dot(p, losses))
        return np.clip(risks, min(mean, top), top)


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
