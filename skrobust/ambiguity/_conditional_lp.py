"""The linear program of the conditional CVaR set (see ConditionalCVaR).

The controls standardized under the nominal weights without a copy of the
matrix they are read from (:class:`_Controls`), the exact mapping of nearby
weights into the set (:func:`_feasible_weights`), and the LP itself, solved
by HiGHS in one piece or on a working set (:func:`_conditional_lp_coef`).
"""

import numpy as np
from scipy.linalg import qr
from scipy.optimize import linprog

from skrobust.ambiguity._cvar import CVaR

# Rows per block when the controls are read from X block by block.
_BLOCK = 1024


class _Controls:
    """The standardized controls ``(X[:, idx] - center) / scale``.

    Stored as a matrix when there are at most half as many controls as
    features; otherwise products and row blocks are computed from ``X``
    itself (no copy of the columns): ``C @ v``, ``C.T @ u``, ``C[rows]`` (a
    dense copy of those rows) and the weighted Gram matrix. Columns that are
    constant under ``p`` (zero spread) constrain nothing and are dropped, as
    are columns in the span of the others (collinear controls).
    """

    def __init__(self, X, columns, p):
        self.X = X
        n, d = X.shape
        columns = np.asarray(columns, dtype=np.intp)
        self.n_features = d
        # by blocks copied in C order: the same arithmetic whatever the
        # memory layout of X
        center = np.zeros(columns.size)
        for start in range(0, n, _BLOCK):
            center += p[start : start + _BLOCK] @ X[start : start + _BLOCK][:, columns]
        spread = np.zeros(columns.size)
        size = np.zeros(columns.size)
        for start in range(0, n, _BLOCK):
            B = X[start : start + _BLOCK][:, columns] - center
            spread += p[start : start + _BLOCK] @ (B * B)
            np.maximum(size, np.max(np.abs(B + center), axis=0, initial=0.0), out=size)
        scale = np.sqrt(spread)
        self.keep = scale > 1e-10 * size
        if np.count_nonzero(self.keep) > 1:
            # collinear controls constrain nothing more than their span:
            # keep a basis (pivoted QR of their correlation matrix)
            idx = np.flatnonzero(self.keep)
            G = np.zeros((idx.size, idx.size))
            for start in range(0, n, _BLOCK):
                B = (X[start : start + _BLOCK][:, columns[idx]] - center[idx]) / scale[
                    idx
                ]
                G += B.T @ (B * p[start : start + _BLOCK, None])
            _, R, pivot = qr(G, pivoting=True)
            rank = int(np.count_nonzero(np.abs(np.diag(R)) > 1e-10 * abs(R[0, 0])))
            self.keep[idx[np.sort(pivot[rank:])]] = False
        self.all_center = center
        self.all_scale = np.where(self.keep, scale, 1.0)
        self.columns = columns[self.keep]
        self.center = center[self.keep]
        self.scale = self.all_scale[self.keep]
        self.shape = (n, int(self.columns.size))
        # a few controls are kept as a matrix (at most half the size of X):
        # products with it cost n k, not n d
        self._matrix = None
        if 2 * self.shape[1] <= d:
            self._matrix = np.ascontiguousarray(self[:])

    @property
    def T(self):
        return _Transposed(self)

    def __matmul__(self, v):
        if self._matrix is not None:
            return self._matrix @ v
        v = np.asarray(v, dtype=np.float64) / self.scale
        full = np.zeros(self.n_features)
        full[self.columns] = v
        return self.X @ full - float(self.center @ v)

    def rmatvec(self, u):
        if self._matrix is not None:
            return self._matrix.T @ u
        u = np.asarray(u, dtype=np.float64)
        return ((self.X.T @ u)[self.columns] - self.center * u.sum()) / self.scale

    def __getitem__(self, rows):
        if getattr(self, "_matrix", None) is not None:
            return self._matrix[rows]
        return (self.X[rows][:, self.columns] - self.center) / self.scale

    def gram(self, weights):
        """``[C 1]^T diag(weights) [C 1]`` (the constant last), by blocks."""
        k = self.shape[1]
        H = np.zeros((k + 1, k + 1))
        for start in range(0, self.shape[0], _BLOCK):
            B = self[start : start + _BLOCK]
            H[:k, :k] += B.T @ (B * weights[start : start + _BLOCK, None])
        H[:k, k] = H[k, :k] = self.rmatvec(weights)
        H[k, k] = weights.sum()
        return H

    def dense(self):
        """The matrix itself (for the cvxpy reference, small samples)."""
        return self[:]


