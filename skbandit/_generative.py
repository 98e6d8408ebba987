"""Thompson sampling by generating the missing outcomes (TS-Gen).

A generative sequence model, pretrained offline on simulated or historical
tasks, predicts an arm's next outcome from the outcomes seen so far. Drawing
the missing entries of the table of outcomes (the counterfactual outcomes of
past units and every outcome of future units) one after another from that
model is a draw from the posterior predictive; the policy that is best on
the completed table is then a draw of the optimal policy from its posterior,
which is what Thompson sampling plays.
"""

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval

from skbandit._base import BasePolicy
from skbandit._sequence_model import NeuralSequenceGenerator, make_linear_tasks

__all__ = ["GenerativeThompsonSampling", "NeuralSequenceGenerator", "make_linear_tasks"]


# ----------------------------------------------------------------------------
# the policy


# Contexts decided per completed table in ``predict`` (bounds its memory).
_DECISION_CHUNK = 256


def _ridge_fit(U, Y, alpha):
    """Ridge fits with intercept of every column of Y (n_units, n_draws) on U.

    Returns ``(u_mean, coef, y_mean)`` with ``coef`` of shape
    (n_features, n_draws): the fit of column j at x is
    ``(x - u_mean) @ coef[:, j] + y_mean[j]``.
    """
    u_mean = U.mean(axis=0)
    y_mean = Y.mean(axis=0)
    Uc = U - u_mean
    gram = Uc.T @ Uc + alpha * np.eye(U.shape[1])
    coef = np.linalg.solve(gram, Uc.T @ (Y - y_mean))
    return u_mean, coef, y_mean


