"""Generalized empirical-likelihood bounds as worst-case expectations.

The radius of the ball, and the robust risk of a loss vector with its
duality gap, computed by the ambiguity set's own protocol (``_exact``,
``dual_objective``) on the losses rescaled to [0, 1].
"""

import warnings

import numpy as np
from scipy.stats import chi2
from sklearn.exceptions import ConvergenceWarning

from skrobust.ambiguity import KL, CressieRead, CVaR, check_ambiguity

#: duality gap of a bound over a fixed loss vector, relative to the loss range
GAP_TOL = 1e-9
#: duality gap of the DRO fit behind the optimal-value bound, relative to it
FIT_GAP_TOL = 1e-6


def _gel_radius(confidence, sided, n):
    """Radius ``chi2_{1, level} / (2 n)`` in the ``f''(1) = 1`` convention.

    Two-sided bounds use the ``confidence`` quantile; a one-sided bound at
    level ``confidence`` uses the ``2 * confidence - 1`` quantile, since each
    side of the two-sided interval misses with probability ``(1 - a) / 2``
    asymptotically (Duchi, Glynn and Namkoong, 2021, Theorem 2).
    """
    if sided == "two-sided":
        level = confidence
    else:
        if confidence <= 0.5:
            raise ValueError(
                "confidence_level must be > 0.5 for a one-sided bound; got "
                f"{confidence}."
            )
        level = 2.0 * confidence - 1.0
    return float(chi2.ppf(level, 1)) / (2.0 * n)


def _divergence_set(ambiguity, radius):
    ball = check_ambiguity(ambiguity)
    if isinstance(ball, CVaR) or "radius" not in ball.get_params():
        raise ValueError(
            "ambiguity must be an f-divergence ball with a radius (ChiSquare, "
            f"CressieRead or KL, or 'chi2' / 'kl'); got {ball!r}."
        )
    return ball.set_params(radius=radius)


def _divergence(ball, q, p):
    """``D_f(q || p)`` for the ball's ``f``; None when the ball is not known.

    One work array of ``q``'s size (``p`` may be a broadcast view).
    """
    if isinstance(ball, KL):
        # sum over q > 0 of q log(q / p): the ratio is 1 (log 0) elsewhere
        ratio = np.divide(q, p, out=np.ones_like(q), where=q > 0)
        np.log(ratio, out=ratio)
        return float(np.dot(q, ratio))
    if isinstance(ball, CressieRead):
        k = ball._k
        on = p > 0
        if k == 2.0 and on.all():
            # sum_i p_i (q_i / p_i - 1)^2 / 2 = sum_i (q_i - p_i)^2 / (2 p_i)
            d = np.subtract(q, p)
            d *= d
            d /= p
            return 0.5 * float(d.sum())
        t = q[on] / p[on]
        if k == 2.0:
            f = 0.5 * (t - 1.0) ** 2
        else:
            f = (np.expm1(k * np.log(np.maximum(t, 1e-300))) - k * (t - 1.0)) / (
                k * (k - 1.0)
            )
            f = np.where(t > 0, f, 1.0 / k)
        return float(np.dot(p[on], f))
    return None


def _certified_risk(ball, losses, p, *, sign=1.0, weights=True):
    """Robust risk of ``sign * losses`` under ``p`` with its duality gap.

    The exact solve of the ambiguity set is run on the losses rescaled to
    [0, 1] and checked there: the dual objective at the returned dual
    variable is an upper bound on the robust risk, and the expectation under
    a feasible distribution a lower bound. The worst-case weights ``q`` are
    moved toward ``p`` until feasible, ``p + t (q - p)`` with ``t = min(1,
    rho / D(q))`` (feasible since the divergence is convex and ``D(p) =
    0``). Returns ``(risk, gap, q_feasible)``, the gap in loss units: the
    exact risk is within ``gap`` of ``risk``. The gap is ``nan`` for a ball
    whose divergence is not known here.

    ``p=None`` is the uniform distribution (a broadcast view, no array);
    ``sign=-1`` evaluates the risk of ``-losses`` without forming it;
    ``weights=False`` returns None for ``q_feasible`` and frees ``q`` before
    the dual check (peak memory: the rescaled losses and the set's own work
    arrays).
    """
    n = losses.shape[0]
    uniform = p is None
    if uniform:
        p = np.broadcast_to(np.float64(1.0 / n), (n,))
        lo, hi = losses.min(), losses.max()
    else:
        on = p > 0
        lo = np.min(losses, where=on, initial=np.inf)
        hi = np.max(losses, where=on, initial=-np.inf)
        del on
    if sign < 0:
        lo, hi = -hi, -lo  # the range of -losses
    mean = sign * float(np.dot(p, losses))
    if hi - lo <= 0 or ball.is_trivial():
        return mean, 0.0, (np.array(p) if weights else None)
    scale = hi - lo

    def rescaled():
        # z = (sign * losses - lo) / scale in [0, 1], in one array of our own,
        # with the samples of zero weight at 0 (as the unit solvers require)
        z = np.subtract(losses, lo) if sign > 0 else np.subtract(-lo, losses)
        z /= scale
        if not uniform:
            z[p == 0] = 0.0
        return z

    ball._validate_params()
    z = rescaled()
    # the set's exact solve on the unit losses (what ``_exact`` runs after its
    # own rescaling copy, which would be a third array of n floats here)
    risk_z, q, dual = ball._solve_unit(z, p)
    dual = ball._dual_to_loss_units(dual, 0.0, 1.0)  # as _exact maps it
    if not q.flags.writeable or np.shares_memory(q, p):
        q = np.array(q)
    del z
    z = rescaled()  # the solve may have overwritten z (centered it, built q)
    div = _divergence(ball, q, p)
    if div is None:
        gap_z = np.nan
        q_feasible = q if weights else None
    else:
        radius = float(ball.radius)
        t = 1.0 if div <= radius else radius / div
        # E_{p + t (q - p)}[z], without forming the feasible weights
        primal = t * float(np.dot(q, z)) + (1.0 - t) * float(np.dot(p, z))
        q_feasible = None
        if weights:
            q_feasible = q if t == 1.0 else p + t * (q - p)
        del q
        dual_value = float(ball.dual_objective(np.asarray(dual), z, p)[0])
        gap_z = max(dual_value, risk_z) - min(primal, risk_z)
    risk = float(np.clip(lo + scale * risk_z, mean, hi))
    return risk, scale * gap_z, q_feasible


def _warn_gap(gap, tol, what):
    if gap > tol:
        warnings.warn(
            f"The {what} is not certified: its duality gap is {gap:.3g}, above "
            f"the tolerance {tol:.3g}.",
            ConvergenceWarning,
            stacklevel=3,
        )
