"""Kullback-Leibler divergence balls."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._ball import _RadiusBall
from skrobust.ambiguity._blocked import _masked_sum, _weights_on_max

_EPS = np.finfo(np.float64).eps
_TINY = np.finfo(np.float64).tiny
_HUGE = np.finfo(np.float64).max
# log of the largest lambda used by the dual objective (exp(700) ~ 1e304)
_LOG_LAM_MAX = 700.0


class KL(_RadiusBall):
    """Kullback-Leibler ball around the empirical distribution.

    The set is :math:`\\{Q : D_{KL}(Q \\| P_n) \\le \\rho\\}` and its robust risk
    has the log-sum-exp dual

    .. math::

        R_\\rho(\\ell) = \\inf_{\\lambda > 0} \\Big\\{ \\lambda \\rho + \\lambda
        \\log E_{P_n}\\big[e^{\\ell / \\lambda}\\big] \\Big\\},

    with worst case :math:`q_i \\propto p_i e^{\\ell_i / \\lambda^\\star}` (an
    exponential tilt). The optimal :math:`t = 1/\\lambda^\\star` solves
    :math:`D_{KL}(q_t \\| P_n) = \\rho`, a monotone equation in one variable
    that is solved by a safeguarded Newton method on :math:`\\log t` to
    machine precision, on losses rescaled
    to [0, 1] and with shifted exponentials, so it never overflows. When
    :math:`\\rho \\ge -\\log P_n(\\ell = \\max \\ell)` the worst case is the
    largest loss.

    :meth:`dual_objective` takes the dual variable
    :math:`\\tau = \\log \\lambda` (with :math:`\\lambda` in loss units), so a
    joint solver can move it without bounds.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------
    radius : float, default=1.0
        Radius :math:`\\rho \\ge 0` in nats. ``radius=0`` gives the mean.

    See Also
    --------
    CressieRead : Power divergences, which tend to KL as ``k -> 1``.

    References
    ----------
    .. [1] Hu, Z. and Hong, L. J. (2013). "Kullback-Leibler divergence
       constrained distributionally robust optimization." Optimization Online.
    .. [2] Ben-Tal, A., den Hertog, D., De Waegenaere, A., Melenberg, B. and
       Rennen, G. (2013). "Robust solutions of optimization problems affected
       by uncertain probabilities." Management Science 59(2).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import KL
    >>> losses = np.array([0.0, 1.0])
    >>> ball = KL(radius=0.1)
    >>> q = ball.worst_case_weights(losses)
    >>> # the tilted distribution sits on the boundary of the ball
    >>> bool(np.isclose(np.sum(q * np.log(2 * q)), 0.1))
    True
    >>> bool(np.isclose(ball.risk(losses), q[1]))
    True
    """

    _parameter_constraints = {"radius": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, radius=1.0):
        self.radius = radius

    def is_trivial(self):
        return float(self.radius) == 0.0

    def divergence(self, q, p):
        """The Kullback-Leibler divergence :math:`KL(q \\| p)` of weights ``q``.

        ``q``: weights of a distribution (zero where ``p`` is); ``p``: the
        nominal probability weights. Returns a float.
        """
        pos = q > 0
        return float(np.sum(q[pos] * np.log(q[pos] / p[pos])))

    def _torch_solve_unit(self, z, p):
        from skrobust.ambiguity._torch import kl_unit

        return kl_unit(z, p, float(self.radius))

    def _dual_trivial(self, losses, p):
        spread = float(np.ptp(losses)) if losses.size else 0.0
        return np.array([np.log(max(spread, 1.0)) + 10.0])

    def _solve_unit(self, z, p):
        # peak memory: z (centered in place), p and one work array that
        # becomes q
        rho = float(self.radius)
        mass_max = _masked_sum(p, z, np.greater_equal, 1.0)
        if rho >= -np.log(mass_max):
            return 1.0, _weights_on_max(z, p, overwrite=True), np.array([0.0])
        mean = float(np.dot(p, z))
        dev = z
        dev -= mean
        work = np.empty_like(dev)
        log_t = _solve_log_tilt(dev, p, rho, work)
        t = float(np.exp(log_t))
        _, log_mgf, q = _tilt(dev, p, t, work)
        risk = mean + (rho + log_mgf) / t
        return float(risk), q, np.array([t])

    def _dual_to_loss_units(self, dual_z, lo, scale):
        t = float(dual_z[0])
        if t <= 0.0:  # mass on the maximum: lambda -> 0
            return np.array([np.log(scale) - 50.0])
        return np.array([np.log(scale / t)])

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        """Dual objective :math:`\\lambda\\rho + \\lambda\\log E_p e^{\\ell/\\lambda}`.

        Parameters
        ----------
        dual : ndarray of shape (1,)
            :math:`\\tau = \\log\\lambda`, with :math:`\\lambda` in loss units.
        losses : ndarray of shape (n_samples,)
            Per-sample losses.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.
        smoothing : float, default=0.0
            Ignored: this dual is smooth.

        Returns
        -------
        value : float
        grad_losses : ndarray of shape (n_samples,)
            The tilted weights :math:`q`.
        grad_dual : ndarray of shape (1,)
            Derivative with respect to :math:`\\tau`.
        """
        rho = float(self.radius)
        tau = float(dual[0])
        # Beyond tau_max (lambda ~ 1e304 / (1 + rho) loss units) exp(tau)
        # overflows; there the objective is continued by its tangent at
        # tau_max, a convex C^1 extension that keeps every value finite and
        # leaves the minimizer (far below) unchanged. Below tau_min lambda is
        # floored at the smallest normal float: the objective is then the
        # largest loss to machine precision.
        tau_max = _LOG_LAM_MAX - np.log1p(rho)
        beyond = tau - tau_max if tau > tau_max else 0.0
        lam = max(float(np.exp(min(tau, tau_max))), _TINY)
        top = losses.max()
        with np.errstate(over="ignore", divide="ignore", under="ignore"):
            w = p * np.exp((losses - top) / lam)
        total = w.sum()
        q = w / total
        log_total = np.log(total)
        value = lam * rho + top + lam * log_total
        grad_lam = rho + log_total - np.dot(q, losses - top) / lam
        grad_tau = lam * grad_lam
        if beyond:
            with np.errstate(over="ignore"):
                value = min(value + grad_tau * beyond, _HUGE)
        return value, q, np.array([grad_tau])

    def cvxpy_risk(self, loss_expr, p):
        """Robust risk of a cvxpy expression through exponential cones.

        Uses :math:`\\lambda \\log E_p e^{(t - s)/\\lambda} \\le 0` written as
        :math:`u_i \\ge \\lambda e^{(t_i - s)/\\lambda}`, :math:`E_p u \\le
        \\lambda` and :math:`t \\ge \\ell`.

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

        n = loss_expr.shape[0]
        lam = cp.Variable(nonneg=True)
        shift = cp.Variable()
        epi = cp.Variable(n)
        u = cp.Variable(n)
        constraints = [
            epi >= loss_expr,
            cp.constraints.ExpCone(epi - shift, lam * np.ones(n), u),
            np.asarray(p) @ u <= lam,
        ]
        return lam * float(self.radius) + shift, constraints