class GenerativeThompsonSampling(BasePolicy):
    """Contextual Thompson sampling by generating the missing outcomes (TS-Gen).

    At each decision, a generative sequence model pretrained offline imputes
    the missing entries of the table of outcomes: for every arm, the
    outcomes of the past units that took another arm (counterfactuals) and
    of the current and ``n_future`` future units, drawn one after another
    conditionally on the arm's observed outcomes. An "oracle" policy is fit
    on the completed table (per arm, a ridge regression of the outcomes on
    the contexts; the oracle plays the arm with the largest fitted outcome)
    and that policy chooses the arm. Each context in a call to ``predict``
    gets its own independent imputation (the table holds the contexts of the
    call, in chunks of 256).

    Read more in the :ref:`User Guide <generative_ts>`.

    Parameters
    ----------
    generator : object, default=None
        Generative model of one arm's outcomes with the method
        ``sample(X_history, y_history, X_target, *, n_draws, random_state)``
        returning an array of shape ``(n_draws, n_target)``: joint draws of
        the outcomes at ``X_target`` given the observed pairs. A generator
        with an ``n_features_in_`` attribute is taken as pretrained and used
        as is (never modified or refit); one without it must have
        ``pretrain(X_tasks, y_tasks)`` and is cloned and pretrained in
        ``fit`` on ``n_pretrain_tasks`` tasks from
        :func:`make_linear_tasks`. ``None`` means
        :class:`NeuralSequenceGenerator` pretrained that way. ``clone`` (as
        in ``simulate``, ``cross_validate`` or ``GridSearchCV``) turns a
        pretrained :class:`NeuralSequenceGenerator` back into an untrained
        one, which ``fit`` then pretrains anew; to share one pretrained
        generator across clones, pass
        ``sklearn.frozen.FrozenEstimator(generator)``.
    n_future : int, default=50
        Future units in the imputed table; their contexts are resampled from
        the contexts seen so far and the ones being decided.
    oracle_alpha : float, default=1.0
        Ridge penalty of the oracle's per-arm regressions.
    n_pretrain_tasks : int, default=2048
        Simulated tasks (of 64 rounds) used to pretrain a generator that is
        not pretrained (10 to 15 seconds on one core with the default
        generator; 512 tasks take a quarter of that and learn a visibly
        worse predictive).
    n_proba_draws : int, default=100
        Imputations used by ``predict_proba``; the probabilities are Monte
        Carlo averages with standard error at most
        :math:`0.5/\\sqrt{n\\_proba\\_draws}`.
    arms : array-like of shape (n_arms,) or None, default=None
        The arm labels; ``None`` learns them from the first batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the pretraining, the imputations and the future contexts.

    Attributes
    ----------
    classes_ : ndarray of shape (n_arms,)
        The arm labels, sorted.
    generator_ : object
        The pretrained generator in use.
    n_features_in_ : int
        Number of context features.
    n_samples_seen_ : float
        Total weight of the logged rounds learned.
    n_batches_seen_ : int
        Number of batches learned.

    See Also
    --------
    NeuralSequenceGenerator : The default generator.
    make_linear_tasks : Simulated pretraining tasks.
    LinearThompsonSampling : Thompson sampling with an explicit linear model.

    Notes
    -----
    Let :math:`Y_i(a)` be the outcome of unit :math:`i` under arm :math:`a`
    and :math:`\\mathcal{H}` the observed entries. The generator defines
    :math:`p(Y_{\\text{missing}} \\mid \\mathcal{H}) = \\prod_j
    p(Y_j(a) \\mid x_j, \\mathcal{H}, Y_{<j}(a))`; a draw of the completed
    table is a draw from the posterior predictive, and

    .. math::

        \\hat\\pi = \\arg\\max_{\\pi \\in \\Pi} \\sum_i Y_i(\\pi(x_i))

    over the policies that pick the arm with the largest ridge fit is a
    posterior draw of the best policy, which acts. With a generator equal to
    the exact posterior predictive of Bayesian linear regression and a large
    table, this is linear Thompson sampling. The generator should be
    pretrained on outcomes of the same scale as the rewards (standardize
    the rewards, or pretrain on historical tasks).

    References
    ----------
    .. [1] K. W. Zhang, T. Cai, H. Namkoong and D. Russo, "Contextual
       Thompson Sampling via Generation of Missing Data", 2025.
       arXiv:2502.07064.

    Examples
    --------
    >>> import numpy as np
    >>> from skbandit import (GenerativeThompsonSampling, NeuralSequenceGenerator,
    ...                       make_feedback, make_linear_tasks)
    >>> X_tasks, y_tasks = make_linear_tasks(128, 40, 1, random_state=0)
    >>> gen = NeuralSequenceGenerator(n_epochs=10, random_state=0)
    >>> gen = gen.pretrain(X_tasks, y_tasks)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 1))
    >>> actions = rng.integers(2, size=60)
    >>> rewards = np.where(actions == 1, X[:, 0], -X[:, 0])
    >>> policy = GenerativeThompsonSampling(generator=gen, random_state=0)
    >>> policy = policy.fit(X, make_feedback(actions, rewards))
    >>> policy.predict_proba([[2.0], [-2.0]]).round(1)
    array([[0., 1.],
           [1., 0.]])
    """

    _parameter_constraints: dict = {
        **BasePolicy._parameter_constraints,
        "generator": [HasMethods(["sample"]), None],
        "n_future": [Interval(numbers.Integral, 0, None, closed="left")],
        "oracle_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_pretrain_tasks": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_proba_draws": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        generator=None,
        n_future=50,
        oracle_alpha=1.0,
        n_pretrain_tasks=2048,
        n_proba_draws=100,
        arms=None,
        random_state=None,
    ):
        self.generator = generator
        self.n_future = n_future
        self.oracle_alpha = oracle_alpha
        self.n_pretrain_tasks = n_pretrain_tasks
        self.n_proba_draws = n_proba_draws
        self.arms = arms
        self.random_state = random_state

    def _learn(self, X, y, sample_weight, *, reset):
        if sample_weight is not None:
            try:
                weight = np.asarray(sample_weight, dtype=np.float64)
            except (TypeError, ValueError):
                weight = None  # the base class reports malformed weights
            if weight is not None and np.any(
                np.isfinite(weight) & (weight != np.round(weight))
            ):
                raise ValueError(
                    "GenerativeThompsonSampling reads sample_weight as repeat "
                    "counts; non-integer weights have no meaning for the "
                    "generated table."
                )
        try:
            return super()._learn(X, y, sample_weight, reset=reset)
        except (TypeError, ValueError):
            if reset:  # a failed fit (e.g. an unusable generator) stays unfitted
                for attr in ("classes_", "n_features_in_", "generator_"):
                    if hasattr(self, attr):
                        delattr(self, attr)
            raise

    def _init_state(self, n_features):
        generator = self.generator
        if generator is None or not hasattr(generator, "n_features_in_"):
            if generator is None:
                generator = NeuralSequenceGenerator()
            elif not hasattr(generator, "pretrain"):
                raise TypeError(
                    "generator has no n_features_in_ attribute, so it is not "
                    "pretrained, and no pretrain(X_tasks, y_tasks) method to "
                    f"pretrain it: {generator!r}."
                )
            generator = clone(generator)
            if "random_state" in generator.get_params():
                generator.set_params(random_state=self._seed)
            X_tasks, y_tasks = make_linear_tasks(
                self.n_pretrain_tasks, 64, n_features, random_state=self._seed
            )
            generator.pretrain(X_tasks, y_tasks)
        if generator.n_features_in_ != n_features:
            raise ValueError(
                f"The generator was pretrained on {generator.n_features_in_} "
                f"features but X has {n_features}."
            )
        self.generator_ = generator
        self._X_hist = np.empty((0, n_features))
        self._arm_hist = np.empty(0, dtype=np.intp)
        self._y_hist = np.empty(0)

    def _update(self, X, arm, reward, weight):
        # integer weights (checked in ``_learn``) are repeat counts
        repeats = weight.astype(np.intp)
        self._X_hist = np.vstack([self._X_hist, np.repeat(X, repeats, axis=0)])
        self._arm_hist = np.concatenate([self._arm_hist, np.repeat(arm, repeats)])
        self._y_hist = np.concatenate([self._y_hist, np.repeat(reward, repeats)])

    def _oracle_fits(self, X, n_draws, rng):
        """Per-arm ridge fits of ``n_draws`` completed tables.

        The table holds the past units, the units of ``X`` and ``n_future``
        units with contexts resampled from the past and ``X``. Returns one
        ``(u_mean, coef, y_mean)`` triple per arm (see :func:`_ridge_fit`).
        """
        pool = np.vstack([self._X_hist, X])
        future = pool[rng.integers(pool.shape[0], size=self.n_future)]
        units = np.vstack([self._X_hist, X, future])
        n_past = self._X_hist.shape[0]
        fits = []
        for k in range(self.classes_.shape[0]):
            observed = np.zeros(units.shape[0], dtype=bool)
            observed[:n_past] = self._arm_hist == k
            n_missing = int((~observed).sum())
            table = np.empty((units.shape[0], n_draws))
            table[observed] = self._y_hist[observed[:n_past]][:, None]
            draws = self.generator_.sample(
                units[observed],
                table[observed, 0],
                units[~observed],
                n_draws=n_draws,
                random_state=int(rng.integers(np.iinfo(np.int32).max)),
            )
            draws = np.asarray(draws, dtype=np.float64)
            if draws.shape != (n_draws, n_missing):
                raise ValueError(
                    "generator.sample must return an array of shape (n_draws, "
                    f"n_target) = ({n_draws}, {n_missing}); got {draws.shape}."
                )
            table[~observed] = draws.T
            fits.append(_ridge_fit(units, table, self.oracle_alpha))
        return fits

    def _choose(self, X, rng):
        chosen = np.empty(X.shape[0], dtype=np.intp)
        for lo in range(0, X.shape[0], _DECISION_CHUNK):
            Xc = X[lo : lo + _DECISION_CHUNK]
            # row i acts with the oracle of its own completed table i
            values = np.column_stack(
                [
                    np.einsum("id,di->i", Xc - u_mean, coef) + y_mean
                    for u_mean, coef, y_mean in self._oracle_fits(Xc, Xc.shape[0], rng)
                ]
            )
            chosen[lo : lo + _DECISION_CHUNK] = np.argmax(values, axis=1)
        return chosen

    def _proba(self, X):
        rng = np.random.default_rng([self._seed, 1])
        n_arms = self.classes_.shape[0]
        if X.shape[0] == 0:
            return np.zeros((0, n_arms))
        fits = self._oracle_fits(X, self.n_proba_draws, rng)
        # best[i, j]: the arm whose fitted outcome at X[i] is largest in the
        # completed table j (ties to the first arm, as argmax), kept as a
        # running maximum over the arms: (n, n_draws) arrays, never one of
        # shape (n, n_draws, n_arms)
        for k, (u_mean, coef, y_mean) in enumerate(fits):
            value = (X - u_mean) @ coef
            value += y_mean
            if k == 0:
                best_value, best = value, np.zeros(value.shape, dtype=np.intp)
            else:
                best[value > best_value] = k
                np.maximum(best_value, value, out=best_value)
        # count each row's winners: one bincount over row-offset labels
        best += n_arms * np.arange(X.shape[0])[:, None]
        counts = np.bincount(best.ravel(), minlength=X.shape[0] * n_arms)
        return counts.reshape(-1, n_arms) / self.n_proba_draws

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.policy_tags.contextual = True
        tags.policy_tags.exact_proba = False
        tags.non_deterministic = True
        return tags
