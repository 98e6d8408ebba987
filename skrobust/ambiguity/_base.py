"""The ambiguity-set interface every worst-case expectation goes through."""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator

from skrobust.ambiguity._blocked import (  # noqa: F401 (re-exported: old home)
    _MIN_BLOCK,
    _blocks,
    _group_descending,
    _masked_max,
    _masked_min,
    _masked_sum,
    _weights_on_max,
)
from skrobust.utils._validation import check_losses, check_probability_weights


class AmbiguitySet(BaseEstimator, metaclass=ABCMeta):
    """Base class of ambiguity sets: balls of distributions around P_n.

    An ambiguity set :math:`\\mathcal{U}(P_n)` around the empirical
    distribution :math:`P_n` (mass :math:`p_i`, the normalized
    ``sample_weight``, on sample :math:`i`) turns a model's losses into a
    worst-case (robust) risk. There are two kinds, each an abstract subclass
    with its own protocol:

    - :class:`ReweightingAmbiguitySet` (``feature_space = False``): the
      distributions reweight the samples (f-divergence balls, CVaR, total
      variation). Everything is a function of the vector of per-sample losses:
      the worst-case risk, the worst-case weights, the dual variables and a
      certificate. ``ChiSquare``, ``CressieRead``, ``KL``, ``CVaR`` and
      ``TotalVariation`` are of this kind.
    - :class:`FeatureAmbiguitySet` (``feature_space = True``): the
      distributions move the samples (perturb X, and possibly y), so the worst
      case depends on the model, through its Lipschitz constant and the dual
      norm of its coefficients. ``Wasserstein`` is of this kind.

    Abstract methods are enforced: a subclass that does not implement them
    cannot be instantiated. Ambiguity sets are scikit-learn style parameter
    objects: ``get_params``, ``set_params``, ``clone`` and pickling work, so
    ``GridSearchCV`` can search ``ambiguity__radius`` of an estimator that
    holds one. They have no ``fit``.
    """

    #: whether the set perturbs the features (True) or reweights samples
    feature_space = False

    @abstractmethod
    def is_trivial(self):
        """Whether the set is the single point P_n (risk equals the mean)."""


