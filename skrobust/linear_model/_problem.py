"""The objective of the linear DRO engine: loss, risk head and penalty.

``_Problem`` holds the data, a loss of :mod:`skrobust.linear_model._losses`,
a risk head (an ambiguity set of :mod:`skrobust.ambiguity`, or one of the
stand-ins of :mod:`skrobust.linear_model._heads`), the ridge strength and
an optional coefficient penalty (a Wasserstein ball), and evaluates

    F(W, b) = R(loss(X W + b)) + alpha / 2 * ||W||_F^2

with its gradient over the packed vector ``[W.ravel(), b, dual]`` and, for
preconditioning, its Hessian.
"""

import numpy as np
from scipy.linalg import block_diag

# Largest number of parameters for which the O(n d^2) Hessian preconditioner is
# built; beyond it, one Hessian costs more than the L-BFGS iterations it saves.
_MAX_PRECONDITIONED = 256
_ROWS_PER_CHUNK = 8192


class _Problem:
    """The objective F over the packed vector [W.ravel(), b, dual]."""

    def __init__(
        self, X, target, p, loss, ambiguity, alpha, fit_intercept, coef_penalty=None
    ):
        self.X = X
        # a Wasserstein ball acts through a penalty on the coefficients
        self.coef_penalty = coef_penalty
        if coef_penalty is not None and coef_penalty.is_trivial():
            self.coef_penalty = None
        self.target = target
        self.p = p
        self.loss = loss
        self.ambiguity = ambiguity
        self.alpha = float(alpha)
        self.fit_intercept = fit_intercept
        self.n_features = X.shape[1]
        self.n_outputs = loss.n_outputs
        self.trivial = ambiguity.is_trivial()
        # Sets with a kinked dual (CVaR) have their dual profiled out: it is
        # solved exactly for each evaluation, so L-BFGS never sees the
        # ill-conditioned direction that smoothing creates.
        self.profile_dual = not self.trivial and ambiguity.needs_smoothing
        self.n_dual = 0 if self.trivial or self.profile_dual else ambiguity.n_dual
        self._last_dual = None
        self.n_coef = self.n_features * self.n_outputs
        self.n_intercept = self.n_outputs if fit_intercept else 0

    def with_ambiguity(self, ambiguity):
        """The same problem with another risk head (same data, no copy)."""
        return _Problem(
            self.X,
            self.target,
            self.p,
            self.loss,
            ambiguity,
            self.alpha,
            self.fit_intercept,
            coef_penalty=self.coef_penalty,
        )

    def unpack(self, w):
        W = w[: self.n_coef].reshape(self.n_features, self.n_outputs)
        start = self.n_coef
        b = w[start : start + self.n_intercept] if self.fit_intercept else None
        dual = w[start + self.n_intercept :]
        return W, b, dual

    def predictions(self, W, b):
        Z = self.X @ W
        if b is not None:
            Z += b
        return Z

    def losses(self, W, b):
        return self.loss.value(self.predictions(W, b), self.target)

    def __call__(self, w, tau):
        W, b, dual = self.unpack(w)
        Z = self.predictions(W, b)
        # the loss's fast form where it has one (same numbers to rounding)
        value_grad = getattr(self.loss, "fast_value_grad", self.loss.value_grad)
        sample_loss, dZ = value_grad(Z, self.target, tau)
        if self.trivial:
            value = float(np.dot(self.p, sample_loss))
            g_loss, g_dual = self.p, np.empty(0)
        else:
            if self.profile_dual:
                dual, value, g_loss = self._profile(sample_loss, tau)
                g_dual = np.empty(0)
            else:
                value, g_loss, g_dual = self.ambiguity.dual_objective(
                    dual, sample_loss, self.p, smoothing=tau
                )
        G = dZ * g_loss[:, None]
        grad_W = self.X.T @ G
        if self.coef_penalty is not None:
            pen, pen_grad = self.coef_penalty.penalty(W, self.loss.lipschitz, tau)
            value += pen
            grad_W += pen_grad
        if self.alpha:
            grad_W += self.alpha * W
            value += 0.5 * self.alpha * float(np.sum(W * W))
        parts = [grad_W.ravel()]
        if b is not None:
            parts.append(G.sum(axis=0))
        parts.append(np.asarray(g_dual, dtype=float))
        return value, np.concatenate(parts)

    def _profile(self, sample_loss, tau):
        """The dual solved for the losses (warm-started): dual, value, weights."""
        if tau > 0 and hasattr(self.ambiguity, "_profiled"):
            dual, value, g_loss = self.ambiguity._profiled(
                sample_loss, self.p, tau, start=self._last_dual
            )
        else:
            dual = self.ambiguity.dual_argmin(
                sample_loss, self.p, smoothing=tau, start=self._last_dual
            )
            value, g_loss, _ = self.ambiguity.dual_objective(
                dual, sample_loss, self.p, smoothing=tau
            )
        self._last_dual = dual
        return dual, value, g_loss

    def objective(self, W, b):
        """Exact objective: robust risk of the unsmoothed losses plus penalty."""
        risk = self.ambiguity.risk(self.losses(W, b), self.p)
        if self.coef_penalty is not None:
            risk += self.coef_penalty.penalty(W, self.loss.lipschitz)[0]
        return risk + 0.5 * self.alpha * float(np.sum(W * W)), risk

    def smoothing_error(self, tau):
        bound = tau * self.loss.smooth_bound
        if not self.trivial:
            bound += self.ambiguity.smoothing_error(tau, self.p)
        if self.coef_penalty is not None:
            bound += self.coef_penalty.smoothing_error(
                tau, self.n_coef, self.loss.lipschitz
            )
        return bound

    @property
    def can_precondition(self):
        return (
            self.coef_penalty is None
            and self.n_outputs == 1
            and hasattr(self.loss, "curvature")
            and (
                not self.profile_dual or hasattr(self.ambiguity, "_profiled_curvature")
            )
            and self.n_coef + self.n_intercept <= _MAX_PRECONDITIONED
        )

    def hessian(self, w, tau, exact=False):
        """Hessian (or a stand-in) of the smoothed objective, for preconditioning.

        With the dual profiled out it is exact: by the chain rule, with ``q``
        the weights of the losses and ``diag(c) - v v^T`` the curvature of the
        smoothed risk over the losses, ``H = X^T diag(q l'' + c l'^2) X -
        (X^T (v l')) (X^T (v l'))^T`` (``X`` with a column of ones when
        fitting an intercept), plus the ridge penalty. For ERM ``q = p`` and
        ``c = 0``. When the dual variables are optimized jointly (chi-square,
        KL), the model block is ``X^T diag(q l'') X`` with ``q`` the weights of
        the dual at ``w``, and the dual block the identity. ``exact=True``
        leaves out the curvature floor of kinked losses (see below).
        """
        W, b, _ = self.unpack(w)
        Z = self.predictions(W, b)
        curvature = self.loss.curvature(Z, self.target, tau)
        if getattr(self.loss, "curvature_vanishes", False) and not exact:
            # Absolute and Huber losses have zero curvature away from the
            # kink (or outside the quadratic band): at a poor starting point
            # almost every sample is there and H is singular. A floor of
            # L / (2 * rms residual) (the curvature a smoothed kink has at
            # the typical residual) keeps the factor well conditioned.
            resid = Z[:, 0] - self.target
            rms = float(np.sqrt(np.dot(self.p, resid * resid)))
            floor = self.loss.lipschitz / (2.0 * max(rms, tau, 1e-300))
            curvature = curvature + min(floor, 1.0 / max(tau, 1e-300))
        if self.trivial:
            H = _weighted_gram(self.X, self.p * curvature, self.fit_intercept)
        elif not self.profile_dual:
            dual = self.unpack(w)[2]
            _, q, _ = self.ambiguity.dual_objective(dual, self.losses(W, b), self.p)
            H = _weighted_gram(self.X, q * curvature, self.fit_intercept)
        else:
            sample_loss, dZ = self.loss.value_grad(Z, self.target, tau)
            dual, _, q = self._profile(sample_loss, tau)
            diag, vec = self.ambiguity._profiled_curvature(
                dual, sample_loss, self.p, tau
            )
            slope = dZ[:, 0]
            weights = q * curvature + diag * slope * slope
            H = _weighted_gram(self.X, weights, self.fit_intercept)
            u = self.X.T @ (vec * slope)
            if self.fit_intercept:
                u = np.append(u, np.sum(vec * slope))
            H -= np.outer(u, u)
        H[: self.n_coef, : self.n_coef] += self.alpha * np.eye(self.n_coef)
        if self.n_dual:
            H = block_diag(H, np.eye(self.n_dual))
        return H

    @property
    def needs_smoothing(self):
        return (
            self.loss.smooth_bound > 0
            or self.coef_penalty is not None
            or (not self.trivial and self.ambiguity.needs_smoothing)
        )


