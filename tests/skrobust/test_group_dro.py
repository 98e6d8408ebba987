"""Tests of group DRO (skrobust.subpopulation.GroupDRO*)."""

import pickle

import cvxpy as cp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge

from skrobust.subpopulation import GroupDROLinearRegression, GroupDROLogisticRegression

# the smoothed dual is shrunk to 1e-7 of the loss scale and L-BFGS-B stops at
# a projected gradient of 1e-6 (tightened to 1e-9 here): objective values
# agree with Clarabel's to about 1e-7, coefficients to about 1e-4
RTOL_RISK = 1e-6
ATOL_COEF = 1e-4


def _data(seed=0, n=120):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    groups = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1])
    slope = np.where(groups == "c", -1.0, 1.0)
    y = slope * X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    return X, y, groups


def _cvxpy_group_dro(X, losses_fn, groups, l2, adjustment=0.0, n_outputs=None):
    """Reference: the epigraph form min t s.t. every group risk <= t (Clarabel)."""
    shape = X.shape[1] if n_outputs is None else (X.shape[1], n_outputs)
    coef = cp.Variable(shape)
    intercept = cp.Variable() if n_outputs is None else cp.Variable(n_outputs)
    losses = losses_fn(coef, intercept)
    t = cp.Variable()
    constraints = []
    for label in np.unique(groups):
        mask = groups == label
        offset = adjustment / np.sqrt(mask.sum())
        constraints.append(
            cp.sum(losses[np.flatnonzero(mask)]) / mask.sum() + offset <= t
        )
    problem = cp.Problem(cp.Minimize(t + 0.5 * l2 * cp.sum_squares(coef)), constraints)
    problem.solve(solver=cp.CLARABEL)
    return problem.value, coef.value, intercept.value


def _tight(est):
    return est.set_params(tol=1e-9, max_iter=5000)


def test_regression_matches_cvxpy():
    X, y, groups = _data()
    reg = _tight(GroupDROLinearRegression(l2_reg=0.1)).fit(X, y, groups=groups)
    value, coef, intercept = _cvxpy_group_dro(
        X, lambda c, b: cp.square(y - X @ c - b), groups, 0.1
    )
    ours = reg.worst_group_risk_ + 0.05 * np.sum(reg.coef_**2)
    assert_allclose(ours, value, rtol=RTOL_RISK)
    assert_allclose(reg.coef_, coef, atol=ATOL_COEF)
    assert_allclose(reg.intercept_, intercept, atol=ATOL_COEF)
    assert_allclose(reg.group_risks_.max(), reg.worst_group_risk_)
    # the worst case over groups is a distribution on the simplex
    assert_allclose(reg.group_weights_.sum(), 1.0)
    assert list(reg.groups_) == ["a", "b", "c"]


def test_binary_logistic_matches_cvxpy():
    X, y, groups = _data(1)
    labels = (y > 0).astype(int)
    clf = _tight(GroupDROLogisticRegression(l2_reg=0.05))
    clf.fit(X, labels, groups=groups)
    sign = 2.0 * labels - 1.0
    value, coef, intercept = _cvxpy_group_dro(
        X,
        lambda c, b: cp.logistic(-cp.multiply(sign, X @ c + b)),
        groups,
        0.05,
    )
    ours = clf.worst_group_risk_ + 0.025 * np.sum(clf.coef_**2)
    assert_allclose(ours, value, rtol=RTOL_RISK)
    assert_allclose(clf.coef_.ravel(), coef, atol=ATOL_COEF)


def test_multinomial_matches_cvxpy():
    X, y, groups = _data(2)
    labels = np.digitize(y, [-0.5, 0.5])
    clf = _tight(GroupDROLogisticRegression(l2_reg=0.1))
    clf.fit(X, labels, groups=groups)
    onehot = np.eye(3)[labels]

    def losses(c, b):
        raw = X @ c + np.ones((X.shape[0], 1)) @ cp.reshape(b, (1, 3), order="C")
        return cp.log_sum_exp(raw, axis=1) - cp.sum(cp.multiply(onehot, raw), axis=1)

    value, _, _ = _cvxpy_group_dro(X, losses, groups, 0.1, n_outputs=3)
    ours = clf.worst_group_risk_ + 0.05 * np.sum(clf.coef_**2)
    assert_allclose(ours, value, rtol=RTOL_RISK)
    assert clf.predict_proba(X).shape == (X.shape[0], 3)


