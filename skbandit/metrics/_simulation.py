"""A scorer that values a policy's exploration by simulation."""

import numbers

from sklearn.utils._param_validation import Interval, validate_params

from skbandit.environments import BaseEnvironment, simulate


@validate_params(
    {
        "env": [BaseEnvironment],
        "n_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def make_simulation_scorer(
    env,
    n_rounds,
    *,
    batch_size=1,
    n_repeats=5,
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Scorer that runs the policy's hyperparameters on a simulated bandit.

    An off-policy score values the *final* policy on logged data and so
    cannot tell how well a policy explores while it learns. This scorer
    clones the policy (its hyperparameters only; the fitted state and the
    ``X, y`` that ``GridSearchCV`` passes are ignored), runs it from its
    prior on ``env`` with :func:`~skbandit.environments.simulate`, and
    returns minus the mean regret per round (greater is better, 0 is
    optimal). A fixed ``random_state`` gives every candidate the same
    environments' draws (common random numbers).

    Read more in the :ref:`User Guide <off_policy>`.

    Parameters
    ----------
    env : environment
        The simulated bandit, e.g. fitted to resemble production.
    n_rounds : int
        Decisions per run.
    batch_size : int, default=1
        Decisions per feedback batch.
    n_repeats : int, default=5
        Runs averaged.
    random_state : int, RandomState instance or None, default=0
        Seeds the runs.
    n_jobs : int or None, default=None
        Parallel jobs over the ``n_repeats`` runs of each score, through
        :class:`joblib.Parallel` (see :func:`~skbandit.environments.simulate`),
        so a joblib backend such as Dask or Ray distributes them. The seed of
        every run is drawn from ``random_state`` before the runs are
        dispatched, so the score does not depend on ``n_jobs``. Inside
        ``GridSearchCV(n_jobs=...)`` the candidates are already parallel.
    verbose : int, default=0
        Progress messages of the runs when positive.

    Returns
    -------
    scorer : callable
        ``scorer(policy, X, y)`` returning minus the mean regret per round.

    See Also
    --------
    make_policy_scorer : Off-policy value on logged data.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbandit import EpsilonGreedy
    >>> from skbandit.environments import BernoulliArms
    >>> from skbandit.metrics import make_simulation_scorer
    >>> scorer = make_simulation_scorer(BernoulliArms([0.4, 0.6]), 300,
    ...                                 batch_size=10, n_repeats=3)
    >>> X, y = np.empty((6, 0)), [0, 1] * 3  # ignored by the scorer
    >>> search = GridSearchCV(EpsilonGreedy(), {"epsilon": [0.05, 1.0]},
    ...                       scoring=scorer, cv=2).fit(X, y)
    >>> search.best_params_
    {'epsilon': 0.05}
    """

    def scorer(policy, X=None, y=None, sample_weight=None):
        result = simulate(
            policy,
            env,
            n_rounds,
            batch_size=batch_size,
            n_repeats=n_repeats,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        return -float(result.cumulative_regret[:, -1].mean()) / n_rounds

    scorer.__name__ = "simulation_scorer"
    return scorer
