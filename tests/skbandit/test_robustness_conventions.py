"""skbandit on the shared conventions (issue 15, D).

Intervals come back with ``low`` / ``high`` (SciPy's shape) and every
sample-weight check is :mod:`skrobust.utils._validation`'s.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from skbandit import GaussianThompsonSampling, LinearThompsonSampling, make_feedback
from skbandit.metrics import estimate_policy_value, ips_value, snips_value


class _Fixed:
    """A target policy with fixed action probabilities."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = np.empty((len(X), 2))
        p[:, 0] = 0.25
        p[:, 1] = 0.75
        return p


def _log(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    actions = rng.integers(0, 2, n)
    rewards = rng.normal(size=n) + actions
    return X, actions, rewards, make_feedback(actions, rewards, np.full(n, 0.5))


@pytest.mark.parametrize("n", [2, 5, 50])
@pytest.mark.parametrize("level", [0.5, 0.9, 0.99])
def test_policy_value_interval_has_low_and_high(n, level):
    X, a, r, y = _log(n)
    res = estimate_policy_value(_Fixed(), X, y, method="ips", confidence_level=level)
    ci = res.confidence_interval
    low, high = ci
    assert (ci.low, ci.high) == (low, high) == (res.ci_low, res.ci_high)
    # closed form of the IPS normal interval: terms t_i = pi(a_i) r_i / 0.5,
    # value = mean(t), se = sqrt(sum (t_i - value)^2) / n
    t = np.where(a == 1, 0.75, 0.25) * r / 0.5
    value = t.mean()
    se = np.sqrt(np.sum((t - value) ** 2)) / n
    z = stats.norm.ppf(0.5 + level / 2)
    assert_allclose([ci.low, ci.high], [value - z * se, value + z * se], rtol=1e-12)


@pytest.mark.parametrize("func", [ips_value, snips_value])
@pytest.mark.parametrize(
    "weight, match",
    [
        ([1.0, -1.0, 1.0], "negative"),
        ([0.0, 0.0, 0.0], "sums to zero"),
        ([1.0, np.nan, 1.0], "NaN or infinite"),
        ([1.0, 1.0], "shape"),
    ],
)
def test_ope_weights_checked_by_the_shared_checker(func, weight, match):
    with pytest.raises(ValueError, match=f"sample_weight.*{match}"):
        func([1.0, 2.0, 3.0], [0.5] * 3, [0.5] * 3, sample_weight=weight)


def test_ope_column_weights_still_accepted():
    r, p, t = [1.0, 2.0, 3.0], [0.5] * 3, [0.25, 0.5, 1.0]
    w = np.array([1.0, 2.0, 1.0])
    assert_allclose(ips_value(r, p, t, sample_weight=w[:, None]), ips_value(r, p, t, w))
    # weighted IPS by hand: sum w_i t_i / p_i r_i / sum w
    assert_allclose(ips_value(r, p, t, w), (0.5 * 1 + 2 * 2 + 6) / 4)


def test_score_refuses_negative_weights():
    # before: score on full-information labels averaged with the weights as
    # given, so a negative weight gave a silent number outside [0, 1]
    X, a, r, y = _log(20)
    policy = LinearThompsonSampling(random_state=0).fit(X, y)
    w = np.ones(20)
    w[0] = -5.0
    with pytest.raises(ValueError, match="[Nn]egative"):
        policy.score(X, a, sample_weight=w)
    assert 0.0 <= policy.score(X, a, sample_weight=np.abs(w)) <= 1.0


def test_fit_weights_all_zero_refused():
    X, a, r, y = _log(10)
    with pytest.raises(ValueError, match="non-zero|sums to zero"):
        GaussianThompsonSampling(random_state=0).fit(X, y, sample_weight=np.zeros(10))
