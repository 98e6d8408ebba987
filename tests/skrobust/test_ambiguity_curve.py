"""CVaR.risk_curve: the CVaR at many levels from one sort."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skrobust.ambiguity import CVaR

RTOL = 1e-10
ATOL = 1e-12


@pytest.mark.parametrize("seed", range(20))
def test_risk_curve_matches_per_level_risk(seed):
    # reference: one exact CVaR.risk solve per level
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    if seed % 2:
        losses = rng.integers(0, 4, n).astype(float)  # many ties
    else:
        losses = rng.standard_t(3, size=n)
    weights = None
    if seed % 3:
        weights = rng.uniform(size=n) * (rng.uniform(size=n) < 0.8)
        weights[0] = 1.0
    alphas = np.r_[rng.uniform(size=15), 1.0, 1e-9, 0.5]
    curve = CVaR().risk_curve(losses, alphas, sample_weight=weights)
    reference = [CVaR(alpha=a).risk(losses, sample_weight=weights) for a in alphas]
    assert_allclose(curve, reference, rtol=RTOL, atol=ATOL)


def test_risk_curve_closed_form():
    # mean of the top k of 0..9 at alpha = k / 10; alpha = 0.25 takes 9, 8 and
    # half of 7: (9 + 8 + 0.5 * 7) / 2.5 = 8.2
    losses = np.arange(10.0)
    assert_allclose(
        CVaR(alpha=0.7).risk_curve(losses, [0.1, 0.2, 0.25, 1.0]),
        [9.0, 8.5, 8.2, 4.5],
        rtol=RTOL,
    )


def test_risk_curve_weighted_equals_repeated_rows():
    rng = np.random.default_rng(0)
    losses = rng.normal(size=30)
    counts = rng.integers(0, 4, size=30)
    alphas = np.linspace(0.01, 1, 25)
    weighted = CVaR().risk_curve(losses, alphas, sample_weight=counts)
    repeated = CVaR().risk_curve(np.repeat(losses, counts), alphas)
    assert_allclose(weighted, repeated, rtol=RTOL)


def test_risk_curve_does_not_modify_inputs():
    losses = np.array([3.0, 1.0, 2.0])
    alphas = np.array([0.5, 0.1])
    CVaR().risk_curve(losses, alphas)
    assert_allclose(losses, [3.0, 1.0, 2.0])
    assert_allclose(alphas, [0.5, 0.1])


@pytest.mark.parametrize(
    "alphas, match",
    [
        ([0.0], "alphas must lie in"),
        ([1.5], "alphas must lie in"),
        ([np.nan], "alphas must lie in"),
        ([], "alphas is empty"),
        ([[0.1, 0.2]], "1-dimensional"),
        (["a"], "array of numbers"),
    ],
)
def test_risk_curve_bad_alphas(alphas, match):
    with pytest.raises(ValueError, match=match):
        CVaR().risk_curve([1.0, 2.0], alphas)


def test_risk_curve_bad_losses():
    with pytest.raises(ValueError, match="NaN"):
        CVaR().risk_curve([1.0, np.nan], [0.5])
    with pytest.raises(ValueError, match="sample_weight"):
        CVaR().risk_curve([1.0, 2.0], [0.5], sample_weight=[1.0, -1.0])
