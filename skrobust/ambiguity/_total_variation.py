"""Total-variation balls: a mixture of CVaR and the maximum loss."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._ball import _RadiusBall
from skrobust.ambiguity._blocked import _weights_on_max
from skrobust.ambiguity._cvar import CVaR, _cvar_solution, _value_at_risk


class TotalVariation(_RadiusBall):
    """Total-variation ball around the empirical distribution.

    The set is :math:`\\{Q : \\tfrac12 \\sum_i |q_i - p_i| \\le \\delta\\}`. The
    worst case moves mass :math:`\\delta` from the smallest losses onto the
    largest one, so the robust risk is a mixture of CVaR and the maximum,

    .. math::

        R_\\delta(\\ell) = (1 - \\delta)\\, \\mathrm{CVaR}_{1-\\delta}(\\ell)
        + \\delta \\max_i \\ell_i ,

    computed exactly with :class:`CVaR`. The dual variable of
    :meth:`dual_objective` is the :math:`\\eta` of the CVaR part; the maximum is
    smoothed by :math:`\\tau \\log \\sum_i e^{\\ell_i/\\tau}` (at most
    :math:`\\tau \\log n` above it) when ``smoothing=tau > 0``.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------
    radius : float, default=0.1
        Total-variation radius :math:`\\delta` in [0, 1]. ``0`` gives the mean,
        ``1`` the largest loss.

    See Also
    --------
    CVaR : The building block of this set.

    References
    ----------
    .. [1] Jiang, R. and Guan, Y. (2018). "Risk-averse two-stage stochastic
       program with distributional ambiguity." Operations Research 66(5).
    .. [2] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import TotalVariation
    >>> losses = np.arange(10.0)
    >>> # 0.8 * mean of the top 80% + 0.2 * max = 0.8 * 5.5 + 0.2 * 9
    >>> float(TotalVariation(radius=0.2).risk(losses))
    6.2
    """

    _parameter_constraints = {"radius": [Interval(Real, 0, 1, closed="both")]}

    def __init__(self, radius=0.1):
        self.radius = radius

    @property
    def needs_smoothing(self):
        return True

    def is_trivial(self):
        return float(self.radius) == 0.0

    def _cvar(self):
        return CVaR(alpha=max(1.0 - float(self.radius), np.finfo(float).tiny))

    def smoothing_error(self, smoothing, p=None):
        n = int(np.count_nonzero(p)) if p is not None else 1
        delta = float(self.radius)
        # radius 1 has no CVaR part (its alpha would be 0: 0 * inf)
        cvar_part = (
            0.0
            if delta >= 1.0
            else (1.0 - delta) * self._cvar().smoothing_error(smoothing)
        )
        return cvar_part + delta * float(smoothing) * np.log(max(n, 1))

    def _dual_trivial(self, losses, p):
        return np.array([float(losses.min())])

    def _solve_unit(self, z, p):
        delta = float(self.radius)
        if delta >= 1.0:
            return 1.0, _weights_on_max(z, p, overwrite=True), np.array([1.0])
        alpha = float(self._cvar().alpha)
        var = _value_at_risk(z, p, alpha)
        # the CVaR part's weights mixed with the maximum's, built in z
        cvar_risk, q = _cvar_solution(z, p, alpha, var, delta=delta)
        return (1.0 - delta) * cvar_risk + delta * 1.0, q, np.array([var])

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        """Minimizer over the CVaR part's eta (see :meth:`CVaR.dual_argmin`).

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0
        start : ndarray of shape (1,), default=None

        Returns
        -------
        dual : ndarray of shape (1,)
        """
        if float(self.radius) >= 1.0:
            # no CVaR part: every eta is optimal; report the largest loss on the
            # support (the limit of CVaR's eta as alpha -> 0)
            return np.array([float(np.max(losses[np.asarray(p) > 0]))])
        return self._cvar().dual_argmin(losses, p, smoothing=smoothing, start=start)

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        """``(1 - delta) * CVaR dual(eta) + delta * max`` (max smoothed if tau > 0).

        Parameters
        ----------
        dual : ndarray of shape (1,)
            :math:`\\eta` of the CVaR part, in loss units.
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float, default=0.0

        Returns
        -------
        value : float
        grad_losses : ndarray of shape (n_samples,)
        grad_dual : ndarray of shape (1,)
        """
        delta = float(self.radius)
        # peak memory: the gradient and one temporary (plus a mask of the
        # support when some nominal weight is zero)
        support = p > 0
        off_support = None if support.all() else ~support
        del support
        if delta >= 1.0:
            # the set is every distribution on the support: the (smoothed)
            # maximum alone; the CVaR part has weight 0 and its alpha would be 0
            value = 0.0
            grad_losses = np.zeros(losses.shape[0])
            grad_dual = np.zeros(1)
        else:
            value, grad_losses, grad_dual = self._cvar().dual_objective(
                dual, losses, p, smoothing=smoothing
            )
        grad_losses *= 1.0 - delta
        if smoothing > 0:
            # tau * logsumexp(losses / tau) over the support and its softmax
            top_grad = np.divide(losses, smoothing, dtype=np.float64)
            if off_support is not None:
                top_grad[off_support] = -np.inf
            shift = top_grad.max()
            top_grad -= shift
            np.exp(top_grad, out=top_grad)
            total = top_grad.sum()
            top = smoothing * (np.log(total) + shift)
            top_grad /= total
        else:
            if off_support is None:
                top = float(losses.max())
            else:
                top = float(np.max(losses, where=~off_support, initial=-np.inf))
            # all mass on the largest losses of the support, split equally
            top_grad = np.greater_equal(losses, top, out=np.empty(losses.shape[0]))
            if off_support is not None:
                top_grad[off_support] = 0.0
            top_grad /= top_grad.sum()
        value = (1.0 - delta) * value + delta * top
        top_grad *= delta
        grad_losses += top_grad
        return value, grad_losses, (1.0 - delta) * grad_dual

    _dual_is_threshold = True

    def divergence(self, q, p):
        """The total-variation distance :math:`\\tfrac12 \\sum_i |q_i - p_i|`.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Weights of a distribution.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        distance : float
        """
        return 0.5 * float(np.abs(np.subtract(q, p)).sum())

    def _torch_solve_unit(self, z, p):
        from skrobust.ambiguity._torch import total_variation_unit

        return total_variation_unit(z, p, float(self.radius))

    def _profiled_curvature(self, dual, losses, p, smoothing):
        # the old private name, kept for callers outside skrobust.ambiguity
        return self.profiled_curvature(dual, losses, p, smoothing)

    def profiled_curvature(self, dual, losses, p, smoothing):
        """The CVaR part's curvature over the losses (see ``CVaR``), scaled.

        The smoothed maximum's curvature is left out: the result only builds a
        preconditioner, which need not be exact.

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
        scale = 1.0 - float(self.radius)
        if scale <= 0.0:
            zeros = np.zeros_like(losses, dtype=float)
            return zeros, zeros.copy()
        diag, vec = self._cvar().profiled_curvature(dual, losses, p, smoothing)
        return scale * diag, np.sqrt(scale) * vec

    def cvxpy_risk(self, loss_expr, p):
        """Robust risk of a cvxpy expression: CVaR dual plus the maximum.

        Parameters
        ----------
        loss_expr : cvxpy.Expression of shape (n_samples,)
        p : ndarray of shape (n_samples,)

        Returns
        -------
        objective : cvxpy.Expression
        constraints : list
        """
        import cvxpy as cp

        delta = float(self.radius)
        support = np.flatnonzero(np.asarray(p) > 0)
        top = cp.max(loss_expr[support])
        if delta >= 1.0:
            return top, []
        cvar, constraints = self._cvar().cvxpy_risk(loss_expr, p)
        return (1.0 - delta) * cvar + delta * top, constraints
