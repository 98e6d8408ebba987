"""DRO LightGBM on the ambiguity protocol and the linear engine (issue 15, A/B).

The robust starting constant is solved by the linear engine's certified loop
and the smoothed boosting weights by the set's own exact dual solve; each is
checked here against an independent reference: a bounded 1-d minimization of
the exact robust risk (scipy's ``minimize_scalar``, which knows nothing of the
engine) and the first-order condition of the smoothed dual.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize_scalar
from scipy.special import log_expit
from sklearn.utils._param_validation import InvalidParameterError

from skrobust.ambiguity import KL, ChiSquare, CVaR, TotalVariation
from skrobust.ensemble import DROLGBMClassifier, DROLGBMRegressor
from skrobust.ensemble._robust import _boosting_weights

SETS = [
    ChiSquare(radius=0.5),
    KL(radius=0.3),
    CVaR(alpha=0.2),
    TotalVariation(radius=0.2),
]


def _reference_constant(risk_of, lo, hi):
    """The minimum of a convex 1-d robust risk, by bounded Brent search."""
    res = minimize_scalar(
        risk_of, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
    )
    return res.fun


@pytest.mark.parametrize("ambiguity", SETS)
@pytest.mark.parametrize("n", [7, 60])
def test_binary_robust_constant_matches_1d_search(ambiguity, n):
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    w = rng.uniform(0.5, 2.0, n)
    X = rng.normal(size=(n, 2))
    model = DROLGBMClassifier(ambiguity, n_estimators=1, min_child_samples=1).fit(
        X, y, sample_weight=w
    )
    sign = 2.0 * y - 1.0

    def risk_of(c):
        return ambiguity.risk(-log_expit(sign * c), w)

    ours = risk_of(model.init_score_[0])
    reference = _reference_constant(risk_of, -20.0, 20.0)
    # certified to 1e-8 relative by the engine; Brent to ~1e-10 in c
    assert ours <= reference + 1e-7 * abs(reference)
    assert ours >= reference - 1e-7 * abs(reference)


@pytest.mark.parametrize("ambiguity", SETS)
@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber"])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_regression_robust_constant_matches_1d_search(ambiguity, loss, scale):
    rng = np.random.default_rng(3)
    n = 40
    y = scale * rng.standard_t(3, n)
    X = rng.normal(size=(n, 2))
    model = DROLGBMRegressor(
        ambiguity, loss=loss, huber_delta=scale, n_estimators=1
    ).fit(X, y)

    def losses(c):
        r = c - y
        if loss == "squared_error":
            return 0.5 * r**2
        if loss == "absolute_error":
            return np.abs(r)
        small = np.abs(r) <= scale
        return np.where(small, 0.5 * r**2, scale * (np.abs(r) - 0.5 * scale))

    def risk_of(c):
        return ambiguity.risk(losses(c))

    ours = risk_of(model.init_score_[0])
    reference = _reference_constant(risk_of, y.min(), y.max())
    assert ours <= reference * (1 + 1e-7) + 1e-12 * scale
    assert ours >= reference * (1 - 1e-7) - 1e-12 * scale


@pytest.mark.parametrize("ambiguity", [CVaR(alpha=0.1), TotalVariation(radius=0.3)])
def test_smoothed_boosting_weights_at_the_exact_dual_minimizer(ambiguity):
    rng = np.random.default_rng(0)
    losses = rng.exponential(size=200)
    w = rng.uniform(0.1, 1.0, 200)
    p = w / w.sum()
    risk, q = _boosting_weights(ambiguity, losses, w)
    assert_allclose(risk, ambiguity.risk(losses, w))
    assert_allclose(q.sum(), 1.0)
    assert np.all(q >= 0)
    # the weights are the smoothed dual's loss gradient at its minimizer:
    # the dual objective is no smaller one step away on either side
    tau = 0.3 * np.sqrt(p @ (losses - p @ losses) ** 2)
    eta = ambiguity.dual_argmin(losses, p, smoothing=tau)
    value, grad_losses, grad_dual = ambiguity.dual_objective(eta, losses, p, tau)
    assert abs(grad_dual[0]) < 1e-9
    for h in (-1e-4, 1e-4):
        assert ambiguity.dual_objective(eta + h, losses, p, tau)[0] >= value - 1e-15
    assert_allclose(q, grad_losses / grad_losses.sum(), rtol=1e-12)


@pytest.mark.parametrize("Est", [DROLGBMClassifier, DROLGBMRegressor])
@pytest.mark.parametrize("bad", ["erm", "wasserstein", 0.5, None])
def test_one_ambiguity_constraint(Est, bad):
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    with pytest.raises(InvalidParameterError, match="ambiguity"):
        Est(bad).fit(X, y)


@pytest.mark.parametrize("ambiguity", SETS)
def test_tied_losses_robust_constant(ambiguity):
    # balanced binary labels and a two-valued regression target: every loss
    # of the constant ties within a class (the engine's problem is solved on
    # one atom per class / distinct target); reference: 1-d Brent search on
    # the full sample
    n = 2000
    X = np.random.default_rng(0).normal(size=(n, 2))
    y = np.arange(n) % 2
    model = DROLGBMClassifier(ambiguity, n_estimators=1).fit(X, y)
    sign = 2.0 * y - 1.0

    def risk_of(c):
        return ambiguity.risk(-log_expit(sign * c))

    reference = _reference_constant(risk_of, -20.0, 20.0)
    assert_allclose(risk_of(model.init_score_[0]), reference, rtol=1e-7)
    yr = 3.0 * y
    reg = DROLGBMRegressor(ambiguity, n_estimators=1).fit(X, yr)

    def reg_risk(c):
        return ambiguity.risk(0.5 * (c - yr) ** 2)

    reference = _reference_constant(reg_risk, 0.0, 3.0)
    assert_allclose(reg_risk(reg.init_score_[0]), reference, rtol=1e-7)
