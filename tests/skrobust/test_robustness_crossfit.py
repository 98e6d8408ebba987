"""The cross-fitting engine (skrobust._crossfit): each piece against a reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.linear_model import LinearRegression

from skrobust import _crossfit as engine
from skrobust.utils import ConfidenceInterval


def _brute_cvar_weights(rank_by, alpha, tail):
    """Worst-case weights by sorting (reference): mass 1/(alpha n) on the
    alpha n largest (or smallest) values; alpha n an integer, values distinct."""
    n = rank_by.shape[0]
    k = int(round(alpha * n))
    order = np.argsort(rank_by)
    top = order[-k:] if tail == "upper" else order[:k]
    q = np.zeros(n)
    q[top] = 1.0 / k
    return q, top


@pytest.mark.parametrize("tail", ["upper", "lower"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([4, 10, 20, 40]))
def test_debiased_cvar_matches_the_sorted_closed_form(tail, seed, n):
    rng = np.random.default_rng(seed)
    mu = rng.permutation(n) + rng.uniform(0, 0.1, n)  # distinct
    phi = mu + rng.normal(size=n)
    alpha = 0.5
    value, infl, plug_in, eta, q = engine.debiased_cvar(mu, phi, alpha, tail=tail)
    q_ref, top = _brute_cvar_weights(mu, alpha, tail)
    # closed form: psi_i = eta + n q_i (phi_i - eta), its mean is the tail mean
    # of phi whatever eta is (the weights sum to one)
    np.testing.assert_allclose(q, q_ref, atol=1e-12)
    assert value == pytest.approx(phi[top].mean(), rel=1e-12, abs=1e-12)
    assert plug_in == pytest.approx(mu[top].mean(), rel=1e-12)
    psi = eta + n * q_ref * (phi - eta)
    np.testing.assert_allclose(infl, psi - psi.mean(), atol=1e-10)
    assert abs(infl.mean()) < 1e-10


@pytest.mark.parametrize("tail", ["upper", "lower"])
def test_zero_weight_samples_are_absent_from_debiased_cvar(tail):
    # reference: the same call without the zero-weight samples
    rng = np.random.default_rng(3)
    n = 200
    mu = rng.normal(size=n)
    losses = mu + rng.normal(size=n)
    w = rng.integers(0, 4, n).astype(float)
    keep = w > 0
    got = engine.debiased_cvar(mu, losses, 0.37, sample_weight=w, tail=tail)
    ref = engine.debiased_cvar(
        mu[keep], losses[keep], 0.37, sample_weight=w[keep], tail=tail
    )
    assert got[0] == pytest.approx(ref[0], rel=1e-12)
    assert got[2] == pytest.approx(ref[2], rel=1e-12)
    assert got[3] == ref[3]
    np.testing.assert_allclose(got[4][keep], ref[4], atol=1e-15)
    assert np.all(got[4][~keep] == 0)
    se = engine.influence_stderr(got[1], w)
    assert se == pytest.approx(engine.influence_stderr(ref[1], w[keep]), rel=1e-10)


def test_debiased_cvar_with_ties_at_the_value_at_risk():
    # reference by hand: values 5 (1 sample), 3 (2), 1 (2), each of mass 0.2;
    # alpha = 0.4 takes the 5 (mass 0.2) and half of the tied 3-group's mass
    # 0.4, shared equally: q / alpha per unit = (0.5, 0.25, 0.25, 0, 0)
    mu = np.array([5.0, 3.0, 3.0, 1.0, 1.0])
    phi = np.array([6.0, 2.0, 4.0, 0.0, 1.0])
    value, infl, plug_in, eta, q = engine.debiased_cvar(mu, phi, 0.4)
    np.testing.assert_allclose(q.sum(), 1.0)
    assert eta == 3.0
    assert plug_in == pytest.approx((5.0 + 3.0) / 2)
    # psi = eta + 5 q (phi - eta): the tie group shares its mass equally
    psi = eta + 5 * q * (phi - eta)
    assert value == pytest.approx(psi.mean(), rel=1e-12)
    np.testing.assert_allclose(q, [0.5, 0.25, 0.25, 0.0, 0.0], atol=1e-12)
    assert value == pytest.approx(0.5 * 6.0 + 0.25 * 2.0 + 0.25 * 4.0)


def test_debiased_cvar_rejects_an_unknown_tail():
    with pytest.raises(ValueError, match="tail"):
        engine.debiased_cvar(np.zeros(3), np.zeros(3), 0.5, tail="left")


def test_integer_weights_are_repeated_rows_in_debiased_cvar():
    rng = np.random.default_rng(0)
    n = 30
    mu, phi = rng.normal(size=n), rng.normal(size=n)
    w = rng.integers(0, 3, n)
    rows = np.repeat(np.arange(n), w)
    got = engine.debiased_cvar(mu, phi, 0.3, sample_weight=w.astype(float))
    ref = engine.debiased_cvar(mu[rows], phi[rows], 0.3)
    assert got[0] == pytest.approx(ref[0], rel=1e-12)
    se = engine.influence_stderr(got[1], w.astype(float))
    assert se == pytest.approx(engine.influence_stderr(ref[1]), rel=1e-10)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_cross_predict_equals_a_manual_fold_loop(n_jobs):
    rng = np.random.default_rng(1)
    n = 60
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    t = (rng.uniform(size=n) < 0.5).astype(float)
    folds = engine.treatment_folds(t, 3, np.random.RandomState(0), w)
    pred, models = engine.cross_predict(
        LinearRegression(), X, y, folds, sample_weight=w, n_jobs=n_jobs
    )
    ref = np.empty(n)
    for _, test in folds:
        train = np.setdiff1d(np.arange(n), test)
        m = LinearRegression().fit(X[train], y[train], sample_weight=w[train])
        ref[test] = m.predict(X[test])
    np.testing.assert_allclose(pred, ref, rtol=1e-10, atol=1e-12)
    assert len(models) == 3


def test_map_folds_keeps_the_task_order_under_joblib():
    out = list(engine.map_folds(pow, [(k, 2) for k in range(7)], n_jobs=2))
    assert out == [k * k for k in range(7)]


def test_normal_interval_is_a_confidence_interval():
    ci = engine.normal_interval(1.0, 0.5, 0.9)
    assert isinstance(ci, ConfidenceInterval)
    z = stats.norm.ppf(0.95)  # reference: the two-sided 90% quantile
    assert ci.low == pytest.approx(1.0 - 0.5 * z)
    assert ci.high == pytest.approx(1.0 + 0.5 * z)


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150])
def test_influence_stderr_at_extreme_scales(scale):
    infl = np.array([1.0, -2.0, 3.0, -2.0]) * scale
    # closed form: sqrt(sum infl^2) / n
    assert engine.influence_stderr(infl) == pytest.approx(np.sqrt(18.0) / 4 * scale)


def test_old_import_paths_are_the_engine():
    from skcausal import _crossfit as causal_crossfit
    from skrobust.metrics import _crossfit as metrics_crossfit

    assert causal_crossfit._crossfit is engine.crossfit_nuisances
    assert causal_crossfit._make_folds is engine.treatment_folds
    assert metrics_crossfit.crossfit_subsets is engine.crossfit_subsets
    assert metrics_crossfit.fit_first_stage is engine.fit_first_stage
