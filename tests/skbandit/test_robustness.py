"""Numerical regimes and malformed feedback for policies and off-policy metrics.

Regression tests of issue 14 (sections 4 and 7): feedback missing a field,
propensities outside (0, 1], Gaussian Thompson sampling at large reward levels
and extreme scales, zero-count arms, zero-weight rows, tiny n.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from skbandit import (
    UCB1,
    BernoulliThompsonSampling,
    EpsilonGreedy,
    GaussianThompsonSampling,
    LinearThompsonSampling,
    LinUCB,
    Uniform,
    make_feedback,
)
from skbandit.metrics import estimate_policy_value

# quadrature of predict_proba is accurate to about 1e-9 (epsabs 1e-10)
QUAD_ATOL = 1e-8
ALL = [
    BernoulliThompsonSampling,
    GaussianThompsonSampling,
    EpsilonGreedy,
    UCB1,
    Uniform,
    LinearThompsonSampling,
    LinUCB,
]


def _state(policy):
    """Fitted arrays of a policy (public attributes ending in ``_``)."""
    return {
        k: v
        for k, v in vars(policy).items()
        if k.endswith("_") and not k.startswith("_") and isinstance(v, np.ndarray)
    }


def _log(n=40, n_arms=3, seed=0, d=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    actions = rng.integers(n_arms, size=n)
    rewards = rng.uniform(size=n)
    return X, actions, rewards


# --------------------------------------------------- feedback with few fields
def _two_field(actions, rewards, kind):
    if kind == "structured":
        y = np.empty(actions.shape[0], dtype=[("action", "i8"), ("reward", "f8")])
        y["action"], y["reward"] = actions, rewards
        return y
    if kind == "recarray":
        return np.rec.fromarrays([actions, rewards], names="action,reward")
    return pd.DataFrame({"action": actions, "reward": rewards})


@pytest.mark.parametrize("kind", ["structured", "recarray", "dataframe"])
@pytest.mark.parametrize("Policy", ALL)
def test_action_reward_only_feedback_is_read_as_feedback(Policy, kind):
    # before: a (action, reward) structured y lacked "propensity", so it was
    # taken for labels (classes_ became the (action, reward) records)
    X, actions, rewards = _log()
    ref = Policy(random_state=0).fit(X, make_feedback(actions, rewards))
    policy = Policy(random_state=0).fit(X, _two_field(actions, rewards, kind))
    assert_array_equal(policy.classes_, [0, 1, 2])
    for name, value in _state(ref).items():
        assert_allclose(getattr(policy, name), value, rtol=1e-12, err_msg=name)
    assert_allclose(policy.predict_proba(X), ref.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize(
    "fields, missing",
    [
        ([("action", "i8"), ("propensity", "f8")], "reward"),
        ([("reward", "f8"), ("propensity", "f8")], "action"),
        ([("arm", "i8"), ("payoff", "f8")], "action"),
    ],
)
def test_structured_y_missing_a_field_raises(fields, missing):
    y = np.zeros(4, dtype=fields)
    for policy in (EpsilonGreedy(), LinUCB()):
        with pytest.raises(ValueError, match=f"no .*'{missing}'"):
            policy.fit(np.ones((4, 2)), y)
        with pytest.raises(ValueError, match=f"no .*'{missing}'"):
            policy.partial_fit(np.ones((4, 2)), y)


def test_dataframe_missing_reward_column_raises():
    y = pd.DataFrame({"action": [0, 1], "propensity": [0.5, 0.5]})
    with pytest.raises(ValueError, match="no \\['reward'\\] column"):
        EpsilonGreedy().fit(np.empty((2, 0)), y)


def test_two_column_y_is_not_read_as_labels():
    y = np.column_stack([[0, 1, 1, 0], [1.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="2-d y is not read as bandit feedback"):
        EpsilonGreedy().fit(np.empty((4, 0)), y)


def test_score_and_evaluation_read_action_reward_propensity_dataframe():
    X, actions, _ = _log(n=60)
    rewards = (actions == 1).astype(float)
    y = make_feedback(actions, rewards, 1 / 3)
    frame = pd.DataFrame(
        {"action": actions, "reward": rewards, "propensity": np.full(60, 1 / 3)}
    )
    policy = EpsilonGreedy(random_state=0).fit(X, y)
    assert policy.score(X, frame) == policy.score(X, y)
    assert_allclose(
        estimate_policy_value(policy, X, frame, method="ips").value,
        estimate_policy_value(policy, X, y, method="ips").value,
        rtol=1e-15,
    )


# ---------------------------------------------------------------- propensities
@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, np.inf, -np.inf])
@pytest.mark.parametrize("Policy", ALL)
def test_fit_rejects_propensity_outside_unit_interval(Policy, bad):
    # before: fit read only actions and rewards and accepted any propensity
    X, actions, rewards = _log(n=10)
    y = make_feedback(actions, rewards, 0.5)
    y["propensity"][3] = bad
    for method in ("fit", "partial_fit"):
        with pytest.raises(ValueError, match="propensity .* outside \\(0, 1\\]"):
            getattr(Policy(), method)(X, y)


def test_unknown_propensities_are_allowed_for_learning_not_evaluation():
    X, actions, rewards = _log(n=10)
    y = make_feedback(actions, rewards)  # NaN: unknown
    policy = EpsilonGreedy().fit(X, y)
    with pytest.raises(ValueError, match="no logging propensities"):
        policy.score(X, y)


@pytest.mark.parametrize("bad", [0.0, 1.0 + 1e-9, np.inf])
def test_evaluation_rejects_propensity_outside_unit_interval(bad):
    X, actions, rewards = _log(n=10)
    y = make_feedback(actions, rewards, 0.5)
    policy = Uniform(arms=[0, 1, 2]).fit(X, y)
    y["propensity"][0] = bad
    for method in ("ips", "snips", "dr"):
        with pytest.raises(ValueError, match="propensit"):
            estimate_policy_value(policy, X, y, method=method, n_splits=1)
    with pytest.raises(ValueError, match="propensit"):
        policy.score(X, y)


# ------------------------------------------- Gaussian Thompson sampling proba
def _gts(actions, rewards, arms=(0, 1, 2), **params):
    n = len(actions)
    return GaussianThompsonSampling(arms=list(arms), **params).fit(
        np.empty((n, 0)), make_feedback(actions, rewards)
    )


def test_gaussian_proba_two_arms_closed_form():
    # reference: P(A > B) = Phi((mu_A - mu_B) / sqrt(s_A^2 + s_B^2)) for
    # independent normal posteriors
    policy = _gts([0, 0, 1, 1, 1], [2.0, 1.0, 0.5, 1.5, 0.0], arms=(0, 1))
    m, v = policy.means_, policy.variances_
    ref = stats.norm.cdf((m[0] - m[1]) / np.sqrt(v.sum()))
    proba = policy.predict_proba(np.empty((3, 0)))
    assert_allclose(proba[:, 0], ref, atol=QUAD_ATOL)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


def test_gaussian_proba_unequal_variances_against_monte_carlo():
    # reference: 4e6 joint posterior draws (Monte Carlo SE below 2.5e-4)
    actions = [0] * 30 + [1] * 2 + [2] * 300
    rng = np.random.default_rng(3)
    rewards = np.r_[rng.normal(0.2, 1, 30), [0.9, -0.1], rng.normal(0.1, 1, 300)]
    policy = _gts(actions, rewards, arms=(0, 1, 2, 3))  # arm 3: never played
    draws = policy.means_ + np.sqrt(policy.variances_) * np.random.default_rng(
        0
    ).standard_normal((4_000_000, 4))
    ref = np.bincount(draws.argmax(axis=1), minlength=4) / draws.shape[0]
    assert_allclose(policy.predict_proba(np.empty((1, 0)))[0], ref, atol=1.5e-3)


@pytest.mark.parametrize("level", [1e6, 1e9, 1e12])
def test_gaussian_proba_exact_at_large_reward_levels(level):
    # before: the quadrature ran over t in [min ppf, max ppf], a range from the
    # prior at 0 to the level, around posteriors of width 7e-4: off by 1e-5 at
    # 1e9 and 5e-3 at 1e12 (taking up to 17 s), NaN in the report
    rng = np.random.default_rng(0)
    actions = np.arange(400) % 2  # equal counts: equal shrinkage to the prior
    rewards = level + 0.01 * rng.normal(size=400)
    policy = _gts(actions, rewards, noise_variance=1e-4)  # arm 2: prior at 0
    proba = policy.predict_proba(np.empty((2, 0)))
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert proba[0, 2] < 1e-12  # the prior at 0 is far below either arm
    # reference: the two-arm closed form Phi(d / sqrt(v_0 + v_1)) of the two
    # played arms (arm 2 never wins)
    d = (policy.means_[0] - policy.means_[1]) / np.sqrt(policy.variances_[:2].sum())
    assert 0.01 < stats.norm.cdf(d) < 0.99  # a non-degenerate comparison
    assert_allclose(proba[0, 0], stats.norm.cdf(d), atol=1e-6)


# rewards are the level plus multiples of 1/8: exact in float64 up to 1e12
_OFFSETS = st.lists(st.integers(-40, 40), min_size=2, max_size=12)


@settings(max_examples=25, deadline=None)
@given(
    offsets=_OFFSETS,
    exponent=st.integers(6, 12),
    seed=st.integers(0, 2**16),
)
def test_gaussian_proba_invariant_to_reward_shift(offsets, exponent, seed):
    rng = np.random.default_rng(seed)
    actions = rng.integers(3, size=len(offsets))
    small = np.asarray(offsets) / 8.0
    shift = 10.0**exponent
    base = _gts(actions, small, noise_variance=0.25)
    moved = _gts(actions, shift + small, prior_mean=shift, noise_variance=0.25)
    proba = moved.predict_proba(np.empty((1, 0)))
    assert np.all(np.isfinite(proba))
    assert_allclose(proba, base.predict_proba(np.empty((1, 0))), atol=QUAD_ATOL)


@settings(max_examples=25, deadline=None)
@given(
    exponent=st.integers(-150, 150),
    n=st.integers(2, 50),
    seed=st.integers(0, 2**16),
)
def test_gaussian_proba_invariant_to_reward_scale(exponent, n, seed):
    # rewards x s, prior mean x s, both variances x s^2: same standardized
    # posterior, same selection probabilities
    rng = np.random.default_rng(seed)
    actions = rng.integers(3, size=n)
    rewards = rng.normal(size=n)
    s = 10.0**exponent
    base = _gts(actions, rewards, prior_mean=0.5, prior_variance=2.0)
    scaled = _gts(
        actions,
        rewards * s,
        prior_mean=0.5 * s,
        prior_variance=2.0 * s * s,
        noise_variance=s * s,
    )
    assert_allclose(scaled.means_, base.means_ * s, rtol=1e-12)
    assert_allclose(scaled.variances_, base.variances_ * s * s, rtol=1e-12)
    proba = scaled.predict_proba(np.empty((1, 0)))
    assert_allclose(proba, base.predict_proba(np.empty((1, 0))), atol=QUAD_ATOL)


def test_gaussian_draws_follow_proba_at_large_level():
    # predict draws relative to the prior mean too: frequencies match proba
    rng = np.random.default_rng(1)
    actions = rng.integers(3, size=30)
    rewards = 1e12 + rng.integers(-4, 5, size=30) / 4.0
    policy = _gts(actions, rewards, prior_mean=1e12, random_state=0)
    proba = policy.predict_proba(np.empty((1, 0)))[0]
    picks = policy.predict(np.empty((200_000, 0)))
    freq = np.bincount(picks, minlength=3) / picks.shape[0]
    assert_allclose(freq, proba, atol=5e-3)  # binomial SE below 1.2e-3


# --------------------------------------------- zero weights, zero counts, tiny n
@pytest.mark.parametrize("Policy", ALL)
def test_zero_weight_rows_equal_dropped_rows(Policy):
    X, actions, rewards = _log(n=30)
    w = np.ones(30)
    w[::3] = 0.0
    w[actions == 2] = 0.0  # arm 2: logged, but only with weight zero
    keep = w > 0
    arms = [0, 1, 2]
    weighted = Policy(arms=arms, random_state=0).fit(
        X, make_feedback(actions, rewards), sample_weight=w
    )
    dropped = Policy(arms=arms, random_state=0).fit(
        X[keep], make_feedback(actions[keep], rewards[keep])
    )
    for name, value in _state(dropped).items():
        assert_allclose(getattr(weighted, name), value, rtol=1e-10, err_msg=name)
    assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("Policy", ALL)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_tiny_n_and_unplayed_arms_give_probabilities(Policy, n):
    X, actions, rewards = _log(n=n, n_arms=1)  # every round on arm 0
    policy = Policy(arms=[0, 1, 2], random_state=0).fit(
        X, make_feedback(actions, rewards)
    )
    proba = policy.predict_proba(X)
    assert proba.shape == (n, 3)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert set(policy.predict(X)) <= {0, 1, 2}


def test_all_zero_weight_batch_is_refused_and_leaves_policy_unchanged():
    # the project's convention (tests/test_hardening.py): weights that are
    # all zero are refused with a clear error, and the policy is untouched
    X, actions, rewards = _log(n=20)
    y = make_feedback(actions, rewards)
    policy = GaussianThompsonSampling(random_state=0).fit(X, y)
    before = policy.predict_proba(X[:1])
    with pytest.raises(ValueError, match="non-zero"):
        policy.partial_fit(X, y, sample_weight=np.zeros(20))
    assert_allclose(policy.predict_proba(X[:1]), before, rtol=1e-15)


# ------------------------------------------------------- off-policy evaluation
def test_dr_with_an_arm_logged_only_at_zero_weight():
    # before: the per-arm reward model was fit on rows of total weight zero
    # (a raw scikit-learn error); now such an arm counts as never logged
    X, actions, _ = _log(n=80, seed=2)
    rewards = X[:, 0] * actions + 1.0
    y = make_feedback(actions, rewards, 1 / 3)
    policy = Uniform(arms=[0, 1, 2]).fit(X, y)
    w = np.where(actions == 2, 0.0, 1.0)
    keep = w > 0
    got = estimate_policy_value(policy, X, y, method="dr", sample_weight=w, n_splits=1)
    ref = estimate_policy_value(
        policy, X[keep], y[keep], method="dr", n_splits=1
    )  # the same log without the zero-weight rows
    assert_allclose(got.value, ref.value, rtol=1e-12)
    assert_allclose(got.std_error, ref.std_error, rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-150, 1e-20, 1e20, 1e150, 1e300])
@pytest.mark.parametrize("method", ["ips", "snips", "dr"])
def test_policy_value_and_std_error_scale_with_rewards(scale, method):
    # the value and its standard error are linear in the rewards; before, the
    # standard error squared the influence terms and overflowed near 1e155
    X, actions, _ = _log(n=60, seed=4)
    rewards = X[:, 0] * actions + 1.0
    policy = EpsilonGreedy(epsilon=0.5).fit(X, make_feedback(actions, rewards))
    base = estimate_policy_value(
        policy, X, make_feedback(actions, rewards, 1 / 3), method=method, random_state=0
    )
    got = estimate_policy_value(
        policy,
        X,
        make_feedback(actions, rewards * scale, 1 / 3),
        method=method,
        random_state=0,
    )
    assert_allclose(got.value, base.value * scale, rtol=1e-10)
    assert_allclose(got.std_error, base.std_error * scale, rtol=1e-10)
