"""Policies: posteriors against closed forms, draws, proba, bad input."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbandit import (
    UCB1,
    BernoulliThompsonSampling,
    EpsilonGreedy,
    GaussianThompsonSampling,
    LinearThompsonSampling,
    LinUCB,
    Uniform,
    get_policy_tags,
    make_feedback,
)

RTOL = 1e-8
MULTI_ARMED = [
    BernoulliThompsonSampling,
    GaussianThompsonSampling,
    EpsilonGreedy,
    UCB1,
    Uniform,
]
ALL = MULTI_ARMED + [LinearThompsonSampling, LinUCB]


def _linear_log(n=300, d=3, n_arms=3, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    theta = rng.normal(size=(n_arms, d))
    actions = rng.integers(n_arms, size=n)
    rewards = np.einsum("nd,nd->n", X, theta[actions]) + noise * rng.normal(size=n)
    return X, actions, rewards, theta


# ---------------------------------------------------------------- feedback
def test_make_feedback_fields_and_errors():
    y = make_feedback(["a", "b"], [1, 0], [0.5, 1.0])
    assert y.dtype.names == ("action", "reward", "propensity")
    assert_array_equal(y["action"], ["a", "b"])
    assert np.isnan(make_feedback([0], [1.0])["propensity"]).all()
    with pytest.raises(ValueError, match="propensities must lie in"):
        make_feedback([0, 1], [1, 0], [0.5, 0.0])
    with pytest.raises(ValueError, match="rewards has shape"):
        make_feedback([0, 1], [1.0])
    with pytest.raises(ValueError, match="rewards contains NaN"):
        make_feedback([0, 1], [1.0, np.nan])


# ------------------------------------------------------ multi-armed policies
def test_bernoulli_posterior_and_exact_proba():
    y = make_feedback([0, 0, 0, 1, 1, 2], [1, 1, 0, 0, 1, 1])
    policy = BernoulliThompsonSampling(prior_alpha=2, prior_beta=1).fit(
        np.empty((6, 0)), y
    )
    # conjugate update: alpha = 2 + successes, beta = 1 + failures
    assert_allclose(policy.alpha_, [4, 3, 3])
    assert_allclose(policy.beta_, [2, 2, 1])
    proba = policy.predict_proba(np.empty((2, 0)))
    # reference: 1e6 independent Beta draws per arm (MC standard error < 5e-4)
    rng = np.random.default_rng(1)
    draws = rng.beta(policy.alpha_, policy.beta_, size=(1_000_000, 3))
    ref = np.bincount(draws.argmax(1), minlength=3) / draws.shape[0]
    assert_allclose(proba[0], ref, atol=3e-3)
    assert_allclose(proba.sum(1), 1.0, rtol=RTOL)


def test_bernoulli_two_arm_proba_closed_form():
    # P(Beta(3,1) > Beta(2,2)) = 1 - E[Y^3], Y ~ Beta(2,2): 1 - 24/120 = 0.8
    y = make_feedback([0, 0, 1, 1], [1, 1, 0, 1])
    proba = (
        BernoulliThompsonSampling()
        .fit(np.empty((4, 0)), y)
        .predict_proba(np.empty((1, 0)))
    )
    assert_allclose(proba, [[0.8, 0.2]], rtol=1e-7)


def test_bernoulli_rejects_rewards_outside_unit_interval():
    y = make_feedback([0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"needs rewards in \[0, 1\]"):
        BernoulliThompsonSampling().fit(np.empty((2, 0)), y)


def test_gaussian_posterior_and_proba():
    rewards = np.array([1.0, 3.0, -1.0, 0.5])
    y = make_feedback([0, 0, 1, 1], rewards)
    policy = GaussianThompsonSampling(
        prior_mean=0.5, prior_variance=2.0, noise_variance=0.5
    ).fit(np.empty((4, 0)), y)
    # conjugate normal: precision = 1/2 + 2/0.5, mean = (0.5/2 + S/0.5)/precision
    precision = 0.5 + 4.0
    assert_allclose(policy.variances_, [1 / precision] * 2, rtol=RTOL)
    assert_allclose(
        policy.means_, [(0.25 + 8.0) / precision, (0.25 - 1.0) / precision], rtol=RTOL
    )
    # two arms: P(arm 0) = Phi((m0 - m1) / sqrt(v0 + v1))
    ref = stats.norm.cdf(
        (policy.means_[0] - policy.means_[1]) / np.sqrt(policy.variances_.sum())
    )
    assert_allclose(policy.predict_proba(np.empty((1, 0)))[0, 0], ref, rtol=1e-7)


def test_predict_frequencies_match_predict_proba():
    y = make_feedback([0, 1, 2, 0, 1, 2], [0.3, 0.5, 0.1, 0.6, 0.2, 0.4])
    for policy in (
        GaussianThompsonSampling(noise_variance=0.3, random_state=0),
        EpsilonGreedy(epsilon=0.4, random_state=0),
        Uniform(random_state=0),
    ):
        policy.fit(np.empty((6, 0)), y)
        n = 200_000
        freq = np.bincount(
            np.searchsorted(policy.classes_, policy.predict(np.empty((n, 0)))),
            minlength=3,
        )
        # 4 binomial standard errors
        assert_allclose(freq / n, policy.predict_proba(np.empty((1, 0)))[0], atol=5e-3)


def test_gaussian_ts_small_batches_match_predict_proba():
    # batches of 400 contexts x 3 arms take their normals from blocks
    # (skbandit/_random.py); the exact predict_proba is the reference
    y = make_feedback([0, 1, 2, 0, 1, 2], [0.3, 0.5, 0.1, 0.6, 0.2, 0.4])
    policy = GaussianThompsonSampling(noise_variance=0.3, random_state=0)
    policy.fit(np.empty((6, 0)), y)
    chosen = np.concatenate([policy.predict(np.empty((400, 0))) for _ in range(500)])
    freq = np.bincount(np.searchsorted(policy.classes_, chosen), minlength=3)
    assert_allclose(
        freq / chosen.size, policy.predict_proba(np.empty((1, 0)))[0], atol=5e-3
    )


def test_epsilon_greedy_proba_exact_and_ties():
    y = make_feedback([0, 1, 2], [1.0, 1.0, 0.0])
    proba = (
        EpsilonGreedy(epsilon=0.3)
        .fit(np.empty((3, 0)), y)
        .predict_proba(np.empty((1, 0)))
    )
    # epsilon/K + (1 - epsilon)/|greedy| on the two tied greedy arms
    assert_allclose(proba, [[0.1 + 0.35, 0.1 + 0.35, 0.1]], rtol=RTOL)


def test_ucb1_bounds_and_untried_arms():
    policy = UCB1(arms=[0, 1, 2]).fit(
        np.empty((3, 0)), make_feedback([0, 1, 1], [1, 0, 1])
    )
    bounds = policy.upper_bounds()
    # mean + sqrt(2 ln 3 / n_k); arm 2 never played
    assert_allclose(bounds[:2], [1 + np.sqrt(2 * np.log(3)), 0.5 + np.sqrt(np.log(3))])
    assert bounds[2] == np.inf
    assert_array_equal(policy.predict(np.empty((2, 0))), [2, 2])


def test_multi_armed_accepts_zero_columns_and_string_arms():
    y = make_feedback(["x", "y", "x"], [1.0, 0.0, 1.0])
    for cls in MULTI_ARMED:
        policy = cls(random_state=0).fit(np.empty((3, 0)), y)
        assert set(policy.predict(np.empty((5, 0)))) <= {"x", "y"}
        assert policy.predict_proba(np.empty((5, 0))).shape == (5, 2)
        assert not get_policy_tags(policy).contextual


def test_plain_labels_are_full_information():
    # every row reveals reward 1 for its label and 0 for the other arms
    policy = BernoulliThompsonSampling().fit(np.empty((3, 0)), ["a", "b", "a"])
    assert_allclose(policy.alpha_, [3, 2])
    assert_allclose(policy.beta_, [2, 3])
    assert policy.n_samples_seen_ == 3


# ------------------------------------------------------------ linear policies
def test_linear_posterior_matches_ridge_and_inverse_gram():
    X, actions, rewards, _ = _linear_log()
    lam, sigma2 = 2.0, 0.7
    policy = LinearThompsonSampling(regularization=lam, noise_variance=sigma2)
    policy.fit(X, make_feedback(actions, rewards))
    cov = policy.posterior_covariance()
    for k in range(3):
        Z = np.hstack([X[actions == k], np.ones(((actions == k).sum(), 1))])
        # reference 1: sklearn Ridge on the augmented design (no own intercept)
        ridge = Ridge(alpha=lam, fit_intercept=False).fit(Z, rewards[actions == k])
        assert_allclose(policy.coef_[k], ridge.coef_[:-1], rtol=1e-7)
        assert_allclose(policy.intercept_[k], ridge.coef_[-1], rtol=1e-7)
        # reference 2: sigma^2 (lambda I + Z^T Z)^{-1} by a dense inverse
        ref = sigma2 * np.linalg.inv(lam * np.eye(4) + Z.T @ Z)
        assert_allclose(cov[k], ref, rtol=1e-7)


def test_linear_online_updates_equal_batch_fit():
    # one row at a time (Sherman-Morrison / Woodbury path) == one batch
    X, actions, rewards, _ = _linear_log(n=120, d=8)
    batch = LinearThompsonSampling().fit(X, make_feedback(actions, rewards))
    online = LinearThompsonSampling(arms=[0, 1, 2])
    for i in range(X.shape[0]):
        online.partial_fit(
            X[i : i + 1], make_feedback(actions[i : i + 1], rewards[i : i + 1])
        )
    assert_allclose(online.coef_, batch.coef_, rtol=1e-7, atol=1e-10)
    assert_allclose(
        online.posterior_covariance(),
        batch.posterior_covariance(),
        rtol=1e-7,
        atol=1e-12,
    )


def test_linear_sampled_coef_covariance_and_independence_across_arms():
    X, actions, rewards, _ = _linear_log(n=60, d=2, n_arms=2)
    policy = LinearThompsonSampling(noise_variance=2.0).fit(
        X, make_feedback(actions, rewards)
    )
    draws = policy.sample_coef(n_draws=40_000, random_state=0)  # (n, K, d)
    cov = policy.posterior_covariance()
    for k in range(2):
        emp = np.cov(draws[:, k, :], rowvar=False)
        # sample covariance of 4e4 Gaussian draws: relative error ~ 1%
        assert_allclose(emp, cov[k], rtol=0.05, atol=0.03 * np.abs(cov[k]).max())
        # the *inverse* Gram (not the Gram, a known defect elsewhere)
        assert not np.allclose(emp, 2.0 * policy._gram[k], rtol=0.5)
    # independence: correlation between arm 0's and arm 1's draws ~ 0
    corr = np.corrcoef(draws[:, 0, :].T, draws[:, 1, :].T)[:3, 3:]
    assert_allclose(corr, 0.0, atol=0.03)


def test_linear_predict_draws_are_independent_across_arms():
    # Two arms, one context. With independent draws P(arm 1) is
    # Phi((m1 - m0) / sqrt(v0 + v1)); a shared draw z gives
    # P(m1 + s1 z > m0 + s0 z), which here is far from it.
    X, actions, rewards, _ = _linear_log(n=80, d=2, n_arms=2, seed=3)
    policy = LinearThompsonSampling(noise_variance=1.0, random_state=0)
    policy.fit(X, make_feedback(actions, rewards))
    x = np.array([[0.3, -0.2]])
    mean = policy.intercept_ + policy.coef_ @ x[0]
    z = np.append(x[0], 1.0)
    var = np.einsum("i,kij,j->k", z, policy.posterior_covariance(), z)
    p_indep = stats.norm.cdf((mean[1] - mean[0]) / np.sqrt(var.sum()))
    n = 200_000
    freq = (policy.predict(np.repeat(x, n, axis=0)) == 1).mean()
    assert_allclose(freq, p_indep, atol=4 * 0.5 / np.sqrt(n))
    proba = policy.predict_proba(x)[0, 1]
    assert_allclose(proba, p_indep, atol=4 * 0.5 / np.sqrt(policy.n_proba_draws))
    # small batches take their normal draws from blocks (skbandit/_random.py):
    # the same frequency over many calls
    freq_small = np.mean([(policy.predict(x[[0] * 250]) == 1) for _ in range(800)])
    assert_allclose(freq_small, p_indep, atol=4 * 0.5 / np.sqrt(n))


def test_linucb_bounds_formula():
    X, actions, rewards, _ = _linear_log(n=50, d=2, n_arms=2)
    policy = LinUCB(exploration=0.5, fit_intercept=False).fit(
        X, make_feedback(actions, rewards)
    )
    x = np.array([[0.5, 1.0]])
    for k in range(2):
        Z = X[actions == k]
        A = np.eye(2) + Z.T @ Z
        theta = np.linalg.solve(A, Z.T @ rewards[actions == k])
        ref = x[0] @ theta + 0.5 * np.sqrt(x[0] @ np.linalg.solve(A, x[0]))
        assert_allclose(policy.upper_bounds(x)[0, k], ref, rtol=1e-8)


# ------------------------------------------------------- generic behaviour
@pytest.mark.parametrize("cls", ALL)
def test_weighted_equals_repeated(cls):
    X, actions, rewards, _ = _linear_log(n=40, d=2, n_arms=2)
    rewards = (rewards > 0).astype(float)
    w = np.arange(40) % 3
    a = cls(random_state=0).fit(X, make_feedback(actions, rewards), sample_weight=w)
    rep = np.repeat(np.arange(40), w)
    b = cls(random_state=0).fit(X[rep], make_feedback(actions[rep], rewards[rep]))
    assert_allclose(a.predict_proba(X[:5]), b.predict_proba(X[:5]), atol=1e-7)


@pytest.mark.parametrize("cls", ALL)
def test_determinism_clone_and_pickle(cls):
    X, actions, rewards, _ = _linear_log(n=40, d=2, n_arms=2)
    y = make_feedback(actions, (rewards > 0).astype(float))
    a = cls(random_state=7).fit(X, y)
    b = clone(a).fit(X, y)
    c = pickle.loads(pickle.dumps(a))
    first = a.predict(X)
    assert_array_equal(first, b.predict(X))
    assert_array_equal(first, c.predict(X))
    # a second call draws afresh, the same way on every copy
    assert_array_equal(a.predict(X), c.predict(X))
    assert_allclose(a.predict_proba(X), c.predict_proba(X))


@pytest.mark.parametrize("cls", ALL)
def test_bad_input_errors(cls):
    X, actions, rewards, _ = _linear_log(n=20, d=2, n_arms=2)
    y = make_feedback(actions, (rewards > 0).astype(float))
    with pytest.raises(NotFittedError):
        cls().predict(X)
    with pytest.raises(ValueError, match=r"actions \[5\] are not among the arms"):
        cls(arms=[0, 1]).fit(X, make_feedback(np.append(actions[:-1], 5), y["reward"]))
    failed = cls(arms=[0, 1])
    with pytest.raises(ValueError, match="not among the arms"):
        failed.fit(X, make_feedback(np.full(20, 7), y["reward"]))
    with pytest.raises(NotFittedError):  # a failed first fit leaves it unfitted
        failed.predict(X)
    policy = cls(arms=[0, 1]).fit(X, y)
    before = policy.predict_proba(X)
    with pytest.raises(ValueError, match=r"actions \['z'\] are not among"):
        policy.partial_fit(X[:1], make_feedback(["z"], [1.0]))
    assert_allclose(policy.predict_proba(X), before)  # state unchanged
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cls().fit(X_nan, y)
    with pytest.raises(ValueError, match="NaN"):
        policy.predict(X_nan)
    with pytest.raises(ValueError, match="0 sample"):
        cls().partial_fit(X[:0], make_feedback([], []))


def test_online_start_from_prior_with_declared_arms():
    policy = BernoulliThompsonSampling(arms=["a", "b"], random_state=0)
    policy.partial_fit(np.empty((0, 0)), make_feedback(np.array([], dtype=str), []))
    assert_allclose(policy.predict_proba(np.empty((1, 0))), [[0.5, 0.5]], rtol=1e-7)
    policy.partial_fit(np.empty((1, 0)), make_feedback(["a"], [1.0]))
    assert_allclose(policy.alpha_, [2, 1])


def test_model_selection_with_feedback_in_y():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    actions = rng.integers(2, size=400)
    rewards = (np.where(actions == 1, X[:, 0], -X[:, 0]) > 0).astype(float)
    y = make_feedback(actions, rewards, 0.5)
    pipe = make_pipeline(StandardScaler(), LinearThompsonSampling(random_state=0))
    cv = cross_validate(pipe, X, y, cv=KFold(3))
    assert np.all(cv["test_score"] > 0.8)  # the optimal policy earns 1
    search = GridSearchCV(LinUCB(), {"exploration": [0.0, 5.0]}, cv=KFold(3)).fit(X, y)
    assert search.best_params_ == {"exploration": 0.0}


def test_score_with_labels_is_expected_reward_under_full_information():
    # with labels, score = mean_i pi(y_i | x_i): exact for EpsilonGreedy
    labels = np.array([0, 0, 1, 0])
    policy = EpsilonGreedy(epsilon=0.2).fit(np.empty((4, 0)), labels)
    # full information: arm 0 pays 3/4 on average, arm 1 pays 1/4 -> arm 0 greedy
    proba = np.array([0.9, 0.1])
    assert_allclose(policy.score(np.empty((4, 0)), labels), proba[labels].mean())


@pytest.mark.parametrize("cls", ALL)
def test_fast_input_path_agrees_with_validate_data(cls):
    # predict/predict_proba skip validate_data for a finite float64 ndarray
    # with the fitted width; every other input must behave as validate_data
    # makes it behave (conversion, errors, feature-name warnings).
    pd = pytest.importorskip("pandas")
    X, actions, rewards, _ = _linear_log(n=40, d=2, n_arms=2)
    y = make_feedback(actions, (rewards > 0).astype(float))
    policy = cls(random_state=0).fit(X, y)
    ref = policy.predict_proba(X[:5])
    for other in (X[:5].tolist(), X[:5].astype(np.float32), np.asfortranarray(X[:5])):
        assert_allclose(policy.predict_proba(other), ref, rtol=1e-6, atol=1e-7)
    for bad, match in (
        (X[:5, :1], "features"),
        (np.full((2, 2), np.inf), "infinity"),
        (X[:0], "0 sample"),
        (X[0], "2D array"),
    ):
        with pytest.raises(ValueError, match=match):
            policy.predict(bad)
    named = cls(random_state=0).fit(pd.DataFrame(X, columns=["a", "b"]), y)
    with pytest.warns(UserWarning, match="feature names"):
        named.predict(X[:5])
