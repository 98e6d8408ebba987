"""Cressie-Read f-divergence balls (chi-square is the case k = 2)."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._ball import _RadiusBall
from skrobust.ambiguity._blocked import _group_descending, _masked_sum, _weights_on_max
from skrobust.ambiguity._cressie_read_solve import (  # noqa: F401 (re-exported)
    _all_active_derivative,
    _boundary_atom,
    _chi2_root,
    _cressie_read_root,
    _power_times_p,
    _solve_all_active,
    _solve_chi2,
)


class CressieRead(_RadiusBall):
    """Cressie-Read divergence ball around the empirical distribution.

    The set is :math:`\\{Q : D_{f_k}(Q \\| P_n) \\le \\rho\\}` with

    .. math::

        f_k(t) = \\frac{t^k - k t + k - 1}{k (k - 1)}, \\qquad
        D_f(Q \\| P) = E_P[f(dQ/dP)].

    The robust risk has the one-dimensional dual (Duchi and Namkoong, 2021)

    .. math::

        R_\\rho(\\ell) = \\inf_{\\eta \\in \\mathbb{R}}
        \\Big\\{ c_k(\\rho)\\, E_{P_n}\\big[(\\ell - \\eta)_+^{k_*}\\big]^{1/k_*}
        + \\eta \\Big\\}, \\quad k_* = \\frac{k}{k-1}, \\quad
        c_k(\\rho) = (1 + k (k - 1) \\rho)^{1/k},

    and the worst case puts weight :math:`q_i \\propto p_i (\\ell_i -
    \\eta^\\star)_+^{1/(k-1)}` on sample :math:`i`. The dual is solved exactly:
    the sorted losses split the real line into segments on which the active
    set is fixed; the segment holding the root of the derivative is found by
    bisection over the sorted losses and the root inside it by Brent's method
    to machine precision (in closed form for ``k = 2``). When
    :math:`c_k(\\rho)^{k_*} P_n(\\ell = \\max \\ell) \\ge 1` the worst case puts
    all its mass on the largest loss.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------
    radius : float, default=1.0
        Radius :math:`\\rho \\ge 0` of the ball. ``radius=0`` gives the mean.
    k : float, default=2.0
        Cressie-Read exponent, ``k > 1``. ``k = 2`` is the chi-square ball
        (:class:`ChiSquare`); ``k -> 1`` tends to the KL ball (:class:`KL`).

    See Also
    --------
    ChiSquare : The case ``k = 2``.
    KL : The Kullback-Leibler ball, the limit ``k -> 1``.
    CVaR : The limit of large radius with a bounded likelihood ratio.

    Notes
    -----
    ``sample_weight`` defines the nominal distribution :math:`P_n`; the
    divergence is measured against it, so an integer weight is equivalent to
    repeating a sample. Samples of zero weight get zero worst-case weight.

    The dual objective exposed by :meth:`dual_objective` takes the single dual
    variable :math:`\\eta` (in loss units) and is smooth in (:math:`\\eta`,
    losses) wherever some loss exceeds :math:`\\eta`.

    References
    ----------
    .. [1] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).
    .. [2] Cressie, N. and Read, T. R. C. (1984). "Multinomial goodness-of-fit
       tests." JRSS B 46(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import CressieRead
    >>> losses = np.array([0.0, 1.0, 2.0, 3.0])
    >>> ball = CressieRead(radius=0.5, k=3)
    >>> round(ball.risk(losses), 6)
    2.541634
    >>> q = ball.worst_case_weights(losses)
    >>> bool(np.isclose(q.sum(), 1.0)), bool(np.all(q >= 0))
    (True, True)
    """

    _parameter_constraints = {
        "radius": [Interval(Real, 0, None, closed="left")],
        "k": [Interval(Real, 1, None, closed="neither")],
    }

    def __init__(self, radius=1.0, k=2.0):
        self.radius = radius
        self.k = k

    # exponent k used by the solver; ChiSquare fixes it to 2
    @property
    def _k(self):
        return float(self.k)

    def _constants(self):
        k = self._k
        s = k / (k - 1.0)
        c = (1.0 + k * (k - 1.0) * float(self.radius)) ** (1.0 / k)
        return k, s, c

    _dual_is_threshold = True
    _expectation_dual = ("eta", "log_lambda")

    def is_trivial(self):
        return float(self.radius) == 0.0

    def divergence(self, q, p):
        """The Cressie-Read divergence :math:`D_{f_k}(q \\| p)` of weights ``q``.

        ``q``: weights of a distribution (zero where ``p`` is); ``p``: the
        nominal probability weights. Returns a float.
        """
        on = p > 0
        k = self._k
        t = q[on] / p[on]
        if k == 2.0:
            f = 0.5 * (t - 1.0) ** 2
        else:
            f = (np.expm1(k * np.log(np.maximum(t, 1e-300))) - k * (t - 1.0)) / (
                k * (k - 1.0)
            )
            f = np.where(t > 0, f, 1.0 / k)
        return float(np.dot(p[on], f))

    def _dual_trivial(self, losses, p):
        # radius 0: the infimum over eta is approached as eta -> -inf; report
        # the mean shifted down, a finite point from which a solver can start.
        return np.array([float(np.dot(p, losses)) - 1.0])

    def _solve_unit(self, z, p):
        # Peak memory: z, p and block-sized temporaries; q is built in z's
        # buffer once z is no longer needed.
        k, s, c = self._constants()
        # log c_k(rho), exact even for tiny radii
        log_c = np.log1p(k * (k - 1.0) * float(self.radius)) / k
        if k == 2.0:
            result = _solve_chi2(z, p, c, log_c)
            if result is not None:
                return result
        # all mass on the maximum (1) once that point mass fits in the ball
        mass_max = _masked_sum(p, z, np.greater_equal, 1.0)
        if s * log_c + np.log(mass_max) >= 0.0:
            return 1.0, _weights_on_max(z, p, overwrite=True), np.array([1.0])
        mean = float(np.dot(p, z))
        if _all_active_derivative(z, mean, p, s, log_c, 1.0 / mean) >= 0.0:
            # every sample keeps positive weight: eta < min z = 0
            risk, t = _solve_all_active(z, mean, p, k, s, log_c)
            eta = mean - 1.0 / t
            if k != 2.0:
                # the optimum is at or below min z = 0 (clamp rounding above)
                atom = _boundary_atom(z, p, s, c, min(eta, 0.0))
                if atom is not None:
                    return atom
            # q = p (1 + t dev)_+^(s-1), scale-free, built in z
            z -= mean
            z *= t
            z += 1.0
            np.maximum(z, 0.0, out=z)
            z /= z.max()  # scale-free weights: no overflow for large exponents
            _power_times_p(z, p, s - 1.0)
            z /= z.sum()
            return float(risk), z, np.array([eta])
        if k == 2.0:
            # the sort-free iteration declined: the sorted segment search
            values, mass, _ = _group_descending(z, p)
            eta = _chi2_root(values, mass, c, z, p)
            del values, mass
        else:
            eta = _cressie_read_root(z, p, s, c)
            atom = _boundary_atom(z, p, s, c, eta)
            if atom is not None:
                return atom
        # q = p (z - eta)_+^(s-1), built in z; the excesses are scaled by the
        # largest so that neither power under- nor overflows for exponents
        # near 1 or very large (k near 1 or large)
        z -= eta
        np.maximum(z, 0.0, out=z)
        top = z.max()
        z /= top
        moment = _power_times_p(z, p, s - 1.0)
        risk = top * c * moment ** (1.0 / s) + eta
        z /= z.sum()
        return float(risk), z, np.array([eta])

    def _torch_solve_unit(self, z, p):
        from skrobust.ambiguity._torch import cressie_read_unit

        return cressie_read_unit(z, p, *self._constants())

    def _torch_dual_terms(self, losses, dual):
        from skrobust.ambiguity._torch import cressie_read_dual_terms

        _, s, c = self._constants()
        return cressie_read_dual_terms(losses, dual[0], dual[1], s, c)

    def _torch_dual_mean(self, losses, dual, weight):
        from skrobust.ambiguity._torch import cressie_read_dual_mean

        _, s, c = self._constants()
        return cressie_read_dual_mean(losses, dual[0], dual[1], weight, s, c)

    def _torch_dual_start(self, losses, p, eta):
        from skrobust.ambiguity._torch import cressie_read_log_lambda

        _, s, _ = self._constants()
        return [float(eta), cressie_read_log_lambda(losses, p, eta, s)]

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        """Dual objective :math:`c_k(\\rho) E_p[(\\ell-\\eta)_+^{k_*}]^{1/k_*}+\\eta`.

        Parameters
        ----------
        dual : ndarray of shape (1,)
            The dual variable :math:`\\eta`, in loss units.
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
        grad_dual : ndarray of shape (1,)
        """
        _, s, c = self._constants()
        eta = float(dual[0])
        # peak memory: the excesses, the gradient and at most one temporary
        excess = np.subtract(losses, eta, dtype=np.float64)
        np.maximum(excess, 0.0, out=excess)
        top = float(np.max(excess, where=p > 0, initial=0.0))
        if s == 2.0 and 1e-150 < top < 1e150:
            powered = excess * excess
            moment = float(np.dot(p, powered))
            del powered
            if moment <= 0.0:
                return eta, np.zeros_like(losses), np.array([1.0])
            norm = moment ** (1.0 / s)
            grad_losses = np.multiply(c * norm / moment, p, dtype=np.float64)
            grad_losses *= excess
            return c * norm + eta, grad_losses, np.array([1.0 - grad_losses.sum()])
        if top > 0.0:
            # the moments scaled by the largest excess (on the support) never
            # under- or overflow; the scale cancels in the weights
            excess /= top
            lower = excess ** (s - 1.0)
            lower_excess = lower * excess
            del excess
            moment = float(np.dot(p, lower_excess))
            del lower_excess
            norm = moment ** (1.0 / s)
            grad_losses = np.multiply(c * norm / moment, p, dtype=np.float64)
            grad_losses *= lower
            value = c * top * norm + eta
            return value, grad_losses, np.array([1.0 - grad_losses.sum()])
        return eta, np.zeros_like(losses), np.array([1.0])

    def cvxpy_risk(self, loss_expr, p):
        """Robust risk of a cvxpy expression through the dual (a p-norm cone).

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

        _, s, c = self._constants()
        eta = cp.Variable()
        scaled = cp.multiply(np.asarray(p) ** (1.0 / s), cp.pos(loss_expr - eta))
        return c * cp.pnorm(scaled, s) + eta, []


