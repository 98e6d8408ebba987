"""Tests of variance-regularized ERM (skrobust.subpopulation.VarianceRegularized*)."""

import cvxpy as cp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression

from skrobust.ambiguity import ChiSquare
from skrobust.subpopulation import (
    VarianceRegularizedLinearRegression,
    VarianceRegularizedLogisticRegression,
)

RTOL_RISK = 1e-6
ATOL_COEF = 1e-4


def _data(seed=0, n=80):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(3, size=n)
    return X, y


def _cvxpy_chi2(X, losses_fn, radius, l2=0.0):
    """Reference: the chi-square dual written out in cvxpy (Clarabel)."""
    n = X.shape[0]
    coef, intercept, eta = cp.Variable(X.shape[1]), cp.Variable(), cp.Variable()
    excess = cp.pos(losses_fn(coef, intercept) - eta)
    value = np.sqrt(1 + 2 * radius) * cp.norm(excess, 2) / np.sqrt(n) + eta
    problem = cp.Problem(cp.Minimize(value + 0.5 * l2 * cp.sum_squares(coef)))
    problem.solve(solver=cp.CLARABEL)
    return problem.value, coef.value


def _tight(est):
    return est.set_params(tol=1e-10, max_iter=5000)


def test_regression_matches_cvxpy_and_variance_expansion():
    X, y = _data()
    reg = _tight(VarianceRegularizedLinearRegression(rho=4.0)).fit(X, y)
    assert_allclose(reg.radius_, 4.0 / X.shape[0])
    value, coef = _cvxpy_chi2(X, lambda c, b: cp.square(y - X @ c - b), reg.radius_)
    assert_allclose(reg.robust_risk_, value, rtol=RTOL_RISK)
    assert_allclose(reg.coef_, coef, atol=ATOL_COEF)
    # robust_risk_ is the ChiSquare risk of the training losses
    losses = (reg.predict(X) - y) ** 2
    assert_allclose(reg.robust_risk_, ChiSquare(reg.radius_).risk(losses))


def test_unclipped_risk_is_mean_plus_std():
    # with a radius small relative to the spread of the losses no loss is
    # clipped, and the robust risk is mean + sqrt(2 rho Var / n) exactly
    X, y = _data(1, n=200)
    reg = VarianceRegularizedLinearRegression(rho=0.5).fit(X, y)
    losses = (reg.predict(X) - y) ** 2
    eta = ChiSquare(reg.radius_).dual_init(losses)[0]
    assert losses.min() > eta  # no clipping at the optimum
    expansion = reg.train_loss_ + np.sqrt(2 * reg.radius_ * reg.loss_variance_)
    assert_allclose(reg.robust_risk_, expansion, rtol=1e-10)


def test_logistic_matches_cvxpy():
    X, y = _data(2)
    labels = (y > 0).astype(int)
    clf = _tight(VarianceRegularizedLogisticRegression(rho=3.0, l2_reg=0.01))
    clf.fit(X, labels)
    sign = 2.0 * labels - 1.0
    value, coef = _cvxpy_chi2(
        X,
        lambda c, b: cp.logistic(-cp.multiply(sign, X @ c + b)),
        clf.radius_,
        l2=0.01,
    )
    assert_allclose(clf.robust_risk_ + 0.005 * np.sum(clf.coef_**2), value, rtol=1e-5)
    assert_allclose(clf.coef_.ravel(), coef, atol=1e-3)


def test_rho_zero_is_least_squares():
    X, y = _data(3)
    reg = _tight(VarianceRegularizedLinearRegression(rho=0.0)).fit(X, y)
    ols = LinearRegression().fit(X, y)
    assert_allclose(reg.coef_, ols.coef_, atol=1e-6)
    assert_allclose(reg.robust_risk_, reg.train_loss_)


def test_variance_is_traded_for_mean():
    # a larger rho lowers the variance of the losses and raises their mean
    X, y = _data(4, n=300)
    small = VarianceRegularizedLinearRegression(rho=0.1).fit(X, y)
    large = VarianceRegularizedLinearRegression(rho=50.0).fit(X, y)
    assert large.loss_variance_ < small.loss_variance_
    assert large.train_loss_ > small.train_loss_


def test_weighted_equals_repeated_on_noisy_data():
    X, y = _data(5, n=40)
    weight = np.random.default_rng(0).integers(0, 3, size=40)
    a = VarianceRegularizedLinearRegression(rho=2.0).fit(X, y, sample_weight=weight)
    b = VarianceRegularizedLinearRegression(rho=2.0)
    b.fit(np.repeat(X, weight, 0), np.repeat(y, weight))
    assert_allclose(a.coef_, b.coef_, atol=1e-8)
    assert_allclose(a.radius_, b.radius_)


def test_bad_input():
    X, y = _data(6)
    with pytest.raises(ValueError, match="rho"):
        VarianceRegularizedLinearRegression(rho=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="l2_reg"):
        VarianceRegularizedLogisticRegression(l2_reg=-1.0).fit(X, y > 0)
    with pytest.raises(ValueError, match="Negative values"):
        VarianceRegularizedLinearRegression().fit(X, y, sample_weight=-np.ones(80))
