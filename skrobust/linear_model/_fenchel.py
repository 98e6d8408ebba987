"""Fenchel lower bounds on the optimum of the linear DRO objective.

From any weights ``q`` in the ambiguity set and loss-conjugate points ``u``
(see :func:`skrobust.linear_model._certificate._certificate`), made feasible
here: the intercept balanced, ``u`` projected onto the null space of ``[X
1]^T diag(q)`` (no ridge) or scaled into the conjugates' domain, and the
stationary weights at tied losses.
"""

import numpy as np

from skrobust.linear_model._heads import _bisect_into, _membership
from skrobust.linear_model._problem import (
    _MAX_PRECONDITIONED,
    _ROWS_PER_CHUNK,
    _weighted_gram,
)


def _bound_columns(problem, q):
    """``[q * lo, q * hi, q]`` for the conjugate domains (zeros if unbounded)."""
    bounds = problem.loss.dual_bounds(problem.target)
    if bounds is None:
        zero = np.zeros_like(q)
        return np.column_stack([zero, zero, q])
    lo, hi = bounds
    return np.column_stack([q * lo, q * hi, q])


def _fenchel_lower(problem, q, u, w, products=None):
    """Fenchel lower bound on the optimum from weights ``q`` and duals ``u``.

    See :func:`_certificate`; ``None`` when no feasible point was found.
    ``products``, when given, is ``X^T [q u, q lo, q hi, q]`` (``lo``, ``hi``
    the conjugates' domain, see :func:`_bound_columns`): for ``alpha > 0``
    the bound then needs no further pass over ``X``.
    """
    loss = problem.loss
    X, target = problem.X, problem.target
    q = np.asarray(q, dtype=float)
    bounds = loss.dual_bounds(target)
    if problem.coef_penalty is not None:
        return _fenchel_lower_penalized(problem, q, u, bounds)
    if problem.alpha > 0:
        if products is None:
            products = X.T @ np.column_stack([q * u, _bound_columns(problem, q)])
        xt_qu = products[:, 0]
        if problem.fit_intercept:
            u, t, side = _balance_intercept(u, q, bounds)
            if u is None:
                return None
            # X^T (q u) of the balanced u, from the same products
            if side == "lo":
                xt_qu = (1.0 - t) * xt_qu + t * products[:, 1]
            elif side == "hi":
                xt_qu = (1.0 - t) * xt_qu + t * products[:, 2]
            elif side == "shift":
                xt_qu = xt_qu - t * products[:, 3]
        quad = float(xt_qu @ xt_qu) / (2.0 * problem.alpha)
        correction = 0.0
    else:
        n_params = problem.n_coef + problem.n_intercept
        if n_params > _MAX_PRECONDITIONED:
            return None
        # the projection weighted by the room each u_i has in its domain
        # first; if the movable duals cannot cancel X^T (q u) (saturated
        # samples of a kinked loss), the plain projection, scaled into the
        # domains (valid, if weaker)
        u0, projected = u, None
        if not (np.all(np.isfinite(u0)) and np.all(np.isfinite(q))):
            return None
        for room in (_room(u0, bounds), np.ones_like(u0)):
            try:
                u = _project_into_box(X, q, u0, bounds, problem.fit_intercept, room)
            except np.linalg.LinAlgError:
                continue
            if u is None:
                continue
            r = X.T @ (q * u)
            r_icpt = float(q @ u) if problem.fit_intercept else 0.0
            if _null_residual_ok(X, q, u, r, r_icpt, problem.fit_intercept):
                projected = u
                break
        if projected is None:
            # u = 0 lies in every conjugate domain here and cancels X^T (q u)
            # exactly: the bound sum_i q_i min_z l_i(z) (exact for a perfect
            # fit, where the projected duals are rounding noise)
            u, r, r_icpt = np.zeros_like(u0), np.zeros(X.shape[1]), 0.0
        # what rounding leaves of X^T (q u) (at most 1e-9 of its scale)
        # enters through the coefficients, charged at twice the current ones
        theta = np.abs(w[: problem.n_coef])
        correction = 2.0 * float(np.abs(r) @ theta)
        if problem.fit_intercept:
            correction += 2.0 * abs(r_icpt) * abs(float(w[problem.n_coef]))
        quad = 0.0
    support = q > 0
    conj = loss.conjugate(u[support], target[support])
    if not np.all(np.isfinite(conj)):
        return None
    return -float(q[support] @ conj) - quad - correction


