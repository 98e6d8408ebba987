"""Empirical likelihood for a mean: references, invariances, bad input."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import chi2, t

from skrobust.inference import el_mean_interval, el_mean_test, el_moment_test

RTOL = 1e-9
ATOL = 1e-10
CHI2_95 = chi2.ppf(0.95, 1)


def _cvxpy_el_statistic(x, mu):
    """-2 log R(mu) from the primal: maximize sum log(n p) s.t. sum p x = mu."""
    import cvxpy as cp

    n = x.shape[0]
    p = cp.Variable(n)
    problem = cp.Problem(
        cp.Maximize(cp.sum(cp.log(n * p))), [cp.sum(p) == 1, p @ x == mu]
    )
    problem.solve(solver=cp.CLARABEL)
    return -2.0 * problem.value


@pytest.mark.parametrize("seed", [0, 1])
def test_statistic_matches_cvxpy_primal(seed):
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=40)
    for mu in [0.7, x.mean(), 1.3]:
        # reference: independent cvxpy (Clarabel) solve of the primal problem
        ref = _cvxpy_el_statistic(x, mu)
        assert_allclose(el_mean_test(x, mu)[0], ref, rtol=1e-6, atol=1e-7)


def test_matches_statsmodels_descstat():
    from statsmodels.emplike.descriptive import DescStat

    rng = np.random.default_rng(3)
    for n in [8, 30, 1000]:
        x = rng.lognormal(size=n)
        # reference: statsmodels.emplike DescStat(x).ci_mean() / test_mean
        assert_allclose(el_mean_interval(x), DescStat(x).ci_mean(), rtol=1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ref = DescStat(x).test_mean(1.2, result_object=False)
        assert_allclose(el_mean_test(x, 1.2), ref, rtol=1e-8)


def test_endpoints_have_threshold_statistic():
    rng = np.random.default_rng(0)
    for n in [5, 30, 10_000]:
        x = rng.exponential(size=n)
        lower, upper = el_mean_interval(x, confidence_level=0.9)
        target = chi2.ppf(0.9, 1)
        assert_allclose(el_mean_test(x, lower)[0], target, rtol=1e-11)
        assert_allclose(el_mean_test(x, upper)[0], target, rtol=1e-11)
        assert x.min() < lower < x.mean() < upper < x.max()


def test_docstring_example_values():
    # reference: statsmodels DescStat(x).ci_mean() on the same eight values
    x = np.array([1.2, 0.4, 2.5, 1.9, 0.7, 1.1, 3.0, 0.2])
    assert_allclose(
        el_mean_interval(x), (0.8055313423106245, 2.059258389317516), rtol=1e-12
    )


def test_test_at_sample_mean_and_outside_hull():
    x = np.array([0.0, 1.0, 3.0])
    stat, pvalue = el_mean_test(x, x.mean())
    assert_allclose(stat, 0.0, atol=ATOL)
    assert_allclose(pvalue, 1.0)
    assert el_mean_test(x, 3.0) == (np.inf, 0.0)
    assert el_mean_test(x, -1.0) == (np.inf, 0.0)


def test_two_point_closed_form():
    # x in {0, 1} with k ones of n: R(mu) is a binomial likelihood ratio,
    # -2 log R = 2 [k log(k/(n mu)) + (n-k) log((n-k)/(n(1-mu)))]
    n, k = 20, 6
    x = np.r_[np.ones(k), np.zeros(n - k)]
    mu = 0.45
    ref = 2 * (k * np.log(k / (n * mu)) + (n - k) * np.log((n - k) / (n * (1 - mu))))
    assert_allclose(el_mean_test(x, mu)[0], ref, rtol=1e-12)


@pytest.mark.parametrize("confidence", [0.5, 0.95, 0.999999])
def test_two_points_interval_closed_form(confidence):
    # x = (0, 1): -2 log R(mu) = -2 log(4 mu (1 - mu)), so the endpoints solve
    # 4 mu (1 - mu) = exp(-chi2 / 2)
    # (machine precision is absolute here: the endpoints are 0.5 -+ offset)
    r = np.exp(-chi2.ppf(confidence, 1) / 2)
    half = np.sqrt(1 - r) / 2
    ref = (r / (4 * (0.5 + half)), 0.5 + half)
    assert_allclose(
        el_mean_interval([0.0, 1.0], confidence), ref, rtol=1e-12, atol=1e-15
    )


def test_weights_equal_repeated_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    w = rng.integers(0, 4, size=30)
    assert_allclose(
        el_mean_interval(x, sample_weight=w),
        el_mean_interval(np.repeat(x, w)),
        rtol=1e-12,
    )
    assert_allclose(
        el_mean_test(x, 0.1, sample_weight=w),
        el_mean_test(np.repeat(x, w), 0.1),
        rtol=1e-10,
    )
    assert_allclose(
        el_mean_interval(x, bartlett=True, sample_weight=w),
        el_mean_interval(np.repeat(x, w), bartlett=True),
        rtol=1e-12,
    )


def test_translation_and_scale_equivariance():
    rng = np.random.default_rng(2)
    x = rng.gamma(2.0, size=50)
    lower, upper = el_mean_interval(x)
    lower2, upper2 = el_mean_interval(3.0 * x - 7.0)
    assert_allclose([lower2, upper2], [3 * lower - 7, 3 * upper - 7], rtol=1e-12)
    lower3, upper3 = el_mean_interval(-x)
    assert_allclose([lower3, upper3], [-upper, -lower], rtol=1e-12)


def test_bartlett_widens_and_matches_scaled_threshold():
    rng = np.random.default_rng(5)
    x = rng.exponential(size=25)
    z = x - x.mean()
    m2, m3, m4 = (np.mean(z**k) for k in (2, 3, 4))
    a = m4 / (2 * m2**2) - m3**2 / (3 * m2**3)
    lower, upper = el_mean_interval(x, bartlett=True)
    plain = el_mean_interval(x)
    assert lower < plain[0] and upper > plain[1]
    # the corrected endpoints have statistic chi2 * (1 + a / n)
    assert_allclose(el_mean_test(x, upper)[0], CHI2_95 * (1 + a / 25), rtol=1e-10)
    stat, pvalue = el_mean_test(x, upper, bartlett=True)
    assert_allclose(stat, CHI2_95, rtol=1e-10)
    assert_allclose(pvalue, 0.05, rtol=1e-8)


def test_moment_test_one_dimensional_equals_mean_test():
    rng = np.random.default_rng(4)
    x = rng.exponential(size=60)
    assert_allclose(el_moment_test(x - 1.1)[0], el_mean_test(x, 1.1)[0], rtol=1e-10)


def test_moment_test_matches_cvxpy_in_two_dimensions():
    import cvxpy as cp

    rng = np.random.default_rng(6)
    G = rng.normal(size=(50, 2)) + np.array([0.2, -0.1])
    # reference: primal max sum log(n p) s.t. sum p = 1, sum p_i g_i = 0 (cvxpy)
    p = cp.Variable(50)
    cp.Problem(
        cp.Maximize(cp.sum(cp.log(50 * p))), [cp.sum(p) == 1, G.T @ p == 0]
    ).solve(solver=cp.CLARABEL)
    ref = -2 * float(np.sum(np.log(50 * p.value)))
    stat, pvalue = el_moment_test(G)
    assert_allclose(stat, ref, rtol=1e-6)
    assert_allclose(pvalue, chi2.sf(stat, 2))


def test_inputs_not_modified():
    x = np.array([3.0, 1.0, 2.0, 5.0])
    w = np.array([1.0, 2.0, 1.0, 1.0])
    x0, w0 = x.copy(), w.copy()
    el_mean_interval(x, sample_weight=w)
    el_mean_test(x, 2.0, sample_weight=w)
    assert_allclose(x, x0)
    assert_allclose(w, w0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x": [1.0, np.nan, 2.0]}, "NaN"),
        ({"x": [2.0, 2.0, 2.0]}, "two distinct values"),
        ({"x": [1.0, 2.0], "confidence": 1.0}, "confidence"),
        ({"x": [1.0, 2.0], "confidence": 0.0}, "confidence"),
        ({"x": [1.0, 2.0], "sample_weight": [1.0, -1.0]}, "negative"),
        ({"x": [1.0, 2.0], "sample_weight": [1.0, 1.0, 1.0]}, "shape"),
        ({"x": [1.0, 2.0], "sample_weight": [0.0, 0.0]}, "sums to zero"),
        ({"x": [[1.0, 2.0]]}, "1-dimensional"),
        ({"x": []}, "empty"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        el_mean_interval(**kwargs)


def test_bad_input_test():
    with pytest.raises(ValueError, match="mean"):
        el_mean_test([1.0, 2.0], "a")
    with pytest.raises(ValueError, match="inf"):
        el_mean_test([1.0, np.inf], 1.0)


def _coverage(sampler, n, reps, rng, **kwargs):
    hits_el = hits_t = 0
    q = t.ppf(0.975, n - 1)
    for _ in range(reps):
        x, mu = sampler(rng, n)
        lower, upper = el_mean_interval(x, **kwargs)
        hits_el += lower <= mu <= upper
        half = q * x.std(ddof=1) / np.sqrt(n)
        hits_t += abs(x.mean() - mu) <= half
    return hits_el / reps, hits_t / reps


def _exponential(rng, n):
    return rng.exponential(size=n), 1.0


@pytest.mark.slow
def test_coverage_exponential_n30_with_and_without_bartlett():
    # reference: ANCHORS.md measured 0.917 for plain EL at n = 30 (2000 reps)
    rng = np.random.default_rng(0)
    plain, t_cov = _coverage(_exponential, 30, 4000, rng)
    rng = np.random.default_rng(0)
    corrected, _ = _coverage(_exponential, 30, 4000, rng, bartlett=True)
    assert 0.905 <= plain <= 0.93
    assert corrected > plain
    assert 0.92 <= t_cov <= 0.94


@pytest.mark.slow
def test_coverage_large_n_reaches_nominal():
    rng = np.random.default_rng(1)
    el, _ = _coverage(_exponential, 2000, 2000, rng)
    assert abs(el - 0.95) < 0.015
