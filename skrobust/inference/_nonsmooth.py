"""Bootstrap empirical likelihood for the value of the best of K options."""

from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize, nnls
from scipy.stats import chi2
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skrobust.inference._gel import AMBIGUITY
from skrobust.inference._gel_risk import (
    FIT_GAP_TOL,
    _certified_risk,
    _divergence_set,
    _warn_gap,
)
from skrobust.inference._result import CertifiedInterval
from skrobust.inference._validation import level_constraint, resolve_level
from skrobust.utils._conventions import DEPRECATED


def _sqrt_precision(cov):
    """Symmetric square root of the (pseudo-)inverse of a covariance."""
    s, U = np.linalg.eigh(cov)
    floor = max(s.max(), 0.0) * 1e-12
    inv_sqrt = np.where(s > floor, 1.0 / np.sqrt(np.maximum(s, floor)), 0.0)
    return (U * inv_sqrt) @ U.T


def _distance_to_level_set(Z, M):
    """Squared ``M``-distance from ``Z`` to ``{v : max_k v_k = 0}``.

    Outside the orthant ``{v <= 0}`` the nearest point is the projection on
    the orthant (a nonnegative least-squares problem); inside it, the nearest
    point has some coordinate ``k`` at zero and the others nonpositive.
    """
    b = -(M @ Z)
    if Z.max() >= 0.0:
        return nnls(M, b)[1] ** 2
    best = np.inf
    for k in range(Z.shape[0]):
        keep = np.arange(Z.shape[0]) != k
        if keep.any():
            resid = nnls(M[:, keep], b)[1]
        else:
            resid = np.linalg.norm(b)
        best = min(best, resid**2)
    return best


def _near_optimal_set(Y, means, threshold):
    """Options whose gap to the best is within ``threshold`` standard errors."""
    n = Y.shape[0]
    top = int(np.argmax(means))
    diff = Y[:, [top]] - Y
    sd = diff.std(axis=0)
    gap = means[top] - means
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > 0, np.sqrt(n) * gap / np.where(sd > 0, sd, 1.0), np.inf)
    t = np.where(gap <= 0, 0.0, t)
    return np.flatnonzero(t <= threshold)


def _lower_bound(Y, ball, p):
    """``max_{pi in simplex} -R(-Y pi)``: the optimistic value of the best mix.

    Concave in ``pi``; by Sion's minimax theorem it equals
    ``inf_Q max_k E_Q[Y_k]`` over the ball. Solved by SLSQP with the Danskin
    gradient ``Y' q``, started at the best single option. Returns the value
    and its certificate: for any ``q`` in the ball, ``-R(-Y pi') <= q' Y pi'``
    for every ``pi'``, so ``max_k (Y' q)_k`` bounds the maximum from above;
    with ``q`` the (feasible) minimizing weights at the returned ``pi`` and
    the duality gap of that risk evaluation, the value is within ``gap`` of
    the exact maximum.
    """
    K = Y.shape[1]
    vertex = np.array(
        [-_certified_risk(ball, Y[:, k], p, sign=-1.0)[0] for k in range(K)]
    )
    best = int(np.argmax(vertex))
    pi = np.zeros(K)
    pi[best] = 1.0
    if K > 1:

        def fun(pi):
            risk, q = ball.risk_and_weights(-(Y @ pi))
            return risk, -(Y.T @ q)

        res = minimize(
            fun,
            pi,
            jac=True,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * K,
            constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
            options={"ftol": 1e-14, "maxiter": 200},
        )
        mix = np.clip(res.x, 0.0, None)
        mix /= mix.sum()
        if -_certified_risk(ball, Y @ mix, p, sign=-1.0)[0] > vertex[best]:
            pi = mix
    risk, risk_gap, q = _certified_risk(ball, Y @ pi, p, sign=-1.0)
    value = -risk
    ceiling = float(np.max(Y.T @ q))
    return value, max(ceiling - value, 0.0) + risk_gap


def _upper_bound(Y, ball, p):
    """``max_k R(Y_k)`` and its certificate, the largest gap of the K solves."""
    results = [
        _certified_risk(ball, Y[:, k], p, weights=False) for k in range(Y.shape[1])
    ]
    return max(r[0] for r in results), max(r[1] for r in results)


