"""Risk heads the engine adds to the ambiguity sets, and what it asks of a set.

``_Mean`` is the trivial head (ERM: the warm start), ``_Max`` the maximum
loss (what a set reduces to when its worst case is a point mass for every
loss vector, see :func:`_reduces_to_max`). ``_membership`` is a test ``q in
set`` and ``_smoothed_weights`` the smoothed head's weights mapped into the
set: the dual points of the certificate.
"""

import numpy as np


class _Mean:
    """The trivial ambiguity set, used for the ERM warm start."""

    n_dual = 0
    needs_smoothing = False

    def is_trivial(self):
        return True

    def smoothing_error(self, tau, p=None):
        return 0.0


class _Max:
    """The maximum loss over the support, smoothed by a log-sum-exp.

    Stands in for an ambiguity set that puts all its mass on the largest loss
    for every loss vector (see :func:`_reduces_to_max`).
    """

    n_dual = 0
    needs_smoothing = True

    def is_trivial(self):
        return False

    def smoothing_error(self, tau, p=None):
        n = int(np.count_nonzero(p)) if p is not None else 1
        return float(tau) * np.log(max(n, 1))

    def risk(self, losses, p):
        return float(np.max(losses[p > 0]))

    def risk_and_weights(self, losses, p):
        on_support = np.where(p > 0, losses, -np.inf)
        top = on_support.max()
        q = np.where(on_support >= top, p, 0.0)
        return float(top), q / q.sum()

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        return np.empty(0)

    def dual_objective(self, dual, losses, p, smoothing=0.0):
        if smoothing > 0:
            value, q = self._smoothed(losses, p, smoothing)
        else:
            value, q = self.risk_and_weights(losses, p)
        return value, q, np.empty(0)

    def _smoothed(self, losses, p, tau):
        scaled = np.where(p > 0, losses / tau, -np.inf)
        top = scaled.max()
        e = np.exp(scaled - top)
        total = e.sum()
        return float(tau * (top + np.log(total))), e / total

    def _profiled(self, losses, p, smoothing, start=None):
        value, q = self._smoothed(losses, p, smoothing)
        return np.empty(0), value, q

    def _profiled_curvature(self, dual, losses, p, smoothing):
        _, q = self._smoothed(losses, p, smoothing)
        return q / smoothing, q / np.sqrt(smoothing)

    def feasible_weights(self, q, p):
        # every distribution on the support is in the set of the maximum
        q = np.where(p > 0, np.maximum(q, 0.0), 0.0)
        return q / q.sum()


def _reduces_to_max(problem):
    """Whether the ambiguity set is the maximum loss for every loss vector.

    The worst case of an f-divergence ball (or CVaR, total variation) is a
    point mass on the largest loss exactly when that point mass lies in the
    set, and the sample of least nominal weight is the hardest to reach: one
    exact solve on its indicator decides it for every loss vector.
    """
    if problem.trivial or problem.coef_penalty is not None:
        return False
    if not hasattr(problem.ambiguity, "worst_case_weights"):
        return False
    support = np.flatnonzero(problem.p > 0)
    if support.size < 2:
        return False
    lightest = support[np.argmin(problem.p[support])]
    indicator = np.zeros_like(problem.p)
    indicator[lightest] = 1.0
    inside = _membership(problem.ambiguity, problem.p)
    if inside is not None:
        # the point mass itself is in the set (O(n), no exact solve)
        return bool(inside(indicator))
    q = problem.ambiguity.worst_case_weights(indicator, problem.p)
    return bool(q[lightest] >= 1.0 - 1e-12)