def test_group_adjustment_matches_cvxpy():
    X, y, groups = _data(3)
    reg = _tight(GroupDROLinearRegression(group_adjustment=2.0, l2_reg=0.1))
    reg.fit(X, y, groups=groups)
    value, _, _ = _cvxpy_group_dro(
        X, lambda c, b: cp.square(y - X @ c - b), groups, 0.1, adjustment=2.0
    )
    counts = np.array([np.sum(groups == g) for g in reg.groups_])
    adjusted = reg.group_risks_ + 2.0 / np.sqrt(counts)
    assert_allclose(adjusted.max() + 0.05 * np.sum(reg.coef_**2), value, rtol=1e-5)


def test_worst_group_improves_on_erm():
    X, y, groups = _data(4, n=400)
    erm = Ridge(alpha=1e-8).fit(X, y)
    erm_worst = max(
        np.mean((erm.predict(X[groups == g]) - y[groups == g]) ** 2)
        for g in np.unique(groups)
    )
    reg = GroupDROLinearRegression().fit(X, y, groups=groups)
    # ERM fits the majority slope; group "c" has the opposite slope
    assert reg.worst_group_risk_ < 0.6 * erm_worst


def test_no_groups_is_erm():
    # reference: scikit-learn's ridge and logistic regression on the same
    # objective (mean loss + l2/2 |w|^2 is C = 1 / (n l2) in LogisticRegression)
    X, y, _ = _data(5)
    reg = _tight(GroupDROLinearRegression(l2_reg=0.0)).fit(X, y)
    ridge = Ridge(alpha=1e-12).fit(X, y)
    assert_allclose(reg.coef_, ridge.coef_, atol=1e-6)
    labels = (y > 0).astype(int)
    clf = _tight(GroupDROLogisticRegression(l2_reg=0.1)).fit(X, labels)
    C = 1.0 / (X.shape[0] * 0.1)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=1000).fit(X, labels)
    assert_allclose(clf.coef_, ref.coef_, atol=1e-5)
    assert_allclose(clf.intercept_, ref.intercept_, atol=1e-5)


def test_weighted_equals_repeated():
    X, y, groups = _data(6, n=60)
    weight = np.random.default_rng(0).integers(0, 3, size=60)
    weight[:3] = 1  # keep every group present
    a = _tight(GroupDROLinearRegression(l2_reg=0.1))
    a.fit(X, y, groups=groups, sample_weight=weight)
    b = _tight(GroupDROLinearRegression(l2_reg=0.1))
    b.fit(
        np.repeat(X, weight, 0), np.repeat(y, weight), groups=np.repeat(groups, weight)
    )
    assert_allclose(a.coef_, b.coef_, atol=ATOL_COEF)
    assert_allclose(a.worst_group_risk_, b.worst_group_risk_, rtol=1e-5)


def test_clone_pickle_deterministic():
    X, y, groups = _data(7)
    reg = GroupDROLinearRegression(l2_reg=0.1).fit(X, y, groups=groups)
    again = clone(reg).fit(X, y, groups=groups)
    assert_allclose(reg.coef_, again.coef_)
    restored = pickle.loads(pickle.dumps(reg))
    assert_allclose(restored.predict(X), reg.predict(X))


def test_bad_input():
    X, y, groups = _data(8)
    with pytest.raises(ValueError, match="groups must be 1-dimensional"):
        GroupDROLinearRegression().fit(X, y, groups=groups[:-1])
    weight = np.ones(X.shape[0])
    weight[groups == "c"] = 0.0
    with pytest.raises(ValueError, match="zero total sample_weight"):
        GroupDROLinearRegression().fit(X, y, groups=groups, sample_weight=weight)
    with pytest.raises(ValueError, match="group_adjustment"):
        GroupDROLinearRegression(group_adjustment=-1.0).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="at least 2 classes"):
        GroupDROLogisticRegression().fit(X, np.zeros(X.shape[0]), groups=groups)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GroupDROLinearRegression().fit(X_nan, y, groups=groups)