@validate_params(
    {
        "Y": ["array-like"],
        **level_constraint(),
        "calibration": [StrOptions({"bootstrap", "chi2"})],
        "n_bootstraps": [Interval(Integral, 1, None, closed="left")],
        "tie_threshold": [Interval(Real, 0, None, closed="left"), None],
        "ambiguity": AMBIGUITY,
        "random_state": ["random_state"],
        "return_threshold": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def el_max_mean_interval(
    Y,
    confidence_level=0.95,
    *,
    calibration="bootstrap",
    n_bootstraps=2000,
    tie_threshold=None,
    ambiguity="chi2",
    random_state=None,
    return_threshold=False,
    confidence=DEPRECATED,
):
    """Bootstrap empirical likelihood interval for the best of K expected values.

    Confidence interval for :math:`T(P) = \\max_k E_P[Y_k]`, the value of
    choosing the best of K options (arms, policies, treatments), that stays
    valid when several options tie for the best, where the chi-square
    calibration of smooth empirical likelihood fails.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_options)
        Outcome of every option on each sample (e.g. rewards of K policies
        evaluated on the same units, or per-sample value estimates).
    confidence_level : float, default=0.95
        Nominal coverage (SciPy's name).
    calibration : {"bootstrap", "chi2"}, default="bootstrap"
        ``"bootstrap"``: the corrected multiplier bootstrap quantile of the
        limit law on the estimated set of near-best options. ``"chi2"``: the
        smooth-case quantile :math:`\\chi^2_{1}`, valid only when the best
        option is unique (kept for comparison).
    n_bootstraps : int, default=2000
        Number of multiplier bootstrap draws.
    tie_threshold : float, default=None
        An option is treated as tied with the empirical best when its gap is
        within ``tie_threshold`` standard errors. ``None`` uses
        :math:`\\sqrt{\\log n}`, which grows slowly so that true ties are kept
        and separated options are dropped as :math:`n` grows.
    ambiguity : {"chi2", "kl"} or AmbiguitySet, default="chi2"
        The f-divergence ball of the generalized empirical likelihood; its
        radius is set from the calibrated threshold.
    random_state : int, RandomState instance or None, default=None
        Seed of the bootstrap draws.
    return_threshold : bool, default=False
        Also return the calibrated threshold :math:`q` (the ball radius is
        :math:`q / (2n)`).
    confidence : float, default="deprecated"
        The old name of ``confidence_level``; it wins when given, with a
        ``FutureWarning``, and will be removed in the next release.

    Returns
    -------
    interval : CertifiedInterval
        The pair ``(lower, upper)`` (it unpacks as a tuple), ``lower =``
        :math:`\\inf_{Q \\in B} \\max_k E_Q[Y_k]` and ``upper =``
        :math:`\\sup_{Q \\in B} \\max_k E_Q[Y_k] = \\max_k \\sup_{Q \\in B}
        E_Q[Y_k]`. ``high_gap`` is the largest duality gap of the K robust
        risks; ``low_gap`` bounds the distance of ``lower`` to the exact
        maximum over mixtures: for the (feasible) minimizing weights
        :math:`\\hat q` at the returned mixture, :math:`\\max_k (Y^\\top
        \\hat q)_k` is an upper bound on it (a Frank-Wolfe gap), plus the
        duality gap of that risk evaluation (a first-order bound, so it
        sits near the accuracy of the mixture, about ``1e-8`` of the range
        of ``Y``, while the value itself is accurate to second order). A gap
        above ``tolerance`` (``1e-6`` of the range of ``Y``) raises a
        ``ConvergenceWarning``. Both bounds are computed on ``Y`` shifted and
        scaled to unit range and mapped back (they are equivariant).
        With ``return_threshold=True``: the plain tuple
        ``(lower, upper, threshold)`` instead (the gaps still warn).

    See Also
    --------
    gel_risk_interval : The smooth case, a single expected value.

    Notes
    -----
    The interval is :math:`\\{T(Q) : D_f(Q \\| P_n) \\le q / (2n)\\}`. To first
    order :math:`2n D_f` is the squared Mahalanobis distance, so the profile
    likelihood at the true value tends to the squared distance from a
    Gaussian :math:`Z \\sim N(0, \\Sigma_S)` to the level set
    :math:`\\{v : \\max_{k \\in S} v_k = 0\\}`, where :math:`S` is the set of
    best options. With a unique best option this is :math:`\\chi^2_1`; with
    ties it is stochastically larger, and the chi-square interval
    under-covers. The corrected multiplier bootstrap estimates :math:`S` by
    the options within ``tie_threshold`` standard errors of the best (the
    ordinary bootstrap keeps the estimated gaps, which is not consistent)
    and takes :math:`q` as the ``confidence_level`` quantile of that distance for
    :math:`Z^* = n^{-1/2} \\sum_i \\xi_i (Y_i - \\bar Y)` with Gaussian
    multipliers :math:`\\xi_i`, i.e. :math:`Z^* \\sim N(0, \\hat\\Sigma_S)`
    given the data. The lower bound is
    :math:`\\max_{\\pi \\in \\Delta} -R(-Y\\pi)` (Sion's minimax theorem), the
    upper bound :math:`\\max_k R(Y_k)`, with :math:`R` the ball's robust
    risk.

    References
    ----------
    .. [1] Namkoong, H. (2026). "Empirical likelihood for nonsmooth
       functionals." arXiv:2603.27743.
    .. [2] Duchi, J. C., Glynn, P. W. and Namkoong, H. (2021). "Statistics of
       robust optimization: a generalized empirical likelihood approach."
       Mathematics of Operations Research 46(3).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.inference import el_max_mean_interval
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(400, 3))  # three options tied at value 0
    >>> lower, upper = el_max_mean_interval(Y, random_state=0)
    >>> bool(lower < 0.0 < upper)
    True
    """
    confidence = resolve_level(confidence_level, confidence, "el_max_mean_interval")
    Y = check_array(Y, dtype=np.float64, ensure_min_samples=2, input_name="Y")
    n, K = Y.shape
    means = Y.mean(axis=0)
    if calibration == "chi2":
        threshold = float(chi2.ppf(confidence, 1))
    else:
        kappa = np.sqrt(np.log(n)) if tie_threshold is None else float(tie_threshold)
        S = _near_optimal_set(Y, means, kappa)
        cov = np.atleast_2d(np.cov(Y[:, S], rowvar=False, bias=True))
        if not np.any(np.diag(cov) > 0):
            raise ValueError("Y has no variation in its best options.")
        rng = check_random_state(random_state)
        s, U = np.linalg.eigh(cov)
        root = U * np.sqrt(np.clip(s, 0.0, None))
        M = _sqrt_precision(cov)
        draws = rng.standard_normal((n_bootstraps, S.shape[0])) @ root.T
        stats = np.array([_distance_to_level_set(z, M) for z in draws])
        threshold = float(np.quantile(stats, confidence))
    ball = _divergence_set(ambiguity, threshold / (2.0 * n))
    p = None  # uniform (a broadcast view inside, no array)
    # both bounds are equivariant under Y -> a + s Y (s > 0): they are
    # solved on Y shifted to the best mean and scaled to unit range, where
    # SLSQP's absolute tolerances mean what they say (before, at Y * 1e100
    # the lower bound came out 12% low)
    shift = float(means.max())
    scale = float(np.ptp(Y))
    if not 0.0 < scale < np.inf:
        scale = 1.0
    Z = (Y - shift) / scale
    upper, high_gap = _upper_bound(Z, ball, p)
    lower, low_gap = _lower_bound(Z, ball, p)
    upper, lower = shift + scale * upper, shift + scale * lower
    high_gap, low_gap = scale * high_gap, scale * low_gap
    tol = FIT_GAP_TOL * scale
    _warn_gap(high_gap, tol, "upper bound")
    _warn_gap(low_gap, tol, "lower bound")
    if return_threshold:
        return float(lower), float(upper), threshold
    return CertifiedInterval(lower, upper, low_gap, high_gap, tol)
