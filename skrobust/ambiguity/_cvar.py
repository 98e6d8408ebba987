"""Conditional value at risk: the worst subpopulation of mass alpha."""

from numbers import Real

import numpy as np
from scipy.special import expit
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._base import ReweightingAmbiguitySet
from skrobust.ambiguity._cvar_solve import (  # noqa: F401 (re-exported)
    _cvar_solution,
    _smoothed_quantile,
    _value_at_risk,
)


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

    def _torch_dual_mean(self, losses, dual, weight):
        from skrobust.ambiguity._torch import cvar_dual_mean

        return cvar_dual_mean(losses, dual[0], weight, float(self.alpha))

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
        # one sort and blocked passes, shared with the worst-subpopulation
        # curves (ambiguity/_curves.py)
        from skrobust.ambiguity._curves import cvar_level_sums

        return cvar_level_sums(losses, alphas, sample_weight=sample_weight).risk
