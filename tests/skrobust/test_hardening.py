"""Hardening of skrobust: generic checks on its estimators and functions, and its own.

The generic checks (malformed input, round trips, inputs untouched,
determinism, scales) are written once in ``tests/_hardening.py`` and run here
on skrobust's estimators and functions; this module adds the skrobust-specific
cases: ambiguity sets, EL intervals, the stability and worst-subpopulation functions.
"""

import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from tests._hardening import *  # noqa: F403  (the generic checks, collected here)
from tests._hardening import (
    HYPOTHESIS,
    INF_MSG,
    NAN_MSG,
    _assert_clear_error,
)
from tests._hardening_functions import *  # noqa: F403  (collected here)

PACKAGE = "skrobust"

# -- hypothesis: ambiguity sets, EL intervals, off-policy values ---------------


def _ambiguity_sets():
    from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR, TotalVariation

    return [
        ChiSquare(0.5),
        CressieRead(0.5, k=1.5),
        CressieRead(0.5, k=3.0),
        KL(0.5),
        CVaR(0.2),
        TotalVariation(0.3),
    ]


AMBIGUITY_IDS = ["ChiSquare", "CressieRead1.5", "CressieRead3", "KL", "CVaR", "TV"]

finite_losses = hnp.arrays(
    np.float64,
    st.integers(1, 25),
    elements=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
)


@pytest.mark.parametrize("amb", _ambiguity_sets(), ids=AMBIGUITY_IDS)
@HYPOTHESIS
@given(losses=finite_losses)
def test_ambiguity_risk_between_mean_and_max(amb, losses):
    risk, weights = amb.risk_and_weights(losses)
    scale = max(1.0, np.abs(losses).max())
    assert np.isfinite(risk)
    assert losses.mean() - 1e-9 * scale <= risk <= losses.max() + 1e-9 * scale
    assert np.all(weights >= 0)
    assert_allclose(weights.sum(), 1.0, rtol=1e-9)
    assert_allclose(weights @ losses, risk, rtol=1e-7, atol=1e-7 * scale)


@pytest.mark.parametrize("amb", _ambiguity_sets(), ids=AMBIGUITY_IDS)
@HYPOTHESIS
@given(
    losses=finite_losses,
    position=st.integers(0, 24),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_ambiguity_rejects_nonfinite_losses(amb, losses, position, bad):
    losses = losses.copy()
    losses[position % losses.shape[0]] = bad
    for method in (amb.risk, amb.worst_case_weights, amb.dual_init):
        with pytest.raises(ValueError) as excinfo:
            method(losses)
        _assert_clear_error(excinfo, NAN_MSG + "|" + INF_MSG)


@HYPOTHESIS
@given(
    radius=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, 1e-300, 1e12, 1e300, -1e-300]),
    ),
    kind=st.sampled_from(["ChiSquare", "KL", "CressieRead"]),
)
def test_ambiguity_radius_from_zero_to_huge(radius, kind):
    from skrobust import ambiguity

    losses = np.array([0.5, 1.0, 3.0, 7.0])
    amb = getattr(ambiguity, kind)(radius=radius)
    if not radius >= 0:  # negative or NaN
        with pytest.raises(ValueError) as excinfo:
            amb.risk(losses)
        _assert_clear_error(excinfo, r"radius")
        return
    try:
        risk = amb.risk(losses)
    except ValueError as exc:  # only an infinite radius may be refused
        assert np.isinf(radius) and "radius" in str(exc), exc
        return
    assert np.isfinite(risk)
    assert losses.mean() - 1e-12 <= risk <= losses.max() + 1e-12
    if radius == 0:
        assert_allclose(risk, losses.mean(), rtol=1e-12)
    if radius >= 1e12:
        # with n = 4, any radius above the divergence of a point mass (at most
        # log 4 for KL, 3/2 for chi-square) puts all the mass on the maximum
        assert_allclose(risk, losses.max(), rtol=1e-9)


@HYPOTHESIS
@given(alpha=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False))
def test_cvar_alpha_range(alpha):
    from skrobust.ambiguity import CVaR

    losses = np.array([0.5, 1.0, 3.0, 7.0])
    if not 0 < alpha <= 1:
        with pytest.raises(ValueError) as excinfo:
            CVaR(alpha=alpha).risk(losses)
        _assert_clear_error(excinfo, r"alpha")
        return
    risk = CVaR(alpha=alpha).risk(losses)
    # closed form: mean of the top alpha-fraction of the sorted losses
    top = np.sort(losses)[::-1]
    mass = np.minimum(np.maximum(alpha - np.arange(4) / 4, 0), 0.25)
    assert_allclose(risk, mass @ top / alpha, rtol=1e-9)