def _null_residual_ok(X, q, u, r, r_icpt, fit_intercept):
    """Whether ``[X 1]^T (q u) = (r, r_icpt)`` vanishes up to rounding.

    Without a ridge the Fenchel bound is ``-inf`` unless ``[X 1]^T (q u) =
    0``: a residual is accepted only at rounding level, ``1e-9`` of the
    magnitude ``|X|^T (q |u|)`` of the sums it comes from. (A larger one was
    charged at twice the current coefficients before, which is no bound: at
    a poor iterate the bound then exceeded the optimum.)
    """
    qa = q * np.abs(u)
    size = _abs_products(X, qa)
    ok = bool(np.all(np.abs(r) <= 1e-9 * size + 1e-300))
    if fit_intercept:
        ok = ok and abs(r_icpt) <= 1e-9 * float(qa.sum()) + 1e-300
    return ok


def _fenchel_lower_penalized(problem, q, u, bounds):
    """The Fenchel bound with a Wasserstein penalty ``c ||W||_*``.

    The conjugate of ``alpha / 2 ||W||^2 + c ||W||_*`` (``c = radius * L``)
    at ``v`` is ``dist(v, B)^2 / (2 alpha)``, ``B`` the ball of radius ``c``
    in the transport norm (the dual of the penalty's norm), and for ``alpha
    = 0`` the indicator of ``B``, reached by scaling ``u`` towards 0 (inside
    the domain of every Lipschitz loss here). Two passes over ``X``.
    """
    pen = problem.coef_penalty
    c = float(pen.radius) * float(problem.loss.lipschitz)
    order = {2: 2, 1: np.inf, np.inf: 1}[pen._dual_order()]
    if problem.fit_intercept:
        u, _, _ = _balance_intercept(u, q, bounds)
        if u is None:
            return None
    v = problem.X.T @ (q * u)
    if problem.alpha > 0:
        quad = _distance_to_ball(v, c, order) ** 2 / (2.0 * problem.alpha)
    else:
        size = float(np.linalg.norm(v, order))
        if size > c:
            u = u * (c / size)
        quad = 0.0
    support = q > 0
    conj = problem.loss.conjugate(u[support], problem.target[support])
    if not np.all(np.isfinite(conj)):
        return None
    return -float(q[support] @ conj) - quad


def _distance_to_ball(v, c, order):
    """Euclidean distance from ``v`` to ``{z : ||z||_order <= c}``."""
    if order == 2:
        return max(float(np.linalg.norm(v)) - c, 0.0)
    if order == np.inf:
        return float(np.linalg.norm(v - np.clip(v, -c, c)))
    a = np.abs(v)
    if a.sum() <= c:
        return 0.0
    # l1 ball: soft-threshold at theta with sum (|v| - theta)_+ = c
    s = np.sort(a)[::-1]
    cums = np.cumsum(s) - c
    k = np.arange(1, s.size + 1)
    rho = np.flatnonzero(s - cums / k > 0)[-1]
    theta = cums[rho] / (rho + 1)
    return float(np.linalg.norm(v - np.sign(v) * np.maximum(a - theta, 0.0)))


