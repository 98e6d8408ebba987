"""Cressie-Read f-divergence balls (chi-square is the case k = 2)."""

from numbers import Real

import numpy as np
from scipy.optimize import brentq
from sklearn.utils._param_validation import Interval

from skrobust.ambiguity._base import (
    ReweightingAmbiguitySet,
    _blocks,
    _group_descending,
    _masked_max,
    _masked_min,
    _masked_sum,
    _weights_on_max,
)

_EPS = np.finfo(np.float64).eps
# exponents below this are safe for exp / expm1 (exp(600) ~ 1e260)
_LOG_SAFE = 600.0


class CressieRead(ReweightingAmbiguitySet):
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

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Weights of a distribution (zero where ``p`` is zero).
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        divergence : float
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

    def feasible_weights(self, q, p):
        """``p + t (q - p)`` with ``t = min(1, radius / D(q || p))``.

        The divergence is convex and zero at ``p``, so the point is in the
        ball.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Nonnegative weights (normalized here on the support of ``p``).
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        q : ndarray of shape (n_samples,)
        """
        return _shrink_into_ball(self, q, p)

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


def _shrink_into_ball(ball, q, p):
    """``p + t (q - p)``, ``t = min(1, radius / divergence)``: in the ball."""
    p = np.asarray(p, dtype=np.float64)
    q = np.where(p > 0, np.maximum(q, 0.0), 0.0)
    q = q / q.sum()
    radius = float(ball.radius)
    div = ball.divergence(q, p)
    t = 1.0 if div <= radius else radius / div
    return p + t * (q - p)


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
