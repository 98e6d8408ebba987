"""Contextual policies with one Bayesian linear regression per arm."""

import numbers

import numpy as np
from scipy.linalg import blas
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from skbandit._base import BasePolicy
from skbandit._random import standard_normal32

# Standard normals drawn at once by the Monte Carlo ``predict_proba``
# (512 KiB of float32; the draw's peak is about twice that).
_MC_CHUNK = 2**17

# A decision computes, for each row, the products x^T A_k^{-1} of every arm
# (K d numbers, besides K means and quadratic forms). A batch of at most
# ``_SINGLE_BLOCK_ROWS`` rows (serving batches) is decided in one block, as
# fast as before; a larger one in blocks of rows whose intermediates take at
# most ``_BLOCK_BYTES`` and at most half of X's bytes (at least
# ``_MIN_BLOCK_ROWS`` rows), so that the peak memory of ``predict``,
# ``predict_proba`` and ``upper_bounds`` stays within a small multiple of X
# (never an (n, K, d) array).
_SINGLE_BLOCK_ROWS = 2048
_BLOCK_BYTES = 4 * 2**20
_MIN_BLOCK_ROWS = 256

# A Thompson decision (or probability) on at least ``_TRIANGULAR_ROWS``
# contexts computes the quadratic forms as ``|R_k^{-1} x|^2`` with the
# Cholesky factor ``A_k = R_k R_k^T`` (for at least ``_TRIANGULAR_MIN_DIM``
# coefficients per arm): one triangular product per arm and
# block of rows (BLAS ``strmm``, half the multiply-adds of the dense
# ``x^T A_k^{-1}``), in blocks of at most ``_TRIANGULAR_BLOCK`` rows. The
# factors are computed once per update, on first use; smaller batches keep
# the one dense GEMM, cheaper than refactoring after every small update.
# Below ``_TRIANGULAR_MIN_DIM`` coefficients per arm the per-arm BLAS calls
# cost more than the flops they save (measured: 0.2-0.9x at d = 8..24,
# 1.05-1.3x at d = 32..48, 1.1-1.6x at d = 64, 1.65x at d = 128).
_TRIANGULAR_ROWS = 2048
_TRIANGULAR_BLOCK = 2048
_TRIANGULAR_MIN_DIM = 32


def _woodbury(inv, Z, w):
    """``(A + Z^T W Z)^{-1}`` from ``inv = A^{-1}`` (Woodbury), symmetrized.

    ``(A + Z^T W Z)^{-1} = A^{-1} - A^{-1} Z^T (W^{-1} + Z A^{-1} Z^T)^{-1}
    Z A^{-1}``.
    """
    U = Z @ inv
    core = np.diag(1.0 / w) + U @ Z.T
    new = inv - U.T @ np.linalg.solve(core, U)
    return 0.5 * (new + new.T)


