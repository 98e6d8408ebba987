"""Sampling allocations for batched best-arm identification experiments.

Every design keeps an independent Gaussian posterior on the arm means (the
Gaussian sequential experiment of Che & Namkoong: batch means are normal, so
the posterior stays normal) and returns, before each batch, the fraction of
the batch to send to each arm.
"""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval


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
    """Uniform allocation: every batch is split equally between the arms.

    The non-adaptive baseline of a batched experiment. It keeps the same
    Gaussian posterior as the adaptive designs so that the final
    recommendation (the arm with the largest posterior mean) is comparable.

    Parameters
    ----------
    n_arms : int, default=None
        Number of arms. ``None`` takes it from the length of a per-arm
        ``prior_mean``, ``prior_var`` or ``noise_var``.
    prior_mean : float or array-like of shape (n_arms,), default=0.0
        Mean of the Gaussian prior on each arm's mean reward.
    prior_var : float or array-like of shape (n_arms,), default=1.0
        Variance of the Gaussian prior on each arm's mean reward.
    noise_var : float or array-like of shape (n_arms,), default=1.0
        Variance of one reward around its arm's mean (measurement noise).
    n_batches : int, default=10
        Number of batches (reallocation epochs) of the experiment.
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch.
    random_state : int, RandomState instance or None, default=None
        Unused by this design; kept so that every design has the same
        parameters.

    Attributes
    ----------
    n_arms_ : int
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
        The last allocation returned by :meth:`next_allocation`.

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

    def _allocate(self, mean, var, rng):
        return np.full(mean.shape[0], 1.0 / mean.shape[0])


def _posterior_draws(mean, var, n_samples, rng):
    """Posterior draws of the arm means, shape (n_samples, n_arms).

    Computed in place in the array of standard normal draws (the same values
    as ``mean + sqrt(var) * z``, in one array instead of three).
    """
    draws = rng.standard_normal((n_samples, mean.shape[0]))
    draws *= np.sqrt(var)
    draws += mean
    return draws


class BatchThompsonSampling(_BaseAllocation):
    """Gaussian batch Thompson sampling.

    Each unit of the batch would draw arm means from the Gaussian posterior
    and take the best; in a large batch the share of arm ``a`` is the
    posterior probability that ``a`` is the best arm, which this design
    estimates with ``n_samples`` posterior draws.

    Parameters
    ----------
    n_arms : int, default=None
        Number of arms. ``None`` takes it from the length of a per-arm
        ``prior_mean``, ``prior_var`` or ``noise_var``.
    prior_mean : float or array-like of shape (n_arms,), default=0.0
        Mean of the Gaussian prior on each arm's mean reward.
    prior_var : float or array-like of shape (n_arms,), default=1.0
        Variance of the Gaussian prior on each arm's mean reward.
    noise_var : float or array-like of shape (n_arms,), default=1.0
        Variance of one reward around its arm's mean (measurement noise).
    n_batches : int, default=10
        Number of batches (reallocation epochs) of the experiment.
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch.
    n_samples : int, default=10_000
        Number of posterior draws used to estimate the probabilities.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws.

    Attributes
    ----------
    n_arms_ : int
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
        The last allocation returned by :meth:`next_allocation`.

    See Also
    --------
    TopTwoThompsonSampling : Thompson sampling that also samples challengers.
    ResidualHorizonOptimization : Adaptive allocation by planning.

    Notes
    -----
    The allocation is :math:`p_a = P(\\mu_a = \\max_b \\mu_b \\mid
    \\text{data})` under the independent Gaussian posterior
    :math:`\\mu_a \\sim N(m_a, v_a)`.

    References
    ----------
    .. [1] W. R. Thompson, "On the likelihood that one unknown probability
       exceeds another in view of the evidence of two samples", Biometrika,
       1933.
    .. [2] E. Kalkanli and A. Ozgur, "Batched Thompson Sampling", NeurIPS
       2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.experiment import BatchThompsonSampling
    >>> design = BatchThompsonSampling(prior_mean=[0.0, 1.0], random_state=0)
    >>> p = design.next_allocation()
    >>> bool(p[1] > p[0]), bool(np.isclose(p.sum(), 1.0))
    (True, True)
    """

    _parameter_constraints: dict = {
        **_BaseAllocation._parameter_constraints,
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
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
        n_samples=10_000,
        random_state=None,
    ):
        super().__init__(
            n_arms,
            prior_mean=prior_mean,
            prior_var=prior_var,
            noise_var=noise_var,
            n_batches=n_batches,
            batch_size=batch_size,
            random_state=random_state,
        )
        self.n_samples = n_samples

    def _allocate(self, mean, var, rng):
        best = np.argmax(_posterior_draws(mean, var, self.n_samples, rng), axis=1)
        return np.bincount(best, minlength=mean.shape[0]) / self.n_samples


class TopTwoThompsonSampling(_BaseAllocation):
    """Top-two Thompson sampling, batch version.

    Each unit of the batch goes, with probability ``beta``, to the arm that
    is best under a posterior draw (the leader) and otherwise to the
    challenger: the best arm of new posterior draws, redrawn until it differs
    from the leader. In a large batch the share of each arm is its
    probability of being chosen this way, computed from ``n_samples``
    posterior draws.

    Parameters
    ----------
    n_arms : int, default=None
        Number of arms. ``None`` takes it from the length of a per-arm
        ``prior_mean``, ``prior_var`` or ``noise_var``.
    prior_mean : float or array-like of shape (n_arms,), default=0.0
        Mean of the Gaussian prior on each arm's mean reward.
    prior_var : float or array-like of shape (n_arms,), default=1.0
        Variance of the Gaussian prior on each arm's mean reward.
    noise_var : float or array-like of shape (n_arms,), default=1.0
        Variance of one reward around its arm's mean (measurement noise).
    n_batches : int, default=10
        Number of batches (reallocation epochs) of the experiment.
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch.
    beta : float, default=0.5
        Probability of sampling the leader rather than the challenger.
    n_samples : int, default=10_000
        Number of posterior draws used to estimate the probabilities.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws.

    Attributes
    ----------
    n_arms_ : int
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
        The last allocation returned by :meth:`next_allocation`.

    See Also
    --------
    BatchThompsonSampling : Allocation by the probability of being best.
    ResidualHorizonOptimization : Adaptive allocation by planning.

    Notes
    -----
    With :math:`q_a` the posterior probability that arm :math:`a` is best,
    the challenger of leader :math:`b` is :math:`a \\ne b` with probability
    :math:`q_a / (1 - q_b)`, so

    .. math::

        p_a = \\beta q_a + (1 - \\beta) q_a \\sum_{b \\ne a}
        \\frac{q_b}{1 - q_b}.

    When a leader has estimated probability one, its challenger is the
    runner-up of the posterior draws.

    References
    ----------
    .. [1] D. Russo, "Simple Bayesian Algorithms for Best-Arm
       Identification", Operations Research, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.experiment import TopTwoThompsonSampling
    >>> design = TopTwoThompsonSampling(prior_mean=[0.0, 3.0], random_state=0)
    >>> np.round(design.next_allocation(), 2)
    array([0.5, 0.5])
    """

    _parameter_constraints: dict = {
        **_BaseAllocation._parameter_constraints,
        "beta": [Interval(numbers.Real, 0, 1, closed="both")],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
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
        beta=0.5,
        n_samples=10_000,
        random_state=None,
    ):
        super().__init__(
            n_arms,
            prior_mean=prior_mean,
            prior_var=prior_var,
            noise_var=noise_var,
            n_batches=n_batches,
            batch_size=batch_size,
            random_state=random_state,
        )
        self.beta = beta
        self.n_samples = n_samples

    def _allocate(self, mean, var, rng):
        n_arms = mean.shape[0]
        draws = _posterior_draws(mean, var, self.n_samples, rng)
        best = np.argmax(draws, axis=1)
        q = np.bincount(best, minlength=n_arms) / self.n_samples
        # challenger of leader b: q_a / (1 - q_b) for a != b
        open_leaders = q < 1.0
        ratio = np.where(open_leaders, q / np.where(open_leaders, 1.0 - q, 1.0), 0.0)
        challenger = q * (ratio.sum() - ratio)
        # a leader with estimated probability one: its runner-up challenges it
        # (at most one: the q sum to one) ``draws`` is not used afterwards, so
        # the leader's column is masked in place rather than in a copy
        for b in np.flatnonzero(~open_leaders):
            draws[:, b] = -np.inf
            runner_up = np.bincount(np.argmax(draws, axis=1), minlength=n_arms)
            challenger += q[b] * runner_up / runner_up.sum()
        return self.beta * q + (1.0 - self.beta) * challenger


def _rho_objective(logits, mean, var, noise_var, budget, z):
    """Expected best posterior mean after spending ``budget`` units at softmax(logits).

    All arguments are torch tensors; ``z`` holds standard normal draws of shape
    (n_samples, n_arms). Returns the Monte Carlo average of
    ``max_a (m_a + sigma_a(p) z_a)``, where ``sigma_a(p)^2`` is the variance
    of the change of arm a's posterior mean after ``budget * p_a`` rewards.
    """
    import torch

    allocation = torch.softmax(logits, dim=-1)
    n = budget * allocation
    reduction = var * var * n / (noise_var + var * n)
    scale = torch.sqrt(torch.clamp(reduction, min=1e-300))
    return torch.max(mean + scale * z, dim=-1).values.mean()


class ResidualHorizonOptimization(_BaseAllocation):
    """Residual Horizon Optimization (RHO) for batched best-arm identification.

    Before each batch, RHO solves a planning problem over the remaining
    horizon: it picks the allocation ``p`` that maximizes the expected
    largest posterior mean at the end of the experiment, assuming that every
    remaining unit (this batch and all later ones) is allocated by ``p``.
    The objective is estimated with reparametrized Gaussian draws and
    maximized by stochastic gradient ascent (Adam) on a softmax
    parametrization of ``p`` with torch autodiff. Only the first batch is
    sent with ``p``; the plan is redone once its results are in.

    Read more in the :ref:`User Guide <adaptive_experiments>`.

    Parameters
    ----------
    n_arms : int, default=None
        Number of arms. ``None`` takes it from the length of a per-arm
        ``prior_mean``, ``prior_var`` or ``noise_var``.
    prior_mean : float or array-like of shape (n_arms,), default=0.0
        Mean of the Gaussian prior on each arm's mean reward.
    prior_var : float or array-like of shape (n_arms,), default=1.0
        Variance of the Gaussian prior on each arm's mean reward.
    noise_var : float or array-like of shape (n_arms,), default=1.0
        Variance of one reward around its arm's mean (measurement noise).
    n_batches : int, default=10
        Number of batches (reallocation epochs) of the experiment.
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch; the planning budget at batch ``t`` is
        the sum of the sizes of batches ``t, ..., n_batches - 1``.
    n_samples : int, default=128
        Number of Gaussian draws per stochastic gradient step.
    max_iter : int, default=150
        Number of gradient steps per planning problem.
    learning_rate : float, default=0.1
        Step size of Adam on the allocation logits.
    tol : float, default=1e-2
        Convergence check: if the planning objective at the average iterate
        of the last quarter of the steps exceeds the one at the average
        iterate of the third quarter by more than ``tol`` times the largest
        posterior standard deviation, the ascent was still improving and a
        :class:`~sklearn.exceptions.ConvergenceWarning` is raised.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gaussian draws (one torch seed per planning problem).
    verbose : int, default=0
        Print the planning objective every ``max_iter // 10`` steps when
        positive.

    Attributes
    ----------
    n_arms_ : int
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
        The last allocation returned by :meth:`next_allocation`.
    objective_ : float
        Monte Carlo estimate of the planning objective at ``allocation_``.

    See Also
    --------
    UniformAllocation : The non-adaptive baseline.
    BatchThompsonSampling : Allocation by the probability of being best.
    TopTwoThompsonSampling : Thompson sampling with challengers.
    simulate_best_arm : Compare designs on simulated experiments.

    Notes
    -----
    With posterior :math:`\\mu_a \\sim N(m_a, v_a)`, noise variances
    :math:`s_a^2` and :math:`N` remaining units, spending :math:`N p_a` of them
    on arm :math:`a` moves its posterior mean to
    :math:`m_a + \\sigma_a(p) Z_a` with :math:`Z_a` standard normal and

    .. math::

        \\sigma_a^2(p) = v_a - \\left(\\frac{1}{v_a} +
        \\frac{N p_a}{s_a^2}\\right)^{-1} = \\frac{v_a^2 N p_a}{s_a^2 + v_a N p_a}.

    RHO solves

    .. math::

        \\max_{p \\in \\Delta_K} \\; E\\left[\\max_a \\, m_a + \\sigma_a(p) Z_a
        \\right],

    which is the Bayes simple regret of recommending the arm with the largest
    posterior mean, up to a constant. The allocation returned is the average
    of the iterates of the second half of the optimization.

    References
    ----------
    .. [1] E. Che and H. Namkoong, "Adaptive Experimentation at Scale: A
       Computational Framework for Flexible Batches", 2023.
       arXiv:2303.11582.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.experiment import ResidualHorizonOptimization
    >>> rho = ResidualHorizonOptimization(
    ...     prior_mean=[0.0, 0.0, -5.0], n_batches=2, random_state=0
    ... )
    >>> p = rho.next_allocation()
    >>> bool(p[2] < 0.01), bool(np.isclose(p.sum(), 1.0))
    (True, True)
    >>> arms = np.repeat(np.arange(3), np.round(100 * p).astype(int))
    >>> rewards = np.where(arms == 0, 1.0, 0.0)
    >>> rho.update(arms, rewards).recommend()
    0
    """

    _parameter_constraints: dict = {
        **_BaseAllocation._parameter_constraints,
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
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
        n_samples=128,
        max_iter=150,
        learning_rate=0.1,
        tol=1e-2,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_arms,
            prior_mean=prior_mean,
            prior_var=prior_var,
            noise_var=noise_var,
            n_batches=n_batches,
            batch_size=batch_size,
            random_state=random_state,
        )
        self.n_samples = n_samples
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.tol = tol
        self.verbose = verbose

    def _allocate(self, mean, var, rng):
        import torch

        budget = self._remaining_budget()
        seed = int(rng.randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        dtype = torch.float64
        mean_t = torch.as_tensor(mean, dtype=dtype)
        var_t = torch.as_tensor(var, dtype=dtype)
        noise_t = torch.as_tensor(self.noise_var_, dtype=dtype)
        n_arms = mean.shape[0]
        logits = torch.zeros(n_arms, dtype=dtype, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=self.learning_rate)
        history = np.empty((self.max_iter, n_arms))
        report_every = max(self.max_iter // 10, 1)
        for it in range(self.max_iter):
            z = torch.randn(self.n_samples, n_arms, generator=generator, dtype=dtype)
            optimizer.zero_grad()
            value = _rho_objective(logits, mean_t, var_t, noise_t, budget, z)
            (-value).backward()
            optimizer.step()
            with torch.no_grad():
                history[it] = torch.softmax(logits, dim=-1).numpy()
            if self.verbose and (it % report_every == 0 or it == self.max_iter - 1):
                print(
                    f"[RHO] batch {self.n_batches_seen_} iter {it:4d} "
                    f"objective {value.item():.5f}"
                )
        half = self.max_iter // 2
        allocation = history[half:].mean(axis=0)
        quarter = self.max_iter // 4
        with torch.no_grad():
            # common random numbers to compare the averaged iterates
            z = torch.randn(
                4 * self.n_samples, n_arms, generator=generator, dtype=dtype
            )

            def objective(p):
                logit = torch.log(torch.as_tensor(p, dtype=dtype))
                return float(_rho_objective(logit, mean_t, var_t, noise_t, budget, z))

            self.objective_ = objective(allocation)
            if quarter >= 1:
                third = history[half : half + quarter].mean(axis=0)
                fourth = history[half + quarter :].mean(axis=0)
                gain = objective(fourth) - objective(third)
                scale = float(np.sqrt(var.max()))
                if gain > self.tol * scale:
                    warnings.warn(
                        "RHO's stochastic gradient ascent was still improving "
                        f"after max_iter={self.max_iter} steps (the planning "
                        f"objective rose by {gain:.3g} over the last quarter, "
                        f"more than tol={self.tol} times the largest posterior "
                        "standard deviation); increase max_iter or learning_rate.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
        return allocation
