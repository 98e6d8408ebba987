"""Multi-armed (context-free) policies: Thompson sampling and baselines."""

import numbers

import numpy as np
from scipy import stats
from sklearn.utils._param_validation import Interval

from skbandit._base import BasePolicy
from skbandit._prob_max import _prob_max_gaussian, _prob_max_independent, _tile


class BernoulliThompsonSampling(BasePolicy):
    """Thompson sampling with Beta priors for rewards in [0, 1].

    Each arm's mean reward has a Beta posterior; every decision draws one
    mean per arm, independently across arms and contexts, and plays the arm
    with the largest draw.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    prior_alpha : float, default=1.0
        First Beta shape parameter of every arm's prior (prior successes).
    prior_beta : float, default=1.0
        Second Beta shape parameter (prior failures). The default is the
        uniform prior.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws of ``predict``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    alpha_ : ndarray of shape (n_arms,)
        Posterior first shape parameters: ``prior_alpha`` plus the summed
        rewards of each arm.
    beta_ : ndarray of shape (n_arms,)
        Posterior second shape parameters: ``prior_beta`` plus the summed
        ``1 - reward`` of each arm.
    n_features_in_ : int
        Number of columns of X seen in ``fit`` (ignored; may be 0).
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    GaussianThompsonSampling : Thompson sampling for real-valued rewards.
    LinearThompsonSampling : Contextual Thompson sampling.

    Notes
    -----
    With :math:`S_k` the summed rewards and :math:`N_k` the summed weights of
    arm :math:`k`, the posterior of its mean is
    :math:`\\mathrm{Beta}(\\alpha_0 + S_k, \\beta_0 + N_k - S_k)`. Fractional
    rewards in [0, 1] are added as fractional successes.
    ``predict_proba`` is exact up to quadrature error (below 1e-9): the
    probability that arm :math:`k` has the largest draw is
    :math:`\\int f_k(t) \\prod_{j \\ne k} F_j(t)\\,dt` with :math:`f, F` the
    Beta densities and distribution functions.

    References
    ----------
    .. [1] W. R. Thompson, "On the likelihood that one unknown probability
       exceeds another in view of the evidence of two samples", Biometrika,
       1933.
    .. [2] S. Agrawal and N. Goyal, "Analysis of Thompson Sampling for the
       multi-armed bandit problem", COLT, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import BernoulliThompsonSampling, make_feedback
    >>> X = np.empty((4, 0))  # no context
    >>> y = make_feedback(["a", "a", "b", "b"], [1, 1, 0, 1])
    >>> policy = BernoulliThompsonSampling(random_state=0).fit(X, y)
    >>> policy.alpha_, policy.beta_
    (array([3., 2.]), array([1., 2.]))
    >>> policy.predict_proba(np.empty((1, 0))).round(3)
    array([[0.8, 0.2]])
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "prior_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "prior_beta": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, prior_alpha=1.0, prior_beta=1.0, arms=None, random_state=None):
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.arms = arms
        self.random_state = random_state

    def _init_state(self, n_features):
        n_arms = self.classes_.shape[0]
        self.alpha_ = np.full(n_arms, float(self.prior_alpha))
        self.beta_ = np.full(n_arms, float(self.prior_beta))

    def _update(self, X, arm, reward, weight):
        n_arms = self.classes_.shape[0]
        self.alpha_ = self.alpha_ + np.bincount(
            arm, weights=weight * reward, minlength=n_arms
        )
        self.beta_ = self.beta_ + np.bincount(
            arm, weights=weight * (1.0 - reward), minlength=n_arms
        )

    def _choose(self, X, rng):
        draws = rng.beta(self.alpha_, self.beta_, size=(X.shape[0], self.alpha_.size))
        return np.argmax(draws, axis=1)

    def _proba(self, X):
        dist = stats.beta(self.alpha_, self.beta_)
        return _tile(_prob_max_independent(dist, dist.mean()), X.shape[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.policy_tags.binary_rewards = True
        return tags


class GaussianThompsonSampling(BasePolicy):
    """Thompson sampling with Gaussian priors for real-valued rewards.

    Rewards of arm :math:`k` are modeled as :math:`N(\\mu_k, \\sigma^2)` with
    known noise variance and a Gaussian prior on :math:`\\mu_k`; each decision
    draws one mean per arm, independently, and plays the largest.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    prior_mean : float, default=0.0
        Prior mean of every arm's mean reward.
    prior_variance : float, default=1.0
        Prior variance of every arm's mean reward.
    noise_variance : float, default=1.0
        Variance :math:`\\sigma^2` of a reward around its arm's mean; larger
        values explore longer.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws of ``predict``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    means_ : ndarray of shape (n_arms,)
        Posterior means of the arms' mean rewards.
    variances_ : ndarray of shape (n_arms,)
        Posterior variances of the arms' mean rewards.
    n_features_in_ : int
        Number of columns of X seen in ``fit`` (ignored; may be 0).
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    BernoulliThompsonSampling : Beta-Bernoulli Thompson sampling.
    LinearThompsonSampling : Contextual Thompson sampling.

    Notes
    -----
    With :math:`N_k` the summed weights and :math:`S_k` the weighted reward
    sum of arm :math:`k`, the posterior precision is
    :math:`1/\\tau_0^2 + N_k/\\sigma^2` and the posterior mean is
    :math:`(\\mu_0/\\tau_0^2 + S_k/\\sigma^2)` divided by that precision.
    ``predict_proba`` is exact up to quadrature error (below 1e-9), as the
    one-dimensional integral :math:`\\int \\phi_k(t) \\prod_{j\\ne k}
    \\Phi_j(t)\\,dt`.

    References
    ----------
    .. [1] S. Agrawal and N. Goyal, "Further optimal regret bounds for
       Thompson sampling", AISTATS, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import GaussianThompsonSampling, make_feedback
    >>> y = make_feedback([0, 0, 1], [1.0, 3.0, -1.0])
    >>> policy = GaussianThompsonSampling(random_state=0).fit(np.empty((3, 0)), y)
    >>> policy.means_.round(3), policy.variances_.round(3)
    (array([ 1.333, -0.5  ]), array([0.333, 0.5  ]))
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "prior_mean": [numbers.Real],
        "prior_variance": [Interval(numbers.Real, 0, None, closed="neither")],
        "noise_variance": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        prior_mean=0.0,
        prior_variance=1.0,
        noise_variance=1.0,
        arms=None,
        random_state=None,
    ):
        self.prior_mean = prior_mean
        self.prior_variance = prior_variance
        self.noise_variance = noise_variance
        self.arms = arms
        self.random_state = random_state

    def _init_state(self, n_features):
        n_arms = self.classes_.shape[0]
        self._weight_sum = np.zeros(n_arms)
        # weighted sums of ``reward - prior_mean``: the posterior is computed
        # relative to the prior mean, so a common shift of rewards and prior
        # mean changes no difference between arms
        self._offset_sum = np.zeros(n_arms)
        self._posterior()

    def _posterior(self):
        # precision 1/tau0^2 + N/sigma^2 written with the ratio tau0^2/sigma^2
        # only, so that scaling rewards by s and variances by s^2 neither
        # overflows nor changes the standardized differences
        ratio = float(self.prior_variance) / float(self.noise_variance)
        shrink = 1.0 + self._weight_sum * ratio
        self.variances_ = float(self.prior_variance) / shrink
        self._offsets = ratio * self._offset_sum / shrink
        self.means_ = float(self.prior_mean) + self._offsets

    def _update(self, X, arm, reward, weight):
        n_arms = self.classes_.shape[0]
        self._weight_sum = self._weight_sum + np.bincount(
            arm, weights=weight, minlength=n_arms
        )
        self._offset_sum = self._offset_sum + np.bincount(
            arm, weights=weight * (reward - float(self.prior_mean)), minlength=n_arms
        )
        self._posterior()

    def _choose(self, X, rng):
        z = self._standard_normal(rng, (X.shape[0], self.means_.size))
        draws = self._offsets + np.sqrt(self.variances_) * z
        return np.argmax(draws, axis=1)

    def _proba(self, X):
        return _tile(
            _prob_max_gaussian(self._offsets, np.sqrt(self.variances_)), X.shape[0]
        )