class ChiSquare(CressieRead):
    """Chi-square divergence ball: Cressie-Read with ``k = 2``.

    The set is :math:`\\{Q : E_{P_n}[f(dQ/dP_n)] \\le \\rho\\}` with
    :math:`f(t) = (t - 1)^2 / 2`, and its robust risk is

    .. math::

        R_\\rho(\\ell) = \\inf_{\\eta} \\Big\\{ \\sqrt{1 + 2\\rho}\\;
        E_{P_n}\\big[(\\ell - \\eta)_+^2\\big]^{1/2} + \\eta \\Big\\}.

    When no loss is clipped at the optimum this is the variance expansion
    :math:`E_{P_n}[\\ell] + \\sqrt{2 \\rho \\operatorname{Var}_{P_n}(\\ell)}`.
    The dual is solved in closed form on each segment between sorted losses
    (a quadratic equation), in :math:`O(n \\log n)`.

    Note the convention: the ``dro`` package's chi-square ``eps`` uses
    :math:`f(t) = (t-1)^2`, so its ``eps`` equals ``2 * radius`` here.

    Read more in the :ref:`User Guide <ambiguity>`.

    Parameters
    ----------
    radius : float, default=1.0
        Radius :math:`\\rho \\ge 0`. ``radius=0`` gives the mean.

    See Also
    --------
    CressieRead : The family this belongs to.

    References
    ----------
    .. [1] Namkoong, H. and Duchi, J. C. (2017). "Variance-based regularization
       with convex objectives." NeurIPS.
    .. [2] Duchi, J. C. and Namkoong, H. (2021). "Learning models with uniform
       performance via distributionally robust optimization." Annals of
       Statistics 49(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.ambiguity import ChiSquare
    >>> losses = np.array([1.0, 2.0, 3.0, 4.0])
    >>> ball = ChiSquare(radius=0.1)
    >>> # no clipping: mean + sqrt(2 * radius * variance)
    >>> bool(np.isclose(ball.risk(losses), 2.5 + np.sqrt(2 * 0.1 * 1.25)))
    True
    """

    _parameter_constraints = {"radius": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, radius=1.0):
        self.radius = radius

    @property
    def _k(self):
        return 2.0
