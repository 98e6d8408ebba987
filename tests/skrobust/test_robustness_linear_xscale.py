"""Feature-scale equivariance of the linear DRO engine (issue 14, point 4/7).

Defect: with X multiplied by 1e-150 the engine returned coefficients 0 for
``DROLinearRegression`` (ERM and CVaR(0.3)) and reported the fit certified;
at 1e150 the fit was 1% off. Both are the same problem as the unscaled one
with coefficients divided by the scale, so the reference here is the fit on
the unscaled X, itself checked against an independent cvxpy primal below.
"""

import cvxpy as cp
import numpy as np
import pytest

from skrobust.ambiguity import KL, ChiSquare, CVaR, TotalVariation, Wasserstein
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=n)
    return X, y


REGRESSION = [
    dict(ambiguity="erm"),
    dict(ambiguity=CVaR(0.3)),
    dict(ambiguity=ChiSquare(radius=0.5)),
    dict(ambiguity=KL(radius=0.1)),
    dict(ambiguity=TotalVariation(0.2), loss="absolute_error"),
    dict(ambiguity=CVaR(0.2), loss="huber"),
    dict(ambiguity=Wasserstein(radius=0.1), loss="absolute_error"),
]


@pytest.mark.parametrize("params", REGRESSION, ids=lambda p: repr(p))
@pytest.mark.parametrize("scale", [1e-150, 1e-8, 1e8, 1e150])
def test_regression_coefficients_scale_with_X(params, scale):
    X, y = _data()
    ref = DROLinearRegression(alpha=0.0, **params).fit(X, y)
    fit = DROLinearRegression(alpha=0.0, **params)
    if isinstance(params["ambiguity"], Wasserstein):
        # a transport radius is measured in the units of X
        fit.set_params(ambiguity=Wasserstein(radius=0.1 * scale))
    fit.fit(X * scale, y)
    np.testing.assert_allclose(fit.coef_ * scale, ref.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fit.intercept_, ref.intercept_, rtol=1e-4, atol=1e-6)
    # the same objective value: the fit is as good as the unscaled one
    assert fit.objective_ <= ref.objective_ * (1 + 1e-6) + 1e-12
    np.testing.assert_allclose(fit.objective_, ref.objective_, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_penalty_scales_as_alpha_times_scale_squared(scale):
    # alpha / 2 ||W||^2 with X * s and W / s is (alpha / s^2) / 2 ||W s||^2
    X, y = _data()
    ref = DROLinearRegression(ambiguity=CVaR(0.3), alpha=0.5).fit(X, y)
    fit = DROLinearRegression(ambiguity=CVaR(0.3), alpha=0.5 * scale**2)
    fit.fit(X * scale, y)
    np.testing.assert_allclose(fit.coef_ * scale, ref.coef_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("ambiguity", ["erm", ChiSquare(radius=0.5), CVaR(0.3)])
@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_logistic_coefficients_scale_with_X(ambiguity, scale):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=60) > 0).astype(int)
    ref = DROLogisticRegression(ambiguity=ambiguity, alpha=0.1).fit(X, y)
    fit = DROLogisticRegression(ambiguity=ambiguity, alpha=0.1 * scale**2)
    fit.fit(X * scale, y)
    np.testing.assert_allclose(fit.coef_ * scale, ref.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fit.objective_, ref.objective_, rtol=1e-6)


def test_unscaled_reference_matches_cvxpy_primal():
    # independent check of the reference: CVaR(0.3) of squared residuals,
    # Rockafellar-Uryasev form, no penalty
    X, y = _data()
    n = X.shape[0]
    w, b, t = cp.Variable(3), cp.Variable(), cp.Variable()
    r = 0.5 * cp.square(X @ w + b - y)  # the engine's squared loss is r^2 / 2
    obj = t + cp.sum(cp.pos(r - t)) / (0.3 * n)
    opt = cp.Problem(cp.Minimize(obj)).solve(solver=cp.CLARABEL)
    ref = DROLinearRegression(ambiguity=CVaR(0.3), alpha=0.0).fit(X, y)
    assert abs(ref.objective_ - opt) <= 1e-6 * abs(opt)
    fit = DROLinearRegression(ambiguity=CVaR(0.3), alpha=0.0).fit(X * 1e-150, y)
    assert abs(fit.objective_ - opt) <= 1e-6 * abs(opt)


def test_input_not_modified():
    X, y = _data()
    X = X * 1e150
    X0 = X.copy()
    DROLinearRegression(ambiguity=CVaR(0.3), alpha=0.0).fit(X, y)
    np.testing.assert_array_equal(X, X0)