def _membership(ambiguity, p):
    """A test ``q in set`` for the sets of :mod:`skrobust.ambiguity`, or None."""
    from skrobust.ambiguity import KL, CressieRead, CVaR, TotalVariation

    support = p > 0
    slack = 1.0 - 1e-12
    if isinstance(ambiguity, CressieRead):
        k = 2.0 if not hasattr(ambiguity, "k") else float(ambiguity.k)
        rho = float(ambiguity.radius)

        def inside(q):
            if np.any(q[~support] > 0):
                return False
            t = q[support] / p[support]
            f = (t**k - k * t + k - 1.0) / (k * (k - 1.0))
            return float(p[support] @ f) <= rho * slack

        return inside
    if isinstance(ambiguity, KL):
        rho = float(ambiguity.radius)

        def inside(q):
            if np.any(q[~support] > 0):
                return False
            qs = q[support]
            pos = qs > 0
            return float(qs[pos] @ np.log(qs[pos] / p[support][pos])) <= rho * slack

        return inside
    if isinstance(ambiguity, CVaR):
        cap = p / float(ambiguity.alpha)
        return lambda q: bool(np.all(q <= cap * (1.0 + 1e-12)))
    if isinstance(ambiguity, TotalVariation):
        delta = float(ambiguity.radius)
        return lambda q: 0.5 * float(np.abs(q - p).sum()) <= delta * slack
    if isinstance(ambiguity, _Max):
        return lambda q: not np.any(q[~support] > 0)
    return None


def _smoothed_weights(problem, smooth_losses, tau):
    """Weights of the smoothed head, mapped into the ambiguity set (or None)."""
    if problem.trivial:
        return problem.p
    if not problem.profile_dual:
        return None
    amb = problem.ambiguity
    p = problem.p
    dual, _, g = problem._profile(smooth_losses, tau)
    # radius balls (with a `divergence`) keep their own paths here: their
    # feasible_weights shrink toward p, a looser point for the certificate
    if hasattr(amb, "feasible_weights") and not hasattr(amb, "divergence"):
        return amb.feasible_weights(g, p)
    if hasattr(amb, "_cvar") and hasattr(amb, "radius"):
        # total variation: (1 - delta) * (CVaR_{1-delta} weights) + delta * any
        # distribution lies in the ball (their sum of |q - p| / 2 <= delta)
        cvar = amb._cvar()
        delta = float(amb.radius)
        _, g_cvar, _ = cvar.dual_objective(dual, smooth_losses, p, smoothing=tau)
        top = _softmax_on_support(smooth_losses, p, tau)
        return (1.0 - delta) * cvar.feasible_weights(g_cvar, p) + delta * top
    return None


def _softmax_on_support(losses, p, tau):
    """Softmax of ``losses / tau`` on the support of ``p``.

    At ``tau = 0`` its limit: uniform on the largest losses of the support.
    """
    if tau == 0:
        top = np.where(p > 0, losses, -np.inf)
        top = (top == top.max()).astype(float)
        return top / top.sum()
    scaled = np.where(p > 0, losses / tau, -np.inf)
    scaled -= scaled.max()
    e = np.exp(scaled)
    return e / e.sum()


def _into_set(problem, q, q_inside):
    """Weights ``q`` moved into the ambiguity set (or ``None``).

    The set's own mapping when it has one (CVaR, the maximum); otherwise
    ``q`` normalized and, if outside, moved towards ``q_inside`` (a point of
    the set; the set is convex) by bisection on the membership test.
    """
    amb, p = problem.ambiguity, problem.p
    if hasattr(amb, "feasible_weights") and not hasattr(amb, "divergence"):
        return amb.feasible_weights(q, p)
    total = float(q.sum())
    inside = _membership(amb, p)
    if inside is None or q_inside is None or not total > 0:
        return None
    return _bisect_into(inside, q / total, q_inside)


def _bisect_into(inside, q, q_inside):
    """``q`` if ``inside(q)``, else the last point of the segment from
    ``q_inside`` (in the convex set) to ``q`` that is inside (bisection)."""
    if inside(q):
        return q
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if inside(q_inside + mid * (q - q_inside)):
            lo = mid
        else:
            hi = mid
    return q_inside + lo * (q - q_inside)
