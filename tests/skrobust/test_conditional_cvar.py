"""Tests of conditional CVaR DRO (skrobust.subpopulation.ConditionalCVaR*)."""

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression

from skrobust.ambiguity import CVaR
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression
from skrobust.subpopulation import (
    ConditionalCVaRLinearRegression,
    ConditionalCVaRLogisticRegression,
)
from skrobust.subpopulation._conditional import _conditional_cvar

# L-BFGS on the smoothed problem against Clarabel's interior point (relative
# gap about 1e-8): the primal objectives, each evaluated exactly by an LP
RTOL_SOLVERS = 1e-6
# coefficients of two solvers on a well-conditioned problem
RTOL_COEF = 1e-3
# LP (HiGHS) against sorting-based CVaR
RTOL_LP = 1e-9


def _classification(n=120, n_classes=2, seed=0):
    X, y = make_classification(
        n_samples=n,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        flip_y=0.1,
        random_state=seed,
    )
    return X, y


def _heteroscedastic(n=200, seed=0):
    """y = x + sigma(x) (Exp(1) - 1), sigma = 0.2 for x <= 0 and 1.2 above.

    The features are x and the region indicator 1{x > 0}.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    region = (x > 0).astype(float)
    y = x + (0.2 + region) * (rng.exponential(size=n) - 1.0)
    return np.column_stack([x, region, rng.normal(size=n)]), y


# -- the risk of fixed losses ------------------------------------------------


def test_lp_risk_with_group_indicators_is_the_exact_conditional_cvar():
    # With the one-hot indicators of a discrete X as controls, eta ranges over
    # every function of X, so the risk is sum_g P(g) CVaR_alpha(loss | g),
    # computed here group by group by CVaR's sorting formula.
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, size=200)
    losses = rng.exponential(size=200) * (1 + groups)
    p = rng.uniform(0.5, 1.5, size=200)
    p /= p.sum()
    controls = np.eye(4)[groups][:, 1:]
    alpha = 0.15
    reference = sum(
        p[groups == g].sum() * CVaR(alpha).risk(losses[groups == g], p[groups == g])
        for g in range(4)
    )
    risk, q = _conditional_cvar(losses, controls, alpha, p)
    assert_allclose(risk, reference, rtol=RTOL_LP)
    # the worst case keeps the mass of each group and caps the ratio
    for g in range(4):
        assert_allclose(q[groups == g].sum(), p[groups == g].sum(), rtol=1e-9)
    assert np.all(q <= p / alpha * (1 + 1e-9))


def test_lp_risk_limits():
    rng = np.random.default_rng(1)
    losses = rng.exponential(size=50)
    controls = rng.normal(size=(50, 2))
    # alpha = 1: the mean; no controls: the ordinary CVaR
    assert_allclose(_conditional_cvar(losses, controls, 1.0)[0], losses.mean())
    assert_allclose(
        _conditional_cvar(losses, controls[:, :0], 0.2)[0],
        CVaR(0.2).risk(losses),
        rtol=RTOL_LP,
    )
    # controls only shrink the set: between the mean and the ordinary CVaR
    risk = _conditional_cvar(losses, controls, 0.2)[0]
    assert losses.mean() < risk < CVaR(0.2).risk(losses)


# -- the estimators ----------------------------------------------------------


# Clarabel reports "optimal_inaccurate" on some of these exponential-cone
# problems (as for DROLogisticRegression(CVaR, solver="cvxpy")); the objectives
# still agree to RTOL_SOLVERS, which is what is checked
_CLARABEL_INACCURATE = pytest.mark.filterwarnings(
    "ignore:.*inaccurate:UserWarning",
    "ignore:.*inaccurate:sklearn.exceptions.ConvergenceWarning",
)


@_CLARABEL_INACCURATE
@pytest.mark.parametrize("alpha", [0.2, 0.5])
@pytest.mark.parametrize("controls", [[], [0], [0, 2], None])
def test_logistic_lbfgs_matches_cvxpy(alpha, controls):
    X, y = _classification()
    kwargs = dict(subpopulation_size=alpha, control_features=controls, l2_reg=1e-2)
    lbfgs = ConditionalCVaRLogisticRegression(**kwargs).fit(X, y)
    cvx = ConditionalCVaRLogisticRegression(solver="cvxpy", **kwargs).fit(X, y)
    assert_allclose(lbfgs.objective_, cvx.objective_, rtol=RTOL_SOLVERS)
    assert_allclose(lbfgs.coef_, cvx.coef_, rtol=RTOL_COEF, atol=1e-4)


@_CLARABEL_INACCURATE
def test_multinomial_lbfgs_matches_cvxpy():
    X, y = _classification(n=150, n_classes=3)
    kwargs = dict(subpopulation_size=0.3, control_features=[1], l2_reg=1e-2)
    lbfgs = ConditionalCVaRLogisticRegression(**kwargs).fit(X, y)
    cvx = ConditionalCVaRLogisticRegression(solver="cvxpy", **kwargs).fit(X, y)
    assert lbfgs.coef_.shape == (3, 4)
    assert_allclose(lbfgs.objective_, cvx.objective_, rtol=RTOL_SOLVERS)
    assert lbfgs.predict_proba(X).shape == (150, 3)
    assert_allclose(lbfgs.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber"])
@pytest.mark.parametrize("controls", [[], [1], None])
def test_regression_lbfgs_matches_cvxpy(loss, controls):
    X, y = _heteroscedastic()
    kwargs = dict(subpopulation_size=0.2, control_features=controls, loss=loss)
    lbfgs = ConditionalCVaRLinearRegression(**kwargs).fit(X, y)
    cvx = ConditionalCVaRLinearRegression(solver="cvxpy", **kwargs).fit(X, y)
    # the CVaR objective can be flat in some coefficients: objectives only
    assert_allclose(lbfgs.objective_, cvx.objective_, rtol=RTOL_SOLVERS)


def test_fitted_threshold_attains_the_objective():
    # eta(x) = control_intercept_ + x_C @ control_coef_ plugged into the
    # Rockafellar-Uryasev objective gives the robust risk (it is optimal)
    X, y = _heteroscedastic()
    reg = ConditionalCVaRLinearRegression(
        subpopulation_size=0.2, control_features=[0, 1]
    )
    reg.fit(X, y)
    losses = 0.5 * (y - reg.predict(X)) ** 2
    eta = reg.control_intercept_ + X[:, [0, 1]] @ reg.control_coef_
    value = np.mean(eta + np.maximum(losses - eta, 0.0) / 0.2)
    assert_allclose(value, reg.robust_risk_, rtol=1e-5)
    # the worst case keeps the controls' means and caps the ratio at 1/alpha
    q = reg.worst_case_weights_
    assert_allclose(q.sum(), 1.0)
    assert_allclose(q @ X[:, [0, 1]], X[:, [0, 1]].mean(axis=0), atol=1e-9)
    assert np.all(q <= 1 / (0.2 * X.shape[0]) * (1 + 1e-9))


def test_no_controls_is_ordinary_cvar_dro_logistic():
    # Reference: DROLogisticRegression(ambiguity=CVaR(alpha)), the marginal
    # CVaR DRO of skrobust.linear_model, with the same penalty
    X, y = _classification()
    ours = ConditionalCVaRLogisticRegression(
        subpopulation_size=0.3, control_features=[], l2_reg=1e-2
    ).fit(X, y)
    ref = DROLogisticRegression(CVaR(alpha=0.3), alpha=1e-2).fit(X, y)
    assert_allclose(ours.objective_, ref.objective_, rtol=RTOL_SOLVERS)
    assert_allclose(ours.coef_, ref.coef_, rtol=RTOL_COEF, atol=1e-4)
    assert_allclose(ours.robust_risk_, ref.robust_risk_, rtol=RTOL_SOLVERS)


def test_no_controls_is_ordinary_cvar_dro_regression():
    X, y = _heteroscedastic()
    ours = ConditionalCVaRLinearRegression(
        subpopulation_size=0.2, control_features=[]
    ).fit(X, y)
    ref = DROLinearRegression(CVaR(alpha=0.2)).fit(X, y)
    assert_allclose(ours.objective_, ref.objective_, rtol=RTOL_SOLVERS)


def test_alpha_one_is_erm():
    # alpha = 1: the likelihood ratio is 1, the risk is the mean loss.
    # References: scikit-learn's LogisticRegression(C = 1 / (n * l2_reg)) and
    # LinearRegression
    X, y = _classification()
    n = X.shape[0]
    clf = ConditionalCVaRLogisticRegression(
        subpopulation_size=1.0, l2_reg=1e-2, tol=1e-8
    )
    clf.fit(X, y)
    ref = LogisticRegression(C=1 / (n * 1e-2), tol=1e-10, max_iter=10_000).fit(X, y)
    assert_allclose(clf.coef_, ref.coef_, rtol=1e-5)
    assert_allclose(clf.robust_risk_, clf.train_loss_)
    Xr, yr = _heteroscedastic()
    reg = ConditionalCVaRLinearRegression(
        subpopulation_size=1.0, control_features=[1], tol=1e-10
    )
    reg.fit(Xr, yr)
    ols = LinearRegression().fit(Xr, yr)
    assert_allclose(reg.coef_, ols.coef_, rtol=1e-5)
    assert_allclose(reg.intercept_, ols.intercept_, rtol=1e-5, atol=1e-8)


def test_risk_decreases_with_more_controls():
    # nested controls shrink the ambiguity set: ERM <= ... <= ordinary CVaR
    X, y = _heteroscedastic()
    risks = [
        ConditionalCVaRLinearRegression(subpopulation_size=0.2, control_features=c)
        .fit(X, y)
        .objective_
        for c in ([], [1], [0, 1])
    ]
    erm = ConditionalCVaRLinearRegression(subpopulation_size=1.0).fit(X, y).objective_
    assert risks[0] > risks[1] > risks[2] > erm


def _true_conditional_cvar(model, alpha, n_x=200, n_y=20_000):
    """Monte Carlo E_X[CVaR_alpha(loss | X)] under the simulation's law."""
    rng = np.random.default_rng(123)
    x = np.linspace(-1, 1, n_x)
    region = (x > 0).astype(float)
    f = model.predict(np.column_stack([x, region, np.zeros(n_x)]))
    noise = (0.2 + region)[:, None] * (rng.exponential(size=(n_x, n_y)) - 1.0)
    losses = 0.5 * (x[:, None] + noise - f[:, None]) ** 2
    k = int(alpha * n_y)
    tail = -np.partition(-losses, k, axis=1)[:, :k]
    return tail.mean(axis=1)