def _fenchel_lower_multi(problem, q, U, w=None):
    """The Fenchel bound of :func:`_fenchel_lower` for the multinomial loss.

    ``U`` (n, K) holds ``softmax(z_i) - e_{y_i}``; an intercept needs ``sum_i
    q_i U_i = 0``, reached by the convex combination ``(1 - t) U_i + t (m -
    e_{y_i})`` with the smallest ``t`` that keeps ``m`` (a class distribution
    next to the weighted class frequencies) on the simplex. Two passes over
    ``X``.

    For ``alpha = 0`` the bound needs ``[X 1]^T (q U) = 0``: ``(q, U)`` from
    :func:`_stationary_weights` meets it up to rounding, and what is left,
    ``r``, enters through the coefficients at twice the current ones, as in
    :func:`_fenchel_lower` (``w``, the flat parameters, is needed then;
    ``None`` without it).
    """
    X, target = problem.X, problem.target
    if problem.alpha <= 0:
        if w is None:
            return None
        W, b, _ = problem.unpack(w)
        icpt = problem.fit_intercept
        R, R_icpt, ok = _multi_residual(X, q, U, icpt)
        if not ok:
            # cancel the residual by moving U (q stays in the set): each
            # class's column projected as in _fenchel_lower; the moves sum
            # to zero over classes (so do the residuals), keeping the rows
            # of U + e_y on the simplex's hyperplane, and the result is
            # used only if those rows stay nonnegative
            if X.shape[1] + int(icpt) > _MAX_PRECONDITIONED:
                return None
            ones = np.ones(X.shape[0])
            H = _weighted_gram(X, q, icpt)
            try:
                U = np.column_stack(
                    [
                        _project_null(X, q, U[:, k], H, icpt, ones)
                        for k in range(U.shape[1])
                    ]
                )
            except np.linalg.LinAlgError:
                return None
            R, R_icpt, ok = _multi_residual(X, q, U, icpt)
            if not ok:
                return None  # not stationary: no bound (see _null_residual_ok)
        support = q > 0
        conj = problem.loss.conjugate(U[support], target[support])
        if not np.all(np.isfinite(conj)):
            return None
        correction = 2.0 * float(np.sum(np.abs(R) * np.abs(W)))
        if problem.fit_intercept:
            correction += 2.0 * float(np.abs(R_icpt) @ np.abs(b))
        return -float(q[support] @ conj) - correction
    n, K = U.shape
    E = np.zeros((n, K))
    E[np.arange(n), target] = 1.0
    xt_qu = X.T @ (U * q[:, None])
    if problem.fit_intercept:
        g = q @ U
        ybar = q @ E
        positive = g > 0
        if np.any(positive & (ybar <= 0)):
            return None
        if np.any(positive):
            r = float(np.max(g[positive] / ybar[positive]))
            t = r / (1.0 + r)
            m = np.maximum(ybar - g / r, 0.0)
            m /= m.sum()
            U = (1.0 - t) * U + t * (m[None, :] - E)
            xt_q = X.T @ np.column_stack([q, E * q[:, None]])
            xt_qu = (1.0 - t) * xt_qu + t * (np.outer(xt_q[:, 0], m) - xt_q[:, 1:])
    support = q > 0
    conj = problem.loss.conjugate(U[support], target[support])
    if not np.all(np.isfinite(conj)):
        return None
    quad = float(np.sum(xt_qu * xt_qu)) / (2.0 * problem.alpha)
    return -float(q[support] @ conj) - quad


def _abs_products(X, V):
    """``|X|^T V`` in row blocks (no copy of ``X``)."""
    out = np.zeros((X.shape[1],) + V.shape[1:])
    for start in range(0, X.shape[0], _ROWS_PER_CHUNK):
        rows = slice(start, start + _ROWS_PER_CHUNK)
        out += np.abs(X[rows]).T @ V[rows]
    return out


def _multi_residual(X, q, U, fit_intercept):
    """``X^T (q U)``, ``sum_i q_i U_i`` and whether both vanish up to rounding."""
    qU = U * q[:, None]
    R = X.T @ qU
    R_icpt = qU.sum(axis=0)
    size = _abs_products(X, np.abs(qU))
    ok = bool(np.all(np.abs(R) <= 1e-9 * size + 1e-300))
    if fit_intercept:
        ok = ok and bool(
            np.all(np.abs(R_icpt) <= 1e-9 * np.abs(qU).sum(axis=0) + 1e-300)
        )
    return R, R_icpt, ok