class ReweightingAmbiguitySet(AmbiguitySet):
    """Ambiguity sets of reweightings of the samples: the loss-vector protocol.

    Such a set :math:`\\mathcal{U}(P_n)` of distributions :math:`Q \\ll P_n`
    defines the worst-case expectation of per-sample losses
    :math:`\\ell_1, \\dots, \\ell_n`,

    .. math::

        R(\\ell) = \\sup_{Q \\in \\mathcal{U}(P_n)} E_Q[\\ell].

    The protocol (what every caller in the library uses):

    - :meth:`risk`: the worst-case risk of a loss vector with sample weights;
    - :meth:`worst_case_weights` (and :meth:`risk_and_weights`): the
      maximizing distribution :math:`Q^\\star` as weights on the samples;
    - :meth:`risk_gradient`: the gradient of :math:`R` with respect to the
      losses, which is :math:`Q^\\star` (Danskin's theorem);
    - :meth:`dual_init`: the optimal dual variables in loss units, and
      :meth:`dual_objective` with its gradients in (dual, losses), minimized
      over the dual by :meth:`dual_argmin` / :meth:`profiled_dual` (with an
      optional smoothing of kinked duals), for joint primal-dual solvers;
    - :meth:`certificate`: the duality gap of its own exact solve (the dual
      objective at the returned dual minus the expectation under a feasible
      distribution built from the returned weights by
      :meth:`feasible_weights`);
    - :meth:`torch_risk` / :meth:`torch_risk_and_weights`: the same set on
      torch tensors, on any device, differentiable (the torch backend,
      ``skrobust/ambiguity/_torch.py``; torch is imported only then);
    - :meth:`cvxpy_risk`: a cvxpy formulation, the exact reference.

    A subclass implements the abstract methods :meth:`_solve_unit` (the exact
    solve of the one-dimensional convex dual on losses rescaled to [0, 1],
    from which risk, weights, gradient and dual variables come),
    :meth:`dual_objective`, :meth:`feasible_weights` (for the certificate),
    :meth:`cvxpy_risk` and :meth:`is_trivial`; ``_torch_solve_unit`` gives it
    a torch kernel (optional; on the CPU the numpy solve is used).
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

    def risk_gradient(self, losses, sample_weight=None):
        """Gradient of :meth:`risk` with respect to the losses.

        By Danskin's theorem it is the worst-case distribution
        (:meth:`worst_case_weights`); where the risk has a kink (tied losses
        at a CVaR threshold, say) it is the supergradient of the exact solve.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining :math:`P_n`.

        Returns
        -------
        grad : ndarray of shape (n_samples,)
        """
        return self.risk_and_weights(losses, sample_weight)[1]

    def certificate(self, losses, sample_weight=None):
        """Duality gap of the exact solve: a proof of the returned risk.

        The dual objective at the returned dual variables is an upper bound on
        the robust risk, and the expectation of the losses under a
        distribution of the set (the worst-case weights made feasible by
        :meth:`feasible_weights`) a lower bound. Both are evaluated on the
        losses rescaled to [0, 1] and mapped back.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Per-sample losses.
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative weights defining :math:`P_n`.

        Returns
        -------
        certificate : dict
            ``risk`` (as :meth:`risk`), ``lower`` and ``upper`` (the two
            bounds) and ``gap`` (``max(upper, risk) - min(lower, risk)`` in
            loss units, zero up to rounding for an exact solve).
        """
        self._validate_params()
        losses = check_losses(losses)
        n = losses.shape[0]
        if sample_weight is None:
            p = np.full(n, 1.0 / n)
        else:
            p = check_probability_weights(sample_weight, n)
        risk = self.risk(losses, p)
        support = p > 0
        lo = float(losses[support].min())
        scale = float(losses[support].max()) - lo
        if self.is_trivial() or scale <= 0:
            return {"risk": risk, "lower": risk, "upper": risk, "gap": 0.0}
        z = np.where(support, (losses - lo) / scale, 0.0)
        risk_z, q, dual_z = self._solve_unit(z.copy(), p)
        dual = self._dual_to_loss_units(np.asarray(dual_z), 0.0, 1.0)
        upper = float(self.dual_objective(dual, z, p)[0])
        lower = float(np.dot(self.feasible_weights(q, p), z))
        gap = max(upper, risk_z) - min(lower, risk_z)
        return {
            "risk": risk,
            "lower": lo + scale * lower,
            "upper": lo + scale * upper,
            "gap": scale * max(gap, 0.0),
        }

    @abstractmethod
    def feasible_weights(self, q, p):
        """Weights in the set near ``q``: a feasible point for certificates.

        Parameters
        ----------
        q : ndarray of shape (n_samples,)
            Nonnegative weights (for example the worst case of a solve or of
            a smoothed dual).
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.

        Returns
        -------
        q : ndarray of shape (n_samples,)
            Weights of a distribution in the set.
        """

    def profiled_dual(self, losses, p, smoothing=0.0, start=None):
        """The dual minimized for fixed losses: ``(dual, value, grad_losses)``.

        :meth:`dual_argmin` followed by :meth:`dual_objective`; sets with a
        faster joint computation override it (CVaR). Solvers that profile the
        dual out call it at every iterate.

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
            Per-sample losses, already validated.
        p : ndarray of shape (n_samples,)
            Probability weights of the nominal distribution.
        smoothing : float, default=0.0
            Smoothing temperature (see :meth:`dual_objective`).
        start : ndarray of shape (n_dual,), default=None
            A guess that iterative solves start from.

        Returns
        -------
        dual : ndarray of shape (n_dual,)
        value : float
        grad_losses : ndarray of shape (n_samples,)
        """
        dual = self.dual_argmin(losses, p, smoothing=smoothing, start=start)
        value, grad, _ = self.dual_objective(dual, losses, p, smoothing=smoothing)
        return dual, value, grad

    def profiled_curvature(self, dual, losses, p, smoothing):
        """Curvature of the smoothed risk over the losses, dual profiled out.

        Returned as ``(diag, vec)`` with ``hessian = diag(diag) - outer(vec,
        vec)``, for preconditioners; ``None`` when the set does not provide it
        (see :attr:`has_profiled_curvature`).

        Parameters
        ----------
        dual : ndarray of shape (n_dual,)
        losses : ndarray of shape (n_samples,)
        p : ndarray of shape (n_samples,)
        smoothing : float

        Returns
        -------
        curvature : tuple of two ndarrays of shape (n_samples,), or None
        """
        return None

    @property
    def has_profiled_curvature(self):
        """Whether :meth:`profiled_curvature` is provided by the set."""
        return (
            type(self).profiled_curvature
            is not ReweightingAmbiguitySet.profiled_curvature
        )

    # -- torch backend -------------------------------------------------------
    def torch_risk_and_weights(self, losses, sample_weight=None):
        """:meth:`risk_and_weights` on torch tensors, on their device.

        Parameters
        ----------
        losses : torch.Tensor of shape (n_samples,)
            Per-sample losses on any device (detached here).
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution.

        Returns
        -------
        risk : torch.Tensor
            0-d float64 tensor.
        q : torch.Tensor of shape (n_samples,)
            float64 worst-case weights.
        """
        from skrobust.ambiguity._torch import risk_and_weights

        return risk_and_weights(self, losses, sample_weight)

    def torch_risk(self, losses, sample_weight=None):
        """Differentiable robust risk of a torch tensor of losses.

        The value is :math:`\\sum_i q_i^\\star \\ell_i` with the worst-case
        weights detached, so its gradient with respect to the losses is
        :math:`q^\\star`, the gradient of the robust risk (Danskin).

        Parameters
        ----------
        losses : torch.Tensor of shape (n_samples,)
            Per-sample losses on any device.
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Nonnegative weights of the nominal distribution.

        Returns
        -------
        risk : torch.Tensor
            0-d tensor in the dtype of ``losses``.
        """
        from skrobust.ambiguity._torch import robust_risk

        return robust_risk(self, losses, sample_weight)[0]

    #: whether the first dual variable is a threshold eta in loss units
    _dual_is_threshold = False
    #: names of the dual variables of the expectation form of the dual
    #: (see ``_torch_dual_terms``); empty when the dual has none
    _expectation_dual = ()

    #: Torch kernel of :meth:`_solve_unit`, ``(z, p) -> (risk, q, eta)``
    #: tensors on the device of ``z``, or ``None`` for a set without one: its
    #: numpy solve then runs through the host (``ambiguity/_torch.py``).
    _torch_solve_unit = None
    #: ``(losses, dual) -> tensor``: the per-sample terms whose mean is the
    #: dual objective; defined by the sets with an ``_expectation_dual``
    #: (the only ones the mini-batch dual losses accept).
    _torch_dual_terms = None

    def _torch_dual_mean(self, losses, dual, weight):
        """Mean of ``weight * _torch_dual_terms`` (one autograd node)."""
        terms = self._torch_dual_terms(losses, dual)
        return terms.mean() if weight is None else (weight * terms).mean()

    def _torch_dual_start(self, losses, p, eta):
        """Starting values of the expectation-form duals from the exact ``eta``."""
        return [float(eta)]

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

    def _exact(self, losses, sample_weight, validate=True):
        # Peak memory: the losses (the caller's), at most three arrays of n
        # floats of our own (p, the rescaled losses z, one work array or q;
        # p is a broadcast view when unweighted) and masks of a block.
        # validate=False (the torch backend, on losses it checked): the
        # parameters are taken as validated and the losses as finite.
        if validate:
            self._validate_params()
            losses = check_losses(losses)
        n = losses.shape[0]
        off_support = None
        if sample_weight is None:
            # uniform: a read-only broadcast view, no array of n weights
            # a broadcast view: the solvers take their uniform paths on it
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
