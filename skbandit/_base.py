"""Base class and tags shared by every bandit policy.

The contract
------------
``fit(X, y)``
    Start from the prior and learn from logged feedback ``y`` (built by
    :func:`skbandit.make_feedback`).
``partial_fit(X, y)``
    Add one batch of feedback. ``fit`` is a reset followed by the same batch
    update, so online (one row at a time) and batched use share one code path.
``predict(X)``
    The arm chosen for each context, drawn at random where the policy
    randomizes (Thompson sampling, epsilon-greedy). Draws come from a
    generator seeded by ``random_state`` at ``fit``: two calls give
    independent draws and the whole sequence is reproducible.
``predict_proba(X)``
    The probability that the policy chooses each arm in each context, in the
    order of ``classes_``; exact where a closed form or a one-dimensional
    integral exists, Monte Carlo with a stated number of draws otherwise.
``score(X, y)``
    The self-normalized IPS estimate of the policy's value on logged
    feedback (greater is better).

A plain 1-d ``y`` carries no logged action or reward, so no bandit feedback
can be read from it. It is taken as *full-information* feedback instead: the
label is the arm that pays 1 and every other arm is observed to pay 0 (the
classical reduction of a labelled data set to a bandit with every reward
revealed). This keeps policies usable on supervised data, and is the
behaviour scikit-learn's common checks exercise.
"""

import math
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, fields

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import Tags as _SklearnTags
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from skbandit._feedback import check_feedback, coerce_feedback, is_feedback
from skbandit._random import NormalStream, standard_normal32
from skrobust.utils import check_nonnegative_sample_weight


@dataclass(slots=True)
class PolicyTags:
    """Tags that describe a bandit policy.

    Parameters
    ----------
    contextual : bool, default=False
        Whether decisions depend on the context X. Multi-armed policies accept
        X with zero columns and ignore its columns otherwise.
    randomized : bool, default=True
        Whether ``predict`` draws the arm at random (so that outputs on a
        subset of rows differ from the same rows in a larger batch).
    exact_proba : bool, default=True
        Whether ``predict_proba`` is exact (closed form or numerical
        quadrature) rather than a Monte Carlo estimate.
    binary_rewards : bool, default=False
        Whether rewards must lie in [0, 1].

    See Also
    --------
    get_policy_tags : Read the tags of a policy.

    Examples
    --------
    >>> from skbandit import LinUCB, get_policy_tags
    >>> tags = get_policy_tags(LinUCB())
    >>> tags.contextual, tags.randomized
    (True, False)
    """

    contextual: bool = False
    randomized: bool = True
    exact_proba: bool = True
    binary_rewards: bool = False


@dataclass(slots=True)
class Tags(_SklearnTags):
    """scikit-learn's :class:`~sklearn.utils.Tags` plus ``policy_tags``.

    Parameters
    ----------
    policy_tags : :class:`PolicyTags` or None, default=None
        Set on every bandit policy; None on other estimators.

    See Also
    --------
    PolicyTags : The policy-specific fields.

    Examples
    --------
    >>> from sklearn.utils import get_tags
    >>> from skbandit import BernoulliThompsonSampling
    >>> get_tags(BernoulliThompsonSampling()).policy_tags.binary_rewards
    True
    """

    policy_tags: PolicyTags | None = None


_SKLEARN_TAG_FIELDS = tuple(f.name for f in fields(_SklearnTags))


def _as_policy_tags(tags):
    """Copy scikit-learn tags into :class:`Tags` with default policy tags."""
    if isinstance(tags, Tags):
        return tags
    values = {name: getattr(tags, name) for name in _SKLEARN_TAG_FIELDS}
    return Tags(**values, policy_tags=PolicyTags())


