"""Empirical likelihood for a mean: likelihood-ratio test and interval."""

import warnings
from numbers import Real

import numpy as np
from scipy.special import chdtrc, chdtri
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import validate_params

from skrobust.inference import _dual
from skrobust.inference._validation import (
    check_frequency_weights,
    check_sample_range,
    level_constraint,
    resolve_level,
)
from skrobust.utils._conventions import DEPRECATED, ConfidenceInterval

EPS = np.finfo(np.float64).eps
MAX_ITER = 200


def _wsum(values, w):
    """Weighted sum (plain sum when ``w`` is None)."""
    return float(_dual.wsum(values, w))


def _wdot(a, b, w):
    """Weighted inner product ``sum_i w_i a_i b_i`` (no temporary array)."""
    return float(_dual.wdot(a, b, w))


def _prepare(x, sample_weight):
    """Validated data, frequency weights (None for unit), effective size, range.

    Returns ``(x, w, n, lo, hi)`` with ``lo, hi`` the extremes of the
    observations with positive weight.
    """
    x, lo, hi = check_sample_range(x)
    w = check_frequency_weights(sample_weight, x.shape[0])
    if w is None:
        return x, None, float(x.shape[0]), lo, hi
    keep = w > 0
    if not keep.all():  # (x and w are only read: no copy when all count)
        x, w = x[keep], w[keep]
        lo, hi = float(x.min()), float(x.max())
    return x, w, float(w.sum()), lo, hi


def _bartlett_factor(z, w, n):
    """Bartlett constant ``a`` with ``E[-2 log R] = 1 + a / n + O(n^-2)``.

    ``a = mu_4 / (2 mu_2^2) - mu_3^2 / (3 mu_2^3)`` with central moments
    (DiCiccio, Hall and Romano, 1991), estimated by their sample versions.
    """
    m2 = _wsum(z * z, w) / n
    m3 = _wsum(z**3, w) / n
    m4 = _wsum(z**4, w) / n
    return 0.5 * m4 / m2**2 - m3**2 / (3.0 * m2**3)


def _el_statistic(x, w, n, value, lo, hi):
    """``-2 log R(value)`` for the mean; ``inf`` outside the convex hull.

    The one-moment case ``g_i = x_i - value`` of the shared dual solver
    (:func:`skrobust.inference._dual.solve_dual`); ``lo, hi`` is the range
    of ``x``.
    """
    if lo == hi:
        return 0.0 if value == lo else np.inf
    if not lo < value < hi:
        return np.inf
    z = x - value
    # max|x - value| is max(hi - value, value - lo) exactly (monotone rounding)
    z /= max(hi - value, value - lo)  # scale-free: no under/overflow of z**2
    evaluate = _dual.vector_evaluate(z, w, _dual.pseudo_eps(w, n))
    lam, half, _ = _dual.solve_dual(evaluate, n, None, 1, MAX_ITER, stacklevel=4)
    if not np.isfinite(half):
        return np.inf
    # the dual at the final (full Newton) step, exactly: its error is of the
    # fourth order in that step, below rounding
    z *= lam[0]
    return max(2.0 * _wsum(np.log1p(z, out=z), w), 0.0)


