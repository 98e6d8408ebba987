"""Off-policy estimates on simulated logs whose target value is known exactly."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold

from skbandit import LinUCB, Uniform, make_feedback
from skbandit.metrics import (
    dr_value,
    estimate_policy_value,
    ips_value,
    make_policy_scorer,
    snips_value,
)

METHODS = ["ips", "snips", "dr"]
# Arm means: b_a + theta_a . x with x ~ N(0, I_2).
B = np.array([0.2, 0.5, 0.1])
THETA = np.array([[1.0, 0.5], [-0.8, 0.3], [0.2, -1.0]])
NOISE = 0.3
# The target plays arm 1 when x0 > 0 and arm 0 otherwise, so its value is
# (b0 + b1)/2 + (theta_1[0] - theta_0[0]) * E[x0 1{x0 > 0}], and
# E[x0 1{x0 > 0}] = 1/sqrt(2 pi)  (half-normal mean times 1/2).
TRUE_VALUE = (B[0] + B[1]) / 2 + (THETA[1, 0] - THETA[0, 0]) / np.sqrt(2 * np.pi)


class ThresholdPolicy:
    """Target policy with a closed-form value (see TRUE_VALUE)."""

    classes_ = np.array([0, 1, 2])

    def predict_proba(self, X):
        proba = np.zeros((len(X), 3))
        proba[:, 1] = X[:, 0] > 0
        proba[:, 0] = X[:, 0] <= 0
        return proba


def _log(n, rng, noise=NOISE, theta=THETA):
    X = rng.standard_normal((n, 2))
    # logging policy: softmax of (-x0, x0, 0) / 2, known exactly; it leans
    # towards the target's arms, so the importance weights stay below ~4
    scores = np.stack([-X[:, 0], X[:, 0], np.zeros(n)], axis=1) / 2
    mu = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    actions = (rng.random(n)[:, None] > np.cumsum(mu, axis=1)).sum(axis=1)
    mean = B[actions] + np.einsum("nd,nd->n", X, theta[actions])
    rewards = mean + noise * rng.standard_normal(n)
    return X, make_feedback(actions, rewards, mu[np.arange(n), actions])


def _estimates(n_repeats, n, seed, **kwargs):
    rng = np.random.default_rng(seed)
    out = {m: [] for m in METHODS}
    for _ in range(n_repeats):
        X, y = _log(n, rng)
        for m in METHODS:
            out[m].append(
                estimate_policy_value(
                    ThresholdPolicy(), X, y, method=m, random_state=0, **kwargs
                )
            )
    return out


def test_fixed_seed_estimates_near_truth():
    est = _estimates(1, 3000, seed=0)
    for m in METHODS:
        r = est[m][0]
        assert abs(r.value - TRUE_VALUE) < 4 * r.std_error, m
        assert r.ci_low < r.value < r.ci_high


def test_unbiased_over_repeated_draws():
    est = _estimates(60, 400, seed=1)
    for m in METHODS:
        values = np.array([r.value for r in est[m]])
        # the mean of 60 estimates is within 4 of its standard errors
        assert abs(values.mean() - TRUE_VALUE) < 4 * values.std() / np.sqrt(60), m


@pytest.mark.slow
def test_confidence_interval_coverage():
    est = _estimates(1000, 500, seed=2)
    for m in METHODS:
        values = np.array([r.value for r in est[m]])
        covered = np.mean([r.ci_low <= TRUE_VALUE <= r.ci_high for r in est[m]])
        # nominal 95%; binomial sd of the coverage over 1000 runs is 0.007
        assert 0.925 <= covered <= 0.975, (m, covered)
        assert abs(values.mean() - TRUE_VALUE) < 4 * values.std() / np.sqrt(1000)


class AlwaysArm2:
    classes_ = np.array([0, 1, 2])

    def predict_proba(self, X):
        return np.tile([0.0, 0.0, 1.0], (len(X), 1))


def test_dr_per_arm_model_beats_additive_model():
    # Arm 2 pays a constant; arms 0 and 1 have their own slopes. A single
    # model on (x, one-hot action) shares one slope across arms, so its
    # prediction for arm 2 varies with x and its DR estimate of "always play
    # arm 2" is noisier. Reference: the additive DR computed by hand below.
    theta = np.array([[1.0, 0.5], [-0.8, 0.3], [0.0, 0.0]])
    X, y = _log(4000, np.random.default_rng(3), noise=0.05, theta=theta)
    target = AlwaysArm2()
    ours = estimate_policy_value(
        target, X, y, reward_model=LinearRegression(), random_state=0
    )
    assert abs(ours.value - B[2]) < 4 * ours.std_error
    onehot = np.eye(3)[y["action"]]
    additive = LinearRegression().fit(np.hstack([X, onehot]), y["reward"])
    q = np.stack(
        [
            additive.predict(np.hstack([X, np.tile(np.eye(3)[k], (len(X), 1))]))
            for k in range(3)
        ],
        axis=1,
    )
    proba = target.predict_proba(X)
    t = proba[np.arange(len(X)), y["action"]]
    terms = (proba * q).sum(1) + t / y["propensity"] * (
        y["reward"] - q[np.arange(len(X)), y["action"]]
    )
    additive_se = terms.std() / np.sqrt(len(X))
    assert ours.std_error < 0.5 * additive_se
    ips = estimate_policy_value(target, X, y, method="ips")
    assert ours.std_error < 0.75 * ips.std_error


def test_array_level_estimators_closed_form():
    r = np.array([1.0, 0.0, 2.0])
    p = np.array([0.5, 0.25, 1.0])
    t = np.array([1.0, 0.5, 0.0])
    # by hand: ratios (2, 2, 0)
    assert_allclose(ips_value(r, p, t), (2 * 1 + 2 * 0 + 0) / 3)
    assert_allclose(snips_value(r, p, t), (2 * 1) / (2 + 2))
    assert_allclose(
        dr_value(r, p, t, [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]),
        ((1 + 2 * 0.5) + (1 + 2 * -0.5) + 1.0) / 3,
    )
    # weights equal repeated rows
    assert_allclose(
        ips_value(r, p, t, sample_weight=[2, 1, 1]),
        ips_value(np.r_[r, r[:1]], np.r_[p, p[:1]], np.r_[t, t[:1]]),
    )


def test_bad_input():
    X, y = _log(50, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no logging propensities"):
        estimate_policy_value(
            ThresholdPolicy(), X, make_feedback(y["action"], y["reward"])
        )
    with pytest.raises(ValueError, match=r"propensities must lie in \(0, 1\]"):
        ips_value([1.0], [0.0], [1.0])
    policy = Uniform(arms=[0, 1]).fit(X[:2], make_feedback([0, 1], [0.0, 1.0]))
    with pytest.raises(ValueError, match=r"logged actions \[2\] are not among"):
        estimate_policy_value(policy, X, y)


def test_scorers_select_the_better_policy_from_logs():
    X, y = _log(1500, np.random.default_rng(4))
    for method in METHODS:
        search = GridSearchCV(
            LinUCB(),
            {"exploration": [0.0], "regularization": [1.0, 1e6]},
            scoring=make_policy_scorer(method),
            cv=KFold(3),
        ).fit(X, y)
        # a ridge penalty of 1e6 shrinks every arm to 0: a worse policy
        assert search.best_params_["regularization"] == 1.0
    # the default score of a policy is the SNIPS estimate
    policy = LinUCB().fit(X, y)
    assert_allclose(
        policy.score(X, y), estimate_policy_value(policy, X, y, method="snips").value
    )