class _BaseLinearPolicy(BasePolicy):
    """Per-arm ridge / Bayesian linear regression state shared by LinTS and LinUCB.

    For arm ``k`` the state is the regularized Gram matrix
    ``A_k = regularization * I + X_k^T W_k X_k``, the vector
    ``b_k = X_k^T W_k r_k`` and the inverse ``A_k^{-1}``. A batch of ``m``
    rows for an arm updates the inverse with the Woodbury identity (a
    Sherman-Morrison rank-one update when ``m == 1``) when ``m`` is small,
    and recomputes ``A_k^{-1}`` from the accumulated ``A_k`` otherwise (and
    after ``d`` low-rank updates, to keep rounding errors from accumulating).
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "regularization": [Interval(numbers.Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
    }

    def _augment(self, X):
        if self.fit_intercept:
            return np.hstack([X, np.ones((X.shape[0], 1))])
        return X

    def _init_state(self, n_features):
        n_arms = self.classes_.shape[0]
        d = n_features + int(self.fit_intercept)
        eye = np.eye(d)
        self._gram = np.repeat((self.regularization * eye)[None], n_arms, axis=0)
        self._inv = np.repeat((eye / self.regularization)[None], n_arms, axis=0)
        self._xty = np.zeros((n_arms, d))
        self._n_low_rank = np.zeros(n_arms, dtype=int)
        self._set_posterior(self._inv, np.zeros((n_arms, d)))

    def _set_posterior(self, inv, theta):
        """Store ``A_k^{-1}``, ``theta_k`` and the layouts ``predict`` uses."""
        self._inv, self._theta = inv, theta
        self._factors32 = None  # R_k^{-1} of A_k = R_k R_k^T, on first use
        # (d, K * d) layout: one GEMM gives X A_k^{-1} for every arm; the
        # float32 copy puts theta^T in front, so that the same GEMM also
        # gives every arm's mean
        d = inv.shape[1]
        self._inv_flat = inv.transpose(1, 0, 2).reshape(d, -1)
        self._mean_inv_flat32 = np.concatenate(
            [theta.T, self._inv_flat], axis=1
        ).astype(np.float32)
        if self.fit_intercept:
            self.coef_ = theta[:, :-1]
            self.intercept_ = theta[:, -1]
        else:
            self.coef_ = theta
            self.intercept_ = np.zeros(theta.shape[0])

    def _update_full_information(self, X, arm, weight):
        # every arm sees every row (reward 1 on its label, 0 elsewhere): one
        # design for all arms, whose Gram matrix is accumulated once over
        # blocks of rows, so that X is never copied once per arm
        keep = weight > 0
        if not keep.all():
            X, arm, weight = X[keep], arm[keep], weight[keep]
        m = X.shape[0]
        n_arms, d = self._theta.shape
        gram_add, xty_add = np.zeros((d, d)), np.zeros((n_arms, d))
        budget = min(_BLOCK_BYTES, X.nbytes // 2)
        step = max(_MIN_BLOCK_ROWS, budget // (16 * d + 9 * n_arms))
        for lo in range(0, m, step):
            Z = self._augment(X[lo : lo + step])
            Zw = weight[lo : lo + step, None] * Z
            gram_add += Z.T @ Zw
            labels = arm[lo : lo + step, None] == np.arange(n_arms)
            xty_add += labels.T.astype(np.float64) @ Zw
        gram, xty = self._gram + gram_add, self._xty + xty_add
        inv, n_low_rank = self._inv.copy(), self._n_low_rank.copy()
        low_rank = (m < d // 2) & (n_low_rank + m <= d)
        if m > 0 and low_rank.any():
            Z = self._augment(X)
            for k in np.flatnonzero(low_rank):
                inv[k] = _woodbury(inv[k], Z, weight)
            n_low_rank[low_rank] += m
        refactor = np.flatnonzero(~low_rank)
        if m > 0 and refactor.size:
            fresh = np.linalg.inv(gram[refactor])
            inv[refactor] = 0.5 * (fresh + fresh.transpose(0, 2, 1))
            n_low_rank[refactor] = 0
        self._gram, self._xty, self._n_low_rank = gram, xty, n_low_rank
        self._set_posterior(inv, np.einsum("kij,kj->ki", inv, xty))

    def _update(self, X, arm, reward, weight):
        keep = weight > 0
        Xa = self._augment(X if keep.all() else X[keep])
        arm, reward, weight = arm[keep], reward[keep], weight[keep]
        d = Xa.shape[1]
        gram, inv, xty = self._gram.copy(), self._inv.copy(), self._xty.copy()
        n_low_rank = self._n_low_rank.copy()
        order = np.argsort(arm, kind="stable")
        arms, starts, counts = np.unique(
            arm[order], return_index=True, return_counts=True
        )
        refactor = []  # arms whose inverse is recomputed, all in one call
        for k, lo, m in zip(arms, starts, counts, strict=True):
            rows = order[lo : lo + m]
            Z, w = Xa[rows], weight[rows]
            Zw = w[:, None] * Z
            gram[k] += Z.T @ Zw
            xty[k] += Zw.T @ reward[rows]
            if m < d // 2 and n_low_rank[k] + m <= d:
                inv[k] = _woodbury(inv[k], Z, w)
                n_low_rank[k] += m
            else:
                refactor.append(k)
        if refactor:
            # the A_k are symmetric positive definite (regularization > 0)
            fresh = np.linalg.inv(gram[refactor])
            inv[refactor] = 0.5 * (fresh + fresh.transpose(0, 2, 1))
            n_low_rank[refactor] = 0
        self._gram, self._xty, self._n_low_rank = gram, xty, n_low_rank
        self._set_posterior(inv, np.einsum("kij,kj->ki", inv, xty))

    def _block_rows(self, X, single=False, triangular=False):
        """Rows per block of ``_mean_and_var`` for the contexts ``X``."""
        n = X.shape[0]
        if triangular:
            return _TRIANGULAR_BLOCK
        n_arms, d = self._theta.shape
        itemsize = 4 if single else 8
        # the augmented block, the (K + K d) products and the K quadratic forms
        row_bytes = itemsize * (d + n_arms * (d + 2))
        if n <= _SINGLE_BLOCK_ROWS:
            return max(n, 1)
        budget = min(_BLOCK_BYTES, X.nbytes // 2)
        return max(_MIN_BLOCK_ROWS, budget // row_bytes)

    def _triangular_factors(self):
        """``R_k^{-1}`` (float32, Fortran order) with ``A_k = R_k R_k^T``.

        ``x^T A_k^{-1} x = |R_k^{-1} x|^2``. ``None`` when a Gram matrix
        cannot be factored (non-finite entries): callers then use the dense
        ``A_k^{-1}``.
        """
        if self._factors32 is None:
            R_inv = None
            if np.all(np.isfinite(self._gram)):
                try:
                    with np.errstate(all="ignore"):
                        R = np.linalg.cholesky(self._gram)
                        R_inv = np.tril(np.linalg.inv(R))
                except np.linalg.LinAlgError:
                    R_inv = None
            if R_inv is None or not np.all(np.isfinite(R_inv)):
                self._factors32 = False
            else:
                self._factors32 = [
                    np.asfortranarray(f, dtype=np.float32) for f in R_inv
                ]
        return self._factors32 or None

    def _mean_and_var_triangular(self, X, factors):
        """``_mean_and_var(X, single=True)`` by triangular products.

        Each arm's ``R_k^{-1} X^T`` comes from one BLAS ``strmm`` on the
        (Fortran-ordered) transposed block; its column sums of squares are
        the quadratic forms, nonnegative by construction.
        """
        n = X.shape[0]
        n_arms, d = self._theta.shape
        Xa = np.empty((n, d), dtype=np.float32)
        if self.fit_intercept:
            Xa[:, :-1] = X
            Xa[:, -1] = 1.0
        else:
            Xa[:] = X
        mean = Xa @ self._mean_inv_flat32[:, :n_arms]
        quad = np.empty((n_arms, n), dtype=np.float32)
        Xt = Xa.T  # (d, n), Fortran order: no copy
        for k in range(n_arms):
            B = blas.strmm(1.0, factors[k], Xt, side=0, lower=1)
            np.einsum("ij,ij->j", B, B, out=quad[k])
        return mean, quad.T

    def _mean_and_var(self, X, single=False):
        """Posterior mean of each arm's reward and ``x^T A_k^{-1} x``.

        ``single=True`` computes both in float32 (relative error about
        1e-7 of ``|x| |theta_k|`` and of the quadratic form, far below the
        sampling noise they feed), which halves the cost of a decision: one
        GEMM ``(n, d) @ (d, K + K d)`` gives the means and ``X A_k^{-1}``
        for all arms, then one batched matrix-vector product the quadratic
        forms. ``single=False`` does the same in float64 (LinUCB's bounds).
        The arrays returned are fresh (callers may overwrite them). Callers
        pass blocks of at most :meth:`_block_rows` rows, which bounds the
        ``(rows, K, d)`` intermediate.
        """
        n = X.shape[0]
        n_arms, d = self._theta.shape
        # the augmented contexts, converted and augmented in one copy
        dtype = np.float32 if single else np.float64
        if self.fit_intercept:
            Xa = np.empty((n, d), dtype=dtype)
            Xa[:, :-1] = X
            Xa[:, -1] = 1.0
        else:
            Xa = np.asarray(X, dtype=dtype)
        if single:
            product = Xa @ self._mean_inv_flat32
            mean = product[:, :n_arms]
            XA = product[:, n_arms:].reshape(n, n_arms, d)
        else:
            mean = Xa @ self._theta.T
            XA = (Xa @ self._inv_flat).reshape(n, n_arms, d)
        quad = np.matmul(XA, Xa[:, :, None]).reshape(n, n_arms)
        np.maximum(quad, 0.0, out=quad)
        return mean, quad


class LinearThompsonSampling(_BaseLinearPolicy):
    """Linear Thompson sampling: Bayesian linear regression per arm.

    The reward of arm :math:`k` in context :math:`x` is modeled as
    :math:`x^\\top\\theta_k + \\varepsilon` with
    :math:`\\varepsilon \\sim N(0, \\sigma^2)` and the prior
    :math:`\\theta_k \\sim N(0, \\sigma^2/\\lambda\\, I)`. Every decision draws
    each arm's coefficients from its own posterior, independently across arms
    and contexts, and plays the arm with the largest sampled reward. A whole
    batch of contexts is decided in one vectorized call.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    regularization : float, default=1.0
        Prior precision :math:`\\lambda` relative to the noise (the ridge
        penalty).
    noise_variance : float, default=1.0
        Noise variance :math:`\\sigma^2`; it scales the posterior covariance,
        so larger values explore more (MABWiser's ``alpha`` is
        :math:`\\sigma`).
    fit_intercept : bool, default=True
        Whether each arm's model has an intercept (a constant feature, with
        the same prior as the coefficients).
    n_proba_draws : int, default=1000
        Monte Carlo draws per context used by ``predict_proba``.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws of ``predict`` and ``predict_proba``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    coef_ : ndarray of shape (n_arms, n_features)
        Posterior mean coefficients of each arm.
    intercept_ : ndarray of shape (n_arms,)
        Posterior mean intercepts (zeros if ``fit_intercept=False``).
    n_features_in_ : int
        Number of context features.
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    LinUCB : Upper confidence bounds with the same per-arm regression.
    DistilledThompsonSampling : Serves this policy through a fast classifier.

    Notes
    -----
    With :math:`A_k = \\lambda I + X_k^\\top W_k X_k` and
    :math:`b_k = X_k^\\top W_k r_k` over the rounds where arm :math:`k` was
    played, the posterior is

    .. math::

        \\theta_k \\mid \\mathcal{D} \\sim N(A_k^{-1} b_k,\\ \\sigma^2 A_k^{-1}),

    independent across arms. The sampled reward of arm :math:`k` in context
    :math:`x` is then :math:`N(x^\\top A_k^{-1} b_k, \\sigma^2 x^\\top
    A_k^{-1} x)`; ``predict`` draws these directly (the same distribution as
    projecting a draw of :math:`\\theta_k`), at a cost of
    :math:`O(n K d^2)` per batch, in single precision. The standard normal
    draws come from the vectorized Box-Muller transform, served to small
    batches from blocks of 16,384 draws (each draw used once). Batches of
    more than 2,048 contexts are computed in blocks of rows (the draws
    still made at once, in row order), so that the memory a call takes stays
    near the size of X. ``predict_proba`` counts the winning arm
    over ``n_proba_draws`` draws per context (standard error at most
    :math:`0.5/\\sqrt{n\\_proba\\_draws}`).

    References
    ----------
    .. [1] S. Agrawal and N. Goyal, "Thompson Sampling for Contextual Bandits
       with Linear Payoffs", ICML, 2013.
    .. [2] C. Riquelme, G. Tucker and J. Snoek, "Deep Bayesian Bandits
       Showdown", ICLR, 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import LinearThompsonSampling, make_feedback
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> actions = rng.integers(2, size=200)
    >>> rewards = np.where(actions == 1, X[:, 0], -X[:, 0])
    >>> policy = LinearThompsonSampling(random_state=0)
    >>> policy.fit(X, make_feedback(actions, rewards)).coef_.round(1)
    array([[-1., -0.],
           [ 1.,  0.]])
    >>> policy.predict([[2.0, 0.0], [-2.0, 0.0]])
    array([1, 0])
    """

    _parameter_constraints: dict = {
        **_BaseLinearPolicy._parameter_constraints,
        "noise_variance": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_proba_draws": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        regularization=1.0,
        noise_variance=1.0,
        fit_intercept=True,
        n_proba_draws=1000,
        arms=None,
        random_state=None,
    ):
        self.regularization = regularization
        self.noise_variance = noise_variance
        self.fit_intercept = fit_intercept
        self.n_proba_draws = n_proba_draws
        self.arms = arms
        self.random_state = random_state

    def _choose(self, X, rng):
        # score_{ik} = x_i' theta_k + sqrt(sigma^2 x_i' A_k^{-1} x_i) z_{ik}:
        # the projection of an independent posterior draw per (context, arm)
        n, n_arms = X.shape[0], self._theta.shape[0]
        # all draws at once, in the order of the rows (the same stream as an
        # unblocked decision), then the scores block by block, in place
        score = self._standard_normal(rng, (n, n_arms))
        noise_variance = np.float32(self.noise_variance)
        mean_and_var, step = self._decision_blocks(X)
        chosen = np.empty(n, dtype=np.intp)
        for lo in range(0, n, step):
            mean, quad = mean_and_var(X[lo : lo + step])
            quad *= noise_variance
            np.sqrt(quad, out=quad)
            block = score[lo : lo + step]
            block *= quad
            block += mean
            chosen[lo : lo + step] = block.argmax(axis=1)
        return chosen

    def _decision_blocks(self, X):
        """The float32 means-and-variances routine for ``X`` and its block rows."""
        factors = None
        dim = self._theta.shape[1]
        if X.shape[0] >= _TRIANGULAR_ROWS and dim >= _TRIANGULAR_MIN_DIM:
            factors = self._triangular_factors()
        if factors is None:
            step = self._block_rows(X, single=True)
            return (lambda block: self._mean_and_var(block, single=True)), step
        step = self._block_rows(X, single=True, triangular=True)
        return (lambda block: self._mean_and_var_triangular(block, factors)), step

    def _mean_and_sd(self, X):
        """Posterior means and sampling standard deviations, (n, K) float32."""
        n, n_arms = X.shape[0], self._theta.shape[0]
        mean = np.empty((n, n_arms), dtype=np.float32)
        sd = np.empty((n, n_arms), dtype=np.float32)
        mean_and_var, step = self._decision_blocks(X)
        for lo in range(0, n, step):
            m, quad = mean_and_var(X[lo : lo + step])
            mean[lo : lo + step] = m
            np.multiply(self.noise_variance, quad, out=quad)
            np.sqrt(quad, out=sd[lo : lo + step])
        return mean, sd

    def _proba(self, X):
        mean, sd = self._mean_and_sd(X)
        n, n_arms = mean.shape
        draws = self.n_proba_draws
        rng = np.random.default_rng([self._seed, 1])
        proba = np.empty((n, n_arms))
        step = max(1, _MC_CHUNK // (draws * n_arms))
        for lo in range(0, n, step):
            m, s = mean[lo : lo + step, None, :], sd[lo : lo + step, None, :]
            z = standard_normal32(rng, (m.shape[0], draws, n_arms))
            z *= s
            z += m
            best = np.argmax(z, axis=2)  # (rows, draws)
            # count each row's winners: one bincount over row-offset labels
            best += n_arms * np.arange(best.shape[0])[:, None]
            counts = np.bincount(best.ravel(), minlength=best.shape[0] * n_arms)
            proba[lo : lo + step] = counts.reshape(-1, n_arms) / draws
        return proba

    def posterior_covariance(self):
        """Posterior covariance of each arm's coefficients.

        Returns
        -------
        covariance : ndarray of shape (n_arms, n_coef, n_coef)
            :math:`\\sigma^2 A_k^{-1}`; with ``fit_intercept`` the last
            coordinate is the intercept.
        """
        return self.noise_variance * self._inv.copy()

    def sample_coef(self, n_draws=1, random_state=None):
        """Draw coefficients from the posterior, independently per arm.

        Parameters
        ----------
        n_draws : int, default=1
            Number of draws.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws.

        Returns
        -------
        coef : ndarray of shape (n_draws, n_arms, n_coef)
            Draws of :math:`\\theta_k`; with ``fit_intercept`` the last
            coordinate is the intercept.
        """
        rs = check_random_state(random_state)
        cov = self.posterior_covariance()
        chol = np.linalg.cholesky(cov)
        z = rs.standard_normal((n_draws,) + self._theta.shape)
        return self._theta[None] + np.einsum("kij,nkj->nki", chol, z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.policy_tags.contextual = True
        tags.policy_tags.exact_proba = False
        return tags