def _upper_offset(z, w, n, threshold):
    """Upper endpoint minus the mean, for centered data ``z``.

    The EL weights on the upper side are ``p_i ~ w_i / (gamma - x_i)`` with
    ``gamma > max x`` (Owen, 2001, section 2.9). With ``v = 1 / (gamma -
    mean)`` and ``e_i = 1 - v z_i`` the statistic is
    ``h(v) = 2 sum_i w_i log e_i + 2 n log mean_w(1 / e)``, increasing from 0
    at ``v = 0`` to infinity at ``v = 1 / max z``, and the endpoint is
    ``mean + mean_w(z / e) / mean_w(1 / e)``. The root of
    ``sqrt(h(v)) = sqrt(threshold)``, nearly linear in ``v``, is found by
    Halley's method (exact first and second derivatives) inside a shrinking
    bracket, with bisection as the safeguard. Once the step is below
    ``1e-7 min(v, 1 / max z - v)`` the endpoint is moved by its exact
    first-order change, which leaves an error far below rounding; so one
    or two O(n) passes suffice from the Wald starting point at large ``n``.
    """
    target = np.sqrt(threshold)
    lo, hi = 0.0, 1.0 / z.max()
    v_max = hi
    var = _wdot(z, z, w) / n
    v = np.sqrt(threshold / (n * var))  # the Wald endpoint, to first order
    if not v < hi:
        v = 0.5 * hi
    # two work arrays of z's size (peak memory 3x the data with z itself)
    ie, work = np.empty_like(z), np.empty_like(z)
    for _ in range(MAX_ITER):
        np.multiply(z, -v, out=ie)
        ie += 1.0  # e = 1 - v z
        np.divide(1.0, ie, out=ie)  # 1 / e
        np.multiply(z, ie, out=work)  # z / e
        m1 = _wsum(ie, w) / n
        mz1 = _wsum(work, w) / n
        mz2 = _wdot(work, ie, w) / n
        mzz2 = _wdot(work, work, w) / n
        work *= work  # z^2 / e^2
        mzz3 = _wdot(work, ie, w) / n
        np.log(ie, out=work)  # log(1 / e) = -log(e)
        h = max(2.0 * (n * np.log1p(v * mz1) - _wsum(work, w)), 0.0)
        dh = 2.0 * n * (mz2 / m1 - mz1)
        d2h = 2.0 * n * (2.0 * mzz3 / m1 - (mz2 / m1) ** 2 - mzz2)
        phi = np.sqrt(h)
        lo, hi = (v, hi) if phi < target else (lo, v)
        step = np.nan
        if phi > 0 and dh > 0:
            f = phi - target
            df = dh / (2.0 * phi)
            d2f = d2h / (2.0 * phi) - dh * dh / (4.0 * phi**3)
            step = -f / df
            denom = 1.0 - f * d2f / (2.0 * df * df)
            if denom > 0.5:
                step /= denom
        new = v + step
        # the endpoint's curvature in v grows like 1 / (v_max - v)^2, so the
        # step is measured against the distance to both ends of (0, v_max)
        if lo < new < hi and abs(step) <= 1e-7 * min(v, v_max - v):
            # exact first-order move of the endpoint from v to v + step
            return (mz1 + step * mzz2) / (m1 + step * mz2)
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
            if hi - lo <= 4.0 * EPS * hi:
                return mz1 / m1
        v = new
    warnings.warn(
        "The empirical-likelihood interval endpoint did not converge: "
        f"sqrt(-2 log R) - sqrt(threshold) = {phi - target:.3g} at the "
        f"endpoint returned (the certificate), with the multiplier bracketed "
        f"by [{lo:.17g}, {hi:.17g}].",
        ConvergenceWarning,
        stacklevel=3,
    )
    return mz1 / m1


#: truncation error allowed in the series path, relative to the threshold
#: (statistic) and to the endpoint offset: the offset is then exact to about
#: 1e-14 of itself, as the Halley iteration's last first-order move leaves it
SERIES_TOL = 1e-14
#: even orders of the power sums the series path may use
SERIES_ORDERS = (6, 8, 10, 12, 14, 16)
#: rows per block of the power-sum pass
SERIES_BLOCK = 16384
#: below this many observations the Halley iteration is as fast (the series
#: pays Python overhead per block) and is used alone
SERIES_MIN_N = 65536


