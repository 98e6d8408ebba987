"""The ambiguity-set interface every worst-case expectation goes through."""

from abc import abstractmethod

import numpy as np
from sklearn.base import BaseEstimator

from skrobust.utils._validation import check_losses, check_probability_weights


class AmbiguitySet(BaseEstimator):
    """Base class of ambiguity sets: balls of distributions around P_n.

    An ambiguity set :math:`\\mathcal{U}(P_n)` defines the worst-case (robust)
    expectation of per-sample losses :math:`\\ell_1, \\dots, \\ell_n`,

    .. math::

        R(\\ell) = \\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell],

    where :math:`P_n` puts mass :math:`p_i` (normalized ``sample_weight``) on
    sample :math:`i`. Subclasses implement an exact solve of the
    one-dimensional convex dual on losses rescaled to [0, 1], the dual
    objective used by joint primal-dual solvers, and a cvxpy formulation.

    Ambiguity sets are scikit-learn style parameter objects: ``get_params`` and
    ``set_params`` work, so ``GridSearchCV`` can search ``ambiguity__radius``
    of an estimator that holds one. They have no ``fit``.
    """

    #: number of dual variables in :meth:`dual_objective`
    n_dual = 1

    # -- public API --------------------------------------------------------
    def risk(self, losses, sample_weight=None):
        """Worst-case expectation of ``losses`` over the ambiguity set.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses (any finite real numbers).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining the nominal distribution
            :math:`P_n`; ``None`` means uniform.

        Returns
        -------
        risk : float
            :math:`\\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell]`.
        """
        return self.risk_and_weights(losses, sample_weight)[0]

    def worst_case_weights(self, losses, sample_weight=None):
        """The maximizing distribution Q as weights on the samples.

        By Danskin's theorem these weights are also the gradient of
        :meth:`risk` with respect to the losses (where it is differentiable).

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining :math:`P_n`.

        Returns
        -------
        q : ndarray of shape (n_samples,)
            Nonnegative weights that sum to one. Tied losses get weights
            proportional to their nominal weights.
        """
        return self.risk_and_weights(losses, sample_weight)[1]

    def risk_and_weights(self, losses, sample_weight=None):
        """Return ``(risk, worst_case_weights)`` from one exact solve.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining :math:`P_n`.

        Returns
        -------
        risk : float
        q : ndarray of shape (n_samples,)
        """
        risk, q, _ = self._exact(losses, sample_weight)
        return risk, q

    def dual_init(self, losses, sample_weight=None):
        """Optimal dual variables for fixed ``losses``, in loss units.

        A joint solver over (model parameters, dual) starts from these.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        dual : ndarray of shape (n_dual,)
        """
        return self._exact(losses, sample_weight)[2]

    def dual_argmin(self, losses, p, smoothing=0.0, start=None):
        """Minimizer of :meth:`dual_objective` over the dual for fixed losses.

        Solvers that profile the dual out (minimize over the model parameters
        only) call this; for smooth sets it is :meth:`dual_init`.

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
            Per-sample losses, already validated.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.
        smoothing : float, default=0.0
            Smoothing temperature (see :meth:`dual_objective`).
        start : ndarray of shape (n_dual,), default=None
            A guess (for example the previous solution) that iterative
            solves start from.

        Returns
        -------
        dual : ndarray of shape (n_dual,)
        """
        return self.dual_init(losses, p)

    @abstractmethod
    def dual_objective(self, dual, losses, p, smoothing=0.0):
        """Dual objective ``G(dual, losses)`` with ``min_dual G = risk``.

        Parameters
        ----------
        dual : ndarray of shape (n_dual,)
            Dual variables (see the subclass for their meaning).
        losses : ndarray of shape (n_samples,)
            Per-sample losses, already validated.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution (sum to one).
        smoothing : float, default=0.0
            Smoothing temperature for sets whose dual has a kink (CVaR); ignored
            by smooth ones.

        Returns
        -------
        value : float
        grad_losses : ndarray of shape (n_samples,)
        grad_dual : ndarray of shape (n_dual,)
        """

    @abstractmethod
    def cvxpy_risk(self, loss_expr, p):
        """Robust risk of a convex cvxpy expression, as (objective, constraints).

        Parameters
        ----------
        loss_expr : cvxpy.Expression of shape (n_samples,)
            Convex per-sample losses.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        objective : cvxpy.Expression
            Convex scalar whose minimum over the extra variables is the risk.
        constraints : list of cvxpy.Constraint
        """

    # -- shared machinery --------------------------------------------------
    @property
    def needs_smoothing(self):
        """Whether :meth:`dual_objective` is nonsmooth without ``smoothing``."""
        return False

    def is_trivial(self):
        """Whether the set is the single point P_n (risk equals the mean)."""
        return False

    def smoothing_error(self, smoothing, p=None):
        """Bound on how much ``smoothing`` can overstate the dual objective.

        The smoothed dual objective lies between the exact one and the exact one
        plus this bound, for every dual value and loss vector.

        Parameters
        ----------
        smoothing : float
            Smoothing temperature.
        p : ndarray of shape (n_samples,), default=None
            Nominal probability weights, for bounds that depend on them.

        Returns
        -------
        bound : float
        """
        return 0.0

    def _dual_trivial(self, losses, p):
        """Dual variables to report when the set is trivial or losses tie."""
        return np.zeros(self.n_dual)

    def _exact(self, losses, sample_weight):
        # Peak memory: the losses (the caller's), at most three arrays of n
        # floats of our own (p, the rescaled losses z, one work array or q;
        # p is a broadcast view when unweighted) and masks of a block.
        self._validate_params()
        losses = check_losses(losses)
        n = losses.shape[0]
        off_support = None
        if sample_weight is None:
            # uniform: a read-only broadcast view, no array of n weights
            p = np.broadcast_to(np.float64(1.0 / n), (n,))
        else:
            p = check_probability_weights(sample_weight, n)
            support = p > 0
            if not support.all():
                off_support = ~support
            del support
        if off_support is None:
            lo = losses.min()
            hi = losses.max()
        else:
            lo = np.min(losses, where=~off_support, initial=np.inf)
            hi = np.max(losses, where=~off_support, initial=-np.inf)
        if self.is_trivial() or hi - lo <= 0:
            mean = float(np.dot(p, losses))
            return mean, np.array(p), self._dual_trivial(losses, p)
        scale = hi - lo
        z = np.subtract(losses, lo)
        if off_support is not None:
            # samples of zero weight sit at the smallest loss: every solver
            # gives them zero worst-case weight, and no sum sees them
            z[off_support] = 0.0
            del off_support
        z /= scale
        # z is ours: the solvers may overwrite it (some build q in it)
        risk_z, q, dual_z = self._solve_unit(z, p)
        del z
        if not q.flags.writeable or np.shares_memory(q, p):
            q = np.array(q)
        risk = lo + scale * risk_z
        # numerical safety: the robust risk lies between the mean and the max
        risk = float(np.clip(risk, np.dot(p, losses), hi))
        return risk, q, self._dual_to_loss_units(dual_z, lo, scale)

    @abstractmethod
    def _solve_unit(self, z, p):
        """Exact solve on losses ``z`` in [0, 1] with min 0 and max 1.

        ``z`` is a private array that the solve may overwrite (for example to
        build ``q`` in it); ``p`` may be a read-only broadcast view, and samples
        with ``p = 0`` have ``z = 0`` and must get ``q = 0``.

        Returns ``(risk, q, dual)`` with ``dual`` in the units of ``z``.
        """

    def _dual_to_loss_units(self, dual_z, lo, scale):
        """Map a dual solved on losses rescaled to [0, 1] back to loss units.

        The default is the location-scale map of a threshold ``eta`` (used by
        Cressie-Read, CVaR and total variation); KL overrides it.
        """
        return np.array([lo + scale * float(dual_z[0])])


