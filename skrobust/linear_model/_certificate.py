"""The certificate of a linear DRO solution: exact objective, lower bound, gap.

Every solve of the engine ends here (:func:`_certificate`), once: the exact
(unsmoothed) objective at the solution, the best Fenchel lower bound found
from the solver's dual point (:mod:`skrobust.linear_model._fenchel`), their
gap and the KKT residual, in the dict of :func:`_certificate_info`.
"""

import numpy as np

from skrobust.linear_model._fenchel import (
    _bound_columns,
    _fenchel_lower,
    _fenchel_lower_multi,
    _stationary_weights,
)
from skrobust.linear_model._heads import _into_set, _smoothed_weights
from skrobust.linear_model._problem import _MAX_PRECONDITIONED

# Floor of the objective's scale, as a fraction of the mean loss at zero.
_SCALE_FLOOR = 1e-3


def _objective_scale(problem):
    """Floor of the relative tolerance: 1e-3 times the mean loss at zero.

    Certificates compare the gap with ``tol * max(|objective|, scale)``, so
    that a (nearly) perfect fit, objective 0, is judged on the problem's own
    scale: its gap must be below ``tol * 1e-3`` times the null model's loss.
    """
    Z = np.zeros((problem.X.shape[0], problem.n_outputs))
    losses = problem.loss.value(Z, problem.target)
    # the nominal mean, not the robust risk: a floor needs no exact solve
    return max(_SCALE_FLOOR * abs(float(np.dot(problem.p, losses))), 1e-300)


