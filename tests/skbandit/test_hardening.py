"""Hardening of skbandit: generic checks on its estimators and functions, and its own.

The generic checks (malformed input, round trips, inputs untouched,
determinism, scales) are written once in ``tests/_hardening.py`` and run here
on skbandit's estimators and functions; this module adds the skbandit-specific
cases: off-policy values, a thousand arms, partial_fit, environments.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose

from tests._hardening import *  # noqa: F403  (the generic checks, collected here)
from tests._hardening import (
    ESTIMATORS,
    HYPOTHESIS,
    NAN_MSG,
    _assert_clear_error,
    _assert_finite_outputs,
    _fit,
    _make,
    _package,
    _valid_data,
)
from tests._hardening_functions import *  # noqa: F403  (collected here)

PACKAGE = "skbandit"


@HYPOTHESIS
@given(
    propensities=hnp.arrays(
        np.float64,
        10,
        elements=st.one_of(
            st.floats(-1.0, 2.0, allow_subnormal=False),
            st.sampled_from([0.0, 1e-9, 1 - 1e-9, 1.0, np.nan]),
        ),
    )
)
def test_off_policy_propensities(propensities):
    from skbandit.metrics import ips_value, snips_value

    rewards = np.linspace(0.0, 1.0, 10)
    target = np.full(10, 0.5)
    valid = np.all((propensities > 0) & (propensities <= 1))
    for func in (ips_value, snips_value):
        if not valid:
            with pytest.raises(ValueError) as excinfo:
                func(rewards, propensities, target)
            _assert_clear_error(excinfo, r"propensit")
            continue
        value = func(rewards, propensities, target)
        ratio = target / propensities
        # closed forms of IPS and self-normalized IPS
        expected = (
            np.mean(ratio * rewards)
            if func is ips_value
            else np.sum(ratio * rewards) / np.sum(ratio)
        )
        assert np.isfinite(value)
        assert_allclose(value, expected, rtol=1e-12)


def test_off_policy_subnormal_propensities():
    from skbandit.metrics import dr_value, ips_value, snips_value

    rewards, target = np.linspace(0.0, 1.0, 10), np.full(10, 0.5)
    tiny = np.full(10, 2.2e-309)  # 0.5 / tiny overflows float64
    for func in (ips_value, snips_value):
        with pytest.raises(ValueError) as excinfo:
            func(rewards, tiny, target)
        _assert_clear_error(excinfo, r"overflow")
    with pytest.raises(ValueError) as excinfo:
        dr_value(rewards, tiny, target, rewards, rewards)
    _assert_clear_error(excinfo, r"overflow")


N_ARMS = 1000


@pytest.mark.parametrize(
    "name",
    [
        "BernoulliThompsonSampling",
        "GaussianThompsonSampling",
        "EpsilonGreedy",
        "UCB1",
        "Uniform",
        "LinUCB",
        "LinearThompsonSampling",
    ],
)
def test_a_thousand_arms(name):
    import skbandit
    from skbandit import make_feedback

    rng = np.random.default_rng(0)
    n = 3000
    contextual = name.startswith("Lin")
    X = rng.normal(size=(n, 2)) if contextual else np.zeros((n, 0))
    actions = rng.integers(N_ARMS, size=n)
    rewards = rng.binomial(1, np.linspace(0, 1, N_ARMS)[actions]).astype(float)
    feedback = make_feedback(actions, rewards, np.full(n, 1.0 / N_ARMS))
    params = {"arms": np.arange(N_ARMS)}
    policy = getattr(skbandit, name)(**params)
    if "random_state" in policy.get_params():
        policy.set_params(random_state=0)
    policy.fit(X, feedback)
    chosen = policy.predict(X[:50])
    assert np.all(np.isin(chosen, np.arange(N_ARMS)))
    proba = policy.predict_proba(X[:50])
    assert proba.shape == (50, N_ARMS)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    # posterior sampling and LinUCB already prefer good arms after three
    # rounds per arm (UCB1 first plays the arms never played, greedy ties)
    if name not in ("Uniform", "UCB1", "EpsilonGreedy"):
        assert np.linspace(0, 1, N_ARMS)[chosen].mean() > 0.5


def test_simulations_with_a_thousand_arms():
    from skbandit import BernoulliThompsonSampling
    from skbandit.environments import BernoulliArms, simulate
    from skbandit.experiment import TopTwoThompsonSampling, simulate_best_arm

    result = simulate(
        BernoulliThompsonSampling(),
        BernoulliArms(np.linspace(0, 1, N_ARMS)),
        n_rounds=200,
        batch_size=50,
        random_state=0,
    )
    assert np.all(np.isfinite(result.cumulative_regret))
    # pseudo-regret per round is at most the gap of the worst arm, 1
    assert 0 <= result.cumulative_regret[0, -1] <= 200
    design = TopTwoThompsonSampling(n_arms=N_ARMS, n_batches=2, batch_size=500)
    best = simulate_best_arm(
        design, means=np.linspace(0, 1, N_ARMS), n_repeats=2, random_state=0
    )
    assert np.all(np.isfinite(best.simple_regret))
    assert np.all((best.simple_regret >= 0) & (best.simple_regret <= 1))


POLICIES = [cls for cls in ESTIMATORS if _package(_make(cls)) == "skbandit"]


@pytest.mark.parametrize("cls", POLICIES, ids=[c.__name__ for c in POLICIES])
def test_partial_fit_malformed_feedback(cls):
    from skbandit import make_feedback

    est = _make(cls, arms=[0, 1, 2])
    X, y = _valid_data(est)
    _fit(est, X, y)
    # an arm that was not declared
    unknown = make_feedback(np.full(4, 7), np.ones(4))
    with pytest.raises((ValueError, TypeError)) as excinfo:
        est.partial_fit(X[:4], unknown)
    _assert_clear_error(excinfo, r"arm|action|class|label|unknown|not")
    # a NaN reward slipped into a hand-made structured array
    bad = y[:4].copy()
    bad["reward"][0] = np.nan
    with pytest.raises((ValueError, TypeError)) as excinfo:
        est.partial_fit(X[:4], bad)
    _assert_clear_error(excinfo, NAN_MSG)
    # a batch with a different number of features
    with pytest.raises((ValueError, TypeError)) as excinfo:
        est.partial_fit(X[:4, :2], y[:4])
    _assert_clear_error(excinfo, r"features|shape")
    # the policy is still usable after the refused batches
    _assert_finite_outputs(est, X)


def _environment_cases():
    from skbandit.environments import (
        BernoulliArms,
        GaussianArms,
        LinearContextualBandit,
        SupervisedBandit,
    )
    from skbandit.experiment import TopTwoThompsonSampling, simulate_best_arm

    def design():
        return TopTwoThompsonSampling(n_arms=2, n_batches=1, batch_size=4)

    return {
        "bernoulli_nan": (lambda: BernoulliArms([np.nan, 0.5]), NAN_MSG),
        "bernoulli_not_probability": (lambda: BernoulliArms([2.0, 0.5]), r"\[0, 1\]"),
        "bernoulli_empty": (lambda: BernoulliArms([]), r"0 sample"),
        "gaussian_nan": (lambda: GaussianArms([np.nan, 0.5]), NAN_MSG),
        "gaussian_negative_std": (
            lambda: GaussianArms([0.0, 0.5], noise_std=-1),
            r"noise_std",
        ),
        "linear_no_arms": (lambda: LinearContextualBandit(n_arms=0), r"n_arms"),
        "linear_nan_coef": (
            lambda: LinearContextualBandit(coef=np.array([[np.nan, 1.0]])),
            NAN_MSG,
        ),
        "supervised_nan": (
            lambda: SupervisedBandit(np.array([[np.nan], [1.0]]), [0, 1]),
            NAN_MSG,
        ),
        "supervised_empty": (
            lambda: SupervisedBandit(np.zeros((0, 1)), []),
            r"0 sample",
        ),
        "best_arm_nan_means": (
            lambda: simulate_best_arm(design(), means=[np.nan, 0.0], n_repeats=1),
            NAN_MSG,
        ),
        "best_arm_wrong_means": (
            lambda: simulate_best_arm(design(), means=[0.0], n_repeats=1),
            r"shape",
        ),
        "best_arm_negative_noise": (
            lambda: simulate_best_arm(design(), noise_std=-1.0, n_repeats=1),
            r"noise_std",
        ),
    }


ENVIRONMENT_CASES = _environment_cases()


@pytest.mark.parametrize("case", list(ENVIRONMENT_CASES))
def test_environments_and_experiments_reject_bad_input(case):
    make, match = ENVIRONMENT_CASES[case]
    with pytest.raises((ValueError, TypeError)) as excinfo:
        make()
    _assert_clear_error(excinfo, match)
