"""Cressie-Read f-divergence balls (chi-square is the case k = 2)."""

from numbers import Real

import numpy as np
from scipy.optimize import brentq
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._base import AmbiguitySet, _group_descending, _weights_on_max


class CressieRead(AmbiguitySet):
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

    def is_trivial(self):
        return float(self.radius) == 0.0

    def _dual_trivial(self, losses, p):
        # radius 0: the infimum over eta is approached as eta -> -inf; report
        # the mean shifted down, a finite point from which a solver can start.
        return np.array([float(np.dot(p, losses)) - 1.0])

    def _solve_unit(self, z, p):
        k, s, c = self._constants()
        values, mass, inverse = _group_descending(z, p)
        # all mass on the maximum once it fits in the ball
        if c**s * mass[0] >= 1.0:
            return 1.0, _weights_on_max(z, p), np.array([1.0])
        if k == 2.0:
            eta = _chi2_root(values, mass, c, z, p)
        else:
            eta = _cressie_read_root(values, z, p, s, c)
        excess = np.maximum(z - eta, 0.0)
        moment = np.dot(p, excess**s)
        risk = c * moment ** (1.0 / s) + eta
        q = p * excess ** (s - 1.0)
        q /= q.sum()
        return float(risk), q, np.array([eta])

    def _dual_to_loss_units(self, dual_z, lo, scale):
        return np.array([lo + scale * dual_z[0]])

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
        excess = np.maximum(losses - eta, 0.0)
        if s == 2.0:
            powered = excess * excess
            lower = excess
        else:
            lower = excess ** (s - 1.0)
            powered = lower * excess
        moment = float(np.dot(p, powered))
        if moment <= 0.0:
            return eta, np.zeros_like(losses), np.array([1.0])
        norm = moment ** (1.0 / s)
        grad_losses = (c * norm / moment) * p * lower
        return c * norm + eta, grad_losses, np.array([1.0 - grad_losses.sum()])

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


def _cressie_read_root(values, z, p, s, c):
    """Root of the dual's derivative for a general exponent ``s = k / (k-1)``.

    The derivative ``1 - c E[(z-eta)_+^(s-1)] / E[(z-eta)_+^s]^((s-1)/s)`` is
    continuous and nondecreasing in ``eta``. Bisection over the sorted distinct
    losses finds the segment holding its root; Brent's method finds the root.
    """

    def derivative(eta):
        excess = np.maximum(z - eta, 0.0)
        low = np.dot(p, excess ** (s - 1.0))
        high = np.dot(p, excess**s)
        return 1.0 - c * low / high ** ((s - 1.0) / s)

    # values[0] is the max; derivative just below it is positive here.
    lo_idx, hi_idx = 0, values.shape[0] - 1
    if derivative(values[hi_idx]) > 0:
        # root lies below the smallest loss: expand the bracket downwards
        upper = values[hi_idx]
        step = 1.0
        lower = upper - step
        while derivative(lower) > 0:
            step *= 2.0
            lower = upper - step
    else:
        # invariant: derivative(values[lo_idx]-) > 0 >= derivative(values[hi_idx])
        while hi_idx - lo_idx > 1:
            mid = (lo_idx + hi_idx) // 2
            if derivative(values[mid]) > 0:
                lo_idx = mid
            else:
                hi_idx = mid
        lower, upper = values[hi_idx], values[lo_idx]
        if derivative(lower) == 0:
            return float(lower)
        if lo_idx == 0:
            # derivative(values[0]) is evaluated with an empty active set
            upper = np.nextafter(values[0], -np.inf)
            if derivative(upper) <= 0:
                return float(upper)
    return float(
        brentq(derivative, lower, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    )