def _certificate(problem, w, tau, tol, scale, final=True):
    """Duality gap and KKT residual of the exact objective at ``w``.

    Returns a dict with ``objective`` (exact, unsmoothed), ``lower_bound``,
    ``duality_gap`` (their difference, ``nan`` when no bound is available),
    ``kkt_residual`` (largest entry of the gradient, with the worst-case
    weights as the gradient of the risk: a subgradient at kinks),
    ``threshold`` (``tol * max(|objective|, scale)``), ``scale`` and
    ``certified``.

    The lower bound is Fenchel duality: for any ``q`` in the ambiguity set and
    any ``u`` in the domain of the loss conjugates ``l_i*`` with ``sum q_i u_i
    = 0`` (an intercept),

        F* >= -sum_i q_i l_i*(u_i) - ||X^T (q u)||^2 / (2 alpha),

    and for ``alpha = 0`` the same without the last term when ``X^T (q u) =
    0``. The dual point is the one the solver holds: the smoothed problem's
    weights (mapped into the set) and loss derivatives, which converge to a
    saddle point as the temperature shrinks. ``u`` is made feasible by a
    move towards the domain's bounds (intercept) or by a projection onto the
    null space of ``[X 1]^T diag(q)`` (``alpha = 0``, up to
    ``_MAX_PRECONDITIONED`` parameters; one O(n d^2) pass) and a scaling into
    the domain. With ``alpha > 0`` the certificate costs one O(n d) pass.

    A smooth objective whose KKT residual is below ``100 * tol`` (the L-BFGS
    gradient tolerance, with the usual slack) is also certified.

    ``final=False`` (intermediate smoothing stages) tries only the smoothed
    dual point and skips the search for stationary weights at tied losses
    (:func:`_stationary_weights`, O(n d^2)).
    """
    W, b, dual = problem.unpack(w)
    Z = problem.predictions(W, b)
    p = problem.p
    losses, u_exact = problem.loss.value_grad(Z, problem.target)
    if problem.trivial:
        risk, q_exact = float(np.dot(p, losses)), p
    else:
        risk, q_exact = problem.ambiguity.risk_and_weights(losses, p)
    value = float(risk) + 0.5 * problem.alpha * float(np.sum(W * W))
    if problem.coef_penalty is not None:
        value += float(problem.coef_penalty.penalty(W, problem.loss.lipschitz)[0])
    threshold = tol * max(abs(value), scale)
    smooth = (
        problem.loss.smooth_bound == 0
        and problem.coef_penalty is None
        and (problem.trivial or not problem.ambiguity.needs_smoothing)
    )
    # one pass over X: the gradient with the worst-case weights and, for
    # alpha > 0, what the Fenchel bound needs (see _fenchel_lower)
    multi = problem.n_outputs > 1
    fenchel = hasattr(problem.loss, "conjugate")
    fenchel = fenchel and (problem.coef_penalty is None or not multi)
    penalized = problem.coef_penalty is not None
    G = u_exact * q_exact[:, None]
    columns = [G]
    if fenchel and problem.alpha > 0 and not multi and not penalized:
        columns.append(_bound_columns(problem, q_exact))
    products = problem.X.T @ np.column_stack(columns)
    K = problem.n_outputs
    grad = products[:, :K]
    exact_products = products if fenchel and problem.alpha > 0 and not multi else None
    if problem.alpha:
        grad = grad + problem.alpha * W
    kkt = float(np.max(np.abs(grad))) if grad.size else 0.0
    if problem.fit_intercept:
        kkt = max(kkt, float(np.max(np.abs(G.sum(axis=0)))))
    if problem.coef_penalty is not None:
        kkt = np.nan  # the penalty's subgradient is not formed
    lower = -np.inf
    if smooth and problem.alpha == 0 and kkt <= 100 * tol:
        # certified by the KKT residual; without a ridge the Fenchel bound
        # needs an O(n d^2) projection, too dear for a smooth objective
        fenchel = False
    if fenchel:
        if multi:
            candidates = [(q_exact, u_exact, None)]
        else:
            candidates = [(q_exact, u_exact[:, 0], exact_products)]
        if tau > 0:
            smooth_losses, u_smooth = problem.loss.value_grad(Z, problem.target, tau)
            q_smooth = _smoothed_weights(problem, smooth_losses, tau)
            q_smooth = q_exact if q_smooth is None else q_smooth
            candidates.insert(
                0, (q_smooth, u_smooth if multi else u_smooth[:, 0], None)
            )
            if not final:
                candidates = candidates[:1]
        elif multi and not problem.trivial and problem.profile_dual:
            q_smooth = _smoothed_weights(problem, losses, 0.0)
            if q_smooth is not None:
                candidates.insert(0, (q_smooth, u_exact, None))
        for q, u, cols in candidates:
            if multi:
                bound = _fenchel_lower_multi(problem, q, u, w)
            else:
                bound = _fenchel_lower(problem, q, u, w, cols)
            if bound is not None and bound > lower:
                lower = bound
            if value - lower <= threshold:
                break
        if (
            tau > 0
            and not multi
            and value - lower > threshold
            and (final or value - lower <= 100 * threshold)
            and problem.n_coef + problem.n_intercept <= _MAX_PRECONDITIONED
        ):
            # close to the tolerance: one Newton step refines the dual point
            point = _newton_dual_point(problem, w, tau)
            if point is not None:
                bound = _fenchel_lower(problem, point[0], point[1], w)
                if bound is not None and bound > lower:
                    lower = bound
    if (
        final
        and fenchel
        and (not multi or problem.alpha == 0)
        and not penalized
        and value - lower > threshold
        and problem.n_coef + problem.n_intercept <= _MAX_PRECONDITIONED
    ):
        # tied losses (a kink of the risk): search the set for the weights
        # that make the gradient vanish (for the multinomial loss without a
        # ridge, the only dual point its Fenchel bound can use)
        if multi:
            q_tie = _stationary_weights(problem, q_exact, u_exact[:, :-1], W)
            if q_tie is not None:
                bound = _fenchel_lower_multi(problem, q_tie, u_exact, w)
        else:
            q_tie = _stationary_weights(problem, q_exact, u_exact[:, 0], W)
            if q_tie is not None:
                bound = _fenchel_lower(problem, q_tie, u_exact[:, 0], w)
        if q_tie is not None and bound is not None and bound > lower:
            lower = bound
    gap = value - lower if np.isfinite(lower) else np.nan
    certified = bool(np.isfinite(gap) and gap <= threshold)
    if smooth and not certified:
        if kkt > 100 * tol and problem.n_dual:
            # a joint (model, dual) formulation is smooth where the profiled
            # risk has a kink (tied losses): its gradient is the KKT residual
            _, joint_grad = problem(w, 0.0)
            kkt = min(kkt, float(np.max(np.abs(joint_grad))))
        certified = kkt <= 100 * tol
    return _certificate_info(
        value,
        lower,
        gap,
        kkt,
        threshold,
        scale,
        certified=certified,
        # (private) the exact risk and worst-case weights at w, for reuse
        _risk_weights=(float(risk), q_exact),
    )


