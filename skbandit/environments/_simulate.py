"""Run policies on simulated environments and record their regret."""

import numbers
import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, validate_params

from skbandit._feedback import make_feedback
from skbandit.environments._envs import BaseEnvironment


def _run_once(policy, env, n_rounds, batch_size, seed, verbose):
    rng = np.random.default_rng(seed)
    policy = clone(policy)
    params = policy.get_params()
    new = {}
    if "arms" in params and params["arms"] is None:
        new["arms"] = env.arms
    if "random_state" in params:
        new["random_state"] = int(rng.integers(np.iinfo(np.int32).max))
    policy.set_params(**new)
    arms = np.asarray(env.arms)
    policy.partial_fit(
        np.zeros((0, env.n_features)), make_feedback(arms[:0], np.zeros(0))
    )
    regret = np.empty(n_rounds)
    reward = np.empty(n_rounds)
    decide_time = update_time = 0.0
    n_batches = -(-n_rounds // batch_size)
    for b in range(n_batches):
        lo = b * batch_size
        hi = min(n_rounds, lo + batch_size)
        X, mean_rewards = env.sample(hi - lo, rng)
        tic = time.perf_counter()
        chosen = policy.predict(X)
        decide_time += time.perf_counter() - tic
        idx = np.searchsorted(arms, chosen)
        rows = np.arange(hi - lo)
        observed = env.draw_rewards(mean_rewards[rows, idx], rng)
        regret[lo:hi] = mean_rewards.max(axis=1) - mean_rewards[rows, idx]
        reward[lo:hi] = observed
        tic = time.perf_counter()
        policy.partial_fit(X, make_feedback(chosen, observed))
        update_time += time.perf_counter() - tic
        if verbose > 1 and (b + 1) % max(1, n_batches // 10) == 0:
            print(
                f"[simulate] seed {seed}: round {hi}/{n_rounds}, "
                f"cumulative regret {regret[:hi].sum():.2f}",
                flush=True,
            )
    return np.cumsum(regret), np.cumsum(reward), decide_time, update_time


@validate_params(
    {
        "policy": [HasMethods(["partial_fit", "predict"])],
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
def simulate(
    policy,
    env,
    n_rounds,
    batch_size=1,
    n_repeats=1,
    random_state=None,
    n_jobs=None,
    verbose=0,
):
    """Run a policy on an environment and record its regret curves.

    Each repeat clones the policy (declaring the environment's arms when
    ``arms`` is None and giving it a seed derived from ``random_state``),
    starts it from its prior, then for every batch: draws contexts, lets the
    policy choose an arm for each, draws the rewards, and feeds them back with
    ``partial_fit``. Repeats run in parallel with joblib.

    Read more in the :ref:`User Guide <bandit>`.

    Parameters
    ----------
    policy : policy object
        Unfitted policy with ``partial_fit`` and ``predict`` (cloned).
    env : environment
        One of :class:`BernoulliArms`, :class:`GaussianArms`,
        :class:`LinearContextualBandit`, :class:`SupervisedBandit`, or a
        subclass of their base class.
    n_rounds : int
        Number of decisions per repeat.
    batch_size : int, default=1
        Decisions made before feedback is returned (delayed, batched
        feedback); 1 is the fully sequential bandit.
    n_repeats : int, default=1
        Independent repeats (new contexts, rewards and policy draws).
    random_state : int, RandomState instance or None, default=None
        Seeds the repeats.
    n_jobs : int or None, default=None
        Parallel jobs over repeats (a joblib backend such as Dask or Ray is
        honored).
    verbose : int, default=0
        Progress: 1 reports finished repeats (joblib), 2 also reports every
        tenth of each run.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``cumulative_regret`` and ``cumulative_reward``, arrays of shape
        (n_repeats, n_rounds) (regret is the pseudo-regret: best expected
        reward minus the chosen arm's expected reward), and
        ``decision_time`` / ``update_time``, arrays of shape (n_repeats,)
        with the seconds spent in ``predict`` / ``partial_fit``.

    See Also
    --------
    skbandit.metrics.make_simulation_scorer : Tunes exploration with this.

    Examples
    --------
    >>> from skbandit import BernoulliThompsonSampling
    >>> from skbandit.environments import BernoulliArms, simulate
    >>> result = simulate(BernoulliThompsonSampling(), BernoulliArms([0.3, 0.7]),
    ...                   n_rounds=500, batch_size=10, n_repeats=2, random_state=0)
    >>> result.cumulative_regret.shape
    (2, 500)
    >>> bool(result.cumulative_regret[:, -1].mean() < 0.4 * 500 / 2)
    True
    """
    seeds = check_random_state(random_state).randint(
        np.iinfo(np.int32).max, size=n_repeats
    )
    runs = Parallel(n_jobs=n_jobs, verbose=max(0, 10 * int(verbose)))(
        delayed(_run_once)(policy, env, n_rounds, batch_size, int(seed), verbose)
        for seed in seeds
    )
    regret, reward, decide, update = zip(*runs, strict=True)
    return Bunch(
        cumulative_regret=np.vstack(regret),
        cumulative_reward=np.vstack(reward),
        decision_time=np.asarray(decide),
        update_time=np.asarray(update),
    )
