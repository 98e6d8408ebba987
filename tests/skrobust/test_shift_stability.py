"""KL stability: closed forms, a cvxpy primal, the KL ambiguity set."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LinearRegression

from skrobust.ambiguity import KL
from skrobust.shift import StabilityResult, kl_stability

RTOL = 1e-8
CVXPY_TOL = 1e-5
N_SE = 4.0


def _bernoulli_kl(y, p):
    return y * np.log(y / p) + (1 - y) * np.log((1 - y) / (1 - p))


@pytest.mark.parametrize("threshold", [0.15, 0.3, 0.9])
def test_bernoulli_closed_form(threshold):
    # 0/1 losses with error rate 0.1: the cheapest shift is Bernoulli(threshold)
    losses = np.r_[np.ones(100), np.zeros(900)]
    result = kl_stability(losses, threshold)
    assert isinstance(result, StabilityResult)
    assert_allclose(result.stability, _bernoulli_kl(threshold, 0.1), rtol=RTOL)
    # lambda* = log-odds ratio of the tilted and nominal distributions
    odds = np.log(threshold / (1 - threshold)) - np.log(0.1 / 0.9)
    assert_allclose(result.multiplier, odds, rtol=1e-6)


def test_matches_cvxpy_primal():
    import cvxpy as cp

    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=60)
    y = float(np.quantile(x, 0.8))
    q = cp.Variable(60, nonneg=True)
    # primal: min KL(q || uniform) subject to E_q[x] >= y
    problem = cp.Problem(
        cp.Minimize(cp.sum(cp.rel_entr(q, np.full(60, 1 / 60)))),
        [cp.sum(q) == 1, x @ q >= y],
    )
    problem.solve(solver=cp.CLARABEL)
    result = kl_stability(x, y)
    assert_allclose(result.stability, problem.value, rtol=CVXPY_TOL)


def test_inverse_of_kl_ambiguity_set():
    # the KL ball of radius I(y) has worst-case expected loss exactly y
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    for y in (0.2, 0.8, 1.5):
        radius = kl_stability(x, y).stability
        assert_allclose(KL(radius=radius).risk(x), y, rtol=1e-7)


def test_gaussian_closed_form():
    # X ~ N(0, 1): I(y) = y^2 / 2
    rng = np.random.default_rng(2)
    x = rng.normal(size=200000)
    result = kl_stability(x, 1.0)
    assert abs(result.stability - 0.5) < N_SE * result.std_error
    assert result.lower < 0.5 < result.upper


def test_exponential_below_the_phase_shift():
    # X ~ Exp(1): lambda* = 1 - 1 / y and I(y) = y - 1 - log(y); at y = 1.5,
    # E exp(2 lambda* X) = E exp(2 X / 3) < inf and the normal interval holds.
    rng = np.random.default_rng(3)
    x = rng.exponential(size=100000)
    result = kl_stability(x, 1.5)
    truth = 0.5 - np.log(1.5)
    assert abs(result.stability - truth) < N_SE * result.std_error
    assert_allclose(result.multiplier, 1 / 3, rtol=0.05)


def test_exponential_at_the_phase_shift():
    # y = 2: truth 1 - log 2, lambda* = 1/2 and E exp(2 lambda* X) = inf, the
    # boundary of the paper's phase shift: slower convergence, documented.
    rng = np.random.default_rng(4)
    x = rng.exponential(size=200000)
    result = kl_stability(x, 2.0)
    assert abs(result.stability - (1 - np.log(2))) < 0.02


def test_trivial_and_infinite_thresholds():
    x = np.array([0.0, 1.0, 1.0, 3.0])
    below = kl_stability(x, 1.0)
    assert below.stability == 0.0 and below.multiplier == 0.0
    with pytest.warns(UserWarning, match="boundary"):
        at_max = kl_stability(x, 3.0)
    assert np.isnan(at_max.std_error) and np.isinf(at_max.upper)
    assert_allclose(at_max.stability, np.log(4), rtol=RTOL)  # -log P(X = max)
    with pytest.warns(UserWarning, match="infinite"):
        beyond = kl_stability(x, 3.5)
    assert np.isinf(beyond.stability) and np.isinf(beyond.upper)


def _uniform_conditional_truth(y):
    # mu(Z) = Z_1 ~ U(0, 1): log E exp(lambda U) = log((e^lambda - 1) / lambda)
    def negative(lam):
        mgf = quad(lambda u: np.exp(lam * u), 0, 1)[0]
        return -(lam * y - np.log(mgf))

    return -minimize_scalar(negative, bounds=(0, 50), method="bounded").fun


def test_conditional_version_closed_form():
    rng = np.random.default_rng(5)
    n = 20000
    Z = rng.uniform(size=(n, 2))
    losses = (rng.uniform(size=n) < Z[:, 0]).astype(float)
    y = 0.7
    result = kl_stability(losses, y, Z=Z, regressor=LinearRegression(), random_state=0)
    truth = _uniform_conditional_truth(y)
    assert abs(result.stability - truth) < N_SE * result.std_error
    # shifting Z only is costlier than shifting the whole joint distribution
    joint = kl_stability(losses, y)
    assert result.lower > joint.stability
    assert_allclose(joint.stability, _bernoulli_kl(y, losses.mean()), rtol=RTOL)


def test_conditional_determinism_and_repeats():
    # 300 samples exercise the seeded default first stage as 800 did
    rng = np.random.default_rng(6)
    Z = rng.uniform(size=(300, 1))
    losses = (rng.uniform(size=300) < Z[:, 0]).astype(float)
    a = kl_stability(losses, 0.6, Z=Z, random_state=1)
    b = kl_stability(losses, 0.6, Z=Z, random_state=1)
    assert a == b
    c = kl_stability(losses, 0.6, Z=Z[:, 0], n_repeats=2, random_state=1)
    assert np.isfinite(c.stability)


def test_bad_input():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="NaN"):
        kl_stability(np.r_[x, np.nan], 5.0)
    with pytest.raises(ValueError, match="confidence"):
        kl_stability(x, 5.0, confidence=1.5)
    with pytest.raises(ValueError, match="threshold"):
        kl_stability(x, np.inf)
    with pytest.raises(ValueError, match="Z has 9 rows"):
        kl_stability(x, 5.0, Z=np.ones((9, 1)))
    with pytest.raises(ValueError, match="at least 2"):
        kl_stability([1.0], 0.5)


def test_inputs_not_modified():
    x = np.random.default_rng(7).normal(size=100)
    before = x.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl_stability(x, 0.5)
    assert_allclose(x, before)
