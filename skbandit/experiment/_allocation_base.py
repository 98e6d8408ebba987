"""Sampling allocations for batched best-arm identification experiments.

Every design keeps an independent Gaussian posterior on the arm means (the
Gaussian sequential experiment of Che & Namkoong: batch means are normal, so
the posterior stays normal) and returns, before each batch, the fraction of
the batch to send to each arm.

This module holds the Gaussian posterior every design shares
(:class:`_BaseAllocation`), the shared parameter documentation and the
non-adaptive baseline; the adaptive designs live in :mod:`._thompson` and
:mod:`._rho`.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

_DESIGN_PARAMS = """    n_arms : int, default=None
        Number of arms. ``None`` takes it from the length of a per-arm
        ``prior_mean``, ``prior_var`` or ``noise_var``.
    prior_mean : float or array-like of shape (n_arms,), default=0.0
        Mean of the Gaussian prior on each arm's mean reward.
    prior_var : float or array-like of shape (n_arms,), default=1.0
        Variance of the Gaussian prior on each arm's mean reward.
    noise_var : float or array-like of shape (n_arms,), default=1.0
        Variance of one reward around its arm's mean (measurement noise).
    n_batches : int, default=10
        Number of batches (reallocation epochs) of the experiment."""

_DESIGN_ATTRIBUTES = """    n_arms_ : int
        Number of arms.
    batch_sizes_ : ndarray of shape (n_batches,)
        Size of each batch.
    noise_var_ : ndarray of shape (n_arms,)
        Measurement noise variance of each arm.
    posterior_mean_ : ndarray of shape (n_arms,)
        Posterior mean of each arm's mean reward.
    posterior_var_ : ndarray of shape (n_arms,)
        Posterior variance of each arm's mean reward.
    counts_ : ndarray of shape (n_arms,)
        Number of rewards observed from each arm.
    n_batches_seen_ : int
        Number of batches passed to :meth:`update`.
    allocation_ : ndarray of shape (n_arms,)
        The last allocation returned by :meth:`next_allocation`."""


def _design_doc(text):
    """A design's docstring with the shared parameter and attribute entries."""
    return text.replace("%(design_params)s", _DESIGN_PARAMS).replace(
        "%(design_attributes)s", _DESIGN_ATTRIBUTES
    )