@HYPOTHESIS
@given(
    x=hnp.arrays(
        np.float64,
        st.integers(1, 30),
        # subnormal data whose mean rounds onto a data point count as constant
        elements=st.floats(-1e6, 1e6, allow_subnormal=False),
    )
)
def test_el_mean_interval_contains_the_mean(x):
    from skrobust.inference import el_mean_interval

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lower, upper = el_mean_interval(x)
    except ValueError as exc:
        # degenerate samples (one value) have no interval; say so
        assert np.ptp(x) == 0 or x.shape[0] < 2, exc
        assert re.search(r"sample|constant|identical|distinct|variance", str(exc))
        return
    assert np.isfinite(lower) and np.isfinite(upper)
    tol = 1e-9 * max(1.0, np.abs(x).max())
    assert x.min() - tol <= lower <= x.mean() + tol
    assert x.mean() - tol <= upper <= x.max() + tol


# -- numerical stress ---------------------------------------------------------

WIDE_LOSSES = np.random.default_rng(0).permutation(np.logspace(-12, 12, 49))


@pytest.mark.parametrize("amb", _ambiguity_sets(), ids=AMBIGUITY_IDS)
def test_losses_from_1e_minus_12_to_1e12(amb):
    import cvxpy as cp

    losses = WIDE_LOSSES
    risk = amb.risk(losses)
    assert np.isfinite(risk)
    assert losses.mean() <= risk * (1 + 1e-12) and risk <= losses.max()
    # independent value: the set's cvxpy formulation on losses scaled to
    # [1e-24, 1], solved by Clarabel, scaled back (the risk is positively
    # homogeneous)
    scale = losses.max()
    p = np.full(losses.shape[0], 1.0 / losses.shape[0])
    objective, constraints = amb.cvxpy_risk(cp.Constant(losses / scale), p)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=cp.CLARABEL)
    assert_allclose(risk, scale * problem.value, rtol=1e-5)
    # positive homogeneity and translation equivariance at extreme scales
    assert_allclose(amb.risk(losses * 1e-12), risk * 1e-12, rtol=1e-9)
    assert_allclose(amb.risk(losses / scale), risk / scale, rtol=1e-9)
    assert_allclose(amb.risk(losses - 1e12), risk - 1e12, rtol=1e-9)


def test_cvar_subnormal_alpha():
    # p / alpha overflows for a subnormal alpha; the caps bind at 1 instead
    from skrobust.ambiguity import CVaR

    losses = np.array([0.5, 1.0, 3.0, 7.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert_allclose(CVaR(alpha=1e-310).risk(losses), 7.0)


def test_extreme_radii_reach_mean_and_max():
    from skrobust.ambiguity import KL, ChiSquare, CressieRead, CVaR

    losses = WIDE_LOSSES
    for amb in (ChiSquare(0.0), CressieRead(0.0, k=3.0), KL(0.0), CVaR(1.0)):
        assert_allclose(amb.risk(losses), losses.mean(), rtol=1e-12)
    # a radius beyond the divergence of a point mass (log n for KL, (n-1)/2
    # for chi-square) and alpha below 1/n give the maximum loss
    for amb in (ChiSquare(1e12), CressieRead(1e12, k=3.0), KL(1e12), CVaR(1e-12)):
        assert_allclose(amb.risk(losses), losses.max(), rtol=1e-9)
    for amb in (ChiSquare(1e-12), KL(1e-12)):
        risk = amb.risk(losses)
        assert losses.mean() <= risk < 1.01 * losses.mean()


@pytest.mark.parametrize("amb", _ambiguity_sets(), ids=AMBIGUITY_IDS)
def test_losses_near_the_float64_limits(amb):
    # spread 2e307: finite, and the risk is scale-equivariant up to there
    base = np.array([1.0, -1.0, 0.0, 0.5])
    assert_allclose(amb.risk(base * 1e307), 1e307 * amb.risk(base), rtol=1e-9)
    # spread beyond the float64 range: a clear error, not NaN
    with pytest.raises(ValueError) as excinfo:
        amb.risk(base * 1e308)
    _assert_clear_error(excinfo, r"range|overflow")


def test_kl_stability_at_the_largest_loss_warns():
    from skrobust.shift import kl_stability

    losses = np.array([0.0, 1.0, 2.0, 3.0])
    with pytest.warns(UserWarning, match="boundary"):
        result = kl_stability(losses, 3.0)
    # closed form: all mass on the largest loss, KL = -log(1/4)
    assert_allclose(result.stability, np.log(4.0), rtol=1e-12)
    assert np.isinf(result.upper)


def test_crossfitting_too_few_samples_for_the_folds():
    from skrobust.metrics import worst_subpopulation_risk

    with pytest.raises(ValueError) as excinfo:
        worst_subpopulation_risk(
            np.ones(3), np.zeros(3), np.ones((3, 1)), 0.2, loss="squared_error", cv=2
        )
    _assert_clear_error(excinfo, r"training sample")
