"""Empirical likelihood for estimating equations: the d-dimensional dual."""

import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.stats import chi2
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils._param_validation import validate_params

from skrobust.inference._validation import check_frequency_weights

MAX_ITER = 200
#: relative tolerance on the squared Newton decrement of the dual solve
DUAL_TOL = 1e-10
#: half the statistic per observation beyond which the dual is declared
#: unbounded (the p-value is below exp(-OBJ_CAP * n) there)
OBJ_CAP = 50.0


def _pseudo_log(d, eps, w=None):
    """Owen's pseudo-logarithm: weighted total and first two derivatives.

    ``log`` above ``eps`` and its second-order Taylor expansion below, so the
    dual objective is concave and finite on all of R^d; it equals the true
    dual wherever every ``d_i >= eps`` (always at the solution when the
    hypothesized value is inside the convex hull, with ``eps = 1 / n``).

    Returns ``(sum_i w_i log*(d_i), psi1, psi2)`` with the derivatives per
    sample. ``d`` is consumed: its buffer is reused for ``psi1``.
    """
    if d.min() >= eps:
        total = float(_wsum(np.log(d), w))
        psi1 = np.divide(1.0, d, out=d)
        psi2 = psi1 * psi1
        psi2 *= -1.0
        return total, psi1, psi2
    low = d < eps
    t = d[low] / eps
    d[low] = 1.0
    value = np.log(d)
    value[low] = np.log(eps) - 1.5 + 2.0 * t - 0.5 * t * t
    total = float(_wsum(value, w))
    del value
    psi1 = np.divide(1.0, d, out=d)
    psi2 = psi1 * psi1
    psi2 *= -1.0
    psi1[low] = (2.0 - t) / eps
    psi2[low] = -1.0 / eps**2
    return total, psi1, psi2


def _pseudo_eps(w, n):
    """Where the pseudo-logarithm switches to its quadratic: ``min(1, w) / n``.

    At the exact solution ``p_i = 1 / (n d_i)`` with ``w_i p_i <= 1``, so
    ``d_i >= w_i / n``; below the smallest positive weight over ``n`` the
    logarithm is never needed, and the pseudo-logarithm equals it wherever
    the hypothesized value is inside the convex hull.
    """
    if w is None:
        return 1.0 / n
    return min(1.0, float(w[w > 0].min())) / n


def _solve_dual(evaluate, n, lam, n_moments):
    """Maximize ``l(lam) = sum_i w_i log*(1 + lam' G_i)`` by damped Newton.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(lam)`` returns ``(l(lam), gradient, minus the Hessian)``.
        Callers with structure (``G = X * r``) accumulate these over blocks
        of rows and never form ``G``.
    n : float
        Effective sample size ``sum(w)``.
    lam : ndarray of shape (n_moments,) or None
        Starting point (warm start); zero when None.
    n_moments : int
        Number of moments.

    Returns
    -------
    lam : ndarray of shape (n_moments,)
    value : float
        The maximum, half the likelihood-ratio statistic; ``inf`` when the
        dual exceeds ``OBJ_CAP * n`` (the origin is outside, or at the edge
        of, the convex hull of the rows of ``G``).
    decrement : float
        Squared Newton decrement ``grad' H^-1 grad`` at the last iterate: the
        certificate. For the concave self-concordant dual it bounds the
        distance of ``value`` to the maximum by about ``decrement / 2``.
    """
    lam = np.zeros(n_moments) if lam is None else np.array(lam, dtype=float)
    obj, grad, neg_hess = evaluate(lam)
    decrement = np.inf
    for _ in range(MAX_ITER):
        try:
            step = cho_solve(cho_factor(neg_hess), grad)
        except (LinAlgError, ValueError):
            step = np.linalg.lstsq(neg_hess, grad, rcond=None)[0]
        decrement = float(grad @ step)
        if obj > OBJ_CAP * n or not np.isfinite(decrement):
            # the dual grows without bound along a direction that separates
            # the origin from the estimating functions: the statistic is
            # infinite (or beyond 2 * OBJ_CAP * n); ``obj`` is a lower bound
            return lam, np.inf, np.inf
        if decrement <= DUAL_TOL * max(1.0, abs(obj)):
            # quadratic convergence: this full step lands within rounding of
            # the maximizer, and the objective rises by decrement / 2 up to a
            # third-order term of size decrement^1.5 (< 1e-15)
            return lam + step, obj + 0.5 * decrement, decrement
        t = 1.0
        while True:
            trial = lam + t * step
            new = evaluate(trial)
            if new[0] >= obj + 0.25 * t * decrement:
                break
            t *= 0.5
            if t < 1e-12:
                # no ascent along the Newton direction at rounding level:
                # the iteration stalls (an ill-conditioned system); stop
                break
        if t < 1e-12:
            break
        lam, (obj, grad, neg_hess) = trial, new
    warnings.warn(
        "Newton's method for the empirical-likelihood dual did not converge: "
        f"the squared Newton decrement (the certificate) is {decrement:.3g}, "
        f"above the tolerance {DUAL_TOL * max(1.0, abs(obj)):.3g}; the "
        "statistic may be inaccurate.",
        ConvergenceWarning,
        stacklevel=3,
    )
    return lam, obj, decrement