def _as_arm_vector(value, n_arms, name, *, positive):
    """Broadcast a scalar or per-arm array to a float vector of length n_arms."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n_arms, float(arr))
    if arr.ndim != 1 or arr.shape[0] != n_arms:
        raise ValueError(
            f"{name} must be a scalar or an array of shape (n_arms,) = "
            f"({n_arms},); got shape {np.shape(value)}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be positive; got min {arr.min()!r}.")
    return arr.copy()


class _BaseAllocation(BaseEstimator):
    """Gaussian posterior over arm means shared by every allocation design.

    Subclasses implement ``_allocate(mean, var, rng)`` returning a probability
    vector over the arms.
    """

    _parameter_constraints: dict = {
        "n_arms": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "prior_mean": ["array-like", numbers.Real],
        "prior_var": ["array-like", Interval(numbers.Real, 0, None, closed="neither")],
        "noise_var": ["array-like", Interval(numbers.Real, 0, None, closed="neither")],
        "n_batches": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [
            "array-like",
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_arms=None,
        *,
        prior_mean=0.0,
        prior_var=1.0,
        noise_var=1.0,
        n_batches=10,
        batch_size=100,
        random_state=None,
    ):
        self.n_arms = n_arms
        self.prior_mean = prior_mean
        self.prior_var = prior_var
        self.noise_var = noise_var
        self.n_batches = n_batches
        self.batch_size = batch_size
        self.random_state = random_state

    # -- state -----------------------------------------------------------------
    def _infer_n_arms(self):
        if self.n_arms is not None:
            return int(self.n_arms)
        for value in (self.prior_mean, self.prior_var, self.noise_var):
            if np.ndim(value) == 1:
                return len(value)
        raise ValueError(
            "n_arms is None and prior_mean, prior_var and noise_var are all "
            "scalars: set n_arms or give a per-arm prior."
        )

    def _batch_sizes(self):
        sizes = np.asarray(self.batch_size)
        if sizes.ndim == 0:
            return np.full(self.n_batches, int(sizes), dtype=np.int64)
        if sizes.shape != (self.n_batches,):
            raise ValueError(
                "batch_size must be an int or an array of shape (n_batches,) = "
                f"({self.n_batches},); got shape {sizes.shape}."
            )
        if not np.issubdtype(sizes.dtype, np.number) or np.any(sizes < 1):
            raise ValueError("batch_size must hold positive integers.")
        if np.any(sizes != np.round(sizes)):
            raise ValueError("batch_size must hold integers.")
        return sizes.astype(np.int64)

    def _start(self):
        """Validate the parameters and set the posterior to the prior."""
        self._validate_params()
        n_arms = self._infer_n_arms()
        if n_arms < 2:
            raise ValueError(f"An experiment needs at least 2 arms; got {n_arms}.")
        self.n_arms_ = n_arms
        self.batch_sizes_ = self._batch_sizes()
        self.noise_var_ = _as_arm_vector(
            self.noise_var, n_arms, "noise_var", positive=True
        )
        self.posterior_mean_ = _as_arm_vector(
            self.prior_mean, n_arms, "prior_mean", positive=False
        )
        self.posterior_var_ = _as_arm_vector(
            self.prior_var, n_arms, "prior_var", positive=True
        )
        self.counts_ = np.zeros(n_arms, dtype=np.int64)
        self.n_batches_seen_ = 0
        self._rng = check_random_state(self.random_state)

    def _ensure_started(self):
        if not hasattr(self, "posterior_mean_"):
            self._start()

    def reset(self):
        """Forget every observed batch and return to the prior.

        Returns
        -------
        self : object
            The design, with its posterior equal to the prior.
        """
        self._start()
        return self

    def update(self, arms, rewards):
        """Update the posterior with the outcomes of one batch.

        The arm means have independent Gaussian priors and the rewards of arm
        ``a`` have variance ``noise_var[a]``, so the posterior after ``n_a``
        rewards with sum ``S_a`` is Gaussian with precision
        ``1 / v_a + n_a / noise_var[a]`` and mean
        ``(m_a / v_a + S_a / noise_var[a]) / precision`` (the normal
        approximation of the batch mean makes this exact in the limit).

        Parameters
        ----------
        arms : array-like of shape (n_samples,)
            Arm index, in ``0, ..., n_arms - 1``, of each unit of the batch.
        rewards : array-like of shape (n_samples,)
            Observed reward of each unit.

        Returns
        -------
        self : object
            The design with its posterior updated.
        """
        self._ensure_started()
        arms = np.asarray(arms)
        rewards = np.asarray(rewards, dtype=np.float64)
        if arms.ndim != 1 or rewards.ndim != 1:
            raise ValueError(
                "arms and rewards must be 1-dimensional; got shapes "
                f"{arms.shape} and {rewards.shape}."
            )
        if arms.shape[0] != rewards.shape[0]:
            raise ValueError(
                f"arms and rewards have different lengths: {arms.shape[0]} and "
                f"{rewards.shape[0]}."
            )
        if arms.size and not np.issubdtype(arms.dtype, np.integer):
            if not np.issubdtype(arms.dtype, np.number) or np.any(
                arms != np.round(arms)
            ):
                raise ValueError("arms must hold integer arm indices.")
            arms = arms.astype(np.int64)
        if arms.size and (arms.min() < 0 or arms.max() >= self.n_arms_):
            raise ValueError(
                f"arms must lie in 0, ..., {self.n_arms_ - 1} (n_arms="
                f"{self.n_arms_}); got values in [{arms.min()}, {arms.max()}]."
            )
        if not np.all(np.isfinite(rewards)):
            raise ValueError("rewards contains NaN or infinite values.")
        counts = np.bincount(arms, minlength=self.n_arms_)
        sums = np.bincount(arms, weights=rewards, minlength=self.n_arms_)
        precision = 1.0 / self.posterior_var_ + counts / self.noise_var_
        self.posterior_mean_ = (
            self.posterior_mean_ / self.posterior_var_ + sums / self.noise_var_
        ) / precision
        self.posterior_var_ = 1.0 / precision
        self.counts_ = self.counts_ + counts
        self.n_batches_seen_ += 1
        return self

    def next_allocation(self):
        """Return the sampling allocation of the next batch.

        Returns
        -------
        allocation : ndarray of shape (n_arms,)
            Nonnegative fractions summing to one: the share of the next batch
            that goes to each arm.
        """
        self._ensure_started()
        allocation = self._allocate(
            self.posterior_mean_, self.posterior_var_, self._rng
        )
        allocation = np.clip(allocation, 0.0, None)
        self.allocation_ = allocation / allocation.sum()
        return self.allocation_.copy()

    def recommend(self):
        """Return the arm with the largest posterior mean.

        Returns
        -------
        arm : int
            The arm the experiment selects (ties go to the smallest index).
        """
        self._ensure_started()
        return int(np.argmax(self.posterior_mean_))

    def _remaining_budget(self):
        """Number of units in the batches not yet observed (this one included)."""
        remaining = self.batch_sizes_[self.n_batches_seen_ :]
        if remaining.size == 0:
            raise ValueError(
                f"All n_batches={self.n_batches} batches have been observed; "
                "increase n_batches to plan further batches."
            )
        return float(remaining.sum())

    def _allocate(self, mean, var, rng):  # pragma: no cover - abstract
        raise AttributeError("_allocate must be defined by the subclass")


class UniformAllocation(_BaseAllocation):
    __doc__ = _design_doc(
        """Uniform allocation: every batch is split equally between the arms.

    The non-adaptive baseline of a batched experiment. It keeps the same
    Gaussian posterior as the adaptive designs so that the final
    recommendation (the arm with the largest posterior mean) is comparable.

    Parameters
    ----------
%(design_params)s
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch.
    random_state : int, RandomState instance or None, default=None
        Unused by this design; kept so that every design has the same
        parameters.

    Attributes
    ----------
%(design_attributes)s

    See Also
    --------
    ResidualHorizonOptimization : Adaptive allocation by planning.
    BatchThompsonSampling : Allocation proportional to the probability of
        being the best arm.

    Notes
    -----
    The allocation is :math:`p_a = 1 / K` for each of the :math:`K` arms.

    References
    ----------
    .. [1] E. Che and H. Namkoong, "Adaptive Experimentation at Scale: A
       Computational Framework for Flexible Batches", 2023.
       arXiv:2303.11582.

    Examples
    --------
    >>> from skbandit.experiment import UniformAllocation
    >>> design = UniformAllocation(n_arms=4)
    >>> design.next_allocation()
    array([0.25, 0.25, 0.25, 0.25])
    """
    )

    def _allocate(self, mean, var, rng):
        return np.full(mean.shape[0], 1.0 / mean.shape[0])
