"""Thompson-sampling allocations: batch and top-two, from posterior draws."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from skbandit.experiment._allocation_base import _BaseAllocation, _design_doc


def _posterior_draws(mean, var, n_samples, rng):
    """Posterior draws of the arm means, shape (n_samples, n_arms).

    Computed in place in the array of standard normal draws (the same values
    as ``mean + sqrt(var) * z``, in one array instead of three).
    """
    draws = rng.standard_normal((n_samples, mean.shape[0]))
    draws *= np.sqrt(var)
    draws += mean
    return draws


class _PosteriorSampling(_BaseAllocation):
    """A design that estimates its allocation from ``n_samples`` posterior draws."""

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


class BatchThompsonSampling(_PosteriorSampling):
    __doc__ = _design_doc(
        """Gaussian batch Thompson sampling.

    Each unit of the batch would draw arm means from the Gaussian posterior
    and take the best; in a large batch the share of arm ``a`` is the
    posterior probability that ``a`` is the best arm, which this design
    estimates with ``n_samples`` posterior draws.

    Parameters
    ----------
%(design_params)s
    batch_size : int or array-like of shape (n_batches,), default=100
        Number of units in each batch.
    n_samples : int, default=10_000
        Number of posterior draws used to estimate the probabilities.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws.

    Attributes
    ----------
%(design_attributes)s

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
    )

    def _allocate(self, mean, var, rng):
        best = np.argmax(_posterior_draws(mean, var, self.n_samples, rng), axis=1)
        return np.bincount(best, minlength=mean.shape[0]) / self.n_samples


class TopTwoThompsonSampling(_PosteriorSampling):
    __doc__ = _design_doc(
        """Top-two Thompson sampling, batch version.

    Each unit of the batch goes, with probability ``beta``, to the arm that
    is best under a posterior draw (the leader) and otherwise to the
    challenger: the best arm of new posterior draws, redrawn until it differs
    from the leader. In a large batch the share of each arm is its
    probability of being chosen this way, computed from ``n_samples``
    posterior draws.

    Parameters
    ----------
%(design_params)s
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
%(design_attributes)s

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
    )

    _parameter_constraints: dict = {
        **_PosteriorSampling._parameter_constraints,
        "beta": [Interval(numbers.Real, 0, 1, closed="both")],
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
            n_samples=n_samples,
            random_state=random_state,
        )
        self.beta = beta

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