def _weighted_gram(X, weights, fit_intercept):
    """``[X 1]^T diag(weights) [X 1]`` for weights >= 0, in row chunks.

    The ``X^T diag(w) X`` block leaves out rows of weight below ``1e-14``
    of the largest (relative change of ``H`` below about ``1e-14``).
    """
    n, d = X.shape
    size = d + 1 if fit_intercept else d
    H = np.zeros((size, size))
    root = np.sqrt(np.maximum(weights, 0.0))
    # rows whose weight is below 1e-14 of the largest (a smoothed CVaR
    # head's weights below the value at risk: most rows) change H by less
    # than rounding; the product skips them. Callers use H to precondition
    # or to project, and check the result.
    floor = 1e-7 * float(root.max()) if root.size else 0.0
    for start in range(0, n, _ROWS_PER_CHUNK):
        rows = slice(start, start + _ROWS_PER_CHUNK)
        r = root[rows]
        keep = r > floor
        if not keep.any():
            continue
        if keep.mean() < 0.75:
            scaled = X[rows][keep] * r[keep, None]
        else:
            scaled = X[rows] * r[:, None]
        H[:d, :d] += scaled.T @ scaled
    if fit_intercept:
        H[:d, d] = H[d, :d] = X.T @ weights
        H[d, d] = weights.sum()
    return H