class EpsilonGreedy(BasePolicy):
    """Epsilon-greedy: explore uniformly with probability epsilon.

    With probability ``epsilon`` the arm is drawn uniformly; otherwise the
    arm with the largest mean observed reward is played (ties split evenly;
    arms never played count as best, so each is tried once).

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    epsilon : float, default=0.1
        Probability of a uniform exploratory draw.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws of ``predict``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    means_ : ndarray of shape (n_arms,)
        Weighted mean observed reward of each arm (NaN if never played).
    counts_ : ndarray of shape (n_arms,)
        Summed weights of each arm's logged rounds.
    n_features_in_ : int
        Number of columns of X seen in ``fit`` (ignored; may be 0).
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    UCB1 : Optimism instead of random exploration.

    Notes
    -----
    The selection probability is exact:
    :math:`\\pi(k) = \\epsilon/K + (1 - \\epsilon)\\,1\\{k \\in G\\}/|G|`
    with :math:`G` the set of greedy arms.

    References
    ----------
    .. [1] R. S. Sutton and A. G. Barto, "Reinforcement Learning: An
       Introduction", MIT Press, 2018, Section 2.2.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import EpsilonGreedy, make_feedback
    >>> y = make_feedback([0, 1, 2], [1.0, 0.0, 0.5])
    >>> policy = EpsilonGreedy(epsilon=0.3, random_state=0).fit(np.empty((3, 0)), y)
    >>> policy.predict_proba(np.empty((1, 0))).round(2)
    array([[0.8, 0.1, 0.1]])
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "epsilon": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, epsilon=0.1, arms=None, random_state=None):
        self.epsilon = epsilon
        self.arms = arms
        self.random_state = random_state

    def _init_state(self, n_features):
        n_arms = self.classes_.shape[0]
        self.counts_ = np.zeros(n_arms)
        self._reward_sum = np.zeros(n_arms)
        self.means_ = np.full(n_arms, np.nan)

    def _update(self, X, arm, reward, weight):
        n_arms = self.classes_.shape[0]
        self.counts_ = self.counts_ + np.bincount(arm, weights=weight, minlength=n_arms)
        self._reward_sum = self._reward_sum + np.bincount(
            arm, weights=weight * reward, minlength=n_arms
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            self.means_ = np.where(
                self.counts_ > 0, self._reward_sum / self.counts_, np.nan
            )

    def _greedy(self):
        value = np.where(np.isnan(self.means_), np.inf, self.means_)
        return value == value.max()

    def _proba_row(self):
        n_arms = self.classes_.shape[0]
        greedy = self._greedy()
        return self.epsilon / n_arms + (1 - self.epsilon) * greedy / greedy.sum()

    def _choose(self, X, rng):
        row = self._proba_row()
        return rng.choice(row.size, size=X.shape[0], p=row)

    def _proba(self, X):
        return _tile(self._proba_row(), X.shape[0])


class UCB1(BasePolicy):
    """UCB1: play the arm with the largest upper confidence bound.

    Deterministic: every context of a batch gets the same arm (ties go to
    the first arm in ``classes_``); arms never played are played first.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    exploration : float, default=1.0
        Multiplier :math:`c` of the confidence width; ``1.0`` is Auer et al.'s
        UCB1 for rewards in [0, 1].
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Unused (UCB1 does not randomize); kept for a uniform interface.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    means_ : ndarray of shape (n_arms,)
        Weighted mean observed reward of each arm (NaN if never played).
    counts_ : ndarray of shape (n_arms,)
        Summed weights of each arm's logged rounds.
    n_features_in_ : int
        Number of columns of X seen in ``fit`` (ignored; may be 0).
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    LinUCB : Contextual upper confidence bounds.

    Notes
    -----
    The index of arm :math:`k` after :math:`t` rounds is
    :math:`\\hat\\mu_k + c\\sqrt{2 \\ln t / n_k}`.

    References
    ----------
    .. [1] P. Auer, N. Cesa-Bianchi and P. Fischer, "Finite-time analysis of
       the multiarmed bandit problem", Machine Learning, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import UCB1, make_feedback
    >>> y = make_feedback([0, 0, 1], [1.0, 1.0, 1.0])
    >>> UCB1().fit(np.empty((3, 0)), y).predict(np.empty((2, 0)))
    array([1, 1])
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "exploration": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, exploration=1.0, arms=None, random_state=None):
        self.exploration = exploration
        self.arms = arms
        self.random_state = random_state

    _init_state = EpsilonGreedy._init_state
    _update = EpsilonGreedy._update

    def upper_bounds(self):
        """Return the current upper confidence bound of each arm.

        Returns
        -------
        bounds : ndarray of shape (n_arms,)
            ``inf`` for arms never played.
        """
        total = max(self.counts_.sum(), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            width = self.exploration * np.sqrt(2.0 * np.log(total) / self.counts_)
        return np.where(self.counts_ > 0, self.means_ + width, np.inf)

    def _choose(self, X, rng):
        return np.full(X.shape[0], np.argmax(self.upper_bounds()), dtype=np.intp)

    def _proba(self, X):
        row = np.zeros(self.classes_.shape[0])
        row[np.argmax(self.upper_bounds())] = 1.0
        return _tile(row, X.shape[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.policy_tags.randomized = False
        return tags


class Uniform(BasePolicy):
    """Uniformly random policy: the exploration baseline and a logging policy.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws of ``predict``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    n_features_in_ : int
        Number of columns of X seen in ``fit`` (ignored; may be 0).
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    EpsilonGreedy : Uniform with probability epsilon, greedy otherwise.

    Notes
    -----
    :math:`\\pi(k \\mid x) = 1/K` for every context.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import Uniform
    >>> policy = Uniform(arms=["a", "b"]).fit(np.empty((1, 0)), ["a"])
    >>> policy.predict_proba(np.empty((1, 0)))
    array([[0.5, 0.5]])
    """

    def __init__(self, arms=None, random_state=None):
        self.arms = arms
        self.random_state = random_state

    def _init_state(self, n_features):
        pass

    def _update(self, X, arm, reward, weight):
        pass

    def _choose(self, X, rng):
        return rng.integers(self.classes_.shape[0], size=X.shape[0])

    def _proba(self, X):
        n_arms = self.classes_.shape[0]
        return np.full((X.shape[0], n_arms), 1.0 / n_arms)
