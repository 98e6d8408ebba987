"""Empirical likelihood intervals for regression coefficients."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import chi2
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression

from skrobust.inference import el_coef_interval, el_coef_test, el_moment_test

CHI2_95 = chi2.ppf(0.95, 1)
RTOL_SM = 1e-6  # statsmodels optimizes the nuisance with Powell / Nelder-Mead


def _linear_data(n, seed, hetero=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    scale = 1.0 + np.abs(X[:, 0]) if hetero else 1.0
    y = 1.0 + X @ np.array([2.0, -1.0, 0.5]) + rng.normal(size=n) * scale
    return X, y


def _logistic_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (rng.random(n) < expit(0.5 + X @ np.array([1.0, -0.5]))).astype(int)
    return X, y


def test_ols_matches_statsmodels_conf_int_el():
    import statsmodels.api as sm

    X, y = _linear_data(60, 0, hetero=True)
    ours = el_coef_interval(LinearRegression(), X, y, features=[0, 2])
    res = sm.OLS(y, np.column_stack([X, np.ones(60)])).fit()
    for row, j in enumerate([0, 2]):
        # reference: statsmodels OLS(...).fit().conf_int_el(j)
        assert_allclose(ours[row], res.conf_int_el(j), rtol=RTOL_SM)


def test_ols_test_matches_statsmodels_el_test():
    import statsmodels.api as sm

    X, y = _linear_data(80, 1)
    res = sm.OLS(y, np.column_stack([X, np.ones(80)])).fit()
    # reference: statsmodels el_test with the other parameters profiled out
    ref = res.el_test(np.array([1.8]), np.array([0]), result_object=False)
    assert_allclose(el_coef_test(LinearRegression(), X, y, 0, 1.8), ref, rtol=1e-6)


def _brute_force_profile(X, y, j, b, family):
    """Profile statistic by Nelder-Mead over the nuisance coefficients."""
    Xc = np.column_stack([X, np.ones(X.shape[0])])
    free = np.arange(Xc.shape[1]) != j
    mean = (lambda e: e) if family == "linear" else expit

    def stat(theta):
        beta = np.empty(Xc.shape[1])
        beta[free], beta[j] = theta, b
        return el_moment_test(Xc * (y - mean(Xc @ beta))[:, None])[0]

    start = np.linalg.lstsq(Xc, y, rcond=None)[0][free]
    res = minimize(
        stat,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    return res.fun


def test_logistic_profile_matches_brute_force():
    X, y = _logistic_data(300, 2)
    model = LogisticRegression(C=np.inf).fit(X, y)
    intervals = el_coef_interval(model, X, y, features=[0, "intercept"])
    for row, j in enumerate([0, 2]):
        for b in intervals[row]:
            # reference: Nelder-Mead over the nuisance of the full EL statistic
            ref = _brute_force_profile(X, y, j, b, "logistic")
            assert_allclose(ref, CHI2_95, rtol=1e-6)


def test_endpoints_have_threshold_statistic():
    X, y = _linear_data(200, 3, hetero=True)
    intervals = el_coef_interval(LinearRegression(), X, y, confidence_level=0.9)
    for j in range(3):
        for b in intervals[j]:
            stat, pvalue = el_coef_test(LinearRegression(), X, y, j, b)
            assert_allclose(stat, chi2.ppf(0.9, 1), rtol=1e-9)
            assert_allclose(pvalue, 0.1, rtol=1e-8)


def test_centered_on_unpenalized_fit_and_close_to_sandwich():
    X, y = _linear_data(5000, 4, hetero=True)
    model = LinearRegression().fit(X, y)
    intervals = el_coef_interval(model, X, y)
    # large n: the EL interval is the sandwich (HC0) Wald interval to first order
    Xc = np.column_stack([X, np.ones(5000)])
    resid = y - Xc @ np.r_[model.coef_, model.intercept_]
    A_inv = np.linalg.inv(Xc.T @ Xc)
    cov = A_inv @ (Xc.T * resid**2) @ Xc @ A_inv
    se = np.sqrt(np.diag(cov))[:3]
    wald = np.c_[model.coef_ - 1.96 * se, model.coef_ + 1.96 * se]
    assert_allclose(intervals, wald, atol=0.05 * se.max())
    assert np.all((intervals[:, 0] < model.coef_) & (model.coef_ < intervals[:, 1]))


def test_weights_equal_repeated_rows():
    X, y = _logistic_data(120, 5)
    w = np.random.default_rng(0).integers(0, 3, size=120)
    model = LogisticRegression(C=np.inf)
    assert_allclose(
        el_coef_interval(model, X, y, sample_weight=w),
        el_coef_interval(model, np.repeat(X, w, axis=0), np.repeat(y, w)),
        rtol=1e-9,
    )


def test_fitted_or_unfitted_estimator_same_and_not_modified():
    X, y = _linear_data(100, 6)
    fitted = LinearRegression().fit(X, y)
    coef = fitted.coef_.copy()
    assert_allclose(
        el_coef_interval(fitted, X, y), el_coef_interval(LinearRegression(), X, y)
    )
    assert_allclose(fitted.coef_, coef)
    # clone / pickle round trips of the estimator give the same intervals
    for est in (clone(fitted), pickle.loads(pickle.dumps(fitted))):
        assert_allclose(el_coef_interval(est, X, y), el_coef_interval(fitted, X, y))


def test_dro_linear_models_in_their_erm_case():
    from skrobust.linear_model import DROLinearRegression, DROLogisticRegression

    X, y = _linear_data(150, 9)
    assert_allclose(
        el_coef_interval(DROLinearRegression("erm").fit(X, y), X, y),
        el_coef_interval(LinearRegression(), X, y),
        rtol=1e-10,
    )
    Xl, yl = _logistic_data(200, 10)
    assert_allclose(
        el_coef_interval(DROLogisticRegression("erm", alpha=0.0), Xl, yl),
        el_coef_interval(LogisticRegression(C=np.inf), Xl, yl),
        rtol=1e-10,
    )
    with pytest.raises(ValueError, match="erm"):
        el_coef_interval(DROLinearRegression(), X, y)
    with pytest.raises(ValueError, match="erm"):
        el_coef_interval(DROLinearRegression("erm", loss="absolute_error"), X, y)


def test_no_intercept_model():
    X, y = _linear_data(100, 7)
    ours = el_coef_interval(LinearRegression(fit_intercept=False), X, y - 1.0)
    import statsmodels.api as sm

    res = sm.OLS(y - 1.0, X).fit()
    assert_allclose(ours[1], res.conf_int_el(1), rtol=RTOL_SM)
    with pytest.raises(ValueError, match="intercept"):
        el_coef_interval(
            LinearRegression(fit_intercept=False), X, y, features=["intercept"]
        )


def test_bad_input():
    X, y = _logistic_data(50, 8)
    with pytest.raises(ValueError, match="unpenalized"):
        el_coef_interval(LogisticRegression(), X, y)
    with pytest.raises(ValueError, match="two classes"):
        el_coef_interval(LogisticRegression(C=np.inf), X, np.arange(50) % 3)
    with pytest.raises(ValueError, match="features"):
        el_coef_interval(LinearRegression(), X, y, features=[5])
    with pytest.raises(ValueError, match="estimator"):
        el_coef_interval("linear", X, y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        el_coef_interval(LinearRegression(), np.where(X > 2, np.nan, X), y)
    fitted = LinearRegression().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        el_coef_interval(fitted, X[:, :1], y)
    with pytest.raises(ValueError, match="confidence"):
        el_coef_interval(LinearRegression(), X, y, confidence=1.5)


@pytest.mark.slow
def test_coverage_heteroscedastic_linear():
    hits = 0
    reps = 300
    for seed in range(reps):
        X, y = _linear_data(200, 100 + seed, hetero=True)
        lower, upper = el_coef_interval(LinearRegression(), X, y, features=[0])[0]
        hits += lower <= 2.0 <= upper
    assert abs(hits / reps - 0.95) < 0.04
