"""Wasserstein-robust linear models.

References: (1) the same reformulated problem solved by cvxpy; (2) the exact
worst case, checked from both sides: a Lipschitz upper bound that holds for
every distribution in the ball, and explicit distributions in the ball (a
vanishing mass of one sample moved far along the dual-norm direction) whose
expected loss approaches mean + radius * L * ||w||_*.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification, make_regression

from skrobust.ambiguity import Wasserstein
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression
from skrobust.utils import LOSS_NAMES

SOLVER_RTOL = 1e-6


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=120, n_features=4, random_state=0)


@pytest.mark.parametrize("norm", [2, 1, "inf"])
def test_logistic_matches_cvxpy(binary, norm):
    X, y = binary
    params = dict(ambiguity=Wasserstein(0.2, norm=norm), alpha=0.0, tol=1e-9)
    fast = DROLogisticRegression(**params).fit(X, y)
    exact = DROLogisticRegression(**params, solver="cvxpy").fit(X, y)
    assert_allclose(fast.objective_, exact.objective_, rtol=SOLVER_RTOL)


@pytest.mark.parametrize("loss", ["absolute", "huber"])
def test_regression_matches_cvxpy(loss):
    X, y = make_regression(n_samples=80, n_features=3, noise=3.0, random_state=1)
    params = dict(
        ambiguity=Wasserstein(0.5), loss=LOSS_NAMES[loss], epsilon=2.0, tol=1e-9
    )
    fast = DROLinearRegression(**params).fit(X, y / 10)
    exact = DROLinearRegression(**params, solver="cvxpy").fit(X, y / 10)
    assert_allclose(fast.objective_, exact.objective_, rtol=SOLVER_RTOL)


def test_worst_case_value_is_attained_and_not_exceeded(binary):
    X, y = binary
    clf = DROLogisticRegression(Wasserstein(0.3, norm=2), alpha=0.0).fit(X, y)
    w, b = clf.coef_[0], clf.intercept_[0]
    sign = 2 * y - 1
    n = len(y)

    def mean_loss(Xq, weights, signs=sign):
        return np.dot(weights, np.logaddexp(0, -signs * (Xq @ w + b)))

    base = np.full(n, 1 / n)
    robust = clf.robust_risk_
    # explicit distributions in the ball: move mass m of sample 0 by
    # radius / m along -sign_0 * w / ||w|| (transport cost m * radius / m)
    direction = -sign[0] * w / np.linalg.norm(w)
    values = []
    for m in [1e-1, 1e-2, 1e-3, 1e-4]:
        Xq = np.vstack([X, X[:1] + (0.3 / m) * direction])
        weights = np.append(base, m)
        weights[0] -= m
        values.append(mean_loss(Xq, weights, np.append(sign, sign[0])))
    assert np.all(np.diff(values) > 0)
    assert values[-1] <= robust + 1e-12
    assert_allclose(values[-1], robust, rtol=1e-3)
    # any shift of each sample with total cost <= radius stays below the bound
    rng = np.random.default_rng(0)
    for _ in range(20):
        shifts = rng.normal(size=X.shape)
        costs = np.linalg.norm(shifts, axis=1)
        shifts *= 0.3 / np.dot(base, costs)
        assert mean_loss(X + shifts, base) <= robust + 1e-12


def test_zero_radius_is_erm(binary):
    X, y = binary
    a = DROLogisticRegression(Wasserstein(0.0), alpha=1e-2, tol=1e-10).fit(X, y)
    b = DROLogisticRegression("erm", alpha=1e-2, tol=1e-10).fit(X, y)
    assert_allclose(a.coef_, b.coef_, rtol=1e-6)


def test_penalty_formula_and_smoothing_bound():
    coef = np.array([[1.0], [-3.0], [0.5]])
    for norm, dual in [(2, np.sqrt(10.25)), (1, 3.0), ("inf", 4.5)]:
        ball = Wasserstein(0.5, norm=norm)
        value, _ = ball.penalty(coef, lipschitz=2.0)
        assert_allclose(value, 0.5 * 2.0 * dual)
        for tau in [1e-1, 1e-3]:
            smooth, _ = ball.penalty(coef, lipschitz=2.0, smoothing=tau)
            assert value <= smooth + 1e-15
            assert smooth <= value + ball.smoothing_error(tau, 3, 2.0) + 1e-15


def test_squared_loss_and_multiclass_are_refused(binary):
    X, y = binary
    with pytest.raises(ValueError, match="Lipschitz"):
        DROLinearRegression(Wasserstein(0.1), loss="squared_error").fit(
            X, y.astype(float)
        )
    y3 = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="Lipschitz"):
        DROLogisticRegression(Wasserstein(0.1)).fit(X, y3)


def test_bad_parameters(binary):
    X, y = binary
    with pytest.raises(ValueError, match="radius"):
        DROLogisticRegression(Wasserstein(-1.0)).fit(X, y)
    with pytest.raises(ValueError, match="norm"):
        DROLogisticRegression(Wasserstein(0.1, norm=3)).fit(X, y)
