"""The estimating equations of linear and logistic regression, blockwise.

The column-scaled design (never formed in full), its rank check, the score
``g_i(beta) = x_i (y_i - m(x_i' beta))`` with the inner EL dual of
:mod:`skrobust.inference._dual` accumulated over blocks of rows, and the
validation of the estimator, data and coefficient names.
"""

import warnings
from numbers import Integral

import numpy as np
from scipy.linalg import qr, solve_triangular
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils import check_X_y
from sklearn.utils.validation import column_or_1d

from skrobust.ambiguity import check_ambiguity
from skrobust.inference._dual import pseudo_eps as _pseudo_eps
from skrobust.inference._dual import pseudo_log as _pseudo_log
from skrobust.inference._dual import solve_dual as _solve_dual
from skrobust.inference._validation import check_frequency_weights
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression

#: Newton iterations of the logistic fit
MAX_ITER = 100
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
        # (the loss's old name and scikit-learn's)
        squared = family == "logistic" or estimator.loss in {"squared", "squared_error"}
        if not (trivial and estimator.alpha == 0 and squared):
            raise ValueError(
                "For a DRO linear model the estimating equations are those of "
                "least squares or logistic maximum likelihood, so estimator "
                "must have ambiguity='erm' (radius 0), alpha=0 and, for "
                f"regression, loss='squared_error'; got {estimator!r}. Use "
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
