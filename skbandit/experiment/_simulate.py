"""Monte Carlo simulation of batched best-arm identification experiments."""

import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, validate_params


def _one_experiment(design, means, noise_std, seed):
    """Run one experiment: returns (allocations, selected arm, true means)."""
    rng = np.random.default_rng(seed)
    design = clone(design).set_params(random_state=int(seed % (2**31 - 1)))
    design.reset()
    if means is None:
        means = design.posterior_mean_ + np.sqrt(
            design.posterior_var_
        ) * rng.standard_normal(design.n_arms_)
    if noise_std is None:
        noise_std = np.sqrt(design.noise_var_)
    n_arms = design.n_arms_
    allocations = np.empty((design.n_batches, n_arms))
    for t, size in enumerate(design.batch_sizes_):
        allocation = design.next_allocation()
        allocations[t] = allocation
        counts = rng.multinomial(size, allocation)
        arms = np.repeat(np.arange(n_arms), counts)
        # means[arms] + noise_std[arms] * z, computed in place in z
        rewards = rng.standard_normal(arms.shape[0])
        rewards *= noise_std[arms]
        rewards += means[arms]
        design.update(arms, rewards)
    return allocations, design.recommend(), means


@validate_params(
    {
        "design": [HasMethods(["next_allocation", "update", "recommend", "reset"])],
        "means": ["array-like", None],
        "noise_std": [
            "array-like",
            Interval(numbers.Real, 0, None, closed="neither"),
            None,
        ],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=False,
)
def simulate_best_arm(
    design,
    means=None,
    *,
    noise_std=None,
    n_repeats=100,
    random_state=None,
    n_jobs=None,
    verbose=0,
):
    """Simulate a batched best-arm identification experiment many times.

    Each repeat draws the true arm means from the design's prior (or uses
    ``means``), then, for each of the design's ``n_batches`` batches, asks the
    design for an allocation, assigns the batch's units to arms by a
    multinomial draw with those probabilities, draws Gaussian rewards and
    passes them to :meth:`update`. At the end the design recommends the arm
    with the largest posterior mean.

    Read more in the :ref:`User Guide <adaptive_experiments>`.

    Parameters
    ----------
    design : allocation design
        An unfitted design such as
        :class:`~skbandit.experiment.ResidualHorizonOptimization`; it is
        cloned for each repeat, with a repeat-specific ``random_state``.
    means : array-like of shape (n_arms,), default=None
        True arm means, the same in every repeat (frequentist simple regret).
        ``None`` draws them from the design's prior in each repeat (Bayes
        simple regret).
    noise_std : float or array-like of shape (n_arms,), default=None
        Standard deviation of the rewards. ``None`` uses the design's
        ``noise_var``.
    n_repeats : int, default=100
        Number of simulated experiments.
    random_state : int, RandomState instance or None, default=None
        Seeds the true means, the assignments and the rewards of every
        repeat.
    n_jobs : int, default=None
        Number of repeats run in parallel with joblib (``None`` means 1,
        ``-1`` all processors).
    verbose : int, default=0
        Verbosity of joblib's progress messages.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With keys

        - ``simple_regret``: ndarray of shape (n_repeats,), the best true
          mean minus the true mean of the recommended arm.
        - ``correct_selection``: boolean ndarray of shape (n_repeats,),
          whether the recommended arm is the best.
        - ``selected_arm``, ``best_arm``: int ndarrays of shape (n_repeats,).
        - ``allocations``: ndarray of shape (n_repeats, n_batches, n_arms).
        - ``means``: ndarray of shape (n_repeats, n_arms), the true means.

    See Also
    --------
    ResidualHorizonOptimization : Adaptive allocation by planning.
    UniformAllocation : The non-adaptive baseline.

    Notes
    -----
    The simple regret of a repeat is :math:`\\max_a \\mu_a - \\mu_{\\hat a}`
    with :math:`\\hat a = \\arg\\max_a m_a` the arm with the largest posterior
    mean; its average over repeats with means drawn from the prior estimates
    the Bayes simple regret, and the share of repeats with
    :math:`\\hat a = \\arg\\max_a \\mu_a` the probability of correct selection.

    References
    ----------
    .. [1] E. Che and H. Namkoong, "Adaptive Experimentation at Scale: A
       Computational Framework for Flexible Batches", 2023.
       arXiv:2303.11582.

    Examples
    --------
    >>> from skbandit.experiment import UniformAllocation, simulate_best_arm
    >>> design = UniformAllocation(n_arms=3, n_batches=2, batch_size=30)
    >>> result = simulate_best_arm(
    ...     design, means=[0.0, 0.0, 2.0], n_repeats=20, random_state=0
    ... )
    >>> float(result.correct_selection.mean())
    1.0
    """
    probe = clone(design)
    probe.reset()
    n_arms = probe.n_arms_
    if means is not None:
        means = np.asarray(means, dtype=np.float64)
        if means.shape != (n_arms,):
            raise ValueError(
                f"means must have shape (n_arms,) = ({n_arms},); got {means.shape}."
            )
        if not np.all(np.isfinite(means)):
            raise ValueError("means contains NaN or infinite values.")
    if noise_std is not None:
        noise_std = np.asarray(noise_std, dtype=np.float64)
        if noise_std.ndim == 0:
            noise_std = np.full(n_arms, float(noise_std))
        if noise_std.shape != (n_arms,) or np.any(noise_std <= 0):
            raise ValueError(
                "noise_std must be a positive scalar or an array of shape "
                f"(n_arms,) = ({n_arms},)."
            )
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_repeats)
    outputs = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_one_experiment)(design, means, noise_std, int(seed)) for seed in seeds
    )
    allocations = np.stack([out[0] for out in outputs])
    selected = np.array([out[1] for out in outputs], dtype=np.int64)
    true_means = np.stack([out[2] for out in outputs])
    best = np.argmax(true_means, axis=1)
    rows = np.arange(n_repeats)
    regret = true_means[rows, best] - true_means[rows, selected]
    return Bunch(
        simple_regret=regret,
        correct_selection=selected == best,
        selected_arm=selected,
        best_arm=best,
        allocations=allocations,
        means=true_means,
    )