class BasePolicy(BaseEstimator, metaclass=ABCMeta):
    """Base class of bandit policies (fit / partial_fit / predict / predict_proba).

    Subclasses implement four hooks on validated arrays: ``_init_state``
    (the prior), ``_update`` (one vectorized batch update), ``_choose``
    (arm indices for a batch of contexts, given a generator) and ``_proba``
    (selection probabilities). Everything else, including the reading of
    ``y``, the mapping of arm labels to ``classes_`` and the errors on bad
    input, lives here.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    arms : array-like of shape (n_arms,) or None, default=None
        The arms. ``None`` learns them from the first batch of feedback; pass
        them for online use, where the first batch may not show every arm.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws of ``predict`` (and Monte Carlo ``predict_proba``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    n_features_in_ : int
        Number of context features seen in ``fit`` (may be 0).
    n_samples_seen_ : float
        Total weight of the logged rounds learned so far.
    n_batches_seen_ : int
        Number of ``fit``/``partial_fit`` batches learned.

    See Also
    --------
    make_feedback : Builds the ``y`` that policies learn from.
    PolicyTags : What a policy declares about itself.

    Examples
    --------
    >>> from skbandit import BasePolicy, LinearThompsonSampling
    >>> isinstance(LinearThompsonSampling(), BasePolicy)
    True
    """

    _parameter_constraints: dict = {
        "arms": ["array-like", None],
        "random_state": ["random_state"],
    }

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _init_state(self, n_features):
        """Set the prior state for ``self.classes_`` and ``n_features``."""

    @abstractmethod
    def _update(self, X, arm, reward, weight):
        """Add a batch: ``arm`` are indices into ``classes_``."""

    @abstractmethod
    def _choose(self, X, rng):
        """Return arm indices of shape (n_samples,) drawn with ``rng``."""

    @abstractmethod
    def _proba(self, X):
        """Return selection probabilities of shape (n_samples, n_arms)."""

    def _check_rewards(self, reward):
        """Validate rewards; policies with binary rewards override the range."""
        if get_policy_tags(self).binary_rewards and (
            np.any(reward < 0) or np.any(reward > 1)
        ):
            bad = reward[(reward < 0) | (reward > 1)][0]
            raise ValueError(
                f"{type(self).__name__} needs rewards in [0, 1]; got a reward of "
                f"{bad}. Rescale the rewards or use GaussianThompsonSampling."
            )

    # --------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Learn the policy from logged feedback, starting from the prior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Contexts; may have zero columns for multi-armed policies.
        y : structured ndarray of shape (n_samples,) or array-like of labels
            Logged feedback from :func:`skbandit.make_feedback`. A plain 1-d
            array of labels is read as full-information feedback (reward 1
            for the labelled arm, 0 for every other arm).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; weight ``w`` equals ``w`` repeated rows.

        Returns
        -------
        self : object
            The fitted policy.
        """
        for attr in ("classes_", "n_features_in_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self._learn(X, y, sample_weight, reset=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Add one batch of logged feedback to the policy.

        The first call initializes the policy like ``fit``. With ``arms``
        declared, the first call may hold zero rows, which starts the policy
        at its prior (for online use before any feedback).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Contexts of the batch.
        y : structured ndarray of shape (n_samples,) or array-like of labels
            Logged feedback of the batch, as in ``fit``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : object
            The updated policy.
        """
        return self._learn(X, y, sample_weight, reset=not hasattr(self, "classes_"))

    def _validate_arms(self, actions):
        if self.arms is not None:
            arms = np.asarray(self.arms)
            if arms.ndim != 1 or arms.shape[0] == 0:
                raise ValueError(
                    f"arms must be a non-empty 1-d array of labels; got {self.arms!r}."
                )
            try:
                classes = np.unique(arms)
            except TypeError as exc:
                raise ValueError(
                    f"arms must be labels of one comparable type; got {exc}"
                ) from exc
            if classes.shape[0] != arms.shape[0]:
                raise ValueError(f"arms contains duplicates: {self.arms!r}.")
            return classes
        if actions.shape[0] == 0:
            raise ValueError(
                "Cannot start from zero logged rounds without knowing the arms: "
                "pass arms=[...] to the policy."
            )
        try:
            return np.unique(actions)
        except TypeError as exc:
            raise ValueError(
                f"actions must be labels of one comparable type; got {exc}"
            ) from exc

    def _arm_index(self, actions, *, what="actions", classes=None):
        """Map labels to indices into ``classes_``, with a clear error."""
        classes = self.classes_ if classes is None else classes
        if actions.shape[0] == 0:
            return np.zeros(0, dtype=np.intp)
        try:
            pos = np.searchsorted(classes, actions)
            pos = np.clip(pos, 0, classes.shape[0] - 1)
            ok = classes[pos] == actions
        except (TypeError, ValueError, np.exceptions.DTypePromotionError):
            ok = np.zeros(actions.shape[0], dtype=bool)
            pos = None
        ok = np.asarray(ok, dtype=bool)
        if not np.all(ok):
            unknown = np.unique(np.asarray(actions)[~ok])[:5]
            raise ValueError(
                f"{what} {unknown.tolist()} are not among the arms "
                f"{classes.tolist()} of this policy."
            )
        return pos.astype(np.intp)

    def _learn(self, X, y, sample_weight, *, reset):
        if reset:
            self._min_features = int(get_policy_tags(self).contextual)
        # structured feedback is read by field name before anything else, so
        # that a y missing a field is never taken for labels
        y = coerce_feedback(y)
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            ensure_min_features=self._min_features,
            ensure_min_samples=0 if self.arms is not None else 1,
            dtype=np.float64,
        )
        n = X.shape[0]
        if is_feedback(y):
            actions, reward, _ = check_feedback(y, n)
            full_information = False
        else:
            actions = np.asarray(y)
            full_information = True
        # validate everything before touching the state, so that bad input
        # leaves a fitted policy unchanged and an unfitted one unfitted
        classes = self._validate_arms(actions) if reset else self.classes_
        arm = self._arm_index(actions, classes=classes)
        if n == 0:
            weight = np.zeros(0)
        else:
            weight = check_nonnegative_sample_weight(sample_weight, X)
        if not full_information:
            # full-information rewards are 0 and 1, valid for every policy
            self._check_rewards(reward)
        if reset:
            self.classes_ = classes
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            self._seed = int(seed)
            self._rng = np.random.default_rng(self._seed)
            # standard normal draws of ``predict``, served in slices of blocks
            self._normals = NormalStream(self._rng)
            self.n_samples_seen_ = 0.0
            self.n_batches_seen_ = 0
            self._init_state(X.shape[1])
        if arm.shape[0] > 0:
            if full_information:
                self._update_full_information(X, arm, weight)
            else:
                self._update(X, arm, reward, weight)
        self.n_samples_seen_ += float(weight.sum())
        self.n_batches_seen_ += 1
        return self

    def _update_full_information(self, X, arm, weight):
        """Add a batch in which every row reveals every arm's reward.

        Row ``i`` pays 1 on arm ``arm[i]`` and 0 on every other arm. The
        default repeats each row once per arm and calls ``_update``; a
        multi-armed policy ignores X's columns, so only X's zero-column view
        is repeated (no copy of X). Policies that can learn the shared design
        at once override this (the linear policies: one Gram matrix in row
        blocks instead of ``n_arms`` copies of X).
        """
        n, n_arms = X.shape[0], self.classes_.shape[0]
        if not get_policy_tags(self).contextual:
            X = X[:, :0]
        every_arm = np.tile(np.arange(n_arms), n)
        reward = (every_arm == np.repeat(arm, n_arms)).astype(np.float64)
        self._update(
            np.repeat(X, n_arms, axis=0), every_arm, reward, np.repeat(weight, n_arms)
        )

    # -------------------------------------------------------------- deciding
    def _standard_normal(self, rng, shape):
        """Independent standard normals (float32) from ``rng``.

        Draws from the policy's own generator come from its block stream
        (see :class:`skbandit._random.NormalStream`).
        """
        if rng is self._rng:
            return self._normals.draw(shape)
        return standard_normal32(rng, shape)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "classes_")

    def _validate_X(self, X):
        """``check_is_fitted`` and ``validate_data(reset=False)``, fast when safe.

        Serving mostly sees one kind of input: a float64 ndarray with the
        fitted number of columns and finite values, from a policy fitted
        without feature names. On it ``validate_data`` checks everything and
        returns ``X`` itself, at a cost larger than a linear policy's whole
        decision on a batch of 100 contexts. That case is recognized with a
        few attribute reads and one summation, and ``X`` is returned
        as is; every other input goes through ``validate_data``, which
        converts it or raises its usual errors and warnings.
        """
        if (
            type(X) is np.ndarray
            and X.dtype == np.float64
            and X.ndim == 2
            and X.shape[0] > 0
            and self.__sklearn_is_fitted__()
            and X.shape[1] == getattr(self, "n_features_in_", -1)
            and not hasattr(self, "feature_names_in_")
            # a finite sum implies finite entries (a NaN or an infinity makes
            # the sum NaN or infinite); an overflowing sum of finite entries
            # only sends X down the full check
            and math.isfinite(X.sum())
        ):
            return X
        check_is_fitted(self)
        return validate_data(
            self,
            X,
            reset=False,
            ensure_min_features=self._min_features,
            dtype=np.float64,
        )

    def predict(self, X):
        """Choose an arm for each context.

        Randomized policies draw independently for every row, from the
        generator seeded at ``fit``; calling ``predict`` again gives fresh
        draws.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Contexts (zero columns for multi-armed policies).

        Returns
        -------
        arms : ndarray of shape (n_samples,)
            The chosen arm labels, taken from ``classes_``.
        """
        X = self._validate_X(X)
        return self.classes_[self._choose(X, self._rng)]

    def predict_proba(self, X):
        """Probability that the policy chooses each arm in each context.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Contexts.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_arms)
            Rows sum to one; columns follow ``classes_``.
        """
        X = self._validate_X(X)
        return self._proba(X)

    def score(self, X, y, sample_weight=None):
        """Estimated value of the policy on logged feedback (greater is better).

        With feedback from :func:`skbandit.make_feedback`, the self-normalized
        inverse propensity score (see :func:`skbandit.metrics.snips_value`);
        the feedback must carry propensities. With a plain 1-d array of labels
        (full information), the exact expected reward
        :math:`\\frac{1}{n}\\sum_i \\pi(y_i \\mid x_i)`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Contexts.
        y : structured ndarray of shape (n_samples,) or array-like of labels
            Logged feedback with propensities, or labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the logged rounds.

        Returns
        -------
        score : float
            Estimated expected reward per round under this policy.
        """
        from skbandit.metrics import snips_value

        proba = self.predict_proba(X)
        y = coerce_feedback(y)
        if is_feedback(y):
            actions, reward, prop = check_feedback(
                y, proba.shape[0], require_propensities=True
            )
            arm = self._arm_index(actions)
            target = proba[np.arange(arm.shape[0]), arm]
            return snips_value(reward, prop, target, sample_weight=sample_weight)
        arm = self._arm_index(np.asarray(y).reshape(-1), what="labels")
        w = check_nonnegative_sample_weight(sample_weight, proba)
        return float(np.average(proba[np.arange(arm.shape[0]), arm], weights=w))

    def __sklearn_tags__(self):
        tags = _as_policy_tags(super().__sklearn_tags__())
        tags.target_tags.required = True
        return tags


def get_policy_tags(policy):
    """Return the :class:`PolicyTags` of a policy.

    Parameters
    ----------
    policy : estimator
        A policy (instance, fitted or not).

    Returns
    -------
    tags : :class:`PolicyTags`
        The policy's tags; default tags for an estimator without them.

    Examples
    --------
    >>> from skbandit import EpsilonGreedy, get_policy_tags
    >>> get_policy_tags(EpsilonGreedy()).exact_proba
    True
    """
    tags = policy.__sklearn_tags__()
    return getattr(tags, "policy_tags", None) or PolicyTags()
