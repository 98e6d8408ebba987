"""Cressie-Read f-divergence balls (chi-square is the case k = 2)."""

from numbers import Real

import numpy as np
from scipy.optimize import brentq
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._base import AmbiguitySet, _group_descending, _weights_on_max

_EPS = np.finfo(np.float64).eps
# exponents below this are safe for exp / expm1 (exp(600) ~ 1e260)
_LOG_SAFE = 600.0


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
        # log c_k(rho), exact even for tiny radii
        log_c = np.log1p(k * (k - 1.0) * float(self.radius)) / k
        if k == 2.0:
            result = _solve_chi2(z, p, c, log_c)
            if result is not None:
                return result
        values, mass, inverse = _group_descending(z, p)
        # all mass on the maximum once that point mass fits in the ball
        if s * log_c + np.log(mass[0]) >= 0.0:
            return 1.0, _weights_on_max(z, p, overwrite=True), np.array([1.0])
        mean = float(np.dot(p, z))
        dev = z - mean
        if _all_active_derivative(dev, p, s, log_c, 1.0 / mean) >= 0.0:
            # every sample keeps positive weight: eta < min z = 0
            result = _solve_all_active(dev, p, mean, k, s, log_c)
            if k != 2.0:
                result = _boundary_atom(z, p, s, c, result[2][0]) or result
            return result
        if k == 2.0:
            eta = _chi2_root(values, mass, c, z, p)
        else:
            eta = _cressie_read_root(values, z, p, s, c)
        excess = np.maximum(z - eta, 0.0)
        # scaled by the largest excess so that neither power under- nor
        # overflows for exponents near 1 or very large (k near 1 or large)
        top = excess.max()
        excess /= top
        q = p * excess ** (s - 1.0)
        moment = np.dot(q, excess)
        risk = top * c * moment ** (1.0 / s) + eta
        q /= q.sum()
        result = float(risk), q, np.array([eta])
        if k != 2.0:
            result = _boundary_atom(z, p, s, c, eta) or result
        return result

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
        top = float(np.max(excess, where=p > 0, initial=0.0))
        if s == 2.0 and 1e-150 < top < 1e150:
            powered = excess * excess
            lower = excess
        elif top > 0.0:
            # the moments scaled by the largest excess (on the support) never
            # under- or overflow; the scale cancels in the weights
            excess /= top
            lower = excess ** (s - 1.0)
            moment = float(np.dot(p, lower * excess))
            norm = moment ** (1.0 / s)
            grad_losses = (c * norm / moment) * p * lower
            value = c * top * norm + eta
            return value, grad_losses, np.array([1.0 - grad_losses.sum()])
        else:
            return eta, np.zeros_like(losses), np.array([1.0])
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


