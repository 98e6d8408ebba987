"""Tests of marginal DRO (skrobust.subpopulation.MarginalDRO*)."""

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression, LogisticRegression

from skrobust.ambiguity import ChiSquare
from skrobust.subpopulation import (
    MarginalDROLinearRegression,
    MarginalDROLogisticRegression,
)
from skrobust.subpopulation._marginal import _marginal_risk

# Clarabel's default tolerances (about 1e-8 relative gap); dual and primal
# are two separate solves
RTOL = 1e-5


def _primal_risk(losses, Z, p, alpha, lipschitz, beta=1.0):
    """Reference: sup over smooth likelihood ratios w (an SOCP, Clarabel).

    w >= 0, E_p[w] = 1, E_p[w^2] <= 1/alpha, |w_i - w_j| <= L |z_i - z_j|^beta.
    """
    n = losses.shape[0]
    w = cp.Variable(n)
    dist = np.linalg.norm(Z[:, None, :] - Z[None, :, :], axis=2) ** beta
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    constraints = [
        w >= 0,
        p @ w == 1,
        p @ cp.square(w) <= 1 / alpha,
        w[i] - w[j] <= lipschitz * dist[i, j],
    ]
    problem = cp.Problem(cp.Maximize(p @ cp.multiply(w, losses)), constraints)
    problem.solve(solver=cp.CLARABEL)
    return problem.value


def _losses(seed=0, n=30):
    rng = np.random.default_rng(seed)
    Z = rng.uniform(-1, 1, size=(n, 2))
    losses = 2.0 * (Z[:, 0] > 0.4) + rng.exponential(size=n)
    p = rng.uniform(0.5, 1.5, size=n)
    return losses, Z, p / p.sum()


@pytest.mark.parametrize(
    "alpha, lipschitz, beta", [(0.2, 1.0, 1.0), (0.1, 5.0, 1.0), (0.3, 2.0, 0.5)]
)
def test_dual_equals_primal_over_smooth_ratios(alpha, lipschitz, beta):
    losses, Z, p = _losses()
    dual = _marginal_risk(losses, Z, p, alpha, lipschitz, holder_exponent=beta)
    primal = _primal_risk(losses, Z, p, alpha, lipschitz, beta)
    assert_allclose(dual, primal, rtol=RTOL)


def test_limits_and_monotonicity():
    losses, Z, p = _losses(1)
    alpha = 0.2
    mean = p @ losses
    # no smoothness: chi-square DRO at radius (1/alpha - 1)/2 on the losses
    joint = ChiSquare(radius=0.5 * (1 / alpha - 1)).risk(losses, p)
    assert_allclose(_marginal_risk(losses, Z, p, alpha, 0.0), mean)
    assert_allclose(_marginal_risk(losses, Z, p, 1.0, 3.0), mean)
    assert_allclose(_marginal_risk(losses, Z, p, alpha, np.inf), joint)
    risks = [_marginal_risk(losses, Z, p, alpha, L) for L in [0.1, 1.0, 10.0, 1e3]]
    assert np.all(np.diff(risks) >= -1e-7)
    assert mean <= risks[0] and risks[-1] <= joint * (1 + RTOL)
    # the Hölder second-moment bound caps the CVaR weights: the risk is at
    # least the mean and at most the joint chi-square risk for every L


def test_nearest_neighbor_graph_is_a_relaxation():
    losses, Z, p = _losses(2, n=40)
    full = _marginal_risk(losses, Z, p, 0.2, 2.0)
    graph = _marginal_risk(losses, Z, p, 0.2, 2.0, n_neighbors=3)
    assert graph >= full * (1 - RTOL)


