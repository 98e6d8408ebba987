"""The one empirical-likelihood dual solver, shared by every EL statistic.

Every empirical-likelihood ratio in :mod:`skrobust.inference` (a mean, a set
of estimating equations, a regression coefficient's profile) is the maximum
of the same concave dual

.. math::

    \\ell(\\lambda) = \\sum_i w_i \\log_\\star(1 + \\lambda^\\top g_i),

with Owen's pseudo-logarithm :math:`\\log_\\star`. :func:`solve_dual` maximizes
it by damped Newton and returns its certificate (the squared Newton
decrement); the callers only supply how the data are touched (an
``evaluate`` callable: a dense matrix, one vector, or blocks of a design that
is never formed). The worst-case expectations of the generalized empirical
likelihood are not solved here: they go through the ambiguity sets'
protocol (:mod:`skrobust.inference._gel_risk`).
"""

import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from sklearn.exceptions import ConvergenceWarning

MAX_ITER = 200
#: relative tolerance on the squared Newton decrement of the dual solve
DUAL_TOL = 1e-10
#: half the statistic per observation beyond which the dual is declared
#: unbounded (the p-value is below exp(-OBJ_CAP * n) there)
OBJ_CAP = 50.0


def wsum(values, w):
    """Weighted sum (plain sum when ``w`` is None)."""
    return values.sum() if w is None else np.dot(w, values)


def wdot(a, b, w):
    """Weighted inner product ``sum_i w_i a_i b_i`` (no temporary array)."""
    return np.dot(a, b) if w is None else np.einsum("i,i,i->", a, w, b)


def pseudo_log(d, eps, w=None):
    """Owen's pseudo-logarithm: weighted total and first two derivatives.

    ``log`` above ``eps`` and its second-order Taylor expansion below, so the
    dual objective is concave and finite on all of R^d; it equals the true
    dual wherever every ``d_i >= eps`` (always at the solution when the
    hypothesized value is inside the convex hull, with ``eps = 1 / n``).

    Returns ``(sum_i w_i log*(d_i), psi1, psi2)`` with the derivatives per
    sample. ``d`` is consumed: its buffer is reused for ``psi1``.
    """
    if d.min() >= eps:
        total = float(wsum(np.log(d), w))
        psi1 = np.divide(1.0, d, out=d)
        psi2 = psi1 * psi1
        psi2 *= -1.0
        return total, psi1, psi2
    low = d < eps
    t = d[low] / eps
    d[low] = 1.0
    value = np.log(d)
    value[low] = np.log(eps) - 1.5 + 2.0 * t - 0.5 * t * t
    total = float(wsum(value, w))
    del value
    psi1 = np.divide(1.0, d, out=d)
    psi2 = psi1 * psi1
    psi2 *= -1.0
    psi1[low] = (2.0 - t) / eps
    psi2[low] = -1.0 / eps**2
    return total, psi1, psi2


def pseudo_eps(w, n):
    """Where the pseudo-logarithm switches to its quadratic: ``min(1, w) / n``.

    At the exact solution ``p_i = 1 / (n d_i)`` with ``w_i p_i <= 1``, so
    ``d_i >= w_i / n``; below the smallest positive weight over ``n`` the
    logarithm is never needed, and the pseudo-logarithm equals it wherever
    the hypothesized value is inside the convex hull.
    """
    if w is None:
        return 1.0 / n
    return min(1.0, float(w[w > 0].min())) / n


def solve_dual(evaluate, n, lam, n_moments, max_iter=MAX_ITER, stacklevel=3):
    """Maximize ``l(lam) = sum_i w_i log*(1 + lam' G_i)`` by damped Newton.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(lam)`` returns ``(l(lam), gradient, minus the Hessian)``.
        Callers with structure (``G = X * r``, one column) accumulate these
        their own way and never form ``G``.
    n : float
        Effective sample size ``sum(w)``.
    lam : ndarray of shape (n_moments,) or None
        Starting point (warm start); zero when None.
    n_moments : int
        Number of moments.
    max_iter : int, default=MAX_ITER
        Newton iterations before the ConvergenceWarning.
    stacklevel : int, default=3
        Of that warning.

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
    for _ in range(max_iter):
        if n_moments == 1 and neg_hess[0, 0] > 0:
            step = grad / neg_hess[0, 0]  # (a 1 x 1 system)
        else:
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
    tol = DUAL_TOL * max(1.0, abs(obj))
    warnings.warn(
        "Newton's method for the empirical-likelihood dual did not converge: "
        f"the squared Newton decrement (the certificate) is {decrement:.3g}, "
        f"above the tolerance {tol:.3g} (its relative residual, the decrement "
        f"over max(1, |dual|), is {decrement / max(1.0, abs(obj)):.3g}, above "
        f"{DUAL_TOL:.3g}); the statistic may be inaccurate.",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )
    return lam, obj, decrement


#: rows per block of the Gram products (at most an eighth of G's rows above
#: 4096 rows, one block below, so a block stays small next to G)
GRAM_ROWS = 8192


def dense_evaluate(G, w, eps):
    """``evaluate`` of :func:`solve_dual` for an explicit matrix ``G``.

    The Hessian ``G' diag(-psi'') G`` is accumulated over blocks of rows, so
    no weighted copy of ``G`` is formed.
    """

    def evaluate(lam):
        d = G @ lam
        d += 1.0
        total, psi1, psi2 = pseudo_log(d, eps, w)
        if w is not None:
            psi1 *= w
            psi2 *= w
        psi2 *= -1.0
        neg_hess = np.zeros((G.shape[1], G.shape[1]))
        rows = G.shape[0] if G.shape[0] <= 4096 else min(GRAM_ROWS, G.shape[0] // 8)
        for start in range(0, G.shape[0], rows):
            block = G[start : start + rows]
            neg_hess += (block * psi2[start : start + rows, None]).T @ block
        return total, G.T @ psi1, neg_hess

    return evaluate


def vector_evaluate(z, w, eps):
    """``evaluate`` of :func:`solve_dual` for one moment ``g_i = z_i``.

    Inner products instead of matrix products; where every ``1 + lam z_i``
    is above ``eps`` (the logarithm itself) the derivatives come from the
    single ratio ``r = z / (1 + lam z)``: ``l' = sum w r``, ``-l'' = sum w
    r^2``.
    """

    def evaluate(lam):
        if lam[0] == 0.0:  # the start: d = 1, r = z
            grad, neg_hess = float(wsum(z, w)), float(wdot(z, z, w))
            return 0.0, np.array([grad]), np.array([[neg_hess]])
        d = z * lam[0]
        d += 1.0
        if d.min() >= eps:
            r = np.divide(z, d)
            np.log(d, out=d)
            total = float(wsum(d, w))
            grad = float(wsum(r, w))
            if w is not None:
                d = np.multiply(r, w, out=d)
                neg_hess = float(np.dot(d, r))
            else:
                neg_hess = float(np.dot(r, r))
            return total, np.array([grad]), np.array([[neg_hess]])
        total, psi1, psi2 = pseudo_log(d, eps, w)
        grad = float(wdot(psi1, z, w))
        psi2 *= z
        neg_hess = -float(wdot(psi2, z, w))
        return total, np.array([grad]), np.array([[neg_hess]])

    return evaluate
