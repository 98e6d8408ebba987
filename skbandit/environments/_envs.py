"""Simulated bandit environments with known expected rewards."""

import numbers
from abc import ABC, abstractmethod

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_X_y


class BaseEnvironment(ABC):
    """A bandit environment: contexts, expected rewards and reward noise.

    An environment is stateless; all randomness comes from the generator
    passed to :meth:`sample` and :meth:`draw_rewards`, so that
    :func:`~skbandit.environments.simulate` can run independent repeats in
    parallel.

    Attributes
    ----------
    arms : ndarray of shape (n_arms,)
        The arm labels, sorted.
    n_features : int
        Number of context features (0 for multi-armed bandits).

    See Also
    --------
    simulate : Runs a policy on an environment.

    Examples
    --------
    A bandit with two arms whose expected rewards depend on the sign of one
    feature:

    >>> import numpy as np
    >>> from skbandit.environments import BaseEnvironment
    >>> class SignBandit(BaseEnvironment):
    ...     arms, n_features = np.array([0, 1]), 1
    ...     def sample(self, n, rng):
    ...         X = rng.standard_normal((n, 1))
    ...         return X, np.hstack([X > 0, X <= 0]).astype(float)
    >>> X, mean_rewards = SignBandit().sample(4, np.random.default_rng(0))
    >>> mean_rewards.sum(axis=1)
    array([1., 1., 1., 1.])
    """

    noise_std = 0.0
    bernoulli = False

    @abstractmethod
    def sample(self, n, rng):
        """Draw ``n`` contexts and their expected rewards.

        Parameters
        ----------
        n : int
            Number of rounds.
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        X : ndarray of shape (n, n_features)
            Contexts.
        mean_rewards : ndarray of shape (n, n_arms)
            Expected reward of every arm in every context.
        """

    def draw_rewards(self, mean_rewards, rng):
        """Draw observed rewards around their expectations.

        Parameters
        ----------
        mean_rewards : ndarray of shape (n,)
            Expected rewards of the chosen arms.
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        rewards : ndarray of shape (n,)
            Bernoulli draws for Bernoulli environments, otherwise the mean
            plus Gaussian noise of standard deviation ``noise_std``.
        """
        if self.bernoulli:
            return (rng.random(mean_rewards.shape) < mean_rewards).astype(np.float64)
        if self.noise_std == 0:
            return mean_rewards.astype(np.float64)
        return mean_rewards + self.noise_std * rng.standard_normal(mean_rewards.shape)


def _check_std(noise_std):
    if not isinstance(noise_std, numbers.Real) or not noise_std >= 0:
        raise ValueError(f"noise_std must be a number >= 0; got {noise_std!r}.")
    return float(noise_std)


class BernoulliArms(BaseEnvironment):
    """Multi-armed bandit whose arm ``k`` pays 1 with probability ``means[k]``.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    means : array-like of shape (n_arms,)
        Success probabilities, in [0, 1].

    Attributes
    ----------
    arms : ndarray of shape (n_arms,)
        ``0, ..., n_arms - 1``.
    n_features : int
        0: contexts have zero columns.

    See Also
    --------
    GaussianArms : Real-valued rewards.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.environments import BernoulliArms
    >>> X, mean_rewards = BernoulliArms([0.2, 0.5]).sample(3, np.random.default_rng(0))
    >>> X.shape, mean_rewards[0]
    ((3, 0), array([0.2, 0.5]))
    """

    bernoulli = True

    def __init__(self, means):
        means = check_array(means, ensure_2d=False, dtype=np.float64)
        if means.ndim != 1 or np.any(means < 0) or np.any(means > 1):
            raise ValueError("means must be a 1-d array of probabilities in [0, 1].")
        self.means = means
        self.arms = np.arange(means.shape[0])
        self.n_features = 0

    def sample(self, n, rng):
        return np.empty((n, 0)), np.tile(self.means, (n, 1))


class GaussianArms(BaseEnvironment):
    """Multi-armed bandit with rewards ``N(means[k], noise_std**2)``.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    means : array-like of shape (n_arms,)
        Expected rewards.
    noise_std : float, default=1.0
        Standard deviation of the reward noise.

    Attributes
    ----------
    arms : ndarray of shape (n_arms,)
        ``0, ..., n_arms - 1``.
    n_features : int
        0: contexts have zero columns.

    See Also
    --------
    BernoulliArms : Binary rewards.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.environments import GaussianArms
    >>> env = GaussianArms([0.0, 1.0], noise_std=0.0)
    >>> env.draw_rewards(np.array([1.0]), np.random.default_rng(0))
    array([1.])
    """

    def __init__(self, means, noise_std=1.0):
        means = check_array(means, ensure_2d=False, dtype=np.float64)
        if means.ndim != 1:
            raise ValueError("means must be a 1-d array.")
        self.means = means
        self.noise_std = _check_std(noise_std)
        self.arms = np.arange(means.shape[0])
        self.n_features = 0

    def sample(self, n, rng):
        return np.empty((n, 0)), np.tile(self.means, (n, 1))


