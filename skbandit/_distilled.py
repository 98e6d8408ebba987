"""Distilled Thompson sampling: serve a TS policy through an imitation model."""

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import HasMethods, Interval

from skbandit._base import BasePolicy
from skbandit._feedback import make_feedback
from skbandit._linear import LinearThompsonSampling


class DistilledThompsonSampling(BasePolicy):
    """Distilled Thompson sampling: an imitation model serves the decisions.

    A Thompson sampling policy (the *teacher*) learns from the logged
    feedback as usual. After each batch, an imitation model (any
    scikit-learn classifier with ``predict_proba``, including a skorch
    classifier) is trained to reproduce the teacher's action distribution on
    the contexts seen so far: the teacher draws ``n_imitation_draws`` actions
    per context and the classifier is fit to them, which minimizes the
    expected cross-entropy to the teacher's distribution. Decisions
    (``predict``, ``predict_proba``) use only the imitation model, so their
    latency is that of one classifier call, whatever the cost of the
    posterior.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    policy : policy object, default=None
        The Thompson sampling teacher, cloned in ``fit``. ``None`` means
        :class:`LinearThompsonSampling`.
    imitation_model : classifier, default=None
        Classifier with ``fit`` and ``predict_proba``, cloned in ``fit``.
        ``None`` means ``LogisticRegression(max_iter=1000)``. A skorch
        ``NeuralNetClassifier`` works inside a ``Pipeline`` that first casts
        the contexts to float32.
    n_imitation_draws : int, default=10
        Actions drawn from the teacher per context to build the imitation
        targets.
    max_contexts : int, default=10000
        Most recent contexts kept to distill on.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the teacher's draws and the serving draws.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    policy_ : policy object
        The fitted teacher.
    imitation_model_ : classifier or None
        The fitted imitation model; ``None`` while the teacher's draws all
        chose one arm (then that arm is served).
    n_features_in_ : int
        Number of context features.
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    LinearThompsonSampling : The default teacher.

    Notes
    -----
    With teacher :math:`\\pi^{TS}` and contexts :math:`x_1..x_m`, the
    imitation model :math:`\\pi_\\phi` solves

    .. math::

        \\min_\\phi \\frac{1}{m}\\sum_{i=1}^m
        \\mathrm{KL}\\left(\\pi^{TS}(\\cdot \\mid x_i) \\,\\|\\,
        \\pi_\\phi(\\cdot \\mid x_i)\\right),

    approximated by the cross-entropy on ``n_imitation_draws`` sampled
    actions per context. ``predict_proba`` returns the imitation model's
    probabilities (zero for arms it never saw) and ``predict`` samples
    from them.

    References
    ----------
    .. [1] H. Namkoong, S. Daulton and E. Bakshy, "Distilled Thompson
       Sampling: Practical and Efficient Thompson Sampling via Imitation
       Learning", arXiv:2011.14266, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import DistilledThompsonSampling, make_feedback
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2))
    >>> actions = rng.integers(2, size=300)
    >>> rewards = np.where(actions == 1, X[:, 0], -X[:, 0])
    >>> policy = DistilledThompsonSampling(random_state=0)
    >>> policy.fit(X, make_feedback(actions, rewards)).predict([[3.0, 0], [-3.0, 0]])
    array([1, 0])
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "policy": [HasMethods(["partial_fit", "predict"]), None],
        "imitation_model": [HasMethods(["fit", "predict_proba"]), None],
        "n_imitation_draws": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_contexts": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        policy=None,
        imitation_model=None,
        n_imitation_draws=10,
        max_contexts=10000,
        arms=None,
        random_state=None,
    ):
        self.policy = policy
        self.imitation_model = imitation_model
        self.n_imitation_draws = n_imitation_draws
        self.max_contexts = max_contexts
        self.arms = arms
        self.random_state = random_state

    def _init_state(self, n_features):
        teacher = LinearThompsonSampling() if self.policy is None else self.policy
        self.policy_ = clone(teacher)
        params = {"arms": self.classes_}
        if "random_state" in self.policy_.get_params():
            params["random_state"] = self._seed
        self.policy_.set_params(**params)
        self.imitation_model_ = None
        self._constant_arm = None
        self._contexts = np.zeros((0, n_features))
        # start the teacher at its prior, so that it can act before feedback
        self.policy_.partial_fit(
            self._contexts, make_feedback(self.classes_[:0], np.zeros(0))
        )

    def _update(self, X, arm, reward, weight):
        y = make_feedback(self.classes_[arm], reward)
        self.policy_.partial_fit(X, y, sample_weight=weight)
        self._contexts = np.vstack([self._contexts, X])[-self.max_contexts :]
        self._distill()

    def _distill(self):
        contexts = np.repeat(self._contexts, self.n_imitation_draws, axis=0)
        targets = self.policy_.predict(contexts)
        if np.unique(targets).shape[0] == 1:
            self.imitation_model_ = None
            self._constant_arm = targets[0]
            return
        model = (
            LogisticRegression(max_iter=1000)
            if self.imitation_model is None
            else self.imitation_model
        )
        self.imitation_model_ = clone(model).fit(contexts, targets)
        self._imitation_cols = self._arm_index(
            np.asarray(self.imitation_model_.classes_)
        )
        self._constant_arm = None

    def _proba(self, X):
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        if self.imitation_model_ is None:
            if self._constant_arm is None:  # no feedback yet: the teacher's prior
                return self.policy_.predict_proba(X)
            proba[:, self._arm_index(np.array([self._constant_arm]))[0]] = 1.0
            return proba
        proba[:, self._imitation_cols] = self.imitation_model_.predict_proba(X)
        return proba

    def _choose(self, X, rng):
        cumulative = np.cumsum(self._proba(X), axis=1)
        u = rng.random(X.shape[0]) * cumulative[:, -1]
        return np.minimum(
            (cumulative < u[:, None]).sum(axis=1), self.classes_.shape[0] - 1
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.policy_tags.contextual = True
        tags.policy_tags.exact_proba = False
        return tags