def _tilt(dev, p, t, out):
    """Exponential tilt of centered losses ``dev`` (max - mean <= 1) by ``t``.

    Returns ``(KL(q_t || p), log E_p[exp(t dev)], q_t)``, with ``q_t`` written
    in ``out`` (no other array of ``dev``'s size is made). For ``t <= 1`` the
    moments use ``expm1`` so that tiny tilts keep full precision; larger tilts
    shift by the maximum so nothing overflows.
    """
    if t <= 1.0:
        tilt = np.multiply(dev, t, out=out)
        np.expm1(tilt, out=tilt)
        a = float(np.dot(p, tilt))
        log_mgf = np.log1p(a)
        # E_q[dev] = E[dev e^{t dev}] / E[e^{t dev}] and E[dev] = 0
        mean_q = float(np.einsum("i,i,i->", p, dev, tilt)) / (1.0 + a)
        q = tilt
        q += 1.0
        q *= p
        q /= 1.0 + a
    else:
        top = dev.max()
        w = np.subtract(dev, top, out=out)
        w *= t
        np.exp(w, out=w)
        w *= p
        total = w.sum()
        log_mgf = t * top + np.log(total)
        q = w
        q /= total
        mean_q = float(np.dot(q, dev))
    return t * mean_q - log_mgf, log_mgf, q


def _solve_log_tilt(dev, p, rho, work):
    """Root in ``log t`` of ``KL(q_t || p) = rho``, to machine precision.

    Newton's method on ``log t`` (``d KL / d log t = t^2 Var_q(dev)``, and
    ``KL`` is increasing in ``t``) from the small-radius solution
    ``t = sqrt(2 rho / Var_p(dev))``, safeguarded by a bracket (grown by unit
    steps in ``log t`` until the root is enclosed, then bisected when a
    Newton step leaves it): a handful of passes over the losses where a
    bracketing root finder takes dozens. The caller ensures a root exists
    (``rho < -log P(max loss)``). ``work`` (of ``dev``'s shape) holds the
    tilted weights.
    """
    lo, hi = -800.0, np.inf
    var_p = float(np.einsum("i,i,i->", p, dev, dev))
    log_t = 0.5 * np.log(2.0 * rho / var_p) if var_p > 0 else 0.0
    log_t = min(max(log_t, lo), 700.0)
    for _ in range(300):
        t = float(np.exp(log_t))
        kl, _, q = _tilt(dev, p, t, work)
        gap = kl - rho
        if gap == 0.0:
            break
        if gap > 0:
            hi = log_t
        else:
            lo = log_t
        mean_q = float(np.dot(q, dev))
        second = float(np.einsum("i,i,i->", q, dev, dev))
        slope = t * t * max(second - mean_q * mean_q, 0.0)
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