class _Transposed:
    def __init__(self, controls):
        self.controls = controls

    def __matmul__(self, u):
        return self.controls.rmatvec(u)


def _feasible_weights(q, p, C, alpha):
    """Map weights near the set into it: ``0 <= q <= p / alpha``, ``sum q =
    1``, ``C^T q = 0``.

    The equality residual is removed by the least change in the metric
    ``sum delta^2 / room`` (``room`` the distance to the nearest bound,
    scaled), and what that leaves outside the box by mixing with ``p`` (in
    the set, strictly inside the box). ``None`` if that fails.
    """
    # in place and by blocks: peak memory three arrays of n beyond q and p
    cap = p / alpha
    q = np.clip(np.asarray(q, dtype=np.float64), 0.0, cap)
    room = np.subtract(cap, q)
    room *= q
    with np.errstate(divide="ignore", invalid="ignore"):
        room /= cap
    room[~(cap > 0)] = 0.0
    H = C.gram(room)
    for _ in range(2):  # one step of iterative refinement
        resid = np.append(C.T @ q, q.sum() - 1.0)
        lam = np.linalg.lstsq(H, resid, rcond=1e-13)[0]
        step = C @ lam[:-1]
        step += lam[-1]
        step *= room
        q -= step
        del step
    del room
    # mix with p until the box holds: (1 - t) q + t p
    t = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, q.shape[0], _BLOCK):
            qb, cb, pb = (a[start : start + _BLOCK] for a in (q, cap, p))
            over = np.where(qb > cb, (qb - cb) / (qb - pb), 0.0)
            under = np.where(qb < 0, -qb / (pb - qb), 0.0)
            t = max(t, float(np.max(over, initial=0.0)))
            t = max(t, float(np.max(under, initial=0.0)))
    if not 0.0 <= t < 1.0:
        return None
    q *= 1.0 - t
    q += t * p
    np.clip(q, 0.0, cap, out=q)
    # the equalities must hold (collinear controls can leave the projection
    # short): a weight vector outside the set gives no valid bound
    resid = np.append(C.T @ q, q.sum() - 1.0)
    if not float(np.max(np.abs(resid))) <= 1e-12:
        return None
    return q


# Below this many samples the LP is solved in one piece; above, on a working
# set around the threshold (see _conditional_lp).
_LP_FULL = 1024


_LP_ATTEMPTS = (("highs", 1e-10), ("highs-ipm", 1e-10), ("highs", 1e-9))


def _lp_on(losses, C, p, cap, rhs):
    """``max q.l`` over ``0 <= q <= cap``, ``[1 C]^T q = rhs``: (q, eta) or None.

    ``eta = y_0 + C y`` is the threshold given by the equality duals.
    """
    A_eq = np.empty((C.shape[1] + 1, losses.shape[0]))
    A_eq[0] = 1.0
    A_eq[1:] = C.T
    bounds = np.column_stack([np.zeros_like(cap), cap])
    # HiGHS's dual simplex sometimes stops with model status "Unknown" at
    # the tight tolerances (n=18, one control, seed 555 of the certificate
    # test); its interior-point method with crossover, then the simplex at
    # 1e-9, solve those. The certificate downstream checks whatever is found.
    for method, tol in _LP_ATTEMPTS:
        result = linprog(
            -losses,
            A_eq=A_eq,
            b_eq=rhs,
            bounds=bounds,
            method=method,
            options={
                "primal_feasibility_tolerance": tol,
                "dual_feasibility_tolerance": tol,
            },
        )
        if result.status == 0:
            break
    else:
        return None, result.message
    y = -np.asarray(result.eqlin.marginals, dtype=np.float64)
    return (np.clip(result.x, 0.0, cap), y), None


def _conditional_lp(losses, C, p, alpha, eta=None):
    """``(risk, q, eta, gap)`` of :func:`_conditional_lp_coef`."""
    return _conditional_lp_coef(losses, C, p, alpha, eta)[:4]