def _group_descending(z, p):
    """Unique values of ``z`` in decreasing order, their total mass and index."""
    values, inverse = np.unique(z, return_inverse=True)
    mass = np.bincount(inverse, weights=p, minlength=values.shape[0])
    values = values[::-1]
    mass = mass[::-1]
    inverse = values.shape[0] - 1 - inverse
    return values, mass, inverse


def _weights_on_max(z, p, overwrite=False):
    """All mass on the largest loss, split in proportion to ``p`` among ties.

    With ``overwrite=True`` the weights are built in ``z``'s buffer.
    """
    top = z.max()
    q = z if overwrite else np.empty_like(z, dtype=np.float64)
    for block in _blocks(z.shape[0]):
        z_block = z[block]
        weights = np.where(z_block >= top, p[block], 0.0)
        np.copyto(q[block], weights)
    q /= q.sum()
    return q


def _masked_sum(x, z, compare, value):
    """``x[compare(z, value)].sum()`` over blocks (no mask or copy of n entries).

    ``compare`` is a comparison ufunc such as ``np.greater_equal``.
    """
    return float(
        sum(
            float(x[block][compare(z[block], value)].sum())
            for block in _blocks(z.shape[0])
        )
    )


def _masked_min(z, compare, value):
    """The smallest ``z`` with ``compare(z, value)`` (``inf`` if none), in blocks."""
    return float(
        min(
            float(z[block][compare(z[block], value)].min(initial=np.inf))
            for block in _blocks(z.shape[0])
        )
    )


def _masked_max(z, compare, value):
    """The largest ``z`` with ``compare(z, value)`` (``-inf`` if none), in blocks."""
    return float(
        max(
            float(z[block][compare(z[block], value)].max(initial=-np.inf))
            for block in _blocks(z.shape[0])
        )
    )


#: smallest block of :func:`_blocks`
_MIN_BLOCK = 1024


def _blocks(n, count=4):
    """Slices of ``range(n)`` in about ``count`` blocks of at least 1024.

    Loops over these (not over samples) keep the masks and temporaries of an
    operation to a fraction of a vector of ``n`` floats.
    """
    step = max(_MIN_BLOCK, -(-n // count))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]