def test_heteroscedastic_simulation_lowers_the_conditional_tail():
    # The noise is skewed and 6 times larger for x > 0. With the region as
    # control, eta can be the conditional value at risk, so the restriction
    # is exact at the conditional-CVaR-optimal model (x + sigma(x) c), which
    # the linear model can represent; ERM fits the conditional mean instead.
    X, y = _heteroscedastic(n=500, seed=1)
    alpha = 0.1
    erm = LinearRegression().fit(X, y)
    cond = ConditionalCVaRLinearRegression(
        subpopulation_size=alpha, control_features=[1]
    )
    cond.fit(X, y)
    tail_erm = _true_conditional_cvar(erm, alpha)
    tail_cond = _true_conditional_cvar(cond, alpha)
    # measured: average 2.29 -> 1.74, worst x 4.95 -> 3.60 (ordinary CVaR DRO,
    # control_features=[]: 1.80 and 3.71)
    assert tail_cond.mean() < 0.85 * tail_erm.mean()
    assert tail_cond.max() < 0.85 * tail_erm.max()


def test_sample_weight_equals_repeated_rows():
    X, y = _heteroscedastic(n=80)
    w = np.random.default_rng(0).integers(0, 3, size=80)
    kwargs = dict(subpopulation_size=0.25, control_features=[1], tol=1e-8)
    weighted = ConditionalCVaRLinearRegression(**kwargs).fit(X, y, sample_weight=w)
    repeated = ConditionalCVaRLinearRegression(**kwargs).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    assert_allclose(weighted.objective_, repeated.objective_, rtol=1e-7)
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-4, atol=1e-5)


