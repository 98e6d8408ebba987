"""Generalized EL bounds and the bootstrap EL for the best of K options."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import chi2

from skrobust.ambiguity import KL, ChiSquare, CVaR
from skrobust.inference import (
    el_max_mean_interval,
    gel_model_risk_interval,
    gel_optimal_value_interval,
    gel_risk_interval,
)
from skrobust.linear_model import DROLinearRegression, DROLogisticRegression

RTOL = 1e-8


def test_risk_interval_is_robust_risk_at_gel_radius():
    losses = np.random.default_rng(0).exponential(size=300)
    radius = chi2.ppf(0.95, 1) / (2 * 300)
    lower, upper = gel_risk_interval(losses)
    assert_allclose(upper, ChiSquare(radius).risk(losses), rtol=RTOL)
    assert_allclose(lower, -ChiSquare(radius).risk(-losses), rtol=RTOL)
    # without clipping the chi-square bound is mean +- sqrt(chi2 * var / n)
    # (closed form of the chi-square robust risk, Namkoong and Duchi 2017)
    half = np.sqrt(chi2.ppf(0.95, 1) * losses.var() / 300)
    assert_allclose([lower, upper], [losses.mean() - half, losses.mean() + half])


def test_one_sided_uses_shifted_quantile_and_kl():
    losses = np.random.default_rng(1).normal(size=200)
    lower, upper = gel_risk_interval(losses, confidence_level=0.95, sided="upper")
    assert lower == -np.inf
    assert_allclose(upper, ChiSquare(chi2.ppf(0.9, 1) / 400).risk(losses))
    lo_kl, up_kl = gel_risk_interval(losses, ambiguity=KL())
    radius = chi2.ppf(0.95, 1) / 400
    assert_allclose(up_kl, KL(radius).risk(losses), rtol=RTOL)
    assert gel_risk_interval(losses, sided="lower")[1] == np.inf


def test_risk_interval_weights_equal_repeats():
    rng = np.random.default_rng(2)
    losses = rng.exponential(size=50)
    w = rng.integers(0, 3, size=50)
    assert_allclose(
        gel_risk_interval(losses, sample_weight=w),
        gel_risk_interval(np.repeat(losses, w)),
        rtol=1e-10,
    )


def test_risk_interval_bad_input():
    with pytest.raises(ValueError, match="f-divergence"):
        gel_risk_interval([1.0, 2.0, 3.0], ambiguity=CVaR(alpha=0.1))
    with pytest.raises(ValueError, match="0.5"):
        gel_risk_interval([1.0, 2.0, 3.0], confidence_level=0.4, sided="upper")
    with pytest.raises(ValueError, match="NaN"):
        gel_risk_interval([1.0, np.nan])


def test_model_risk_interval_equals_interval_of_its_losses():
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 2))
    y = X[:, 0] + rng.normal(size=400)
    reg = LinearRegression().fit(X[:200], y[:200])
    resid = reg.predict(X[200:]) - y[200:]
    assert_allclose(
        gel_model_risk_interval(reg, X[200:], y[200:]),
        gel_risk_interval(resid**2),
    )
    assert_allclose(
        gel_model_risk_interval(reg, X[200:], y[200:], loss="absolute_error"),
        gel_risk_interval(np.abs(resid)),
    )
    assert_allclose(
        gel_model_risk_interval(
            reg, X[200:], y[200:], loss=lambda t, p: (t - p) ** 4, sided="upper"
        ),
        gel_risk_interval(resid**4, sided="upper"),
    )
    labels = np.where(y > 0, "yes", "no")
    clf = LogisticRegression().fit(X[:200], labels[:200])
    proba = clf.predict_proba(X[200:])[:, 1]
    is_yes = labels[200:] == "yes"
    log_loss = -np.log(np.where(is_yes, proba, 1 - proba))
    assert_allclose(
        gel_model_risk_interval(clf, X[200:], labels[200:], loss="log_loss"),
        gel_risk_interval(log_loss),
        rtol=1e-10,
    )
    errors = (clf.predict(X[200:]) != labels[200:]).astype(float)
    assert_allclose(
        gel_model_risk_interval(clf, X[200:], labels[200:], loss="zero_one"),
        gel_risk_interval(errors),
    )
    with pytest.raises(NotFittedError):
        gel_model_risk_interval(LinearRegression(), X, y)
    with pytest.raises(ValueError, match="one value per sample"):
        gel_model_risk_interval(reg, X, y, loss=lambda t, p: np.mean(t - p))
    with pytest.raises(ValueError, match="labels"):
        gel_model_risk_interval(clf, X[:5], ["maybe"] * 5, loss="log_loss")


def test_optimal_value_upper_is_dro_objective_and_brackets_erm():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    y = X @ np.array([1.0, -1.0]) + rng.normal(size=200)
    lower, upper = gel_optimal_value_interval(DROLinearRegression(), X, y)
    radius = chi2.ppf(0.95, 1) / 400
    dro = DROLinearRegression(ChiSquare(radius)).fit(X, y)
    assert_allclose(upper, dro.objective_, rtol=1e-8)
    # the ERM optimal value (half mean squared residual) lies between
    erm = DROLinearRegression("erm").fit(X, y)
    erm_value = 0.5 * np.mean((y - erm.predict(X)) ** 2)
    assert lower < erm_value < upper
    # lower bound: at most the optimistic risk at the ERM coefficients
    ball = ChiSquare(radius)
    assert lower <= -ball.risk(-0.5 * (y - erm.predict(X)) ** 2) + 1e-12


def test_optimal_value_bad_estimator():
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(TypeError, match="ambiguity"):
        gel_optimal_value_interval(LinearRegression(), X, X[:, 0])


def test_optimal_value_logistic_runs_and_orders():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + rng.logistic(size=200) > 0).astype(int)
    lower, upper = gel_optimal_value_interval(DROLogisticRegression(), X, y)
    assert 0 < lower < upper < np.log(2)


@pytest.mark.slow
def test_optimal_value_coverage_linear():
    # population optimal value: Var(noise) / 2 = 0.5 for the half squared loss
    hits = 0
    reps = 200
    for seed in range(reps):
        rng = np.random.default_rng(1000 + seed)
        X = rng.normal(size=(300, 2))
        y = X @ np.array([1.0, -1.0]) + rng.normal(size=300)
        lower, upper = gel_optimal_value_interval(DROLinearRegression(), X, y)
        hits += lower <= 0.5 <= upper
    assert abs(hits / reps - 0.95) < 0.05


def test_max_mean_single_option_reduces_to_chi2_gel():
    Y = np.random.default_rng(5).exponential(size=(300, 1))
    lower, upper, q = el_max_mean_interval(Y, random_state=0, return_threshold=True)
    # one option: the limit law is chi2_1; its bootstrap quantile is close
    assert abs(q - chi2.ppf(0.95, 1)) < 0.4
    ref = gel_risk_interval(Y[:, 0], confidence_level=chi2.cdf(q, 1))
    assert_allclose([lower, upper], ref, rtol=1e-7)


def test_max_mean_bounds_against_cvxpy_and_vertices():
    import cvxpy as cp

    rng = np.random.default_rng(6)
    Y = rng.normal(size=(150, 3)) + np.array([0.0, 0.05, -0.02])
    lower, upper, q = el_max_mean_interval(Y, calibration="chi2", return_threshold=True)
    ball = ChiSquare(q / 300)
    assert_allclose(upper, max(ball.risk(Y[:, k]) for k in range(3)), rtol=RTOL)
    # reference: cvxpy primal min_{Q in ball} max_k E_Q Y_k (f(t) = (t-1)^2/2)
    qv = cp.Variable(150)
    t = cp.Variable()
    cp.Problem(
        cp.Minimize(t),
        [
            Y.T @ qv <= t,
            cp.sum(qv) == 1,
            qv >= 0,
            cp.sum_squares(150 * qv - 1) / 2 / 150 <= q / 300,
        ],
    ).solve(solver=cp.CLARABEL)
    assert_allclose(lower, t.value, rtol=1e-5, atol=1e-7)


def test_max_mean_ties_widen_threshold_and_determinism():
    rng = np.random.default_rng(7)
    Y = rng.normal(size=(400, 4))
    a = el_max_mean_interval(Y, random_state=3, return_threshold=True)
    b = el_max_mean_interval(Y, random_state=3, return_threshold=True)
    assert a == b
    # four tied options: the calibrated threshold exceeds chi2_1
    assert a[2] > chi2.ppf(0.95, 1) + 0.5
    # a clearly separated best option: back to about chi2_1
    Y_sep = Y + np.array([1.0, 0.0, 0.0, 0.0])
    q_sep = el_max_mean_interval(Y_sep, random_state=3, return_threshold=True)[2]
    assert abs(q_sep - chi2.ppf(0.95, 1)) < 0.4


def test_max_mean_bad_input():
    with pytest.raises(ValueError, match="calibration"):
        el_max_mean_interval(np.ones((5, 2)), calibration="naive")
    with pytest.raises(ValueError, match="variation"):
        el_max_mean_interval(np.ones((5, 2)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        el_max_mean_interval(np.array([[1.0, np.nan], [2.0, 3.0]]))


@pytest.mark.slow
def test_max_mean_ties_naive_miscovers_corrected_does_not():
    # five options tied at value 0; truth T = 0
    reps = 400
    hits = {"chi2": 0, "bootstrap": 0}
    for seed in range(reps):
        Y = np.random.default_rng(seed).normal(size=(300, 5))
        for calibration in hits:
            lower, upper = el_max_mean_interval(
                Y, calibration=calibration, n_bootstraps=1000, random_state=seed
            )
            hits[calibration] += lower <= 0.0 <= upper
    assert hits["chi2"] / reps < 0.85
    assert hits["bootstrap"] / reps > 0.91
