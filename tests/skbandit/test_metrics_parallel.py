"""``n_jobs`` of the off-policy value and the simulation scorer.

The reward-model fits of ``estimate_policy_value`` and the repeats of the
simulation scorer run through joblib; the result must not depend on
``n_jobs`` or on the backend (Dask included) for the same ``random_state``.
"""

import numpy as np
import pytest
from joblib import parallel_backend
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.tree import DecisionTreeRegressor

from skbandit import EpsilonGreedy, Uniform, make_feedback
from skbandit.environments import BernoulliArms, simulate
from skbandit.metrics import (
    dr_value,
    estimate_policy_value,
    make_policy_scorer,
    make_simulation_scorer,
)

# the same fits on the same rows: equal up to float summation order
RTOL = 1e-12
N_ARMS = 3


@pytest.fixture(scope="module")
def logs():
    rng = np.random.default_rng(0)
    n = 400
    X = rng.normal(size=(n, 3))
    actions = rng.integers(N_ARMS, size=n)
    rewards = X[:, 0] * (actions == 1) - X[:, 1] * (actions == 2) + rng.normal(size=n)
    y = make_feedback(actions, rewards, 1.0 / N_ARMS)
    # a target policy that is not uniform: epsilon-greedy on a fitted model
    policy = EpsilonGreedy(arms=list(range(N_ARMS)), epsilon=0.2, random_state=0)
    policy.fit(X, y)
    return X, y, actions, rewards, policy


@pytest.mark.parametrize(
    "reward_model", [None, DecisionTreeRegressor(max_depth=3, random_state=0)]
)
def test_estimate_policy_value_independent_of_n_jobs(logs, reward_model):
    X, y, _, _, policy = logs
    kwargs = {"reward_model": reward_model, "n_splits": 3, "random_state": 0}
    sequential = estimate_policy_value(policy, X, y, n_jobs=1, **kwargs)
    parallel = estimate_policy_value(policy, X, y, n_jobs=2, **kwargs)
    for key in ("value", "std_error", "ci_low", "ci_high"):
        assert_allclose(parallel[key], sequential[key], rtol=RTOL)


def test_parallel_cross_fitting_equals_a_hand_computation(logs):
    # reference: the cross-fitted DR estimate written out by hand, with one
    # Ridge per fold and arm on the same shuffled folds, then dr_value
    X, y, actions, rewards, policy = logs
    proba = policy.predict_proba(X)
    n = X.shape[0]
    q = np.empty((n, N_ARMS))
    for train, test in KFold(3, shuffle=True, random_state=0).split(X):
        for k in range(N_ARMS):
            rows = train[actions[train] == k]
            q[test, k] = Ridge(alpha=1.0).fit(X[rows], rewards[rows]).predict(X[test])
    expected = dr_value(
        rewards,
        np.full(n, 1.0 / N_ARMS),
        proba[np.arange(n), actions],
        q[np.arange(n), actions],
        np.sum(proba * q, axis=1),
    )
    result = estimate_policy_value(policy, X, y, n_splits=3, random_state=0, n_jobs=2)
    assert_allclose(result.value, expected, rtol=RTOL)
    scorer = make_policy_scorer("dr", n_splits=3, random_state=0, n_jobs=2)
    assert_allclose(scorer(policy, X, y), expected, rtol=RTOL)


def test_simulation_scorer_independent_of_n_jobs():
    env = BernoulliArms([0.3, 0.5, 0.6])
    policy = EpsilonGreedy(epsilon=0.1)
    kwargs = {"batch_size": 10, "n_repeats": 4, "random_state": 3}
    sequential = make_simulation_scorer(env, 200, n_jobs=1, **kwargs)(policy)
    parallel = make_simulation_scorer(env, 200, n_jobs=2, **kwargs)(policy)
    assert parallel == sequential
    # reference: minus the mean final regret per round of the same runs
    runs = simulate(policy, env, 200, **kwargs)
    assert_allclose(sequential, -runs.cumulative_regret[:, -1].mean() / 200, rtol=RTOL)


def test_verbose_reports_progress(logs, capsys):
    X, y, _, _, policy = logs
    estimate_policy_value(policy, X, y, n_jobs=1, verbose=1, random_state=0)
    captured = capsys.readouterr()
    assert "Done" in captured.out + captured.err


def test_bad_n_jobs(logs):
    X, y, _, _, policy = logs
    with pytest.raises(ValueError, match="n_jobs"):
        estimate_policy_value(policy, X, y, n_jobs="two")
    with pytest.raises(ValueError, match="n_jobs"):
        make_simulation_scorer(BernoulliArms([0.1, 0.2]), 10, n_jobs=1.5)


def test_on_a_dask_cluster(logs):
    distributed = pytest.importorskip("dask.distributed")
    X, y, _, _, policy = logs
    env = BernoulliArms([0.3, 0.5, 0.6])
    scorer_kwargs = {"batch_size": 10, "n_repeats": 4, "random_state": 3}
    sequential_value = estimate_policy_value(
        policy, X, y, n_splits=3, random_state=0, n_jobs=1
    )
    sequential_score = make_simulation_scorer(env, 200, n_jobs=1, **scorer_kwargs)(
        Uniform()
    )
    # threads, not processes: starts fast and still sends every task through
    # the Dask scheduler
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    try:
        with distributed.Client(cluster), parallel_backend("dask"):
            value = estimate_policy_value(
                policy, X, y, n_splits=3, random_state=0, n_jobs=2
            )
            score = make_simulation_scorer(env, 200, n_jobs=2, **scorer_kwargs)(
                Uniform()
            )
    finally:
        cluster.close()
    assert_allclose(value.value, sequential_value.value, rtol=RTOL)
    assert_allclose(value.std_error, sequential_value.std_error, rtol=RTOL)
    assert_allclose(score, sequential_score, rtol=RTOL)