def _balance_intercept(u, q, bounds):
    """Move ``u`` so that ``sum q u = 0``, staying in the conjugates' domain.

    Unbounded domains take a uniform shift ``u - t``; bounded ones the convex
    combination ``(1 - t) u + t lo`` (or ``hi``) on the side that reduces the
    sum. Returns ``(u, t, side)``, or ``(None, 0, None)`` if impossible.
    """
    total = float(q.sum())
    g = float(q @ u)
    if g == 0.0:
        return u, 0.0, None
    if bounds is None:
        t = g / total
        return u - t, t, "shift"
    lo, hi = bounds
    if g > 0:
        room = float(q @ (u - lo))
        if room < g:
            return None, 0.0, None
        t = g / room
        return (1.0 - t) * u + t * lo, t, "lo"
    room = float(q @ (hi - u))
    if room < -g:
        return None, 0.0, None
    t = -g / room
    return (1.0 - t) * u + t * hi, t, "hi"


def _room(u, bounds):
    """How far each ``u_i`` may move inside its domain, in [0, 1].

    ``(u - lo) (hi - u) / ((hi - lo) / 2)^2`` for bounded domains, 1 for
    unbounded ones: a projection weighted by it moves the duals at the kink
    (a smoothed absolute loss's interpolated samples) and leaves the
    saturated ones, so the result rarely has to be scaled back into the box.
    """
    if bounds is None:
        return np.ones_like(u)
    lo, hi = bounds
    half = 0.5 * (hi - lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        room = (u - lo) * (hi - u) / np.where(half > 0, half * half, 1.0)
    return np.clip(np.where(half > 0, room, 0.0), 0.0, 1.0)


def _project_null(X, q, u, H, fit_intercept, room):
    """``u - room * [X 1] lam`` with ``[X 1]^T diag(q) (that) = 0``.

    The least change in the metric ``sum q delta^2 / room``; ``H`` is
    ``[X 1]^T diag(q room) [X 1]``.
    """
    d = X.shape[1]
    qu = q * u
    r = X.T @ qu
    if fit_intercept:
        r = np.append(r, qu.sum())
    for _ in range(2):  # one step of iterative refinement
        lam = np.linalg.lstsq(H, r, rcond=1e-13)[0]
        step = X @ lam[:d]
        if fit_intercept:
            step += lam[d]
        u = u - room * step
        qu = q * u
        r = X.T @ qu
        if fit_intercept:
            r = np.append(r, qu.sum())
    return u


def _project_into_box(X, q, u, bounds, fit_intercept, room, rounds=4):
    """``u`` projected onto ``[X 1]^T (q u) = 0`` inside the domains.

    An active-set loop: project (:func:`_project_null`, metric ``room``),
    clip what left its domain to the bound and fix it there (room 0), and
    project again, at most ``rounds`` times; what still sticks out is scaled
    back (:func:`_scale_into`: valid, if weaker). One O(n d^2) pass per
    round; a second round only when the first left the domain.
    """
    room = np.asarray(room, dtype=float)
    for k in range(rounds):
        if not np.any(room > 0):
            return None  # nothing can move
        H = _weighted_gram(X, q * room, fit_intercept)
        v = _project_null(X, q, u, H, fit_intercept, room)
        if bounds is None:
            return v
        lo, hi = bounds
        out = (v < lo) | (v > hi)
        if not np.any(out):
            return v
        if k == rounds - 1:
            break
        u = np.clip(v, lo, hi)
        room = np.where(out, 0.0, room)
    # (a scaling keeps [X 1]^T (q v) = 0; a clip would not)
    return _scale_into(v, bounds)


def _scale_into(u, bounds):
    """Scale ``u`` towards 0 (inside every domain here) until it fits."""
    if bounds is None:
        return u
    lo, hi = bounds
    with np.errstate(divide="ignore", invalid="ignore"):
        caps = np.where(u > hi, hi / u, np.where(u < lo, lo / u, 1.0))
    t = float(np.clip(np.min(caps), 0.0, 1.0)) if caps.size else 1.0
    return u * t


def _stationary_weights(problem, q0, u, W):
    """Weights in the set closest to ``p`` that make the gradient vanish.

    At a kink of the risk (tied losses, for example a constant predictor)
    every weight vector of the set that maximizes ``E_q[loss]`` is a
    subgradient, and the optimality condition is that one of them gives
    ``[X 1]^T (q u_k) = -alpha [W_k, 0]`` for every output ``k``. This solves

        min_q sum_i (q_i - p_i)^2 / p_i  s.t.  those equations, sum q = 1,
        q >= 0

    (the chi-square distance to ``p``) by a semismooth Newton method on its
    dual, ``q = p max(0, 1 + C lam)`` with ``C = [diag(u_k) [X 1] ..., 1]``:
    each step one weighted Gram matrix per pair of outputs, O(n d^2 K^2), no
    copy of ``X``. ``u`` is ``(n,)`` (one output) or ``(n, K)``; for the
    multinomial loss (rows of ``u`` sum to zero, so the last output's
    equations follow from the others when ``alpha = 0``) pass ``K - 1``
    columns. If the result is outside the set it is moved back towards
    ``q0`` (in the set) until it is inside. ``None`` when the set's
    membership test is unknown.
    """
    p = problem.p
    inside = _membership(problem.ambiguity, p)
    if inside is None:
        return None
    X = problem.X
    d = X.shape[1]
    icpt = problem.fit_intercept
    U = u[:, None] if u.ndim == 1 else u
    K = U.shape[1]
    width = d + int(icpt)  # equations per output
    m = K * width + 1
    target = np.zeros(m)
    for k in range(K):
        target[k * width : k * width + d] = -problem.alpha * W[:, k]
    target[-1] = 1.0

    def apply_c(lam):
        out = np.full(X.shape[0], lam[-1])
        for k in range(K):
            block = lam[k * width : (k + 1) * width]
            inner = X @ block[:d]
            if icpt:
                inner += block[d]
            out += U[:, k] * inner
        return out

    def apply_ct(v):
        parts = []
        for k in range(K):
            uv = U[:, k] * v
            parts.append(X.T @ uv)
            if icpt:
                parts.append([uv.sum()])
        parts.append([v.sum()])
        return np.concatenate(parts)

    def gram(weights):
        # C^T diag(weights) C from [X 1]^T diag(weights u_k u_l) [X 1] and
        # X^T (w u_k); a difference of two Gram matrices for k != l (the
        # product u_k u_l takes both signs)
        G = np.empty((m, m))
        for k in range(K):
            rows = slice(k * width, (k + 1) * width)
            for j in range(k, K):
                cols = slice(j * width, (j + 1) * width)
                c = weights * U[:, k] * U[:, j]
                block = _weighted_gram(X, np.maximum(c, 0.0), icpt)
                if j != k:
                    block -= _weighted_gram(X, np.maximum(-c, 0.0), icpt)
                G[rows, cols] = block
                G[cols, rows] = block.T
            wu = weights * U[:, k]
            G[k * width : k * width + d, -1] = G[-1, k * width : k * width + d] = (
                X.T @ wu
            )
            if icpt:
                G[k * width + d, -1] = G[-1, k * width + d] = wu.sum()
        G[-1, -1] = weights.sum()
        return G

    def dual_value(lam, q):
        # the concave dual: lam^T target - sum q^2 / (2 p) (up to a constant)
        return float(lam @ target) - 0.5 * float(np.sum(q * q / np.where(p > 0, p, 1)))

    lam = np.zeros(m)
    q = p.copy()
    scale_t = 1.0 + float(np.max(np.abs(target)))
    for _ in range(30):
        resid = apply_ct(q) - target
        if float(np.max(np.abs(resid))) <= 1e-13 * scale_t:
            break
        active = (1.0 + apply_c(lam)) > 0
        J = gram(p * active)
        step = np.linalg.lstsq(J, -resid, rcond=1e-13)[0]
        value = dual_value(lam, q)
        t = 1.0
        for _ in range(30):  # backtracking on the dual objective
            trial = lam + t * step
            q_trial = p * np.maximum(0.0, 1.0 + apply_c(trial))
            if dual_value(trial, q_trial) >= value - 1e-15 * abs(value):
                break
            t *= 0.5
        lam, q = trial, q_trial
    total = q.sum()
    if not total > 0:
        return None
    # the segment from q0 (inside) to q; the set is convex
    return _bisect_into(inside, q / total, q0)