class LinearContextualBandit(BaseEnvironment):
    """Contextual bandit with linear expected rewards ``x @ coef[k]``.

    Contexts are standard normal; the reward of arm ``k`` is
    :math:`x^\\top \\theta_k + b_k + \\varepsilon`,
    :math:`\\varepsilon \\sim N(0, \\sigma^2)`.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    n_arms : int, default=5
        Number of arms (ignored when ``coef`` is given).
    n_features : int, default=10
        Number of context features (ignored when ``coef`` is given).
    noise_std : float, default=0.1
        Standard deviation :math:`\\sigma` of the reward noise.
    coef : array-like of shape (n_arms, n_features) or None, default=None
        Arm coefficients; ``None`` draws them i.i.d. ``N(0, 1/n_features)``.
    intercept : array-like of shape (n_arms,) or None, default=None
        Arm intercepts; ``None`` means zeros.
    random_state : int, RandomState instance or None, default=None
        Seeds the coefficients drawn when ``coef`` is None.

    Attributes
    ----------
    coef : ndarray of shape (n_arms, n_features)
        The arm coefficients.
    intercept : ndarray of shape (n_arms,)
        The arm intercepts.
    arms : ndarray of shape (n_arms,)
        ``0, ..., n_arms - 1``.
    n_features : int
        Number of context features.

    See Also
    --------
    skbandit.LinearThompsonSampling : The matching policy.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit.environments import LinearContextualBandit
    >>> env = LinearContextualBandit(n_arms=3, n_features=4, random_state=0)
    >>> X, mean_rewards = env.sample(2, np.random.default_rng(0))
    >>> X.shape, mean_rewards.shape
    ((2, 4), (2, 3))
    """

    def __init__(
        self,
        n_arms=5,
        n_features=10,
        noise_std=0.1,
        coef=None,
        intercept=None,
        random_state=None,
    ):
        if coef is None:
            for name, value in (("n_arms", n_arms), ("n_features", n_features)):
                if not isinstance(value, numbers.Integral) or value < 1:
                    raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
            rs = check_random_state(random_state)
            coef = rs.normal(scale=1 / np.sqrt(n_features), size=(n_arms, n_features))
        coef = check_array(coef, dtype=np.float64)
        self.coef = coef
        if intercept is None:
            intercept = np.zeros(coef.shape[0])
        intercept = check_array(intercept, ensure_2d=False, dtype=np.float64)
        if intercept.shape != (coef.shape[0],):
            raise ValueError(
                f"intercept has shape {intercept.shape}; expected ({coef.shape[0]},)."
            )
        self.intercept = intercept
        self.noise_std = _check_std(noise_std)
        self.arms = np.arange(coef.shape[0])
        self.n_features = coef.shape[1]

    def sample(self, n, rng):
        X = rng.standard_normal((n, self.n_features))
        return X, X @ self.coef.T + self.intercept


class SupervisedBandit(BaseEnvironment):
    """Bandit built from a labelled data set: reward 1 when the arm is the label.

    Each round draws a row of the data set (with replacement); the arms are
    the class labels; the chosen arm pays 1 if it is the row's label and 0
    otherwise, plus optional Gaussian noise. Without noise the problem is
    noiseless given the context.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Contexts.
    y : array-like of shape (n_samples,)
        Labels; their distinct values are the arms.
    noise_std : float, default=0.0
        Standard deviation of Gaussian noise added to the 0/1 rewards.

    Attributes
    ----------
    arms : ndarray of shape (n_arms,)
        The distinct labels, sorted.
    n_features : int
        Number of features.

    See Also
    --------
    LinearContextualBandit : Simulated linear rewards.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skbandit.environments import SupervisedBandit
    >>> env = SupervisedBandit(*load_digits(return_X_y=True))
    >>> X, mean_rewards = env.sample(5, np.random.default_rng(0))
    >>> X.shape, mean_rewards.sum(axis=1)
    ((5, 64), array([1., 1., 1., 1., 1.]))
    """

    def __init__(self, X, y, noise_std=0.0):
        X, y = check_X_y(X, y, dtype=np.float64)
        self.X = X
        self.arms, self._label = np.unique(y, return_inverse=True)
        self.noise_std = _check_std(noise_std)
        self.n_features = X.shape[1]

    def sample(self, n, rng):
        rows = rng.integers(self.X.shape[0], size=n)
        mean_rewards = np.zeros((n, self.arms.shape[0]))
        mean_rewards[np.arange(n), self._label[rows]] = 1.0
        return self.X[rows], mean_rewards
