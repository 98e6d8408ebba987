"""The conditional CVaR ambiguity set and the renamed parameters (issue 15).

- ``skrobust.ambiguity._conditional_cvar.ConditionalCVaR`` is the worst case
  the conditional CVaR estimators reach: checked against the LP handed to
  HiGHS whole (scipy's ``linprog`` on the textbook primal, an independent
  formulation), the dual at its own optimum, finite differences of its dual
  gradient, and the closed forms at the ends (no controls: CVaR; level 1:
  the mean).
- ``subpopulation_size`` replaces the estimator-level ``alpha`` of
  ConditionalCVaR* and MarginalDRO*; the old name still works with a
  FutureWarning, and gives the same fit.
- ConditionalCVaRLinearRegression's ``loss`` takes scikit-learn's names; the
  old short names still work with a FutureWarning.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import linprog

from skrobust.ambiguity import CVaR
from skrobust.ambiguity._conditional_cvar import ConditionalCVaR
from skrobust.subpopulation import (
    ConditionalCVaRLinearRegression,
    ConditionalCVaRLogisticRegression,
    MarginalDROLinearRegression,
    MarginalDROLogisticRegression,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _measure import traced_peak  # noqa: E402


def _primal(losses, controls, p, alpha):
    """max q.l over 0 <= q <= p / alpha, sum q = 1, q.c = p.c (HiGHS, whole)."""
    A_eq = np.vstack([np.ones_like(p), controls.T])
    b_eq = np.concatenate([[1.0], p @ controls])
    res = linprog(
        -losses,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=np.column_stack([np.zeros_like(p), p / alpha]),
        method="highs",
    )
    assert res.status == 0
    return -res.fun


def _case(seed, n=40, k=2):
    rng = np.random.default_rng(seed)
    controls = rng.normal(size=(n, k))
    tail = 1.0 + (controls[:, 0] > 0) if k else 1.0
    losses = rng.exponential(size=n) * tail
    p = rng.uniform(0.2, 2.0, size=n)
    return losses, controls, p / p.sum()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 50),
    k=st.integers(0, 3),
    alpha=st.sampled_from([0.05, 0.2, 0.5, 0.9]),
    log_scale=st.sampled_from([-150, 0, 150]),
)
def test_set_matches_the_whole_lp(seed, n, k, alpha, log_scale):
    losses, controls, p = _case(seed, n, k)
    losses = losses * 10.0**log_scale
    amb = ConditionalCVaR(alpha=alpha, controls=controls)
    risk, q, dual, gap = amb.solve(losses, p)
    # reference: the primal LP, in the units where it is well scaled
    reference = _primal(losses / 10.0**log_scale, controls, p, alpha)
    assert_allclose(risk / 10.0**log_scale, reference, rtol=1e-7, atol=1e-9)
    assert gap <= 1e-7 * abs(risk) + 1e-300
    # the weights are in the set
    assert np.all(q >= 0) and np.all(q <= p / alpha * (1 + 1e-9))
    assert_allclose(q.sum(), 1.0, rtol=1e-9)
    assert_allclose(q @ controls, p @ controls, atol=1e-8)
    # the dual variables attain the risk (strong duality)
    value, _, _ = amb.dual_objective(dual, losses, p)
    assert_allclose(value, risk, rtol=1e-7)
    assert risk_and_weights_agree(amb, losses, p)


def risk_and_weights_agree(amb, losses, p):
    risk, q = amb.risk_and_weights(losses, p)
    return np.isclose(risk, amb.risk(losses, p)) and np.allclose(
        q, amb.worst_case_weights(losses, p)
    )


def test_ends_are_the_closed_forms():
    losses, controls, p = _case(3)
    # no controls: the ordinary CVaR (sorting); level 1: the mean
    assert_allclose(
        ConditionalCVaR(alpha=0.2).risk(losses, p),
        CVaR(alpha=0.2).risk(losses, p),
        rtol=1e-12,
    )
    assert_allclose(
        ConditionalCVaR(alpha=1.0, controls=controls).risk(losses, p),
        p @ losses,
        rtol=1e-12,
    )
    # constant and collinear controls constrain nothing more
    padded = np.column_stack([controls, np.ones(40), 2.0 * controls[:, 0]])
    assert_allclose(
        ConditionalCVaR(alpha=0.2, controls=padded).risk(losses, p),
        ConditionalCVaR(alpha=0.2, controls=controls).risk(losses, p),
        rtol=1e-9,
    )


def test_dual_gradient_matches_finite_differences():
    losses, controls, p = _case(7)
    amb = ConditionalCVaR(alpha=0.3, controls=controls)
    rng = np.random.default_rng(1)
    dual = rng.normal(size=amb.n_dual)
    tau = 0.05
    value, g_loss, g_dual = amb.dual_objective(dual, losses, p, smoothing=tau)
    h = 1e-6
    for j in range(amb.n_dual):
        e = np.zeros(amb.n_dual)
        e[j] = h
        up = amb.dual_objective(dual + e, losses, p, smoothing=tau)[0]
        down = amb.dual_objective(dual - e, losses, p, smoothing=tau)[0]
        assert_allclose(g_dual[j], (up - down) / (2 * h), rtol=1e-5, atol=1e-8)
    i = 5
    e = np.zeros_like(losses)
    e[i] = h
    up = amb.dual_objective(dual, losses + e, p, smoothing=tau)[0]
    down = amb.dual_objective(dual, losses - e, p, smoothing=tau)[0]
    assert_allclose(g_loss[i], (up - down) / (2 * h), rtol=1e-5, atol=1e-10)
    # smoothing overstates the exact dual by at most smoothing_error
    exact = amb.dual_objective(dual, losses, p)[0]
    assert exact <= value <= exact + amb.smoothing_error(tau) * (1 + 1e-12)


def test_feasible_weights_land_in_the_set():
    losses, controls, p = _case(11)
    amb = ConditionalCVaR(alpha=0.25, controls=controls)
    _, q, _, _ = amb.solve(losses, p)
    noisy = q * (1 + 1e-3 * np.random.default_rng(0).normal(size=q.size))
    mapped = amb.feasible_weights(noisy, p)
    assert mapped is not None
    assert np.all(mapped >= 0) and np.all(mapped <= p / 0.25 * (1 + 1e-12))
    assert_allclose(mapped.sum(), 1.0, rtol=1e-12)
    assert_allclose(mapped @ controls, p @ controls, atol=1e-12)
    # any weight vector in the set bounds the risk from below
    assert mapped @ losses <= amb.risk(losses, p) * (1 + 1e-12)


def test_bad_input_is_named():
    losses, controls, p = _case(2)
    with pytest.raises(ValueError, match="rows"):
        ConditionalCVaR(alpha=0.2, controls=controls[:-1]).risk(losses, p)
    with pytest.raises(ValueError, match="losses"):
        bad = losses.copy()
        bad[0] = np.nan
        ConditionalCVaR(alpha=0.2, controls=controls).risk(bad, p)
    with pytest.raises(ValueError, match="alpha"):
        ConditionalCVaR(alpha=0.0, controls=controls).risk(losses, p)
    with pytest.raises(ValueError, match="columns"):
        ConditionalCVaR(alpha=0.2, controls=controls, columns=[3]).risk(losses, p)
    # inputs are not modified
    before = (losses.copy(), controls.copy(), p.copy())
    ConditionalCVaR(alpha=0.2, controls=controls).risk_and_weights(losses, p)
    for a, b in zip(before, (losses, controls, p), strict=True):
        np.testing.assert_array_equal(a, b)


def test_estimator_risk_is_the_sets():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(60, 2))
    y = X @ [1.0, -1.0] + (0.1 + (X[:, 0] > 0)) * rng.normal(size=60)
    reg = ConditionalCVaRLinearRegression(0.2, control_features=[0]).fit(X, y)
    losses = 0.5 * (y - reg.predict(X)) ** 2
    risk = ConditionalCVaR(alpha=0.2, controls=X, columns=[0]).risk(losses)
    assert_allclose(reg.robust_risk_, risk, rtol=1e-9)


# -- renamed parameters ----------------------------------------------------------


def _classification():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    return X, y


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ConditionalCVaRLinearRegression, dict(control_features=[0])),
        (ConditionalCVaRLogisticRegression, dict(control_features=[0])),
        (MarginalDROLinearRegression, dict(covariates=[1])),
        (MarginalDROLogisticRegression, dict(covariates=[1])),
    ],
)
def test_old_alpha_still_works_and_warns(cls, kwargs):
    X, y = _classification()
    new = cls(subpopulation_size=0.3, **kwargs).fit(X, y)
    positional = cls(0.3, **kwargs).fit(X, y)
    with pytest.warns(FutureWarning, match="subpopulation_size"):
        old = cls(alpha=0.3, **kwargs).fit(X, y)
    for other in (positional, old):
        assert_allclose(other.coef_, new.coef_, rtol=1e-10, atol=1e-12)
        assert_allclose(other.robust_risk_, new.robust_risk_, rtol=1e-10)
    # the default is the documented one, and the new name does not warn
    assert cls().get_params()["subpopulation_size"] == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        cls(subpopulation_size=0.5, **kwargs).fit(X, y)
    # a bad old value is named
    with pytest.raises(ValueError, match="alpha"):
        cls(alpha=1.5, **kwargs).fit(X, y)


@pytest.mark.parametrize(
    "old, new", [("squared", "squared_error"), ("absolute", "absolute_error")]
)
def test_old_loss_names_still_work_and_warn(old, new):
    X, y = _classification()
    y = X[:, 0] + y
    ref = ConditionalCVaRLinearRegression(0.3, control_features=[0], loss=new)
    ref.fit(X, y)
    with pytest.warns(FutureWarning, match=new):
        model = ConditionalCVaRLinearRegression(0.3, control_features=[0], loss=old)
        model.fit(X, y)
    assert_allclose(model.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="loss"):
        ConditionalCVaRLinearRegression(loss="log_loss").fit(X, y)


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_lp_at_extreme_scales(scale):
    # Before: HiGHS found no solution at 1e150 (RuntimeError) and returned
    # a wrong risk at 1e-150 (its absolute tolerances swallowed every loss);
    # the LP now runs on unit losses. Reference: the LP at scale 1, scaled.
    from skrobust.subpopulation._conditional import _conditional_cvar

    losses, controls, p = _case(0, n=30, k=1)
    reference = _primal(losses, controls, p, 0.2)
    risk, q = _conditional_cvar(losses * scale, controls, 0.2, p)
    assert_allclose(risk / scale, reference, rtol=1e-8)
    assert_allclose(q @ controls, p @ controls, atol=1e-9)


# -- the conditional estimators on the linear engine -------------------------------


def test_conditional_logistic_memory_on_the_engine():
    # Before (its own L-BFGS continuation): at n = 1e4 the logistic fit
    # with two controls was not certified by L-BFGS and fell back to
    # Clarabel, 37x the size of X (tracemalloc peak); the engine's loop
    # certifies it with O(n) memory beyond X (2.95x; the peak is in the
    # engine's Fenchel bound).
    rng = np.random.default_rng(0)
    n, d = 10_000, 10
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(int)
    model = ConditionalCVaRLogisticRegression(0.2, control_features=[0, 1])
    model.fit(X[:300], y[:300])  # warm imports and caches
    peak, _ = traced_peak(lambda: model.fit(X, y))
    assert model.solver_info_["method"] == "lbfgs"
    assert model.solver_info_["certified"]
    assert peak <= 3.0 * X.nbytes, peak / X.nbytes


def test_marginal_risk_checks_its_weights_and_losses():
    # Before: the weights were only divided by their sum (a negative
    # weight, or all zero, gave a silent number or a division by zero); the
    # one weight checker of skrobust.utils now names the problem.
    from skrobust.subpopulation._marginal import _marginal_risk

    losses, controls, p = _case(4, n=20, k=1)
    bad = p.copy()
    bad[0] = -bad[0]
    with pytest.raises(ValueError, match="sample_weight"):
        _marginal_risk(losses, controls, bad, 0.2, 1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        _marginal_risk(losses, controls, np.zeros(20), 0.2, 1.0)
    nan = losses.copy()
    nan[3] = np.nan
    with pytest.raises(ValueError, match="losses"):
        _marginal_risk(nan, controls, p, 0.2, 1.0)