def _conditional_lp_coef(losses, C, p, alpha, eta=None):
    """Exact worst case ``max q.l`` over the conditional CVaR set.

    ``C`` (n, k) holds the controls centered under ``p`` and scaled; the set
    is ``0 <= q <= p / alpha``, ``sum q = 1``, ``C^T q = 0``. Returns
    ``(risk, q, eta, gap, y)``: ``risk`` the dual value ``E_p[eta + (l -
    eta)_+ / alpha]`` at the threshold ``eta = y_0 + C y`` from the LP duals
    (an upper bound on the risk for any threshold affine in the controls),
    ``q`` the worst-case weights, and ``gap`` the difference between
    ``risk`` and ``q.l`` (a lower bound, up to HiGHS's feasibility tolerance
    1e-10): the LP's own certificate, and ``y`` the coefficients of the
    threshold ``eta = y_0 + C y`` (in loss units).

    Above ``_LP_FULL`` samples the LP runs on a working set: every sample
    whose loss is clearly above (below) the threshold ``eta`` (the one
    given, or that of the LP on a subsample) has its weight fixed at the cap
    (at 0), and the LP is solved over the rest; its duals give a new
    threshold, and the samples on the wrong side of it join the working set
    until none is left (then the fixed weights satisfy the LP's optimality
    conditions, so the solution is the LP's). Memory: O(n) beyond ``C``.
    """
    n = losses.shape[0]
    k = C.shape[1]
    if k == 0:
        # no controls: the ordinary CVaR, exactly by sorting
        risk, q = CVaR(alpha=alpha).risk_and_weights(losses, p)
        eta = CVaR(alpha=alpha).dual_argmin(losses, p)
        eta = float(np.ravel(eta)[0])
        return float(risk), q, np.full(n, eta), 0.0, np.array([eta])
    # the LP runs on losses centered at their mean and scaled to unit size
    # (HiGHS's tolerances are absolute: at 1e150 it found no solution, at
    # 1e-150 every loss was within them); the solution scales back exactly
    shift = float(p @ losses)
    l = losses - shift
    unit = float(np.max(np.abs(l)))
    if not unit > 0:
        unit = 1.0
    l /= unit
    cap = p / alpha
    rhs = np.zeros(k + 1)
    rhs[0] = 1.0
    if n <= _LP_FULL:
        solved, message = _lp_on(l, C.dense(), p, cap, rhs)
        if solved is None:
            raise RuntimeError(
                "conditional CVaR: the linear-programming solver (HiGHS) found "
                f"no solution ({message})."
            )
        q, y = solved
        eta = y[0] + C @ y[1:]
    else:
        if eta is None:
            # the threshold of the LP on a subsample (reweighted)
            rng = np.random.default_rng(0)
            sub = np.sort(rng.choice(n, size=_LP_FULL, replace=False))
            ps = p[sub] / p[sub].sum()
            Cs = C[sub]
            mean = ps @ Cs
            solved, _ = _lp_on(l[sub], Cs - mean, ps, ps / alpha, rhs)
            if solved is None:
                eta = np.full(n, float(np.quantile(l, 1.0 - alpha)))
            else:
                y = solved[1]
                eta = (y[0] - float(mean @ y[1:])) + C @ y[1:]
        else:
            eta = (np.asarray(eta, dtype=np.float64) - shift) / unit
        size = min(n, max(512, 40 * (k + 1)))
        q = None
        forced = np.zeros(n, dtype=bool)
        for _ in range(60):
            r = l - eta
            work = forced.copy()
            if size < n:
                work[np.argpartition(np.abs(r), size - 1)[:size]] = True
            else:
                work[:] = True
            fixed = np.where(r > 0, cap, 0.0)
            fixed[work] = 0.0
            rest = rhs.copy()
            rest[0] -= fixed.sum()
            rest[1:] -= C.T @ fixed
            solved, message = _lp_on(l[work], C[work], p[work], cap[work], rest)
            if solved is None:
                if work.all():
                    raise RuntimeError(
                        "conditional CVaR: the linear-programming solver (HiGHS) "
                        f"found no solution ({message})."
                    )
                size = min(n, 2 * size)
                continue
            x, y = solved
            eta = y[0] + C @ y[1:]
            r = l - eta
            # fixed samples on the wrong side of the new threshold
            slack = 1e-12 * (1.0 + float(np.max(np.abs(l))))
            wrong = ~work & (p > 0) & np.where(fixed > 0, r < -slack, r > slack)
            fixed[work] = x
            q = fixed
            n_wrong = int(np.count_nonzero(wrong))
            if n_wrong == 0:
                break
            forced |= wrong
            size = min(n, 2 * size)
    primal = float(q @ l)
    dual = float(p @ eta) + float(p @ np.maximum(l - eta, 0.0)) / alpha
    gap = max(dual - primal, 0.0)
    total = q.sum()
    # the dual value is an upper bound on the risk whatever the LP's
    # accuracy (any threshold affine in the controls gives one); the
    # weights' value, within the LP's tolerances of feasible, is within gap
    y = np.array(y, dtype=np.float64)
    y *= unit
    y[0] += shift
    return dual * unit + shift, q / total, eta * unit + shift, gap * unit, y
