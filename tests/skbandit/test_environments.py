"""Environments and the simulation loop."""

import numpy as np
import pytest
from joblib import parallel_backend
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris

from skbandit import (
    BernoulliThompsonSampling,
    EpsilonGreedy,
    LinearThompsonSampling,
    Uniform,
)
from skbandit.environments import (
    BernoulliArms,
    GaussianArms,
    LinearContextualBandit,
    SupervisedBandit,
    simulate,
)
from skbandit.metrics import make_simulation_scorer


def test_supervised_bandit_rewards_are_label_indicators():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    env = SupervisedBandit(X, labels)
    assert_array_equal(env.arms, ["setosa", "versicolor", "virginica"])
    rng = np.random.default_rng(0)
    Xs, mean = env.sample(50, rng)
    # each sampled row is a row of X and its mean reward is one-hot at its label
    for x, m in zip(Xs, mean, strict=True):
        row = np.flatnonzero((X == x).all(axis=1))[0]
        assert_array_equal(m, np.eye(3)[y[row]])
    assert_array_equal(env.draw_rewards(mean[:, 0], rng), mean[:, 0])
    noisy = SupervisedBandit(X, y, noise_std=0.5).draw_rewards(np.zeros(20000), rng)
    assert_allclose(noisy.std(), 0.5, rtol=0.03)


def test_environment_reward_draws():
    rng = np.random.default_rng(0)
    env = BernoulliArms([0.2, 0.9])
    _, mean = env.sample(100000, rng)
    assert_allclose(env.draw_rewards(mean[:, 1], rng).mean(), 0.9, atol=0.005)
    g = GaussianArms([1.0, -1.0], noise_std=2.0)
    draws = g.draw_rewards(np.full(100000, 1.0), rng)
    assert_allclose([draws.mean(), draws.std()], [1.0, 2.0], atol=0.03)
    lin = LinearContextualBandit(n_arms=3, n_features=4, noise_std=0.0, random_state=0)
    X, mean = lin.sample(10, rng)
    assert_allclose(mean, X @ lin.coef.T)
    with pytest.raises(ValueError, match="probabilities in"):
        BernoulliArms([0.5, 1.5])
    with pytest.raises(ValueError, match="noise_std must be"):
        GaussianArms([0.0], noise_std=-1)


def test_uniform_regret_matches_closed_form():
    means = np.array([0.1, 0.5, 0.8])
    result = simulate(
        Uniform(), BernoulliArms(means), 400, batch_size=7, n_repeats=20, random_state=0
    )
    # expected pseudo-regret of uniform play: T * (max - mean(means))
    expected = 400 * (means.max() - means.mean())
    per_run = result.cumulative_regret[:, -1]
    assert abs(per_run.mean() - expected) < 4 * per_run.std() / np.sqrt(20)
    assert result.cumulative_regret.shape == (20, 400)
    assert np.all(np.diff(result.cumulative_regret, axis=1) >= 0)


def test_thompson_sampling_learns_and_simulate_is_reproducible():
    env = BernoulliArms([0.3, 0.5, 0.7])
    ts = simulate(
        BernoulliThompsonSampling(),
        env,
        1000,
        batch_size=10,
        n_repeats=4,
        random_state=1,
    )
    uniform_regret = 1000 * (0.7 - 0.5)
    assert ts.cumulative_regret[:, -1].mean() < 0.25 * uniform_regret
    with parallel_backend("threading"):  # the n_jobs path without process start
        again = simulate(
            BernoulliThompsonSampling(),
            env,
            1000,
            batch_size=10,
            n_repeats=4,
            random_state=1,
            n_jobs=2,
        )
    assert_array_equal(ts.cumulative_regret, again.cumulative_regret)
    assert ts.decision_time.shape == (4,)


def test_linear_ts_on_linear_bandit_beats_uniform():
    env = LinearContextualBandit(n_arms=4, n_features=5, noise_std=0.1, random_state=0)
    lin = simulate(
        LinearThompsonSampling(noise_variance=0.01),
        env,
        1000,
        batch_size=20,
        n_repeats=2,
        random_state=0,
    )
    uni = simulate(Uniform(), env, 1000, batch_size=20, n_repeats=2, random_state=0)
    assert (
        lin.cumulative_regret[:, -1].mean() < 0.2 * uni.cumulative_regret[:, -1].mean()
    )


def test_verbose_reports_progress(capsys):
    simulate(
        Uniform(),
        BernoulliArms([0.5, 0.6]),
        100,
        batch_size=10,
        verbose=2,
        random_state=0,
    )
    assert "round 100/100" in capsys.readouterr().out


def test_simulation_scorer_ranks_exploration():
    env = BernoulliArms([0.45, 0.55])
    scorer = make_simulation_scorer(env, 400, batch_size=10, n_repeats=4)
    greedy, uniform = scorer(EpsilonGreedy(epsilon=0.05)), scorer(Uniform())
    assert uniform == pytest.approx(-0.05, abs=0.02)  # regret per round 0.1/2
    assert greedy > uniform