def _series_order(x, n, mean, scale, threshold):
    """Order of power sums that makes the series exact, or None (use Halley).

    Estimated from a strided subsample (no pass over ``x``): the multiplier
    at the endpoint is near the Wald value ``sqrt(threshold / S_2)``; 1.25 times
    that is the guess, and ten times the subsample's estimate of ``S_top``
    (at least 1: the point at ``|z| = 1``) the guess of the truncation
    error. The exact certificate is checked after the solve.
    """
    sub = (x[:: max(1, x.shape[0] // 4096)] - mean) / scale
    factor = n / sub.shape[0]
    s2 = factor * float(np.dot(sub, sub))
    if not s2 > 0:
        return None
    v = 1.25 * np.sqrt(threshold / s2)
    top = SERIES_ORDERS[-1]
    if not v < 0.5 or 50.0 * v ** (top + 1) / (1.0 - v) > SERIES_TOL * threshold:
        return None  # not even the highest order with S_top = 1 would do
    sub *= sub
    power, k = sub.copy(), 2  # z^k
    for order in SERIES_ORDERS:
        while k < order:
            power *= sub
            k += 2
        s_top = 10.0 * max(1.0, factor * float(power.sum()))
        if 5.0 * s_top * v ** (order + 1) / (1.0 - v) <= SERIES_TOL * threshold:
            return order
    return None


def _power_sums(x, w, mean, scale, order):
    """Power sums ``S_k = sum_i w_i z_i^k``, ``k <= order``, ``z = (x - mean) / scale``.

    One pass over ``x`` by blocks of rows: the powers ``z^0..z^(order/2)`` of
    a block (a small buffer) and two matrix-vector products give every sum,
    ``S_(a+b) = sum_i w_i z_i^a z_i^b``. No array of ``x``'s size is formed.
    """
    n_rows = x.shape[0]
    half = order // 2
    block = min(n_rows, max(1024, min(SERIES_BLOCK, n_rows // 8)))
    buffer = np.empty((half + 1, block))
    low, high = np.zeros(half + 1), np.zeros(half + 1)
    buffer[0] = 1.0
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        P = buffer[:, : stop - start]
        np.subtract(x[start:stop], mean, out=P[1])
        P[1] /= scale
        for k in range(2, half + 1):
            np.multiply(P[k - 1], P[1], out=P[k])
        if w is None:
            low += P @ P[1]
            high += P @ P[half]
        else:
            wb = w[start:stop]
            low += P @ (wb * P[1])
            high += P @ (wb * P[half])
    # low holds S_1..S_(half+1), high S_half..S_order
    n = float(n_rows if w is None else w.sum())
    return np.concatenate([[n], low[:half], high[1:]])


def _horner(coef, v):
    """``sum_k coef[k] v^k``."""
    total = 0.0
    for c in coef[::-1]:
        total = total * v + c
    return total


def _series_offset(S, n, threshold):
    """Upper endpoint minus the mean (scaled units) from the power sums ``S``.

    With ``e_i = 1 - v z_i`` and ``|v z_i| < 1`` every quantity of
    :func:`_upper_offset` is a power series in ``v`` whose coefficients are
    the power sums: ``sum_i w_i z_i / e_i = sum_k v^k S_(k+1)``, ``sum_i w_i
    log e_i = -sum_k v^k S_k / k`` and ``sum_i w_i z_i / e_i^2 = sum_k (k + 1)
    v^k S_(k+1)``. Truncated at ``S_top`` (``top`` even), each tail is at most
    ``S_top v^(top+1) / (1 - v)`` up to a factor ``v^-1`` (``|z_i| <= 1``, so
    ``|S_j| <= S_top`` for ``j >= top``): the statistic is known to within
    ``5 S_top v^(top+1) / (1 - v)``, the certificate checked against
    ``SERIES_TOL``. The root of ``sqrt(h(v)) = sqrt(threshold)`` is then
    found by scalar Newton steps inside a bracket. Returns None when the
    certificate fails (the exact iteration is used instead).
    """
    order = S.shape[0] - 1
    k = np.arange(1, order + 1)
    coef = S[1:]
    coef_log = S[1:] / k
    coef_d = S[1:] * k

    def parts(v):
        nmz1 = _horner(coef, v)
        m1 = 1.0 + v * nmz1 / n
        h = max(2.0 * (n * np.log1p(v * nmz1 / n) - v * _horner(coef_log, v)), 0.0)
        dh = 2.0 * (_horner(coef_d, v) / m1 - nmz1)
        return h, dh, nmz1 / n, m1

    target = np.sqrt(threshold)
    lo, hi = 0.0, 1.0
    v = min(np.sqrt(threshold / S[2]), 0.5)
    for _ in range(100):
        h, dh, mz1, m1 = parts(v)
        phi = np.sqrt(h)
        lo, hi = (v, hi) if phi < target else (lo, v)
        new = np.nan
        if phi > 0 and dh > 0:
            new = v - (phi - target) * 2.0 * phi / dh
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - v) <= 4.0 * EPS * v or hi - lo <= 4.0 * EPS * hi:
            v = new
            break
        v = new
    else:
        return None
    h, dh, mz1, m1 = parts(v)
    if not v < 0.5:
        return None
    tail = S[order] * v**order / (1.0 - v)
    offset = mz1 / m1
    if 5.0 * v * tail > SERIES_TOL * threshold or 4.0 * tail / n > SERIES_TOL * abs(
        offset
    ):
        return None
    return offset


@validate_params(
    {
        "x": ["array-like"],
        "mean": [Real],
        "sample_weight": ["array-like", None],
        "bartlett": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def el_mean_test(x, mean, *, sample_weight=None, bartlett=False):
    """Empirical likelihood ratio test that the population mean equals ``mean``.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    x : array-like of shape (n_samples,)
        Observations.
    mean : float
        Hypothesized population mean; finite (NaN or inf raise a
        ``ValueError``).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights: an integer weight is equivalent to
        repeating the observation, and the effective sample size is
        ``sum(sample_weight)``. ``None`` gives every observation weight one.
    bartlett : bool, default=False
        Divide the statistic by the estimated Bartlett factor ``1 + a / n``
        before referring it to the chi-square distribution.

    Returns
    -------
    statistic : float
        :math:`-2 \\log R(\\mu)`, ``inf`` when ``mean`` is outside the open
        convex hull of the data (no reweighting has that mean).
    pvalue : float
        Upper tail probability of the chi-square distribution with one
        degree of freedom.

    Warns
    -----
    ConvergenceWarning
        If the Newton iteration for the Lagrange multiplier stops before its
        certificate, the relative residual of the multiplier's equation, is
        at rounding level (``4 eps``); the message gives the residual and the
        bracket reached.

    See Also
    --------
    el_mean_interval : The interval of means the test does not reject.

    Notes
    -----
    The empirical likelihood ratio is

    .. math::

        R(\\mu) = \\max \\Big\\{ \\prod_i (n p_i)^{w_i} :
        \\sum_i w_i p_i x_i = \\mu,\\ \\sum_i w_i p_i = 1,\\ p \\ge 0 \\Big\\},

    and :math:`-2 \\log R(\\mu) = 2 \\sum_i w_i \\log(1 + \\lambda (x_i - \\mu))`
    where the Lagrange multiplier :math:`\\lambda` solves
    :math:`\\sum_i w_i (x_i - \\mu) / (1 + \\lambda (x_i - \\mu)) = 0`. It is
    found by Newton's method safeguarded by bisection to machine precision.
    Under the null the statistic tends to :math:`\\chi^2_1` (Owen, 1988). The
    Bartlett constant is :math:`a = \\mu_4 / (2 \\mu_2^2) - \\mu_3^2 /
    (3 \\mu_2^3)` (DiCiccio, Hall and Romano, 1991).

    References
    ----------
    .. [1] Owen, A. B. (1988). "Empirical likelihood ratio confidence
       intervals for a single functional." Biometrika 75(2).
    .. [2] Owen, A. B. (2001). "Empirical Likelihood." Chapman & Hall/CRC.
    .. [3] DiCiccio, T., Hall, P. and Romano, J. (1991). "Empirical likelihood
       is Bartlett-correctable." Annals of Statistics 19(2).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.inference import el_mean_test
    >>> x = np.array([1.2, 0.4, 2.5, 1.9, 0.7, 1.1, 3.0, 0.2])
    >>> statistic, pvalue = el_mean_test(x, 1.0)
    >>> round(statistic, 4), round(pvalue, 4)
    (1.4861, 0.2228)
    """
    if not np.isfinite(mean):
        raise ValueError(
            f"mean must be a finite number; got {mean!r} (a NaN or infinite "
            "hypothesized mean has no empirical likelihood)."
        )
    x, w, n, lo, hi = _prepare(x, sample_weight)
    statistic = _el_statistic(x, w, n, float(mean), lo, hi)
    if bartlett and np.isfinite(statistic) and statistic > 0:
        z = x - _wsum(x, w) / n
        z = z / np.abs(z).max()
        statistic /= 1.0 + _bartlett_factor(z, w, n) / n
    return float(statistic), float(chdtrc(1, statistic))


@validate_params(
    {
        "x": ["array-like"],
        **level_constraint(),
        "sample_weight": ["array-like", None],
        "bartlett": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def el_mean_interval(
    x,
    confidence_level=0.95,
    sample_weight=None,
    *,
    bartlett=False,
    confidence=DEPRECATED,
):
    """Empirical likelihood confidence interval for a population mean.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    x : array-like of shape (n_samples,)
        Observations; at least two distinct values.
    confidence_level : float, default=0.95
        Nominal coverage, in (0, 1) (SciPy's name).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights: an integer weight is equivalent to
        repeating the observation, and the effective sample size is
        ``sum(sample_weight)``.
    bartlett : bool, default=False
        Use the Bartlett-corrected threshold
        :math:`\\chi^2_{1, \\text{confidence\\_level}} (1 + a / n)`, which widens the
        interval and improves small-sample coverage on skewed data.
    confidence : float, default="deprecated"
        The old name of ``confidence_level``; it wins when given, with a
        ``FutureWarning``, and will be removed in the next release.

    Returns
    -------
    interval : ConfidenceInterval
        The endpoints as ``(low, high)``, a 2-tuple with named fields (it
        unpacks as ``lower, upper``), as SciPy's ``ConfidenceInterval``.

    Warns
    -----
    ConvergenceWarning
        If an endpoint's root-find stops before converging; the message
        gives its certificate, ``sqrt(-2 log R) - sqrt(threshold)`` at the
        endpoint returned, and the bracket of the multiplier.

    See Also
    --------
    el_mean_test : The test this interval inverts.
    gel_risk_interval : Generalized EL bounds through an ambiguity set.

    Notes
    -----
    The interval is :math:`\\{\\mu : -2 \\log R(\\mu) \\le
    \\chi^2_{1,\\text{confidence\\_level}}\\}`, always inside the range of the data.
    Each endpoint is found through the multiplier parametrization of the
    EL weights, :math:`p_i \\propto w_i / (\\gamma - x_i)` with
    :math:`\\gamma` outside the data range (Owen, 2001, section 2.9): the
    statistic is then an explicit increasing function of
    :math:`v = 1/(\\gamma - \\bar x)`, and a Newton iteration safeguarded by a
    bracket solves :math:`\\sqrt{-2 \\log R} = \\sqrt{\\chi^2}` to machine
    precision, with :math:`O(n)` work per step.

    From 65536 observations on, where the multiplier is small
    (:math:`|v z_i| < 1` for the data scaled to :math:`\\max |z_i| = 1`),
    every sum the statistic needs is a power series in :math:`v` whose
    coefficients are the power sums :math:`S_k = \\sum_i w_i z_i^k`; one
    blocked pass computes :math:`S_0, \\dots, S_{16}` at most, both endpoints
    are then scalar root-finds, and the truncation error, at most
    :math:`5 S_{top} v^{top+1} / (1 - v)` in the statistic, is checked
    against ``1e-14`` of the threshold (the Halley iteration is used where it
    fails: small samples, heavy tails). The peak memory is then a block of
    powers, below the size of ``x``.

    References
    ----------
    .. [1] Owen, A. B. (1988). "Empirical likelihood ratio confidence
       intervals for a single functional." Biometrika 75(2).
    .. [2] DiCiccio, T., Hall, P. and Romano, J. (1991). "Empirical likelihood
       is Bartlett-correctable." Annals of Statistics 19(2).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.inference import el_mean_interval
    >>> x = np.array([1.2, 0.4, 2.5, 1.9, 0.7, 1.1, 3.0, 0.2])
    >>> lower, upper = el_mean_interval(x, confidence_level=0.95)
    >>> round(lower, 4), round(upper, 4)
    (0.8055, 2.0593)
    """
    confidence = resolve_level(confidence_level, confidence, "el_mean_interval")
    x, w, n, lo, hi = _prepare(x, sample_weight)
    mean = _wsum(x, w) / n
    # min(x - mean) is min(x) - mean exactly (rounding is monotone)
    z_min, z_max = lo - mean, hi - mean
    if not z_min < 0.0 < z_max:
        raise ValueError(
            "x needs at least two distinct values (with positive weight) for "
            "an empirical likelihood interval."
        )
    # the interval is scale-equivariant: work on z / max|z| so that squares
    # of very small or very large data neither underflow nor overflow
    scale = max(z_max, -z_min)
    threshold = float(chdtri(1, 1.0 - confidence))  # chi2_1 quantile
    # large n: one pass of power sums makes both endpoints scalar problems
    order = None
    if x.shape[0] >= SERIES_MIN_N:
        order = _series_order(x, n, mean, scale, threshold)
    if order is not None:
        S = _power_sums(x, w, mean, scale, order)
        if bartlett:
            m2, m3, m4 = S[2] / n, S[3] / n, S[4] / n
            threshold *= 1.0 + (0.5 * m4 / m2**2 - m3**2 / (3.0 * m2**3)) / n
        upper = _series_offset(S, n, threshold)
        S[1::2] *= -1.0  # the lower endpoint is the upper one of -x
        lower = _series_offset(S, n, threshold)
        if upper is not None and lower is not None:
            return ConfidenceInterval(
                float(mean - scale * lower), float(mean + scale * upper)
            )
        threshold = float(chdtri(1, 1.0 - confidence))
    z = x - mean
    z /= scale  # (z is our own array: x is never modified)
    if bartlett:
        threshold *= 1.0 + _bartlett_factor(z, w, n) / n
    upper = mean + scale * _upper_offset(z, w, n, threshold)
    np.negative(z, out=z)  # the lower endpoint is the upper one of -x
    lower = mean - scale * _upper_offset(z, w, n, threshold)
    return ConfidenceInterval(float(lower), float(upper))