def _certificate_info(objective, lower, gap, kkt, threshold, scale, **extra):
    """The certificate dict every certified solve reports (``solver_info_``).

    ``certified`` defaults to a finite ``gap`` within ``threshold``; the
    keys in ``extra`` (``certified``, ``method``, ``lp_gap``, ...) are added
    or override.
    """
    info = {
        "objective": float(objective),
        "lower_bound": float(lower),
        "duality_gap": float(max(gap, 0.0)) if np.isfinite(gap) else np.nan,
        "kkt_residual": kkt,
        "threshold": float(threshold),
        "scale": float(scale),
        "certified": bool(np.isfinite(gap) and gap <= threshold),
    }
    info.update(extra)
    return info


def _with_lower_bound(cert, lower):
    """``cert`` with the lower bound ``lower`` if larger (any valid bound).

    A certificate whose objective is itself a dual value of an inner solve
    (ConditionalCVaR's LP) carries that solve's own gap as ``lp_gap``, which
    stays in the duality gap.
    """
    if not np.isfinite(lower) or lower <= cert["lower_bound"]:
        return cert
    gap = max(cert["objective"] + cert.get("lp_gap", 0.0) - lower, 0.0)
    return dict(
        cert,
        lower_bound=float(lower),
        duality_gap=gap,
        certified=cert["certified"] or gap <= cert["threshold"],
    )


def _newton_dual_point(problem, w, tau):
    """The dual point ``(q, u)`` after one Newton step on the smoothed problem.

    At a smoothed solution the gradient ``[X 1]^T (q u)`` is small but not
    zero, and the Fenchel bound pays for it. The Newton step ``d = -H^{-1}
    g`` (``H`` the exact Hessian of :meth:`_Problem.hessian`, one O(n d^2)
    pass) moves the predictions by ``dz = [X 1] d``; to first order the loss
    derivatives move by ``l'' dz`` and the risk's weights by ``(diag(c) - v
    v^T) (l' dz)`` (the smoothed risk's curvature), which cancels the
    gradient up to second order. The moved point is then put back into the
    domains (clipped) and the set (the set's own mapping, or a scaling
    towards the current weights). Only for one output, no coefficient
    penalty, and sets profiled out (CVaR, total variation, the maximum) or
    trivial.
    """
    if (
        problem.n_outputs != 1
        or problem.coef_penalty is not None
        or not hasattr(problem.loss, "curvature")
        or problem.n_dual
        or (
            not problem.trivial
            and not hasattr(problem.ambiguity, "_profiled_curvature")
        )
    ):
        return None
    p = problem.p
    W, b, _ = problem.unpack(w)
    Z = problem.predictions(W, b)
    smooth_losses, dZ = problem.loss.value_grad(Z, problem.target, tau)
    u = dZ[:, 0]
    curvature = problem.loss.curvature(Z, problem.target, tau)
    if problem.trivial:
        q = p
    else:
        dual, _, q = problem._profile(smooth_losses, tau)
    _, grad = problem(w, tau)
    H = problem.hessian(w, tau, exact=True)
    step = -np.linalg.lstsq(H, grad[: H.shape[0]], rcond=1e-13)[0]
    d = problem.n_coef
    dz = problem.X @ step[:d]
    if problem.fit_intercept:
        dz += step[d]
    u_new = u + curvature * dz
    bounds = problem.loss.dual_bounds(problem.target)
    if bounds is not None:
        u_new = np.clip(u_new, bounds[0], bounds[1])
    if problem.trivial:
        return p, u_new
    diag, vec = problem.ambiguity._profiled_curvature(dual, smooth_losses, p, tau)
    dl = u * dz
    q_new = np.maximum(q + diag * dl - vec * float(vec @ dl), 0.0)
    q_feasible = _smoothed_weights(problem, smooth_losses, tau)
    q_new = _into_set(problem, q_new, q_feasible)
    if q_new is None:
        return None
    return q_new, u_new
