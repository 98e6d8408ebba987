"""Empirical likelihood intervals for coefficients of linear and logistic models."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, qr, solve_triangular
from scipy.special import expit
from scipy.stats import chi2
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils import check_X_y
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import column_or_1d

from skrobust.ambiguity import check_ambiguity
from skrobust.inference._estimating import _pseudo_eps, _pseudo_log, _solve_dual
from skrobust.inference._validation import check_frequency_weights
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression

MAX_ITER = 100
#: relative tolerance on the Newton decrement of the nuisance profile
PROFILE_TOL = 1e-10
#: steps of the path from the fit along which el_coef_test follows the basin
CONTINUATION_STEPS = 8
#: passes over the data (dual and profile evaluations) for one endpoint or test
MAX_EVALUATIONS = 5000
EPS = np.finfo(np.float64).eps
#: rows per block when the design is touched block by block (memory bound)
CHUNK_ROWS = 8192
#: ... and at most this fraction of the rows, so a block stays small next to X
CHUNK_FRACTION = 16
#: designs up to this many entries (32 KiB) are processed as one block
SMALL_DESIGN = 2**12
#: condition number above which the squared (Gram) systems lose all digits
ILL_CONDITIONED = 1.0 / np.sqrt(EPS)
#: condition number above which the intervals lose more than half the digits
WARN_CONDITIONED = 1e4


class _Design:
    """The column-scaled design ``[X / s, 1]``, never formed in full.

    The empirical-likelihood statistic is invariant under invertible linear
    maps of the estimating function, so the coefficients are computed for
    columns scaled to unit maximum (and, for least squares, a target scaled
    to unit maximum) and mapped back. The scaled design is only ever formed
    for a block of rows at a time: products, Gram matrices and the QR factor
    are accumulated over blocks, so no copy of ``X``, no ``n x p^2`` array
    and no per-sample vector beyond the target lives longer than a block.
    """

    def __init__(self, X, intercept):
        self.X = X
        self.intercept = intercept
        self.n, self.n_features = X.shape
        self.p = self.n_features + int(intercept)
        if self.n_features:
            scale = np.maximum(np.abs(X.max(axis=0)), np.abs(X.min(axis=0)))
        else:
            scale = np.ones(0)
        self.zero_columns = np.flatnonzero(scale == 0)
        self.scale = np.where(scale > 0, scale, 1.0)
        self.full_scale = np.concatenate([self.scale, [1.0] * int(intercept)])

    def _block(self, start, stop):
        block = np.empty((stop - start, self.p))
        np.divide(self.X[start:stop], self.scale, out=block[:, : self.n_features])
        if self.intercept:
            block[:, -1] = 1.0
        return block

    @property
    def chunk(self):
        if self.n * self.p <= SMALL_DESIGN:
            return self.n  # one block: no loop overhead on small data
        return max(256, min(CHUNK_ROWS, self.n // CHUNK_FRACTION))

    def blocks(self):
        """``(start, stop, block)`` over the rows, ``block = [X / s, 1]``."""
        for start in range(0, self.n, self.chunk):
            stop = min(start + self.chunk, self.n)
            yield start, stop, self._block(start, stop)

    def r_factor(self, sqrt_w, extra=None):
        """R of the QR factorization of ``diag(sqrt_w) [X / s, 1, extra]``."""
        width = self.p + (extra is not None)
        R = np.zeros((0, width))
        for start, stop, block in self.blocks():
            if extra is not None:
                block = np.column_stack([block, extra[start:stop]])
            if sqrt_w is not None:
                block *= sqrt_w[start:stop, None]
            R = qr(np.vstack([R, block]), mode="r")[0][:width]
        return R

    def column_names(self, columns):
        return ["intercept" if c == self.n_features else f"X[:, {c}]" for c in columns]


def _check_rank(design, R, n_positive):
    """Raise on a rank-deficient design; return its condition number.

    ``R`` is the triangular factor of the column-scaled weighted design, so
    its singular values are those of the design (a rank-revealing SVD of the
    small factor). The columns that take part in the near-null combinations
    are named.
    """
    if design.zero_columns.size:
        names = design.column_names(design.zero_columns)
        raise ValueError(
            f"X is rank deficient: column(s) {', '.join(names)} are identically "
            "zero, so their coefficients are not identified. Drop them."
        )
    _, sing, Vt = np.linalg.svd(R)
    tol = sing[0] * max(n_positive, design.p) * EPS
    null = Vt[sing <= tol]
    if null.shape[0]:
        involved = np.flatnonzero(np.abs(null).max(axis=0) > 1e-8)
        combo = null[0] / np.abs(null[0]).max()
        names = design.column_names(involved)
        terms = " + ".join(
            f"{combo[c]:.3g} * {name}" for c, name in zip(involved, names, strict=True)
        )
        with_intercept = " with the intercept" if design.intercept else ""
        raise ValueError(
            f"X is rank deficient (rank {design.p - null.shape[0]} for "
            f"{design.p} coefficients{with_intercept}"
            f"): the columns {', '.join(names)} are collinear, e.g. {terms} = 0 "
            "after scaling each column to unit maximum. Their coefficients are "
            "not identified; drop or combine those columns."
        )
    cond = float(sing[0] / sing[-1])
    if cond > WARN_CONDITIONED:
        v = Vt[-1] / np.abs(Vt[-1]).max()
        names = ", ".join(design.column_names(np.flatnonzero(np.abs(v) > 1e-3)))
        digits = 16.0 - 2.0 * np.log10(cond)
        if cond >= ILL_CONDITIONED:
            raise ValueError(
                f"X is numerically collinear (condition number {cond:.3g} after "
                f"scaling each column to unit maximum): the columns {names} are "
                "nearly collinear. The empirical-likelihood systems square the "
                "condition number, which leaves no significant digits; drop or "
                "combine those columns."
            )
        warnings.warn(
            f"X is ill-conditioned (condition number {cond:.3g} after scaling "
            f"each column to unit maximum): the columns {names} are nearly "
            "collinear. The empirical-likelihood systems square the condition "
            f"number, so the intervals carry only about {digits:.0f} "
            "significant digits.",
            UserWarning,
            stacklevel=4,
        )
    return cond


class _Score:
    """Estimating function ``g_i(beta) = x_i (y_i - m(x_i' beta))`` of a GLM.

    ``m`` is the identity (least squares) or the logistic function (maximum
    likelihood logistic regression); ``beta`` holds the coefficients followed
    by the intercept when there is one, in the units of the scaled design.
    """

    def __init__(self, design, y, w, family):
        self.design, self.y, self.w, self.family = design, y, w, family
        self.n = float(design.n if w is None else w.sum())
        self.eps = _pseudo_eps(w, self.n)
        self.evaluations = 0
        self.beta_hat = None
        self.perfect_fit = False
        self.cond = 1.0

    def recenter(self, beta_hat):
        """Move the origin of the coefficients to the fit; return the new fit.

        For least squares the target is replaced by the residuals at
        ``beta_hat`` and coefficients are measured from ``beta_hat``, so that
        the residuals along the profile, ``r_hat - X delta``, keep their full
        relative precision however small they are (near-perfect fits).
        """
        self.center = np.zeros_like(beta_hat)
        if self.family != "linear":
            return beta_hat
        # in place: ``self.y`` is this object's own scaled copy of the target
        for start, stop, Xb in self.design.blocks():
            self.y[start:stop] -= Xb @ beta_hat
        self.center = beta_hat
        return np.zeros_like(beta_hat)

    def _blocks(self, beta):
        """Per block: design rows, weights, residuals ``r``, ``m'`` and ``m``.

        Everything per sample is recomputed block by block from ``X`` and
        the stored target, so no per-sample array outlives its block.
        """
        for start, stop, Xb in self.design.blocks():
            wb = None if self.w is None else self.w[start:stop]
            eta = Xb @ beta
            yb = self.y[start:stop]
            if self.family == "linear":
                yield Xb, wb, yb - eta, 1.0, None
            else:
                m = expit(eta)
                yield Xb, wb, yb - m, m * (1.0 - m), m

    @staticmethod
    def _gram(Xb, c):
        return (Xb * c[:, None]).T @ Xb

    def solve(self, beta0):
        """Root of the estimating equations (the unpenalized fit)."""
        design, y, w = self.design, self.y, self.w
        sqrt_w = None if w is None else np.sqrt(w)
        n_positive = design.n if w is None else int(np.count_nonzero(w))
        p = design.p
        if self.family == "linear":
            R = design.r_factor(sqrt_w, extra=y)
            self.cond = _check_rank(design, R[:p, :p], n_positive)
            beta = solve_triangular(R[:p, :p], R[:p, p])
            # least-squares residual norm and the rounding level it is
            # measured against: the residuals are zero up to rounding when
            # their norm is a few ulps of the fitted values'
            resid = abs(R[p, p])
            fitted = np.linalg.norm(R[:p, :p] @ beta)
            target = np.linalg.norm(R[:, p])
            self.perfect_fit = (
                resid <= 64.0 * EPS * max(fitted, target) * np.sqrt(design.p)
                or target == 0.0
            )
            if not self.perfect_fit and resid <= np.sqrt(EPS) * target:
                digits = -np.log10(max(resid / target, EPS))
                warnings.warn(
                    "The fit is nearly perfect: the residual norm is "
                    f"{resid / target:.3g} of the target's, so the residuals "
                    "(and the intervals, which scale with them) carry about "
                    f"{max(0.0, 16.0 - digits):.0f} significant digits.",
                    UserWarning,
                    stacklevel=4,
                )
            return beta
        self.cond = _check_rank(design, design.r_factor(sqrt_w), n_positive)
        beta = np.array(beta0, dtype=float)
        for _ in range(MAX_ITER):
            grad = np.zeros(p)
            hess = np.zeros((p, p))
            for Xb, wb, r, m1, _ in self._blocks(beta):
                if wb is not None:
                    r = r * wb
                    m1 = m1 * wb
                grad += Xb.T @ r
                hess += self._gram(Xb, m1)
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
            beta = beta + step
            if np.max(np.abs(step)) <= 1e-13 * (1.0 + np.max(np.abs(beta))):
                return beta
        warnings.warn(
            "The logistic regression estimating equations did not converge "
            f"(last Newton step {np.max(np.abs(step)):.3g}; separable data?); "
            "intervals may be meaningless.",
            ConvergenceWarning,
            stacklevel=4,
        )
        return beta

    def sandwich(self, beta):
        """Sandwich covariance ``A^-1 B A^-T`` of the root."""
        p = self.design.p
        A = np.zeros((p, p))
        B = np.zeros((p, p))
        for Xb, wb, r, m1, _ in self._blocks(beta):
            r2 = r * r
            m1 = np.broadcast_to(m1, r.shape)
            if wb is not None:
                r2 = r2 * wb
                m1 = m1 * wb
            A += self._gram(Xb, m1)
            B += self._gram(Xb, r2)
        A_inv = np.linalg.pinv(A)
        return A_inv @ B @ A_inv.T

    def _dual_evaluate(self, beta):
        """``evaluate`` of :func:`_solve_dual` for ``g_i = x_i r_i(beta)``."""
        p, eps = self.design.p, self.eps

        def evaluate(lam):
            self.evaluations += 1
            total = 0.0
            grad = np.zeros(p)
            neg_hess = np.zeros((p, p))
            for Xb, wb, r, _, _ in self._blocks(beta):
                d = Xb @ lam
                d *= r
                d += 1.0
                part, psi1, psi2 = _pseudo_log(d, eps, wb)
                total += part
                psi1 *= r
                psi2 *= r
                psi2 *= r
                psi2 *= -1.0
                if wb is not None:
                    psi1 *= wb
                    psi2 *= wb
                grad += Xb.T @ psi1
                neg_hess += self._gram(Xb, psi2)
            return total, grad, neg_hess

        return evaluate

    def profile_parts(self, beta, lam):
        """Inner dual solve at ``beta`` and the derivatives the profile needs.

        Returns ``(value, lam, grad_beta, H_ll, H_lb, H_bb)`` for
        ``l(lam, beta) = sum_i w_i log*(1 + lam' g_i(beta))`` at the maximizing
        ``lam``. With ``r = y - m``, ``a = X lam`` and ``d = 1 + a r`` every
        block is ``X' diag(c) X`` for some weights ``c``, accumulated over
        blocks of rows.
        """
        self.evaluations += 1
        p = self.design.p
        lam, value, self.decrement = _solve_dual(
            self._dual_evaluate(beta), self.n, lam, p
        )
        if not np.isfinite(value):
            return np.inf, lam, None, None, None, None
        grad_beta = np.zeros(p)
        H_ll = np.zeros((p, p))
        H_lb = np.zeros((p, p))
        H_bb = np.zeros((p, p))
        for Xb, wb, r, m1, m in self._blocks(beta):
            a = Xb @ lam
            d = a * r
            d += 1.0
            _, psi1, psi2 = _pseudo_log(d, self.eps)
            if wb is not None:
                psi1 *= wb
                psi2 *= wb
            m1a = a * m1
            grad_beta -= Xb.T @ (psi1 * m1a)
            psi2_r = psi2 * r
            H_ll += self._gram(Xb, psi2_r * r)
            H_lb -= self._gram(Xb, psi2_r * m1a + psi1 * m1)
            c = psi2 * m1a * m1a
            if m is not None:
                # m'' = m' (1 - 2 m)
                c -= psi1 * m1a * (1.0 - 2.0 * m)
            H_bb += self._gram(Xb, c)
        return value, lam, grad_beta, H_ll, H_lb, H_bb


class _Budget(Exception):
    """Raised inside a profile search when its evaluation budget is spent."""


class _Unbounded(Exception):
    """Raised when the profile search starts where the inner dual is unbounded."""


def _profile(score, j, b, theta, lam, budget):
    """Minimize over the free coefficients ``theta`` with ``beta_j = b``.

    Newton's method on the profiled objective ``F(theta) = max_lam l`` with
    the Schur-complement Hessian ``H_bb - H_bl H_ll^-1 H_lb`` (implicit
    differentiation through the inner maximizer), damped by a backtracking
    line search and a Levenberg shift when that Hessian is not positive
    definite. Returns ``(F, theta, lam, dF/db, decrement, S)``; the Newton
    decrement ``g' S^-1 g`` is the certificate of the minimization (above
    its tolerance when the search stalled), ``S`` the Schur-complement
    Hessian at the last iterate. It does not warn: :func:`_best_profile`
    does, for the start it keeps.
    """
    free = np.arange(score.design.p) != j

    def evaluate(theta, lam):
        if score.evaluations >= budget:
            raise _Budget
        beta = np.empty(score.design.p)
        beta[free] = theta
        beta[j] = b
        return score.profile_parts(beta, lam)

    parts = evaluate(theta, lam)
    if not np.isfinite(parts[0]):
        # the guess cannot balance the equations; try the unconditional fit
        theta = score.beta_hat[free]
        parts = evaluate(theta, None)
        if not np.isfinite(parts[0]):
            raise _Unbounded
    decrement = np.inf
    for _ in range(MAX_ITER):
        value, lam, grad, H_ll, H_lb, H_bb = parts
        if not free.any():
            return value, theta, lam, grad[j], 0.0, np.zeros((0, 0))
        g_free = grad[free]
        try:
            H_ll_inv_H_lb = np.linalg.solve(H_ll, H_lb[:, free])
        except LinAlgError:
            H_ll_inv_H_lb = np.linalg.lstsq(H_ll, H_lb[:, free], rcond=None)[0]
        S = H_bb[np.ix_(free, free)] - H_lb[:, free].T @ H_ll_inv_H_lb
        if not np.all(np.isfinite(S)):
            raise ValueError(
                f"The empirical-likelihood profile of coefficient {j} is not "
                f"finite at {b:.6g}: with {score.design.n} samples for "
                f"{score.design.p} coefficients the estimating equations "
                "cannot be balanced there. Use more samples."
            )
        shift = 0.0
        scale = max(np.max(np.abs(np.diag(S))), 1e-300)
        while True:
            try:
                factor = cho_factor(S + shift * np.eye(S.shape[0]))
                break
            except LinAlgError:
                shift = max(2.0 * shift, 1e-8 * scale)
        step = -cho_solve(factor, g_free)
        decrement = -float(g_free @ step)
        if decrement <= PROFILE_TOL * max(1.0, abs(value)):
            # quadratic convergence: one more full step reaches rounding level
            lam_guess = lam - H_ll_inv_H_lb @ step
            final = evaluate(theta + step, lam_guess)
            if np.isfinite(final[0]):
                theta = theta + step
                value, lam, grad = final[:3]
            return value, theta, lam, grad[j], decrement, S
        t = 1.0
        while True:
            trial = theta + t * step
            lam_guess = lam - t * (H_ll_inv_H_lb @ step)
            new = evaluate(trial, lam_guess)
            if not np.isfinite(new[0]):
                # rejected outright: the equations cannot be balanced there
                t *= 0.5
                if t < 1e-10:
                    trial, new = theta, parts
                    break
                continue
            if new[0] <= value - 1e-4 * t * decrement:
                break
            t *= 0.5
            if t < 1e-10:
                trial, new = theta, parts
                break
        if trial is theta:
            # no descent at rounding level: the search stalls; stop
            break
        theta, parts = trial, new
    value, lam, grad = parts[0], parts[1], parts[2]
    return value, theta, lam, grad[j], decrement, S


def _best_profile(score, j, b, starts, lam, budget):
    """:func:`_profile` from several starts; the lowest local minimum wins.

    At small ``n`` the profiled objective need not be convex in the free
    coefficients: it can have two basins (seed 373, ``n = 11``: minima 3.32
    and 4.10 of ``2 F`` in the intercept at slope 0.555), and Newton's
    method from one start finds the basin it starts in. The profile is a
    minimum, so the lowest value over the starts is the better (never a
    worse) approximation of it. A start inside the unit Dikin ellipsoid
    ``delta' S delta <= 1`` of a minimizer already found (always the case
    at large ``n``, where the objective is nearly quadratic) is skipped.
    Warns when the kept start's Newton decrement fails its tolerance.
    """
    best = None
    for theta0 in starts:
        if best is not None and best[5].size:
            delta = theta0 - best[1]
            if float(delta @ best[5] @ delta) <= 1.0:
                continue
        try:
            result = _profile(score, j, b, theta0, lam, budget)
        except _Unbounded:
            continue
        if best is None or result[0] < best[0]:
            best = result
    if best is None:
        raise _Unbounded
    value, decrement = best[0], best[4]
    if decrement > PROFILE_TOL * max(1.0, abs(value)):
        warnings.warn(
            "Profiling the nuisance coefficients did not converge: the Newton "
            f"decrement (the certificate) is {decrement:.3g}, above the "
            f"tolerance {PROFILE_TOL * max(1.0, abs(value)):.3g}.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return best[:5]


def _starts(beta_hat, free, slope, shift):
    """Starts of the nuisance profile at ``beta_j = beta_hat_j + shift``.

    The conditional (Wald) guess ``theta_hat + slope * shift`` and the
    unconditional fit ``theta_hat``.
    """
    return [beta_hat[free] + slope * shift, beta_hat[free]]


def _continuation(score, j, beta_hat, slope, b, budget, steps=CONTINUATION_STEPS):
    """Free coefficients followed from the fit to ``beta_j = b`` in ``steps``.

    Each step profiles from the previous step's minimizer (shifted along the
    Wald slope), so the basin of the fit is followed as :func:`_endpoint`
    follows it; the result starts the final profile at ``b``. ``None`` when
    the path leaves the region the data support before reaching ``b``.
    """
    free = np.arange(beta_hat.shape[0]) != j
    theta, lam, last = beta_hat[free], None, beta_hat[j]
    for b_s in np.linspace(beta_hat[j], b, steps + 1)[1:-1]:
        try:
            result = _profile(score, j, b_s, theta + slope * (b_s - last), lam, budget)
        except _Unbounded:
            return None
        theta, lam, last = result[1], result[2], b_s
    return theta + slope * (b - last)


def _endpoint(score, j, beta_hat, cov, threshold, side):
    """Endpoint of ``{b : 2 F(b) <= threshold}`` on one side of ``beta_hat``.

    A monotone root-find on ``phi(b) = sqrt(2 F(b))`` (nearly linear in
    ``b``), whose derivative comes from the envelope theorem, ``d(2F)/db = 2
    dl/dbeta_j``: Newton steps inside a bracket that shrinks (or, before an
    upper bracket is known, widens from the Wald endpoint), bisection as the
    safeguard. At most ``MAX_EVALUATIONS`` inner solves are spent; past that
    a ConvergenceWarning gives the bracket reached.
    """
    se = np.sqrt(max(cov[j, j], 0.0))
    if se == 0:
        se = 1e-8 * (1.0 + abs(beta_hat[j]))
    free = np.arange(beta_hat.shape[0]) != j
    slope = cov[free, j] / cov[j, j] if cov[j, j] > 0 else np.zeros(free.sum())
    target = np.sqrt(threshold)
    # distances from beta_hat_j along ``side``
    lo, hi = 0.0, np.inf
    t = target * se
    lam = None
    bracket_tol = max(4.0 * EPS * (abs(beta_hat[j]) + se), 1e-11 * se)
    budget = score.evaluations + MAX_EVALUATIONS
    phi = np.nan
    # the free coefficients at the last distance found inside the set: the
    # continuation start, which follows the basin of the fit along the path
    theta_lo = beta_hat[free]
    try:
        for _ in range(MAX_ITER):
            b = beta_hat[j] + side * t
            starts = _starts(beta_hat, free, slope, side * t)
            starts.insert(0, theta_lo + slope * (side * (t - lo)))
            try:
                value, theta, lam, dvalue, _ = _best_profile(
                    score, j, b, starts, lam, budget
                )
            except _Unbounded:
                # beyond the region the data support: the statistic is inf,
                # and the endpoint is where that region ends
                hi, lam, phi = t, None, np.inf
                t = 0.5 * (lo + hi)
                if hi - lo <= bracket_tol:
                    return beta_hat[j] + side * lo
                continue
            stat = max(2.0 * value, 0.0)
            phi = np.sqrt(stat)
            if phi < target:
                lo, theta_lo = t, theta
            else:
                hi = t
            dphi = side * dvalue / phi if phi > 0 else 0.0
            new = t - (phi - target) / dphi if dphi > 0 else np.nan
            if lo < new < hi and abs(new - t) <= 1e-7 * se:
                # Newton's error after this step is O(step^2 / se) < 1e-14 se
                return beta_hat[j] + side * new
            if not lo < new < hi:
                new = 0.5 * (lo + hi) if np.isfinite(hi) else 2.0 * max(t, lo)
            if np.isfinite(hi) and hi - lo <= bracket_tol:
                # a bracket this narrow: the statistic jumps across the
                # threshold here (the edge of the region the data support
                # at tiny n) or the root is found to rounding
                return beta_hat[j] + side * (lo if phi == np.inf else new)
            t = new
    except _Budget:
        pass
    warnings.warn(
        "The empirical-likelihood interval endpoint did not converge within "
        f"{MAX_EVALUATIONS} passes over the data: the endpoint is bracketed by "
        f"distances [{lo:.6g}, {hi:.6g}] from the estimate (in units of the "
        f"column-scaled design), and sqrt(W) - sqrt(threshold) = "
        f"{phi - target:.3g} at the value returned.",
        ConvergenceWarning,
        stacklevel=3,
    )
    return beta_hat[j] + side * (hi if np.isfinite(hi) else t)


def _setup(estimator, X, y, sample_weight):
    """Validated scaled design, score, feature count, start and unit scales.

    Returns ``(score, n_features, beta0, units)`` where ``units`` maps a
    coefficient of the scaled problem to the original units
    (``beta = beta_scaled * units``).
    """
    if isinstance(estimator, LogisticRegression):
        family = "logistic"
        C = estimator.C
        penalty = getattr(estimator, "penalty", "deprecated")
        if not (penalty is None or penalty == "none" or C == np.inf):
            raise ValueError(
                "estimator must be an unpenalized LogisticRegression "
                "(C=np.inf): empirical likelihood intervals are for the "
                f"coefficients of the unpenalized score equations; got C={C}."
            )
        if estimator.class_weight is not None:
            raise ValueError(
                "estimator.class_weight must be None; pass frequency weights "
                "as sample_weight instead."
            )
    elif isinstance(estimator, LinearRegression):
        family = "linear"
        if estimator.positive:
            raise ValueError(
                "estimator.positive=True constrains the coefficients; the "
                "empirical likelihood interval needs the unconstrained fit."
            )
    elif isinstance(estimator, DROLinearRegression | DROLogisticRegression):
        family = "linear" if isinstance(estimator, DROLinearRegression) else "logistic"
        trivial = check_ambiguity(estimator.ambiguity).is_trivial()
        squared = family == "logistic" or estimator.loss in ("squared_error", "squared")
        if not (trivial and estimator.alpha == 0 and squared):
            raise ValueError(
                "For a DRO linear model the estimating equations are those of "
                "least squares or logistic maximum likelihood, so estimator "
                "must have ambiguity='erm' (radius 0), alpha=0 and, for "
                f"regression, loss='squared'; got {estimator!r}. Use "
                "gel_optimal_value_interval for bounds on the robust risk."
            )
    else:
        raise TypeError(
            "estimator must be a LinearRegression or an unpenalized "
            f"LogisticRegression; got {type(estimator).__name__}."
        )
    X, y = check_X_y(
        X,
        y,
        dtype=np.float64 if family == "linear" else None,
        y_numeric=family == "linear",
    )
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    if hasattr(estimator, "n_features_in_") and estimator.n_features_in_ != n_features:
        raise ValueError(
            f"X has {n_features} features, but estimator was fitted with "
            f"{estimator.n_features_in_}."
        )
    if family == "logistic":
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            classes = np.unique(y)
        if len(classes) != 2 or not np.all(np.isin(np.unique(y), classes)):
            raise ValueError(
                "y must hold exactly two classes for a logistic regression "
                f"interval; got classes {np.unique(y)}."
            )
        y = (y == classes[1]).astype(np.float64)
        y_scale = 1.0
    else:
        y = column_or_1d(y)
        y_scale = float(np.max(np.abs(y))) if y.size else 1.0
        if y_scale == 0.0:
            y_scale = 1.0
        # the statistic is invariant under scaling of the target too
        y = y / y_scale
    w = check_frequency_weights(sample_weight, X.shape[0])
    if w is not None and np.all(w == 1.0):
        w = None
    design = _Design(X, estimator.fit_intercept)
    n_positive = X.shape[0] if w is None else int(np.count_nonzero(w))
    if n_positive <= design.p:
        raise ValueError(
            f"Empirical likelihood for {design.p} coefficients needs more "
            f"samples with positive weight than coefficients; got {n_positive}."
        )
    units = y_scale / design.full_scale
    beta0 = np.zeros(design.p)
    coef = getattr(estimator, "coef_", None)
    if family == "logistic" and coef is not None:
        beta0[:n_features] = np.ravel(coef)
        if estimator.fit_intercept:
            beta0[-1] = np.ravel(estimator.intercept_)[0]
        beta0 = beta0 / units
    score = _Score(design, y, w, family)
    return score, n_features, beta0, units


def _perfect_fit_warning(what):
    warnings.warn(
        "The least-squares fit is perfect (the residuals are zero up to "
        "rounding): every estimating function vanishes at the fit and none "
        "can be balanced anywhere else, so the empirical likelihood ratio is "
        f"1 at the fitted coefficients and 0 elsewhere. {what}",
        UserWarning,
        stacklevel=3,
    )


def _rounding_radius(score, beta_hat, j):
    """How far from ``beta_hat[j]`` rounding alone can move a perfect fit."""
    return 64.0 * EPS * score.cond * max(1.0, float(np.max(np.abs(beta_hat))))


def _feature_index(feature, n_features, fit_intercept):
    if isinstance(feature, str):
        if feature != "intercept" or not fit_intercept:
            raise ValueError(
                "features entries must be coefficient indices or 'intercept' "
                f"(for a model with an intercept); got {feature!r}."
            )
        return n_features
    if not isinstance(feature, Integral | np.integer) or not (
        -n_features <= feature < n_features
    ):
        raise ValueError(
            f"features entries must be integers in [0, {n_features}); got {feature!r}."
        )
    return int(feature) % n_features


@validate_params(
    {
        "estimator": [
            LinearRegression,
            LogisticRegression,
            DROLinearRegression,
            DROLogisticRegression,
        ],
        "X": ["array-like"],
        "y": ["array-like"],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "features": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def el_coef_interval(
    estimator, X, y, *, confidence=0.95, sample_weight=None, features=None
):
    """Empirical likelihood intervals for coefficients of a linear or logistic model.

    Each coefficient gets the interval of values whose profile empirical
    likelihood ratio, with every other coefficient profiled out, is below the
    chi-square quantile with one degree of freedom.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    estimator : LinearRegression, LogisticRegression, DROLinearRegression or \
            DROLogisticRegression
        Defines the estimating equations and whether there is an intercept;
        fitted or not (it is never refitted or modified). A
        ``LogisticRegression`` must be unpenalized (``C=np.inf``) and binary;
        a DRO linear model must be its ERM special case (``ambiguity="erm"``,
        ``alpha=0``, squared loss or binary logistic).
    X : array-like of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,)
        Target: real for ``LinearRegression``, two classes for
        ``LogisticRegression``.
    confidence : float, default=0.95
        Nominal coverage of each interval (not simultaneous).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).
    features : array-like of int or "intercept", default=None
        Coefficients to compute intervals for, as indices into ``coef_``, or
        ``"intercept"``. ``None`` means every entry of ``coef_``.

    Returns
    -------
    intervals : ndarray of shape (n_selected, 2)
        Lower and upper endpoints, one row per selected coefficient, in the
        units of ``X`` and ``y``.

    Raises
    ------
    ValueError
        If the design (with the intercept column) is rank deficient: the
        message names the collinear columns and one combination of them
        that vanishes, or numerically so (condition number above ``6.7e7``
        after scaling the columns, where the squared systems the statistic
        needs keep no significant digit). Also when there are no more
        samples with positive weight than coefficients.

    Warns
    -----
    UserWarning
        On a perfect least-squares fit (zero-width intervals, see Notes), a
        nearly perfect one (the number of significant digits the residuals
        carry), or an ill-conditioned design (condition number above
        ``1e4`` after scaling the columns; the message estimates the digits
        left).
    ConvergenceWarning
        If an inner solve fails its certificate (the Newton decrement of the
        dual or of the nuisance profile) or an endpoint is not found within
        5000 passes over the data; the message gives the certificate or the
        bracket reached.

    See Also
    --------
    el_coef_test : The profiled test these intervals invert.
    el_moment_test : The statistic for a fully specified parameter.

    Notes
    -----
    The estimating function is :math:`g_i(\\beta) = x_i (y_i - m(x_i^\\top
    \\beta))` with :math:`m` the identity (least squares) or the logistic
    function (logistic maximum likelihood); :math:`x_i` includes a constant
    when the model has an intercept. The profile statistic for coefficient
    :math:`j` is

    .. math::

        W_j(b) = \\min_{\\beta : \\beta_j = b}\\ 2 \\max_{\\lambda}
        \\sum_i w_i \\log_\\star\\big(1 + \\lambda^\\top g_i(\\beta)\\big),

    computed by Newton's method in :math:`\\lambda` (inner) and in the other
    coefficients (outer, with the Hessian of the profiled objective from
    implicit differentiation). The endpoints solve
    :math:`W_j(b) = \\chi^2_{1, \\text{confidence}}` by a safeguarded Newton
    iteration on :math:`\\sqrt{W_j}`, whose derivative is given by the
    envelope theorem. The intervals are centered on the unpenalized fit and
    use no variance estimate; their length adapts to heteroscedasticity.

    The statistic is invariant under rescaling of the columns of ``X`` and
    of ``y``, so the computation runs on columns (and a least-squares
    target) scaled to unit maximum, with coefficients measured from the fit,
    and maps back: the intervals are equivariant from ``1e-150`` to
    ``1e150``, and the design is only touched through products and
    blockwise Gram matrices (peak memory at most about 3 times ``X``,
    mostly the scaled copy of the target).

    *Perfect fits.* When the least-squares residuals are zero up to
    rounding, every :math:`g_i(\\hat\\beta) = 0`, while for any other
    :math:`\\beta` the values :math:`g_i(\\beta) = x_i x_i^\\top (\\hat\\beta -
    \\beta)` satisfy :math:`\\sum_i p_i (\\hat\\beta - \\beta)^\\top g_i(\\beta)
    > 0` for every positive reweighting :math:`p`, so the origin is outside
    their convex hull and :math:`W_j(b) = \\infty` for any
    :math:`b \\ne \\hat\\beta_j`. The confidence set at every level is then
    the single point :math:`\\hat\\beta_j`, returned as a zero-width
    interval, with a warning.

    References
    ----------
    .. [1] Owen, A. B. (1991). "Empirical likelihood for linear models."
       Annals of Statistics 19(4).
    .. [2] Qin, J. and Lawless, J. (1994). "Empirical likelihood and general
       estimating equations." Annals of Statistics 22(1).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.inference import el_coef_interval
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=200)
    >>> model = LinearRegression().fit(X, y)
    >>> intervals = el_coef_interval(model, X, y)
    >>> intervals.shape
    (2, 2)
    >>> bool(intervals[0, 0] < 2.0 < intervals[0, 1])
    True
    """
    score, n_features, beta0, units = _setup(estimator, X, y, sample_weight)
    if features is None:
        features = list(range(n_features))
    else:
        features = list(np.ravel(np.asarray(features, dtype=object)))
    index = [_feature_index(f, n_features, estimator.fit_intercept) for f in features]
    beta_hat = score.solve(beta0)
    intervals = np.empty((len(index), 2))
    if score.perfect_fit:
        _perfect_fit_warning(
            "Each interval is the fitted coefficient itself (zero width)."
        )
        intervals[:] = (beta_hat * units)[index, None]
        return intervals
    beta_hat = score.beta_hat = score.recenter(beta_hat)
    cov = score.sandwich(beta_hat)
    threshold = chi2.ppf(confidence, 1)
    for row, j in enumerate(index):
        intervals[row, 0] = _endpoint(score, j, beta_hat, cov, threshold, -1.0)
        intervals[row, 1] = _endpoint(score, j, beta_hat, cov, threshold, 1.0)
        intervals[row] += score.center[j]
        intervals[row] *= units[j]
    return intervals


@validate_params(
    {
        "estimator": [
            LinearRegression,
            LogisticRegression,
            DROLinearRegression,
            DROLogisticRegression,
        ],
        "X": ["array-like"],
        "y": ["array-like"],
        "feature": [Integral, str],
        "value": [Real],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def el_coef_test(estimator, X, y, feature, value, *, sample_weight=None):
    """Profile empirical likelihood test that one coefficient equals ``value``.

    Read more in the :ref:`User Guide <empirical_likelihood>`.

    Parameters
    ----------
    estimator : LinearRegression, LogisticRegression, DROLinearRegression or \
            DROLogisticRegression
        Defines the estimating equations, as in :func:`el_coef_interval`.
    X : array-like of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,)
        Target.
    feature : int or "intercept"
        Index into ``coef_``, or ``"intercept"``.
    value : float
        Hypothesized value of that coefficient; finite.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative frequency weights (equivalent to repeating rows).

    Returns
    -------
    statistic : float
        Profile statistic :math:`W_j(\\text{value})`, the other coefficients
        profiled out. ``inf`` when no coefficients with this value balance
        the estimating equations (the inner dual is unbounded, with a
        warning), and, for a perfect least-squares fit, ``inf`` unless
        ``value`` is the fitted coefficient up to rounding (then ``0``); see
        the Notes of :func:`el_coef_interval`.
    pvalue : float
        Upper tail of the chi-square distribution with one degree of freedom.

    Warns
    -----
    UserWarning
        On a perfect least-squares fit, a nearly perfect one, an
        ill-conditioned design, or an unbounded inner dual (as in
        :func:`el_coef_interval`).
    ConvergenceWarning
        If an inner solve fails its certificate: the squared Newton
        decrement of the dual, or the Newton decrement of the nuisance
        profile (the message gives it and its tolerance).

    See Also
    --------
    el_coef_interval : The interval of values this test does not reject.

    Notes
    -----
    See :func:`el_coef_interval` for the statistic and how it is computed.

    References
    ----------
    .. [1] Qin, J. and Lawless, J. (1994). "Empirical likelihood and general
       estimating equations." Annals of Statistics 22(1).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrobust.inference import el_coef_test
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=200)
    >>> statistic, pvalue = el_coef_test(LinearRegression(), X, y, 1, 0.0)
    >>> bool(pvalue > 0.01)
    True
    """
    if not np.isfinite(value):
        raise ValueError(f"value must be a finite number; got {value!r}.")
    score, n_features, beta0, units = _setup(estimator, X, y, sample_weight)
    j = _feature_index(feature, n_features, estimator.fit_intercept)
    beta_hat = score.solve(beta0)
    b = float(value) / units[j]
    if score.perfect_fit:
        _perfect_fit_warning(
            "The statistic is 0 when value equals the fitted coefficient up to "
            "rounding and inf otherwise."
        )
        if abs(b - beta_hat[j]) <= _rounding_radius(score, beta_hat, j):
            return 0.0, 1.0
        return np.inf, 0.0
    beta_hat = score.beta_hat = score.recenter(beta_hat)
    b -= score.center[j]
    cov = score.sandwich(beta_hat)
    free = np.arange(beta_hat.shape[0]) != j
    slope = cov[free, j] / cov[j, j] if cov[j, j] > 0 else np.zeros(free.sum())
    starts = _starts(beta_hat, free, slope, b - beta_hat[j])
    # and the Wald guess moved two conditional standard errors either way
    # along each free coefficient: a single test can afford a few more
    # starts, which find a lower basin far from the fit (at n ~ 12 a
    # nuisance objective can have two)
    if cov[j, j] > 0:
        cond = (
            cov[np.ix_(free, free)] - np.outer(cov[free, j], cov[free, j]) / cov[j, j]
        )
        spread = 2.0 * np.sqrt(np.clip(np.diag(cond), 0.0, None))
        for i in np.flatnonzero(spread > 0):
            for sign in (-1.0, 1.0):
                start = starts[0].copy()
                start[i] += sign * spread[i]
                starts.append(start)
    try:
        path = _continuation(score, j, beta_hat, slope, b, MAX_EVALUATIONS)
        if path is not None:
            starts.insert(0, path)
        fval = _best_profile(score, j, b, starts, None, MAX_EVALUATIONS)[0]
    except _Unbounded:
        warnings.warn(
            f"At value={value!r} the inner empirical-likelihood dual is "
            "unbounded (above 50 n) at the conditional and the unconditional "
            "fit of the other coefficients: the estimating equations cannot be "
            "balanced there, and the statistic is reported as inf.",
            UserWarning,
            stacklevel=2,
        )
        return np.inf, 0.0
    except _Budget:
        raise ValueError(
            f"The profile empirical likelihood at value={value!r} did not "
            f"converge within {MAX_EVALUATIONS} passes over the data; the value is "
            "probably far outside the region the data can support."
        ) from None
    statistic = max(2.0 * fval, 0.0)
    return float(statistic), float(chi2.sf(statistic, 1))