def _solve_chi2(z, p, c, log_c, max_iter=64):
    """Exact chi-square solve with two work arrays and no sort.

    Same decisions as the general path (all mass on the maximum; every sample
    active; otherwise an interior ``eta``), but the interior ``eta`` is found by
    the active-set iteration ``eta <- mu_A - sqrt(V_A / (c^2 P_A - 1))`` over
    ``A = {z > eta}`` started at ``eta = 0``. The surrogate built on ``A``
    majorizes the dual to the right of ``eta`` and has a nonnegative derivative
    at the optimum, so the iterates increase to the optimum without passing it,
    and stop when the active set no longer changes (then the segment formula
    is exact). Peak memory is ``z``, ``p`` and one work array (which becomes
    ``q``). Returns ``None`` when ``max_iter`` passes do not settle the active
    set (adversarially spread losses), and the caller falls back to the sorted
    segment search.
    """
    two_rho = float(np.expm1(2.0 * log_c))
    at_max = z >= 1.0
    if 2.0 * log_c + np.log(np.sum(p, where=at_max)) >= 0.0:
        q = np.zeros_like(z)
        np.copyto(q, p, where=at_max)
        q /= q.sum()
        return 1.0, q, np.array([1.0])
    del at_max
    mean = float(np.dot(p, z))
    work = np.subtract(z, mean)
    var = float(np.einsum("i,i,i->", p, work, work))
    if two_rho * mean * mean <= var:
        # every sample active: mean + sqrt(2 rho Var), eta <= min z = 0
        t = min(np.sqrt(two_rho / var), 1.0 / mean)
        risk = mean + np.expm1(log_c + 0.5 * np.log1p(t * t * var)) / t
        work *= t
        work += 1.0
        np.maximum(work, 0.0, out=work)
        work *= p
        work /= work.sum()
        return float(risk), work, np.array([mean - 1.0 / t])
    eta = 0.0
    c2 = c * c
    for _ in range(max_iter):
        active = z > eta
        mass = float(np.sum(p, where=active))
        np.multiply(p, z, out=work)
        mu = float(np.sum(work, where=active)) / mass
        np.subtract(z, mu, out=work)
        work *= work
        work *= p
        v = float(np.sum(work, where=active)) / mass
        slope = c2 * mass - 1.0
        if slope <= 0.0:
            return None
        new = mu - np.sqrt(v / slope)
        if not new > eta:
            break
        # the active set is final when no loss lies in (eta, new]
        np.logical_and(active, z <= new, out=active)
        settled = not active.any()
        eta = new
        if settled:
            break
    else:
        return None
    np.subtract(z, eta, out=work)
    np.maximum(work, 0.0, out=work)
    work /= work.max()  # scaled: no underflow of tiny excesses squared
    moment = float(np.einsum("i,i,i->", p, work, work))
    top = 1.0 - eta
    risk = top * c * np.sqrt(moment) + eta
    work *= p
    work /= work.sum()
    return float(risk), work, np.array([eta])


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
        # the ratio is scale-free: dividing by the largest excess (whose mass
        # is positive) keeps both moments positive and finite for any exponent
        excess /= excess.max()
        lower = excess ** (s - 1.0)
        low = np.dot(p, lower)
        high = np.dot(p, lower * excess)
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
    the float ``eta`` resolves the weights on its own.
    """
    eps = s - 1.0
    above = z >= eta  # eta may have rounded onto v itself
    if not above.any():
        return None
    v = float(z[above].min())
    higher = z > v
    if not higher.any():
        return None
    x = z[higher] - v
    ph = p[higher]
    top = float(x.max())
    y = x / top
    low = float(np.dot(ph, y**eps))
    high = float(np.dot(ph, y**s))
    mass_v = float(p[z == v].sum())
    u = (high ** (eps / s) / c - low) / mass_v
    if not 0.0 < u < 1.0:
        return None
    log_delta = np.log(top) + np.log(u) / eps
    below = z < v
    gaps = [float(x.min())]
    if below.any():
        gaps.append(v - float(z[below].max()))
    # neglecting delta next to the gaps moves the other weights by a factor
    # (1 + delta / gap)^eps: keep that below 1e-13
    if log_delta > np.log(1e-13 * min(gaps) / eps):
        return None
    delta = float(np.exp(log_delta))
    q = np.zeros_like(z)
    q[higher] = ph * y**eps
    q[z == v] = p[z == v] * u
    q /= q.sum()
    risk = top * c * high ** (1.0 / s) + v - delta
    return float(risk), q, np.array([v - delta])


def _log_moments(dev, p, s, t):
    """log E[(1 + t dev)^(s-1)] and log E[(1 + t dev)^s], stable for small t."""
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf gives weight 0
        log_base = np.log1p(np.maximum(t * dev, -1.0))
    top = float(log_base.max())
    if s * top < _LOG_SAFE:
        low = np.log1p(np.dot(p, np.expm1((s - 1.0) * log_base)))
        high = np.log1p(np.dot(p, np.expm1(s * log_base)))
        return low, high
    # large exponents (k near 1): factor out the largest base
    log_base -= top
    lower = np.exp((s - 1.0) * log_base)
    low = (s - 1.0) * top + np.log(np.dot(p, lower))
    high = s * top + np.log(np.dot(p, lower * np.exp(log_base)))
    return low, high


def _all_active_derivative(dev, p, s, log_c, t):
    """Dual derivative at eta = mean - 1/t when every loss exceeds eta.

    With u = mean - eta = 1/t, the derivative ``1 - c E[(z-eta)^(s-1)] /
    E[(z-eta)^s]^((s-1)/s)`` equals ``-expm1(log c + log-ratio)`` where the
    moments are of ``1 + t (z - mean)``; this form keeps full precision when
    eta is far below the losses (tiny radii).
    """
    low, high = _log_moments(dev, p, s, t)
    return -np.expm1(log_c + low - (s - 1.0) / s * high)


def _solve_all_active(dev, p, mean, k, s, log_c):
    """Exact solve when the optimal eta lies below every loss.

    The optimum is parametrized by t = 1 / (mean - eta). For k = 2 it is in
    closed form, ``risk = mean + sqrt(2 rho Var)``; otherwise Brent's method
    finds log t. The risk is evaluated as ``mean + expm1(log c + log E[(1 + t
    dev)^s] / s) / t`` to avoid cancelling two large numbers.
    """
    t_max = 1.0 / mean  # eta = 0, the smallest loss

    def derivative(log_t):
        return _all_active_derivative(dev, p, s, log_c, np.exp(log_t))

    var = float(np.dot(p, dev * dev))
    if k == 2.0:
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
    _, high = _log_moments(dev, p, s, t)
    risk = mean + np.expm1(log_c + high / s) / t
    base = np.maximum(1.0 + t * dev, 0.0)
    base /= base.max()  # scale-free weights: no overflow for large exponents
    q = p * base ** (s - 1.0)
    q /= q.sum()
    return float(risk), q, np.array([mean - 1.0 / t])