def _wsum(values, w):
    """Weighted sum (plain sum when ``w`` is None)."""
    return values.sum() if w is None else np.dot(w, values)


def _dense_evaluate(G, w, eps):
    """``evaluate`` of :func:`_solve_dual` for an explicit matrix ``G``."""

    def evaluate(lam):
        d = G @ lam
        d += 1.0
        total, psi1, psi2 = _pseudo_log(d, eps, w)
        if w is not None:
            psi1 *= w
            psi2 *= w
        psi2 *= -1.0
        return total, G.T @ psi1, (G * psi2[:, None]).T @ G

    return evaluate


@validate_params(
    {"G": ["array-like"], "sample_weight": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def el_moment_test(G, *, sample_weight=None):
    """Empirical likelihood ratio test of the moment condition ``E[g] = 0``.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    G : array-like of shape (n_samples, n_moments)
        Values :math:`g(X_i, \\theta_0)` of an estimating function at the
        hypothesized parameter. A 1-d array is one moment.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).

    Returns
    -------
    statistic : float
        :math:`-2 \\log R(\\theta_0)`; ``inf`` when the origin is outside the
        open convex hull of the rows of ``G``.
    pvalue : float
        Upper tail of the chi-square distribution with ``n_moments`` degrees
        of freedom.

    Warns
    -----
    ConvergenceWarning
        If Newton's method for the dual stops with its certificate, the
        squared Newton decrement (about twice the distance of the returned
        half-statistic to the maximum), above ``1e-10 max(1, |value|)``; the
        message gives it.

    See Also
    --------
    el_mean_test : The case ``g(x, mu) = x - mu`` with one moment.
    el_coef_test : Profiled test for one regression coefficient.

    Notes
    -----
    By convex duality (Qin and Lawless, 1994)

    .. math::

        -2 \\log R(\\theta_0) = \\max_{p \\in \\Delta,\\ \\sum_i p_i g_i = 0}
        -2 \\sum_i w_i \\log(n p_i / w_i)
        = 2 \\max_{\\lambda \\in \\mathbb{R}^d} \\sum_i w_i
        \\log_\\star(1 + \\lambda^\\top g_i),

    with Owen's pseudo-logarithm :math:`\\log_\\star`, equal to the logarithm
    above :math:`1/n` and quadratic below, which makes the right side
    concave and finite everywhere. It is maximized by Newton's method with a
    backtracking line search. When the origin lies outside the convex hull
    of the :math:`g_i` the exact statistic is infinite: this shows as a dual
    that grows without bound (past :math:`50 n`, where the p-value is below
    :math:`e^{-50 n}`) or a maximizer with some :math:`1 + \\lambda^\\top g_i`
    below the switch point of the pseudo-logarithm, and ``(inf, 0.0)`` is
    returned. The statistic is
    invariant under invertible linear maps of the moments; each moment is
    scaled to unit maximum before the solve.

    References
    ----------
    .. [1] Qin, J. and Lawless, J. (1994). "Empirical likelihood and general
       estimating equations." Annals of Statistics 22(1).
    .. [2] Owen, A. B. (2001). "Empirical Likelihood." Chapman & Hall/CRC,
       section 12.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.inference import el_moment_test, el_mean_test
    >>> x = np.array([1.2, 0.4, 2.5, 1.9, 0.7, 1.1, 3.0, 0.2])
    >>> # one moment x - mu is the test of a mean
    >>> bool(np.isclose(el_moment_test(x - 1.0)[0], el_mean_test(x, 1.0)[0]))
    True
    """
    G = check_array(G, ensure_2d=False, dtype=np.float64, input_name="G")
    if G.ndim == 1:
        G = G[:, None]
    w = check_frequency_weights(sample_weight, G.shape[0])
    if w is not None:
        keep = w > 0
        G, w = G[keep], w[keep]
    n = float(G.shape[0] if w is None else w.sum())
    # the statistic is invariant under G -> G A for invertible A: scale each
    # moment to max |G_j| = 1 so that squares neither underflow nor overflow
    scale = np.abs(G).max(axis=0)
    if np.any(scale == 0):
        raise ValueError(
            f"G has moment columns {np.flatnonzero(scale == 0).tolist()} that "
            "are identically zero; the moment conditions are degenerate."
        )
    G = G / scale
    eps = _pseudo_eps(w, n)
    lam, value, _ = _solve_dual(_dense_evaluate(G, w, eps), n, None, G.shape[1])
    if not np.isfinite(value) or (1.0 + G @ lam).min() < eps * (1.0 - 1e-9):
        # the pseudo-logarithm is active at its maximizer: no reweighting of
        # the sample puts the origin inside, and the exact statistic is inf
        return np.inf, 0.0
    statistic = max(2.0 * value, 0.0)
    return float(statistic), float(chi2.sf(statistic, G.shape[1]))