def test_column_names_and_round_trips():
    X, y = _classification()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    by_name = ConditionalCVaRLogisticRegression(
        subpopulation_size=0.3, control_features=["b", "d"]
    )
    by_name.fit(frame, y)
    by_index = ConditionalCVaRLogisticRegression(
        subpopulation_size=0.3, control_features=[1, -1]
    )
    by_index.fit(X, y)
    assert_allclose(by_name.control_features_, [1, 3])
    assert_allclose(by_name.coef_, by_index.coef_)
    restored = pickle.loads(pickle.dumps(by_index))
    assert_allclose(restored.decision_function(X), by_index.decision_function(X))
    assert clone(by_index).get_params() == by_index.get_params()
    # X is not modified
    X_copy = X.copy()
    ConditionalCVaRLogisticRegression(subpopulation_size=0.3).fit(X, y)
    assert_allclose(X, X_copy)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"control_features": [7]}, "control_features index 7 is out of range"),
        ({"control_features": ["a"]}, "control_features names the column 'a'"),
        ({"solver": "sgd"}, "solver"),
        ({"l2_reg": -1.0}, "l2_reg"),
    ],
)
def test_bad_parameters(params, match):
    X, y = _classification()
    with pytest.raises(ValueError, match=match):
        ConditionalCVaRLogisticRegression(**params).fit(X, y)


def test_bad_input():
    X, y = _classification()
    with pytest.raises(TypeError, match="control_features must hold column names"):
        ConditionalCVaRLogisticRegression(control_features=[0.5]).fit(X, y)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="control_features names 'z'"):
        ConditionalCVaRLogisticRegression(control_features=["z"]).fit(frame, y)
    with pytest.raises(ValueError, match="only one class"):
        ConditionalCVaRLogisticRegression().fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="sample_weight|negative"):
        ConditionalCVaRLinearRegression().fit(X, X[:, 0], sample_weight=-np.ones(120))