def _simulation(n, seed):
    """20% of the population (z > 0.6) has the opposite slope in x."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, n)
    x = rng.normal(size=n)
    minority = z > 0.6
    y = np.where(minority, -1.0, 1.0) * x + 0.5 * rng.normal(size=n)
    return np.column_stack([x, z]), y, minority


def test_worst_subgroup_loss_drops():
    X, y, _ = _simulation(150, 0)
    X_test, y_test, minority = _simulation(20_000, 1)
    erm = LinearRegression().fit(X, y)
    dro = MarginalDROLinearRegression(
        subpopulation_size=0.2, covariates=[1], lipschitz=5.0
    )
    dro.fit(X, y)

    def worst(model):
        return np.mean((model.predict(X_test[minority]) - y_test[minority]) ** 2)

    erm_average = np.mean((erm.predict(X_test) - y_test) ** 2)
    # ERM's worst subgroup is much worse than its average ...
    assert worst(erm) > 2.5 * erm_average
    # ... and marginal DRO brings it down by more than a third
    assert worst(dro) < 0.65 * worst(erm)


def test_fit_is_consistent_and_optimal():
    X, y, _ = _simulation(80, 2)
    dro = MarginalDROLinearRegression(
        subpopulation_size=0.2, covariates=[1], lipschitz=3.0
    )
    dro.fit(X, y)
    Z = X[:, [1]]
    p = np.full(80, 1 / 80)
    losses = (dro.predict(X) - y) ** 2
    # the reported risk is the marginal risk of the fitted model's losses
    assert_allclose(dro.robust_risk_, _marginal_risk(losses, Z, p, 0.2, 3.0), rtol=RTOL)
    # and no better than ERM's under the robust criterion
    erm_losses = (LinearRegression().fit(X, y).predict(X) - y) ** 2
    assert dro.robust_risk_ <= _marginal_risk(erm_losses, Z, p, 0.2, 3.0)
    # the worst-case weights are a distribution, smooth in Z
    q = dro.worst_case_weights_
    assert_allclose(q.sum(), 1.0)
    ratio = q / p
    gaps = np.abs(ratio[:, None] - ratio[None, :]) - 3.0 * np.abs(Z - Z.T)
    assert gaps.max() < 1e-4


def test_zero_lipschitz_is_least_squares():
    X, y, _ = _simulation(60, 3)
    dro = MarginalDROLinearRegression(lipschitz=0.0).fit(X, y)
    ols = LinearRegression().fit(X, y)
    assert_allclose(dro.coef_, ols.coef_, atol=1e-6)


def test_logistic_lowers_marginal_risk():
    X, y, _ = _simulation(100, 4)
    labels = (y > 0).astype(int)
    clf = MarginalDROLogisticRegression(
        subpopulation_size=0.2, covariates=[1], lipschitz=3.0
    )
    clf.fit(X, labels)
    erm = LogisticRegression(C=1 / (100 * 1e-4)).fit(X, labels)
    proba = erm.predict_proba(X)[np.arange(100), labels]
    p = np.full(100, 0.01)
    erm_risk = _marginal_risk(-np.log(proba), X[:, [1]], p, 0.2, 3.0)
    assert clf.robust_risk_ < erm_risk
    assert clf.predict_proba(X).shape == (100, 2)


def test_covariates_by_name_and_index():
    X, y, _ = _simulation(50, 5)
    frame = pd.DataFrame(X, columns=["x", "z"])
    by_name = MarginalDROLinearRegression(covariates=["z"]).fit(frame, y)
    by_index = MarginalDROLinearRegression(covariates=[-1]).fit(X, y)
    assert list(by_name.covariates_) == [1] == list(by_index.covariates_)
    assert_allclose(by_name.coef_, by_index.coef_, rtol=1e-6)


def test_weighted_equals_repeated():
    X, y, _ = _simulation(40, 6)
    weight = np.random.default_rng(0).integers(0, 3, size=40)
    a = MarginalDROLinearRegression(covariates=[1], lipschitz=2.0)
    a.fit(X, y, sample_weight=weight)
    b = MarginalDROLinearRegression(covariates=[1], lipschitz=2.0)
    b.fit(np.repeat(X, weight, 0), np.repeat(y, weight))
    assert_allclose(a.coef_, b.coef_, atol=1e-5)
    assert_allclose(a.robust_risk_, b.robust_risk_, rtol=1e-5)


def test_bad_input():
    X, y, _ = _simulation(30, 7)
    with pytest.raises(ValueError, match="no column names"):
        MarginalDROLinearRegression(covariates=["z"]).fit(X, y)
    frame = pd.DataFrame(X, columns=["x", "z"])
    with pytest.raises(ValueError, match="not a column of X"):
        MarginalDROLinearRegression(covariates=["w"]).fit(frame, y)
    with pytest.raises(ValueError, match="out of range"):
        MarginalDROLinearRegression(covariates=[5]).fit(X, y)
    with pytest.raises(ValueError, match="subpopulation_size"):
        MarginalDROLinearRegression(subpopulation_size=0.0).fit(X, y)
    with pytest.raises(ValueError, match="lipschitz"):
        MarginalDROLinearRegression(lipschitz=-1.0).fit(X, y)
    big = np.zeros((600, 2))
    big[:, 0] = np.arange(600)
    with pytest.raises(ValueError, match="set n_neighbors"):
        MarginalDROLinearRegression().fit(big, np.zeros(600))
